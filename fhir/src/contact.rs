//! A home visit or a contact after discharge (`HomeVisitRecorded`, `ContactMade`) as an
//! Encounter: home health for a visit, virtual for a phone call or a teleconsultation, with the
//! professional, and the visit's length. Written straight from the event (a patient followed at
//! home has them by the hundred), its keys in the order a JSON tree writes them.
use crate::{
    codes::{self, ACT_CODE, UCUM},
    encounter::VisitNumber,
    resource::{fhir_id, fhir_id_of, instant, Coding, Meta, Prefixed, ProfessionalRef, Reference},
    Resource,
};
use journey_proto::v1::{Event, Professional};
use serde::Serialize;

/// What the two events share.
pub struct Contact<'a> {
    pub professional: Option<&'a Professional>,
    pub channel: i32,
    /// A home visit (else a contact).
    pub visit: bool,
    pub minutes: u32,
    pub reason: &'a str,
}

#[derive(Serialize)]
struct Encounter<'a> {
    class: Coding<'static>,
    id: &'a str,
    identifier: [VisitNumber<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    length: Option<Minutes>,
    meta: Meta<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    participant: Option<[Participant<'a>; 1]>,
    period: Period,
    #[serde(rename = "reasonCode", skip_serializing_if = "Option::is_none")]
    reason_code: Option<[Text<'a>; 1]>,
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    status: &'static str,
    subject: Reference<'a>,
    #[serde(rename = "type")]
    kind: [Text<'a>; 1],
}

/// A visit's length in minutes (UCUM).
#[derive(Serialize)]
struct Minutes {
    code: &'static str,
    system: &'static str,
    unit: &'static str,
    value: u32,
}

#[derive(Serialize)]
struct Participant<'a> {
    individual: ProfessionalRef<'a>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<[Text<'a>; 1]>,
}

#[derive(Serialize)]
struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

pub fn build(patient_id: &str, e: &Event, c: Contact) -> Resource {
    let id = fhir_id("Encounter", &e.event_id);
    let patient = fhir_id_of("Patient", patient_id);
    let (code, display) = codes::contact_class(c.channel, c.visit);
    let body = Encounter {
        class: Coding {
            system: ACT_CODE,
            code,
            display,
        },
        id: &id,
        identifier: [VisitNumber::new("urn:journey:contact", &e.event_id)],
        length: (c.minutes > 0).then_some(Minutes {
            code: "min",
            system: UCUM,
            unit: "min",
            value: c.minutes,
        }),
        meta: Meta::of(e, Some("fr-core-encounter")),
        participant: c
            .professional
            .filter(|p| !p.id.is_empty() || !p.name.is_empty())
            .map(|p| {
                [Participant {
                    individual: ProfessionalRef::of(p),
                    kind: codes::referent_role(p.role).map(|role| [Text { text: role }]),
                }]
            }),
        period: Period {
            start: instant(e.occurred_at.as_ref()),
        },
        reason_code: (!c.reason.trim().is_empty()).then_some([Text { text: c.reason }]),
        resource_type: "Encounter",
        status: "finished",
        subject: Reference {
            reference: Prefixed("Patient/", &patient),
        },
        kind: [Text {
            text: if c.visit { "home visit" } else { "contact" },
        }],
    };
    Resource::written("Encounter", id.clone(), e, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        patient::professional,
        resource::{meta, patient_ref, put, text},
    };
    use journey_proto::{
        prost_types::Timestamp,
        v1::{ContactChannel, Role},
    };
    use serde_json::{json, Value};

    /// The tree the Encounter was built as before it was written straight (the code it replaced).
    fn tree(patient_id: &str, e: &Event, c: &Contact) -> Value {
        let (code, display) = codes::contact_class(c.channel, c.visit);
        let mut body = json!({
            "resourceType": "Encounter",
            "id": fhir_id("Encounter", &e.event_id),
            "meta": meta(e, Some("fr-core-encounter")),
            "identifier": [{
                "type": { "coding": [{ "system": codes::V2_0203, "code": "VN", "display": "Visit number" }] },
                "system": "urn:journey:contact",
                "value": e.event_id,
            }],
            "status": "finished",
            "class": { "system": ACT_CODE, "code": code, "display": display },
            "subject": patient_ref(patient_id),
            "period": {},
        });
        put(
            &mut body["period"],
            "start",
            instant(e.occurred_at.as_ref()).map(Value::from),
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
        body
    }

    fn event(id: &str, occurred: bool, recorded: bool) -> Event {
        let at = |seconds| Timestamp {
            seconds,
            nanos: 250_000_000,
        };
        Event {
            event_id: id.into(),
            stream_version: 9,
            occurred_at: occurred.then(|| at(1_780_000_000)),
            recorded_at: recorded.then(|| at(1_780_000_060)),
            ..Default::default()
        }
    }

    #[test]
    fn a_contact_written_straight_is_the_tree_it_was_built_as() {
        let nurse = Professional {
            id: "IDE-1".into(),
            name: "Mme \"Durand\"".into(),
            role: Role::HomeNurse as i32,
            ..Default::default()
        };
        let unnamed = Professional {
            id: "X-2".into(),
            ..Default::default()
        };
        let named = Professional {
            name: "Dr Martin".into(),
            ..Default::default()
        };
        let blank = Professional::default();
        let events = [
            event("7f1d2c3e-0000-4000-8000-000000000001", true, true),
            event("not a FHIR id: é", false, true),
            event("e-3", true, false),
        ];
        for e in &events {
            for professional in [
                Some(&nurse),
                Some(&unnamed),
                Some(&named),
                Some(&blank),
                None,
            ] {
                for (visit, channel, minutes, reason) in [
                    (true, ContactChannel::Visit as i32, 45, ""),
                    (true, ContactChannel::Unspecified as i32, 0, ""),
                    (false, ContactChannel::Phone as i32, 0, "fièvre \"38,5\"\n"),
                    (false, ContactChannel::Teleconsultation as i32, 0, "  "),
                ] {
                    let c = Contact {
                        professional,
                        channel,
                        visit,
                        minutes,
                        reason,
                    };
                    let expected = tree("IPP:123", e, &c);
                    let r = build("IPP:123", e, c);
                    assert_eq!(r.json(), expected, "{e:?}");
                    assert_eq!(r.id, expected["id"]);
                    assert_eq!(r.last_updated(), expected["meta"]["lastUpdated"].as_str());
                }
            }
        }
    }
}
