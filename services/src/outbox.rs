//! The NATS outbox: publishes every committed event to JetStream, at least once, in position order.
//!
//! Its cursor (last position JetStream acknowledged) is kept in the log's storage. After a crash or
//! a NATS outage it resumes from the cursor; events published twice are dropped by JetStream's
//! de-duplication (`Nats-Msg-Id` = event id, 24 h window).
//!
//! Messages are chained: each carries `Nats-Expected-Last-Msg-Id` = the id of the one before it,
//! and a batch of up to 1,024 asks for a single ack, its last message's (`publish_batch`).
//!
//! With `--ack replicated` (`replication.rs`) the chain is fenced by sequence instead: each message
//! carries `Nats-Expected-Last-Sequence` = its position − 1 (stream sequence = position, and a
//! stale writer stores nothing), the stream has 3 replicas, and each acknowledged batch moves the
//! log's replicated watermark.
use crate::replication;
use async_nats::{
    header::{self, HeaderName},
    jetstream::{
        self,
        context::{PublishAckFuture, PublishError, PublishErrorKind},
    },
    HeaderMap, Subject,
};
use journey_event_log::{EventLog, Head, StoredEvent};
use journey_proto::{EventHead, EventType};
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::{
    sync::{watch, Notify},
    task::JoinHandle,
};

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub url: String,
    pub stream: String,
    /// Subjects are `<prefix>.<event_type>`; the default prefix is `journey.v1`.
    pub subject_prefix: String,
    /// `--ack replicated`: a 3-replica stream, messages fenced by sequence, the log's replicated
    /// watermark moved by each acknowledgement.
    pub replicated: bool,
}

/// The outbox's progress, shared with the status page.
#[derive(Debug, Default)]
pub struct OutboxStatus {
    pub published: AtomicU64,
}

const BATCH: usize = 1024;
/// Replicated mode: how long JetStream may take to answer (an ack, a request) before the outbox
/// connects again, to another server (appends wait for these acks; JetStream's default is 5 s).
const REPLICATED_TIMEOUT: Duration = Duration::from_secs(2);
/// Batches published ahead of their acknowledgements.
const IN_FLIGHT_BATCHES: usize = 4;
/// Replicated mode: appends wait for the acks, and a batch waiting for room behind the acks of
/// earlier ones waits one round trip more (`journey bench append --ack replicated`, BENCHMARKS.md:
/// a single-event append's p99 1.3–1.4× JetStream alone's with 32, 1.3–1.8× with 4).
const IN_FLIGHT_BATCHES_REPLICATED: usize = 32;

// Header names built once (a name from a `&str` is copied for every message).
const POSITION: HeaderName = HeaderName::from_static("Journey-Position");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The meta key of the last position the stream `stream` is known to hold (the outbox's cursor;
/// a standby keeps it as it follows).
pub fn cursor_key(stream: &str) -> String {
    format!("outbox.nats.{stream}")
}

/// A span in the event's trace for its publication (when traces are exported).
fn publish_span(event_id: &str, position: u64) -> Option<tracing::Span> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !journey_proto::trace::enabled() {
        return None;
    }
    let span = tracing::info_span!("journey.publish", event_id, position);
    let _ = span.set_parent(journey_proto::trace::event_context(event_id, position));
    Some(span)
}

