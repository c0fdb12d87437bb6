//! Live events from NATS JetStream, with the gRPC log for catch-up, gaps, and the last word.
//!
//! Two things the broker is not trusted with:
//! - **The record.** An event taken from NATS is handed out only when it continues the chain the
//!   log vouches for: the first one links to the hash of the event before it (as the log holds
//!   it), each next one to the one before, and the last one's hash is the log's at its position
//!   (one `Head`, or one event read, per delivered batch). A message that fails is refused,
//!   logged loudly, and the range is read from the log instead.
//! - **Its own liveness.** JetStream drops an ephemeral consumer nobody pulled from for
//!   [`INACTIVE`] (a stalled process: a long database stall, a frozen or swapped-out host); the
//!   pull stream then errors, or goes quiet while the log moves on. Either way the consumer is
//!   recreated (new messages only: the log fills what was missed).
use crate::{links, remote::Remote, sources::EventSource, sources::Grpc};
use anyhow::Context;
use async_nats::jetstream::{
    self,
    consumer::{pull, DeliverPolicy, PullConsumer},
};
use futures::StreamExt;
use journey_event_log::{hash_of, ZERO_HASH};
use journey_proto::{prost::Message, v1::Event};
use std::time::Duration;

/// How long JetStream keeps our consumer once nothing pulls from it (a stalled process).
pub const INACTIVE: Duration = Duration::from_secs(5);

/// Live events from NATS JetStream; catch-up and gaps from the gRPC log.
///
/// Messages are taken in batches (every message already delivered, up to `max`); the log is
/// asked once per batch (to vouch for its last hash) and when no message came for
/// [`Nats::QUIET`] (NATS behind, or an outage), never per message: a position at or below the
/// highest one known is read from the log.
pub struct Nats {
    log: Grpc,
    feed: Feed,
    /// The highest position known to be durable in the log (its head, or a verified message).
    known: u64,
    /// The highest position NATS delivered (and the log vouched for).
    delivered: u64,
    /// The position and hash of the last event handed out: what the next one must link to.
    last: Option<(u64, Vec<u8>)>,
}

impl Nats {
    /// How long to wait for a message before asking the log's head.
    pub const QUIET: Duration = Duration::from_secs(1);

    pub async fn connect(log: &Remote, nats_url: &str, stream: &str) -> anyhow::Result<Self> {
        let log = Grpc::connect(log).await?;
        let client = crate::broker::connect(nats_url).await?;
        let js = jetstream::new(client);
        let stream = js.get_stream(stream).await.with_context(|| {
            format!(
                "no JetStream stream {stream} at {}",
                crate::broker::redact(nats_url)
            )
        })?;
        let mut feed = Feed::new(stream);
        feed.open().await?;
        Ok(Nats {
            log,
            feed,
            known: 0,
            delivered: 0,
            last: None,
        })
    }

    /// Events `from..=to` from the log, remembering the last one's hash.
    async fn read_log(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        let events = self.log.range(from, to, max).await?;
        if let Some(e) = events.last() {
            self.last = Some((e.position, e.hash.clone()));
        }
        Ok(events)
    }

    /// The hash of the event at `position` as the log holds it (`None`: the log has no such event).
    async fn logged_hash(&mut self, position: u64) -> anyhow::Result<Option<Vec<u8>>> {
        if position == 0 {
            return Ok(Some(ZERO_HASH.to_vec()));
        }
        if let Some((p, h)) = &self.last {
            if *p == position {
                return Ok(Some(h.clone()));
            }
        }
        let (head, hash) = self.log.head_and_hash().await?;
        self.known = self.known.max(head);
        if head == position {
            return Ok(Some(hash));
        }
        if head < position {
            return Ok(None);
        }
        let event = self.log.range(position, position, 1).await?;
        Ok(event.into_iter().next().map(|e| e.hash))
    }

