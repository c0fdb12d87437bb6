//! The alert reactor: reads the log, folds every event into the telemonitoring alert rules
//! (`journey_domain::alert_rules`) and appends the `AlertRaised` events they decide.
//!
//! It runs as a part of a node (`node/src/reactor.rs`): inside `journey up` (in-process source and
//! appends; `--no-reactor` turns it off) or alone as `journey serve reactor` (catch-up and appends
//! over the log's gRPC service, live events from `Subscribe` or from NATS JetStream).
//!
//! **Exactly once.** The rules' state lives in memory and is rebuilt from the whole log at start,
//! so a replay makes the same decisions; each alert's event id is a UUID v5 of (observation event
//! id, rule), so the log stores it once however often it is appended (a repeated event id returns
//! the original position and writes nothing). To avoid even re-sending, decisions wait in a
//! *pending* set during the catch-up and are dropped when their own `AlertRaised` shows up later
//! in the log: only the decisions the log does not hold yet are appended once the catch-up
//! reaches the head. Live, every decision is appended as soon as its observation is folded;
//! transient failures (log unavailable) are retried with backoff, refusals (a patient merged or
//! deceased since the observation) are logged and dropped.
use journey_domain::alert_rules::{alert_event, AlertRules};
use journey_event_log::{AppendError, EventLog};
use journey_log_access::{EventSource, LogClient};
use journey_proto::v1::{self, event::Payload, Event};
use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::{Duration, SystemTime},
};
use tokio::sync::watch;

/// Events read per range call.
const BATCH: usize = 2000;
/// Alerts per append request.
const APPEND_BATCH: usize = 256;

/// What the reactor has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReactorStatus {
    /// Last log position folded into the rules.
    pub position: u64,
    /// The start-up catch-up reached the log head (decisions older than that are settled).
    pub caught_up: bool,
    /// Alerts written by this process.
    pub alerts_appended: u64,
    /// Alerts sent but already stored (another reactor, or a retry): nothing written.
    pub alerts_already_stored: u64,
    /// Alerts the log refused (patient merged or deceased since): dropped.
    pub alerts_refused: u64,
    /// Decisions not appended yet.
    pub pending: u64,
}

/// Where alerts are appended.
pub enum Sink {
    /// The log of this process (`journey up`).
    Local(Arc<EventLog>),
    /// A remote log's `EventLog.Append`.
    Remote(LogClient),
}

enum Failure {
    /// The log will never take these events: drop them.
    Refused(String),
    /// Try again later.
    Retry(anyhow::Error),
}

impl Sink {
    /// Appends one atomic batch; returns whether every event was already stored.
    async fn append(&mut self, events: Vec<Event>) -> Result<bool, Failure> {
        let now = prost_types::Timestamp::from(SystemTime::now());
        for e in &events {
            // Alerts are built valid; this keeps the in-process path as strict as gRPC.
            journey_domain::validate(e, now)
                .map_err(|f| Failure::Refused(format!("{}: {f}", e.event_id)))?;
        }
        match self {
            Sink::Local(log) => {
                let request = journey_event_log::AppendRequest {
                    events,
                    expected_versions: HashMap::new(),
                    writer: None,
                };
                match log.append(request).await {
                    Ok(outcome) => Ok(outcome.deduplicated),
                    Err(e @ (AppendError::Unavailable(_) | AppendError::Storage(_))) => {
                        Err(Failure::Retry(e.into()))
                    }
                    Err(e) => Err(Failure::Refused(e.to_string())),
                }
            }
            Sink::Remote(client) => {
                let request = v1::AppendRequest {
                    events,
                    expected_versions: Default::default(),
                };
                match client.append(request).await {
                    Ok(r) => Ok(r.into_inner().deduplicated),
                    Err(s) => match s.code() {
                        tonic::Code::InvalidArgument
                        | tonic::Code::FailedPrecondition
                        | tonic::Code::AlreadyExists
                        | tonic::Code::Aborted
                        | tonic::Code::ResourceExhausted => {
                            Err(Failure::Refused(format!("{:?}: {}", s.code(), s.message())))
                        }
                        _ => Err(Failure::Retry(anyhow::anyhow!(
                            "append failed ({:?}): {}",
                            s.code(),
                            s.message()
                        ))),
                    },
                }
            }
        }
    }
}

/// The rules, the position folded so far, and the decisions not yet in the log.
#[derive(Default)]
struct Core {
    rules: AlertRules,
    position: u64,
    next_seq: u64,
    /// Decisions in the order they were made.
    pending: BTreeMap<u64, Event>,
    /// Event id of a pending alert → its key in `pending`.
    pending_ids: HashMap<String, u64>,
    status: ReactorStatus,
}

impl Core {
    /// Folds the next event of the log (its position must follow the last one folded).
    fn fold(&mut self, event: &Event) -> anyhow::Result<()> {
        anyhow::ensure!(
            event.position == self.position + 1,
            "expected position {}, got {}",
            self.position + 1,
            event.position
        );
        if let Some(Payload::AlertRaised(_)) = &event.payload {
            // Already in the log: nothing left to append for it.
            if let Some(seq) = self.pending_ids.remove(&event.event_id) {
                self.pending.remove(&seq);
            }
        }
        for decision in self.rules.apply(event) {
            let alert = alert_event(event, &decision);
            if !self.pending_ids.contains_key(&alert.event_id) {
                tracing::debug!(patient = %alert.patient_id, rule = %decision.rule, severity = ?decision.severity, "alert decided");
                self.pending_ids
                    .insert(alert.event_id.clone(), self.next_seq);
                self.pending.insert(self.next_seq, alert);
                self.next_seq += 1;
            }
        }
        self.position = event.position;
        Ok(())
    }

