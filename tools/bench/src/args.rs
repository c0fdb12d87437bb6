//! The options of `journey bench …`: one subcommand per benchmark. The `journey` command line
//! embeds [`BenchWhat`] as its `bench` subcommand and hands it to [`crate::run`].
use clap::{Args, Subcommand};

/// The NATS server of the benchmarks that need one, unless the variable or `--nats-url` says.
const NATS_URL_ENV: &str = "JOURNEY_NATS_URL";
const NATS_URL: &str = "nats://127.0.0.1:4222";
/// The PostgreSQL server of the benchmarks that need one (they create a fresh database there),
/// unless the variable or `--database-url` says.
const DATABASE_URL_ENV: &str = "JOURNEY_BENCH_DATABASE_URL";
const DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The seed of the simulated journeys a benchmark fills its log with (the simulator of
/// `journey simulate`).
#[derive(Debug, Args, Clone, Copy)]
pub struct Seed {
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Append throughput against baselines measured in the same run (see BENCHMARKS.md).
    Append(BenchArgs),
    /// Rebuild of the readmission read model (SQLite, PostgreSQL) from a log of simulated
    /// journeys, against a plain scan of the same log measured in the same run.
    Rebuild(BenchRebuildArgs),
    /// Latency of the Rates and AtRisk queries over gRPC on a read model of N index stays,
    /// against a do-nothing gRPC call measured in the same run.
    Query(BenchQueryArgs),
    /// Under steady append load, the delay from append acknowledgement to the event being in
    /// the readmission read model, against the append latency itself.
    Visible(BenchVisibleArgs),
    /// Rebuild of the coordination read model against a scan of the log, Worklist latency over
    /// gRPC and dashboard render time against a do-nothing call, on N followed patients.
    Coordination(BenchCoordinationArgs),
    /// Audit timeline latency, full-log verification rate against a scan, and the cost of
    /// authentication and access control on a read (secure vs --insecure server).
    Audit(BenchAuditArgs),
    /// End to end: the sustained append rate with every read model live and their lag under
    /// that load, for `journey up` and for the separate services on NATS and PostgreSQL.
    E2e(BenchE2eArgs),
    /// Opening a log after an orderly stop (from its checkpoint) against opening it by reading
    /// every event back, on the same log in the same run.
    Restart(BenchRestartArgs),
    /// HL7 v2 over MLLP (AA after the fsync) over 1 and N connections against gRPC Append of the
    /// same events by N single-event callers; ACK latency; `--parse-only`: the parse rate.
    Hl7(BenchHl7Args),
    /// FHIR: the Bulk Data export rate beside a scan of the log, `$everything` of a patient with
    /// many events beside the audit timeline of the same patient.
    Fhir(crate::fhir::BenchFhirArgs),
    /// FHIR import (Bulk NDJSON) beside the Synthea CSV import of the same population: reading
    /// and mapping, and the whole import into a fresh server.
    Import(crate::import::BenchImportArgs),
}

#[derive(Debug, Args, Clone)]
pub struct BenchHl7Args {
    /// Messages over the N connections, and events of the gRPC baseline (over all rounds).
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,
    /// Messages over the one connection (over all rounds).
    #[arg(long, default_value_t = 3_000)]
    pub single_messages: u64,
    /// MLLP connections, and gRPC callers of the baseline.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Rounds of (a), (b), (c), each with its share of the messages: ratios are their median.
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// Only the single-thread parse rate of ADT messages (no server).
    #[arg(long)]
    pub parse_only: bool,
    /// Messages parsed per round with --parse-only.
    #[arg(long, default_value_t = 200_000)]
    pub parse_messages: u64,
}

#[derive(Debug, Args, Clone)]
pub struct BenchRestartArgs {
    /// Simulated events in the log (whole journeys: a few more).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Days of simulated journeys.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchE2eArgs {
    /// Length of the load on each deployment, in seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Concurrent appenders, one event per Append call, closed loop.
    #[arg(long, default_value_t = 32)]
    pub callers: usize,
    /// Interval between two reads of the read models' checkpoints, in milliseconds.
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// NATS with JetStream for the services (a stream named after the run is created and deleted).
    #[arg(long, env = NATS_URL_ENV, default_value = NATS_URL)]
    pub nats_url: String,
    /// PostgreSQL server for the services' read models: a fresh database is created there and dropped.
    #[arg(long, env = DATABASE_URL_ENV, default_value = DATABASE_URL)]
    pub database_url: String,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchCoordinationArgs {
    /// Followed patients (discharged in the last 30 days) the read model must hold (at least).
    #[arg(long, default_value_t = 100_000)]
    pub patients: u64,
    /// Timed calls per query (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 200)]
    pub calls: u64,
    /// Stop timing a query after this many seconds (at least 10 calls).
    #[arg(long, default_value_t = 60)]
    pub budget_secs: u64,
    /// Keep the bench's folder (log and read models) at the end and print where it is, to look
    /// into its databases (e.g. `sqlite3 DIR/read-models.db`, `EXPLAIN QUERY PLAN`).
    #[arg(long)]
    pub keep: bool,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchAuditArgs {
    /// Events in the log (simulated journeys plus the one patient's events).
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Events of the one patient whose timeline is read.
    #[arg(long, default_value_t = 1000)]
    pub patient_events: u64,
    /// Timed calls per read (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 500)]
    pub calls: u64,
    /// Stop timing a read after this many seconds (at least 10 calls).
    #[arg(long, default_value_t = 60)]
    pub budget_secs: u64,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchRebuildArgs {
    /// Simulated events in the log (whole journeys: a few more).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// PostgreSQL server for the PostgreSQL rebuild: a fresh database is created there and dropped.
    #[arg(long, env = DATABASE_URL_ENV, default_value = DATABASE_URL)]
    pub database_url: String,
    /// Skip the PostgreSQL rebuild (no PostgreSQL at hand).
    #[arg(long)]
    pub no_postgres: bool,
    /// Length of the simulated window, in days (ending today).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchQueryArgs {
    /// Index stays the read model must hold (at least).
    #[arg(long, default_value_t = 100_000)]
    pub stays: u64,
    /// Timed calls per query (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 500)]
    pub calls: u64,
    /// Length of the simulated window, in days (ending today).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchVisibleArgs {
    /// Events appended per second (one event per Append call, paced).
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Length of the load, in seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Concurrent appenders (each appends its own patients' events in order).
    #[arg(long, default_value_t = 16)]
    pub callers: usize,
    /// Interval between two reads of the projection checkpoint, in microseconds.
    #[arg(long, default_value_t = 1000)]
    pub poll_us: u64,
    #[command(flatten)]
    pub sim: Seed,
}

#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Events per measurement.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Concurrent single-event appenders.
    #[arg(long, default_value_t = 64)]
    pub callers: usize,
    /// Rounds of (f) then (b), each of events/rounds calls: their ratio is the rounds' median.
    #[arg(long, default_value_t = 5)]
    pub rounds: u64,
    /// NATS for the publication measurement.
    #[arg(long, env = NATS_URL_ENV, default_value = NATS_URL)]
    pub nats_url: String,
    /// PostgreSQL for the plain-table baseline.
    #[arg(long, env = DATABASE_URL_ENV, default_value = DATABASE_URL)]
    pub database_url: String,
    /// `replicated`: appends acknowledged by a three-server JetStream cluster (`--nats-url` names
    /// its servers, comma-separated) beside local mode and beside JetStream alone, instead of the
    /// local measurements.
    #[arg(long, value_enum, default_value_t = journey_services::config::AckMode::Local)]
    pub ack: journey_services::config::AckMode,
}
