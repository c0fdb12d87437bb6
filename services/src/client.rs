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
    Endpoint::from_shared(server.to_string())
        .with_context(|| format!("bad --server address {server:?}"))?
        .connect()
        .await
        .with_context(|| {
            format!("cannot reach the journey server at {server}; is `journey up` running?")
        })
}

pub fn token(token: Option<&str>) -> anyhow::Result<Token> {
    let value = token
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
