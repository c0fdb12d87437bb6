//! What every resource shares: its type and id, `meta` from the events it was built from, and
//! references; a resource's body as a JSON tree or as JSON text written straight from its events
//! (the serde structs of [`Meta`], [`Reference`] and the like), and writing either to an output.
use journey_proto::{json::rfc3339, prost_types::Timestamp, v1::Event};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::{borrow::Cow, fmt};

/// The base of the French core profiles' canonical URLs.
pub const FR_CORE: &str = "https://hl7.fr/ig/fhir/core/StructureDefinition/";

/// One FHIR resource: its type, its id and its JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub kind: &'static str,
    pub id: String,
    pub body: Body,
}

/// A resource's JSON: a tree (built with `json!`), or text written straight from the events by a
/// serde struct (no tree: the resources a patient has by the thousand), with its
/// `meta.lastUpdated` kept beside for `_since`.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Tree(Value),
    Text {
        json: String,
        last_updated: Option<String>,
    },
}

impl Resource {
    /// `Type/id`, as a reference names it.
    pub fn reference(&self) -> String {
        format!("{}/{}", self.kind, self.id)
    }

    /// A resource written by `body`, a serde struct whose `meta` is `meta(last, …)`.
    pub fn written(kind: &'static str, id: String, last: &Event, body: &impl Serialize) -> Self {
        let json = serde_json::to_string(body).expect("a resource serialises");
        Resource {
            kind,
            id,
            body: Body::Text {
                json,
                last_updated: instant(last.recorded_at.as_ref()),
            },
        }
    }

    /// Its `meta.lastUpdated` (what `_since` compares).
    pub fn last_updated(&self) -> Option<&str> {
        match &self.body {
            Body::Tree(v) => v["meta"]["lastUpdated"].as_str(),
            Body::Text { last_updated, .. } => last_updated.as_deref(),
        }
    }

    /// Its `status`, where it has one (`_typeFilter`); read from a written resource's text
    /// without building its tree.
    pub fn status(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Status {
            status: Option<String>,
        }
        match &self.body {
            Body::Tree(v) => v["status"].as_str().map(str::to_string),
            Body::Text { json, .. } => serde_json::from_str::<Status>(json).ok()?.status,
        }
    }

    /// Its JSON appended to `out`.
    pub fn write(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        match &self.body {
            Body::Tree(v) => serde_json::to_writer(out, v).map_err(std::io::Error::other),
            Body::Text { json, .. } => out.write_all(json.as_bytes()),
        }
    }

    /// Its JSON as a tree (for reading it in tests and checks; the answers write it).
    pub fn json(&self) -> Value {
        match &self.body {
            Body::Tree(v) => v.clone(),
            Body::Text { json, .. } => serde_json::from_str(json).expect("own JSON"),
        }
    }
}

/// A FHIR id for a journey id: the id itself when FHIR allows it (`[A-Za-z0-9\-\.]{1,64}`),
/// else UUID v5 of `kind` and the id, so that the same journey id always gives the same
/// resource id.
pub fn fhir_id(kind: &str, raw: &str) -> String {
    fhir_id_of(kind, raw).into_owned()
}

/// [`fhir_id`], borrowing the journey id when it is kept as it is (no copy for the resources
/// written straight).
pub fn fhir_id_of<'a>(kind: &str, raw: &'a str) -> Cow<'a, str> {
    if valid_id(raw) {
        return Cow::Borrowed(raw);
    }
    // A fixed namespace of our own: the ids must not change between releases.
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a0e_5c1e_8f0b_4d2a_9c3e_2f1a_7b6d_4e10);
    Cow::Owned(uuid::Uuid::new_v5(&NAMESPACE, format!("{kind}/{raw}").as_bytes()).to_string())
}

/// Whether `raw` is a FHIR id as it is: `[A-Za-z0-9\-\.]{1,64}`.
pub fn valid_id(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
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

/// `meta` written straight (as [`meta`] builds it).
#[derive(Serialize)]
pub struct Meta<'a> {
    #[serde(rename = "versionId", serialize_with = "as_text")]
    version_id: u64,
    #[serde(rename = "lastUpdated", skip_serializing_if = "Option::is_none")]
    last_updated: Option<String>,
    source: Prefixed<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<[Prefixed<'a>; 1]>,
}

impl<'a> Meta<'a> {
    /// The `meta` of a resource whose last event is `last`, claiming `profile` (if any).
    pub fn of(last: &'a Event, profile: Option<&'a str>) -> Self {
        Meta::at(last, profile, instant(last.recorded_at.as_ref()))
    }

    /// [`Meta::of`] with `last`'s recorded time already written (`instant(last.recorded_at)`).
    pub fn at(last: &'a Event, profile: Option<&'a str>, last_updated: Option<String>) -> Self {
        Meta {
            version_id: last.stream_version,
            last_updated,
            source: Prefixed("urn:journey:event:", &last.event_id),
            profile: profile.map(|p| [Prefixed(FR_CORE, p)]),
        }
    }
}

fn as_text<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(n)
}

/// A string written as a prefix and the rest (`urn:journey:event:` and an id), without joining
/// them first.
#[derive(Clone, Copy)]
pub struct Prefixed<'a>(pub &'a str, pub &'a str);

impl fmt::Display for Prefixed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        f.write_str(self.1)
    }
}

impl Serialize for Prefixed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A reference by `Type/id` (`Prefixed("Patient/", id)`).
#[derive(Serialize)]
pub struct Reference<'a> {
    pub reference: Prefixed<'a>,
}

/// A Coding.
#[derive(Serialize)]
pub struct Coding<'a> {
    pub system: &'a str,
    pub code: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub display: &'a str,
}

/// A CodeableConcept of one coding, or a text alone.
#[derive(Serialize)]
pub struct Concept<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coding: Option<[Coding<'a>; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
}

impl<'a> Concept<'a> {
    /// A journey code under its system's URI (`codes::concept`).
    pub fn of(system: &'a str, c: &'a journey_proto::v1::Code) -> Self {
        Concept {
            coding: Some([Coding {
                system,
                code: &c.code,
                display: &c.display,
            }]),
            text: None,
        }
    }

    pub fn coded(system: &'a str, code: &'a str, display: &'a str) -> Self {
        Concept {
            coding: Some([Coding {
                system,
                code,
                display,
            }]),
            text: None,
        }
    }
}

/// A professional by identifier (`urn:journey:professional`) and name, each when given (as
/// `patient::professional` builds it).
#[derive(Serialize)]
pub struct ProfessionalRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<&'a str>,
}

impl<'a> ProfessionalRef<'a> {
    pub fn of(p: &'a journey_proto::v1::Professional) -> Self {
        ProfessionalRef {
            identifier: (!p.id.is_empty()).then_some(Identifier {
                system: "urn:journey:professional",
                value: &p.id,
            }),
            display: (!p.name.trim().is_empty()).then_some(p.name.as_str()),
        }
    }
}

/// An identifier (`system`, `value`).
#[derive(Serialize)]
pub struct Identifier<'a> {
    pub system: &'a str,
    pub value: &'a str,
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
    fn meta_written_straight_is_meta_built() {
        let e = Event {
            event_id: "e-1".into(),
            stream_version: 12,
            recorded_at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000_000,
            }),
            ..Default::default()
        };
        for profile in [None, Some("fr-core-patient")] {
            let written = serde_json::to_value(Meta::of(&e, profile)).unwrap();
            assert_eq!(written, meta(&e, profile));
        }
    }

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
