//! A Bulk Data export at work: the patients found in the log, each one's resources written by a
//! worker to its own file of each type (what could not be written to its error file), the
//! access-log record, then the manifest.
use super::{
    scan::Scan,
    writeback::{Flusher, Writeback},
    Job, JobState, Scope, MANIFEST, SCAN_BATCH,
};
use crate::{request::ExportAsk, FhirApi};
use futures::{
    future::{BoxFuture, Shared},
    FutureExt,
};
use journey_event_log::EventLog;
use journey_fhir::{bulk, bundle::Entry, Kind, Resource};
use journey_projections::coordination::patient::{self, TaskDischarge};
use journey_proto::v1::{event::Payload, Event};
use journey_services::{
    access_log::{audited, Access},
    consent,
    coordination_service::CoordinationService,
    errors, files,
    log_handle::LogHandle,
    principal::Principal,
};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path as FsPath, PathBuf},
    sync::{atomic::Ordering, Arc, Mutex},
    time::{Duration, Instant},
};
use tonic::Status;

/// A file created 0600 whatever the umask, written and synced.
pub(super) fn write_private(path: &FsPath, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = create_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

fn create_private(path: &FsPath) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(files::FILE_MODE)
        .open(path)
}

/// One type's NDJSON file being written.
struct Output {
    file: std::io::BufWriter<Writeback>,
    count: u64,
}

/// Mapping workers: both cores read, map and write.
const WORKERS: usize = 2;
/// Patients queued ahead of the workers, at most.
const QUEUED: usize = 8;
/// Patients whose Tasks are asked of the coordination view at once, at most (its largest `IN`
/// list): one query of their discharges instead of one per patient.
const TASKS_BATCH: usize = 256;
/// Groups of patients found ahead of the workers, at most (their Tasks asked meanwhile).
const GROUPS_AHEAD: usize = 2;
/// A fault-injection point for tests (docs/fhir.md): the events of the patient it names cannot
/// be read, as when the log fails to give them, so that patient goes to the error file.
const UNREADABLE_FAULT: &str = "JOURNEY_FAULT_FHIR_EXPORT_UNREADABLE";

/// A patient for a worker: its events already read (a remote log), the position up to which the
/// worker reads them itself from the log of this process, or why they could not be read.
enum Patient {
    Read(String, Vec<Event>),
    Local(String, u64),
    Unreadable(String, String),
}

/// The followed discharges of a batch of patients (those with any), asked of the coordination
/// view once for the batch: the workers wait for the answer at the batch's first discharged
/// patient, and share it.
type BatchTasks =
    Shared<BoxFuture<'static, Result<Arc<HashMap<String, Vec<TaskDischarge>>>, Status>>>;

/// Patients found together in the log (with the position up to which each is exported), and
/// their Tasks asked.
type Group = (Vec<(String, u64)>, Option<BatchTasks>);

/// The patients waiting for a worker, each with its batch's Tasks where they are exported.
type Queue = Mutex<tokio::sync::mpsc::Receiver<(Patient, Option<BatchTasks>)>>;

/// A file of the export: its name, its type, its count (the manifest's entry).
pub(super) type Listed = (String, &'static str, u64);

/// One worker's files, one per type (`<Type>-<worker>.part` until whole): each worker writes its
/// own, so no lock is taken and no file is joined; the manifest lists every worker's file.
struct Files {
    folder: PathBuf,
    worker: usize,
    outputs: BTreeMap<&'static str, Output>,
    /// Syncs the files as they grow.
    flusher: Flusher,
}

impl Files {
    /// The file of `kind`, created at its first resource.
    fn of(&mut self, kind: &'static str) -> std::io::Result<&mut Output> {
        Ok(match self.outputs.entry(kind) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let name = format!("{kind}-{}.part", self.worker);
                let f = create_private(&self.folder.join(name))?;
                v.insert(Output {
                    file: std::io::BufWriter::with_capacity(256 * 1024, self.flusher.file(f)),
                    count: 0,
                })
            }
        })
    }

    /// A patient's resource, one line.
    fn write(&mut self, r: &Entry) -> std::io::Result<()> {
        let out = self.of(r.kind())?;
        r.write(&mut out.file)?;
        out.file.write_all(b"\n")?;
        out.count += 1;
        Ok(())
    }

    /// A line of the error file: what of `patient` could not be exported, and why.
    fn error(&mut self, patient: &str, lost: &str, why: &str) -> std::io::Result<()> {
        tracing::warn!(patient, lost, why, "a FHIR export left resources out");
        let out = self.of(bulk::ERROR_KIND)?;
        serde_json::to_writer(&mut out.file, &bulk::error_line(patient, lost, why))?;
        out.file.write_all(b"\n")?;
        out.count += 1;
        Ok(())
    }

    /// Each file flushed, synced and renamed `<Type>-<worker>.ndjson`: the manifest's entries.
    fn finish(self) -> std::io::Result<Vec<Listed>> {
        let Files {
            folder,
            worker,
            outputs,
            flusher,
        } = self;
        let mut listed = Vec::new();
        for (kind, out) in outputs {
            let file = out.file.into_inner().map_err(|e| e.into_error())?;
            file.sync()?;
            let name = bulk::file_name(kind, worker);
            std::fs::rename(
                folder.join(format!("{kind}-{worker}.part")),
                folder.join(&name),
            )?;
            listed.push((name, kind, out.count));
        }
        flusher.stop();
        Ok(listed)
    }
}

