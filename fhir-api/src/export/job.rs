//! A Bulk Data export at work: the patients found in the log, each one's resources written to
//! its type's file, the access-log record, then the manifest.
use super::{Job, JobState, Scope, MANIFEST, SCAN_BATCH};
use crate::{request::ExportAsk, FhirApi};
use journey_event_log::EventLog;
use journey_fhir::bulk;
use journey_log_access::EventSource;
use journey_proto::v1::{Event, FollowUpRequest};
use journey_services::{
    access_log::{audited, Access},
    errors, files,
    log_handle::LogHandle,
    principal::Principal,
};
use std::{
    collections::{BTreeMap, HashSet},
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
    file: std::io::BufWriter<std::fs::File>,
    count: u64,
}

/// Mapping workers: both cores read, map and write.
const WORKERS: usize = 2;
/// Patients queued ahead of the workers, at most.
const QUEUED: usize = 8;

/// A patient for a worker: its events already read (a remote log), or the position up to which
/// the worker reads them itself from the log of this process.
enum Patient {
    Read(String, Vec<Event>),
    Local(String, u64),
}

/// The patients waiting for a worker.
type Queue = Mutex<tokio::sync::mpsc::Receiver<Patient>>;

/// The export's files, one per type (`<Type>.part` until whole), shared by the workers: each
/// writes a patient's resources of a type in one go under the lock, so no file is ever joined.
struct Files {
    folder: PathBuf,
    outputs: Mutex<BTreeMap<&'static str, Output>>,
}

impl Files {
    /// Appends a patient's `lines` of `kind` (`n` resources).
    fn append(&self, kind: &'static str, lines: &[u8], n: u64) -> std::io::Result<()> {
        let mut outputs = self.outputs.lock().unwrap();
        let out = match outputs.entry(kind) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let f = create_private(&self.folder.join(format!("{kind}.part")))?;
                v.insert(Output {
                    file: std::io::BufWriter::with_capacity(256 * 1024, f),
                    count: 0,
                })
            }
        };
        out.file.write_all(lines)?;
        out.count += n;
        Ok(())
    }

    /// Each file flushed, synced and renamed `<Type>.ndjson`; each type's count, in the order
    /// of the mapping's types, Provenance last.
    fn finish(self) -> std::io::Result<Vec<(&'static str, u64)>> {
        let mut listed = Vec::new();
        for (kind, out) in self.outputs.into_inner().unwrap() {
            let file = out.file.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(
                self.folder.join(format!("{kind}.part")),
                self.folder.join(bulk::file_name(kind)),
            )?;
            listed.push((kind, out.count));
        }
        listed.sort_by_key(|(k, _)| bulk::order(k));
        Ok(listed)
    }
}

/// What a worker did: the patients it covered, and where its time went (waiting for patients,
/// reading their streams from the log in this process, mapping them, writing their resources).
#[derive(Default)]
struct Worked {
    covered: Vec<String>,
    waited: Duration,
    read: Duration,
    mapped: Duration,
    wrote: Duration,
}

