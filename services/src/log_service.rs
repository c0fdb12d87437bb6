//! The gRPC `EventLog` service: checks the shape of what partners send and who may write it, then
//! hands it to the log. Its reads are recorded in the access log before their data goes out, and
//! so are the appends refused for lack of a right.
use crate::access_log::{self, Access, AccessLog};
use crate::errors;
use crate::principal::Principal;
use crate::write_policy;
use futures::StreamExt;
use journey_event_log::{AppendOutcome, EventLog as Log, StoredEvent};
use journey_log_access::MAX_MESSAGE;
use journey_proto::{
    prost::Message,
    prost_types::Timestamp,
    v1::{
        event_log_server::EventLog, AppendRequest, AppendResponse, Appended, Event, EventBatch,
        HeadRequest, HeadResponse, ReadAllRequest, ReadStreamRequest, SubscribeRequest,
        VerifyRequest, VerifyResponse,
    },
};
use std::{net::SocketAddr, pin::Pin, sync::Arc, time::SystemTime};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{Request, Response, Status, Streaming};

const DEFAULT_BATCH: usize = 512;
const MAX_BATCH: usize = 8192;

pub struct LogService {
    log: Arc<Log>,
    limits: AppendLimits,
    access: Option<AccessLog>,
}

/// What one append may hold (`--max-event-bytes`, `--max-batch-events`, `--max-batch-bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendLimits {
    pub event_bytes: usize,
    pub batch_events: usize,
    pub batch_bytes: usize,
}

impl AppendLimits {
    /// No limit (the log's in-process callers, which check their own events).
    pub const NONE: AppendLimits = AppendLimits {
        event_bytes: usize::MAX,
        batch_events: usize::MAX,
        batch_bytes: usize::MAX,
    };

    pub fn of(config: &crate::config::LogConfig) -> AppendLimits {
        AppendLimits {
            event_bytes: config.max_event_bytes,
            batch_events: config.max_batch_events,
            batch_bytes: config.max_batch_bytes,
        }
    }

    /// The largest request message worth decoding: the largest batch accepted (in events of the
    /// largest size, each with its field tag and length, and an expected version per patient, or
    /// in bytes, whichever is less) and a margin; never more than [`MAX_MESSAGE`]. A bigger
    /// message is refused from its length prefix, before its body is read.
    pub fn decoding_limit(&self) -> usize {
        const PER_EVENT: usize = 11 + 80; // tag and length; an expected version's entry
        self.batch_events
            .saturating_mul(self.event_bytes.saturating_add(PER_EVENT))
            .min(self.batch_bytes)
            .saturating_add(64 * 1024)
            .min(MAX_MESSAGE)
    }
}

/// Who sent a request: its caller (`None` under `--insecure`), declared purpose and address.
#[derive(Clone, Default)]
struct Sender {
    caller: Option<Principal>,
    purpose: String,
    peer: Option<SocketAddr>,
}

impl Sender {
    fn of<T>(request: &Request<T>) -> Sender {
        Sender {
            caller: crate::principal::of(request).cloned(),
            purpose: access_log::purpose(request),
            peer: access_log::peer_of(request.extensions()),
        }
    }

