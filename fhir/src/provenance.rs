//! Provenance: one per event of the log (docs/fhir.md), as `$everything`, the Provenance search,
//! the Bulk Data export and `journey audit export` give it: the resource the event made or
//! changed and the stored event (`urn:uuid:<event id>`, its position) as targets; the log's
//! recorded time and the clinical time; the author (actor, role, its organisation) and the
//! assembler (the source system); `CREATE`, or `NULLIFY` with the cancelled event as a `removal`
//! entity; the event's chain hash (the log's `hash`, hex) as an extension. Written straight from
//! the event ([`write`]: the parts every Provenance shares copied as serialised once): half the
//! resources of an export are these.
use crate::resource::{fhir_id, fhir_id_of, instant, valid_id, Coding, Identifier, Meta, Prefixed};
use journey_proto::{
    hex::hex,
    json::rfc3339,
    v1::{event::Payload, Event, Role},
    EventType,
};
use serde::{Serialize, Serializer};
use std::{borrow::Cow, fmt, io::Write};

/// The extension holding the event's chain hash.
pub const CHAIN_HASH: &str = "urn:journey:extension:chain-hash";
const RFC3986: &str = "urn:ietf:rfc:3986";
const ROLE_SYSTEM: &str = "urn:journey:role";
const ACTOR_SYSTEM: &str = "urn:journey:actor";
const ORGANISATION_SYSTEM: &str = "urn:journey:organisation";
const SOURCE_SYSTEM: &str = "urn:journey:source-system";
const PARTICIPANT: &str = "http://terminology.hl7.org/CodeSystem/provenance-participant-type";
const DATA_OPERATION: &str = "http://terminology.hl7.org/CodeSystem/v3-DataOperation";

/// The name of a journey role (`HOSPITAL_PHYSICIAN`), as the audit trail writes it.
pub fn role_name(role: i32) -> &'static str {
    Role::try_from(role).map_or("ROLE_UNSPECIFIED", |r| r.as_str_name())
}

/// The Provenance of `e`, ready to write (`serde_json::to_writer`).
pub fn of(e: &Event) -> Provenance<'_> {
    let actor = e.actor.as_ref();
    let actor_id = actor.map_or("", |a| a.id.as_str());
    let actor_id = if actor_id.is_empty() {
        "unknown"
    } else {
        actor_id
    };
    let display = actor
        .map(|a| a.display_name.as_str())
        .filter(|d| !d.is_empty())
        .unwrap_or(actor_id);
    let role = role_name(actor.map_or(0, |a| a.role));
    let organisation = actor
        .map(|a| a.organisation.as_str())
        .filter(|o| !o.is_empty());
    let source = if e.source.is_empty() {
        "unknown"
    } else {
        &e.source
    };
    let cancelled = cancelled_id(e);
    let event = EventRef { e };
    let recorded = rfc3339(&e.recorded_at.or(e.occurred_at).unwrap_or_default());
    // `meta.lastUpdated` is the recorded time too (when the log gave one), written once.
    let last_updated = match e.recorded_at {
        Some(_) => Some(recorded.clone()).filter(|t| !t.is_empty()),
        None => None,
    };
    Provenance {
        resource_type: "Provenance",
        id: fhir_id_of("Provenance", &e.event_id),
        meta: Meta::at(e, None, last_updated),
        extension: (!e.hash.is_empty()).then(|| {
            [Extension {
                url: CHAIN_HASH,
                value_string: Hex(&e.hash),
            }]
        }),
        target: Targets {
            resource: target_of(e),
            event,
        },
        occurred: e.occurred_at.as_ref().map(rfc3339),
        recorded,
        activity: match cancelled {
            Some(_) => activity("NULLIFY", "nullify"),
            None => activity("CREATE", "create"),
        },
        agent: (
            Author {
                kind: participant("author", "Author"),
                role: [RoleConcept {
                    coding: [Coding {
                        system: ROLE_SYSTEM,
                        code: role,
                        display: "",
                    }],
                    text: role,
                }],
                who: Who {
                    identifier: Identifier {
                        system: ACTOR_SYSTEM,
                        value: actor_id,
                    },
                    display,
                },
                on_behalf_of: organisation.map(|o| Who {
                    identifier: Identifier {
                        system: ORGANISATION_SYSTEM,
                        value: o,
                    },
                    display: o,
                }),
            },
            Assembler {
                kind: participant("assembler", "Assembler"),
                who: Who {
                    identifier: Identifier {
                        system: SOURCE_SYSTEM,
                        value: source,
                    },
                    display: source,
                },
            },
        ),
        entity: Entities {
            source: Entity {
                role: "source",
                what: event,
            },
            removal: cancelled.map(|id| Entity {
                role: "removal",
                what: Cancelled {
                    identifier: Uuid(id),
                    display: "cancelled event",
                },
            }),
        },
    }
}