/// A worker: takes each patient from `queue` (reading its events from `log` when it is in this
/// process), maps it and writes its resources to the export's files, until the queue closes.
fn map_and_write(
    log: Option<&EventLog>,
    files: &Files,
    ask: &ExportAsk,
    queue: &Queue,
) -> Result<Worked, Status> {
    let mut w = Worked::default();
    // A patient's lines of each type, written to the files in one go.
    let mut lines: BTreeMap<&'static str, (Vec<u8>, u64)> = BTreeMap::new();
    loop {
        let started = Instant::now();
        let next = queue.lock().unwrap().blocking_recv();
        w.waited += started.elapsed();
        let started = Instant::now();
        let (patient, events) = match next {
            None => break,
            Some(Patient::Read(patient, events)) => (patient, events),
            Some(Patient::Local(patient, upto)) => {
                let log =
                    log.ok_or_else(|| errors::fhir_export_failed("no log in this process"))?;
                let stored = log
                    .read_stream(&patient, 1, usize::MAX)
                    .map_err(|e| errors::fhir_export_failed(e.0))?;
                let mut events = Vec::with_capacity(stored.len());
                for s in stored {
                    let e = s.decode().map_err(|e| errors::fhir_export_failed(e.0))?;
                    if e.position <= upto {
                        events.push(e);
                    }
                }
                (patient, events)
            }
        };
        w.read += started.elapsed();
        let started = Instant::now();
        let resources = bulk::selected(ask, &patient, &events);
        w.mapped += started.elapsed();
        if resources.is_empty() {
            continue;
        }
        let started = Instant::now();
        w.covered.push(patient);
        for r in &resources {
            let (buf, n) = lines.entry(r.kind()).or_default();
            r.write(buf).map_err(errors::fhir_export_failed)?;
            buf.push(b'\n');
            *n += 1;
        }
        for (kind, (buf, n)) in lines.iter_mut().filter(|(_, (_, n))| *n > 0) {
            files
                .append(kind, buf, *n)
                .map_err(errors::fhir_export_failed)?;
            buf.clear();
            *n = 0;
        }
        w.wrote += started.elapsed();
    }
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
        let (mut scanned, mut reading, mut queued) =
            (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        // A log in this process is read by the workers themselves (both cores); a remote one here.
        let local = match &self.api.log {
            LogHandle::InProcess { log, .. } => Some(log.clone()),
            LogHandle::Remote { .. } => None,
        };
        let files = Arc::new(Files {
            folder: self.folder.clone(),
            outputs: Mutex::new(BTreeMap::new()),
        });
        // At most QUEUED patients wait between here and the workers.
        let (tx, rx) = tokio::sync::mpsc::channel::<Patient>(QUEUED);
        let queue = Arc::new(Mutex::new(rx));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (files, ask, queue) = (files.clone(), self.ask.clone(), queue.clone());
                let log = local.clone();
                tokio::task::spawn_blocking(move || {
                    map_and_write(log.as_deref(), &files, &ask, &queue)
                })
            })
            .collect();
        // The log scanned in batches for the patients (only their ids kept), each handed to the
        // workers as soon as found: they map while the scan goes on.
        let read = async {
            let mut source = self
                .api
                .log
                .source()
                .await
                .map_err(errors::fhir_export_failed)?;
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
                let batch = source
                    .range(from, head, SCAN_BATCH)
                    .await
                    .map_err(errors::fhir_export_failed)?;
                scanned += started.elapsed();
                let Some(last) = batch.last() else { break };
                from = last.position + 1;
                for e in batch {
                    if !self.changed(&e) || seen.contains(&e.patient_id) {
                        continue;
                    }
                    seen.insert(e.patient_id.clone());
                    let patient = e.patient_id;
                    let started = Instant::now();
                    let Some(upto) = self.upto(&patient, head).await? else {
                        continue;
                    };
                    let next = match local {
                        Some(_) => Patient::Local(patient, upto),
                        None => {
                            let mut events = self.api.log.patient(&patient).await?;
                            events.retain(|e| e.position <= upto);
                            Patient::Read(patient, events)
                        }
                    };
                    reading += started.elapsed();
                    let started = Instant::now();
                    if tx.send(next).await.is_err() {
                        return Ok(()); // the workers stopped: their error says why
                    }
                    queued += started.elapsed();
                }
            }
            Ok::<(), Status>(())
        };
        let read = read.await;
        drop(tx);
        let mut worked = Vec::new();
        for w in workers {
            worked.push(w.await.map_err(errors::fhir_export_failed)??);
        }
        read?;
        let mapped = started.elapsed();
        self.progress("writing the files".into())?;
        let covered: Vec<String> = worked.iter().flat_map(|w| w.covered.clone()).collect();
        let workers: Vec<String> = worked
            .iter()
            .map(|w| {
                let s = |d: Duration| format!("{:.2}", d.as_secs_f64());
                [w.waited, w.read, w.mapped, w.wrote].map(s).join("/")
            })
            .collect();
        let files = Arc::try_unwrap(files)
            .map_err(|_| errors::fhir_export_failed("a worker still writes"))?;
        let listed = files.finish().map_err(errors::fhir_export_failed)?;
        let synced = started.elapsed();
        self.record(&covered, &listed).await?;
        // Where the time went, for whoever tunes exports (`journey bench fhir`).
        tracing::info!(
            patients = covered.len(),
            log_scan_s = scanned.as_secs_f64(),
            deciding_or_reading_s = reading.as_secs_f64(),
            waiting_for_workers_s = queued.as_secs_f64(),
            until_mapped_s = mapped.as_secs_f64(),
            workers_waiting_reading_mapping_writing_s = %workers.join(" "),
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

    /// Whether `e` was recorded at or after `_since` (always, without it).
    fn changed(&self, e: &Event) -> bool {
        match &self.ask.since {
            None => true,
            Some(since) => recorded(e).as_deref() >= Some(since.as_str()),
        }
    }

    /// The position up to which the job exports the patient's events (`None`: the patient is
    /// not of the group, or the coordinator may not read it).
    async fn upto(&self, patient: &str, head: u64) -> Result<Option<u64>, Status> {
        let (Scope::Group(territory), Some(view)) = (&self.scope, &self.api.coordination) else {
            return Ok(Some(head));
        };
        let req = FollowUpRequest {
            patient_id: patient.to_string(),
            as_of: None,
        };
        match view.follow_up_of(&req, self.caller.as_ref()).await {
            // Fail closed while the view lags, as a read does.
            Ok(f) if f.discharges.iter().any(|d| &d.territory == territory) => {
                Ok(Some(head.min(view.runner.watch().borrow().checkpoint)))
            }
            Ok(_) => Ok(None),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::NotFound | tonic::Code::PermissionDenied
                ) =>
            {
                Ok(None)
            }
            Err(s) => Err(s),
        }
    }

    /// The export in the access log, with the patients it covered (in records of at most the
    /// log's list size), before any file can be read.
    async fn record(&self, covered: &[String], listed: &[(&str, u64)]) -> Result<(), Status> {
        let Some(log) = &self.api.access else {
            return Err(errors::read_unrecorded(&self.call));
        };
        let total: u64 = listed.iter().map(|(_, n)| n).sum();
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
