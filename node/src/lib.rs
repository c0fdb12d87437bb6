//! The one composition (crate `journey-node`): a node runs any set of parts (the log, the read models, the alert
//! reactor, the audit service, and the doors to come) behind one gRPC server (metrics, auth,
//! health, reflection) and one HTTP server (`/status`, `/metrics`, the parts' pages), and stops
//! them in one order.
//!
//! `journey up` is the node with every part over a log it holds; each `journey serve <x>` is the
//! node with one part ([`spec`] builds the [`Spec`] from the verb's flags). A new long-running
//! component is one [`Part`] registered in [`run`], never a new server skeleton.
//!
//! A part that cannot go on (the log after a storage failure) ends the node through
//! [`Running::fatal`]: health turns NOT_SERVING, the node stops in the same order, and the process
//! exits with the reason and what to do.
//!
//! Shutdown order: the gRPC server stops taking calls (calls in flight get 5 s), the stop signal
//! goes out, the HTTP server drains, each part's tasks end (last registered first, 5 s each), and
//! a local log is flushed, closed and its final head anchored.
mod audit;
mod hl7;
mod local_log;
mod reactor;
mod read_models;
pub mod spec;

pub use spec::Spec;

use anyhow::Context;
use axum::{routing::get, Json, Router};
use journey_projections::db::Db;
use journey_services::{
    access_log::AccessLog,
    auth::Authenticator,
    connections,
    log_handle::LogHandle,
    tls::{Alpn, TlsAcceptor},
};
use serde_json::{Map, Value};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{
    net::TcpListener,
    sync::{mpsc, watch},
    task::JoinHandle,
};
use tonic::service::RoutesBuilder;

/// Where the servers listen, once they do.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

/// A long-running component of a node.
pub trait Part: Send + Sync {
    /// Adds the part's gRPC services; returns their names, reported serving by health.
    fn grpc(&self, _routes: &mut RoutesBuilder) -> Vec<&'static str> {
        Vec::new()
    }
    /// The part's HTTP routes (merged into the node's router).
    fn http(&self) -> Router {
        Router::new()
    }
    /// The part's entries in `/status`.
    fn status(&self, _out: &mut Map<String, Value>) {}
    /// Starts the part's background tasks; they end when `run.stop` turns true.
    fn start(&mut self, _run: &Running) -> Vec<JoinHandle<()>> {
        Vec::new()
    }
}

/// What a part's tasks get: the stop signal, and a way to end the node when the part cannot go
/// on (the reason becomes the process's error).
pub struct Running {
    pub stop: watch::Receiver<bool>,
    pub fatal: mpsc::UnboundedSender<String>,
    /// Where the node's gRPC listens (bound: a port 0 is resolved).
    pub grpc: std::net::SocketAddr,
}

/// What every part may use: the log, the callers' authentication, the access log.
pub struct Shared {
    pub log: LogHandle,
    pub auth: Arc<Authenticator>,
    /// Where reads of patient data are recorded (`None`: a node with no database).
    pub access: Option<AccessLog>,
}

