//! A Bulk Data export at work: the patients found in the log, each one's resources written to
//! its type's file, the access-log record, then the manifest.
use super::{Job, JobState, Scope, MANIFEST, SCAN_BATCH};
use crate::{
    access_log::{audited, Access},
    errors,
    fhir_api::{request::ExportAsk, response::provenance, FhirApi},
    files,
    principal::Principal,
};
use journey_fhir::{bulk, Resource};
use journey_log_access::EventSource;
use journey_proto::v1::{Event, FollowUpRequest};
use std::{
    collections::{BTreeMap, HashSet},
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path as FsPath, PathBuf},
    sync::{atomic::Ordering, Arc, Mutex},
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
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    count: u64,
}

/// Mapping workers: the second core maps while the log is read.
const WORKERS: usize = 2;
/// Patients read ahead of the workers, at most.
const QUEUED: usize = 8;

/// The patients read, waiting for a worker.
type Queue = Mutex<tokio::sync::mpsc::Receiver<(String, Vec<Event>)>>;

/// What a worker wrote: its file of each type, and the patients it covered.
struct Written {
    outputs: BTreeMap<&'static str, Output>,
    covered: Vec<String>,
}

/// A worker: maps each patient it takes from `queue` and writes the resources to its own file
/// of each type (`<Type>.<worker>.part`), until the queue closes.
fn map_and_write(
    worker: usize,
    folder: &FsPath,
    ask: &ExportAsk,
    queue: &Queue,
) -> Result<Written, Status> {
    let mut w = Written {
        outputs: BTreeMap::new(),
        covered: Vec::new(),
    };
    loop {
        let next = queue.lock().unwrap().blocking_recv();
        let Some((patient, events)) = next else { break };
        let resources = resources(ask, &patient, &events);
        if resources.is_empty() {
            continue;
        }
        w.covered.push(patient);
        for r in resources {
            let out = match w.outputs.entry(r.kind) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let path = folder.join(format!("{}.{worker}.part", r.kind));
                    let f = create_private(&path).map_err(errors::fhir_export_failed)?;
                    v.insert(Output {
                        path,
                        file: std::io::BufWriter::with_capacity(256 * 1024, f),
                        count: 0,
                    })
                }
            };
            serde_json::to_writer(&mut out.file, &r.body).map_err(errors::fhir_export_failed)?;
            out.file
                .write_all(b"\n")
                .map_err(errors::fhir_export_failed)?;
            out.count += 1;
        }
    }
    Ok(w)
}

