//! A patient's timeline, readable: one entry per event (used by `journey replay` and the dashboard).
use crate::{json, projections_service::LogAccess};
use journey_proto::{
    v1::{event_log_client::EventLogClient, Event, ReadStreamRequest},
    EventType,
};
use tokio_stream::StreamExt;

#[derive(Debug, Clone)]
pub struct Entry {
    pub version: u64,
    pub position: u64,
    pub occurred_at: String,
    pub recorded_at: String,
    pub kind: &'static str,
    pub actor: String,
    pub source: String,
    /// The payload as compact JSON.
    pub detail: String,
}

pub fn entry(event: &Event) -> Entry {
    let value = json::event_to_json(event);
    let kind = event.payload.as_ref().map(EventType::of);
    Entry {
        version: event.stream_version,
        position: event.position,
        occurred_at: value["occurred_at"].as_str().unwrap_or("?").to_string(),
        recorded_at: value["recorded_at"].as_str().unwrap_or("?").to_string(),
        kind: kind.map_or("?", |k| k.name()),
        actor: event.actor.as_ref().map_or(String::new(), |a| a.id.clone()),
        source: event.source.clone(),
        detail: kind
            .and_then(|k| value.get(k.snake()))
            .map(|p| p.to_string())
            .unwrap_or_default(),
    }
}

/// Every durable event of one patient, oldest first.
pub async fn read_patient(log: &LogAccess, patient_id: &str) -> anyhow::Result<Vec<Event>> {
    match log {
        LogAccess::InProcess(log) => {
            let mut out = Vec::new();
            loop {
                let batch = log.read_stream(patient_id, out.len() as u64 + 1, 1000)?;
                if batch.is_empty() {
                    return Ok(out);
                }
                for stored in batch {
                    out.push(stored.decode()?);
                }
            }
        }
        LogAccess::Remote(url) => {
            let mut client = EventLogClient::new(crate::client::channel(url).await?);
            let mut stream = client
                .read_stream(ReadStreamRequest {
                    patient_id: patient_id.to_string(),
                    from_version: 1,
                    batch_size: 0,
                })
                .await?
                .into_inner();
            let mut out = Vec::new();
            while let Some(batch) = stream.next().await {
                out.extend(batch?.events);
            }
            Ok(out)
        }
    }
}
