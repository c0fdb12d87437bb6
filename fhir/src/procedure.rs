//! Procedure (FR Core Procedure): a medication reconciliation done (SNOMED CT 430193006), by whom,
//! for which stay, and how many discrepancies it found.
use crate::{
    codes,
    encounter::reference,
    patient::professional,
    resource::Body,
    resource::{fhir_id, instant, meta, patient_ref, put},
    Resource,
};
use journey_proto::v1::{Event, MedicationReconciled};
use serde_json::{json, Value};

pub fn build(patient_id: &str, e: &Event, m: &MedicationReconciled) -> Resource {
    let id = fhir_id("Procedure", &e.event_id);
    let found = match m.discrepancies_found {
        0 => "no discrepancy found".to_string(),
        1 => "1 discrepancy found".to_string(),
        n => format!("{n} discrepancies found"),
    };
    let mut body = json!({
        "resourceType": "Procedure",
        "id": id,
        "meta": meta(e, Some("fr-core-procedure")),
        "status": "completed",
        "code": codes::coded("http://snomed.info/sct", "430193006", "Medication reconciliation (procedure)"),
        "subject": patient_ref(patient_id),
        "outcome": { "text": found },
    });
    put(&mut body, "encounter", reference(&m.encounter_id));
    put(
        &mut body,
        "performedDateTime",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    if let Some(p) = m
        .performed_by
        .as_ref()
        .filter(|p| !p.id.is_empty() || !p.name.is_empty())
    {
        put(
            &mut body,
            "performer",
            Some(json!([{ "actor": professional(p) }])),
        );
    }
    Resource {
        kind: "Procedure",
        id,
        body: Body::Tree(body),
    }
}
