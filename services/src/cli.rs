//! The `journey` command line: `up` runs the server; every other verb is a gRPC client of one.
use crate::{client, config::ServerConfig, hex::hex, json};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use futures::StreamExt;
use journey_proto::v1::{AppendRequest, ReadStreamRequest, VerifyRequest};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "journey",
    version,
    about = "Patient journey backbone: an immutable, verifiable log of hospital-to-home care events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Linux scheduling policy of a server's threads (`up`, `serve`; client verbs ignore it).
    /// `batch` (SCHED_BATCH): a waking thread does not preempt the running one, so an append,
    /// which crosses several threads, costs fewer context switches (more appends per core
    /// under load), and wake-ups wait longer (read models in the same process lag more);
    /// `normal`: leaves the policy the server was started with (the system's default);
    /// `auto`: `batch` for a server that only writes the log (`serve event-log`,
    /// `up --no-read-models`), `normal` otherwise.
    #[arg(
        long,
        global = true,
        env = "JOURNEY_CPU_POLICY",
        value_enum,
        default_value_t = crate::sched::CpuPolicy::Auto
    )]
    pub cpu_policy: crate::sched::CpuPolicy,
}

impl Command {
    /// For a verb that runs a server: whether that server only writes the log (it projects no
    /// read model). `None` for the client verbs.
    pub fn server_writes_only(&self) -> Option<bool> {
        match self {
            Command::Up { config, .. } => Some(config.no_read_models),
            Command::Serve {
                what: ServeWhat::EventLog { .. },
            } => Some(true),
            Command::Serve { .. } => Some(false),
            _ => None,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Address of a running `journey up` (gRPC).
    #[arg(
        long,
        env = "JOURNEY_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// Access token sent as `authorization: Bearer …`.
    #[arg(long, env = "JOURNEY_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process: event log in ./data, gRPC, status page, optional NATS.
    Up {
        #[command(flatten)]
        config: ServerConfig,
        #[command(flatten)]
        anchor: crate::audit_service::AnchorArgs,
    },
    /// Audit trail: a patient's timeline, state "as of" (bi-temporal), chain verification
    /// against the anchored head, FHIR R4 export.
    Audit {
        #[command(subcommand)]
        what: crate::audit_service::AuditWhat,
    },
    /// Test-only tools that break things on purpose (hidden).
    #[command(hide = true)]
    Debug {
        #[command(subcommand)]
        what: crate::audit_service::DebugWhat,
    },
    /// Ask a journey process whether it serves (gRPC health); exit code 0 when it does (for probes).
    Health {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Append events from a JSON or NDJSON file ("-" = stdin), as one atomic batch.
    Append {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print one patient's journey as a readable timeline.
    Replay {
        #[arg(long)]
        patient: String,
        /// Print each event as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify the hash chain of the whole log (or a range); exits 1 if it does not verify.
    Verify {
        #[arg(long, default_value_t = 0)]
        from: u64,
        #[arg(long, default_value_t = 0)]
        to: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run one read-model service alone (reads a remote log; live events from NATS when given).
    Serve {
        #[command(subcommand)]
        what: crate::cli::ServeWhat,
    },
    /// Rebuild a read model from the whole log into fresh tables, then swap them in (queries keep answering).
    Rebuild {
        /// The projection: readmission.
        projection: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: crate::cli::BenchWhat,
    },
    /// Import an external data set through the Append API (idempotent: a re-run appends nothing).
    Import {
        #[command(subcommand)]
        what: crate::cli::ImportWhat,
    },
    /// Generate realistic hospital-to-home journeys and append them (deterministic for a seed).
    Simulate {
        #[command(flatten)]
        args: crate::simulate::SimulateArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServeWhat {
    /// The event log alone (gRPC EventLog, NATS outbox, /status, /metrics): no read model, no
    /// reactor in this process.
    EventLog {
        #[command(flatten)]
        config: ServerConfig,
        #[command(flatten)]
        anchor: crate::audit_service::AnchorArgs,
    },
    /// The Readmission gRPC service and its projection.
    Readmission(crate::config::ReadSideConfig),
    /// The Coordination gRPC service, its projection (and the readmission one, for the
    /// indicators) and the dashboard over HTTP.
    Coordination(crate::config::ReadSideConfig),
    /// The telemonitoring alert reactor: appends `AlertRaised` when an observation crosses a
    /// care-plan or default threshold (exactly once per crossing, also across restarts).
    Reactor(crate::reactor::ReactorConfig),
    /// The Audit gRPC service over a remote log (timeline, as-of, verify, FHIR export); keeps
    /// its own anchor of the log's head when given --anchor-file.
    Audit(crate::audit_service::AuditServeConfig),
}

#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// A Synthea CSV export folder (patients, encounters, conditions, medications, observations;
    /// optional careplans, organizations, providers). Refused and malformed rows are reported
    /// with file and line; exit code 1 when --strict stopped at one.
    Synthea {
        dir: PathBuf,
        /// Stop at the first malformed or refused row (exit code 1).
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Append throughput against baselines measured in the same run (see BENCHMARKS.md).
    Append(crate::cli::BenchArgs),
    /// Rebuild of the readmission read model (SQLite, PostgreSQL) from a log of simulated
    /// journeys, against a plain scan of the same log measured in the same run.
    Rebuild(crate::cli::BenchRebuildArgs),
    /// Latency of the Rates and AtRisk queries over gRPC on a read model of N index stays,
    /// against a do-nothing gRPC call measured in the same run.
    Query(crate::cli::BenchQueryArgs),
    /// Under steady append load, the delay from append acknowledgement to the event being in
    /// the readmission read model, against the append latency itself.
    Visible(crate::cli::BenchVisibleArgs),
    /// Rebuild of the coordination read model against a scan of the log, Worklist latency over
    /// gRPC and dashboard render time against a do-nothing call, on N followed patients.
    Coordination(crate::cli::BenchCoordinationArgs),
    /// Audit timeline latency, full-log verification rate against a scan, and the cost of
    /// authentication and access control on a read (secure vs --insecure server).
    Audit(crate::cli::BenchAuditArgs),
    /// End to end: the sustained append rate with every read model live and their lag under
    /// that load, for `journey up` and for the separate services on NATS and PostgreSQL.
    E2e(crate::cli::BenchE2eArgs),
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
    #[arg(
        long,
        env = "JOURNEY_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// PostgreSQL server for the services' read models: a fresh database is created there and dropped.
    #[arg(
        long,
        env = "JOURNEY_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args, Clone)]
pub struct BenchRebuildArgs {
    /// Simulated events in the log (whole journeys: a few more).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// PostgreSQL server for the PostgreSQL rebuild: a fresh database is created there and dropped.
    #[arg(
        long,
        env = "JOURNEY_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
    /// Skip the PostgreSQL rebuild (no PostgreSQL at hand).
    #[arg(long)]
    pub no_postgres: bool,
    /// Length of the simulated window, in days (ending today).
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
    #[arg(
        long,
        env = "JOURNEY_NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub nats_url: String,
    /// PostgreSQL for the plain-table baseline.
    #[arg(
        long,
        env = "JOURNEY_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub database_url: String,
}

pub async fn append(file: PathBuf, args: ClientArgs) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let events = json::events_from_text(&text).with_context(|| format!("in {}", file.display()))?;
    if events.is_empty() {
        bail!("{} holds no events", file.display());
    }
    let mut client = client::connect(&args.server, args.token.as_deref()).await?;
    let response = client
        .append(AppendRequest {
            events,
            expected_versions: Default::default(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("append refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    for a in &response.appended {
        println!(
            "position {:>8}  version {:>4}  {}",
            a.position, a.stream_version, a.event_id
        );
    }
    if response.deduplicated {
        println!("(already stored: nothing written)");
    }
    Ok(())
}

pub async fn replay(patient: String, as_json: bool, args: ClientArgs) -> anyhow::Result<()> {
    let mut client = client::connect(&args.server, args.token.as_deref()).await?;
    let mut stream = client
        .read_stream(ReadStreamRequest {
            patient_id: patient.clone(),
            from_version: 1,
            batch_size: 0,
        })
        .await
        .map_err(|s| anyhow::anyhow!("replay refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    let mut count = 0;
    while let Some(batch) = stream.next().await {
        for event in batch?.events {
            count += 1;
            if as_json {
                println!("{}", json::event_to_json(&event));
                continue;
            }
            let e = crate::timeline::entry(&event);
            println!(
                "v{:<3} #{:<7} {}  {:<22} by {} via {} (recorded {})\n      {}",
                e.version,
                e.position,
                e.occurred_at,
                e.kind,
                e.actor,
                e.source,
                e.recorded_at,
                e.detail
            );
        }
    }
    if count == 0 {
        println!("no events for patient {patient}");
    }
    Ok(())
}

pub async fn verify(from: u64, to: u64, args: ClientArgs) -> anyhow::Result<bool> {
    let mut client = client::connect(&args.server, args.token.as_deref()).await?;
    let r = client
        .verify(VerifyRequest {
            from_position: from,
            to_position: to,
            ..Default::default()
        })
        .await
        .map_err(|s| anyhow::anyhow!("verify refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    if r.ok {
        println!(
            "ok: {} events verified; head position {} hash {}",
            r.checked,
            r.head_position,
            hex(&r.head_hash)
        );
    } else {
        println!(
            "FAILED at position {}: {} ({} events verified before it)",
            r.first_bad_position, r.problem, r.checked
        );
    }
    Ok(r.ok)
}

/// `journey rebuild`: streams the server's progress as a progress line (events/s, ETA).
pub async fn rebuild(projection: String, args: ClientArgs) -> anyhow::Result<()> {
    use journey_proto::v1::{projections_client::ProjectionsClient, RebuildRequest};
    use std::io::Write;
    let channel = client::channel(&args.server).await?;
    let mut c = ProjectionsClient::with_interceptor(channel, client::token(args.token.as_deref())?);
    let mut stream = c
        .rebuild(RebuildRequest {
            projection: projection.clone(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("rebuild refused ({:?}): {}", s.code(), s.message()))?
        .into_inner();
    let mut last = None;
    while let Some(p) = stream.next().await {
        let p =
            p.map_err(|s| anyhow::anyhow!("rebuild failed ({:?}): {}", s.code(), s.message()))?;
        let eta = if p.events_per_sec > 0.0 {
            p.target.saturating_sub(p.applied) as f64 / p.events_per_sec
        } else {
            0.0
        };
        let pct = if p.target > 0 {
            100.0 * p.applied as f64 / p.target as f64
        } else {
            100.0
        };
        eprint!(
            "\r{projection}: {:>10}/{} events ({pct:5.1}%), {:.0} events/s, ETA {eta:.0}s   ",
            p.applied, p.target, p.events_per_sec
        );
        let _ = std::io::stderr().flush();
        last = Some(p);
    }
    eprintln!();
    match last {
        Some(p) if p.done => {
            println!(
                "{projection} rebuilt: {} events at {:.0} events/s, swapped in",
                p.applied, p.events_per_sec
            );
            Ok(())
        }
        _ => anyhow::bail!("the rebuild stream ended before the swap; see the server log"),
    }
}

/// `journey health`: the gRPC health check of the whole server ("" service).
pub async fn health(args: ClientArgs) -> anyhow::Result<bool> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let mut c = HealthClient::new(client::channel(&args.server).await?);
    let status = c
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("health check refused ({:?}): {}", s.code(), s.message()))?
        .into_inner()
        .status;
    let serving = status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    println!("{}", if serving { "serving" } else { "not serving" });
    Ok(serving)
}
