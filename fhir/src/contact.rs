//! A home visit or a contact after discharge (`HomeVisitRecorded`, `ContactMade`) as an
//! Encounter: home health for a visit, virtual for a phone call or a teleconsultation, with the
//! professional, and the visit's length.
use crate::{
    codes::{self, UCUM},
    patient::professional,
    resource::{fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{Event, Professional};
use serde_json::{json, Value};

/// What the two events share.
pub struct Contact<'a> {
    pub professional: Option<&'a Professional>,
    pub channel: i32,
    /// A home visit (else a contact).
    pub visit: bool,
    pub minutes: u32,
    pub reason: &'a str,
}

pub fn build(patient_id: &str, e: &Event, c: Contact) -> Resource {
    let id = fhir_id("Encounter", &e.event_id);
    let mut period = json!({});
    put(
        &mut period,
        "start",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    let mut body = json!({
        "resourceType": "Encounter",
        "id": id,
        "meta": meta(e, Some("fr-core-encounter")),
        "identifier": [{
            "type": { "coding": [{ "system": codes::V2_0203, "code": "VN", "display": "Visit number" }] },
            "system": "urn:journey:contact",
            "value": e.event_id,
        }],
        "status": "finished",
        "class": codes::contact_class(c.channel, c.visit),
        "type": [{ "text": if c.visit { "home visit" } else { "contact" } }],
        "subject": patient_ref(patient_id),
        "period": period,
    });
    if let Some(p) = c
        .professional
        .filter(|p| !p.id.is_empty() || !p.name.is_empty())
    {
        let mut participant = json!({ "individual": professional(p) });
        if let Some(role) = codes::referent_role(p.role) {
            participant["type"] = json!([{ "text": role }]);
        }
        put(&mut body, "participant", Some(json!([participant])));
    }
    if c.minutes > 0 {
        put(
            &mut body,
            "length",
            Some(json!({ "value": c.minutes, "unit": "min", "system": UCUM, "code": "min" })),
        );
    }
    put(
        &mut body,
        "reasonCode",
        text(c.reason).map(|r| json!([{ "text": r }])),
    );
    Resource {
        kind: "Encounter",
        id,
        body,
    }
}
