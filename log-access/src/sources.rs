//! How read models and the reactor follow the log: catch-up ranges from the log, then live events.
//! Three implementations: in-process (the log of this process), the `EventLog` gRPC service, and
//! NATS JetStream for live events (with the gRPC log for catch-up and gap refill).
use crate::remote::{LogClient, Remote};
use anyhow::Context;
use futures::StreamExt;
use journey_event_log::EventLog;
use journey_proto::{
    prost::Message,
    v1::{Event, HeadRequest, ReadAllRequest},
};
use std::{future::Future, sync::Arc, time::Duration};

pub trait EventSource: Send + 'static {
    /// The last durable position of the log.
    fn head(&mut self) -> impl Future<Output = anyhow::Result<u64>> + Send;
    /// Durable events with `from <= position <= to`, at most `max`, in order (no waiting).
    fn range(
        &mut self,
        from: u64,
        to: u64,
        max: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<Event>>> + Send;
    /// Events from `from` on, waiting until at least one exists. May skip or repeat positions
    /// (NATS): the runner refills gaps with `range` and skips what it has applied.
    fn next(
        &mut self,
        from: u64,
        max: usize,
    ) -> impl Future<Output = anyhow::Result<Vec<Event>>> + Send;
}

/// Inside the server process: straight from the log, woken by its durable watermark.
pub struct InProcess {
    log: Arc<EventLog>,
    watch: tokio::sync::watch::Receiver<journey_event_log::Head>,
}

impl InProcess {
    pub fn new(log: Arc<EventLog>) -> Self {
        let watch = log.watch();
        InProcess { log, watch }
    }
}

impl EventSource for InProcess {
    async fn head(&mut self) -> anyhow::Result<u64> {
        Ok(self.log.head().position)
    }

    async fn range(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        let log = self.log.clone();
        // Read and decoded off the async threads: a rebuild reads the next batch while the
        // current one is folded (`Runner::rebuild`).
        let events = tokio::task::spawn_blocking(move || {
            log.read_range(from, to, max)?
                .iter()
                .map(|s| s.decode())
                .collect::<Result<Vec<_>, _>>()
        })
        .await??;
        Ok(events)
    }

    async fn next(&mut self, from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        loop {
            if self.log.head().position >= from {
                return self.range(from, u64::MAX, max).await;
            }
            self.watch.changed().await.context("the event log closed")?;
        }
    }
}

/// A remote log over gRPC: `ReadAll` for ranges, `Subscribe` for live events.
pub struct Grpc {
    client: LogClient,
    live: Option<(u64, tonic::Streaming<journey_proto::v1::EventBatch>)>,
}

impl Grpc {
    pub async fn connect(log: &Remote) -> anyhow::Result<Self> {
        Ok(Grpc {
            client: log.client().await?,
            live: None,
        })
    }
}

impl EventSource for Grpc {
    async fn head(&mut self) -> anyhow::Result<u64> {
        Ok(self
            .client
            .head(HeadRequest {})
            .await?
            .into_inner()
            .position)
    }

    async fn range(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        let to = if to == u64::MAX { 0 } else { to };
        let mut stream = self
            .client
            .read_all(ReadAllRequest {
                from_position: from,
                to_position: to,
                batch_size: max.min(8192) as u32,
            })
            .await?
            .into_inner();
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            out.extend(batch?.events);
            if out.len() >= max {
                out.truncate(max);
                break;
            }
        }
        Ok(out)
    }

    async fn next(&mut self, from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        let reopen = !matches!(&self.live, Some((expected, _)) if *expected == from);
        if reopen {
            let req = journey_proto::v1::SubscribeRequest {
                from_position: from,
                batch_size: max.min(8192) as u32,
            };
            self.live = Some((from, self.client.subscribe(req).await?.into_inner()));
        }
        let (expected, stream) = self.live.as_mut().expect("just opened");
        match stream.next().await {
            Some(batch) => {
                let events = batch?.events;
                *expected = events.last().map_or(*expected, |e| e.position + 1);
                Ok(events)
            }
            None => {
                self.live = None;
                anyhow::bail!("the event log closed the subscription")
            }
        }
    }
}

/// Live events from NATS JetStream; catch-up and gaps from the gRPC log.
///
/// Messages are taken in batches (every message already delivered, up to `max`), and the log's
/// head is asked only when no message came for [`Nats::QUIET`] (NATS behind, or an outage), never
/// per message: a position at or below the highest one seen is read from the log.
pub struct Nats {
    log: Grpc,
    messages: async_nats::jetstream::consumer::pull::Stream,
    /// The highest position known to be durable in the log (its head, or a message seen).
    known: u64,
}

impl Nats {
    /// How long to wait for a message before asking the log's head.
    pub const QUIET: Duration = Duration::from_secs(1);

    pub async fn connect(log: &Remote, nats_url: &str, stream: &str) -> anyhow::Result<Self> {
        use async_nats::jetstream::consumer::{pull, DeliverPolicy};
        let log = Grpc::connect(log).await?;
        let client = async_nats::connect(nats_url)
            .await
            .with_context(|| format!("cannot reach NATS at {nats_url}"))?;
        let js = async_nats::jetstream::new(client);
        let s = js
            .get_stream(stream)
            .await
            .with_context(|| format!("no JetStream stream {stream} at {nats_url}"))?;
        // Only new messages: everything older comes from the log, the source of truth.
        let consumer = s
            .create_consumer(pull::Config {
                deliver_policy: DeliverPolicy::New,
                ..Default::default()
            })
            .await?;
        let messages = consumer.messages().await?;
        Ok(Nats {
            log,
            messages,
            known: 0,
        })
    }

    /// The next delivered message, waiting for it.
    async fn message(&mut self) -> anyhow::Result<async_nats::jetstream::Message> {
        self.messages
            .next()
            .await
            .context("NATS consumer closed")?
            .map_err(|e| anyhow::anyhow!(e))
    }
}

impl EventSource for Nats {
    async fn head(&mut self) -> anyhow::Result<u64> {
        let head = self.log.head().await?;
        self.known = self.known.max(head);
        Ok(head)
    }

    async fn range(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        self.log.range(from, to, max).await
    }

    async fn next(&mut self, from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        loop {
            // Behind what is known to be durable: catch up from the log itself.
            if self.known >= from {
                return self.log.range(from, self.known, max).await;
            }
            match tokio::time::timeout(Self::QUIET, self.message()).await {
                Ok(first) => {
                    let mut messages = vec![first?];
                    // Whatever else is already delivered, without waiting.
                    while messages.len() < max {
                        match futures::FutureExt::now_or_never(self.messages.next()) {
                            Some(Some(m)) => messages.push(m.map_err(|e| anyhow::anyhow!(e))?),
                            _ => break,
                        }
                    }
                    let mut events = Vec::with_capacity(messages.len());
                    for m in messages {
                        let _ = m.ack().await;
                        events.push(Event::decode(m.payload.as_ref())?);
                    }
                    let seen = events.iter().map(|e| e.position).max().unwrap_or(0);
                    self.known = self.known.max(seen);
                    return Ok(events);
                }
                Err(_quiet) => {
                    self.head().await?;
                }
            }
        }
    }
}
