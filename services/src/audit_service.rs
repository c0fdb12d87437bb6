//! The gRPC `Audit` service (DESIGN.md §5 "Audit trail"): a patient's timeline, the bi-temporal
//! state "as of", chain verification against an anchored head, and a FHIR R4 export.
//!
//! It reads the log through [`LogAccess`]: in `journey up` the in-process log (through the very
//! `EventLog` service implementation partners call), in `journey serve audit` a remote log over
//! gRPC. The state fold is pure and lives in `journey_domain::as_of`.
//!
//! **Anchoring.** The chain proves that no stored event was altered, removed or reordered, but a
//! log cut at its tail still looks whole. The [`AnchorKeeper`] therefore writes the chain head
//! (position, hash) to a file outside the log folder (default `<data_dir>.anchor.json`), every
//! `--anchor-interval-ms` and at shutdown, atomically (temporary file, fsync, rename, fsync of the
//! folder). The anchor only moves forward, and only after the previous anchor was found again in the
//! log. At startup, and before every move, the log is checked against it: a log that ends before
//! the anchored position, or holds another event there, is reported loudly, the anchor is frozen
//! (never overwritten by the shorter log) and `Verify` reports the first missing position.
use crate::{errors, hex::hex, log_service::LogService, projections_service::LogAccess};
use anyhow::Context;
use futures::StreamExt;
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        self, audit_server::Audit, event::Payload, event_log_client::EventLogClient,
        event_log_server::EventLog as LogApi, AccessRecord, AccessesRequest, AccessesResponse,
        AsOfRequest, AsOfResponse, AuditAnchor, AuditVerifyRequest, AuditVerifyResponse, Event,
        EventBatch, ExportLine, ExportRequest, HeadRequest, ReadStreamRequest, TimelineEntry,
        TimelineRequest, VerifyRequest, VerifyResponse,
    },
    EventType,
};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tokio::sync::{mpsc, watch};
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{transport::Channel, Request, Response, Status};

type Hash = [u8; 32];
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Flags of `journey up` for the anchored chain head.
#[derive(Debug, Clone, clap::Args)]
pub struct AnchorArgs {
    /// File the chain head is anchored in, outside the log folder (default: `<data-dir>.anchor.json`
    /// next to the data folder). Move it aside only to accept a log that is behind it.
    #[arg(long, env = "JOURNEY_ANCHOR_FILE")]
    pub anchor_file: Option<PathBuf>,
    /// How often the chain head is anchored (when it moved), in milliseconds; also at shutdown.
    #[arg(long, env = "JOURNEY_ANCHOR_INTERVAL_MS", default_value_t = 500)]
    pub anchor_interval_ms: u64,
}

impl Default for AnchorArgs {
    fn default() -> Self {
        AnchorArgs {
            anchor_file: None,
            anchor_interval_ms: 500,
        }
    }
}

impl AnchorArgs {
    /// The settings from `JOURNEY_ANCHOR_FILE` and `JOURNEY_ANCHOR_INTERVAL_MS` alone (for the
    /// commands that open the log without these flags, e.g. `journey serve event-log`).
    pub fn from_env() -> AnchorArgs {
        let mut args = AnchorArgs::default();
        if let Some(p) = std::env::var_os("JOURNEY_ANCHOR_FILE").filter(|p| !p.is_empty()) {
            args.anchor_file = Some(PathBuf::from(p));
        }
        if let Some(ms) = std::env::var("JOURNEY_ANCHOR_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            args.anchor_interval_ms = ms;
        }
        args
    }

    /// The anchor file for a log in `data_dir`.
    pub fn path_for(&self, data_dir: &Path) -> PathBuf {
        self.anchor_file.clone().unwrap_or_else(|| {
            let mut s = data_dir.as_os_str().to_owned();
            if s.len() > 1 && s.to_string_lossy().ends_with('/') {
                s = data_dir.components().collect::<PathBuf>().into_os_string();
            }
            s.push(".anchor.json");
            PathBuf::from(s)
        })
    }
}