/// The activity: `CREATE`, or `NULLIFY` for a cancellation.
fn activity(code: &'static str, display: &'static str) -> Activity {
    Activity {
        coding: [Coding {
            system: DATA_OPERATION,
            code,
            display,
        }],
    }
}

/// An agent's type: the author or the assembler.
fn participant(code: &'static str, display: &'static str) -> Concept {
    Concept {
        coding: [Coding {
            system: PARTICIPANT,
            code,
            display,
        }],
    }
}

/// What every Provenance writes alike, serialised once: its activities and its agents' types.
struct Constant {
    create: Vec<u8>,
    nullify: Vec<u8>,
    author: Vec<u8>,
    assembler: Vec<u8>,
}

fn constant() -> &'static Constant {
    static CONSTANT: std::sync::OnceLock<Constant> = std::sync::OnceLock::new();
    CONSTANT.get_or_init(|| {
        fn bytes(v: &impl Serialize) -> Vec<u8> {
            serde_json::to_vec(v).expect("a constant serialises")
        }
        Constant {
            create: bytes(&activity("CREATE", "create")),
            nullify: bytes(&activity("NULLIFY", "nullify")),
            author: bytes(&participant("author", "Author")),
            assembler: bytes(&participant("assembler", "Assembler")),
        }
    })
}

