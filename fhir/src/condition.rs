//! Condition (FR Core Condition): a diagnosis recorded (`ConditionRecorded`), with its onset and
//! encounter; and each diagnosis a stay or an emergency visit carries (`Admitted`, `Discharged`,
//! `EmergencyVisit`), as a diagnosis of that encounter, entered in error once the event that
//! carried it is cancelled.
use crate::{
    codes,
    resource::Body,
    resource::{encounter_ref, fhir_id, instant, meta, patient_ref, put},
    Resource,
};
use journey_proto::v1::{Code, ConditionRecorded, Event};
use serde_json::{json, Value};

pub fn build(patient_id: &str, e: &Event, c: &ConditionRecorded) -> Resource {
    let id = fhir_id("Condition", &e.event_id);
    let code = codes::concept(c.diagnosis.as_ref()).unwrap_or_else(|| json!({ "text": "unknown" }));
    let mut body = condition(patient_id, &id, e, code, &c.encounter_id, None);
    put(
        &mut body,
        "onsetDateTime",
        instant(c.onset.as_ref()).map(Value::from),
    );
    Resource {
        kind: "Condition",
        id,
        body: Body::Tree(body),
    }
}

/// The `index`th diagnosis (from 1) `e` carries for `encounter_id`; `void`: the cancellation of
/// `e`, if any. `None` for a code without a code.
pub fn diagnosis(
    patient_id: &str,
    encounter_id: &str,
    e: &Event,
    index: usize,
    code: &Code,
    void: Option<&Event>,
) -> Option<Resource> {
    let code = codes::concept(Some(code))?;
    let id = diagnosis_id(e, index);
    let body = condition(patient_id, &id, e, code, encounter_id, void);
    Some(Resource {
        kind: "Condition",
        id,
        body: Body::Tree(body),
    })
}

/// The id of the `index`th diagnosis (from 1) of `e`.
pub fn diagnosis_id(e: &Event, index: usize) -> String {
    fhir_id("Condition", &format!("{}.{index}", e.event_id))
}

fn condition(
    patient_id: &str,
    id: &str,
    e: &Event,
    code: Value,
    encounter_id: &str,
    void: Option<&Event>,
) -> Value {
    let category = match encounter_id.is_empty() {
        true => ("problem-list-item", "Problem List Item"),
        false => ("encounter-diagnosis", "Encounter Diagnosis"),
    };
    let verification = if void.is_some() {
        "entered-in-error"
    } else {
        "confirmed"
    };
    let mut body = json!({
        "resourceType": "Condition",
        "id": id,
        "meta": meta(void.unwrap_or(e), Some("fr-core-condition")),
        "verificationStatus": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": verification,
        }] },
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": category.0,
            "display": category.1,
        }] }],
        "code": code,
        "subject": patient_ref(patient_id),
    });
    // A condition entered in error has no clinical status (invariant con-5).
    if void.is_none() {
        body["clinicalStatus"] = json!({ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active",
        }] });
    }
    if !encounter_id.is_empty() {
        put(&mut body, "encounter", Some(encounter_ref(encounter_id)));
    }
    put(
        &mut body,
        "recordedDate",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    body
}