/// What a worker did: the patients it covered, its files, and where its time went (waiting for
/// patients, reading their streams from the log in this process, mapping them, writing their
/// resources, waiting for and writing their Tasks, syncing its files).
#[derive(Default)]
struct Worked {
    covered: Vec<String>,
    listed: Vec<Listed>,
    waited: Duration,
    read: Duration,
    mapped: Duration,
    wrote: Duration,
    tasks: Duration,
    synced: Duration,
}

/// What every worker shares: the log of this process (if any), the coordination view (the
/// Tasks), the runtime its queries run on, what is asked, the patient a fault makes unreadable.
struct Work {
    log: Option<Arc<EventLog>>,
    view: Option<CoordinationService>,
    runtime: tokio::runtime::Handle,
    ask: Arc<ExportAsk>,
    unreadable: Option<String>,
}

impl Work {
    /// A patient's events from the log of this process, up to `upto`.
    fn read(&self, patient: &str, upto: u64) -> Result<Vec<Event>, String> {
        if self.unreadable.as_deref() == Some(patient) {
            return Err(format!("{UNREADABLE_FAULT} names this patient"));
        }
        let log = self.log.as_ref().ok_or("no log in this process")?;
        let stored = log.read_stream(patient, 1, usize::MAX).map_err(|e| e.0)?;
        let mut events = Vec::with_capacity(stored.len());
        for s in stored {
            let e = s.decode().map_err(|e| e.0)?;
            if e.position <= upto {
                events.push(e);
            }
        }
        Ok(events)
    }

    /// The query of the Tasks of `patients`, where asked and the server has the coordination view,
    /// started on the runtime: it runs while the workers map and write.
    fn ask_tasks(&self, patients: &[String]) -> Option<BatchTasks> {
        if patients.is_empty() || !bulk::wanted(&self.ask, Kind::Task.name()) {
            return None;
        }
        let view = self.view.clone()?;
        let patients = patients.to_vec();
        let pending = self
            .runtime
            .spawn(async move { crate::tasks::followed_of(&view, &patients).await });
        let answer = async move {
            let found = pending.await.map_err(errors::fhir_export_failed)??;
            Ok(Arc::new(found))
        };
        Some(answer.boxed().shared())
    }

    /// The Tasks of `patient` in its batch's answer, mapped with `events` (their `meta`); a
    /// patient never discharged has none, and does not wait for the answer.
    fn tasks(
        &self,
        batch: &BatchTasks,
        patient: &str,
        events: &[Event],
    ) -> Result<Vec<Resource>, Status> {
        let discharged = events
            .iter()
            .any(|e| matches!(e.payload, Some(Payload::Discharged(_))));
        if !discharged {
            return Ok(Vec::new());
        }
        let found = self.runtime.block_on(batch.clone())?;
        let followed = found.get(patient).map_or(&[][..], Vec::as_slice);
        Ok(crate::tasks::tasks(patient, followed, events))
    }
}