/// The Provenance of `e` appended to `out`: the same bytes as `serde_json::to_writer(out,
/// &of(e))`, its constant parts (the type, the activity, the agents' types) copied as serialised
/// once rather than written field by field.
pub fn write(e: &Event, out: &mut impl Write) -> std::io::Result<()> {
    fn put(out: &mut impl Write, v: &(impl Serialize + ?Sized)) -> std::io::Result<()> {
        serde_json::to_writer(out, v).map_err(std::io::Error::other)
    }
    let p = of(e);
    let c = constant();
    out.write_all(br#"{"resourceType":"Provenance","id":"#)?;
    put(out, &*p.id)?;
    out.write_all(br#","meta":"#)?;
    put(out, &p.meta)?;
    if let Some(extension) = &p.extension {
        out.write_all(br#","extension":"#)?;
        put(out, extension)?;
    }
    out.write_all(br#","target":"#)?;
    put(out, &p.target)?;
    if let Some(occurred) = &p.occurred {
        out.write_all(br#","occurredDateTime":"#)?;
        put(out, occurred)?;
    }
    out.write_all(br#","recorded":"#)?;
    put(out, &p.recorded)?;
    out.write_all(br#","activity":"#)?;
    out.write_all(match cancelled_id(e) {
        Some(_) => &c.nullify,
        None => &c.create,
    })?;
    let (author, assembler) = &p.agent;
    out.write_all(br#","agent":[{"type":"#)?;
    out.write_all(&c.author)?;
    out.write_all(br#","role":"#)?;
    put(out, &author.role)?;
    out.write_all(br#","who":"#)?;
    put(out, &author.who)?;
    if let Some(organisation) = &author.on_behalf_of {
        out.write_all(br#","onBehalfOf":"#)?;
        put(out, organisation)?;
    }
    out.write_all(br#"},{"type":"#)?;
    out.write_all(&c.assembler)?;
    out.write_all(br#","who":"#)?;
    put(out, &assembler.who)?;
    out.write_all(br#"}],"entity":"#)?;
    put(out, &p.entity)?;
    out.write_all(b"}")
}

/// Its `meta.lastUpdated`: the event's recorded time (what `_since` compares).
pub fn last_updated(e: &Event) -> Option<String> {
    instant(e.recorded_at.as_ref())
}

/// A Provenance, as serde writes it.
#[derive(Serialize)]
pub struct Provenance<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    pub id: Cow<'a, str>,
    meta: Meta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extension: Option<[Extension<'a>; 1]>,
    target: Targets<'a>,
    #[serde(rename = "occurredDateTime", skip_serializing_if = "Option::is_none")]
    occurred: Option<String>,
    recorded: String,
    activity: Activity,
    agent: (Author<'a>, Assembler<'a>),
    entity: Entities<'a>,
}

#[derive(Serialize)]
struct Extension<'a> {
    url: &'static str,
    #[serde(rename = "valueString")]
    value_string: Hex<'a>,
}

/// Bytes as lowercase hex (`journey_proto::hex::hex`), a chain hash written without allocating.
struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 128];
        if self.0.len() * 2 > buf.len() {
            return s.serialize_str(&hex(self.0));
        }
        for (pair, b) in buf.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        let text = std::str::from_utf8(&buf[..self.0.len() * 2]).expect("hex digits are ASCII");
        s.serialize_str(text)
    }
}

/// The resource the event made or changed (when it has one), then the stored event.
struct Targets<'a> {
    resource: Option<(&'static str, &'a str)>,
    event: EventRef<'a>,
}

impl Serialize for Targets<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Ref<'a> {
            reference: Prefixed<'a>,
        }
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        if let Some((kind, id)) = self.resource {
            seq.serialize_element(&Ref {
                reference: Prefixed(kind, id),
            })?;
        }
        seq.serialize_element(&self.event)?;
        seq.end()
    }
}

/// The stored event: `urn:uuid:<event id>`, "<type> at position <n>".
#[derive(Clone, Copy)]
struct EventRef<'a> {
    e: &'a Event,
}

impl Serialize for EventRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Written<'a> {
            identifier: Uuid<'a>,
            display: At<'a>,
        }
        Written {
            identifier: Uuid(&self.e.event_id),
            display: At(self.e),
        }
        .serialize(s)
    }
}

/// `{system: urn:ietf:rfc:3986, value: urn:uuid:<id>}`.
struct Uuid<'a>(&'a str);

impl Serialize for Uuid<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Written<'a> {
            system: &'static str,
            value: Prefixed<'a>,
        }
        Written {
            system: RFC3986,
            value: Prefixed("urn:uuid:", self.0),
        }
        .serialize(s)
    }
}

/// "Admitted at position 12".
struct At<'a>(&'a Event);

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self
            .0
            .payload
            .as_ref()
            .map_or("event", |p| EventType::of(p).name());
        write!(f, "{kind} at position {}", self.0.position)
    }
}

impl Serialize for At<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Serialize)]
struct Activity {
    coding: [Coding<'static>; 1],
}

#[derive(Serialize)]
struct Concept {
    coding: [Coding<'static>; 1],
}

#[derive(Serialize)]
struct RoleConcept {
    coding: [Coding<'static>; 1],
    text: &'static str,
}

#[derive(Serialize)]
struct Who<'a> {
    identifier: Identifier<'a>,
    display: &'a str,
}

#[derive(Serialize)]
struct Author<'a> {
    #[serde(rename = "type")]
    kind: Concept,
    role: [RoleConcept; 1],
    who: Who<'a>,
    #[serde(rename = "onBehalfOf", skip_serializing_if = "Option::is_none")]
    on_behalf_of: Option<Who<'a>>,
}

#[derive(Serialize)]
struct Assembler<'a> {
    #[serde(rename = "type")]
    kind: Concept,
    who: Who<'a>,
}

#[derive(Serialize)]
struct Entity<W> {
    role: &'static str,
    what: W,
}

/// The stored event as the source, and the event a cancellation removes.
struct Entities<'a> {
    source: Entity<EventRef<'a>>,
    removal: Option<Entity<Cancelled<'a>>>,
}