    /// The events of `events` that continue the chain at `from`, all vouched for by the log; an
    /// error saying why when NATS delivered something the log does not hold.
    async fn verified(
        &mut self,
        from: u64,
        events: Vec<Event>,
    ) -> anyhow::Result<Result<Vec<Event>, String>> {
        let Some(last) = events.last().map(|e| (e.position, e.hash.clone())) else {
            return Ok(Ok(events));
        };
        let prev = self
            .logged_hash(from - 1)
            .await?
            .with_context(|| format!("the log has no event at position {}", from - 1))?;
        if let Err(why) = links::check(from, &prev, &events) {
            return Ok(Err(why));
        }
        Ok(match self.logged_hash(last.0).await? {
            Some(hash) if hash == last.1 => Ok(events),
            Some(_) => Err(format!(
                "the event at position {} is not the log's (its hash differs)",
                last.0
            )),
            None => Err(format!("the log holds no event at position {} yet", last.0)),
        })
    }
}

/// Decodes a message's body (the stored bytes) and sets the event's hash to the hash of exactly
/// those bytes, whatever the body claims.
fn decode(body: &[u8]) -> Result<Event, journey_proto::prost::DecodeError> {
    let mut event = Event::decode(body)?;
    event.hash = hash_of(body).to_vec();
    Ok(event)
}

impl EventSource for Nats {
    async fn head(&mut self) -> anyhow::Result<u64> {
        let head = self.log.head().await?;
        self.known = self.known.max(head);
        Ok(head)
    }

    async fn range(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        self.read_log(from, to, max).await
    }

    async fn next(&mut self, from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        loop {
            // Behind what is known to be durable: catch up from the log itself.
            if self.known >= from {
                let known = self.known;
                return self.read_log(from, known, max).await;
            }
            let Some(messages) = self.feed.take(max, Self::QUIET).await else {
                // Quiet, or no feed (NATS down, or its consumer lost and not yet recreated):
                // whatever the log holds past `from` is read from it.
                if self.head().await? > self.delivered && !self.feed.alive().await {
                    self.feed.lost("the NATS consumer is gone (the process stalled longer than JetStream keeps it)");
                }
                continue;
            };
            let mut events = Vec::with_capacity(messages.len());
            for m in &messages {
                let _ = m.ack().await;
                match decode(&m.payload) {
                    Ok(e) if e.position < from => {} // applied already
                    Ok(e) => events.push(e),
                    Err(e) => {
                        tracing::error!(subject = %m.subject, error = %e, "an undecodable message on the NATS stream: refused, the log is read instead");
                        self.head().await?;
                    }
                }
            }
            match events.first() {
                None => continue,
                // NATS resumed past `from` (a recreated consumer, an outage): the log fills it.
                Some(first) if first.position > from => {
                    self.head().await?;
                    continue;
                }
                Some(_) => {}
            }
            match self.verified(from, events).await? {
                Ok(events) => {
                    let last = events.last().expect("not empty");
                    self.delivered = self.delivered.max(last.position);
                    self.known = self.known.max(last.position);
                    self.last = Some((last.position, last.hash.clone()));
                    return Ok(events);
                }
                Err(why) => {
                    tracing::error!(from, reason = %why, "NATS delivered events the log does not vouch for: refused, the range is read from the log");
                    self.head().await?;
                }
            }
        }
    }
}

/// The JetStream consumer and its pull stream, recreated when lost; while there is none (NATS
/// down), the source reads the log after each quiet second, as it does when NATS is behind.
struct Feed {
    stream: jetstream::stream::Stream,
    consumer: Option<(PullConsumer, pull::Stream)>,
    /// When to try again to create a consumer, after a failed attempt.
    retry_at: tokio::time::Instant,
}

impl Feed {
    /// How long one attempt to create a consumer may take, and the pause after a failed one.
    const ATTEMPT: Duration = Duration::from_secs(2);
    const RETRY: Duration = Duration::from_secs(5);