/// Runs until `shutdown` turns true, or until the stream turns out to be ahead of this log or
/// another's (replicated mode: [`replication::Stale`], which retrying cannot mend).
pub async fn run(
    log: Arc<EventLog>,
    config: OutboxConfig,
    status: Arc<OutboxStatus>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), replication::Stale> {
    let key = cursor_key(&config.stream);
    let mut cursor = match log.storage().meta(&key) {
        Ok(Some(v)) if v.len() == 8 => u64::from_be_bytes(v.try_into().expect("8 bytes")),
        _ => 0,
    };
    status.published.store(cursor, Ordering::Relaxed);
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let before = cursor;
        match publish_from(&log, &config, &key, &mut cursor, &status, &mut shutdown).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let e = match e.downcast::<replication::Stale>() {
                    Ok(stale) => return Err(stale),
                    Err(e) => e,
                };
                // Replicated mode: appends wait for this publication; after progress, the next
                // attempt comes at once, not after the longest pause so far.
                if config.replicated && cursor > before {
                    backoff = Duration::from_millis(100);
                }
                tracing::warn!(error = %e, cursor, retry_in_ms = backoff.as_millis() as u64, "nats publication paused");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return Ok(()),
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// A JetStream connection: the core client (messages that ask for no ack) and its JetStream view.
pub struct Broker {
    client: async_nats::Client,
    js: jetstream::Context,
}

impl Broker {
    /// The JetStream view of the connection (the writer's lease bucket lives beside the stream).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }
}

/// Connects and gets (or creates) the stream; in replicated mode, refuses one that is not R3 on
/// file storage.
pub async fn connect_stream(
    config: &OutboxConfig,
) -> anyhow::Result<(Broker, jetstream::stream::Stream)> {
    // `--nats-url` may name several servers of a cluster, comma-separated (the client learns the
    // others from the first it reaches).
    let servers = config
        .url
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            let url = journey_log_access::broker::redact(&config.url);
            anyhow::anyhow!("--nats-url {url} is not a list of NATS servers: {e}")
        })?;
    let mut options = journey_log_access::broker::options(&config.url)?
        .connection_timeout(Duration::from_secs(2));
    if config.replicated {
        // A server that stops answering (frozen, cut off) is left after two missed pings.
        options = options
            .ping_interval(Duration::from_secs(1))
            .request_timeout(Some(REPLICATED_TIMEOUT));
    }
    let connect = options.connect(servers);
    let connected = if config.replicated {
        // The connection timeout covers the TCP connection only: a frozen server accepts it and
        // never says hello. Replicated mode tries again (another server, most likely) instead.
        tokio::time::timeout(REPLICATED_TIMEOUT, connect)
            .await
            .map_err(|_| anyhow::anyhow!("NATS said nothing for {REPLICATED_TIMEOUT:?}"))?
    } else {
        connect.await
    };
    let client = connected.map_err(|e| {
        let url = journey_log_access::broker::redact(&config.url);
        anyhow::anyhow!("cannot reach NATS at {url}: {e}")
    })?;
    let mut js = jetstream::new(client.clone());
    if config.replicated {
        js.set_timeout(REPLICATED_TIMEOUT);
    }
    let stream = js
        .get_or_create_stream(replication::stream_config(
            &config.stream,
            &config.subject_prefix,
            config.replicated,
        ))
        .await?;
    if config.replicated {
        replication::check_stream(stream.cached_info())?;
    }
    Ok((Broker { client, js }, stream))
}

/// Every subject, built once: `<prefix>.<event_type>`, by event type.
struct Subjects {
    by_type: Vec<Subject>,
    unknown: Subject,
}

impl Subjects {
    fn new(prefix: &str) -> Self {
        Subjects {
            by_type: EventType::ALL
                .iter()
                .map(|t| Subject::from(format!("{prefix}.{}", t.snake())))
                .collect(),
            unknown: Subject::from(format!("{prefix}.unknown")),
        }
    }

    fn of(&self, t: Option<EventType>) -> Subject {
        t.map_or(&self.unknown, |t| &self.by_type[t as usize])
            .clone()
    }
}

/// A published batch awaiting its acknowledgement.
struct InFlight {
    last: u64,
    /// The batch's last event (the replicated watermark it moves to).
    tip: Head,
    acks: Vec<PublishAckFuture>,
    /// Whether the batch was chained (only its last message asked for an ack).
    chained: bool,
    /// Replicated mode: the acks awaited by a task of their own, which says when it is done, so
    /// that what becomes durable meanwhile goes out without waiting for them.
    awaited: Option<(AckTask, Arc<Notify>)>,
}

/// A task awaiting a batch's acks.
type AckTask = JoinHandle<Result<(), PublishError>>;

/// Waits for acks in order; the first refusal.
async fn all_acked(acks: Vec<PublishAckFuture>) -> Result<(), PublishError> {
    for ack in acks {
        // A duplicate (a message stored before a restart) proves as much as a new one: every
        // message of ours in the stream was stored behind its predecessor (`publish_from`).
        ack.await?;
    }
    Ok(())
}

