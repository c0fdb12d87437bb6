//! The gRPC client the verbs share: one connection, the token on every call.
use anyhow::Context;
use journey_proto::v1::event_log_client::EventLogClient;
use tonic::{
    metadata::MetadataValue,
    service::{interceptor::InterceptedService, Interceptor},
    transport::{Channel, Endpoint},
    Request, Status,
};

#[derive(Clone)]
pub struct Token(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for Token {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert("authorization", v.clone());
        }
        Ok(request)
    }
}

pub type LogClient = EventLogClient<InterceptedService<Channel, Token>>;

pub async fn channel(server: &str) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(server.to_string())
        .with_context(|| format!("bad --server address {server:?}"))?;
    if server.starts_with("https://") {
        endpoint = endpoint.tls_config(crate::tls::client()?)?;
    }
    endpoint.connect().await.with_context(|| {
        format!("cannot reach the journey server at {server}; is `journey up` running?")
    })
}

/// The local admin token `journey up` wrote, when no token was given (`$JOURNEY_DATA_DIR` or `./data`).
fn local_admin_token() -> Option<String> {
    let dir = std::env::var("JOURNEY_DATA_DIR").unwrap_or_else(|_| "./data".into());
    std::fs::read_to_string(std::path::Path::new(&dir).join("admin.token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// `--token`, else `JOURNEY_TOKEN` (clap), else the local admin token.
pub fn token(token: Option<&str>) -> anyhow::Result<Token> {
    let local = local_admin_token();
    let value = token
        .or(local.as_deref())
        .map(|t| format!("Bearer {t}").parse())
        .transpose()
        .context("the token must be printable ASCII")?;
    Ok(Token(value))
}

pub async fn connect(server: &str, token_value: Option<&str>) -> anyhow::Result<LogClient> {
    Ok(
        EventLogClient::with_interceptor(channel(server).await?, token(token_value)?)
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024),
    )
}
