//! Server configuration: flags with environment fallbacks.
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Folder of the event log (sled). Only the server opens it.
    #[arg(long, env = "JOURNEY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: String,
    /// HTTP listen address for the status page (port 0 = any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// NATS server to publish every committed event to (JetStream). Unset = no NATS.
    #[arg(long, env = "JOURNEY_NATS_URL")]
    pub nats_url: Option<String>,
    /// JetStream stream name (tests use their own).
    #[arg(long, env = "JOURNEY_NATS_STREAM", default_value = "JOURNEY")]
    pub nats_stream: String,
    /// Subject prefix: events go to `<prefix>.<event_type>`.
    #[arg(
        long,
        env = "JOURNEY_NATS_SUBJECT_PREFIX",
        default_value = "journey.v1"
    )]
    pub nats_subject_prefix: String,
    /// Read-model database: `sqlite://PATH` or `postgres://USER@HOST/DB`.
    /// Default: a SQLite file `read-models.sqlite` in the data folder.
    #[arg(long, env = "JOURNEY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Largest accepted encoded event, in bytes.
    #[arg(long, env = "JOURNEY_MAX_EVENT_BYTES", default_value_t = 64 * 1024)]
    pub max_event_bytes: usize,
    /// Most events in one append request.
    #[arg(long, env = "JOURNEY_MAX_BATCH_EVENTS", default_value_t = 10_000)]
    pub max_batch_events: usize,
    /// Do not run the telemonitoring alert reactor in this process (run it alone with
    /// `journey serve reactor`, or not at all).
    #[arg(long, env = "JOURNEY_NO_REACTOR")]
    pub no_reactor: bool,
    /// Do not run the read models (projections, their gRPC services, the dashboard) in this
    /// process: `journey serve event-log` sets it, the read sides then run as their own services.
    #[arg(long, env = "JOURNEY_NO_READ_MODELS")]
    pub no_read_models: bool,
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,
    #[command(flatten)]
    pub tls: crate::tls::TlsConfig,
}

/// `journey serve readmission|coordination`: a read side alone, reading a remote log.
#[derive(Debug, Clone, Args)]
pub struct ReadSideConfig {
    #[command(flatten)]
    pub feed: LogFeed,
    /// Read-model database: `sqlite://PATH` or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "JOURNEY_DATABASE_URL",
        default_value = "sqlite://./data/read-side.sqlite"
    )]
    pub database_url: String,
    /// The access log (who read which patient), when it is not the read-model database:
    /// give every service the audit service's `--access-log-url` to keep one access log.
    #[arg(long, env = "JOURNEY_ACCESS_LOG_URL")]
    pub access_log_url: Option<String>,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50052")]
    pub grpc_addr: String,
    /// HTTP listen address (port 0 = any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: String,
    /// Token this service presents to the event-log service (a `service` role key or JWT).
    #[arg(long, env = "JOURNEY_LOG_TOKEN", hide_env_values = true)]
    pub log_token: Option<String>,
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,
    #[command(flatten)]
    pub tls: crate::tls::TlsConfig,
}

/// Where a process outside the log reads events: the log's gRPC service (catch-up, gap refill,
/// and live through Subscribe) and, when given, NATS JetStream for live events.
#[derive(Debug, Clone, Args)]
pub struct LogFeed {
    /// The event log's gRPC address.
    #[arg(
        long,
        env = "JOURNEY_LOG_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub log_url: String,
    /// NATS for live events; without it, live events come from the log's Subscribe.
    #[arg(long, env = "JOURNEY_NATS_URL")]
    pub nats_url: Option<String>,
    /// JetStream stream the log publishes to.
    #[arg(long, env = "JOURNEY_NATS_STREAM", default_value = "JOURNEY")]
    pub nats_stream: String,
}
