//! `journey serve readmission|coordination`: a read side as its own process, reading a remote log
//! over gRPC (catch-up, gaps, rebuilds) and live events from NATS JetStream when given.
//! The coordination service also projects the readmission model into its database (its weekly
//! indicators include 30-day readmissions) and serves the dashboard over HTTP.
use crate::{
    access_log::AccessLog,
    config::ReadSideConfig,
    coordination_service::CoordinationService,
    dashboard::{self, Dashboard},
    projections_service::{LogAccess, ProjectionsService},
    readmission_service::ReadmissionService,
    server::{open_projection, reflection, Ready},
};
use anyhow::Context;
use axum::{routing::get, Json, Router};
use journey_projections::{
    coordination::Coordination,
    readmission::Readmission,
    runtime::{Projection, Runner},
    source::{Grpc, Nats},
};
use journey_proto::v1::{
    coordination_server::CoordinationServer, projections_server::ProjectionsServer,
    readmission_server::ReadmissionServer,
};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSide {
    Readmission,
    Coordination,
}

/// Follows the log live: NATS when configured, else the log's own Subscribe.
async fn follow<P: Projection>(
    runner: Arc<Runner<P>>,
    config: &ReadSideConfig,
    catch_up: Grpc,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    Ok(match &config.feed.nats_url {
        Some(url) => {
            let source = Nats::connect(&config.feed.log_url, url, &config.feed.nats_stream).await?;
            tokio::spawn(runner.run(source, stop))
        }
        None => tokio::spawn(runner.run(catch_up, stop)),
    })
}

fn projection_status<P: Projection>(r: &Runner<P>) -> serde_json::Value {
    let s = *r.watch().borrow();
    serde_json::json!({"projection": r.projection.name(), "checkpoint": s.checkpoint, "generation": s.generation, "writer": r.is_writer()})
}

pub async fn read_side(
    side: ReadSide,
    config: ReadSideConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    let auth = Arc::new(crate::auth::Authenticator::new(&config.auth, None)?);
    if let Some(t) = &config.log_token {
        journey_projections::source::use_log_token(t)?;
    }
    let db = journey_projections::db::connect(&config.database_url).await?;
    let access = match &config.access_log_url {
        Some(url) => AccessLog::new(journey_projections::db::connect(url).await?.pool),
        None => AccessLog::new(db.pool.clone()),
    };
    auth.record_refusals_in(access.clone());
    let mut catch_up = Grpc::connect(&config.feed.log_url).await?;
    let readmission = open_projection(db.clone(), Readmission, &mut catch_up).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = vec![follow(readmission.clone(), &config, catch_up, stop_rx.clone()).await?];
    let coordination = match side {
        ReadSide::Readmission => None,
        ReadSide::Coordination => {
            let mut catch_up = Grpc::connect(&config.feed.log_url).await?;
            let runner = open_projection(db, Coordination, &mut catch_up).await?;
            tasks.push(follow(runner.clone(), &config, catch_up, stop_rx.clone()).await?);
            Some(runner)
        }
    };
    let log = LogAccess::Remote(config.feed.log_url.clone());
    let projections = ProjectionsService {
        readmission: Some(readmission.clone()),
        coordination: coordination.clone(),
        log: log.clone(),
    };

    let grpc = TcpListener::bind(&config.grpc_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
    let web = TcpListener::bind(&config.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let ready = Ready {
        grpc: grpc.local_addr()?,
        http: web.local_addr()?,
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut router = crate::server::grpc_builder(&config.tls)?
        .layer(crate::grpc_metrics::GrpcMetrics)
        .layer(crate::auth::AuthLayer(auth.clone()))
        .add_service(health_service)
        .add_service(reflection()?)
        .add_service(ProjectionsServer::new(projections));
    let status_of = {
        let (r, c) = (readmission.clone(), coordination.clone());
        move || {
            let mut v = vec![projection_status(&r)];
            if let Some(c) = &c {
                v.push(projection_status(c));
            }
            serde_json::json!({ "projections": v })
        }
    };
    let mut app = Router::new()
        .route("/status", get(move || async move { Json(status_of()) }))
        .route(
            "/metrics",
            get(|| async { crate::telemetry::render_metrics() }),
        );
    match &coordination {
        None => {
            let service = ReadmissionService {
                runner: readmission.clone(),
                access: Some(access.clone()),
            };
            health
                .set_serving::<ReadmissionServer<ReadmissionService>>()
                .await;
            router = router.add_service(ReadmissionServer::new(service));
        }
        Some(runner) => {
            let service = CoordinationService {
                runner: runner.clone(),
                access: Some(access.clone()),
                readmission: Some(readmission.clone()),
            };
            health
                .set_serving::<CoordinationServer<CoordinationService>>()
                .await;
            app = app.merge(dashboard::router(Dashboard {
                coordination: service.clone(),
                log,
                sessions: (!config.auth.insecure)
                    .then(|| crate::session::Sessions::new(auth.clone())),
            }));
            router = router.add_service(CoordinationServer::new(service));
        }
    }
    let http = tokio::spawn(crate::tls::serve_http(
        web,
        app,
        config.tls.http()?,
        stop_rx.clone(),
    ));
    let (grpc_stop_tx, grpc_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(router.serve_with_incoming_shutdown(
        crate::server::incoming(grpc),
        async {
            let _ = grpc_stop_rx.await;
        },
    ));
    on_ready(ready);
    shutdown.await;
    let _ = grpc_stop_tx.send(());
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = http.await;
    for task in tasks {
        let _ = task.await;
    }
    Ok(())
}
