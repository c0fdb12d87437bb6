//! MedicationRequest (FR Core MedicationRequest): a prescription, its medication ATC-coded (or
//! RxNorm, as sent), its dose and duration.
use crate::{
    codes::{self, UCUM},
    resource::{
        fhir_id, fhir_id_of, instant, Concept, Identifier, Meta, Prefixed, ProfessionalRef,
        Reference,
    },
    Resource,
};
use journey_proto::v1::{Event, PrescriptionIssued};
use serde::Serialize;

#[derive(Serialize)]
struct MedicationRequest<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: &'a str,
    meta: Meta<'a>,
    identifier: [Identifier<'a>; 1],
    status: &'static str,
    intent: &'static str,
    #[serde(rename = "medicationCodeableConcept")]
    medication: Concept<'a>,
    subject: Reference<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    encounter: Option<Reference<'a>>,
    #[serde(rename = "authoredOn", skip_serializing_if = "Option::is_none")]
    authored_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requester: Option<ProfessionalRef<'a>>,
    #[serde(rename = "dosageInstruction", skip_serializing_if = "Option::is_none")]
    dosage: Option<[Text<'a>; 1]>,
    #[serde(rename = "dispenseRequest", skip_serializing_if = "Option::is_none")]
    dispense: Option<Dispense>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Dispense {
    #[serde(rename = "expectedSupplyDuration")]
    expected_supply_duration: Duration,
}

#[derive(Serialize)]
struct Duration {
    value: u32,
    unit: &'static str,
    system: &'static str,
    code: &'static str,
}

pub fn build(patient_id: &str, e: &Event, p: &PrescriptionIssued) -> Resource {
    let raw = match p.prescription_id.is_empty() {
        true => &e.event_id,
        false => &p.prescription_id,
    };
    let id = fhir_id("MedicationRequest", raw);
    let coded = p.medication.as_ref().filter(|c| !c.code.trim().is_empty());
    let system = coded.map(|c| codes::system_uri(&c.system));
    let medication = match (coded, &system) {
        (Some(c), Some(system)) => Concept::of(system, c),
        _ => Concept {
            coding: None,
            text: Some("unknown medication"),
        },
    };
    let patient = fhir_id_of("Patient", patient_id);
    let encounter = (!p.encounter_id.is_empty()).then(|| fhir_id("Encounter", &p.encounter_id));
    let body = MedicationRequest {
        resource_type: "MedicationRequest",
        id: &id,
        meta: Meta::of(e, Some("fr-core-medication-request")),
        identifier: [Identifier {
            system: "urn:journey:prescription",
            value: raw,
        }],
        // As issued: the log says when a prescription was made, not when it ended.
        status: "active",
        intent: "order",
        medication,
        subject: Reference {
            reference: Prefixed("Patient/", &patient),
        },
        encounter: encounter.as_deref().map(|id| Reference {
            reference: Prefixed("Encounter/", id),
        }),
        authored_on: instant(e.occurred_at.as_ref()),
        requester: p.prescriber.as_ref().map(ProfessionalRef::of),
        dosage: (!p.dose.trim().is_empty()).then_some([Text { text: &p.dose }]),
        dispense: (p.duration_days > 0).then_some(Dispense {
            expected_supply_duration: Duration {
                value: p.duration_days,
                unit: "days",
                system: UCUM,
                code: "d",
            },
        }),
    };
    Resource::written("MedicationRequest", id.clone(), e, &body)
}
