//! Every verb of the `journey` command and its flags. The servers' settings are
//! `journey_services::config` (one definition per setting, shared by the verbs that take it);
//! each tool's options live with the tool (`journey_bench::args`, `journey_simulate::SimulateArgs`).
use clap::{Args, Parser, Subcommand};
use journey_log_access::Remote;
use journey_services::config::{
    AuditServeConfig, EventLogConfig, Front, Hl7ServeConfig, ReactorConfig, ReadSideConfig,
    UpConfig,
};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "journey",
    version,
    about = "Patient journey backbone: an immutable, verifiable log of hospital-to-home care events",
    after_help = "Start with `journey up` (the whole system, dashboard on http://127.0.0.1:8080), \
                  then `journey append examples/tour.ndjson` in another terminal; README.md has a tour. \
                  `journey <verb> --help` explains each verb's flags."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Address of a running journey server (gRPC); `https://…` for TLS (CA in JOURNEY_CA_CERT).
    #[arg(
        long,
        env = "JOURNEY_SERVER",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub server: String,
    /// Access token, sent as `authorization: Bearer …`. Default, for a server on this machine
    /// only (127.0.0.1, ::1, localhost): the admin token a local `journey up` wrote to
    /// $JOURNEY_DATA_DIR/admin.token (./data/admin.token); it is never sent elsewhere.
    #[arg(long, env = "JOURNEY_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
}

/// A range of log positions.
#[derive(Debug, Args, Clone, Copy)]
pub struct Range {
    /// First log position to verify (positions start at 1; 0 = from the first event).
    #[arg(long, default_value_t = 0)]
    pub from: u64,
    /// Last log position to verify (0 = up to the head).
    #[arg(long, default_value_t = 0)]
    pub to: u64,
}

impl ClientArgs {
    /// The server to call, with `--token`, else `JOURNEY_TOKEN`, else, for a server on this
    /// machine only, the local admin token: a `--server` elsewhere (a typo, a hostile address)
    /// never receives it.
    pub fn remote(&self) -> anyhow::Result<Remote> {
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None if is_loopback(&self.server) => local_admin_token(),
            None => {
                if local_admin_token().is_some() {
                    eprintln!(
                        "note: the local admin token is sent only to a server on this machine; \
                         to call {} with a token, pass --token or set JOURNEY_TOKEN",
                        self.server
                    );
                }
                None
            }
        };
        Remote::new(&self.server, token.as_deref())
    }
}

