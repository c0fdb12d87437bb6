//! The read models of a node: the readmission projection (always: the coordination indicators
//! count 30-day readmissions) and, when asked, the coordination projection with the dashboard;
//! their gRPC services and the `Projections` service (status, rebuilds).
//!
//! Catch-up, gaps and rebuilds read the node's log (in process or over gRPC); live events come
//! from the log itself, or from NATS JetStream for a node without the log when given.
use super::{connect_with_retry, logged, spec::ReadModelsSpec, Part, Running, Shared};
use axum::Router;
use journey_fhir_api::{self as fhir_api, FhirApi};
use journey_log_access::Nats;
use journey_projections::{
    coordination::Coordination,
    db::Db,
    planning::Planning,
    readmission::Readmission,
    runtime::{Progress, Projection, Runner},
};
use journey_proto::v1::{
    coordination_server::CoordinationServer, projections_server::ProjectionsServer,
    readmission_server::ReadmissionServer,
};
use journey_services::{
    coordination_service::CoordinationService,
    dashboard::{self, Dashboard},
    log_handle::LogHandle,
    projections_service::ProjectionsService,
    readmission_service::ReadmissionService,
};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio::{sync::watch, task::JoinHandle};
use tonic::{server::NamedService, service::RoutesBuilder};

pub struct ReadModels {
    log: LogHandle,
    nats: Option<super::spec::Nats>,
    readmission: Arc<Runner<Readmission>>,
    coordination: Option<Arc<Runner<Coordination>>>,
    planning: Option<Arc<Runner<Planning>>>,
    readmission_service: ReadmissionService,
    coordination_service: Option<CoordinationService>,
    projections: ProjectionsService,
    dashboard: Option<Dashboard>,
    fhir: FhirApi,
    /// `journey serve fhir`: the FHIR routes and the Projections service only.
    fhir_only: bool,
}

impl ReadModels {
    pub async fn open(spec: &ReadModelsSpec, db: Db, shared: &Shared) -> anyhow::Result<Self> {
        let log = shared.log.clone();
        let readmission = open_projection(db.clone(), Readmission, &log).await?;
        if spec.coordination {
            // The care pathway templates (`JOURNEY_PATHWAYS`): a file that cannot be used stops
            // the start, rather than a coordination view paused behind it.
            if let Err(why) = journey_projections::coordination::pathways::active() {
                anyhow::bail!(
                    "the care pathway templates cannot be used: {why}. Fix the file, or unset \
                     JOURNEY_PATHWAYS for the built-in templates"
                );
            }
        }
        let (coordination, planning) = match spec.coordination {
            true => (
                Some(open_projection(db.clone(), Coordination, &log).await?),
                Some(open_projection(db, Planning, &log).await?),
            ),
            false => (None, None),
        };
        let access = shared.access.clone();
        let coordination_service = coordination.as_ref().map(|runner| CoordinationService {
            runner: runner.clone(),
            access: access.clone(),
            readmission: Some(readmission.clone()),
        });
        let dashboard = coordination_service.as_ref().map(|c| Dashboard {
            coordination: c.clone(),
            log: log.clone(),
            sessions: (!shared.auth.is_insecure())
                .then(|| journey_services::session::Sessions::new(shared.auth.clone())),
            planning: planning.clone(),
        });
        let fhir = FhirApi {
            log: log.clone(),
            coordination: coordination_service.clone(),
            access: access.clone(),
            auth: (!shared.auth.is_insecure()).then(|| shared.auth.clone()),
            exports: Some(fhir_api::Exports::open(exports_dir(spec))?),
        };
        Ok(ReadModels {
            fhir,
            fhir_only: spec.fhir_only,
            readmission_service: ReadmissionService {
                runner: readmission.clone(),
                access,
                consents: coordination.clone(),
            },
            projections: ProjectionsService {
                readmission: Some(readmission.clone()),
                coordination: coordination.clone(),
                planning: planning.clone(),
                log: log.clone(),
            },
            log,
            nats: spec.nats.clone(),
            readmission,
            coordination,
            planning,
            coordination_service,
            dashboard,
        })
    }

    /// Follows the log live with one runner: NATS when configured, else the log itself.
    async fn follow<P: Projection>(
        log: LogHandle,
        nats: Option<super::spec::Nats>,
        runner: Arc<Runner<P>>,
        stop: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let what = "a read model's feed";
        match (nats, &log) {
            (Some(n), LogHandle::Remote { remote, .. }) => {
                let connect = || Nats::connect(remote, &n.url, &n.stream);
                match connect_with_retry(what, stop.clone(), connect).await {
                    Some(source) => runner.run(source, stop).await,
                    None => Ok(()),
                }
            }
            _ => match connect_with_retry(what, stop.clone(), || log.source()).await {
                Some(source) => runner.run(source, stop).await,
                None => Ok(()),
            },
        }
    }
}

