//! FHIR Bulk Data export (Bulk Data Access IG 2.0, docs/fhir.md): `GET /fhir/$export`,
//! `/fhir/Patient/$export` and `/fhir/Group/{territory}/$export` with `Prefer: respond-async`
//! start a job and answer `202` with its status address (`Content-Location`); the status answers
//! `202` with `X-Progress` while the job runs and `200` with the manifest when it is done; the
//! manifest's files are NDJSON, one per type, read with the same token; `DELETE` on the status
//! address cancels the job and deletes its files.
//!
//! A job reads the whole log in batches through the node's log handle (only the patient ids are
//! kept: with `_since`, those with an event recorded since), then each patient's stream alone,
//! mapped by `journey-fhir` on two blocking threads while the next patients are read: memory holds
//! at most ten patients' events and resources (eight queued, one per thread). Their Tasks come
//! from the coordination view, asked once for each group of up to 256 patients found together in
//! the log (a few statements for the group; two groups may wait, their Tasks asked meanwhile), so
//! memory also holds the discharges of a few groups. A job's files are written in
//! `<folder>/<job>/` (0700, files 0600), each thread its own file of each type, renamed once
//! whole; a patient that cannot be written goes to the error file (OperationOutcome). The
//! patients covered are recorded in the access log; then the manifest is written last, under a
//! temporary name renamed: a job killed half-way leaves no manifest, and its folder is removed at
//! the next start. Jobs and their files are removed an hour after they finished (looked for every
//! minute).
//!
//! Here: the addresses, who may ask, the jobs and their folder; `export/job.rs`: a job at work;
//! `export/scan.rs`: the log scanned for its patients.
mod job;
mod scan;
mod writeback;

use super::{
    request::{export_request, ExportAsk},
    response::{base_url, refusal},
    Asked, FhirApi,
};
use axum::{
    body::Body,
    extract::{Path, State},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use job::{write_private, Run};
use journey_fhir::bulk;
use journey_services::{
    access_log::audited,
    errors, files,
    principal::{Principal, Role},
};
use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, SystemTime},
};
use tonic::Status;

/// How long a finished export's files stay.
const KEPT_FOR: Duration = Duration::from_secs(3600);
/// Exports running at once on a server.
const AT_ONCE: usize = 2;
/// Events read from the log at a time while looking for the patients.
const SCAN_BATCH: usize = 2_000;
/// The manifest's name in a job's folder: present only once the job is whole.
const MANIFEST: &str = "manifest.json";
/// Who asked for the job (its subject), written before anything else.
const OWNER: &str = "owner";

/// The server's exports: their folder, and the jobs of this process.
pub struct Exports {
    dir: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

struct Job {
    owner: String,
    cancelled: AtomicBool,
    state: Mutex<JobState>,
}

enum JobState {
    Running(String),
    Done,
    Failed(String),
}

/// Which patients a job exports.
#[derive(Clone)]
enum Scope {
    System,
    Patients,
    Group(String),
}

impl Exports {
    /// The exports kept in `dir` (made at the first export): made private, cleared of the jobs
    /// a stop cut short (no manifest) and of those expired.
    pub fn open(dir: PathBuf) -> anyhow::Result<Arc<Exports>> {
        if dir.exists() {
            files::private_data_dir(&dir)?;
        }
        let exports = Exports {
            dir,
            jobs: Mutex::new(HashMap::new()),
        };
        exports.sweep(true);
        let exports = Arc::new(exports);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep_every_minute(Arc::downgrade(&exports)));
        }
        Ok(exports)
    }

    /// Removes the folders of expired jobs, and (`at_start`) of jobs without a manifest.
    fn sweep(&self, at_start: bool) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let running: HashSet<String> = self.jobs.lock().unwrap().keys().cloned().collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if running.contains(&name) && !at_start {
                continue;
            }
            let manifest = entry.path().join(MANIFEST);
            let expired = match std::fs::metadata(&manifest).and_then(|m| m.modified()) {
                Ok(t) => t.elapsed().unwrap_or_default() > KEPT_FOR,
                Err(_) => at_start,
            };
            if expired {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(error = %e, folder = %entry.path().display(), "an old export could not be removed");
                }
            }
        }
        let mut jobs = self.jobs.lock().unwrap();
        // A failed job's folder is gone, its reason kept for its status (until cancelled).
        jobs.retain(|id, job| {
            self.dir.join(id).exists() || matches!(*job.state.lock().unwrap(), JobState::Failed(_))
        });
    }

    /// The job `id` of `owner`: in memory, or finished before a restart (its manifest on disk).
    fn job(&self, id: &str, owner: &str) -> Result<Option<Arc<Job>>, Status> {
        let unknown = || errors::fhir_export_unknown(id);
        if !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') || id.is_empty() {
            return Err(unknown());
        }
        if let Some(job) = self.jobs.lock().unwrap().get(id) {
            return match job.owner == owner {
                true => Ok(Some(job.clone())),
                false => Err(unknown()),
            };
        }
        let folder = self.dir.join(id);
        match std::fs::read_to_string(folder.join(OWNER)) {
            Ok(o) if o == owner && folder.join(MANIFEST).exists() => Ok(None),
            _ => Err(unknown()),
        }
    }
}

