//! Events as JSON (the proto3 JSON mapping), for people and partners who do not write a gRPC client.
use crate::{prost::Message, v1::Event};
use anyhow::Context;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};
use std::sync::LazyLock;

static EVENT: LazyLock<MessageDescriptor> = LazyLock::new(|| {
    DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
        .expect("embedded descriptor set")
        .get_message_by_name("journey.v1.Event")
        .expect("journey.v1.Event in the descriptor set")
});

/// Parses one event from a JSON value (field names snake_case or camelCase, enums by name).
pub fn event_from_json(value: &serde_json::Value) -> anyhow::Result<Event> {
    let dynamic = DynamicMessage::deserialize(EVENT.clone(), value)?;
    Ok(Event::decode(dynamic.encode_to_vec().as_slice())?)
}

/// Parses a file of events: a JSON array, one JSON object, or NDJSON (one object per line).
pub fn events_from_text(text: &str) -> anyhow::Result<Vec<Event>> {
    let trimmed = text.trim_start();
    let values: Vec<serde_json::Value> = if trimmed.starts_with('[') {
        serde_json::from_str(trimmed).context("not a JSON array of events")?
    } else {
        let mut values = Vec::new();
        for (i, v) in serde_json::Deserializer::from_str(trimmed)
            .into_iter::<serde_json::Value>()
            .enumerate()
        {
            values.push(v.with_context(|| format!("event {}: not valid JSON", i + 1))?);
        }
        values
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| event_from_json(v).with_context(|| format!("event {}", i + 1)))
        .collect()
}

/// An instant as RFC 3339 with milliseconds, UTC (FHIR `instant`, the audit trail's times).
pub fn rfc3339(t: &prost_types::Timestamp) -> String {
    chrono::DateTime::from_timestamp(t.seconds, t.nanos.clamp(0, 999_999_999) as u32)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The event as JSON with proto field names.
pub fn event_to_json(event: &Event) -> serde_json::Value {
    to_json(event, EVENT.clone())
}

/// Any journey message (`full_name`, e.g. `journey.v1.AsOfResponse`) as JSON with proto field
/// names, through the embedded descriptors.
pub fn message_to_json<M: Message>(message: &M, full_name: &str) -> serde_json::Value {
    let descriptor = EVENT
        .parent_pool()
        .get_message_by_name(full_name)
        .unwrap_or_else(|| panic!("{full_name} is not a journey message"));
    to_json(message, descriptor)
}

fn to_json<M: Message>(message: &M, descriptor: MessageDescriptor) -> serde_json::Value {
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .expect("own encoding");
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .expect("json serialisation")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_an_admission() {
        let text = r#"{"event_id":"7f1d2c3e-0000-4000-8000-000000000001","patient_id":"P1",
            "occurred_at":"2026-11-02T08:00:00Z","actor":{"id":"dr-x","role":"ROLE_HOSPITAL_PHYSICIAN"},
            "source":"tour","admitted":{"encounter_id":"E1","facility":{"id":"CHU"},"setting":"SETTING_INPATIENT",
            "admit_type":"ADMIT_TYPE_EMERGENCY"}}"#;
        let events = events_from_text(text).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].patient_id, "P1");
        let json = event_to_json(&events[0]);
        assert_eq!(json["admitted"]["setting"], "SETTING_INPATIENT");
        assert!(events_from_text(r#"{"patient_id": 3}"#).is_err());
        assert!(events_from_text(r#"{"nope": 1}"#).is_err());
    }
}