/// A worker (`worker` from 1): takes each patient from `queue` (reading its events from the log
/// when it is in this process), maps it and writes its resources to its own files, until the
/// queue closes; a patient whose events or Tasks cannot be read goes to the error file.
fn map_and_write(
    work: &Work,
    worker: usize,
    folder: PathBuf,
    queue: &Queue,
) -> Result<Worked, Status> {
    let mut w = Worked::default();
    let mut files = Files {
        folder,
        worker,
        outputs: BTreeMap::new(),
        flusher: Flusher::start(),
    };
    let failed = errors::fhir_export_failed;
    loop {
        let started = Instant::now();
        let next = queue.lock().unwrap().blocking_recv();
        w.waited += started.elapsed();
        let started = Instant::now();
        let Some((next, batch)) = next else { break };
        let (patient, read) = match next {
            Patient::Read(patient, events) => (patient, Ok(events)),
            Patient::Local(patient, upto) => {
                let read = work.read(&patient, upto);
                (patient, read)
            }
            Patient::Unreadable(patient, why) => (patient, Err(why)),
        };
        w.read += started.elapsed();
        let events = match read {
            Ok(events) => events,
            Err(why) => {
                let why = format!("its events could not be read from the log: {why}");
                files
                    .error(&patient, "every resource", &why)
                    .map_err(failed)?;
                continue;
            }
        };
        let started = Instant::now();
        let resources = bulk::selected(&work.ask, &patient, &events);
        w.mapped += started.elapsed();
        let started = Instant::now();
        for r in &resources {
            files.write(r).map_err(failed)?;
        }
        w.wrote += started.elapsed();
        let mut written = !resources.is_empty();
        drop(resources);
        if let Some(batch) = &batch {
            let started = Instant::now();
            match work.tasks(batch, &patient, &events) {
                Ok(tasks) => {
                    let tasks = bulk::tasks_selected(&work.ask, tasks);
                    for r in &tasks {
                        files.write(r).map_err(failed)?;
                    }
                    written |= !tasks.is_empty();
                }
                Err(s) => {
                    let why = format!("the coordination view could not be read: {}", s.message());
                    files.error(&patient, "its Tasks", &why).map_err(failed)?;
                }
            }
            w.tasks += started.elapsed();
        }
        if written {
            w.covered.push(patient);
        }
    }
    let started = Instant::now();
    w.listed = files.finish().map_err(failed)?;
    w.synced = started.elapsed();
    Ok(w)
}

/// A job at work.
pub(super) struct Run {
    pub(super) api: FhirApi,
    pub(super) job: Arc<Job>,
    pub(super) folder: PathBuf,
    pub(super) scope: Scope,
    pub(super) ask: Arc<ExportAsk>,
    pub(super) caller: Option<Principal>,
    pub(super) call: String,
    pub(super) purpose: String,
    pub(super) peer: Option<std::net::SocketAddr>,
    pub(super) request: String,
    pub(super) files_url: String,
}

impl Run {
    fn progress(&self, p: String) -> Result<(), Status> {
        if self.job.cancelled.load(Ordering::SeqCst) {
            return Err(errors::fhir_export_failed("cancelled"));
        }
        *self.job.state.lock().unwrap() = JobState::Running(p);
        Ok(())
    }

