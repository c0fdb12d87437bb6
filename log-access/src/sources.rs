//! How read models and the reactor follow the log: catch-up ranges from the log, then live events.
//! Three implementations: in-process (the log of this process), the `EventLog` gRPC service, and
//! NATS JetStream for live events (the `nats` module, with the gRPC log for catch-up and gap refill).
use crate::remote::{LogClient, Remote};
use anyhow::Context;
use futures::StreamExt;
use journey_event_log::EventLog;
use journey_proto::v1::{Event, HeadRequest, ReadAllRequest};
use std::{future::Future, sync::Arc};

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

impl Grpc {
    /// The log's head: its last durable position and that event's chain hash.
    pub async fn head_and_hash(&mut self) -> anyhow::Result<(u64, Vec<u8>)> {
        let head = self.client.head(HeadRequest {}).await?.into_inner();
        Ok((head.position, head.hash))
    }
}

impl EventSource for Grpc {
    async fn head(&mut self) -> anyhow::Result<u64> {
        Ok(self.head_and_hash().await?.0)
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
