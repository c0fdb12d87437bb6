//! `--ack replicated`: the JetStream stream as the log's replica. The outbox publishes every
//! durable event with `Nats-Expected-Last-Sequence` = its position − 1, so the stream's sequence
//! is the log's position and a writer that is behind the stream (a stale one) can never store
//! anything; each acknowledgement moves the log's replicated watermark, which readers stop at and
//! appends wait for (`EventLog::mark_replicated`).
//!
//! What is checked here: the stream has 3 replicas and file storage (created so when missing), and
//! at every (re)connection that the stream's last message is this log's event at that position
//! (else publication stops: another writer appended, or the stream is not this log's). What
//! cannot be checked from a client: the servers' `sync_interval: always` (the client protocol does
//! not report a server's configuration; its monitoring page `/varz` does, which the tests read).
use anyhow::{bail, Context};
use async_nats::{header, jetstream};
use journey_event_log::{AppendError, EventLog, Head, StoredEvent};
use journey_proto::EventHead;
use std::time::Duration;

/// Why publication stopped for good: the stream holds events this log does not (another writer
/// appended: this one is stale), or is not this log's. Retrying cannot help; under the writer's
/// lease (`journey-failover`) the node stops, to come back as a standby.
#[derive(Debug)]
pub struct Stale(pub String);

impl std::fmt::Display for Stale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stale {}

/// Replicas the stream must have.
pub const REPLICAS: usize = 3;

/// The stream the outbox publishes to (`name`, subjects under `subject_prefix`): in replicated
/// mode 3 replicas, always file storage.
pub fn stream_config(
    name: &str,
    subject_prefix: &str,
    replicated: bool,
) -> jetstream::stream::Config {
    jetstream::stream::Config {
        name: name.to_owned(),
        subjects: vec![format!("{subject_prefix}.>")],
        duplicate_window: Duration::from_secs(24 * 3600),
        storage: jetstream::stream::StorageType::File,
        num_replicas: if replicated {
            REPLICAS
        } else {
            jetstream::stream::Config::default().num_replicas
        },
        ..Default::default()
    }
}

/// Refuses a stream that cannot hold a replicated log: fewer than 3 replicas, or in memory.
pub fn check_stream(info: &jetstream::stream::Info) -> anyhow::Result<()> {
    let c = &info.config;
    if c.num_replicas != REPLICAS {
        bail!(
            "--ack replicated needs the JetStream stream {} with {REPLICAS} replicas; it has {} \
             (a stream's replicas are set with `nats stream edit {} --replicas {REPLICAS}`, on a \
             cluster of at least three servers)",
            c.name,
            c.num_replicas,
            c.name
        );
    }
    if c.storage != jetstream::stream::StorageType::File {
        bail!(
            "--ack replicated needs the JetStream stream {} on file storage; it is in memory",
            c.name
        );
    }
    Ok(())
}

/// Brings the replicated watermark to what the stream holds, and returns it (where publication
/// resumes): the stream's last sequence, once its last message is checked to be this log's event
/// at that position. A stream ahead of what this log wrote, or holding another event there, stops
/// publication (this writer is stale, or the stream is another's) — except at start (`recover`),
/// where a stream ahead is first copied in: events this writer published before its crash took
/// its local copy (the cluster's copy and the local fsync run side by side); they must continue
/// the chain.
pub async fn resync(
    log: &EventLog,
    stream: &jetstream::stream::Stream,
    recover: bool,
) -> anyhow::Result<u64> {
    let info = stream.get_info().await.context("stream information")?;
    check_stream(&info)?;
    let last = info.state.last_sequence;
    let written = log.publishable_head().position;
    if last > written && recover {
        recover_from(log, stream, written + 1, last).await?;
    }
    let written = log.publishable_head().position;
    if last > written {
        return Err(Stale(format!(
            "the JetStream stream {} holds {last} events, this log only {written}: another \
             writer appended after this one (it is stale), or the stream is not this log's; \
             nothing is published",
            info.config.name
        ))
        .into());
    }
    if last == 0 {
        return Ok(0);
    }
    let message = stream
        .get_raw_message(last)
        .await
        .with_context(|| format!("reading the stream's message {last}"))?;
    let stored = log
        .read_publishable(last, 1)?
        .into_iter()
        .next()
        .filter(|e| e.position == last)
        .with_context(|| format!("the log has no event at position {last}"))?;
    let ours = EventHead::peek(&stored.bytes)?.event_id;
    let theirs = message
        .headers
        .get(header::NATS_MESSAGE_ID)
        .map(|v| v.as_str().to_string());
    if theirs.as_deref() != Some(ours.as_str()) {
        return Err(Stale(format!(
            "the JetStream stream {}'s message {last} is event {}, this log holds {ours} at \
             position {last}: another writer appended (this one is stale), or the stream is not \
             this log's; nothing is published",
            info.config.name,
            theirs.as_deref().unwrap_or("without an id")
        ))
        .into());
    }
    log.mark_replicated(Head {
        position: last,
        hash: stored.hash,
    });
    Ok(last)
}

/// Copies the stream's messages `from..=to` into the log (each the event at its sequence), once
/// they continue its chain; a stream that does not is another writer's or another log's.
async fn recover_from(
    log: &EventLog,
    stream: &jetstream::stream::Stream,
    from: u64,
    to: u64,
) -> anyhow::Result<()> {
    let mut copies = Vec::with_capacity((to - from + 1) as usize);
    for sequence in from..=to {
        let message = stream
            .get_raw_message(sequence)
            .await
            .with_context(|| format!("reading the stream's message {sequence}"))?;
        copies.push(StoredEvent {
            position: sequence,
            hash: journey_event_log::hash_of(&message.payload),
            bytes: message.payload.to_vec(),
        });
    }
    match log.append_copies(copies).await {
        Ok(_) => {
            tracing::warn!(
                from,
                to,
                "the stream held events {from}..{to} this log had lost (published before a crash \
                 took their local fsync): copied back from the stream"
            );
            Ok(())
        }
        Err(AppendError::Diverged(why)) => Err(Stale(format!(
            "the JetStream stream holds events after this log's last ({}) that do not continue \
             it ({why}): another writer appended (this one is stale), or the stream is not this \
             log's; nothing is published",
            from - 1
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}