    pub(super) async fn go(&self) -> Result<(), Status> {
        let transaction_time =
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let started = Instant::now();
        let (head, _) = self.api.log.head().await?;
        let (mut scanned, mut deciding, mut reading, mut queued) = (
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
            Duration::ZERO,
        );
        // A log in this process is read by the workers themselves (both cores); a remote one here.
        let local = match &self.api.log {
            LogHandle::InProcess { log, .. } => Some(log.clone()),
            LogHandle::Remote { .. } => None,
        };
        let work = Arc::new(Work {
            log: local.clone(),
            view: self.api.coordination.clone(),
            runtime: tokio::runtime::Handle::current(),
            ask: self.ask.clone(),
            unreadable: std::env::var(UNREADABLE_FAULT).ok(),
        });
        // At most QUEUED patients wait between here and the workers.
        let (tx, rx) = tokio::sync::mpsc::channel::<(Patient, Option<BatchTasks>)>(QUEUED);
        let queue = Arc::new(Mutex::new(rx));
        let workers: Vec<_> = (1..=WORKERS)
            .map(|worker| {
                let (work, queue, folder) = (work.clone(), queue.clone(), self.folder.clone());
                tokio::task::spawn_blocking(move || map_and_write(&work, worker, folder, &queue))
            })
            .collect();
        // The log scanned in batches for the patients (only their ids kept), handed over in
        // groups whose Tasks are asked as the group is made: up to GROUPS_AHEAD groups wait, so
        // that the view answers for the next group while the workers map this one.
        let (groups_tx, groups_rx) = tokio::sync::mpsc::channel::<Group>(GROUPS_AHEAD);
        let find = async {
            let groups_tx = groups_tx;
            let mut scan = match &local {
                Some(log) => Scan::Local(log.clone()),
                None => Scan::Remote(Box::new(
                    self.api
                        .log
                        .source()
                        .await
                        .map_err(errors::fhir_export_failed)?,
                )),
            };
            let mut seen = HashSet::new();
            let mut from = 1;
            while from <= head {
                self.progress(format!(
                    "reading the log: {} of {head} events ({}%), {} patients",
                    from - 1,
                    100 * (from - 1) / head.max(1),
                    seen.len()
                ))?;
                let started = Instant::now();
                let batch = scan.range(from, head, SCAN_BATCH).await?;
                scanned += started.elapsed();
                let Some(last) = batch.last() else { break };
                from = last.position + 1;
                let mut new = Vec::new();
                for e in batch {
                    if !self.changed(&e) || seen.contains(&e.patient_id) {
                        continue;
                    }
                    seen.insert(e.patient_id.clone());
                    new.push(e.patient_id);
                }
                let started = Instant::now();
                let found = self.members(new, head).await?;
                deciding += started.elapsed();
                for group in found.chunks(TASKS_BATCH) {
                    let ids: Vec<String> = group.iter().map(|(p, _)| p.clone()).collect();
                    let tasks = work.ask_tasks(&ids);
                    if groups_tx.send((group.to_vec(), tasks)).await.is_err() {
                        return Ok(()); // the hand-over stopped: its error says why
                    }
                }
            }
            Ok::<(), Status>(())
        };
        // Each group's patients handed to the workers (a remote log's streams read here).
        let hand_over = async {
            let (mut groups_rx, tx) = (groups_rx, tx);
            while let Some((group, tasks)) = groups_rx.recv().await {
                for (patient, upto) in group {
                    let started = Instant::now();
                    let next = match local {
                        Some(_) => Patient::Local(patient, upto),
                        None => self.read_remote(patient, upto, &work).await?,
                    };
                    reading += started.elapsed();
                    let started = Instant::now();
                    if tx.send((next, tasks.clone())).await.is_err() {
                        return Ok(()); // the workers stopped: their error says why
                    }
                    queued += started.elapsed();
                }
            }
            Ok::<(), Status>(())
        };
        let (found, handed) = tokio::join!(find, hand_over);
        let mut worked = Vec::new();
        for w in workers {
            worked.push(w.await.map_err(errors::fhir_export_failed)??);
        }
        found.and(handed)?;
        let synced = started.elapsed();
        self.progress("recording the export".into())?;
        let covered: Vec<String> = worked.iter().flat_map(|w| w.covered.clone()).collect();
        let workers: Vec<String> = worked
            .iter()
            .map(|w| {
                let s = |d: Duration| format!("{:.2}", d.as_secs_f64());
                [w.waited, w.read, w.mapped, w.wrote, w.tasks, w.synced]
                    .map(s)
                    .join("/")
            })
            .collect();
        let mut listed: Vec<Listed> = worked.into_iter().flat_map(|w| w.listed).collect();
        listed.sort_by(|a, b| (bulk::order(a.1), &a.0).cmp(&(bulk::order(b.1), &b.0)));
        self.record(&covered, &listed).await?;
        // Where the time went, for whoever tunes exports (`journey bench fhir`).
        tracing::info!(
            patients = covered.len(),
            log_scan_s = scanned.as_secs_f64(),
            deciding_or_reading_s = (deciding + reading).as_secs_f64(),
            waiting_for_workers_s = queued.as_secs_f64(),
            workers_waiting_reading_mapping_writing_tasks_syncing_s = %workers.join(" "),
            until_files_synced_s = synced.as_secs_f64(),
            until_recorded_s = started.elapsed().as_secs_f64(),
            "FHIR export written"
        );
        let manifest = bulk::manifest(
            &transaction_time,
            &self.request,
            self.api.auth.is_some(),
            &self.files_url,
            &listed,
        );
        self.progress("writing the manifest".into())?;
        let tmp = self.folder.join(format!("{MANIFEST}.part"));
        write_private(&tmp, manifest.to_string().as_bytes()).map_err(errors::fhir_export_failed)?;
        std::fs::rename(&tmp, self.folder.join(MANIFEST)).map_err(errors::fhir_export_failed)?;
        if let Ok(dir) = std::fs::File::open(&self.folder) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// A patient's events from the remote log, up to `upto`, for a worker; a patient whose
    /// stream the log refuses goes to the error file, but the export stops when the log is
    /// unreachable (the whole export is then to be asked again).
    async fn read_remote(
        &self,
        patient: String,
        upto: u64,
        work: &Work,
    ) -> Result<Patient, Status> {
        if work.unreadable.as_deref() == Some(patient.as_str()) {
            let why = format!("{UNREADABLE_FAULT} names this patient");
            return Ok(Patient::Unreadable(patient, why));
        }
        match self.api.log.patient(&patient).await {
            Ok(mut events) => {
                events.retain(|e| e.position <= upto);
                Ok(Patient::Read(patient, events))
            }
            Err(s) if s.code() == tonic::Code::Unavailable => Err(s),
            Err(s) => Ok(Patient::Unreadable(patient, s.message().to_string())),
        }
    }

    /// Whether `e` was recorded at or after `_since` (always, without it).
    fn changed(&self, e: &Event) -> bool {
        match &self.ask.since {
            None => true,
            Some(since) => recorded(e).as_deref() >= Some(since.as_str()),
        }
    }

    /// Of `patients` (first found in a batch of the log, in order), those the job exports, each
    /// with the position up to which its events are: every one up to `head`, or, for a group,
    /// those the coordination view puts in the territory for the caller (a discharge there, the
    /// caller's organisation not refused: what `Coordination.FollowUp` checks for one patient, in
    /// one statement per `IN` list), up to what the view has folded (fail closed while it lags).
    async fn members(
        &self,
        patients: Vec<String>,
        head: u64,
    ) -> Result<Vec<(String, u64)>, Status> {
        let (Scope::Group(territory), Some(view)) = (&self.scope, &self.api.coordination) else {
            return Ok(patients.into_iter().map(|p| (p, head)).collect());
        };
        if patients.is_empty() {
            return Ok(Vec::new());
        }
        let upto = head.min(view.runner.watch().borrow().checkpoint);
        let organisation = consent::scope(self.caller.as_ref());
        let keys: Vec<&str> = patients.iter().map(String::as_str).collect();
        let members = patient::members_of(
            &view.runner.db.pool,
            &view.runner.live_prefix(),
            &keys,
            territory,
            organisation.as_deref(),
        )
        .await
        .map_err(errors::read_model_error)?;
        Ok(patients
            .into_iter()
            .filter(|p| members.contains(p))
            .map(|p| (p, upto))
            .collect())
    }

    /// The export in the access log, with the patients it covered (in records of at most the
    /// log's list size), before any file can be read.
    async fn record(&self, covered: &[String], listed: &[Listed]) -> Result<(), Status> {
        let Some(log) = &self.api.access else {
            return Err(errors::read_unrecorded(&self.call));
        };
        let total: u64 = listed
            .iter()
            .filter(|(_, kind, _)| *kind != bulk::ERROR_KIND)
            .map(|(_, _, n)| n)
            .sum();
        let chunks: Vec<&[String]> = match covered.is_empty() {
            true => vec![&[]],
            false => covered
                .chunks(journey_projections::access_log::PATIENTS)
                .collect(),
        };
        for chunk in chunks {
            let access = Access {
                caller: self.caller.as_ref(),
                call: &self.call,
                patients: chunk,
                purpose: &self.purpose,
                detail: format!(
                    "Bulk Data export of {} patients, {total} resources: {}",
                    covered.len(),
                    self.request
                ),
                peer: self.peer,
                ..Default::default()
            };
            audited(Some(log), access, Ok(())).await?;
        }
        Ok(())
    }
}

/// An event's recorded time as `meta.lastUpdated` writes it.
fn recorded(e: &Event) -> Option<String> {
    journey_fhir::provenance::last_updated(e)
}
