//! What every resource shares: its type and id, `meta` from the events it was built from, and
//! references.
use journey_proto::{json::rfc3339, prost_types::Timestamp, v1::Event};
use serde_json::{json, Map, Value};

/// The base of the French core profiles' canonical URLs.
pub const FR_CORE: &str = "https://hl7.fr/ig/fhir/core/StructureDefinition/";

/// One FHIR resource: its type, its id and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: &'static str,
    pub id: String,
    pub body: Value,
}

impl Resource {
    /// `Type/id`, as a reference names it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.id)
    }
}

/// A FHIR id for a journey id: the id itself when FHIR allows it (`[A-Za-z0-9\-\.]{1,64}`),
/// else UUID v5 of `kind` and the id, so that the same journey id always gives the same
/// resource id.
pub fn fhir_id(kind: &str, raw: &str) -> String {
    let valid = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if valid {
        return raw.to_string();
    }
    // A fixed namespace of our own: the ids must not change between releases.
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a0e_5c1e_8f0b_4d2a_9c3e_2f1a_7b6d_4e10);
    uuid::Uuid::new_v5(&NAMESPACE, format!("{kind}/{raw}").as_bytes()).to_string()
}

/// The reference to the patient `patient_id`.
pub fn patient_ref(patient_id: &str) -> Value {
    json!({ "reference": format!("Patient/{}", fhir_id("Patient", patient_id)) })
}

/// The reference to the stay `encounter_id`.
pub fn encounter_ref(encounter_id: &str) -> Value {
    json!({ "reference": format!("Encounter/{}", fhir_id("Encounter", encounter_id)) })
}

/// An instant or dateTime (FHIR's format: RFC 3339, UTC).
pub fn instant(t: Option<&Timestamp>) -> Option<String> {
    t.map(rfc3339).filter(|s| !s.is_empty())
}

/// `meta` of a resource whose last event is `last`: version, time and source from the log, and
/// the profile it claims (if any).
pub fn meta(last: &Event, profile: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("versionId".into(), json!(last.stream_version.to_string()));
    if let Some(t) = instant(last.recorded_at.as_ref()) {
        m.insert("lastUpdated".into(), json!(t));
    }
    m.insert(
        "source".into(),
        json!(format!("urn:journey:event:{}", last.event_id)),
    );
    if let Some(p) = profile {
        m.insert("profile".into(), json!([format!("{FR_CORE}{p}")]));
    }
    Value::Object(m)
}

/// Sets `key` on an object when `value` is present.
pub fn put(body: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(o), Some(v)) = (body.as_object_mut(), value) {
        o.insert(key.to_string(), v);
    }
}

/// A non-empty string as a JSON value.
pub fn text(s: &str) -> Option<Value> {
    (!s.trim().is_empty()).then(|| json!(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_id_is_kept_and_another_becomes_a_stable_uuid() {
        assert_eq!(fhir_id("Encounter", "EC-1.2"), "EC-1.2");
        let odd = fhir_id("Encounter", "chu a/enc 7");
        assert_eq!(odd, fhir_id("Encounter", "chu a/enc 7"));
        assert_ne!(odd, fhir_id("Patient", "chu a/enc 7"));
        assert_eq!(odd.len(), 36);
        assert_ne!(fhir_id("Flag", &"x".repeat(65)), "x".repeat(65));
    }
}
