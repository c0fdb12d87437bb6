//! Every setting of a node, as flags with environment fallbacks: the one place where the servers'
//! options are defined (the `journey` command embeds these structs in its verbs, the node reads
//! them). A setting shared by several verbs is one struct flattened into each, so that a flag
//! means the same everywhere.
use crate::sched::CpuPolicy;
use clap::Args;
use std::path::{Path, PathBuf};

/// What every server verb takes: who may call it, TLS, and how its threads are scheduled.
#[derive(Debug, Clone, Default, Args)]
pub struct Front {
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub tls: TlsConfig,
    /// Linux scheduling of this server's threads: auto (batch when it only writes the log),
    /// batch (SCHED_BATCH) or normal; README.md, "CPU policy".
    #[arg(
        long,
        env = "JOURNEY_CPU_POLICY",
        value_enum,
        default_value_t = CpuPolicy::Auto,
        hide_possible_values = true
    )]
    pub cpu_policy: CpuPolicy,
}

/// The log a node holds: its folder, its limits, its publication on NATS and its anchor
/// (`journey up`, `journey serve event-log`).
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Folder of the event log (sled). Only the server opens it.
    #[arg(long, env = "JOURNEY_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// NATS server to publish every committed event to (JetStream). Unset = no NATS. May carry a
    /// user and password (`tls://user:password@host:4222`); `tls://` requires TLS, the CA in
    /// JOURNEY_CA_CERT.
    #[arg(long, env = "JOURNEY_NATS_URL", hide_env_values = true)]
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
    /// Largest accepted encoded event, in bytes.
    #[arg(long, env = "JOURNEY_MAX_EVENT_BYTES", default_value_t = 64 * 1024)]
    pub max_event_bytes: usize,
    /// Most events in one append request.
    #[arg(long, env = "JOURNEY_MAX_BATCH_EVENTS", default_value_t = 10_000)]
    pub max_batch_events: usize,
    /// Largest append request, in bytes (its events together): a bigger one is refused from its
    /// length, before it is read.
    #[arg(long, env = "JOURNEY_MAX_BATCH_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_batch_bytes: usize,
    #[command(flatten)]
    pub anchor: AnchorArgs,
    /// When an append is acknowledged: `local`, once it is fsync'd here; `replicated`, once it is
    /// also stored by a three-server NATS JetStream cluster (needs --nats-url; the stream has 3
    /// replicas, the servers run with `sync_interval: always`). docs/design.md §4.
    #[arg(
        long,
        env = "JOURNEY_ACK",
        value_enum,
        default_value_t = AckMode::Local
    )]
    pub ack: AckMode,
    /// With `--ack replicated`: how long an append waits for the cluster before it is refused
    /// UNAVAILABLE (nothing acknowledged; a retry with the same event ids is safe), in ms.
    #[arg(long, env = "JOURNEY_ACK_TIMEOUT_MS", default_value_t = 5000)]
    pub ack_timeout_ms: u64,
    /// With `--ack replicated`: start as a standby, whoever holds the writer's lease. A standby
    /// follows the stream into its own log, serves reads, refuses appends UNAVAILABLE, and
    /// becomes the writer when the writer's lease lapses (5 s without a renewal). Without it, a
    /// node takes the lease when it is free and is a standby otherwise.
    #[arg(long, env = "JOURNEY_STANDBY")]
    pub standby: bool,
}

/// When an append is acknowledged (`--ack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AckMode {
    /// After the local fsync.
    Local,
    /// After the local fsync and the JetStream cluster's acknowledgement.
    Replicated,
}

/// Where a node holding the log listens (the addresses partners and the CLI verbs default to).
#[derive(Debug, Clone, Args)]
pub struct LogListen {
    /// gRPC listen address (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: String,
    /// HTTP listen address: the dashboard (with the read models), /status and /metrics (port 0 =
    /// any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
}

