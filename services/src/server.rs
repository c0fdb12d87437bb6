//! `journey up`: the event log, its gRPC service, the NATS outbox and the status page in one process.
use crate::{
    audit_service::{self, AnchorArgs, AnchorKeeper, AuditService},
    config::ServerConfig,
    http,
    log_service::LogService,
    outbox::{self, OutboxConfig, OutboxStatus},
};
use crate::{
    coordination_service::CoordinationService,
    projections_service::{LogAccess, ProjectionsService},
    readmission_service::ReadmissionService,
};
use anyhow::Context;
use journey_domain::JourneyRules;
use journey_event_log::{EventLog, LogOptions, SledStorage};
use journey_projections::{
    coordination::Coordination,
    db::Db,
    readmission::Readmission,
    runtime::{Progress, Projection, Runner},
    source::{EventSource, InProcess},
};
use journey_proto::v1::{
    audit_server::AuditServer, coordination_server::CoordinationServer,
    event_log_server::EventLogServer, projections_server::ProjectionsServer,
    readmission_server::ReadmissionServer,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;

/// Where the servers listen, once they do.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
}

const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Runs until `shutdown` completes, then stops in order: gRPC, outbox, log (flushed).
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    run_with_anchor(config, AnchorArgs::from_env(), shutdown, on_ready).await
}

