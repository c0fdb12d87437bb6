//! `journey serve readmission`: the readmission read model as its own process, reading a remote
//! log over gRPC (catch-up, gaps, rebuilds) and live events from NATS JetStream when given.
use crate::{
    config::ReadmissionConfig,
    projections_service::{LogAccess, ProjectionsService},
    readmission_service::ReadmissionService,
    server::{open_projection, reflection, Ready},
};
use anyhow::Context;
use axum::{routing::get, Json, Router};
use journey_projections::{
    readmission::Readmission,
    source::{Grpc, Nats},
};
use journey_proto::v1::{
    projections_server::ProjectionsServer, readmission_server::ReadmissionServer,
};
use std::{future::Future, time::Duration};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;

pub async fn readmission(
    config: ReadmissionConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    let mut catch_up = Grpc::connect(&config.log_url).await?;
    let db = journey_projections::db::connect(&config.database_url).await?;
    let runner = open_projection(db, Readmission, &mut catch_up).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = match &config.nats_url {
        Some(url) => {
            let source = Nats::connect(&config.log_url, url, &config.nats_stream).await?;
            tokio::spawn(runner.clone().run(source, stop_rx.clone()))
        }
        None => tokio::spawn(runner.clone().run(catch_up, stop_rx.clone())),
    };
    let service = ReadmissionService {
        runner: runner.clone(),
    };
    let projections = ProjectionsService {
        readmission: Some(runner.clone()),
        coordination: None,
        log: LogAccess::Remote(config.log_url.clone()),
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
    health
        .set_serving::<ReadmissionServer<ReadmissionService>>()
        .await;
    let status = runner.watch();
    let app = Router::new().route(
        "/status",
        get(move || {
            let s = *status.borrow();
            async move { Json(serde_json::json!({"projection": "readmission", "checkpoint": s.checkpoint, "generation": s.generation})) }
        }),
    );
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(web, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await;
    });
    let (grpc_stop_tx, grpc_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection()?)
            .add_service(ReadmissionServer::new(service.clone()))
            .add_service(ProjectionsServer::new(projections))
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async {
                let _ = grpc_stop_rx.await;
            }),
    );
    on_ready(ready);
    shutdown.await;
    let _ = grpc_stop_tx.send(());
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    let _ = http.await;
    let _ = task.await;
    Ok(())
}