/// `journey up`: the log and, unless turned off, every other service in one process.
#[derive(Debug, Clone, Args)]
pub struct UpConfig {
    #[command(flatten)]
    pub log: LogConfig,
    #[command(flatten)]
    pub listen: LogListen,
    /// Read-model database: `sqlite://PATH` or `postgres://USER@HOST/DB`.
    /// Default: a SQLite file `read-models.sqlite` in the data folder.
    #[arg(long, env = "JOURNEY_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Do not run the telemonitoring alert reactor in this process (run it alone with
    /// `journey serve reactor`, or not at all).
    #[arg(long, env = "JOURNEY_NO_REACTOR")]
    pub no_reactor: bool,
    /// Do not run the read models (projections, their gRPC services, the dashboard) in this
    /// process; they then run as their own services (`journey serve readmission|coordination`).
    #[arg(long, env = "JOURNEY_NO_READ_MODELS")]
    pub no_read_models: bool,
    #[command(flatten)]
    pub hl7: Hl7Config,
    #[command(flatten)]
    pub front: Front,
}

/// `journey serve event-log`: the log alone (with its audit service).
#[derive(Debug, Clone, Args)]
pub struct EventLogConfig {
    #[command(flatten)]
    pub log: LogConfig,
    #[command(flatten)]
    pub listen: LogListen,
    #[command(flatten)]
    pub front: Front,
}

/// The chain head anchored outside the log folder (`anchor.rs`).
#[derive(Debug, Clone, Args)]
pub struct AnchorArgs {
    /// File the chain head is anchored in, outside the log folder (default: `<data-dir>.anchor.json`
    /// next to the data folder). Move it aside only to accept a log that is behind it.
    #[arg(long, env = "JOURNEY_ANCHOR_FILE")]
    pub anchor_file: Option<PathBuf>,
    /// How often the chain head is anchored (when it moved), in milliseconds; also at shutdown.
    #[arg(long, env = "JOURNEY_ANCHOR_INTERVAL_MS", default_value_t = 500)]
    pub anchor_interval_ms: u64,
}

impl Default for AnchorArgs {
    fn default() -> Self {
        AnchorArgs {
            anchor_file: None,
            anchor_interval_ms: 500,
        }
    }
}

impl AnchorArgs {
    /// The anchor file for a log in `data_dir`.
    pub fn path_for(&self, data_dir: &Path) -> PathBuf {
        self.anchor_file.clone().unwrap_or_else(|| {
            let mut s = data_dir.as_os_str().to_owned();
            if s.len() > 1 && s.to_string_lossy().ends_with('/') {
                s = data_dir.components().collect::<PathBuf>().into_os_string();
            }
            s.push(".anchor.json");
            PathBuf::from(s)
        })
    }
}

/// The log a node without one reads (and the reactor appends to), over gRPC.
#[derive(Debug, Clone, Args)]
pub struct RemoteLog {
    /// The event log's gRPC address (`https://…` for TLS; the CA in `JOURNEY_CA_CERT`).
    #[arg(
        long,
        env = "JOURNEY_LOG_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub log_url: String,
    /// Token this service presents to the event-log service (a `service` role key or JWT; an
    /// `auditor` one for the audit service).
    #[arg(
        long,
        env = "JOURNEY_LOG_TOKEN",
        hide_env_values = true,
        alias = "token"
    )]
    pub log_token: Option<String>,
}

impl RemoteLog {
    pub fn remote(&self) -> anyhow::Result<journey_log_access::Remote> {
        journey_log_access::Remote::new(&self.log_url, self.log_token.as_deref())
    }
}

/// Where live events come from for a node without the log: NATS JetStream when given, else the
/// log's own `Subscribe`.
#[derive(Debug, Clone, Args)]
pub struct LiveFeed {
    /// NATS for live events; without it, live events come from the log's Subscribe. May carry a
    /// user and password (`tls://user:password@host:4222`); the CA in JOURNEY_CA_CERT.
    #[arg(long, env = "JOURNEY_NATS_URL", hide_env_values = true)]
    pub nats_url: Option<String>,
    /// JetStream stream the log publishes to.
    #[arg(long, env = "JOURNEY_NATS_STREAM", default_value = "JOURNEY")]
    pub nats_stream: String,
}

/// `journey serve readmission|coordination`: a read side alone, reading a remote log.
#[derive(Debug, Clone, Args)]
pub struct ReadSideConfig {
    #[command(flatten)]
    pub log: RemoteLog,
    #[command(flatten)]
    pub live: LiveFeed,
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
    /// HTTP listen address: /status, /metrics, and the dashboard for coordination (port 0 = any
    /// free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    pub http_addr: String,
    #[command(flatten)]
    pub front: Front,
}

