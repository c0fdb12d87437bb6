//! Condition (FR Core Condition): a diagnosis recorded, with its onset and encounter.
use crate::{
    codes,
    encounter::reference,
    resource::{fhir_id, instant, meta, patient_ref, put},
    Resource,
};
use journey_proto::v1::{ConditionRecorded, Event};
use serde_json::{json, Value};

pub fn build(patient_id: &str, e: &Event, c: &ConditionRecorded) -> Resource {
    let id = fhir_id("Condition", &e.event_id);
    let category = match c.encounter_id.is_empty() {
        true => ("problem-list-item", "Problem List Item"),
        false => ("encounter-diagnosis", "Encounter Diagnosis"),
    };
    let mut body = json!({
        "resourceType": "Condition",
        "id": id,
        "meta": meta(e, Some("fr-core-condition")),
        "clinicalStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active",
        }] },
        "verificationStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed",
        }] },
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": category.0,
            "display": category.1,
        }] }],
        "code": codes::concept(c.diagnosis.as_ref()).unwrap_or_else(|| json!({ "text": "unknown" })),
        "subject": patient_ref(patient_id),
    });
    put(&mut body, "encounter", reference(&c.encounter_id));
    put(
        &mut body,
        "onsetDateTime",
        instant(c.onset.as_ref()).map(Value::from),
    );
    put(
        &mut body,
        "recordedDate",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    Resource {
        kind: "Condition",
        id,
        body,
    }
}
