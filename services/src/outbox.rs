//! The NATS outbox: publishes every committed event to JetStream, at least once, in position order.
//!
//! Its cursor (last position JetStream acknowledged) is kept in the log's storage. After a crash or
//! a NATS outage it resumes from the cursor; events published twice are dropped by JetStream's
//! de-duplication (`Nats-Msg-Id` = event id, 24 h window).
use async_nats::{
    header::{self, HeaderName},
    jetstream::{self, context::PublishAckFuture},
    HeaderMap,
};
use journey_event_log::{EventLog, StoredEvent};
use journey_proto::{prost::Message, v1::Event, EventType};
use std::{
    collections::VecDeque,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct OutboxConfig {
    pub url: String,
    pub stream: String,
    /// Subjects are `<prefix>.<event_type>`; the default prefix is `journey.v1`.
    pub subject_prefix: String,
}

/// The outbox's progress, shared with the status page.
#[derive(Debug, Default)]
pub struct OutboxStatus {
    pub published: AtomicU64,
}

const BATCH: usize = 1024;
/// Batches published ahead of their acknowledgements.
const IN_FLIGHT_BATCHES: usize = 4;

// Header names built once (a name from a `&str` is copied for every message).
const POSITION: HeaderName = HeaderName::from_static("Journey-Position");
const HASH: HeaderName = HeaderName::from_static("Journey-Hash");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

fn cursor_key(stream: &str) -> String {
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

pub fn subject(prefix: &str, event: &Event) -> String {
    let kind = event
        .payload
        .as_ref()
        .map(EventType::of)
        .map_or("unknown", EventType::snake);
    format!("{prefix}.{kind}")
}

/// Runs until `shutdown` turns true.
pub async fn run(
    log: Arc<EventLog>,
    config: OutboxConfig,
    status: Arc<OutboxStatus>,
    mut shutdown: watch::Receiver<bool>,
) {
    let key = cursor_key(&config.stream);
    let mut cursor = match log.storage().meta(&key) {
        Ok(Some(v)) if v.len() == 8 => u64::from_be_bytes(v.try_into().expect("8 bytes")),
        _ => 0,
    };
    status.published.store(cursor, Ordering::Relaxed);
    let mut backoff = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        match publish_from(&log, &config, &key, &mut cursor, &status, &mut shutdown).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, cursor, retry_in_ms = backoff.as_millis() as u64, "nats publication paused");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn connect(config: &OutboxConfig) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(config.url.as_str())
        .await?;
    let js = jetstream::new(client);
    js.get_or_create_stream(jetstream::stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        duplicate_window: Duration::from_secs(24 * 3600),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    Ok(js)
}

async fn publish_from(
    log: &Arc<EventLog>,
    config: &OutboxConfig,
    key: &str,
    cursor: &mut u64,
    status: &OutboxStatus,
    shutdown: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let js = connect(config).await?;
    tracing::info!(url = %config.url, stream = %config.stream, cursor = *cursor, "publishing to nats");
    let mut head = log.watch();
    // Batches published and not yet acknowledged, oldest first: the next batch goes out while
    // the acks of the previous ones come back. The cursor moves only past acknowledged batches.
    let mut in_flight: VecDeque<(u64, Vec<PublishAckFuture>)> = VecDeque::new();
    let mut sent = *cursor;
    loop {
        while sent < log.head().position {
            let l = log.clone();
            let from = sent + 1;
            let batch = tokio::task::spawn_blocking(move || l.read(from, BATCH)).await??;
            let Some(last) = batch.last().map(|e| e.position) else {
                break;
            };
            in_flight.push_back((
                last,
                publish_batch(&js, &config.subject_prefix, &batch).await?,
            ));
            sent = last;
            if in_flight.len() >= IN_FLIGHT_BATCHES {
                settle(log, key, cursor, status, in_flight.pop_front()).await?;
            }
        }
        while let Some(oldest) = in_flight.pop_front() {
            settle(log, key, cursor, status, Some(oldest)).await?;
        }
        tokio::select! {
            changed = head.changed() => if changed.is_err() { return Ok(()) },
            _ = shutdown.changed() => return Ok(()),
        }
    }
}

/// Waits for a published batch's acks, then moves the durable cursor past it.
async fn settle(
    log: &Arc<EventLog>,
    key: &str,
    cursor: &mut u64,
    status: &OutboxStatus,
    batch: Option<(u64, Vec<PublishAckFuture>)>,
) -> anyhow::Result<()> {
    let Some((last, acks)) = batch else {
        return Ok(());
    };
    for ack in acks {
        ack.await?;
    }
    *cursor = last;
    log.storage().set_meta(key, &cursor.to_be_bytes())?;
    status.published.store(*cursor, Ordering::Relaxed);
    metrics::gauge!("journey_outbox_backlog")
        .set(log.head().position.saturating_sub(*cursor) as f64);
    Ok(())
}

/// Publishes a batch; returns its acks, in order, still in flight.
async fn publish_batch(
    js: &jetstream::Context,
    prefix: &str,
    batch: &[StoredEvent],
) -> anyhow::Result<Vec<PublishAckFuture>> {
    let mut acks = Vec::with_capacity(batch.len());
    for stored in batch {
        let event = Event::decode(stored.bytes.as_slice())?;
        let _span = publish_span(&event.event_id, stored.position);
        let mut headers = HeaderMap::new();
        headers.insert(header::NATS_MESSAGE_ID, event.event_id.as_str());
        headers.insert(POSITION, stored.position.to_string().as_str());
        headers.insert(HASH, hex(&stored.hash).as_str());
        headers.insert(
            TRACEPARENT,
            journey_proto::trace::traceparent(&event.event_id, stored.position).as_str(),
        );
        let ack = js
            .publish_with_headers(
                subject(prefix, &event),
                headers,
                stored.bytes.clone().into(),
            )
            .await?;
        acks.push(ack);
    }
    Ok(acks)
}

/// Lower-case hex, two digits per byte (no formatting machinery: it runs once per published event).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(super::hex(&[]), "");
    }
}