impl Serialize for Entities<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        seq.serialize_element(&self.source)?;
        if let Some(r) = &self.removal {
            seq.serialize_element(r)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Cancelled<'a> {
    identifier: Uuid<'a>,
    display: &'static str,
}

/// The resource an event is about, when there is one with a FHIR id: `("Encounter/", id)`.
fn target_of(e: &Event) -> Option<(&'static str, &str)> {
    let (kind, id) = match e.payload.as_ref()? {
        Payload::PatientRegistered(_) | Payload::IdentityUpdated(_) => {
            ("Patient/", e.patient_id.as_str())
        }
        Payload::Admitted(a) => ("Encounter/", a.encounter_id.as_str()),
        Payload::Transferred(t) => ("Encounter/", t.encounter_id.as_str()),
        Payload::Discharged(d) => ("Encounter/", d.encounter_id.as_str()),
        Payload::PrescriptionIssued(p) => ("MedicationRequest/", p.prescription_id.as_str()),
        Payload::CarePlanEstablished(p) => ("CarePlan/", p.care_plan_id.as_str()),
        Payload::AppointmentScheduled(a) => ("Appointment/", a.appointment_id.as_str()),
        Payload::AppointmentCompleted(a) => ("Appointment/", a.appointment_id.as_str()),
        Payload::AppointmentMissed(a) => ("Appointment/", a.appointment_id.as_str()),
        Payload::AlertRaised(a) => ("Flag/", a.alert_id.as_str()),
        Payload::AlertAcknowledged(a) => ("Flag/", a.alert_id.as_str()),
        Payload::AlertResolved(a) => ("Flag/", a.alert_id.as_str()),
        Payload::ObservationRecorded(_) => ("Observation/", e.event_id.as_str()),
        Payload::ConditionRecorded(_) => ("Condition/", e.event_id.as_str()),
        Payload::ConsentGiven(_) | Payload::ConsentRevoked(_) => ("Consent/", e.event_id.as_str()),
        _ => return None,
    };
    valid_id(id).then_some((kind, id))
}

/// The event a cancellation undoes.
fn cancelled_id(e: &Event) -> Option<&str> {
    match e.payload.as_ref()? {
        Payload::AdmissionCancelled(c) => Some(&c.cancelled_event_id),
        Payload::TransferCancelled(c) => Some(&c.cancelled_event_id),
        Payload::DischargeCancelled(c) => Some(&c.cancelled_event_id),
        _ => None,
    }
}

/// The type name.
pub const KIND: &str = "Provenance";

