//! A home visit or a contact after discharge (`HomeVisitRecorded`, `ContactMade`) as an
//! Encounter: home health for a visit, virtual for a phone call or a teleconsultation, with the
//! professional, and the visit's length.
use crate::{
    codes::{self, UCUM},
    encounter,
    patient::professional,
    resource::Body,
    resource::{put, text},
    Resource,
};
use journey_proto::v1::{Event, Professional};
use serde_json::json;

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
    let (id, mut body) = encounter::one_event(
        patient_id,
        e,
        &e.event_id,
        "urn:journey:contact",
        codes::contact_class(c.channel, c.visit),
    );
    body["type"] = json!([{ "text": if c.visit { "home visit" } else { "contact" } }]);
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
        body: Body::Tree(body),
    }
}