async fn publish_from(
    log: &Arc<EventLog>,
    config: &OutboxConfig,
    key: &str,
    cursor: &mut u64,
    status: &OutboxStatus,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (broker, stream) = connect_stream(config).await?;
    if config.replicated {
        // Publication resumes after what the stream holds (checked to be this log's).
        *cursor = replication::resync(log, &stream, false).await?;
        log.storage().set_meta(key, &cursor.to_be_bytes())?;
        status.published.store(*cursor, Ordering::Relaxed);
    }
    drop(stream);
    tracing::info!(url = %journey_log_access::broker::redact(&config.url), stream = %config.stream, cursor = *cursor, "publishing to nats");
    let subjects = Subjects::new(&config.subject_prefix);
    // What may go out: the durable events, or in replicated mode every written one (the local
    // fsync and the cluster's copy then run side by side; readers and appends wait for both).
    let mut head = log.watch_publishable();
    // Batches published and not yet acknowledged, oldest first: the next batch goes out while
    // the acks of the previous ones come back. The cursor moves only past acknowledged batches.
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut sent = *cursor;
    // The id of the last message sent, which the next one chains to. `None` after a
    // (re)connection or a broken chain: the chain then starts again from the event after the
    // cursor, sent alone and acknowledged before anything follows it. So every message stored
    // after it is stored behind its predecessor, and the stream keeps position order even when
    // a message is lost on the way.
    let mut chain: Option<String> = None;
    let in_flight_max = if config.replicated {
        IN_FLIGHT_BATCHES_REPLICATED
    } else {
        IN_FLIGHT_BATCHES
    };
    loop {
        while sent < log.publishable_head().position {
            let restart = chain.is_none();
            let l = log.clone();
            let (from, size) = (sent + 1, if restart { 1 } else { BATCH });
            let batch =
                tokio::task::spawn_blocking(move || l.read_publishable(from, size)).await??;
            let Some(last) = batch.last().map(|e| e.position) else {
                break;
            };
            let publish = publish_batch(&broker, &subjects, batch, &mut chain, config.replicated);
            let published = if config.replicated {
                // A frozen server stops reading: its socket fills and a publish would wait for
                // ever. Replicated mode goes to another server instead.
                tokio::time::timeout(REPLICATED_TIMEOUT, publish)
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("NATS took no message for {REPLICATED_TIMEOUT:?}")
                    })??
            } else {
                publish.await?
            };
            let mut published = published;
            if config.replicated {
                let (acks, done) = (std::mem::take(&mut published.acks), Arc::new(Notify::new()));
                let said = done.clone();
                let task = tokio::spawn(async move {
                    let acked = all_acked(acks).await;
                    said.notify_one();
                    acked
                });
                published.awaited = Some((task, done));
            }
            in_flight.push_back(published);
            sent = last;
            if restart || in_flight.len() >= in_flight_max {
                let oldest = in_flight.pop_front();
                if !settle(log, key, cursor, status, oldest).await? {
                    rewind(&mut in_flight, &mut sent, &mut chain, *cursor);
                }
            }
        }
        while let Some(oldest) = in_flight.front() {
            // Replicated mode: appends wait for these acks; events made durable meanwhile go out
            // now rather than after them (at most `in_flight_max` batches in flight).
            if let Some((task, done)) = &oldest.awaited {
                if !task.is_finished() && in_flight.len() < in_flight_max {
                    let done = done.clone();
                    tokio::select! {
                        _ = done.notified() => {}
                        changed = head.changed() => {
                            if changed.is_err() {
                                return Ok(());
                            }
                            if sent < log.publishable_head().position {
                                break;
                            }
                            continue;
                        }
                    }
                }
            }
            let oldest = in_flight.pop_front();
            if !settle(log, key, cursor, status, oldest).await? {
                rewind(&mut in_flight, &mut sent, &mut chain, *cursor);
            }
        }
        if sent < log.publishable_head().position {
            continue;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return Ok(()) },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// After a broken chain: forgets the batches in flight; everything past the cursor is sent again,
/// behind a new chain.
fn rewind(
    in_flight: &mut VecDeque<InFlight>,
    sent: &mut u64,
    chain: &mut Option<String>,
    cursor: u64,
) {
    in_flight.clear();
    *sent = cursor;
    *chain = None;
}

/// Waits for a published batch's acks, then moves the durable cursor past it. `Ok(false)`: a
/// chained batch whose chain broke (some message of it may not be stored), to be sent again.
async fn settle(
    log: &Arc<EventLog>,
    key: &str,
    cursor: &mut u64,
    status: &OutboxStatus,
    batch: Option<InFlight>,
) -> anyhow::Result<bool> {
    let Some(batch) = batch else {
        return Ok(true);
    };
    let acked = match batch.awaited {
        Some((task, _)) => task.await?,
        None => all_acked(batch.acks).await,
    };
    match acked {
        Ok(()) => {}
        Err(e) if batch.chained && e.kind() == PublishErrorKind::WrongLastMessageId => {
            return Ok(broken(*cursor));
        }
        // Fenced by sequence (replicated mode): a message lost on the way, or another writer.
        // Reconnecting checks the stream against the log before anything is sent again.
        Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
            anyhow::bail!(
                "JetStream refused a message after position {}: the stream's last sequence is \
                     not the position before it; checking the stream again",
                *cursor
            );
        }
        Err(e) => return Err(e.into()),
    }
    *cursor = batch.last;
    log.mark_replicated(batch.tip);
    log.storage().set_meta(key, &cursor.to_be_bytes())?;
    status.published.store(*cursor, Ordering::Relaxed);
    metrics::gauge!("journey_outbox_backlog")
        .set(log.publishable_head().position.saturating_sub(*cursor) as f64);
    Ok(true)
}