/// The Provenance id of `e`.
pub fn id(e: &Event) -> String {
    fhir_id(KIND, &e.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::{
        prost_types::Timestamp,
        v1::{Actor, AdmissionCancelled, Admitted},
    };
    use serde_json::Value;

    fn event(payload: Payload) -> Event {
        Event {
            event_id: "7f1d2c3e-0000-4000-8000-000000000001".into(),
            patient_id: "P1".into(),
            position: 7,
            stream_version: 2,
            occurred_at: Some(Timestamp {
                seconds: 1_780_000_000,
                nanos: 0,
            }),
            recorded_at: Some(Timestamp {
                seconds: 1_780_000_100,
                nanos: 500_000_000,
            }),
            actor: Some(Actor {
                id: "dr-x".into(),
                role: Role::HospitalPhysician as i32,
                organisation: "CHU".into(),
                ..Default::default()
            }),
            source: "adt".into(),
            hash: vec![0xab; 32],
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn written(e: &Event) -> Value {
        serde_json::to_value(of(e)).unwrap()
    }

    #[test]
    fn an_event_is_a_provenance_with_its_author_source_and_chain_hash() {
        let e = event(Payload::Admitted(Admitted {
            encounter_id: "E1".into(),
            ..Default::default()
        }));
        let p = written(&e);
        assert_eq!(p["resourceType"], "Provenance");
        assert_eq!(p["id"], "7f1d2c3e-0000-4000-8000-000000000001");
        assert_eq!(p["meta"]["versionId"], "2");
        assert_eq!(p["meta"]["lastUpdated"], "2026-05-28T20:28:20.500Z");
        assert_eq!(p["recorded"], "2026-05-28T20:28:20.500Z");
        assert_eq!(p["occurredDateTime"], "2026-05-28T20:26:40.000Z");
        assert_eq!(p["extension"][0]["url"], CHAIN_HASH);
        assert_eq!(p["extension"][0]["valueString"], "ab".repeat(32));
        assert_eq!(p["target"][0]["reference"], "Encounter/E1");
        assert_eq!(
            p["target"][1]["identifier"]["value"],
            "urn:uuid:7f1d2c3e-0000-4000-8000-000000000001"
        );
        assert_eq!(p["target"][1]["display"], "Admitted at position 7");
        assert_eq!(p["activity"]["coding"][0]["code"], "CREATE");
        let author = &p["agent"][0];
        assert_eq!(author["type"]["coding"][0]["code"], "author");
        assert_eq!(author["role"][0]["text"], "ROLE_HOSPITAL_PHYSICIAN");
        assert_eq!(author["who"]["identifier"]["value"], "dr-x");
        assert_eq!(author["who"]["display"], "dr-x");
        assert_eq!(author["onBehalfOf"]["display"], "CHU");
        assert_eq!(p["agent"][1]["who"]["display"], "adt");
        assert_eq!(p["entity"][0]["role"], "source");
        assert_eq!(p["entity"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn the_chain_hash_is_its_hex_whatever_its_length_and_a_kept_id_is_the_event_id() {
        for len in [1, 20, 32, 64, 65, 100] {
            let mut e = event(Payload::Admitted(Admitted::default()));
            e.hash = (0..len).map(|n| (n * 37 % 256) as u8).collect();
            let p = written(&e);
            assert_eq!(
                p["extension"][0]["valueString"],
                hex(&e.hash),
                "{len} bytes"
            );
        }
        let mut e = event(Payload::Admitted(Admitted::default()));
        e.event_id = "not a FHIR id".into();
        assert_eq!(written(&e)["id"], id(&e));
        assert_ne!(id(&e), e.event_id);
    }

    #[test]
    fn a_provenance_is_written_as_serde_writes_it() {
        let cancellation = AdmissionCancelled {
            cancelled_event_id: "e-9".into(),
            ..Default::default()
        };
        let mut events = vec![
            event(Payload::Admitted(Admitted {
                encounter_id: "E \"1\"".into(),
                ..Default::default()
            })),
            event(Payload::AdmissionCancelled(cancellation)),
        ];
        let mut bare = events[1].clone();
        bare.actor = None;
        bare.source.clear();
        bare.hash.clear();
        bare.recorded_at = None;
        bare.occurred_at = None;
        bare.event_id = "not a FHIR id".into();
        bare.payload = None;
        events.push(bare);
        let mut named = events[0].clone();
        if let Some(a) = named.actor.as_mut() {
            a.display_name = "Dr Lefèvre \\ urgences".into();
            a.organisation.clear();
        }
        events.push(named);
        for e in &events {
            let mut written = Vec::new();
            write(e, &mut written).unwrap();
            let serde = serde_json::to_vec(&of(e)).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }

    #[test]
    fn a_cancellation_nullifies_and_names_the_removed_event() {
        let mut e = event(Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id: "7f1d2c3e-0000-4000-8000-000000000009".into(),
            ..Default::default()
        }));
        e.actor = None;
        e.source.clear();
        e.hash.clear();
        let p = written(&e);
        assert_eq!(p["activity"]["coding"][0]["code"], "NULLIFY");
        assert_eq!(p["entity"][1]["role"], "removal");
        assert_eq!(
            p["entity"][1]["what"]["identifier"]["value"],
            "urn:uuid:7f1d2c3e-0000-4000-8000-000000000009"
        );
        assert_eq!(p["target"].as_array().unwrap().len(), 1, "no resource");
        assert_eq!(p["agent"][0]["who"]["identifier"]["value"], "unknown");
        assert!(p["agent"][0].get("onBehalfOf").is_none());
        assert_eq!(p["agent"][1]["who"]["display"], "unknown");
        assert!(p.get("extension").is_none(), "no hash, no extension");
    }
}