/// Removes expired exports once a minute while the server runs.
async fn sweep_every_minute(exports: std::sync::Weak<Exports>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(60));
    loop {
        ticker.tick().await;
        let Some(exports) = exports.upgrade() else {
            return;
        };
        exports.sweep(false);
    }
}

/// The caller's subject, the key of its jobs ("" on an `--insecure` server).
fn subject(caller: Option<&Principal>) -> String {
    caller.map(|p| p.subject.clone()).unwrap_or_default()
}

pub(super) async fn system(State(api): State<FhirApi>, parts: Parts) -> Response {
    api.kick_off("fhir/$export", Scope::System, parts).await
}

pub(super) async fn patients(State(api): State<FhirApi>, parts: Parts) -> Response {
    api.kick_off("fhir/Patient/$export", Scope::Patients, parts)
        .await
}

pub(super) async fn group(
    State(api): State<FhirApi>,
    Path(territory): Path<String>,
    parts: Parts,
) -> Response {
    api.kick_off("fhir/Group/$export", Scope::Group(territory), parts)
        .await
}

/// `GET` on a status address: 202 with the progress, 200 with the manifest, or why it failed.
pub(super) async fn status(
    State(api): State<FhirApi>,
    Path(id): Path<String>,
    parts: Parts,
) -> Response {
    let (exports, caller) = match api.export_caller(&parts) {
        Ok(x) => x,
        Err(s) => return refusal(&s),
    };
    exports.sweep(false);
    let job = match exports.job(&id, &subject(caller.as_ref())) {
        Ok(j) => j,
        Err(s) => return refusal(&s),
    };
    let state = job.as_ref().map(|j| match &*j.state.lock().unwrap() {
        JobState::Running(p) => Err(Ok(p.clone())),
        JobState::Failed(e) => Err(Err(e.clone())),
        JobState::Done => Ok(()),
    });
    match state {
        Some(Err(Ok(progress))) => {
            let mut r = StatusCode::ACCEPTED.into_response();
            let h = r.headers_mut();
            h.insert(
                "x-progress",
                HeaderValue::from_str(&progress).unwrap_or(HeaderValue::from_static("running")),
            );
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Some(Err(Err(e))) => refusal(&errors::fhir_export_failed(e)),
        None | Some(Ok(())) => {
            let folder = exports.dir.join(&id);
            let manifest = match std::fs::read(folder.join(MANIFEST)) {
                Ok(m) => m,
                Err(_) => return refusal(&errors::fhir_export_unknown(&id)),
            };
            let expires = std::fs::metadata(folder.join(MANIFEST))
                .and_then(|m| m.modified())
                .map(|t| httpdate(t + KEPT_FOR))
                .unwrap_or_default();
            let mut r = (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                manifest,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&expires) {
                r.headers_mut().insert(header::EXPIRES, v);
            }
            r
        }
    }
}

/// `DELETE` on a status address: the job stops, its files are removed.
pub(super) async fn cancel(
    State(api): State<FhirApi>,
    Path(id): Path<String>,
    parts: Parts,
) -> Response {
    let (exports, caller) = match api.export_caller(&parts) {
        Ok(x) => x,
        Err(s) => return refusal(&s),
    };
    if let Err(s) = exports.job(&id, &subject(caller.as_ref())) {
        return refusal(&s);
    }
    if let Some(job) = exports.jobs.lock().unwrap().remove(&id) {
        job.cancelled.store(true, Ordering::SeqCst);
    }
    let _ = std::fs::remove_dir_all(exports.dir.join(&id));
    StatusCode::ACCEPTED.into_response()
}

/// `GET` on one of a finished job's files: its NDJSON, streamed.
pub(super) async fn file(
    State(api): State<FhirApi>,
    Path((id, name)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let (exports, caller) = match api.export_caller(&parts) {
        Ok(x) => x,
        Err(s) => return refusal(&s),
    };
    let found = exports.job(&id, &subject(caller.as_ref())).and_then(|_| {
        let whole = exports.dir.join(&id).join(MANIFEST).exists();
        match whole && bulk::file_kind(&name).is_some() {
            true => Ok(exports.dir.join(&id).join(&name)),
            false => Err(errors::fhir_export_unknown(&format!("{id}/{name}"))),
        }
    });
    let path = match found {
        Ok(p) => p,
        Err(s) => return refusal(&s),
    };
    let opened = match tokio::fs::File::open(&path).await {
        Ok(f) => f.metadata().await.map(|m| (f, m.len())),
        Err(e) => Err(e),
    };
    match opened {
        Ok((f, length)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/fhir+ndjson".to_string()),
                (header::CONTENT_LENGTH, length.to_string()),
            ],
            Body::from_stream(chunks(f)),
        )
            .into_response(),
        Err(_) => refusal(&errors::fhir_export_unknown(&format!("{id}/{name}"))),
    }
}

/// A file as a stream of chunks.
fn chunks(file: tokio::fs::File) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// An HTTP date (`Expires`).
fn httpdate(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

impl FhirApi {
    /// The exports and the caller of a status, file or cancel request (admins, auditors and
    /// coordinators; the job must be theirs).
    fn export_caller(&self, parts: &Parts) -> Result<(Arc<Exports>, Option<Principal>), Status> {
        let caller = self.caller(&parts.headers)?;
        if let Some(p) = caller
            .as_ref()
            .filter(|p| !matches!(p.role, Role::Coordinator | Role::Auditor | Role::Admin))
        {
            return Err(errors::fhir_role_refused(p));
        }
        let exports = self
            .exports
            .clone()
            .ok_or_else(|| errors::fhir_export_unknown(""))?;
        Ok((exports, caller))
    }

    /// A kick-off: who, what, then the job started and its status address.
    async fn kick_off(&self, call: &str, scope: Scope, parts: Parts) -> Response {
        let asked = Asked::new(call.to_string(), parts);
        let caller = match self.caller(&asked.headers) {
            Ok(c) => c,
            Err(s) => {
                self.refused_at_door(asked.access(None, "", s.message()), &s)
                    .await;
                return refusal(&s);
            }
        };
        if let Some(p) = caller
            .as_ref()
            .filter(|p| !matches!(p.role, Role::Coordinator | Role::Auditor | Role::Admin))
        {
            let s = errors::fhir_role_refused(p);
            self.refused_at_door(asked.access(Some(p), "", s.message()), &s)
                .await;
            return refusal(&s);
        }
        let decided = self.export_allowed(caller.as_ref(), &scope, &asked);
        let detail = decided.as_ref().err().map_or("", |s| s.message());
        let access = asked.access(caller.as_ref(), "", detail);
        let decided = match decided {
            // Accepted kick-offs are recorded when the job knows whom it covered.
            Ok(x) => Ok(x),
            Err(s) => match &self.access {
                Some(log) => audited(Some(log), access, Err(s)).await,
                None => Err(errors::read_unrecorded(call)),
            },
        };
        let (exports, ask) = match decided {
            Ok(x) => x,
            Err(s) => return refusal(&s),
        };
        exports.sweep(false);
        let id = uuid::Uuid::new_v4().to_string();
        let folder = exports.dir.join(&id);
        // The folder is made at the first export (a server that never exports has none).
        let made = files::private_data_dir(&exports.dir)
            .map_err(std::io::Error::other)
            .and_then(|()| files::create_dirs(&folder))
            .and_then(|()| write_private(&folder.join(OWNER), subject(caller.as_ref()).as_bytes()));
        if let Err(e) = made {
            return refusal(&errors::fhir_export_failed(e));
        }
        let job = Arc::new(Job {
            owner: subject(caller.as_ref()),
            cancelled: AtomicBool::new(false),
            state: Mutex::new(JobState::Running("starting".into())),
        });
        exports.jobs.lock().unwrap().insert(id.clone(), job.clone());
        let base = base_url(&asked.headers, &asked.extensions);
        let run = Run {
            api: self.clone(),
            job: job.clone(),
            folder,
            scope,
            ask: Arc::new(ask),
            caller,
            call: call.to_string(),
            purpose: asked
                .headers
                .get("x-journey-purpose")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
            peer: asked.peer(),
            request: format!("{}{}", base.trim_end_matches("/fhir"), asked.uri),
            files_url: format!("{base}/_export/{id}"),
        };
        tokio::spawn(async move {
            let outcome = run.go().await;
            let mut state = run.job.state.lock().unwrap();
            match outcome {
                Ok(()) => *state = JobState::Done,
                Err(e) => {
                    if !run.job.cancelled.load(Ordering::SeqCst) {
                        tracing::warn!(error = %e.message(), "a FHIR export failed");
                    }
                    let _ = std::fs::remove_dir_all(&run.folder);
                    *state = JobState::Failed(e.message().to_string());
                }
            }
        });
        let mut r = StatusCode::ACCEPTED.into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{base}/_export/{id}")) {
            r.headers_mut().insert(header::CONTENT_LOCATION, v);
        }
        r
    }

    /// Whether the caller may start this export now, and what it asks.
    fn export_allowed(
        &self,
        caller: Option<&Principal>,
        scope: &Scope,
        asked: &Asked,
    ) -> Result<(Arc<Exports>, ExportAsk), Status> {
        let prefer = asked
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim() == "respond-async"));
        if !prefer {
            return Err(errors::invalid(
                "Prefer",
                "an export runs in the background: send the header Prefer: respond-async",
            ));
        }
        let ask = export_request(asked.uri.query())?;
        if let Some(p) = caller.filter(|p| p.role == Role::Coordinator) {
            let Scope::Group(territory) = scope else {
                return Err(errors::fhir_export_refused(p));
            };
            let Some(own) = &p.territory else {
                return Err(errors::no_territory(p));
            };
            if territory != own {
                return Err(errors::not_your_territory(territory, own));
            }
        }
        if let (Scope::Group(_), None) = (scope, &self.coordination) {
            return Err(match caller {
                Some(p) => errors::fhir_no_coordination_view(p),
                None => errors::invalid(
                    "Group",
                    "this server keeps no coordination view, so it knows no territory",
                ),
            });
        }
        if self.access.is_none() {
            return Err(errors::read_unrecorded(&asked.call));
        }
        let exports = self
            .exports
            .clone()
            .ok_or_else(|| errors::fhir_export_failed("this server has no folder for exports"))?;
        let running = exports
            .jobs
            .lock()
            .unwrap()
            .values()
            .filter(|j| matches!(*j.state.lock().unwrap(), JobState::Running(_)))
            .count();
        if running >= AT_ONCE {
            return Err(errors::fhir_exports_busy(running));
        }
        Ok((exports, ask))
    }
}
