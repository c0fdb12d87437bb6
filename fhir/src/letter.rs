//! The discharge letter: a DocumentReference (LOINC 18842-5 discharge summary; the items the
//! letter holds; the document itself stays with its sender) and the Communication that sent it
//! (channel, recipients, handed to the patient).
use crate::{
    codes::{self, LOINC},
    patient::professional,
    resource::Body,
    resource::{encounter_ref, fhir_id, instant, meta, patient_ref, put},
    Resource,
};
use journey_proto::v1::{DischargeLetterSent, Event};
use serde_json::{json, Value};

/// The letter's DocumentReference, then its Communication.
pub fn build(patient_id: &str, e: &Event, l: &DischargeLetterSent) -> [Resource; 2] {
    let document_id = fhir_id("DocumentReference", &e.event_id);
    let items: Vec<&str> = l
        .items_present
        .iter()
        .filter_map(|&i| codes::letter_item(i))
        .collect();
    let mut document = json!({
        "resourceType": "DocumentReference",
        "id": document_id,
        "meta": meta(e, None),
        "status": "current",
        "type": codes::coded(LOINC, "18842-5", "Discharge summary"),
        "subject": patient_ref(patient_id),
        "content": [{ "attachment": { "title": "discharge letter (the document stays with its sender)" } }],
    });
    put(
        &mut document,
        "date",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    if !items.is_empty() {
        put(
            &mut document,
            "description",
            Some(json!(format!("items present: {}", items.join(", ")))),
        );
    }
    if !l.encounter_id.is_empty() {
        put(
            &mut document,
            "context",
            Some(json!({ "encounter": [encounter_ref(&l.encounter_id)] })),
        );
    }
    let communication_id = fhir_id("Communication", &e.event_id);
    let mut recipients: Vec<Value> = l
        .recipients
        .iter()
        .filter(|p| !p.id.is_empty() || !p.name.is_empty())
        .map(professional)
        .collect();
    if l.handed_to_patient {
        recipients.push(patient_ref(patient_id));
    }
    let mut communication = json!({
        "resourceType": "Communication",
        "id": communication_id,
        "meta": meta(e, None),
        "status": "completed",
        "subject": patient_ref(patient_id),
        "payload": [{ "contentReference": { "reference": format!("DocumentReference/{document_id}") } }],
    });
    put(
        &mut communication,
        "medium",
        codes::letter_channel(l.channel).map(|c| json!([c])),
    );
    put(
        &mut communication,
        "sent",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    if !recipients.is_empty() {
        put(&mut communication, "recipient", Some(json!(recipients)));
    }
    if !l.encounter_id.is_empty() {
        put(
            &mut communication,
            "encounter",
            Some(encounter_ref(&l.encounter_id)),
        );
    }
    [
        Resource {
            kind: "DocumentReference",
            id: document_id,
            body: Body::Tree(document),
        },
        Resource {
            kind: "Communication",
            id: communication_id,
            body: Body::Tree(communication),
        },
    ]
}
