//! Which parts a node runs, from the flags of each server verb.
use journey_log_access::Remote;
use journey_services::config::{
    AuditServeConfig, EventLogConfig, Front, Hl7Config, Hl7ServeConfig, LiveFeed, LogConfig,
    LogListen, ReactorConfig, ReadSideConfig, RemoteLog, UpConfig,
};
use std::{path::PathBuf, time::Duration};

pub struct Spec {
    pub grpc_addr: String,
    pub http_addr: String,
    pub front: Front,
    pub log: LogSpec,
    pub read_models: Option<ReadModelsSpec>,
    pub reactor: Option<ReactorSpec>,
    pub audit: Option<AuditSpec>,
    /// The access log's database, when it is not the read models' one.
    pub access_log_url: Option<String>,
    /// The HL7 v2 listener over MLLP (`--mllp-addr`).
    pub hl7: Option<Hl7Config>,
}

/// The log a node holds (it opens the folder) or reads over gRPC.
pub enum LogSpec {
    Local(Box<LogConfig>),
    Remote(Remote),
}

pub struct ReadModelsSpec {
    pub database_url: String,
    /// Also the coordination model and the dashboard (readmission always runs: the coordination
    /// indicators count 30-day readmissions).
    pub coordination: bool,
    /// Live events from NATS (a node without the log); `None`: from the log itself.
    pub nats: Option<Nats>,
    /// Serves the FHIR API only (`journey serve fhir`): the coordination view decides who reads
    /// whom, but neither its gRPC services nor the dashboard are served.
    pub fhir_only: bool,
    /// The node's data folder (`journey up`), where the FHIR Bulk Data exports go whatever the
    /// read models' database.
    pub data_dir: Option<PathBuf>,
}

pub struct ReactorSpec {
    pub nats: Option<Nats>,
}

pub struct AuditSpec {
    /// An anchor kept by this node of a remote log's head (a local log anchors its own head).
    pub anchor_file: Option<PathBuf>,
    pub anchor_interval: Duration,
}

#[derive(Clone)]
pub struct Nats {
    pub url: String,
    pub stream: String,
}

fn nats(live: &LiveFeed) -> Option<Nats> {
    live.nats_url.clone().map(|url| Nats {
        url,
        stream: live.nats_stream.clone(),
    })
}

impl Spec {
    /// `journey up`: the log and, unless turned off, every read model, the reactor and audit.
    pub fn up(config: UpConfig) -> Spec {
        let data_dir = config.log.data_dir.display().to_string();
        Spec {
            read_models: (!config.no_read_models).then(|| ReadModelsSpec {
                database_url: config
                    .database_url
                    .unwrap_or_else(|| format!("sqlite://{data_dir}/read-models.sqlite")),
                coordination: true,
                nats: None,
                fhir_only: false,
                data_dir: Some(config.log.data_dir.clone()),
            }),
            reactor: (!config.no_reactor).then_some(ReactorSpec { nats: None }),
            hl7: config.hl7.mllp_addr.is_some().then(|| config.hl7.clone()),
            // With read models, reads are recorded in their database.
            access_log_url: config
                .no_read_models
                .then(|| format!("sqlite://{data_dir}/access-log.sqlite")),
            ..Spec::holding(config.log, config.listen, config.front)
        }
    }

    /// `journey serve event-log`: the log alone (with its audit service).
    pub fn event_log(config: EventLogConfig) -> Spec {
        Spec::holding(config.log, config.listen, config.front)
    }

    /// A node holding the log, with its audit service (the audit trail of a log is always served
    /// where the log is). Its reads are recorded in `<data-dir>/access-log.sqlite` unless it runs
    /// read models (then in their database): no audit read goes unrecorded.
    fn holding(log: LogConfig, listen: LogListen, front: Front) -> Spec {
        let access_log = format!("sqlite://{}/access-log.sqlite", log.data_dir.display());
        Spec {
            grpc_addr: listen.grpc_addr,
            http_addr: listen.http_addr,
            front,
            log: LogSpec::Local(Box::new(log)),
            read_models: None,
            reactor: None,
            audit: Some(AuditSpec {
                anchor_file: None,
                anchor_interval: Duration::ZERO,
            }),
            hl7: None,
            access_log_url: Some(access_log),
        }
    }

    /// A node over a remote log, with no part yet.
    fn over(
        log: &RemoteLog,
        grpc_addr: String,
        http_addr: String,
        front: Front,
    ) -> anyhow::Result<Spec> {
        Ok(Spec {
            grpc_addr,
            http_addr,
            front,
            log: LogSpec::Remote(log.remote()?),
            read_models: None,
            reactor: None,
            audit: None,
            access_log_url: None,
            hl7: None,
        })
    }

    /// `journey serve readmission|coordination`.
    pub fn read_side(c: ReadSideConfig, coordination: bool) -> anyhow::Result<Spec> {
        Ok(Spec {
            read_models: Some(ReadModelsSpec {
                database_url: c.database_url,
                coordination,
                nats: nats(&c.live),
                fhir_only: false,
                data_dir: None,
            }),
            access_log_url: c.access_log_url,
            ..Spec::over(&c.log, c.grpc_addr, c.http_addr, c.front)?
        })
    }

    /// `journey serve fhir`: the FHIR API over the remote log, with the coordination view that
    /// decides territories and consents (and the readmission model it counts with).
    pub fn fhir(c: ReadSideConfig) -> anyhow::Result<Spec> {
        let mut spec = Spec::read_side(c, true)?;
        if let Some(r) = spec.read_models.as_mut() {
            r.fhir_only = true;
        }
        Ok(spec)
    }

    /// `journey serve reactor`.
    pub fn reactor(c: ReactorConfig) -> anyhow::Result<Spec> {
        Ok(Spec {
            reactor: Some(ReactorSpec {
                nats: nats(&c.live),
            }),
            ..Spec::over(&c.log, c.grpc_addr, c.http_addr, c.front)?
        })
    }

    /// `journey serve audit`.
    pub fn audit(c: AuditServeConfig) -> anyhow::Result<Spec> {
        Ok(Spec {
            audit: Some(AuditSpec {
                anchor_file: c.anchor_file,
                anchor_interval: Duration::from_millis(c.anchor_interval_ms),
            }),
            access_log_url: Some(c.access_log_url),
            ..Spec::over(&c.log, c.grpc_addr, c.http_addr, c.front)?
        })
    }

    /// `journey serve hl7`: the MLLP listener, appending to a remote log with a partner key.
    pub fn hl7(c: Hl7ServeConfig) -> anyhow::Result<Spec> {
        anyhow::ensure!(
            c.hl7.mllp_addr.is_some(),
            "serve hl7 needs --mllp-addr: the address interface engines connect to"
        );
        Ok(Spec {
            hl7: Some(c.hl7),
            ..Spec::over(&c.log, c.grpc_addr, c.http_addr, c.front)?
        })
    }

    /// Whether the node only writes the log (it projects no read model): its threads then run
    /// under `SCHED_BATCH` by default (`sched.rs`).
    pub fn writes_only(&self) -> bool {
        matches!(self.log, LogSpec::Local(_)) && self.read_models.is_none()
    }
}
