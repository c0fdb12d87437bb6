//! `journey up`: the event log, its gRPC service, the NATS outbox and the status page in one process.
use crate::{
    config::ServerConfig,
    http,
    log_service::LogService,
    outbox::{self, OutboxConfig, OutboxStatus},
};
use anyhow::Context;
use journey_domain::JourneyRules;
use journey_event_log::{EventLog, LogOptions, SledStorage};
use journey_proto::v1::event_log_server::EventLogServer;
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
    let http_task = tokio::spawn(http::serve(
        web,
        log.clone(),
        status.clone(),
        config.nats_url.is_some(),
        stop_rx.clone(),
    ));

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EventLogServer<LogService>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(journey_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let service = EventLogServer::new(LogService::new(
        log.clone(),
        config.max_event_bytes,
        config.max_batch_events,
    ))
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);

    let (grpc_stop_tx, grpc_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let grpc_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(reflection)
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), async {
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
    log.close().await?;
    tracing::info!(head = log.head().position, "event log flushed and closed");
    Ok(())
}
