//! A patient's timeline, readable: one entry per event (the dashboard's patient page).
use journey_proto::{json, v1::Event, EventType};

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