/// Counts and logs a broken chain; always `false` (the batch is to be sent again).
fn broken(cursor: u64) -> bool {
    tracing::debug!(
        cursor,
        "nats chain broken; resending from the cursor behind a new chain"
    );
    metrics::counter!("journey_outbox_chain_breaks_total").increment(1);
    false
}

/// Publishes a batch; returns its acks, in order, still in flight.
///
/// With a `chain` (the id of the message sent just before), every message carries
/// `Nats-Expected-Last-Msg-Id` = the id of the one before it, and only the last asks for an ack:
/// JetStream stores a message only if the one before it is the stream's last, so that one ack
/// (not a duplicate) proves the whole batch stored, in order. Duplicates (events stored before a
/// restart) are dropped by JetStream before that check, so a chain passes over them. Without a
/// chain, every message asks for its own ack (the caller then sends a single message). Every
/// stored event has a UUID id (the log refuses any other), so no link of a chain is empty.
/// `fenced` (replicated mode): the link is `Nats-Expected-Last-Sequence` = position − 1 instead,
/// which proves the same (and that the stream's sequence is the position).
async fn publish_batch(
    broker: &Broker,
    subjects: &Subjects,
    batch: Vec<StoredEvent>,
    chain: &mut Option<String>,
    fenced: bool,
) -> anyhow::Result<InFlight> {
    let chained = chain.is_some();
    let (count, last) = (batch.len(), batch.last().map_or(0, |e| e.position));
    let tip = batch.last().map_or(
        Head {
            position: 0,
            hash: [0; 32],
        },
        |e| Head {
            position: e.position,
            hash: e.hash,
        },
    );
    let mut acks = Vec::with_capacity(if chained { 1 } else { count });
    for (i, stored) in batch.into_iter().enumerate() {
        let head = EventHead::peek(&stored.bytes)?;
        let _span = publish_span(&head.event_id, stored.position);
        // Owned values: the header map keeps them as they are, without a copy.
        let mut headers = HeaderMap::new();
        headers.insert(POSITION, stored.position.to_string());
        headers.insert(
            TRACEPARENT,
            journey_proto::trace::traceparent(&head.event_id, stored.position),
        );
        headers.insert(header::NATS_MESSAGE_ID, head.event_id.clone());
        // Even an unchained batch leaves its last id as the chain: if that message turns out not
        // to be the stream's last (a duplicate), the next batch is refused and sent again.
        let previous = chain.replace(head.event_id);
        if fenced {
            headers.insert(
                header::NATS_EXPECTED_LAST_SEQUENCE,
                (stored.position - 1).to_string(),
            );
        } else if let (true, Some(previous)) = (chained, previous) {
            headers.insert(header::NATS_EXPECTED_LAST_MESSAGE_ID, previous);
        }
        let subject = subjects.of(head.event_type);
        let body = stored.bytes.into();
        if !chained || i + 1 == count {
            acks.push(
                broker
                    .js
                    .publish_with_headers(subject, headers, body)
                    .await?,
            );
        } else {
            broker
                .client
                .publish_with_headers(subject, headers, body)
                .await?;
        }
    }
    Ok(InFlight {
        last,
        tip,
        acks,
        chained,
        awaited: None,
    })
}

/// At start in replicated mode: the cluster reachable, the stream R3 on file storage (created so
/// when missing) and the replicated watermark brought to what it holds, before anything is read.
pub async fn check_replicated_at_start(
    log: &EventLog,
    config: &OutboxConfig,
) -> anyhow::Result<()> {
    let (_, stream) = connect_stream(config).await?;
    let at = replication::resync(log, &stream, true).await?;
    tracing::info!(
        stream = %config.stream,
        replicated = at,
        durable = log.publishable_head().position,
        "acknowledging appends once the NATS cluster holds them (--ack replicated); each NATS \
         server must run with `jetstream {{ sync_interval: always }}`, which a client cannot \
         check (see the servers' /varz)"
    );
    Ok(())
}