    /// The record of one call of the log (`call`, e.g. "EventLog/ReadAll").
    fn access<'a>(&'a self, call: &'a str, patient_id: &'a str, detail: String) -> Access<'a> {
        Access {
            caller: self.caller.as_ref(),
            call,
            patient_id,
            patients: &[],
            purpose: &self.purpose,
            outcome: "",
            detail,
            peer: self.peer,
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<EventBatch, Status>> + Send>>;

impl LogService {
    /// The service over `log`; `access` records its reads (and the appends refused a right).
    pub fn new(log: Arc<Log>, limits: AppendLimits, access: Option<AccessLog>) -> Self {
        LogService {
            log,
            limits,
            access,
        }
    }

    /// Records a read of the log (`result`: whether it goes ahead) before any of its data goes out.
    async fn audited<T>(&self, access: Access<'_>, result: Result<T, Status>) -> Result<T, Status> {
        access_log::audited(self.access.as_ref(), access, result).await
    }

    /// A refused append, recorded when the refusal is a missing right (`PERMISSION_DENIED`).
    async fn refused(&self, patients: &[String], sender: &Sender, status: Status) -> Status {
        let Some(log) = self
            .access
            .as_ref()
            .filter(|_| status.code() == tonic::Code::PermissionDenied)
        else {
            return status;
        };
        let (patient_id, patients) = match patients {
            [one] => (one.as_str(), &[][..]),
            many => ("", many),
        };
        let recorded = log
            .record(Access {
                patients,
                outcome: "permission_denied",
                ..sender.access("EventLog/Append", patient_id, status.message().to_string())
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e.message(), "a refused append could not be recorded");
        }
        status
    }

    /// Checks size and shape of every event; nothing reaches the log unless all pass.
    fn check(&self, request: &AppendRequest) -> Result<(), Status> {
        let limits = &self.limits;
        if request.events.len() > limits.batch_events {
            return Err(errors::too_large(
                "events",
                &format!(
                    "{} events in one batch, the limit is {}; split the batch",
                    request.events.len(),
                    limits.batch_events
                ),
            ));
        }
        // The events' sizes, each computed once: the batch's is their sum.
        let sizes: Vec<usize> = request.events.iter().map(Message::encoded_len).collect();
        let total: usize = sizes.iter().sum();
        if total > limits.batch_bytes {
            return Err(errors::too_large(
                "events",
                &format!(
                    "{total} bytes in one batch, the limit is {} bytes; split the batch",
                    limits.batch_bytes
                ),
            ));
        }
        let now = Timestamp::from(SystemTime::now());
        for (i, (event, &len)) in request.events.iter().zip(&sizes).enumerate() {
            if len > limits.event_bytes {
                return Err(errors::too_large(
                    &format!("events[{i}]"),
                    &format!(
                        "{len} bytes encoded, the limit is {} bytes",
                        limits.event_bytes
                    ),
                ));
            }
            journey_domain::validate(event, now).map_err(|e| errors::invalid_event(i, &e))?;
        }
        for patient in request.expected_versions.keys() {
            if patient.is_empty() {
                return Err(errors::invalid("expected_versions", "patient id is empty"));
            }
        }
        Ok(())
    }

    async fn append_one(
        &self,
        request: AppendRequest,
        sender: &Sender,
    ) -> Result<AppendResponse, Status> {
        let started = std::time::Instant::now();
        let writer = match self
            .check(&request)
            .and_then(|_| write_policy::writer_of(&request, sender.caller.as_ref()))
        {
            Ok(writer) => writer,
            Err(status) => {
                metrics::counter!("journey_append_rejected_total", "reason" => reason(&status))
                    .increment(1);
                return Err(self.refused(&patients_of(&request), sender, status).await);
            }
        };
        let spans = event_spans(&request.events);
        let patients = writer.as_ref().map(|_| patients_of(&request));
        let outcome = self
            .log
            .append(journey_event_log::AppendRequest {
                events: request.events,
                expected_versions: request.expected_versions.into_iter().collect(),
                writer,
            })
            .await
            .map_err(errors::append_error);
        let outcome = match (outcome, patients) {
            (Err(status), Some(patients)) => Err(self.refused(&patients, sender, status).await),
            (outcome, _) => outcome,
        };
        metrics::histogram!("journey_append_seconds").record(started.elapsed().as_secs_f64());
        let outcome = outcome.inspect_err(|status| {
            metrics::counter!("journey_append_rejected_total", "reason" => reason(status))
                .increment(1);
        })?;
        for (span, a) in spans.iter().zip(&outcome.appended) {
            span.record("position", a.position);
        }
        metrics::counter!("journey_appended_events_total").increment(outcome.appended.len() as u64);
        Ok(response(outcome))
    }
}

/// The patients an append is about, in order, once each.
fn patients_of(request: &AppendRequest) -> Vec<String> {
    let mut patients: Vec<String> = Vec::new();
    for e in &request.events {
        if !patients.contains(&e.patient_id) {
            patients.push(e.patient_id.clone());
        }
    }
    patients
}

/// The metric label of a refusal: its gRPC code (invalid_argument, failed_precondition, aborted…).
fn reason(status: &Status) -> String {
    format!("{:?}", status.code()).to_lowercase()
}

/// One span per event when traces are exported, each in the trace of its event (trace id = event id).
fn event_spans(events: &[Event]) -> Vec<tracing::Span> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !journey_proto::trace::enabled() {
        return Vec::new();
    }
    events
        .iter()
        .map(|e| {
            let span = tracing::info_span!("journey.append", event_id = %e.event_id, patient_id = %e.patient_id, position = tracing::field::Empty);
            let _ = span.set_parent(journey_proto::trace::event_context(&e.event_id, 0));
            span
        })
        .collect()
}

