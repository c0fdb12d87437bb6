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

/// Parses one event from a JSON value (field names snake_case or camelCase, enums by name). An
/// error names the field it is about (`occurred_at: …`, `admitted.facility.id: …`).
pub fn event_from_json(value: &serde_json::Value) -> anyhow::Result<Event> {
    let mut track = serde_path_to_error::Track::new();
    let tracked = serde_path_to_error::Deserializer::new(value, &mut track);
    match DynamicMessage::deserialize(EVENT.clone(), tracked) {
        Ok(dynamic) => Ok(Event::decode(dynamic.encode_to_vec().as_slice())?),
        Err(e) => {
            let path = track.path().to_string();
            if path.is_empty() || path == "." {
                anyhow::bail!("{e}")
            }
            anyhow::bail!("{path}: {e}")
        }
    }
}

/// Parses a file of events: a JSON array, one JSON object, or NDJSON (one object per line). A
/// leading byte-order mark is skipped; an error names the event, its line and the field.
pub fn events_from_text(text: &str) -> anyhow::Result<Vec<Event>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let line_at = |offset: usize| text[..offset].matches('\n').count() + 1;
    let start = text.len() - text.trim_start().len();
    let values: Vec<(serde_json::Value, usize)> = if text[start..].starts_with('[') {
        let values: Vec<UniqueKeys> = serde_json::from_str(&text[start..])
            .map_err(|e| unreadable(e, "not a JSON array of events".into()))?;
        values.into_iter().map(|v| (v.0, 0)).collect()
    } else {
        let mut values = Vec::new();
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<UniqueKeys>();
        let mut from = 0;
        while let Some(v) = stream.next() {
            let begins = from + (text[from..].len() - text[from..].trim_start().len());
            let line = line_at(begins.min(text.len()));
            let value =
                v.map_err(|e| unreadable(e, format!("event {} (line {line})", values.len() + 1)))?;
            values.push((value.0, line));
            from = stream.byte_offset();
        }
        values
    };
    values
        .iter()
        .enumerate()
        .map(|(i, (v, line))| {
            event_from_json(v).with_context(|| match line {
                0 => format!("event {}", i + 1),
                line => format!("event {} (line {line})", i + 1),
            })
        })
        .collect()
}

/// Text that did not read as events: `what` (the event and its line, or the array), then
/// "not valid JSON" for a syntax error, or what is wrong with valid JSON (a key twice).
fn unreadable(e: serde_json::Error, what: String) -> anyhow::Error {
    if e.is_data() {
        anyhow::Error::new(e).context(what)
    } else {
        anyhow::Error::new(e).context(format!("{what}: not valid JSON"))
    }
}

/// A JSON value in which no object has the same key twice. `serde_json::Value` keeps the last of
/// two, so `{"birth_date": "…", "birth_date": "…"}` would pass silently with one of them; an
/// event must say each thing once.
struct UniqueKeys(serde_json::Value);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor).map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(UniqueKeys(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(out.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let UniqueKeys(value) = map.next_value()?;
            if out.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "the key {key:?} appears twice in one object; give it once"
                )));
            }
        }
        Ok(out.into())
    }
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

    #[test]
    fn errors_name_the_event_its_line_and_the_field() {
        let good = r#"{"event_id":"7f1d2c3e-0000-4000-8000-000000000001","patient_id":"P1"}"#;
        let bad_float = r#"{"patient_id":"P1","observation_recorded":{"value":"abc"}}"#;
        let text = format!("{good}\n\n{bad_float}\n");
        let e = format!("{:#}", events_from_text(&text).unwrap_err());
        assert!(
            e.starts_with("event 2 (line 3): observation_recorded.value: "),
            "{e}"
        );
        let bad_time = r#"{"patient_id":"P1","occurred_at":"yesterday"}"#;
        let e = format!("{:#}", events_from_text(bad_time).unwrap_err());
        assert!(e.starts_with("event 1 (line 1): occurred_at: "), "{e}");
        let broken = format!("{good}\n{{\"patient_id\": \n");
        let e = format!("{:#}", events_from_text(&broken).unwrap_err());
        assert!(e.starts_with("event 2 (line 2): not valid JSON"), "{e}");
    }

    #[test]
    fn a_key_given_twice_is_refused_and_named() {
        let good = r#"{"event_id":"7f1d2c3e-0000-4000-8000-000000000001","patient_id":"P1"}"#;
        let twice = r#"{"patient_id":"P1","patient_registered":{"birth_date":"1950-01-01","birth_date":"1960-01-01"}}"#;
        let e = format!(
            "{:#}",
            events_from_text(&format!("{good}\n{twice}")).unwrap_err()
        );
        assert!(
            e.starts_with(
                "event 2 (line 2): the key \"birth_date\" appears twice in one object; give it once"
            ),
            "{e}"
        );
        let e = format!(
            "{:#}",
            events_from_text(r#"[{"patient_id":"P1","patient_id":"P2"}]"#).unwrap_err()
        );
        assert!(e.contains("the key \"patient_id\" appears twice"), "{e}");
        // The same key in two objects is no duplicate.
        let fine = r#"{"patient_id":"P1","admitted":{"facility":{"id":"F"},"encounter_id":"E"},"actor":{"id":"a"}}"#;
        assert_eq!(events_from_text(fine).unwrap()[0].patient_id, "P1");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let text = "\u{feff}{\"patient_id\":\"P1\"}";
        assert_eq!(events_from_text(text).unwrap()[0].patient_id, "P1");
    }
}
