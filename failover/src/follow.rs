//! A standby follows the stream: every message, from the one after its head, is written into its
//! own log as a copy of the writer's event (its bytes, its position) once it continues the chain.
//! A message that does not (damaged, foreign, out of place) stops the standby: JetStream's own
//! storage has had undetected corruption, and a standby that took such a stream over would serve
//! and extend a broken log.
use async_nats::jetstream::consumer::{pull, DeliverPolicy};
use futures::{FutureExt, StreamExt};
use journey_event_log::{hash_of, AppendError, EventLog, StoredEvent};
use journey_proto::{prost::Message, v1::Event};
use journey_services::outbox::{self, OutboxConfig};
use std::{sync::Arc, time::Duration};
use tokio::sync::watch;

/// Messages written by one copy (one fsync).
const BATCH: usize = 1024;

/// Why following stopped.
enum Stop {
    /// The stream holds something that does not continue this log: fatal.
    Diverged(String),
    /// NATS went away, the consumer broke: follow again.
    Broken(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Broken(e.into())
    }
}

/// Follows the stream until `stop` turns true (`Ok`), or until it holds an event that does not
/// continue this log (`Err`, what is wrong).
pub async fn follow(
    log: Arc<EventLog>,
    config: OutboxConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(), String> {
    let key = outbox::cursor_key(&config.stream);
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        match follow_once(&log, &config, &key, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(Stop::Diverged(why)) => return Err(why),
            Err(Stop::Broken(e)) => {
                tracing::warn!(error = %format!("{e:#}"), head = log.durable_head().position, "following the stream paused");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
}

async fn follow_once(
    log: &Arc<EventLog>,
    config: &OutboxConfig,
    key: &str,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), Stop> {
    let (_broker, stream) = outbox::connect_stream(config).await?;
    let from = log.durable_head().position + 1;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    tracing::info!(from, stream = %config.stream, "standby: following the writer's stream");
    loop {
        let first = tokio::select! {
            m = messages.next() => m,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        let first = first.ok_or_else(|| anyhow::anyhow!("the consumer ended"))??;
        let mut batch = vec![copy_of(&first)?];
        while batch.len() < BATCH {
            match messages.next().now_or_never() {
                Some(Some(Ok(m))) => batch.push(copy_of(&m)?),
                _ => break,
            }
        }
        let (first, last) = (batch[0].position, batch[batch.len() - 1].position);
        match log.append_copies(batch).await {
            Ok(_) => {}
            Err(AppendError::Diverged(why)) => {
                return Err(Stop::Diverged(format!(
                    "the stream {} does not continue this log at sequences {first}..{last}: {why}",
                    config.stream
                )))
            }
            Err(e) => return Err(Stop::Broken(e.into())),
        }
        let head = log.durable_head();
        // Everything a standby holds is in the stream: readers see it all.
        log.mark_replicated(head);
        log.storage().set_meta(key, &head.position.to_be_bytes())?;
    }
}

/// A message as the copy of the event it carries: the stream's sequence is the event's position
/// (the writer publishes so), its body the event's stored bytes.
fn copy_of(m: &async_nats::jetstream::Message) -> Result<StoredEvent, Stop> {
    let sequence = m
        .info()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .stream_sequence;
    let event = Event::decode(m.payload.as_ref()).map_err(|e| {
        Stop::Diverged(format!(
            "the stream's message {sequence} is not an event ({e})"
        ))
    })?;
    if event.position != sequence {
        return Err(Stop::Diverged(format!(
            "the stream's message {sequence} carries the event of position {}: a replicated \
             log's stream has each event at the sequence of its position",
            event.position
        )));
    }
    Ok(StoredEvent {
        position: sequence,
        hash: hash_of(&m.payload),
        bytes: m.payload.to_vec(),
    })
}