fn response(outcome: AppendOutcome) -> AppendResponse {
    AppendResponse {
        appended: outcome
            .appended
            .into_iter()
            .map(|a| Appended {
                event_id: a.event_id,
                position: a.position,
                stream_version: a.stream_version,
            })
            .collect(),
        deduplicated: outcome.deduplicated,
    }
}

fn batch_size(requested: u32) -> usize {
    match requested as usize {
        0 => DEFAULT_BATCH,
        n => n.min(MAX_BATCH),
    }
}

fn decode_all(stored: Vec<StoredEvent>) -> Result<EventBatch, Status> {
    let events = stored
        .iter()
        .map(StoredEvent::decode)
        .collect::<Result<Vec<Event>, _>>()
        .map_err(errors::storage_error)?;
    Ok(EventBatch { events })
}

/// Runs `read(next) -> batch` on a blocking thread until it returns an empty batch, streaming batches.
fn stream_batches<F>(mut read: F) -> EventStream
where
    F: FnMut() -> Result<Vec<StoredEvent>, Status> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let (r, back) = match tokio::task::spawn_blocking(move || (read(), read)).await {
                Ok(v) => v,
                Err(_) => return,
            };
            read = back;
            let batch = match r {
                Ok(b) if b.is_empty() => return,
                Ok(b) => decode_all(b),
                Err(e) => Err(e),
            };
            let failed = batch.is_err();
            if tx.send(batch).await.is_err() || failed {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl EventLog for LogService {
    #[tracing::instrument(skip_all, fields(events = request.get_ref().events.len()))]
    async fn append(
        &self,
        request: Request<AppendRequest>,
    ) -> Result<Response<AppendResponse>, Status> {
        let sender = Sender::of(&request);
        self.append_one(request.into_inner(), &sender)
            .await
            .map(Response::new)
    }

    type AppendStreamStream = Pin<Box<dyn Stream<Item = Result<AppendResponse, Status>> + Send>>;

    async fn append_stream(
        &self,
        request: Request<Streaming<AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let this = LogService {
            log: self.log.clone(),
            access: self.access.clone(),
            ..*self
        };
        let this = Arc::new(this);
        let sender = Arc::new(Sender::of(&request));
        let stream = request.into_inner();
        // Up to 8 batches of one call in flight at once, answered in request order.
        let out = stream
            .map(move |req| {
                let this = this.clone();
                let sender = sender.clone();
                async move { this.append_one(req?, &sender).await }
            })
            .buffered(8);
        Ok(Response::new(Box::pin(out)))
    }

    type ReadStreamStream = EventStream;

    async fn read_stream(
        &self,
        request: Request<ReadStreamRequest>,
    ) -> Result<Response<Self::ReadStreamStream>, Status> {
        let sender = Sender::of(&request);
        let req = request.into_inner();
        let checked = if req.patient_id.is_empty() {
            Err(errors::invalid("patient_id", "required"))
        } else {
            Ok(())
        };
        let detail = format!(
            "the patient's events from version {}",
            req.from_version.max(1)
        );
        let access = sender.access("EventLog/ReadStream", &req.patient_id, detail);
        self.audited(access, checked).await?;
        let (log, size) = (self.log.clone(), batch_size(req.batch_size));
        let mut next = req.from_version.max(1);
        Ok(Response::new(stream_batches(move || {
            let batch = log
                .read_stream(&req.patient_id, next, size)
                .map_err(errors::storage_error)?;
            if let Some(last) = batch.last() {
                let event = last.decode().map_err(errors::storage_error)?;
                next = event.stream_version + 1;
            }
            Ok(batch)
        })))
    }

    type ReadAllStream = EventStream;

    async fn read_all(
        &self,
        request: Request<ReadAllRequest>,
    ) -> Result<Response<Self::ReadAllStream>, Status> {
        let sender = Sender::of(&request);
        let req = request.into_inner();
        let log = self.log.clone();
        let to = if req.to_position == 0 {
            log.head().position
        } else {
            req.to_position
        };
        let size = batch_size(req.batch_size);
        let mut next = req.from_position.max(1);
        let detail = format!("every patient's events, positions {next} to {to}");
        self.audited(sender.access("EventLog/ReadAll", "", detail), Ok(()))
            .await?;
        Ok(Response::new(stream_batches(move || {
            let batch = log
                .read_range(next, to, size)
                .map_err(errors::storage_error)?;
            if let Some(last) = batch.last() {
                next = last.position + 1;
            }
            Ok(batch)
        })))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let sender = Sender::of(&request);
        let req = request.into_inner();
        let log = self.log.clone();
        let size = batch_size(req.batch_size);
        let mut next = req.from_position.max(1);
        let detail = format!("every patient's events from position {next}, then live");
        self.audited(sender.access("EventLog/Subscribe", "", detail), Ok(()))
            .await?;
        let mut watch = log.watch();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            loop {
                // Catch up to the durable head, then wait for it to move: no gap, no duplicate.
                while next <= log.head().position {
                    let l = log.clone();
                    let read = tokio::task::spawn_blocking(move || l.read(next, size)).await;
                    let batch = match read {
                        Ok(Ok(b)) if !b.is_empty() => b,
                        Ok(Ok(_)) => break,
                        Ok(Err(e)) => {
                            let _ = tx.send(Err(errors::storage_error(e))).await;
                            return;
                        }
                        Err(_) => return,
                    };
                    next = batch.last().map(|e| e.position + 1).unwrap_or(next);
                    if tx.send(decode_all(batch)).await.is_err() {
                        return;
                    }
                }
                tokio::select! {
                    changed = watch.changed() => if changed.is_err() { return },
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn head(&self, _: Request<HeadRequest>) -> Result<Response<HeadResponse>, Status> {
        let head = self.log.head();
        Ok(Response::new(HeadResponse {
            position: head.position,
            hash: head.hash.to_vec(),
        }))
    }

    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let req = request.into_inner();
        let anchor = match (req.anchor_position, req.anchor_hash.len()) {
            (0, 0) => None,
            (p, 32) if p > 0 => {
                let mut h = [0u8; 32];
                h.copy_from_slice(&req.anchor_hash);
                Some((p, h))
            }
            _ => {
                return Err(errors::invalid(
                    "anchor_hash",
                    "an anchor needs a position > 0 and a 32-byte hash",
                ))
            }
        };
        let head = self.log.head().position;
        if req.to_position != 0 && req.from_position > req.to_position {
            return Err(errors::invalid(
                "from_position",
                &format!(
                    "{} is after to_position {}; give from ≤ to (0 = from the first, to the head)",
                    req.from_position, req.to_position
                ),
            ));
        }
        if req.from_position > head.max(1) {
            return Err(errors::invalid(
                "from_position",
                &format!("{} is past the head of the log ({head})", req.from_position),
            ));
        }
        let log = self.log.clone();
        let report = tokio::task::spawn_blocking(move || {
            log.verify(req.from_position, req.to_position, anchor)
        })
        .await
        .map_err(|e| errors::task_failed("verify", e))?
        .map_err(errors::storage_error)?;
        let head = self.log.head();
        let (bad, problem) = report.first_bad.unwrap_or((0, String::new()));
        Ok(Response::new(VerifyResponse {
            ok: bad == 0,
            checked: report.checked,
            first_bad_position: bad,
            problem,
            head_position: head.position,
            head_hash: head.hash.to_vec(),
        }))
    }
}