/// Runs the node until `shutdown` completes, then stops it in order.
pub async fn run(
    spec: Spec,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    // Every setting that can be refused is read before anything is opened or started.
    let http_tls = spec.front.tls.acceptor(Alpn::Http)?;
    let grpc_tls = spec.front.tls.acceptor(Alpn::Grpc)?;
    let (local, shared, read_db) = open_shared(&spec).await?;
    let mut parts = register(&spec, local.as_ref(), read_db, &shared).await?;

    let grpc = bind(&spec.grpc_addr, "gRPC", "--grpc-addr").await?;
    let web = bind(&spec.http_addr, "HTTP", "--http-addr").await?;
    let ready = Ready {
        grpc: grpc.local_addr()?,
        http: web.local_addr()?,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let (fatal, mut fatal_rx) = mpsc::unbounded_channel();
    let running = Running {
        stop: stop_rx.clone(),
        fatal,
        grpc: ready.grpc,
    };
    let tasks: Vec<_> = parts.iter_mut().map(|p| p.start(&running)).collect();
    let parts: Arc<Vec<Box<dyn Part>>> = Arc::new(parts);
    let http_task = tokio::spawn(journey_services::http_server::serve(
        web,
        http_router(parts.clone()),
        http_tls,
        stop_rx.clone(),
    ));
    let grpc = GrpcServer::start(grpc_tls, &parts, &shared, grpc).await?;
    on_ready(ready);

    let fatal = tokio::select! {
        _ = shutdown => None,
        why = fatal_rx.recv() => why,
    };
    if let Some(why) = &fatal {
        tracing::error!("{why}");
        grpc.not_serving().await;
    }
    tracing::info!("shutting down: no new calls, finishing the calls in flight");
    grpc.stop(|| {
        let _ = stop_tx.send(true);
    })
    .await;
    if tokio::time::timeout(Duration::from_secs(5), http_task)
        .await
        .is_err()
    {
        tracing::warn!("HTTP connections still open after 5 s; closing them");
    }
    for part_tasks in tasks.into_iter().rev() {
        for task in part_tasks {
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("a task did not stop within 5 s; leaving it");
            }
        }
    }
    drop(parts);
    match (local, &fatal) {
        (Some(l), None) => l.close().await?,
        (Some(l), Some(_)) => l.abandon(),
        (None, _) => {}
    }
    match fatal {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}

/// The secrets, the log (opened here when the node holds it), the read-model database and the
/// access log: what every part shares.
async fn open_shared(
    spec: &Spec,
) -> anyhow::Result<(Option<local_log::LocalLog>, Shared, Option<Db>)> {
    // The secrets first: a refused key or secret file leaves nothing behind (no data folder).
    let mut auth = Authenticator::new(&spec.front.auth, None)?;
    let local = match &spec.log {
        spec::LogSpec::Local(config) => {
            Some(local_log::LocalLog::open(config, &spec.grpc_addr).await?)
        }
        spec::LogSpec::Remote(_) => None,
    };
    let log = match (&local, &spec.log) {
        (Some(l), _) => l.handle(),
        (None, spec::LogSpec::Remote(remote)) => LogHandle::remote(remote)?,
        (None, spec::LogSpec::Local(_)) => unreachable!("a local log is open"),
    };
    if let Some(l) = local.as_ref().filter(|_| !spec.front.auth.insecure) {
        auth.add_admin_token(&l.admin_token()?);
    }
    let auth = Arc::new(auth);
    let read_db = match &spec.read_models {
        Some(r) => Some(journey_projections::db::connect(&r.database_url).await?),
        None => None,
    };
    let access = match (&spec.access_log_url, &read_db) {
        (Some(url), _) => Some(AccessLog::new(
            journey_projections::db::connect(url).await?.pool,
        )),
        (None, Some(db)) => Some(AccessLog::new(db.pool.clone())),
        (None, None) => None,
    };
    if let Some(a) = &access {
        auth.record_refusals_in(a.clone());
    }
    Ok((local, Shared { log, auth, access }, read_db))
}

/// The parts the spec names, in the order they start; they stop in the reverse order.
async fn register(
    spec: &Spec,
    local: Option<&local_log::LocalLog>,
    read_db: Option<Db>,
    shared: &Shared,
) -> anyhow::Result<Vec<Box<dyn Part>>> {
    let mut parts: Vec<Box<dyn Part>> = Vec::new();
    if let Some(l) = local {
        parts.push(Box::new(l.part(spec, shared.access.clone())));
    }
    if let (Some(r), Some(db)) = (&spec.read_models, read_db) {
        parts.push(Box::new(
            read_models::ReadModels::open(r, db, shared).await?,
        ));
    }
    if let Some(r) = &spec.reactor {
        parts.push(Box::new(reactor::Reactor::new(r, shared)));
    }
    if let Some(a) = &spec.audit {
        let keeper = local.map(|l| l.anchor_keeper());
        parts.push(Box::new(audit::AuditPart::new(a, keeper, shared).await));
    }
    if let Some(h) = &spec.hl7 {
        parts.push(Box::new(hl7::Hl7Part::open(h, spec, shared).await?));
    }
    Ok(parts)
}

/// The node's one gRPC server: every part's services behind the metrics and auth layers, with
/// health (each service, and "" for the node) and reflection.
struct GrpcServer {
    health: tonic_health::server::HealthReporter,
    served: Vec<&'static str>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl GrpcServer {
    async fn start(
        tls: Option<TlsAcceptor>,
        parts: &[Box<dyn Part>],
        shared: &Shared,
        listener: TcpListener,
    ) -> anyhow::Result<GrpcServer> {
        let (health, health_service) = tonic_health::server::health_reporter();
        let mut routes = RoutesBuilder::default();
        routes
            .add_service(health_service)
            .add_service(reflection()?);
        let mut served = vec![""];
        for part in parts {
            for name in part.grpc(&mut routes) {
                health
                    .set_service_status(name, tonic_health::ServingStatus::Serving)
                    .await;
                served.push(name);
            }
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(
            grpc_builder()
                .layer(journey_services::grpc_metrics::GrpcMetrics)
                .layer(journey_services::auth::AuthLayer(shared.auth.clone()))
                .layer(journey_services::request_decoding::RequestDecoding)
                .add_routes(routes.routes())
                .serve_with_incoming_shutdown(connections::accept(listener, tls), async {
                    let _ = stopped.await;
                }),
        );
        Ok(GrpcServer {
            health,
            served,
            stop,
            task,
        })
    }

    /// Probes and load balancers stop sending calls while the node drains.
    async fn not_serving(&self) {
        for name in &self.served {
            self.health
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
    }

    /// No new calls, then `meanwhile` (the node's stop signal); calls in flight get 5 s (open
    /// Subscribe streams never end on their own).
    async fn stop(self, meanwhile: impl FnOnce()) {
        let _ = self.stop.send(());
        meanwhile();
        if tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .is_err()
        {
            tracing::warn!("grpc calls still open after 5 s; closing them");
        }
    }
}

/// `/status` (every part's entries), `/metrics` (Prometheus), and the parts' own routes.
fn http_router(parts: Arc<Vec<Box<dyn Part>>>) -> Router {
    let mut app = Router::new();
    for part in parts.iter() {
        app = app.merge(part.http());
    }
    let status = move || {
        let mut out = Map::new();
        for part in parts.iter() {
            part.status(&mut out);
        }
        Value::Object(out)
    };
    app.route("/status", get(move || async move { Json(status()) }))
        .route(
            "/metrics",
            get(|| async { journey_services::telemetry::render_metrics() }),
        )
}

async fn bind(addr: &str, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({what}); pick another {flag}"))
}

/// A gRPC server builder. Connections come from `connections::accept` (TLS handshake and first
/// bytes bounded in time, Nagle off); once under way, a connection whose peer stops answering
/// pings is closed.
fn grpc_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
}

/// gRPC reflection over every journey service and the health service.
fn reflection() -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(journey_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?)
}

/// A task's end, logged when it failed (the node's tasks return nothing).
fn logged(
    what: &'static str,
    task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = task.await {
            tracing::error!(error = %format!("{e:#}"), "{what} stopped");
        }
    })
}

/// Connects what a part follows, retrying with backoff while the log or NATS is not there yet (a
/// read side or a reactor may start before them); `None` when the node stops first.
async fn connect_with_retry<T, F, Fut>(
    what: &'static str,
    mut stop: watch::Receiver<bool>,
    connect: F,
) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut backoff = Duration::from_millis(200);
    loop {
        match connect().await {
            Ok(connected) => return Some(connected),
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                retry_ms = backoff.as_millis() as u64,
                "{what}: cannot connect yet"
            ),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return None,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