/// Whether `server` (`http(s)://HOST:PORT`) is this machine: a loopback address or `localhost`.
pub(crate) fn is_loopback(server: &str) -> bool {
    let Ok(uri) = server.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The local admin token `journey up` wrote (`$JOURNEY_DATA_DIR` or `./data`).
pub(crate) fn local_admin_token() -> Option<String> {
    let dir = std::env::var("JOURNEY_DATA_DIR").unwrap_or_else(|_| "./data".into());
    std::fs::read_to_string(std::path::Path::new(&dir).join("admin.token"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole system in one process, with the dashboard on http://127.0.0.1:8080.
    #[command(
        after_help = "The event log in ./data, gRPC on 127.0.0.1:50051, the read models, \
        the alert reactor and the audit service; the coordination dashboard, /status and /metrics \
        on http://127.0.0.1:8080; NATS publication with --nats-url.\n\n\
        Secure by default: it writes an admin token to <data-dir>/admin.token; the client verbs \
        use it, and the dashboard asks for it once (paste it to sign in). --insecure turns \
        authentication off."
    )]
    Up {
        #[command(flatten)]
        config: UpConfig,
    },
    /// Run one service alone (a split deployment: docker-compose.yml).
    Serve {
        #[command(subcommand)]
        what: ServeWhat,
    },
    /// Audit trail: a patient's timeline, state "as of" (bi-temporal), chain verification
    /// against the anchored head, FHIR R4 export.
    Audit {
        #[command(subcommand)]
        what: AuditWhat,
    },
    /// Ask a journey process whether it serves (gRPC health); exit code 0 when it does (for probes).
    Health {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Append events from a JSON or NDJSON file as one atomic batch (all or nothing).
    Append {
        /// File of events in the proto3 JSON mapping of proto/journey/v1/events.proto: one
        /// object, an array, or one object per line (examples/tour.ndjson); `-` reads stdin.
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print one patient's journey as a readable timeline.
    Replay {
        /// The patient's id, as given in the events' `patient_id`.
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
        #[command(flatten)]
        range: Range,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rebuild a read model from the whole log into fresh tables, then swap them in (queries keep answering).
    Rebuild {
        /// The read model: readmission or coordination.
        projection: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Import an external data set through the Append API (idempotent: a re-run appends nothing).
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Generate realistic hospital-to-home journeys and append them (deterministic for a seed).
    Simulate {
        #[command(flatten)]
        args: journey_simulate::SimulateArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// HL7 v2 over MLLP: send message files to a listener, or show the events a message maps to.
    Hl7 {
        #[command(subcommand)]
        what: crate::hl7::Hl7What,
    },
    /// Copy a running log into a new folder: its events up to the head at the start (appends go
    /// on meanwhile), each checked against the chain, then a manifest (head position and hash).
    Backup {
        /// The new (or empty) folder to write the backup into.
        #[arg(long)]
        to: PathBuf,
        /// A previous backup's folder: copy only the events after its head (an incremental
        /// backup; `journey restore` takes the folders in order).
        #[arg(long)]
        since: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rebuild a log folder from backups (a full one, then incremental ones in order) or from a
    /// NATS JetStream stream; the chain is checked, and a refused restore writes nothing.
    Restore {
        /// Backup folders, the full backup first.
        #[arg(required_unless_present = "from_nats", conflicts_with = "from_nats")]
        backups: Vec<PathBuf>,
        /// Rebuild from this NATS server's stream instead (nats://…; tls://user:password@host).
        #[arg(long)]
        from_nats: Option<String>,
        /// The JetStream stream the log publishes to (`journey up --nats-stream`).
        #[arg(long, default_value = "JOURNEY", requires = "from_nats")]
        stream: String,
        /// The log folder to create; it must not exist, or be empty.
        #[arg(long)]
        data_dir: PathBuf,
        /// An anchor file (`<data-dir>.anchor.json` of the lost log): the backup (or the stream)
        /// must hold its event with its hash, so one that ends before the anchor is refused.
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    #[command(flatten)]
    Fhir(crate::fhir::FhirVerbs),
    /// Benchmarks, each against a baseline measured in the same run (BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        what: journey_bench::args::BenchWhat,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServeWhat {
    /// The event log alone (gRPC EventLog and Audit, NATS outbox, /status, /metrics): no read
    /// model, no reactor in this process.
    EventLog {
        #[command(flatten)]
        config: EventLogConfig,
    },
    /// The Readmission gRPC service and its projection.
    Readmission(ReadSideConfig),
    /// The Coordination gRPC service, its projection (and the readmission one, for the
    /// indicators) and the dashboard over HTTP.
    Coordination(ReadSideConfig),
    /// The FHIR R4 API alone (docs/fhir.md: reads, $everything, Bulk Data export) over HTTP,
    /// reading the remote log, with its own coordination view deciding territories and consents
    /// (no dashboard, no Readmission or Coordination gRPC service).
    Fhir(ReadSideConfig),
    /// The telemonitoring alert reactor: appends `AlertRaised` when an observation crosses a
    /// care-plan or default threshold (exactly once per crossing, also across restarts).
    Reactor(ReactorConfig),
    /// The Audit gRPC service over a remote log (timeline, as-of, verify, FHIR export); keeps
    /// its own anchor of the log's head when given --anchor-file.
    Audit(AuditServeConfig),
    /// The HL7 v2 ADT listener over MLLP (docs/hl7.md), appending to a remote log with the
    /// sending hospital's partner key (--log-token) as --mllp-organisation.
    Hl7(Hl7ServeConfig),
}

impl Command {
    /// The server flags of a server verb (`None` for the client verbs).
    pub fn front(&self) -> Option<&Front> {
        Some(match self {
            Command::Up { config } => &config.front,
            Command::Serve { what } => match what {
                ServeWhat::EventLog { config } => &config.front,
                ServeWhat::Readmission(c) | ServeWhat::Coordination(c) | ServeWhat::Fhir(c) => {
                    &c.front
                }
                ServeWhat::Reactor(c) => &c.front,
                ServeWhat::Audit(c) => &c.front,
                ServeWhat::Hl7(c) => &c.front,
            },
            _ => return None,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum ImportWhat {
    /// A Synthea CSV export folder (patients, encounters, conditions, medications, observations;
    /// optional careplans, organizations, providers). Refused and malformed rows are reported
    /// with file and line; exit code 1 when --strict stopped at one.
    Synthea {
        /// The export folder (Synthea's `output/csv`).
        dir: PathBuf,
        /// Stop at the first malformed or refused row (exit code 1).
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// FHIR R4 resources: a folder of Bulk Data NDJSON files or of Bundles (Synthea's default
    /// output), or one such file, mapped as a Synthea population (the same events as its CSV
    /// export). Resource types the mapping does not use are counted and skipped; malformed lines
    /// and refused resources are reported with file and line (or Bundle entry); exit code 1 when
    /// --strict stopped at one.
    Fhir {
        /// The folder or file.
        path: PathBuf,
        /// Stop at the first malformed or refused resource (exit code 1).
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditWhat {
    /// One patient's events with actor, source, clinical vs recorded time, correlation and hash.
    Timeline {
        /// The patient's id, as given in the events' `patient_id`.
        #[arg(long)]
        patient: String,
        /// First stream version shown.
        #[arg(long, default_value_t = 1)]
        from_version: u64,
        /// One JSON object per entry instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The patient's state at a clinical time as known at a recording time (both default to now).
    AsOf {
        /// The patient's id, as given in the events' `patient_id`.
        #[arg(long)]
        patient: String,
        /// Clinical time T (RFC 3339, e.g. 2026-03-01T12:00:00Z); default now.
        #[arg(long)]
        clinical_time: Option<String>,
        /// Recording time R (RFC 3339): only what the log knew by then; default now.
        #[arg(long)]
        recorded_time: Option<String>,
        /// The answer as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify the hash chain and the head against its anchor; exits 1 if it does not verify.
    Verify {
        #[command(flatten)]
        range: Range,
        /// An anchor you kept (with --anchor-hash); default: the server's anchor file.
        #[arg(long, requires = "anchor_hash")]
        anchor_position: Option<u64>,
        /// Hash of the anchored event, 64 hex digits.
        #[arg(long, requires = "anchor_position")]
        anchor_hash: Option<String>,
        /// The answer as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Who read patients' data (the access log), newest first: filters, pages; exits 0.
    Accesses {
        /// The reads of this patient, list reads that returned them included; default: all.
        #[arg(long, default_value = "")]
        patient: String,
        /// Only this caller's records (its subject).
        #[arg(long, default_value = "")]
        subject: String,
        /// Only this outcome: ok, permissiondenied, unauthenticated, notfound...
        #[arg(long, default_value = "")]
        outcome: String,
        /// From this time (RFC 3339, inclusive).
        #[arg(long)]
        from: Option<String>,
        /// Up to this time (RFC 3339, exclusive).
        #[arg(long)]
        to: Option<String>,
        /// Records per page (at most 10000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Start after the page that printed this token.
        #[arg(long, default_value = "")]
        page_token: String,
        /// Every page, not only the first.
        #[arg(long)]
        all: bool,
        /// One JSON object per record instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Verify the access log's chain and its head against its anchor; exits 1 if it does not.
    VerifyAccesses {
        /// An anchor of the access log you kept (with --anchor-hash); default: the server's.
        #[arg(long, requires = "anchor_hash")]
        anchor_seq: Option<u64>,
        /// Hash of the anchored record, 64 hex digits.
        #[arg(long, requires = "anchor_seq")]
        anchor_hash: Option<String>,
        /// The answer as JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// The patient's journey as FHIR R4 AuditEvent and Provenance resources (NDJSON).
    Export {
        /// The patient's id, as given in the events' `patient_id`.
        #[arg(long)]
        patient: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[cfg(test)]
mod tests {
    use super::is_loopback;

    #[test]
    fn only_this_machine_is_loopback() {
        for local in [
            "http://127.0.0.1:50051",
            "https://127.0.0.2:1",
            "http://localhost:50051",
            "http://LOCALHOST",
            "http://[::1]:50051",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "http://10.0.0.1:50051",
            "https://journey.example.org:443",
            "http://localhost.example.org:50051",
            "http://127.0.0.1.evil.example:50051",
            "http://[::2]:50051",
            "http://0.0.0.0:50051",
            "not a url",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