    /// Folds events as a source delivers them: skips what was folded, refills gaps from the log.
    async fn fold_all<S: EventSource>(
        &mut self,
        source: &mut S,
        mut events: Vec<Event>,
    ) -> anyhow::Result<()> {
        events.sort_by_key(|e| e.position);
        for event in events {
            if event.position <= self.position {
                continue;
            }
            while event.position > self.position + 1 {
                let fill = source
                    .range(self.position + 1, event.position - 1, BATCH)
                    .await?;
                anyhow::ensure!(
                    !fill.is_empty(),
                    "the log has no events {}..{}",
                    self.position + 1,
                    event.position
                );
                for e in &fill {
                    self.fold(e)?;
                }
            }
            self.fold(&event)?;
        }
        Ok(())
    }

    fn remove(&mut self, seq: u64) {
        if let Some(e) = self.pending.remove(&seq) {
            self.pending_ids.remove(&e.event_id);
        }
    }

    /// Appends every pending decision, in order. A transient failure leaves the rest pending.
    async fn flush(&mut self, sink: &mut Sink) -> anyhow::Result<()> {
        while !self.pending.is_empty() {
            let chunk: Vec<(u64, Event)> = self
                .pending
                .iter()
                .take(APPEND_BATCH)
                .map(|(k, e)| (*k, e.clone()))
                .collect();
            let n = chunk.len() as u64;
            match sink
                .append(chunk.iter().map(|(_, e)| e.clone()).collect())
                .await
            {
                Ok(deduplicated) => {
                    if deduplicated {
                        self.status.alerts_already_stored += n;
                    } else {
                        self.status.alerts_appended += n;
                    }
                    for (seq, _) in &chunk {
                        self.remove(*seq);
                    }
                }
                Err(Failure::Retry(e)) => return Err(e),
                // One refused alert refuses the batch (or a batch mixes stored and new alerts):
                // settle them one by one.
                Err(Failure::Refused(why)) if chunk.len() > 1 => {
                    tracing::debug!(reason = %why, "alert batch refused; appending one by one");
                    for (seq, event) in chunk {
                        match sink.append(vec![event.clone()]).await {
                            Ok(true) => self.status.alerts_already_stored += 1,
                            Ok(false) => self.status.alerts_appended += 1,
                            Err(Failure::Retry(e)) => return Err(e),
                            Err(Failure::Refused(why)) => self.refused(&event, &why),
                        }
                        self.remove(seq);
                    }
                }
                Err(Failure::Refused(why)) => {
                    let (seq, event) = &chunk[0];
                    self.refused(event, &why);
                    self.remove(*seq);
                }
            }
        }
        Ok(())
    }

    fn refused(&mut self, alert: &Event, why: &str) {
        self.status.alerts_refused += 1;
        tracing::warn!(
            patient = %alert.patient_id,
            observation = %alert.causation_id,
            reason = %why,
            "the log refused an alert; dropped"
        );
    }

    fn publish(&mut self, status: &watch::Sender<ReactorStatus>) {
        self.status.position = self.position;
        self.status.pending = self.pending.len() as u64;
        status.send_replace(self.status);
    }
}

/// Runs the reactor until `shutdown` turns true: catch-up from position 1 to the head (state),
/// append what the log lacks, then follow live events. Source and sink errors are retried with
/// backoff.
pub async fn run<S: EventSource>(
    mut source: S,
    mut sink: Sink,
    status: watch::Sender<ReactorStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut core = Core::default();
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let result: anyhow::Result<()> = async {
            if !core.status.caught_up {
                let head = source.head().await?;
                while core.position < head {
                    if *shutdown.borrow() {
                        return Ok(());
                    }
                    let events = source.range(core.position + 1, head, BATCH).await?;
                    anyhow::ensure!(
                        !events.is_empty(),
                        "the log ended at {} before {head}",
                        core.position
                    );
                    core.fold_all(&mut source, events).await?;
                    core.publish(&status);
                }
                core.flush(&mut sink).await?;
                core.status.caught_up = true;
                core.publish(&status);
                tracing::info!(
                    position = core.position,
                    patients = core.rules.len(),
                    alerts_appended = core.status.alerts_appended,
                    "alert reactor caught up"
                );
            }
            core.flush(&mut sink).await?;
            core.publish(&status);
            let events = tokio::select! {
                r = source.next(core.position + 1, BATCH) => r?,
                _ = shutdown.changed() => return Ok(()),
            };
            core.fold_all(&mut source, events).await?;
            core.flush(&mut sink).await?;
            core.publish(&status);
            Ok(())
        }
        .await;
        match result {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                core.publish(&status);
                tracing::warn!(error = %format!("{e:#}"), retry_ms = backoff.as_millis() as u64, "alert reactor paused");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}