/// [`run`], with the chain head anchored where `anchor` says (see `audit_service`).
pub async fn run_with_anchor(
    config: ServerConfig,
    anchor: AnchorArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(Ready),
) -> anyhow::Result<()> {
    let dir = config.data_dir.clone();
    let log = tokio::task::spawn_blocking(move || -> anyhow::Result<EventLog> {
        let storage = SledStorage::open(&dir).with_context(|| {
            format!(
                "cannot open the event log in {} (is another `journey up` using it?)",
                dir.display()
            )
        })?;
        Ok(EventLog::open(
            Arc::new(storage),
            Box::new(JourneyRules::default()),
            LogOptions::default(),
        )?)
    })
    .await??;
    let log = Arc::new(log);
    tracing::info!(head = log.head().position, dir = %config.data_dir.display(), "event log open");
    // The chain head anchored outside the log: a log behind its anchor is reported loudly (and by
    // `journey audit verify`), and the anchor is then kept as evidence, never overwritten.
    let audit_source = audit_service::Source::new(&LogAccess::InProcess(log.clone()), None)?;
    let anchor_keeper = Arc::new(AnchorKeeper::new(
        anchor.path_for(&config.data_dir),
        config.data_dir.display().to_string(),
    ));
    anchor_keeper.check_at_start(&audit_source).await;

    let db_url = config
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/read-models.sqlite", config.data_dir.display()));
    let runners = if config.no_read_models {
        None
    } else {
        let db = journey_projections::db::connect(&db_url).await?;
        let readmission =
            open_projection(db.clone(), Readmission, &mut InProcess::new(log.clone())).await?;
        let coordination =
            open_projection(db, Coordination, &mut InProcess::new(log.clone())).await?;
        Some((readmission, coordination))
    };
    let access = runners
        .as_ref()
        .map(|(r, _)| crate::access_log::AccessLog::new(r.db.pool.clone()));

    let grpc = TcpListener::bind(&config.grpc_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (gRPC); pick another --grpc-addr",
                config.grpc_addr
            )
        })?;
    let web = TcpListener::bind(&config.http_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (HTTP); pick another --http-addr",
                config.http_addr
            )
        })?;
    let ready = Ready {
        grpc: grpc.local_addr()?,
        http: web.local_addr()?,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let anchor_task = tokio::spawn(anchor_keeper.clone().keep(
        audit_source.clone(),
        Duration::from_millis(anchor.anchor_interval_ms),
        stop_rx.clone(),
    ));
    let audit = AuditService {
        source: audit_source.clone(),
        anchor: Some(anchor_keeper.clone()),
        access: access.clone(),
    };
    let status = Arc::new(OutboxStatus::default());
    let outbox_task = config.nats_url.clone().map(|url| {
        let cfg = OutboxConfig {
            url,
            stream: config.nats_stream.clone(),
            subject_prefix: config.nats_subject_prefix.clone(),
        };
        tokio::spawn(outbox::run(
            log.clone(),
            cfg,
            status.clone(),
            stop_rx.clone(),
        ))
    });

    // Telemonitoring alerts: appended through this log, exactly once per crossing.
    let reactor_task = (!config.no_reactor)
        .then(|| crate::reactor::spawn_in_process(log.clone(), stop_rx.clone()).0);
    let mut projection_tasks = Vec::new();
    let mut read_side = None;
    if let Some((readmission, coordination)) = runners {
        for task in [
            tokio::spawn(
                readmission
                    .clone()
                    .run(InProcess::new(log.clone()), stop_rx.clone()),
            ),
            tokio::spawn(
                coordination
                    .clone()
                    .run(InProcess::new(log.clone()), stop_rx.clone()),
            ),
        ] {
            projection_tasks.push(task);
        }
        let projections = ProjectionsService {
            readmission: Some(readmission.clone()),
            coordination: Some(coordination.clone()),
            log: LogAccess::InProcess(log.clone()),
        };
        let coordination = CoordinationService {
            runner: coordination,
            access: access.clone(),
            readmission: Some(readmission.clone()),
        };
        read_side = Some((
            ReadmissionService {
                runner: readmission,
                access: access.clone(),
            },
            coordination,
            projections,
        ));
    }
    let admin = if config.auth.insecure {
        None
    } else {
        let token = crate::auth::admin_token(&config.data_dir)?;
        eprintln!(
            "admin token in {} (the CLI verbs read it from there)",
            config.data_dir.join("admin.token").display()
        );
        Some(token)
    };
    let auth = Arc::new(crate::auth::Authenticator::new(
        &config.auth,
        admin.as_deref(),
    )?);
    if let Some(log) = &access {
        auth.record_refusals_in(log.clone());
    }
    let sessions = (!config.auth.insecure).then(|| crate::session::Sessions::new(auth.clone()));
    let dashboard = match &read_side {
        Some((_, coordination, _)) => crate::dashboard::router(crate::dashboard::Dashboard {
            coordination: coordination.clone(),
            log: LogAccess::InProcess(log.clone()),
            sessions,
        }),
        None => axum::Router::new(),
    };
    let http_task = tokio::spawn(http::serve(
        web,
        log.clone(),
        status.clone(),
        config.nats_url.is_some(),
        dashboard,
        config.tls.http()?,
        stop_rx.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EventLogServer<LogService>>().await;
    health.set_serving::<AuditServer<AuditService>>().await;
    if read_side.is_some() {
        health
            .set_serving::<ReadmissionServer<ReadmissionService>>()
            .await;
        health
            .set_serving::<CoordinationServer<CoordinationService>>()
            .await;
    }
    let (readmission, coordination, projections) = match read_side {
        Some((r, c, p)) => (Some(r), Some(c), Some(p)),
        None => (None, None, None),
    };
    let reflection = reflection()?;
    let service = EventLogServer::new(LogService::new(
        log.clone(),
        config.max_event_bytes,
        config.max_batch_events,
    ))
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);

    let (grpc_stop_tx, grpc_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let grpc_task = tokio::spawn(
        grpc_builder(&config.tls)?
            .layer(crate::grpc_metrics::GrpcMetrics)
            .layer(crate::auth::AuthLayer(auth))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(service)
            .add_optional_service(readmission.map(ReadmissionServer::new))
            .add_optional_service(coordination.map(CoordinationServer::new))
            .add_optional_service(projections.map(ProjectionsServer::new))
            .add_service(AuditServer::new(audit))
            .serve_with_incoming_shutdown(incoming(grpc), async {
                let _ = grpc_stop_rx.await;
            }),
    );
    on_ready(ready);

    shutdown.await;
    tracing::info!("shutting down: no new calls, finishing appends in flight");
    let _ = grpc_stop_tx.send(());
    let _ = stop_tx.send(true);
    // Open Subscribe streams never end on their own: give calls in flight a bounded time.
    if tokio::time::timeout(Duration::from_secs(5), grpc_task)
        .await
        .is_err()
    {
        tracing::warn!("grpc calls still open after 5 s; closing them");
    }
    if let Some(task) = outbox_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = http_task.await;
    for task in projection_tasks {
        let _ = task.await;
    }
    if let Some(task) = reactor_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let _ = anchor_task.await;
    log.close().await?;
    // The last head, anchored once nothing can move it any more.
    if let Err(e) = anchor_keeper.tick(&audit_source).await {
        tracing::warn!(error = %format!("{e:#}"), "anchoring the final head failed");
    }
    tracing::info!(head = log.head().position, "event log flushed and closed");
    Ok(())
}

/// The connections a gRPC server accepts, with Nagle's algorithm off: small replies must not wait
/// for the peer's delayed ACK (a 40 ms stall on every unary call otherwise).
pub(crate) fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|s| {
        let s = s?;
        s.set_nodelay(true)?;
        Ok(s)
    })
}

/// A gRPC server builder, over TLS when a certificate is given.
pub(crate) fn grpc_builder(
    tls: &crate::tls::TlsConfig,
) -> anyhow::Result<tonic::transport::Server> {
    let builder = tonic::transport::Server::builder();
    Ok(match tls.grpc()? {
        Some(t) => builder
            .tls_config(t)
            .context("--tls-cert / --tls-key: not a usable TLS identity")?,
        None => builder,
    })
}

/// gRPC reflection over every journey service and the health service.
pub(crate) fn reflection() -> anyhow::Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    Ok(tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(journey_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?)
}

/// Opens a read model; rebuilds it first when its schema version changed.
pub(crate) async fn open_projection<P: Projection, S: EventSource>(
    db: Db,
    projection: P,
    source: &mut S,
) -> anyhow::Result<Arc<Runner<P>>> {
    let name = projection.name();
    let (runner, stale) = Runner::open(db, projection).await?;
    if stale {
        tracing::info!(projection = name, "schema changed, rebuilding from the log");
        runner
            .rebuild(source, |p: Progress| {
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