    fn new(stream: jetstream::stream::Stream) -> Feed {
        Feed {
            stream,
            consumer: None,
            retry_at: tokio::time::Instant::now(),
        }
    }

    /// Creates the consumer: new messages only, everything older comes from the log, the source
    /// of truth.
    async fn open(&mut self) -> anyhow::Result<()> {
        let create = async {
            let consumer: PullConsumer = self
                .stream
                .create_consumer(pull::Config {
                    deliver_policy: DeliverPolicy::New,
                    inactive_threshold: INACTIVE,
                    ..Default::default()
                })
                .await
                .context("cannot create a NATS consumer")?;
            let messages = consumer
                .messages()
                .await
                .context("cannot pull from the NATS consumer")?;
            anyhow::Ok((consumer, messages))
        };
        let created = tokio::time::timeout(Self::ATTEMPT, create)
            .await
            .context("NATS did not answer")??;
        self.consumer = Some(created);
        Ok(())
    }

    /// Drops a consumer that failed (deleted on the server in the background, if it is still
    /// there) so that the next [`Feed::take`] creates a new one.
    fn lost(&mut self, why: &str) {
        if let Some((old, _)) = self.consumer.take() {
            tracing::warn!(
                reason = why,
                "the NATS feed is lost; recreating its consumer, the log fills the gap"
            );
            let stream = self.stream.clone();
            let name = old.cached_info().name.clone();
            tokio::spawn(async move {
                let _ = stream.delete_consumer(&name).await;
            });
        }
        self.retry_at = tokio::time::Instant::now();
    }

    /// Every message already delivered, up to `max`, waiting at most `quiet` for the first:
    /// `None` when none came, the pull stream failed (the consumer is then recreated by the next
    /// call), or there is no consumer and none can be made now.
    async fn take(&mut self, max: usize, quiet: Duration) -> Option<Vec<jetstream::Message>> {
        if self.consumer.is_none() {
            if tokio::time::Instant::now() < self.retry_at {
                tokio::time::sleep(quiet).await;
                return None;
            }
            if let Err(e) = self.open().await {
                tracing::warn!(error = %format!("{e:#}"), retry_s = Self::RETRY.as_secs(), "no NATS feed: following the log meanwhile");
                self.retry_at = tokio::time::Instant::now() + Self::RETRY;
                tokio::time::sleep(quiet).await;
                return None;
            }
        }
        let (_, messages) = self.consumer.as_mut()?;
        let first = match tokio::time::timeout(quiet, messages.next()).await {
            Err(_quiet) => return None,
            Ok(None) => {
                self.lost("the pull stream ended");
                return None;
            }
            Ok(Some(Err(e))) => {
                self.lost(&e.to_string());
                return None;
            }
            Ok(Some(Ok(m))) => m,
        };
        let mut out = vec![first];
        // Whatever else is already delivered, without waiting.
        while out.len() < max {
            match futures::FutureExt::now_or_never(messages.next()) {
                Some(Some(Ok(m))) => out.push(m),
                Some(Some(Err(e))) => {
                    // Hand out what came; the error comes back on the next pull.
                    tracing::debug!(error = %e, "NATS pull error after a batch");
                    break;
                }
                _ => break,
            }
        }
        Some(out)
    }

    /// Whether JetStream still has our consumer (a short request; `true` when NATS does not
    /// answer: an outage is not a lost consumer, and the pull stream reports it).
    async fn alive(&mut self) -> bool {
        let Some((consumer, _)) = self.consumer.as_mut() else {
            return true; // none to lose: the next take creates one
        };
        use async_nats::jetstream::context::ConsumerInfoErrorKind as Kind;
        match tokio::time::timeout(Self::ATTEMPT, consumer.info()).await {
            Ok(Err(e)) => !matches!(e.kind(), Kind::NotFound | Kind::StreamNotFound),
            Ok(Ok(_)) | Err(_) => true,
        }
    }
}
