//! Condition (FR Core Condition): a diagnosis recorded (`ConditionRecorded`), with its onset and
//! encounter; and each diagnosis a stay or an emergency visit carries (`Admitted`, `Discharged`,
//! `EmergencyVisit`), as a diagnosis of that encounter, entered in error once the event that
//! carried it is cancelled.
use crate::{
    codes,
    resource::{fhir_id, fhir_id_of, instant, Concept, Meta, Prefixed, Reference},
    Resource,
};
use journey_proto::v1::{Code, ConditionRecorded, Event};
use serde::Serialize;

pub fn build(patient_id: &str, e: &Event, c: &ConditionRecorded) -> Resource {
    let id = fhir_id("Condition", &e.event_id);
    let coded = c.diagnosis.as_ref().filter(|c| !c.code.trim().is_empty());
    let system = coded.map(|c| codes::system_uri(&c.system));
    let code = match (coded, &system) {
        (Some(c), Some(system)) => Concept::of(system, c),
        _ => Concept {
            coding: None,
            text: Some("unknown"),
        },
    };
    let onset = instant(c.onset.as_ref());
    condition(patient_id, id, e, code, &c.encounter_id, None, onset)
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
    if code.code.trim().is_empty() {
        return None;
    }
    let system = codes::system_uri(&code.system);
    let id = diagnosis_id(e, index);
    let concept = Concept::of(&system, code);
    Some(condition(
        patient_id,
        id,
        e,
        concept,
        encounter_id,
        void,
        None,
    ))
}

/// The id of the `index`th diagnosis (from 1) of `e`.
pub fn diagnosis_id(e: &Event, index: usize) -> String {
    fhir_id("Condition", &format!("{}.{index}", e.event_id))
}

const VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";

#[derive(Serialize)]
struct Condition<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: &'a str,
    meta: Meta<'a>,
    #[serde(rename = "clinicalStatus", skip_serializing_if = "Option::is_none")]
    clinical_status: Option<Concept<'a>>,
    #[serde(rename = "verificationStatus")]
    verification_status: Concept<'a>,
    category: [Concept<'a>; 1],
    code: Concept<'a>,
    subject: Reference<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encounter: Option<Reference<'a>>,
    #[serde(rename = "onsetDateTime", skip_serializing_if = "Option::is_none")]
    onset: Option<String>,
    #[serde(rename = "recordedDate", skip_serializing_if = "Option::is_none")]
    recorded: Option<String>,
}

fn condition(
    patient_id: &str,
    id: String,
    e: &Event,
    code: Concept,
    encounter_id: &str,
    void: Option<&Event>,
    onset: Option<String>,
) -> Resource {
    let category = match encounter_id.is_empty() {
        true => ("problem-list-item", "Problem List Item"),
        false => ("encounter-diagnosis", "Encounter Diagnosis"),
    };
    let verification = if void.is_some() {
        "entered-in-error"
    } else {
        "confirmed"
    };
    let patient = fhir_id_of("Patient", patient_id);
    let encounter = (!encounter_id.is_empty()).then(|| fhir_id("Encounter", encounter_id));
    let last = void.unwrap_or(e);
    let body = Condition {
        resource_type: "Condition",
        id: &id,
        meta: Meta::of(last, Some("fr-core-condition")),
        // A condition entered in error has no clinical status (invariant con-5).
        clinical_status: void
            .is_none()
            .then(|| Concept::coded(CLINICAL, "active", "")),
        verification_status: Concept::coded(VERIFICATION, verification, ""),
        category: [Concept::coded(CATEGORY, category.0, category.1)],
        code,
        subject: Reference {
            reference: Prefixed("Patient/", &patient),
        },
        encounter: encounter.as_deref().map(|id| Reference {
            reference: Prefixed("Encounter/", id),
        }),
        onset,
        recorded: instant(e.occurred_at.as_ref()),
    };
    Resource::written("Condition", id.clone(), last, &body)
}
