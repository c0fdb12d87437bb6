//! A remote log: address, token, TLS trust and message limits, set once per connection.
use anyhow::Context;
use journey_proto::v1::event_log_client::EventLogClient;
use std::time::Duration;
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{interceptor::InterceptedService, Interceptor},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
    Request, Status,
};

/// Largest gRPC message a journey client or server sends or accepts (a batch of events).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The bearer token presented on every call of a connection (none: an `--insecure` server).
#[derive(Clone, Debug, Default)]
pub struct Token(Option<MetadataValue<Ascii>>);

impl Token {
    /// `Bearer <token>`; refused when the token is not printable ASCII.
    pub fn bearer(token: Option<&str>) -> anyhow::Result<Token> {
        let value = token
            .map(|t| format!("Bearer {}", t.trim()).parse())
            .transpose()
            .map_err(|_| anyhow::anyhow!("the token must be printable ASCII"))?;
        Ok(Token(value))
    }
}

impl Interceptor for Token {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

/// An `EventLog` client carrying its connection's token.
pub type LogClient = EventLogClient<InterceptedService<Channel, Token>>;

/// A journey gRPC server this process talks to: where it is and how to present itself.
#[derive(Clone, Debug)]
pub struct Remote {
    pub url: String,
    token: Token,
}

impl Remote {
    /// `token`: presented on every call (a `service` key or JWT for a projector or reactor, the
    /// user's token for a CLI verb).
    pub fn new(url: &str, token: Option<&str>) -> anyhow::Result<Remote> {
        Endpoint::from_shared(url.to_string()).with_context(|| {
            format!("bad server address {url:?} (expected http://HOST:PORT or https://HOST:PORT)")
        })?;
        Ok(Remote {
            url: url.to_string(),
            token: Token::bearer(token)?,
        })
    }

    pub fn token(&self) -> Token {
        self.token.clone()
    }

    fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let mut endpoint = Endpoint::from_shared(self.url.clone())?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if self.url.starts_with("https://") {
            endpoint = endpoint.tls_config(client_tls()?)?;
        }
        Ok(endpoint)
    }

    /// A connected channel; fails at once when nothing answers at the address.
    pub async fn channel(&self) -> anyhow::Result<Channel> {
        self.endpoint()?.connect().await.with_context(|| {
            format!(
                "cannot reach the journey server at {}; is `journey up` running?",
                self.url
            )
        })
    }

    /// A channel that connects on first use (services that start before the log is up).
    pub fn lazy_channel(&self) -> anyhow::Result<Channel> {
        Ok(self.endpoint()?.connect_lazy())
    }

    /// The `EventLog` client, connected now.
    pub async fn client(&self) -> anyhow::Result<LogClient> {
        Ok(self.client_on(self.channel().await?))
    }

    /// The `EventLog` client on a given channel (with this connection's token and limits).
    pub fn client_on(&self, channel: Channel) -> LogClient {
        EventLogClient::with_interceptor(channel, self.token())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

/// Client TLS for an `https://` server: trusts the CA in `JOURNEY_CA_CERT` (PEM) when set.
pub fn client_tls() -> anyhow::Result<ClientTlsConfig> {
    let tls = ClientTlsConfig::new();
    Ok(match std::env::var_os("JOURNEY_CA_CERT") {
        Some(path) => {
            let pem = std::fs::read(&path).with_context(|| {
                format!(
                    "cannot read JOURNEY_CA_CERT {}",
                    std::path::Path::new(&path).display()
                )
            })?;
            tls.ca_certificate(Certificate::from_pem(pem))
        }
        None => tls,
    })
}
