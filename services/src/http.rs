//! The HTTP side of `journey up`: the coordination dashboard (`/`, see `dashboard.rs`) and a JSON
//! status (`/status`) for probes.
use crate::{hex::hex, outbox::OutboxStatus};
use axum::{extract::State, routing::get, Json, Router};
use journey_event_log::EventLog;
use std::sync::{atomic::Ordering, Arc};
use tokio::{net::TcpListener, sync::watch};

#[derive(Clone)]
struct AppState {
    log: Arc<EventLog>,
    outbox: Arc<OutboxStatus>,
    nats: bool,
}

fn status_json(s: &AppState) -> serde_json::Value {
    let head = s.log.head();
    serde_json::json!({
        "head_position": head.position,
        "head_hash": hex(&head.hash),
        "nats_published": if s.nats { Some(s.outbox.published.load(Ordering::Relaxed)) } else { None },
        "failure": s.log.failure(),
    })
}

pub async fn serve(
    listener: TcpListener,
    log: Arc<EventLog>,
    outbox: Arc<OutboxStatus>,
    nats: bool,
    dashboard: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: watch::Receiver<bool>,
) {
    let state = AppState { log, outbox, nats };
    let app = Router::new()
        .route(
            "/status",
            get(|State(s): State<AppState>| async move { Json(status_json(&s)) }),
        )
        .with_state(state)
        .route(
            "/metrics",
            get(|| async { crate::telemetry::render_metrics() }),
        )
        .merge(dashboard);
    crate::tls::serve_http(listener, app, tls, stop).await;
}
