//! The HTTP side of `journey up`: a status page (`/`) and a JSON status (`/status`) for people and probes.
use crate::outbox::{hex, OutboxStatus};
use axum::{extract::State, response::Html, routing::get, Json, Router};
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
    mut stop: watch::Receiver<bool>,
) {
    let state = AppState { log, outbox, nats };
    let app = Router::new()
        .route(
            "/status",
            get(|State(s): State<AppState>| async move { Json(status_json(&s)) }),
        )
        .route(
            "/",
            get(|State(s): State<AppState>| async move {
                let st = status_json(&s);
                Html(format!(
                    "<!doctype html><title>journey</title><h1>Patient journey backbone</h1>\
                     <p>Events in the log: <b>{}</b></p><p>Chain head: <code>{}</code></p>\
                     <p>Published to NATS up to: {}</p>",
                    st["head_position"],
                    st["head_hash"].as_str().unwrap_or(""),
                    st["nats_published"]
                ))
            }),
        )
        .with_state(state);
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await;
}
