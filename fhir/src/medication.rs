//! MedicationRequest (FR Core MedicationRequest): a prescription, its medication ATC-coded (or
//! RxNorm, as sent), its dose and duration.
use crate::{
    codes::{self, UCUM},
    encounter::reference,
    patient::professional,
    resource::Body,
    resource::{fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{Event, PrescriptionIssued};
use serde_json::{json, Value};

pub fn build(patient_id: &str, e: &Event, p: &PrescriptionIssued) -> Resource {
    let raw = match p.prescription_id.is_empty() {
        true => &e.event_id,
        false => &p.prescription_id,
    };
    let id = fhir_id("MedicationRequest", raw);
    let mut body = json!({
        "resourceType": "MedicationRequest",
        "id": id,
        "meta": meta(e, Some("fr-core-medication-request")),
        "identifier": [{ "system": "urn:journey:prescription", "value": raw }],
        // As issued: the log says when a prescription was made, not when it ended.
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": codes::concept(p.medication.as_ref())
            .unwrap_or_else(|| json!({ "text": "unknown medication" })),
        "subject": patient_ref(patient_id),
    });
    put(&mut body, "encounter", reference(&p.encounter_id));
    put(
        &mut body,
        "authoredOn",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    put(
        &mut body,
        "requester",
        p.prescriber.as_ref().map(professional),
    );
    put(
        &mut body,
        "dosageInstruction",
        text(&p.dose).map(|d| json!([{ "text": d }])),
    );
    if p.duration_days > 0 {
        put(
            &mut body,
            "dispenseRequest",
            Some(json!({ "expectedSupplyDuration": {
                "value": p.duration_days, "unit": "days", "system": UCUM, "code": "d",
            } })),
        );
    }
    Resource {
        kind: "MedicationRequest",
        id,
        body: Body::Tree(body),
    }
}
