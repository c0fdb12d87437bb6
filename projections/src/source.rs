//! The one way projections read events: catch-up ranges from the log, then live events.
//! Three implementations: in-process (inside `journey up`), the `EventLog` gRPC service, and NATS
//! JetStream for live events (with the gRPC log for catch-up and gap refill).
use anyhow::Context;
use futures::StreamExt;
use journey_event_log::EventLog;
use journey_proto::{
    prost::Message,
    v1::{event_log_client::EventLogClient, Event, HeadRequest, ReadAllRequest},
};
use std::{future::Future, sync::Arc, time::Duration};
use tonic::transport::Channel;

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
/// The bearer token this process presents to the event-log service (set once at start from
/// `--log-token`; a projector or reactor has the `service` role).
static LOG_TOKEN: std::sync::OnceLock<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
    std::sync::OnceLock::new();

pub fn use_log_token(token: &str) -> anyhow::Result<()> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| anyhow::anyhow!("the log token must be printable ASCII"))?;
    let _ = LOG_TOKEN.set(value);
    Ok(())
}

#[derive(Clone)]
pub struct Bearer;

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = LOG_TOKEN.get() {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// Client TLS for an `https://` log: trusts the CA in `JOURNEY_CA_CERT` (PEM) when set.
pub fn client_tls() -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    let tls = tonic::transport::ClientTlsConfig::new();
    Ok(match std::env::var_os("JOURNEY_CA_CERT") {
        Some(path) => {
            let pem = std::fs::read(&path).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read JOURNEY_CA_CERT {}: {e}",
                    std::path::Path::new(&path).display()
                )
            })?;
            tls.ca_certificate(tonic::transport::Certificate::from_pem(pem))
        }
        None => tls,
    })
}

pub struct Grpc {
    client: EventLogClient<tonic::service::interceptor::InterceptedService<Channel, Bearer>>,
    live: Option<(u64, tonic::Streaming<journey_proto::v1::EventBatch>)>,
}

impl Grpc {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.to_string())?;
        if url.starts_with("https://") {
            endpoint = endpoint.tls_config(client_tls()?)?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot reach the event log at {url}"))?;
        Ok(Grpc {
            client: EventLogClient::with_interceptor(channel, Bearer)
                .max_decoding_message_size(64 * 1024 * 1024),
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
pub struct Nats {
    log: Grpc,
    messages: async_nats::jetstream::consumer::pull::Stream,
}

impl Nats {
    pub async fn connect(log_url: &str, nats_url: &str, stream: &str) -> anyhow::Result<Self> {
        use async_nats::jetstream::consumer::{pull, DeliverPolicy};
        let log = Grpc::connect(log_url).await?;
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
        Ok(Nats { log, messages })
    }
}

impl EventSource for Nats {
    async fn head(&mut self) -> anyhow::Result<u64> {
        self.log.head().await
    }

    async fn range(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        self.log.range(from, to, max).await
    }

    async fn next(&mut self, from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        // Behind the log head: catch up from the log itself.
        if self.log.head().await? >= from {
            return self.log.range(from, u64::MAX, max).await;
        }
        let msg = self
            .messages
            .next()
            .await
            .context("NATS consumer closed")?
            .map_err(|e| anyhow::anyhow!(e))?;
        let _ = msg.ack().await;
        Ok(vec![Event::decode(msg.payload.as_ref())?])
    }
}
