//! The audit trail as FHIR R4: each event as an `AuditEvent` (who recorded what, when, from which
//! system) and a `Provenance` (the resource it created or changed, with the chain hash), as
//! `journey audit export` and `Audit.Export` stream them.
use journey_proto::{
    hex::hex,
    json::rfc3339,
    v1::{self, Event},
    EventType,
};
use serde_json::{json, Value};

const EVENT_TYPE_SYSTEM: &str = "urn:journey:event-type";
const ROLE_SYSTEM: &str = "urn:journey:role";
const ACTOR_SYSTEM: &str = "urn:journey:actor";
const ORGANISATION_SYSTEM: &str = "urn:journey:organisation";
const SOURCE_SYSTEM: &str = "urn:journey:source-system";
const PATIENT_SYSTEM: &str = "urn:journey:patient";

/// A FHIR `id` is `[A-Za-z0-9\-\.]{1,64}`.
fn fhir_id(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    ok.then_some(s)
}

pub use journey_fhir::provenance::role_name;

fn event_reference(e: &Event) -> Value {
    json!({
        "identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", e.event_id)},
        "display": format!("{} at position {}", e.payload.as_ref().map_or("event", |p| EventType::of(p).name()), e.position),
    })
}

fn patient_reference(patient_id: &str) -> Value {
    let mut r = json!({"identifier": {"system": PATIENT_SYSTEM, "value": patient_id}});
    if let Some(id) = fhir_id(patient_id) {
        r["reference"] = json!(format!("Patient/{id}"));
    }
    r
}

fn actor_reference(e: &Event) -> Value {
    let actor = e.actor.clone().unwrap_or_default();
    let id = if actor.id.is_empty() {
        "unknown"
    } else {
        &actor.id
    };
    let display = if actor.display_name.is_empty() {
        id.to_owned()
    } else {
        actor.display_name.clone()
    };
    json!({"identifier": {"system": ACTOR_SYSTEM, "value": id}, "display": display})
}

fn role_concept(role: i32) -> Value {
    json!({"coding": [{"system": ROLE_SYSTEM, "code": role_name(role)}], "text": role_name(role)})
}

fn recorded_instant(e: &Event) -> String {
    rfc3339(&e.recorded_at.or(e.occurred_at).unwrap_or_default())
}

/// One FHIR R4 `AuditEvent` for a stored event: the recording of that event in the log (action C).
pub fn fhir_audit_event(e: &Event) -> Value {
    let kind = e
        .payload
        .as_ref()
        .map_or("Unknown", |p| EventType::of(p).name());
    let actor = e.actor.clone().unwrap_or_default();
    // An automated source (ADT feed, rule engine) collected the data; anyone else is a person.
    let agent_type = if actor.role == v1::Role::System as i32 {
        ("datacollector", "data collector")
    } else {
        ("humanuser", "human user")
    };
    let mut agents = vec![json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": agent_type.0, "display": agent_type.1}]},
        "role": [role_concept(actor.role)],
        "who": actor_reference(e),
        "requestor": true,
    })];
    if !actor.organisation.is_empty() {
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "dataprocessor", "display": "data processor"}], "text": "organisation of the author"},
            "who": {"identifier": {"system": ORGANISATION_SYSTEM, "value": actor.organisation}, "display": actor.organisation},
            "requestor": false,
        }));
    }
    let source = if e.source.is_empty() {
        "unknown"
    } else {
        &e.source
    };
    let mut details = vec![
        json!({"type": "position", "valueString": e.position.to_string()}),
        json!({"type": "stream_version", "valueString": e.stream_version.to_string()}),
        json!({"type": "hash", "valueString": hex(&e.hash)}),
        json!({"type": "prev_hash", "valueString": hex(&e.prev_hash)}),
    ];
    if let Some(t) = &e.occurred_at {
        details.push(json!({"type": "occurred_at", "valueString": rfc3339(t)}));
    }
    if !e.correlation_id.is_empty() {
        details.push(json!({"type": "correlation_id", "valueString": e.correlation_id}));
    }
    if !e.causation_id.is_empty() {
        details.push(json!({"type": "causation_id", "valueString": e.causation_id}));
    }
    let mut resource = json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110", "display": "Patient Record"},
        "subtype": [{"system": EVENT_TYPE_SYSTEM, "code": kind, "display": kind}],
        "action": "C",
        "recorded": recorded_instant(e),
        "outcome": "0",
        "agent": agents,
        "source": {
            "site": "journey event log",
            "observer": {"identifier": {"system": SOURCE_SYSTEM, "value": source}, "display": source},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}],
        },
        "entity": [
            {
                "what": patient_reference(&e.patient_id),
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"},
            },
            {
                "what": event_reference(e),
                "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
                "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "4", "display": "Domain Resource"},
                "name": kind,
                "detail": details,
            },
        ],
    });
    if let Some(id) = fhir_id(&e.event_id) {
        resource["id"] = json!(id);
    }
    if let Some(t) = &e.occurred_at {
        resource["period"] = json!({"start": rfc3339(t), "end": rfc3339(t)});
    }
    resource
}

/// One FHIR R4 `Provenance` for a stored event: who authored it, when it happened and was
/// recorded, what it is about (target), which stored event is its source, and its chain hash
/// (`journey-fhir`'s, as the FHIR API serves it).
pub fn fhir_provenance(e: &Event) -> Value {
    serde_json::to_value(journey_fhir::provenance::of(e)).expect("a Provenance serialises")
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::{
        prost_types::Timestamp,
        v1::{event::Payload, Actor, AdmissionCancelled, Admitted},
    };

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
                role: v1::Role::HospitalPhysician as i32,
                organisation: "CHU".into(),
                ..Default::default()
            }),
            source: "adt".into(),
            hash: vec![1; 32],
            prev_hash: vec![0; 32],
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn audit_event_has_the_required_fields() {
        let e = event(Payload::Admitted(Admitted {
            encounter_id: "E1".into(),
            ..Default::default()
        }));
        let a = fhir_audit_event(&e);
        assert_eq!(a["resourceType"], "AuditEvent");
        assert_eq!(a["type"]["code"], "110110");
        assert_eq!(a["action"], "C");
        assert_eq!(a["recorded"], "2026-05-28T20:28:20.500Z");
        assert_eq!(a["agent"][0]["requestor"], true);
        assert_eq!(a["agent"][0]["who"]["identifier"]["value"], "dr-x");
        assert_eq!(a["source"]["observer"]["display"], "adt");
        assert_eq!(a["entity"][0]["what"]["reference"], "Patient/P1");
        let p = fhir_provenance(&e);
        assert_eq!(p["resourceType"], "Provenance");
        assert_eq!(p["target"][0]["reference"], "Encounter/E1");
        assert_eq!(p["agent"][0]["who"]["identifier"]["value"], "dr-x");
        assert_eq!(p["agent"][0]["onBehalfOf"]["display"], "CHU");
        assert_eq!(p["recorded"], a["recorded"]);
        assert_eq!(
            p["extension"][0]["valueString"],
            hex(&e.hash),
            "the chain hash"
        );
    }

    #[test]
    fn cancellation_provenance_names_the_removed_event() {
        let e = event(Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id: "7f1d2c3e-0000-4000-8000-000000000009".into(),
            ..Default::default()
        }));
        let p = fhir_provenance(&e);
        assert_eq!(p["activity"]["coding"][0]["code"], "NULLIFY");
        assert_eq!(p["entity"][1]["role"], "removal");
        assert_eq!(p["target"].as_array().unwrap().len(), 1);
    }
}