/// A patient's resources the job writes: of the types asked, changed since `_since`.
fn resources(ask: &ExportAsk, patient: &str, events: &[Event]) -> Vec<Resource> {
    bulk::selected(ask, journey_fhir::resources(patient, events), || {
        events.iter().map(provenance).collect()
    })
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
        let (head, _) = self.api.log.head().await?;
        let patients = self.patients(head).await?;
        // Read here, mapped and written by the workers: at most QUEUED patients wait between.
        let (tx, rx) = tokio::sync::mpsc::channel::<(String, Vec<Event>)>(QUEUED);
        let queue = Arc::new(Mutex::new(rx));
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (folder, ask, queue) = (self.folder.clone(), self.ask.clone(), queue.clone());
                tokio::task::spawn_blocking(move || map_and_write(w, &folder, &ask, &queue))
            })
            .collect();
        let read = async {
            for (n, patient) in patients.iter().enumerate() {
                if n % 16 == 0 {
                    self.progress(format!(
                        "patients: {n} of {} ({}%)",
                        patients.len(),
                        50 + 50 * n / patients.len().max(1)
                    ))?;
                }
                if let Some(events) = self.events_of(patient, head).await? {
                    if tx.send((patient.clone(), events)).await.is_err() {
                        break; // the workers stopped: their error says why
                    }
                }
            }
            Ok::<(), Status>(())
        };
        let read = read.await;
        drop(tx);
        let mut written = Vec::new();
        for w in workers {
            written.push(w.await.map_err(errors::fhir_export_failed)??);
        }
        read?;
        self.progress("writing the files".into())?;
        let covered: Vec<String> = written.iter().flat_map(|w| w.covered.clone()).collect();
        let listed = self.join(written)?;
        self.record(&covered, &listed).await?;
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

    /// The patients with an event up to `head` (recorded at or after `_since`, when given), in
    /// the order of their first such event: the log read in batches, only the ids kept.
    async fn patients(&self, head: u64) -> Result<Vec<String>, Status> {
        let mut source = self
            .api
            .log
            .source()
            .await
            .map_err(errors::fhir_export_failed)?;
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let mut from = 1;
        while from <= head {
            self.progress(format!(
                "reading the log: {} of {head} events ({}%)",
                from - 1,
                50 * (from - 1) / head.max(1)
            ))?;
            let batch = source
                .range(from, head, SCAN_BATCH)
                .await
                .map_err(errors::fhir_export_failed)?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for e in batch {
                if self.changed(&e) && !seen.contains(&e.patient_id) {
                    seen.insert(e.patient_id.clone());
                    order.push(e.patient_id);
                }
            }
        }
        Ok(order)
    }

    /// Whether `e` was recorded at or after `_since` (always, without it).
    fn changed(&self, e: &Event) -> bool {
        match &self.ask.since {
            None => true,
            Some(since) => recorded(e).as_deref() >= Some(since.as_str()),
        }
    }

    /// The patient's events up to `head` the job may export (`None`: the patient is not of the
    /// group, or the coordinator may not read it).
    async fn events_of(&self, patient: &str, head: u64) -> Result<Option<Vec<Event>>, Status> {
        let mut upto = head;
        if let (Scope::Group(territory), Some(view)) = (&self.scope, &self.api.coordination) {
            let req = FollowUpRequest {
                patient_id: patient.to_string(),
                as_of: None,
            };
            match view.follow_up_of(&req, self.caller.as_ref()).await {
                Ok(f) if f.discharges.iter().any(|d| &d.territory == territory) => {
                    // Fail closed while the view lags, as a read does.
                    upto = upto.min(view.runner.watch().borrow().checkpoint);
                }
                Ok(_) => return Ok(None),
                Err(s)
                    if matches!(
                        s.code(),
                        tonic::Code::NotFound | tonic::Code::PermissionDenied
                    ) =>
                {
                    return Ok(None)
                }
                Err(s) => return Err(s),
            }
        }
        let mut events = self.api.log.patient(patient).await?;
        events.retain(|e| e.position <= upto);
        Ok((!events.is_empty()).then_some(events))
    }

    /// Each type's files of the workers joined into `<Type>.ndjson` (synced); each type's count,
    /// in the order of the mapping's types, Provenance last.
    fn join(&self, written: Vec<Written>) -> Result<Vec<(&'static str, u64)>, Status> {
        let mut parts: BTreeMap<&'static str, (Vec<PathBuf>, u64)> = BTreeMap::new();
        for w in written {
            for (kind, out) in w.outputs {
                out.file
                    .into_inner()
                    .map_err(|e| errors::fhir_export_failed(e.error()))?;
                let entry = parts.entry(kind).or_default();
                entry.0.push(out.path);
                entry.1 += out.count;
            }
        }
        let mut listed = Vec::new();
        for (kind, (paths, count)) in parts {
            let whole = self.folder.join(format!("{kind}.part"));
            let mut file = create_private(&whole).map_err(errors::fhir_export_failed)?;
            for p in paths {
                let mut part = std::fs::File::open(&p).map_err(errors::fhir_export_failed)?;
                std::io::copy(&mut part, &mut file).map_err(errors::fhir_export_failed)?;
                std::fs::remove_file(&p).map_err(errors::fhir_export_failed)?;
            }
            file.sync_all().map_err(errors::fhir_export_failed)?;
            std::fs::rename(&whole, self.folder.join(bulk::file_name(kind)))
                .map_err(errors::fhir_export_failed)?;
            listed.push((kind, count));
        }
        listed.sort_by_key(|(k, _)| bulk::order(k));
        Ok(listed)
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
    journey_fhir::resource::meta(e, None)["lastUpdated"]
        .as_str()
        .map(str::to_string)
}