impl Part for ReadModels {
    fn grpc(&self, routes: &mut RoutesBuilder) -> Vec<&'static str> {
        routes.add_service(ProjectionsServer::new(self.projections.clone()));
        let mut names = vec![<ProjectionsServer<ProjectionsService> as NamedService>::NAME];
        if self.fhir_only {
            return names;
        }
        routes.add_service(ReadmissionServer::new(self.readmission_service.clone()));
        names.push(<ReadmissionServer<ReadmissionService> as NamedService>::NAME);
        if let Some(c) = &self.coordination_service {
            routes.add_service(CoordinationServer::new(c.clone()));
            names.push(<CoordinationServer<CoordinationService> as NamedService>::NAME);
        }
        names
    }

    fn http(&self) -> Router {
        let fhir = fhir_api::router(self.fhir.clone());
        match &self.dashboard {
            Some(d) if !self.fhir_only => dashboard::router(d.clone()).merge(fhir),
            _ => fhir,
        }
    }

    fn status(&self, out: &mut Map<String, Value>) {
        let mut v = vec![projection_status(&self.readmission)];
        if let Some(c) = &self.coordination {
            v.push(projection_status(c));
        }
        if let Some(p) = &self.planning {
            v.push(projection_status(p));
        }
        out.insert("projections".into(), Value::Array(v));
    }

    fn start(&mut self, run: &Running) -> Vec<JoinHandle<()>> {
        let stop = &run.stop;
        let mut tasks = vec![logged(
            "the readmission projection",
            Self::follow(
                self.log.clone(),
                self.nats.clone(),
                self.readmission.clone(),
                stop.clone(),
            ),
        )];
        if let Some(c) = &self.coordination {
            tasks.push(logged(
                "the coordination projection",
                Self::follow(self.log.clone(), self.nats.clone(), c.clone(), stop.clone()),
            ));
        }
        if let Some(p) = &self.planning {
            tasks.push(logged(
                "the discharge-planning projection",
                Self::follow(self.log.clone(), self.nats.clone(), p.clone(), stop.clone()),
            ));
        }
        if let Some(access) = self.readmission_service.access.clone() {
            // The refusals counted since the last minute are written before the node ends.
            let mut stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let _ = stop.wait_for(|s| *s).await;
                access.flush_refusals(true).await;
            }));
        }
        tasks
    }
}

fn projection_status<P: Projection>(r: &Runner<P>) -> Value {
    let s = *r.watch().borrow();
    json!({"projection": r.projection.name(), "checkpoint": s.checkpoint, "generation": s.generation, "writer": r.is_writer()})
}

/// Opens a read model; rebuilds it first when its schema version changed.
async fn open_projection<P: Projection>(
    db: Db,
    projection: P,
    log: &LogHandle,
) -> anyhow::Result<Arc<Runner<P>>> {
    let name = projection.name();
    let (runner, stale) = Runner::open(db, projection).await?;
    if stale {
        tracing::info!(projection = name, "schema changed, rebuilding from the log");
        let mut source = log.source().await?;
        runner
            .rebuild(&mut source, |p: Progress| {
                if p.done || p.applied % 100_000 < 2000 {
                    tracing::info!(
                        projection = name,
                        applied = p.applied,
                        target = p.target,
                        events_per_sec = p.events_per_sec as u64,
                        "rebuild"
                    );
                }
            })
            .await?;
    }
    Ok(runner)
}

/// The folder of the FHIR Bulk Data exports: `fhir-exports` in the node's data folder
/// (`journey up`), else beside a SQLite read-model database, else in `$JOURNEY_DATA_DIR` (default
/// `./data`).
fn exports_dir(spec: &ReadModelsSpec) -> std::path::PathBuf {
    if let Some(dir) = &spec.data_dir {
        return dir.join("fhir-exports");
    }
    let beside = spec
        .database_url
        .strip_prefix("sqlite://")
        .map(|p| std::path::Path::new(p.split('?').next().unwrap_or(p)))
        .and_then(|p| p.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf());
    beside
        .unwrap_or_else(|| std::env::var_os("JOURNEY_DATA_DIR").map_or("./data".into(), Into::into))
        .join("fhir-exports")
}