/// `journey serve reactor`: the alert reactor alone, against a remote log.
#[derive(Debug, Clone, Args)]
pub struct ReactorConfig {
    /// Where events come from; alerts are appended to the same log.
    #[command(flatten)]
    pub log: RemoteLog,
    #[command(flatten)]
    pub live: LiveFeed,
    /// gRPC listen address for health checks (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50053")]
    pub grpc_addr: String,
    /// HTTP listen address of /status and /metrics (port 0 = any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8082")]
    pub http_addr: String,
    #[command(flatten)]
    pub front: Front,
}

/// `journey serve audit`: the Audit service alone, over a remote log.
#[derive(Debug, Clone, Args)]
pub struct AuditServeConfig {
    #[command(flatten)]
    pub log: RemoteLog,
    /// Anchor the log's head in this file (kept by this process, apart from the log's machine).
    /// Unset = no anchor kept here (Verify then uses only anchors given in the request).
    #[arg(long, env = "JOURNEY_ANCHOR_FILE")]
    pub anchor_file: Option<PathBuf>,
    /// How often the log's head is anchored, in milliseconds.
    #[arg(long, env = "JOURNEY_ANCHOR_INTERVAL_MS", default_value_t = 1000)]
    pub anchor_interval_ms: u64,
    /// gRPC listen address (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50053")]
    pub grpc_addr: String,
    /// HTTP listen address of /status and /metrics (port 0 = any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8083")]
    pub http_addr: String,
    /// The access log (who read which patient; `Audit.Accesses` answers from it):
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`. Give the read sides the same
    /// `--access-log-url` so that one access log holds every service's reads.
    #[arg(
        long,
        env = "JOURNEY_ACCESS_LOG_URL",
        default_value = "sqlite://./data/access-log.sqlite"
    )]
    pub access_log_url: String,
    #[command(flatten)]
    pub front: Front,
}

/// The HL7 v2 ADT listener over MLLP (docs/hl7.md): `journey up --mllp-addr`, `journey serve hl7`.
#[derive(Debug, Clone, Args)]
pub struct Hl7Config {
    /// MLLP listen address for HL7 v2 ADT messages (e.g. 0.0.0.0:2575). Unset = no HL7 listener.
    #[arg(long, env = "JOURNEY_MLLP_ADDR", requires = "mllp_organisation")]
    pub mllp_addr: Option<String>,
    /// The organisation HL7 messages are written as (the actor's organisation; the write rights of
    /// a partner of this organisation apply). With `serve hl7`, the organisation of --log-token.
    #[arg(long, env = "JOURNEY_MLLP_ORGANISATION")]
    pub mllp_organisation: Option<String>,
    /// The PID-3 assigning authority (namespace id or OID) whose identifier becomes the patient
    /// id. Default: the first PID-3 repetition.
    #[arg(long, env = "JOURNEY_HL7_PATIENT_ID_AUTHORITY")]
    pub hl7_patient_id_authority: Option<String>,
    /// Time zone of HL7 times sent without an offset (IANA name).
    #[arg(long, env = "JOURNEY_HL7_TIME_ZONE", default_value = "Europe/Paris", value_parser = time_zone)]
    pub hl7_time_zone: String,
    /// Largest HL7 message taken, in bytes; a larger one is answered with a reject (AR).
    #[arg(long, env = "JOURNEY_MLLP_MAX_BYTES", default_value_t = 1024 * 1024)]
    pub mllp_max_bytes: usize,
    /// An MLLP connection silent this long is closed: a number followed by s, m, h or d.
    #[arg(long, env = "JOURNEY_MLLP_IDLE_TIMEOUT", default_value = "5m", value_parser = duration)]
    pub mllp_idle_timeout: std::time::Duration,
    /// Most MLLP connections open at once; one more is closed as soon as it is accepted (a flood
    /// of idle connections cannot take the node's file descriptors).
    #[arg(long, env = "JOURNEY_MLLP_MAX_CONNECTIONS", default_value_t = 64)]
    pub mllp_max_connections: usize,
}

/// `journey serve hl7`: the MLLP listener alone, appending to a remote log with a partner key.
#[derive(Debug, Clone, Args)]
pub struct Hl7ServeConfig {
    /// The log the messages' events are appended to; --log-token is the sender's partner key.
    #[command(flatten)]
    pub log: RemoteLog,
    #[command(flatten)]
    pub hl7: Hl7Config,
    /// gRPC listen address for health checks (port 0 = any free port).
    #[arg(long, env = "JOURNEY_GRPC_ADDR", default_value = "127.0.0.1:50054")]
    pub grpc_addr: String,
    /// HTTP listen address of /status and /metrics (port 0 = any free port).
    #[arg(long, env = "JOURNEY_HTTP_ADDR", default_value = "127.0.0.1:8084")]
    pub http_addr: String,
    #[command(flatten)]
    pub front: Front,
}

/// An IANA time zone name (`Europe/Paris`).
fn time_zone(s: &str) -> Result<String, String> {
    s.parse::<chrono_tz::Tz>()
        .map(|_| s.to_string())
        .map_err(|_| format!("{s:?} is not an IANA time zone name (for instance Europe/Paris)"))
}

/// Authentication settings shared by every server command.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Let unauthenticated calls through (local experiments only).
    #[arg(long, env = "JOURNEY_INSECURE")]
    pub insecure: bool,
    /// API keys, one per line: `<key> <role> <subject> <organisation> [territory]`.
    #[arg(long, env = "JOURNEY_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Shared secret for HS256 JWTs.
    #[arg(long, env = "JOURNEY_JWT_HS256_SECRET_FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// PEM public key for RS256 JWTs.
    #[arg(long, env = "JOURNEY_JWT_RS256_PUBLIC_KEY_FILE")]
    pub jwt_rs256_public_key_file: Option<PathBuf>,
    /// Organisation → territory map, one `<organisation> <territory>` per line (for coordinators
    /// whose token names no territory).
    #[arg(long, env = "JOURNEY_TERRITORIES_FILE")]
    pub territories_file: Option<PathBuf>,
    /// The issuer JWTs must name (`iss`); unset = not checked.
    #[arg(long, env = "JOURNEY_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// The audience JWTs must name (`aud`); unset = a JWT naming an audience is refused.
    #[arg(long, env = "JOURNEY_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The longest a JWT may live (`exp` − `iat`, or `exp` − now without `iat`): a number
    /// followed by s, m, h or d. Longer-lived tokens are refused.
    #[arg(long, env = "JOURNEY_JWT_MAX_LIFETIME", default_value = "24h", value_parser = duration)]
    pub jwt_max_lifetime: std::time::Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            insecure: false,
            api_keys_file: None,
            jwt_hs256_secret_file: None,
            jwt_rs256_public_key_file: None,
            territories_file: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_max_lifetime: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

/// A duration flag: a number followed by `s`, `m`, `h` or `d` (`90m`, `24h`).
fn duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("{s:?}: a number followed by s, m, h or d (e.g. 90m, 24h)");
    let (number, unit) = s.trim().split_at(s.trim().len().saturating_sub(1));
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    n.checked_mul(scale)
        .filter(|secs| *secs > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(bad)
}

/// TLS for the gRPC and HTTP sides (`tls.rs`).
#[derive(Debug, Clone, Default, Args)]
pub struct TlsConfig {
    /// PEM certificate chain: serve gRPC and HTTP over TLS (with --tls-key).
    #[arg(long, env = "JOURNEY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "JOURNEY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_name_their_unit() {
        assert_eq!(duration("24h"), Ok(std::time::Duration::from_secs(86_400)));
        assert_eq!(duration("90m"), Ok(std::time::Duration::from_secs(5_400)));
        assert_eq!(duration("2d"), Ok(std::time::Duration::from_secs(172_800)));
        for bad in ["", "24", "h", "0h", "-1h", "1.5h", "1w"] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            AuthConfig::default().jwt_max_lifetime,
            std::time::Duration::from_secs(86_400)
        );
    }

    #[test]
    fn default_anchor_file_sits_next_to_the_data_folder() {
        let a = AnchorArgs::default();
        assert_eq!(
            a.path_for(Path::new("./data")),
            PathBuf::from("./data.anchor.json")
        );
        assert_eq!(
            a.path_for(Path::new("/var/lib/journey/")),
            PathBuf::from("/var/lib/journey.anchor.json")
        );
    }
}