/// `journey serve audit`: the Audit service alone, over a remote log.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditServeConfig {
    /// The event log's gRPC address.
    #[arg(
        long,
        env = "JOURNEY_LOG_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub log_url: String,
    /// Anchor the log's head in this file (kept by this process, apart from the log's machine).
    /// Unset = no anchor kept here (Verify then uses only anchors given in the request).
    #[arg(long, env = "JOURNEY_ANCHOR_FILE")]
    pub anchor_file: Option<PathBuf>,
    /// How often the log's head is anchored, in milliseconds.
    #[arg(long, env = "JOURNEY_ANCHOR_INTERVAL_MS", default_value_t = 1000)]
    pub anchor_interval_ms: u64,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50053")]
    pub grpc_addr: String,
    /// HTTP listen address for `/status` (port 0 = any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8083")]
    pub http_addr: String,
    /// Token this service presents to the event-log service (a `service` or `auditor` key or JWT).
    #[arg(long, env = "JOURNEY_LOG_TOKEN", hide_env_values = true)]
    pub log_token: Option<String>,
    /// The access log (who read which patient; `Audit.Accesses` answers from it):
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`. Give the read sides the same
    /// `--access-log-url` so that one access log holds every service's reads.
    #[arg(
        long,
        env = "JOURNEY_ACCESS_LOG_URL",
        default_value = "sqlite://./data/access-log.sqlite"
    )]
    pub access_log_url: String,
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,
}

// --- the log, in process or remote --------------------------------------------------------------

/// The log as the audit service reads it: the same `EventLog` API in process or over gRPC.
#[derive(Clone)]
pub enum Source {
    InProcess(Arc<LogService>),
    Remote(
        EventLogClient<
            tonic::service::interceptor::InterceptedService<Channel, crate::client::Token>,
        >,
    ),
}

impl Source {
    /// `token` is presented to a remote log (unused in process).
    pub fn new(access: &LogAccess, token: Option<&str>) -> anyhow::Result<Source> {
        Ok(match access {
            LogAccess::InProcess(log) => {
                Source::InProcess(Arc::new(LogService::new(log.clone(), 0, 0)))
            }
            LogAccess::Remote(url) => {
                let channel = tonic::transport::Endpoint::from_shared(url.clone())
                    .with_context(|| format!("bad log address {url:?}"))?
                    .connect_lazy();
                Source::Remote(
                    EventLogClient::with_interceptor(channel, crate::client::token(token)?)
                        .max_decoding_message_size(64 * 1024 * 1024)
                        .max_encoding_message_size(64 * 1024 * 1024),
                )
            }
        })
    }

    pub async fn head(&self) -> Result<(u64, Hash), Status> {
        let r = match self {
            Source::InProcess(s) => s.head(Request::new(HeadRequest {})).await?,
            Source::Remote(c) => c.clone().head(HeadRequest {}).await?,
        }
        .into_inner();
        Ok((r.position, hash32(&r.hash).unwrap_or([0; 32])))
    }

    pub async fn verify(&self, req: VerifyRequest) -> Result<VerifyResponse, Status> {
        Ok(match self {
            Source::InProcess(s) => s.verify(Request::new(req)).await?,
            Source::Remote(c) => c.clone().verify(req).await?,
        }
        .into_inner())
    }

    /// One patient's events from `from_version`, in batches.
    pub async fn read_stream(
        &self,
        patient_id: &str,
        from_version: u64,
    ) -> Result<BoxStream<EventBatch>, Status> {
        let req = ReadStreamRequest {
            patient_id: patient_id.to_owned(),
            from_version,
            batch_size: 0,
        };
        Ok(match self {
            Source::InProcess(s) => s.read_stream(Request::new(req)).await?.into_inner(),
            Source::Remote(c) => Box::pin(c.clone().read_stream(req).await?.into_inner()),
        })
    }

    /// Every event of one patient, oldest first.
    pub async fn patient(&self, patient_id: &str) -> Result<Vec<Event>, Status> {
        let mut stream = self.read_stream(patient_id, 1).await?;
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            out.extend(batch?.events);
        }
        Ok(out)
    }

    async fn exists(&self, patient_id: &str) -> Result<bool, Status> {
        let mut stream = self.read_stream(patient_id, 1).await?;
        match stream.next().await {
            Some(batch) => Ok(!batch?.events.is_empty()),
            None => Ok(false),
        }
    }
}

fn hash32(bytes: &[u8]) -> Option<Hash> {
    bytes.try_into().ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [_, _] => u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok(),
            _ => None,
        })
        .collect()
}

// --- the anchor -------------------------------------------------------------------------------

/// An anchored chain head, as kept in the anchor file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    pub position: u64,
    pub hash: Hash,
    /// When it was written (Unix seconds).
    pub anchored_at: i64,
}

impl Anchored {
    fn to_json(&self, log: &str) -> Value {
        json!({
            "position": self.position,
            "hash": hex(&self.hash),
            "anchored_at": rfc3339(&Timestamp { seconds: self.anchored_at, nanos: 0 }),
            "anchored_at_unix": self.anchored_at,
            "log": log,
        })
    }

    fn from_json(v: &Value) -> anyhow::Result<Anchored> {
        let position = v["position"].as_u64().context("no \"position\"")?;
        let hash = v["hash"]
            .as_str()
            .and_then(unhex)
            .and_then(|h| hash32(&h))
            .context("\"hash\" is not 64 hex digits")?;
        Ok(Anchored {
            position,
            hash,
            anchored_at: v["anchored_at_unix"].as_i64().unwrap_or(0),
        })
    }
}

/// Keeps the chain head anchored in a file outside the log.
pub struct AnchorKeeper {
    path: PathBuf,
    /// What the file says the log is (data folder or URL), for people reading it.
    log: String,
    state: Mutex<KeeperState>,
}

#[derive(Default)]
struct KeeperState {
    /// Why the anchor stopped moving: the log no longer holds the anchored head.
    frozen: Option<String>,
    last: Option<Anchored>,
}

impl AnchorKeeper {
    pub fn new(path: PathBuf, log: String) -> AnchorKeeper {
        AnchorKeeper {
            path,
            log,
            state: Mutex::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The anchor on disk (`None` when there is none yet).
    pub fn read(&self) -> anyhow::Result<Option<Anchored>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", self.path.display()))?;
        Anchored::from_json(&v)
            .map(Some)
            .with_context(|| format!("{} is not an anchor", self.path.display()))
    }

    /// Why the anchor is frozen, if it is.
    pub fn problem(&self) -> Option<String> {
        self.state.lock().expect("anchor lock").frozen.clone()
    }

    fn freeze(&self, problem: String) {
        let mut st = self.state.lock().expect("anchor lock");
        if st.frozen.is_none() {
            tracing::error!(anchor_file = %self.path.display(), problem = %problem, "THE LOG IS BEHIND ITS ANCHOR OR DIFFERS FROM IT");
            eprintln!(
                "\n*** WARNING: the event log does not match its anchored head ***\n*** {problem}\n*** anchor file: {} (kept as evidence; `journey audit verify` reports it)\n*** move that file aside only to accept the log as it is now\n",
                self.path.display()
            );
            st.frozen = Some(problem);
        }
    }

    /// Checks that the log still holds `anchor`; `Some(problem)` when it does not.
    async fn check_against(&self, source: &Source, anchor: &Anchored) -> Result<(), String> {
        let (head, _) = source
            .head()
            .await
            .map_err(|s| format!("cannot read the log head: {}", s.message()))?;
        if anchor.position > head {
            return Err(format!(
                "the log ends at position {head} but its head was anchored at position {} (hash {}): the tail from position {} is missing (truncated, or restored from an older copy)",
                anchor.position,
                hex(&anchor.hash),
                head + 1
            ));
        }
        let r = source
            .verify(VerifyRequest {
                from_position: anchor.position,
                to_position: anchor.position,
                anchor_position: anchor.position,
                anchor_hash: anchor.hash.to_vec(),
            })
            .await
            .map_err(|s| format!("cannot verify the anchor: {}", s.message()))?;
        if r.ok {
            Ok(())
        } else {
            Err(format!(
                "the anchored head (position {}, hash {}) is not in the log: {}",
                anchor.position,
                hex(&anchor.hash),
                r.problem
            ))
        }
    }

    /// At startup: compares the log with the anchor file; a mismatch is reported loudly and
    /// freezes the anchor. Returns the problem, if any.
    pub async fn check_at_start(&self, source: &Source) -> Option<String> {
        let anchor = match self.read() {
            Ok(Some(a)) => a,
            Ok(None) => {
                tracing::info!(anchor_file = %self.path.display(), "no anchor yet: anchoring from now on");
                return None;
            }
            Err(e) => {
                self.freeze(format!("the anchor file is unreadable: {e:#}"));
                return self.problem();
            }
        };
        match self.check_against(source, &anchor).await {
            Ok(()) => {
                tracing::info!(position = anchor.position, anchor_file = %self.path.display(), "the log holds its anchored head");
                self.state.lock().expect("anchor lock").last = Some(anchor);
                None
            }
            Err(problem) => {
                self.freeze(problem);
                self.problem()
            }
        }
    }

    /// Anchors the current head if it moved (and the previous anchor is still in the log).
    pub async fn tick(&self, source: &Source) -> anyhow::Result<()> {
        let last = {
            let st = self.state.lock().expect("anchor lock");
            if st.frozen.is_some() {
                return Ok(());
            }
            st.last.clone()
        };
        let (position, hash) = source.head().await?;
        if position == 0 || last.as_ref().is_some_and(|a| a.position >= position) {
            return Ok(());
        }
        if let Some(prev) = &last {
            if let Err(problem) = self.check_against(source, prev).await {
                self.freeze(problem);
                return Ok(());
            }
        }
        let anchor = Anchored {
            position,
            hash,
            anchored_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        };
        let (path, body) = (self.path.clone(), anchor.to_json(&self.log).to_string());
        tokio::task::spawn_blocking(move || write_atomically(&path, body.as_bytes()))
            .await?
            .with_context(|| format!("cannot write the anchor file {}", self.path.display()))?;
        self.state.lock().expect("anchor lock").last = Some(anchor);
        Ok(())
    }

    /// Anchors the head every `interval` until `stop`.
    pub async fn keep(
        self: Arc<Self>,
        source: Source,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.tick(&source).await {
                tracing::warn!(error = %format!("{e:#}"), anchor_file = %self.path.display(), "anchoring the head failed");
            }
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

// --- the service ------------------------------------------------------------------------------

#[derive(Clone)]
pub struct AuditService {
    pub source: Source,
    pub anchor: Option<Arc<AnchorKeeper>>,
    /// Where reads are recorded, and where `Accesses` reads them from (`None`: no database here).
    pub access: Option<crate::access_log::AccessLog>,
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

/// FHIR/RFC 3339 instant with milliseconds, UTC.
fn rfc3339(t: &Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos.clamp(0, 999_999_999) as u32)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z, as the protobuf Timestamp spec says.
fn check_time(field: &str, t: &Timestamp) -> Result<(), Status> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(errors::invalid(field, "nanos must be in 0..1000000000"));
    }
    if !(-62_135_596_800..=253_402_300_799).contains(&t.seconds) {
        return Err(errors::invalid(
            field,
            "out of range (years 0001 to 9999 only)",
        ));
    }
    Ok(())
}

fn check_patient(patient_id: &str) -> Result<(), Status> {
    if patient_id.trim().is_empty() {
        return Err(errors::invalid("patient_id", "required"));
    }
    Ok(())
}

/// Who is reading (reads of patient data are audited): the authenticated caller, if any.
fn reader<T>(request: &Request<T>) -> String {
    crate::auth::principal(request).map_or_else(
        || "unauthenticated".into(),
        |p| format!("{} ({:?}, {})", p.subject, p.role, p.organisation),
    )
}

fn not_found(patient_id: &str) -> Status {
    Status::not_found(format!("patient {patient_id:?}: no event in the log"))
}

/// The timeline entry of one stored event.
pub fn timeline_entry(event: Event) -> TimelineEntry {
    let json = crate::json::event_to_json(&event);
    let kind = event.payload.as_ref().map(EventType::of);
    let actor = event.actor.clone().unwrap_or_default();
    let delay = match (&event.occurred_at, &event.recorded_at) {
        (Some(o), Some(r)) => r.seconds - o.seconds,
        _ => 0,
    };
    TimelineEntry {
        event_type: kind.map_or("?", |k| k.name()).to_owned(),
        position: event.position,
        stream_version: event.stream_version,
        actor_id: actor.id,
        actor_role: actor.role,
        actor_organisation: actor.organisation,
        source: event.source.clone(),
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        recording_delay_seconds: delay,
        correlation_id: event.correlation_id.clone(),
        causation_id: event.causation_id.clone(),
        hash_hex: hex(&event.hash),
        prev_hash_hex: hex(&event.prev_hash),
        payload_json: kind
            .and_then(|k| json.get(k.snake()))
            .map(|p| p.to_string())
            .unwrap_or_default(),
        event: Some(event),
    }
}

/// Streams the items `f` makes of each event of `stream`, from a task.
fn flat_map_events<T: Send + 'static>(
    mut stream: BoxStream<EventBatch>,
    first: Option<EventBatch>,
    f: impl Fn(Event) -> Vec<T> + Send + 'static,
) -> BoxStream<T> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut pending = first.map(Ok);
        loop {
            let batch = match pending.take() {
                Some(b) => b,
                None => match stream.next().await {
                    Some(b) => b,
                    None => return,
                },
            };
            match batch {
                Ok(b) => {
                    for event in b.events {
                        for item in f(event) {
                            if tx.send(Ok(item)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(s) => {
                    let _ = tx.send(Err(s)).await;
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

impl AuditService {
    /// Records an auditor's read of a patient before the data goes out.
    async fn record(
        &self,
        who: &(Option<crate::auth::Principal>, String),
        call: &str,
        patient_id: &str,
    ) -> Result<(), Status> {
        match &self.access {
            Some(log) => {
                log.record(crate::access_log::Access {
                    caller: who.0.as_ref(),
                    call,
                    patient_id,
                    purpose: &who.1,
                    outcome: "ok",
                    detail: String::new(),
                })
                .await
            }
            None => Ok(()),
        }
    }

    /// Opens a patient's stream; NOT_FOUND when the log has no event of them.
    async fn open_patient(
        &self,
        patient_id: &str,
        from_version: u64,
    ) -> Result<(BoxStream<EventBatch>, Option<EventBatch>), Status> {
        check_patient(patient_id)?;
        let mut stream = self
            .source
            .read_stream(patient_id, from_version.max(1))
            .await?;
        let first = stream.next().await.transpose()?;
        let empty = first.as_ref().is_none_or(|b| b.events.is_empty());
        if empty && (from_version <= 1 || !self.source.exists(patient_id).await?) {
            return Err(not_found(patient_id));
        }
        Ok((stream, first))
    }

    /// The anchor to check: the caller's, else the anchor file's.
    fn anchor_for(&self, given: Option<AuditAnchor>) -> Result<(Option<Anchored>, String), Status> {
        if let Some(a) = given {
            let hash = hash32(&a.hash).filter(|_| a.position > 0).ok_or_else(|| {
                errors::invalid(
                    "anchor",
                    "an anchor needs a position > 0 and a 32-byte hash",
                )
            })?;
            return Ok((
                Some(Anchored {
                    position: a.position,
                    hash,
                    anchored_at: 0,
                }),
                "request".into(),
            ));
        }
        match &self.anchor {
            None => Ok((None, "none".into())),
            Some(keeper) => {
                let source = format!("anchor file {}", keeper.path().display());
                match keeper.read() {
                    Ok(a) => Ok((a, source)),
                    Err(e) => Err(Status::failed_precondition(format!(
                        "the anchor file is unreadable ({e:#}); the log cannot be checked against it"
                    ))),
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    type TimelineStream = BoxStream<TimelineEntry>;

    #[tracing::instrument(skip_all, fields(patient = %request.get_ref().patient_id))]
    async fn timeline(
        &self,
        request: Request<TimelineRequest>,
    ) -> Result<Response<Self::TimelineStream>, Status> {
        let reader = reader(&request);
        let who = (
            crate::auth::principal(&request).cloned(),
            crate::access_log::purpose(&request),
        );
        let req = request.into_inner();
        let (stream, first) = self.open_patient(&req.patient_id, req.from_version).await?;
        tracing::info!(patient = %req.patient_id, reader = %reader, "audit read: timeline");
        self.record(&who, "Audit/Timeline", &req.patient_id).await?;
        Ok(Response::new(flat_map_events(stream, first, |e| {
            vec![timeline_entry(e)]
        })))
    }

    #[tracing::instrument(skip_all, fields(patient = %request.get_ref().patient_id))]
    async fn as_of(&self, request: Request<AsOfRequest>) -> Result<Response<AsOfResponse>, Status> {
        let reader = reader(&request);
        let who = (
            crate::auth::principal(&request).cloned(),
            crate::access_log::purpose(&request),
        );
        let req = request.into_inner();
        check_patient(&req.patient_id)?;
        let now = now();
        let clinical = req.clinical_time.unwrap_or(now);
        let recorded = req.recorded_time.unwrap_or(now);
        check_time("clinical_time", &clinical)?;
        check_time("recorded_time", &recorded)?;
        // The log cannot know the future: an answer "as known" at a later time could still change.
        if recorded.seconds > now.seconds + 5 {
            return Err(errors::invalid(
                "recorded_time",
                "is in the future; the log only knows what is recorded by now (omit it for now)",
            ));
        }
        let events = self.source.patient(&req.patient_id).await?;
        if events.is_empty() {
            return Err(not_found(&req.patient_id));
        }
        tracing::info!(patient = %req.patient_id, reader = %reader, "audit read: as of");
        self.record(&who, "Audit/AsOf", &req.patient_id).await?;
        let state = journey_domain::as_of::as_of(&events, clinical, recorded);
        Ok(Response::new(state.into_response(
            &req.patient_id,
            clinical,
            recorded,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn verify(
        &self,
        request: Request<AuditVerifyRequest>,
    ) -> Result<Response<AuditVerifyResponse>, Status> {
        let req = request.into_inner();
        if req.to_position != 0 && req.from_position > req.to_position {
            return Err(errors::invalid(
                "to_position",
                "must be 0 (the head) or at least from_position",
            ));
        }
        let (anchor, anchor_source) = self.anchor_for(req.anchor)?;
        // The chain first: an altered event below the head is the first thing wrong.
        let chain = self
            .source
            .verify(VerifyRequest {
                from_position: req.from_position,
                to_position: req.to_position,
                ..Default::default()
            })
            .await?;
        let mut out = AuditVerifyResponse {
            ok: chain.ok,
            checked: chain.checked,
            first_bad_position: chain.first_bad_position,
            problem: chain.problem.clone(),
            head_position: chain.head_position,
            head_hash_hex: hex(&chain.head_hash),
            anchor_source,
            ..Default::default()
        };
        let Some(anchor) = anchor else {
            return Ok(Response::new(out));
        };
        out.anchor_position = anchor.position;
        out.anchor_hash_hex = hex(&anchor.hash);
        out.anchored_at = (anchor.anchored_at > 0).then_some(Timestamp {
            seconds: anchor.anchored_at,
            nanos: 0,
        });
        let head = chain.head_position;
        let anchor_problem = if anchor.position > head {
            out.truncated = true;
            out.first_missing_position = head + 1;
            Some((
                head + 1,
                format!(
                    "the log is truncated: its head was anchored at position {} but the log ends at position {head}; position {} onwards is missing",
                    anchor.position,
                    head + 1
                ),
            ))
        } else {
            let r = self
                .source
                .verify(VerifyRequest {
                    from_position: anchor.position,
                    to_position: anchor.position,
                    anchor_position: anchor.position,
                    anchor_hash: anchor.hash.to_vec(),
                })
                .await?;
            (!r.ok).then(|| {
                (
                    r.first_bad_position,
                    format!("the anchored head is not in the log: {}", r.problem),
                )
            })
        };
        if let Some((pos, problem)) = anchor_problem {
            if out.ok {
                out.ok = false;
                out.first_bad_position = pos;
                out.problem = problem;
            } else {
                out.problem = format!("{}; also: {problem}", out.problem);
            }
        }
        Ok(Response::new(out))
    }

    type ExportStream = BoxStream<ExportLine>;

    #[tracing::instrument(skip_all, fields(patient = %request.get_ref().patient_id))]
    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let reader = reader(&request);
        let who = (
            crate::auth::principal(&request).cloned(),
            crate::access_log::purpose(&request),
        );
        let req = request.into_inner();
        let (stream, first) = self.open_patient(&req.patient_id, 1).await?;
        tracing::info!(patient = %req.patient_id, reader = %reader, "audit read: FHIR export");
        self.record(&who, "Audit/Export", &req.patient_id).await?;
        Ok(Response::new(flat_map_events(stream, first, |e| {
            let position = e.position;
            vec![
                ExportLine {
                    json: fhir_audit_event(&e).to_string(),
                    resource_type: "AuditEvent".into(),
                    position,
                },
                ExportLine {
                    json: fhir_provenance(&e).to_string(),
                    resource_type: "Provenance".into(),
                    position,
                },
            ]
        })))
    }

    async fn accesses(
        &self,
        request: Request<AccessesRequest>,
    ) -> Result<Response<AccessesResponse>, Status> {
        let Some(log) = &self.access else {
            return Err(Status::failed_precondition(
                "this audit service keeps no access log: ask `journey up` or a read side with a database",
            ));
        };
        let req = request.into_inner();
        let limit = match req.limit {
            0 => 100,
            n => n.min(10_000),
        } as i64;
        let records = log
            .of_patient(&req.patient_id, limit)
            .await?
            .into_iter()
            .map(|r| AccessRecord {
                at: Some(Timestamp {
                    seconds: r.at_micros.div_euclid(1_000_000),
                    nanos: (r.at_micros.rem_euclid(1_000_000) * 1000) as i32,
                }),
                subject: r.subject,
                role: r.role,
                organisation: r.organisation,
                call: r.call,
                patient_id: r.patient_id,
                purpose: r.purpose,
                outcome: r.outcome,
                detail: r.detail,
            })
            .collect();
        Ok(Response::new(AccessesResponse { records }))
    }
}

// --- FHIR R4 ----------------------------------------------------------------------------------

const EVENT_TYPE_SYSTEM: &str = "urn:journey:event-type";
const ROLE_SYSTEM: &str = "urn:journey:role";
const ACTOR_SYSTEM: &str = "urn:journey:actor";
const ORGANISATION_SYSTEM: &str = "urn:journey:organisation";
const SOURCE_SYSTEM: &str = "urn:journey:source-system";
const PATIENT_SYSTEM: &str = "urn:journey:patient";

/// A FHIR `id` is `[A-Za-z0-9\-\.]{1,64}`.
fn fhir_id(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(s)
}

fn role_name(role: i32) -> &'static str {
    v1::Role::try_from(role).map_or("ROLE_UNSPECIFIED", |r| r.as_str_name())
}

fn event_reference(e: &Event) -> Value {
    json!({
        "identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", e.event_id)},
        "display": format!("{} at position {}", e.payload.as_ref().map_or("event", |p| EventType::of(p).name()), e.position),
    })
}

fn patient_reference(patient_id: &str) -> Value {
    let mut r = json!({"identifier": {"system": PATIENT_SYSTEM, "value": patient_id}});
    if let Some(id) = fhir_id(patient_id) {
        r["reference"] = json!(format!("Patient/{id}"));
    }
    r
}

fn actor_reference(e: &Event) -> Value {
    let actor = e.actor.clone().unwrap_or_default();
    let id = if actor.id.is_empty() {
        "unknown"
    } else {
        &actor.id
    };
    let display = if actor.display_name.is_empty() {
        id.to_owned()
    } else {
        actor.display_name.clone()
    };
    json!({"identifier": {"system": ACTOR_SYSTEM, "value": id}, "display": display})
}

fn role_concept(role: i32) -> Value {
    json!({"coding": [{"system": ROLE_SYSTEM, "code": role_name(role)}], "text": role_name(role)})
}

/// The FHIR resource a journey event is about, when there is one with an id.
fn resource_of(e: &Event) -> Option<String> {
    let (kind, id) = match e.payload.as_ref()? {
        Payload::PatientRegistered(_) | Payload::IdentityUpdated(_) => {
            ("Patient", e.patient_id.as_str())
        }
        Payload::Admitted(a) => ("Encounter", a.encounter_id.as_str()),
        Payload::Transferred(t) => ("Encounter", t.encounter_id.as_str()),
        Payload::Discharged(d) => ("Encounter", d.encounter_id.as_str()),
        Payload::PrescriptionIssued(p) => ("MedicationRequest", p.prescription_id.as_str()),
        Payload::CarePlanEstablished(p) => ("CarePlan", p.care_plan_id.as_str()),
        Payload::AppointmentScheduled(a) => ("Appointment", a.appointment_id.as_str()),
        Payload::AppointmentCompleted(a) => ("Appointment", a.appointment_id.as_str()),
        Payload::AppointmentMissed(a) => ("Appointment", a.appointment_id.as_str()),
        Payload::AlertRaised(a) => ("Flag", a.alert_id.as_str()),
        Payload::AlertAcknowledged(a) => ("Flag", a.alert_id.as_str()),
        Payload::AlertResolved(a) => ("Flag", a.alert_id.as_str()),
        Payload::ObservationRecorded(_) => ("Observation", e.event_id.as_str()),
        Payload::ConditionRecorded(_) => ("Condition", e.event_id.as_str()),
        Payload::ConsentGiven(_) | Payload::ConsentRevoked(_) => ("Consent", e.event_id.as_str()),
        _ => return None,
    };
    fhir_id(id).map(|id| format!("{kind}/{id}"))
}

/// The event a cancellation undoes.
fn cancelled_id(e: &Event) -> Option<&str> {
    match e.payload.as_ref()? {
        Payload::AdmissionCancelled(c) => Some(&c.cancelled_event_id),
        Payload::TransferCancelled(c) => Some(&c.cancelled_event_id),
        Payload::DischargeCancelled(c) => Some(&c.cancelled_event_id),
        _ => None,
    }
}

fn recorded_instant(e: &Event) -> String {
    rfc3339(&e.recorded_at.or(e.occurred_at).unwrap_or_default())
}

/// One FHIR R4 `AuditEvent` for a stored event: the recording of that event in the log (action C).
pub fn fhir_audit_event(e: &Event) -> Value {
    let kind = e
        .payload
        .as_ref()
        .map_or("Unknown", |p| EventType::of(p).name());
    let actor = e.actor.clone().unwrap_or_default();
    // An automated source (ADT feed, rule engine) collected the data; anyone else is a person.
    let agent_type = if actor.role == v1::Role::System as i32 {
        ("datacollector", "data collector")
    } else {
        ("humanuser", "human user")
    };
    let mut agents = vec![json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": agent_type.0, "display": agent_type.1}]},
        "role": [role_concept(actor.role)],
        "who": actor_reference(e),
        "requestor": true,
    })];
    if !actor.organisation.is_empty() {
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "dataprocessor", "display": "data processor"}], "text": "organisation of the author"},
            "who": {"identifier": {"system": ORGANISATION_SYSTEM, "value": actor.organisation}, "display": actor.organisation},
            "requestor": false,
        }));
    }
    let source = if e.source.is_empty() {
        "unknown"
    } else {
        &e.source
    };
    let mut details = vec![
        json!({"type": "position", "valueString": e.position.to_string()}),
        json!({"type": "stream_version", "valueString": e.stream_version.to_string()}),
        json!({"type": "hash", "valueString": hex(&e.hash)}),
        json!({"type": "prev_hash", "valueString": hex(&e.prev_hash)}),
    ];
    if let Some(t) = &e.occurred_at {
        details.push(json!({"type": "occurred_at", "valueString": rfc3339(t)}));
    }
    if !e.correlation_id.is_empty() {
        details.push(json!({"type": "correlation_id", "valueString": e.correlation_id}));
    }
    if !e.causation_id.is_empty() {
        details.push(json!({"type": "causation_id", "valueString": e.causation_id}));
    }
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110", "display": "Patient Record"},
        "subtype": [{"system": EVENT_TYPE_SYSTEM, "code": kind, "display": kind}],
        "action": "C",
        "recorded": recorded_instant(e),
        "outcome": "0",
        "agent": agents,
        "source": {
            "site": "journey event log",
            "observer": {"identifier": {"system": SOURCE_SYSTEM, "value": source}, "display": source},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
        "entity": [
            {
                "what": patient_reference(&e.patient_id),
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
            },
            {
                "what": event_reference(e),
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4", "display": "Domain Resource"},
                "name": kind,
                "detail": details,
            },
        ],
    });
    if let Some(id) = fhir_id(&e.event_id) {
        resource["id"] = json!(id);
    }
    if let Some(t) = &e.occurred_at {
        resource["period"] = json!({"start": rfc3339(t), "end": rfc3339(t)});
    }
    resource
}

/// One FHIR R4 `Provenance` for a stored event: who authored it, when it happened and was
/// recorded, what it is about (target) and which stored event is its source.
pub fn fhir_provenance(e: &Event) -> Value {
    let actor = e.actor.clone().unwrap_or_default();
    let mut targets = vec![event_reference(e)];
    if let Some(r) = resource_of(e) {
        targets.insert(0, json!({"reference": r}));
    }
    let mut author = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "author", "display": "Author"}]},
        "role": [role_concept(actor.role)],
        "who": actor_reference(e),
    });
    if !actor.organisation.is_empty() {
        author["onBehalfOf"] = json!({"identifier": {"system": ORGANISATION_SYSTEM, "value": actor.organisation}, "display": actor.organisation});
    }
    let source = if e.source.is_empty() {
        "unknown"
    } else {
        &e.source
    };
    let assembler = json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "assembler", "display": "Assembler"}]},
        "who": {"identifier": {"system": SOURCE_SYSTEM, "value": source}, "display": source},
    });
    let mut entities = vec![json!({"role": "source", "what": event_reference(e)})];
    if let Some(cancelled) = cancelled_id(e) {
        entities.push(json!({
            "role": "removal",
            "what": {"identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{cancelled}")}, "display": "cancelled event"},
        }));
    }
    let activity = if cancelled_id(e).is_some() {
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "NULLIFY", "display": "nullify"}]})
    } else {
        json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "CREATE", "display": "create"}]})
    };
    let mut resource = json!({
        "resourceType": "Provenance",
        "target": targets,
        "recorded": recorded_instant(e),
        "activity": activity,
        "agent": [author, assembler],
        "entity": entities,
    });
    if let Some(id) = fhir_id(&e.event_id) {
        resource["id"] = json!(id);
    }
    if let Some(t) = &e.occurred_at {
        resource["occurredDateTime"] = json!(rfc3339(t));
    }
    resource
}

// --- `journey serve audit` --------------------------------------------------------------------

/// The Audit service alone, over a remote log; keeps its own anchor of the log's head when given
/// a file (an anchor on another machine than the log is the stronger one).
pub async fn serve(
    config: AuditServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(crate::server::Ready),
) -> anyhow::Result<()> {
    use journey_proto::v1::audit_server::AuditServer;
    let auth = Arc::new(crate::auth::Authenticator::new(&config.auth, None)?);
    let db = journey_projections::db::connect(&config.access_log_url).await?;
    let access = crate::access_log::AccessLog::new(db.pool.clone());
    auth.record_refusals_in(access.clone());
    let source = Source::new(
        &LogAccess::Remote(config.log_url.clone()),
        config.log_token.as_deref(),
    )?;
    let keeper = config
        .anchor_file
        .clone()
        .map(|p| Arc::new(AnchorKeeper::new(p, config.log_url.clone())));
    if let Some(k) = &keeper {
        k.check_at_start(&source).await;
    }
    let grpc = tokio::net::TcpListener::bind(&config.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
    let web = tokio::net::TcpListener::bind(&config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let ready = crate::server::Ready {
        grpc: grpc.local_addr()?,
        http: web.local_addr()?,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let keeper_task = keeper.clone().map(|k| {
        tokio::spawn(k.keep(
            source.clone(),
            Duration::from_millis(config.anchor_interval_ms),
            stop_rx.clone(),
        ))
    });
    let status = {
        let (keeper, log_url) = (keeper.clone(), config.log_url.clone());
        move || {
            let anchor = keeper.as_ref().map(|k| {
                json!({
                    "file": k.path().display().to_string(),
                    "anchored": k.read().ok().flatten().map(|a| a.to_json(&log_url)),
                    "problem": k.problem(),
                })
            });
            json!({"service": "audit", "log_url": log_url, "anchor": anchor})
        }
    };
    let app = axum::Router::new().route(
        "/status",
        axum::routing::get(move || async move { axum::Json(status()) }),
    );
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(web, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await;
    });
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AuditServer<AuditService>>().await;
    let service = AuditService {
        source,
        anchor: keeper,
        access: Some(access),
    };
    let (grpc_stop_tx, grpc_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(crate::auth::AuthLayer(auth))
            .add_service(health_service)
            .add_service(crate::server::reflection()?)
            .add_service(AuditServer::new(service))
            .serve_with_incoming_shutdown(crate::server::incoming(grpc), async {
                let _ = grpc_stop_rx.await;
            }),
    );
    on_ready(ready);
    shutdown.await;
    let _ = grpc_stop_tx.send(());
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = http.await;
    if let Some(t) = keeper_task {
        let _ = t.await;
    }
    Ok(())
}

// --- `journey audit …` (client verbs) -----------------------------------------------------------

#[derive(Debug, clap::Subcommand)]
pub enum AuditWhat {
    /// One patient's events with actor, source, clinical vs recorded time, correlation and hash.
    Timeline {
        #[arg(long)]
        patient: String,
        /// First stream version shown.
        #[arg(long, default_value_t = 1)]
        from_version: u64,
        /// One JSON object per entry instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: crate::cli::ClientArgs,
    },
    /// The patient's state at a clinical time as known at a recording time (both default to now).
    AsOf {
        #[arg(long)]
        patient: String,
        /// Clinical time T (RFC 3339, e.g. 2026-03-01T12:00:00Z); default now.
        #[arg(long)]
        clinical_time: Option<String>,
        /// Recording time R (RFC 3339): only what the log knew by then; default now.
        #[arg(long)]
        recorded_time: Option<String>,
        /// The answer as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: crate::cli::ClientArgs,
    },
    /// Verify the hash chain and the head against its anchor; exits 1 if it does not verify.
    Verify {
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 0)]
        to: u64,
        /// An anchor you kept (with --anchor-hash); default: the server's anchor file.
        #[arg(long, requires = "anchor_hash")]
        anchor_position: Option<u64>,
        /// Hash of the anchored event, 64 hex digits.
        #[arg(long, requires = "anchor_position")]
        anchor_hash: Option<String>,
        /// The answer as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: crate::cli::ClientArgs,
    },
    /// The patient's journey as FHIR R4 AuditEvent and Provenance resources (NDJSON).
    Export {
        #[arg(long)]
        patient: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        client: crate::cli::ClientArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum DebugWhat {
    /// Alter the stored bytes of one event below the chain (its hash kept), to prove that
    /// verification catches it. The server must be stopped. Tests and demonstrations only.
    Tamper {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        position: u64,
        /// Required: this breaks the log's chain for good.
        #[arg(long, required = true)]
        yes_break_the_chain: bool,
    },
}

type AuditClient = journey_proto::v1::audit_client::AuditClient<
    tonic::service::interceptor::InterceptedService<Channel, crate::client::Token>,
>;

async fn audit_client(args: &crate::cli::ClientArgs) -> anyhow::Result<AuditClient> {
    let channel = crate::client::channel(&args.server).await?;
    Ok(
        journey_proto::v1::audit_client::AuditClient::with_interceptor(
            channel,
            crate::client::token(args.token.as_deref())?,
        )
        .max_decoding_message_size(64 * 1024 * 1024),
    )
}

fn refused(what: &str) -> impl Fn(Status) -> anyhow::Error + '_ {
    move |s| anyhow::anyhow!("{what} refused ({:?}): {}", s.code(), s.message())
}

fn parse_time(flag: &str, text: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    let Some(text) = text else { return Ok(None) };
    if text == "now" {
        return Ok(None);
    }
    let t = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("--{flag} {text:?}: not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)")
    })?;
    Ok(Some(Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }))
}

/// A generated message as JSON with proto field names, through the embedded descriptors.
fn message_json<M: journey_proto::prost::Message>(m: &M, name: &str) -> Value {
    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
    let pool = DescriptorPool::decode(journey_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
    let desc = pool
        .get_message_by_name(name)
        .expect("message in descriptors");
    let dynamic = DynamicMessage::decode(desc, m.encode_to_vec().as_slice()).expect("own encoding");
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .expect("json serialisation")
}

/// "3d 4h", "2h 5m", "12s"; negative = recorded before it occurred (clock skew).
fn delay_text(secs: i64) -> String {
    let (sign, s) = if secs < 0 { ("-", -secs) } else { ("", secs) };
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    format!("{sign}{text}")
}

fn time_text(t: &Option<Timestamp>) -> String {
    t.as_ref().map_or("?".into(), rfc3339)
}

fn enum_text<E: TryFrom<i32>>(v: i32, name: impl Fn(E) -> &'static str) -> &'static str {
    E::try_from(v).map_or("?", name)
}

fn print_as_of(r: &AsOfResponse) {
    println!(
        "patient {}: clinical time {}, as known at {}",
        r.patient_id,
        time_text(&r.clinical_time),
        time_text(&r.recorded_time)
    );
    println!(
        "  registered: {}   deceased: {}",
        if r.registered { "yes" } else { "no" },
        if r.deceased {
            format!("yes ({})", time_text(&r.died_at))
        } else {
            "no".into()
        }
    );
    let stay = |s: &v1::AsOfStay| {
        let facility = s.facility.as_ref().map_or("?", |f| f.id.as_str());
        let setting = enum_text(s.setting, |e: v1::Setting| e.as_str_name());
        format!(
            "{}  {facility} / {}  {setting}  admitted {} ({})",
            s.encounter_id,
            if s.unit.is_empty() { "-" } else { &s.unit },
            time_text(&s.admitted_at),
            enum_text(s.admit_type, |e: v1::AdmitType| e.as_str_name()),
        )
    };
    println!(
        "  open stays: {}",
        if r.open_stays.is_empty() { "none" } else { "" }
    );
    for s in &r.open_stays {
        println!("    {}", stay(s));
    }
    println!(
        "  discharged stays: {}",
        if r.discharged_stays.is_empty() {
            "none"
        } else {
            ""
        }
    );
    for s in &r.discharged_stays {
        println!(
            "    {}, discharged {} ({})",
            stay(s),
            time_text(&s.discharged_at),
            enum_text(s.disposition, |e: v1::Disposition| e.as_str_name())
        );
    }
    match r
        .care_plan
        .as_ref()
        .and_then(|c| c.plan.as_ref().map(|p| (c, p)))
    {
        None => println!("  care plan: none"),
        Some((c, p)) => {
            println!(
                "  care plan {} (established {}):",
                p.care_plan_id,
                time_text(&c.established_at)
            );
            println!("    goals: {}", p.goals.join("; "));
            if !p.symptoms_to_watch.is_empty() {
                println!("    watch: {}", p.symptoms_to_watch.join("; "));
            }
            for t in &p.thresholds {
                println!(
                    "    threshold {}: {}..{} ({})",
                    t.measure,
                    t.low,
                    t.high,
                    enum_text(t.severity, |e: v1::Severity| e.as_str_name())
                );
            }
            for p in &p.referents {
                println!("    referent {} {} ({})", role_name(p.role), p.name, p.id);
            }
        }
    }
    println!(
        "  open alerts: {}",
        if r.open_alerts.is_empty() { "none" } else { "" }
    );
    for a in &r.open_alerts {
        println!(
            "    {} {} raised {}{}: {} {}",
            a.alert_id,
            enum_text(a.severity, |e: v1::Severity| e.as_str_name()),
            time_text(&a.raised_at),
            if a.acknowledged {
                " (acknowledged)"
            } else {
                ""
            },
            a.rule,
            a.reason
        );
    }
    println!(
        "  referents: {}",
        if r.referents.is_empty() { "none" } else { "" }
    );
    for x in &r.referents {
        let p = x.professional.clone().unwrap_or_default();
        println!(
            "    {} {} ({}) since {}",
            role_name(x.role),
            p.name,
            p.id,
            time_text(&x.assigned_at)
        );
    }
    println!(
        "  consents: {}",
        if r.consents.is_empty() { "none" } else { "" }
    );
    for c in &r.consents {
        println!(
            "    {}: {} {} (since {})",
            c.scope,
            if c.given { "given to" } else { "revoked" },
            if c.given && c.organisations.is_empty() {
                "every organisation".to_string()
            } else {
                c.organisations.join(", ")
            },
            time_text(&c.at)
        );
    }
    if !r.merged_patient_ids.is_empty() {
        println!("  merged from: {}", r.merged_patient_ids.join(", "));
    }
    println!("  based on {} events", r.event_ids.len());
    if !r.cancelled_event_ids.is_empty() {
        println!(
            "  cancelled (ignored): {}",
            r.cancelled_event_ids.join(", ")
        );
    }
    if !r.known_later_event_ids.is_empty() {
        println!(
            "  recorded after that time (not known then): {}",
            r.known_later_event_ids.join(", ")
        );
    }
}

/// `journey audit …`: Ok(false) when verification failed (exit code 1).
pub async fn cli(what: AuditWhat) -> anyhow::Result<bool> {
    match what {
        AuditWhat::Timeline {
            patient,
            from_version,
            json: as_json,
            client,
        } => {
            let mut c = audit_client(&client).await?;
            let mut stream = c
                .timeline(TimelineRequest {
                    patient_id: patient,
                    from_version,
                })
                .await
                .map_err(refused("timeline"))?
                .into_inner();
            while let Some(e) = stream.next().await {
                let e = e.map_err(refused("timeline"))?;
                if as_json {
                    println!("{}", message_json(&e, "journey.v1.TimelineEntry"));
                    continue;
                }
                let org = if e.actor_organisation.is_empty() {
                    String::new()
                } else {
                    format!(", {}", e.actor_organisation)
                };
                println!(
                    "v{:<3} #{:<7} {}  {:<22} by {} ({}{org}) via {}",
                    e.stream_version,
                    e.position,
                    time_text(&e.occurred_at),
                    e.event_type,
                    e.actor_id,
                    role_name(e.actor_role),
                    e.source,
                );
                let mut links = String::new();
                if !e.correlation_id.is_empty() {
                    links.push_str(&format!("  correlation {}", e.correlation_id));
                }
                if !e.causation_id.is_empty() {
                    links.push_str(&format!("  causation {}", e.causation_id));
                }
                println!(
                    "      recorded {} ({} after){links}  hash {}",
                    time_text(&e.recorded_at),
                    delay_text(e.recording_delay_seconds),
                    e.hash_hex.get(..16).unwrap_or(&e.hash_hex)
                );
                println!("      {}", e.payload_json);
            }
            Ok(true)
        }
        AuditWhat::AsOf {
            patient,
            clinical_time,
            recorded_time,
            json: as_json,
            client,
        } => {
            let req = AsOfRequest {
                patient_id: patient,
                clinical_time: parse_time("clinical-time", clinical_time.as_deref())?,
                recorded_time: parse_time("recorded-time", recorded_time.as_deref())?,
            };
            let mut c = audit_client(&client).await?;
            let r = c.as_of(req).await.map_err(refused("as-of"))?.into_inner();
            if as_json {
                println!("{}", message_json(&r, "journey.v1.AsOfResponse"));
            } else {
                print_as_of(&r);
            }
            Ok(true)
        }
        AuditWhat::Verify {
            from,
            to,
            anchor_position,
            anchor_hash,
            json: as_json,
            client,
        } => {
            let anchor = match (anchor_position, anchor_hash) {
                (Some(position), Some(h)) => Some(AuditAnchor {
                    position,
                    hash: unhex(h.trim())
                        .filter(|b| b.len() == 32)
                        .context("--anchor-hash must be 64 hex digits")?,
                }),
                _ => None,
            };
            let mut c = audit_client(&client).await?;
            let r = c
                .verify(AuditVerifyRequest {
                    from_position: from,
                    to_position: to,
                    anchor,
                })
                .await
                .map_err(refused("verify"))?
                .into_inner();
            if as_json {
                println!("{}", message_json(&r, "journey.v1.AuditVerifyResponse"));
            } else if r.ok {
                println!(
                    "ok: {} events verified; head position {} hash {}",
                    r.checked, r.head_position, r.head_hash_hex
                );
                if r.anchor_position > 0 {
                    println!(
                        "anchor ({}): position {} found with its hash{}",
                        r.anchor_source,
                        r.anchor_position,
                        r.anchored_at
                            .as_ref()
                            .map(|t| format!(", anchored {}", rfc3339(t)))
                            .unwrap_or_default()
                    );
                } else {
                    println!(
                        "no anchor checked ({}): a truncated tail would go unnoticed",
                        r.anchor_source
                    );
                }
            } else {
                println!(
                    "FAILED at position {}: {} ({} events verified before it)",
                    r.first_bad_position, r.problem, r.checked
                );
                if r.truncated {
                    println!(
                        "truncated: anchored head {} ({}), log head {}; first missing position {}",
                        r.anchor_position,
                        r.anchor_source,
                        r.head_position,
                        r.first_missing_position
                    );
                }
            }
            Ok(r.ok)
        }
        AuditWhat::Export {
            patient,
            out,
            client,
        } => {
            use std::io::Write;
            let mut c = audit_client(&client).await?;
            let mut stream = c
                .export(ExportRequest {
                    patient_id: patient.clone(),
                })
                .await
                .map_err(refused("export"))?
                .into_inner();
            let mut sink: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut lines = 0u64;
            while let Some(line) = stream.next().await {
                let line = line.map_err(refused("export"))?;
                writeln!(sink, "{}", line.json)?;
                lines += 1;
            }
            sink.flush()?;
            if let Some(path) = &out {
                eprintln!(
                    "{lines} FHIR resources of patient {patient} written to {}",
                    path.display()
                );
            }
            Ok(true)
        }
    }
}

/// `journey debug …` (hidden, test-only).
pub fn debug(what: DebugWhat) -> anyhow::Result<bool> {
    match what {
        DebugWhat::Tamper {
            data_dir,
            position,
            yes_break_the_chain: _,
        } => {
            tamper(&data_dir, position, " (tampered)")?;
            println!(
                "altered the stored event at position {position} in {} (hash kept)",
                data_dir.display()
            );
            Ok(true)
        }
    }
}

// --- test-only: alter a stored event below the chain -------------------------------------------

/// Rewrites the stored bytes of the event at `position` (its `source` gets `suffix`) while keeping
/// its stored hash, as an attacker with access to the files would: the chain must catch it.
/// For tests and demonstrations only (`journey debug tamper`, hidden); the server must be stopped.
pub fn tamper(data_dir: &Path, position: u64, suffix: &str) -> anyhow::Result<()> {
    use journey_event_log::{Record, SledStorage, Storage, WriteBatch};
    use journey_proto::prost::Message;
    let storage = SledStorage::open(data_dir)
        .with_context(|| format!("cannot open {} (stop the server first)", data_dir.display()))?;
    let stored = storage
        .read(position, position, 1)?
        .pop()
        .with_context(|| format!("no event at position {position}"))?;
    let mut event = Event::decode(stored.bytes.as_slice())?;
    event.source.push_str(suffix);
    let record = Record {
        position,
        event_id: uuid::Uuid::parse_str(&event.event_id)?,
        patient_id: event.patient_id.clone(),
        stream_version: event.stream_version,
        hash: stored.hash,
        bytes: event.encode_to_vec(),
    };
    storage.write(&WriteBatch {
        records: vec![record],
    })?;
    storage.sync()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{Actor, AdmissionCancelled, Admitted};

    fn event(payload: Payload) -> Event {
        Event {
            event_id: "7f1d2c3e-0000-4000-8000-000000000001".into(),
            patient_id: "P1".into(),
            position: 7,
            stream_version: 2,
            occurred_at: Some(Timestamp {
                seconds: 1_780_000_000,
                nanos: 0,
            }),
            recorded_at: Some(Timestamp {
                seconds: 1_780_000_100,
                nanos: 500_000_000,
            }),
            actor: Some(Actor {
                id: "dr-x".into(),
                role: v1::Role::HospitalPhysician as i32,
                organisation: "CHU".into(),
                ..Default::default()
            }),
            source: "adt".into(),
            hash: vec![1; 32],
            prev_hash: vec![0; 32],
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn audit_event_has_the_required_fields() {
        let e = event(Payload::Admitted(Admitted {
            encounter_id: "E1".into(),
            ..Default::default()
        }));
        let a = fhir_audit_event(&e);
        assert_eq!(a["resourceType"], "AuditEvent");
        assert_eq!(a["type"]["code"], "110110");
        assert_eq!(a["action"], "C");
        assert_eq!(a["recorded"], "2026-05-28T20:28:20.500Z");
        assert_eq!(a["agent"][0]["requestor"], true);
        assert_eq!(a["agent"][0]["who"]["identifier"]["value"], "dr-x");
        assert_eq!(a["source"]["observer"]["display"], "adt");
        assert_eq!(a["entity"][0]["what"]["reference"], "Patient/P1");
        let p = fhir_provenance(&e);
        assert_eq!(p["resourceType"], "Provenance");
        assert_eq!(p["target"][0]["reference"], "Encounter/E1");
        assert_eq!(p["agent"][0]["who"]["identifier"]["value"], "dr-x");
        assert_eq!(p["agent"][0]["onBehalfOf"]["display"], "CHU");
        assert_eq!(p["recorded"], a["recorded"]);
    }

    #[test]
    fn cancellation_provenance_names_the_removed_event() {
        let e = event(Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id: "7f1d2c3e-0000-4000-8000-000000000009".into(),
        }));
        let p = fhir_provenance(&e);
        assert_eq!(p["activity"]["coding"][0]["code"], "NULLIFY");
        assert_eq!(p["entity"][1]["role"], "removal");
        assert_eq!(p["target"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn default_anchor_file_sits_next_to_the_data_folder() {
        let a = AnchorArgs::default();
        assert_eq!(
            a.path_for(Path::new("./data")),
            PathBuf::from("./data.anchor.json")
        );
        assert_eq!(
            a.path_for(Path::new("/var/lib/journey/")),
            PathBuf::from("/var/lib/journey.anchor.json")
        );
    }

    #[test]
    fn delays_read_like_durations() {
        assert_eq!(delay_text(12), "12s");
        assert_eq!(delay_text(125), "2m 5s");
        assert_eq!(delay_text(7_500), "2h 5m");
        assert_eq!(delay_text(3 * 86_400 + 4 * 3600 + 60), "3d 4h");
        assert_eq!(delay_text(-5), "-5s");
    }

    #[test]
    fn anchor_round_trips_through_json() {
        let a = Anchored {
            position: 42,
            hash: [7; 32],
            anchored_at: 1_780_000_000,
        };
        assert_eq!(Anchored::from_json(&a.to_json("./data")).unwrap(), a);
        assert!(Anchored::from_json(&json!({"position": 1, "hash": "zz"})).is_err());
    }
}
