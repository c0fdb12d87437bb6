//! Task: the coordination items of each discharge the coordination view follows (docs/design.md
//! §5): the discharge letter (due the discharge day), the medication reconciliation (within 7
//! days) and the first home contact (within 2 working days), each with its owner, its due date
//! and whether it is done, on time or late, or still to do, overdue or not. They come from the
//! coordination view (its due dates and states), not from one event: their `meta` is the event
//! that did the item, else the discharge that opened it.
use crate::{
    resource::{fhir_id, fhir_id_of, instant, Coding, Identifier, Meta, Prefixed, Reference},
    Resource,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{event::Payload, Event},
};
use serde::Serialize;

/// The code system of the coordination items.
pub const ITEMS: &str = "urn:journey:coordination-item";
const FINESS: &str = "urn:oid:1.2.250.1.71.4.2.2";

/// What is to be done after a discharge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Letter,
    Reconciliation,
    FirstContact,
}

impl Work {
    pub const ALL: [Work; 3] = [Work::Letter, Work::Reconciliation, Work::FirstContact];

    /// (code, display).
    pub fn code(self) -> (&'static str, &'static str) {
        match self {
            Work::Letter => ("discharge-letter", "discharge letter sent"),
            Work::Reconciliation => ("medication-reconciliation", "medication reconciliation"),
            Work::FirstContact => ("first-contact", "first home contact"),
        }
    }

    /// Whether `e` is an event that does this work for the stay `encounter_id`.
    fn done_by(self, e: &Event, encounter_id: &str) -> bool {
        match (self, &e.payload) {
            (Work::Letter, Some(Payload::DischargeLetterSent(l))) => l.encounter_id == encounter_id,
            (Work::Reconciliation, Some(Payload::MedicationReconciled(m))) => {
                m.encounter_id == encounter_id
            }
            (Work::FirstContact, Some(Payload::ContactMade(_) | Payload::HomeVisitRecorded(_))) => {
                true
            }
            _ => false,
        }
    }
}

/// Who is to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner<'a> {
    /// The discharging facility (FINESS, name).
    Facility { id: &'a str, name: &'a str },
    /// A referent of the patient (id, name).
    Professional { id: &'a str, name: &'a str },
    /// The territory's coordination, when no referent is named.
    Territory(&'a str),
}

/// One coordination item of a discharge, as the coordination view follows it.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    pub encounter_id: &'a str,
    /// The discharge event (the view's `discharge_event_id`, if known).
    pub discharge_event_id: Option<&'a str>,
    pub work: Work,
    pub owner: Owner<'a>,
    /// Seconds since the epoch.
    pub discharged_at: i64,
    pub due_at: i64,
    pub done_at: Option<i64>,
    /// Not done and past its due time.
    pub overdue: bool,
}

/// The Task of `item`, its `meta` from the patient's `events`: the event that did the work (at
/// the time the view recorded), else the stay's discharge. `None` when none of `events` is
/// either (the view has folded further than the events read).
pub fn build(patient_id: &str, item: &Item, events: &[Event]) -> Option<Resource> {
    let at = |secs: i64| {
        instant(Some(&Timestamp {
            seconds: secs,
            nanos: 0,
        }))
    };
    let did = item.done_at.and_then(|done| {
        events.iter().rev().find(|e| {
            item.work.done_by(e, item.encounter_id)
                && e.occurred_at.as_ref().map(|t| t.seconds) == Some(done)
        })
    });
    let discharge = events.iter().rev().find(|e| match &e.payload {
        Some(Payload::Discharged(d)) => {
            d.encounter_id == item.encounter_id
                && item.discharge_event_id.is_none_or(|id| id == e.event_id)
        }
        _ => false,
    });
    let last = did.or(discharge)?;
    let (code, display) = item.work.code();
    let value = format!("{}.{code}", item.encounter_id);
    let id = fhir_id("Task", &value);
    let (status, business) = match (item.done_at, item.overdue) {
        (Some(done), _) if done < item.due_at => ("completed", "done on time"),
        (Some(_), _) => ("completed", "done late"),
        (None, true) => ("requested", "overdue"),
        (None, false) => ("requested", "to do"),
    };
    let patient = fhir_id_of("Patient", patient_id);
    let stay = fhir_id_of("Encounter", item.encounter_id);
    let stay = || Reference {
        reference: Prefixed("Encounter/", &stay),
    };
    let body = Task {
        authored_on: at(item.discharged_at),
        business_status: Text { text: business },
        code: Code {
            coding: [Coding {
                system: ITEMS,
                code,
                display,
            }],
            text: display,
        },
        encounter: stay(),
        execution_period: item.done_at.and_then(at).map(|end| End { end }),
        focus: stay(),
        subject: Reference {
            reference: Prefixed("Patient/", &patient),
        },
        id: &id,
        identifier: [Identifier {
            system: ITEMS,
            value: &value,
        }],
        intent: "order",
        meta: Meta::of(last, None),
        owner: OwnerRef::of(&item.owner),
        resource_type: "Task",
        restriction: at(item.due_at).map(|end| Restriction {
            period: End { end },
        }),
        status,
    };
    Some(Resource::written("Task", id.clone(), last, &body))
}

/// A Task written straight, its keys in the order a JSON tree writes them.
#[derive(Serialize)]
struct Task<'a> {
    #[serde(rename = "authoredOn", skip_serializing_if = "Option::is_none")]
    authored_on: Option<String>,
    #[serde(rename = "businessStatus")]
    business_status: Text<'a>,
    code: Code<'a>,
    encounter: Reference<'a>,
    #[serde(rename = "executionPeriod", skip_serializing_if = "Option::is_none")]
    execution_period: Option<End>,
    focus: Reference<'a>,
    #[serde(rename = "for")]
    subject: Reference<'a>,
    id: &'a str,
    identifier: [Identifier<'a>; 1],
    intent: &'static str,
    meta: Meta<'a>,
    owner: OwnerRef<'a>,
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    restriction: Option<Restriction>,
    status: &'static str,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Code<'a> {
    coding: [Coding<'a>; 1],
    text: &'a str,
}

#[derive(Serialize)]
struct End {
    end: String,
}

#[derive(Serialize)]
struct Restriction {
    period: End,
}

/// Who is to do it: by identifier when it has one, by name when it has one.
#[derive(Serialize)]
struct OwnerRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identifier: Option<Identifier<'a>>,
}

impl<'a> OwnerRef<'a> {
    fn of(o: &Owner<'a>) -> Self {
        let (system, id, name) = match *o {
            Owner::Facility { id, name } => (FINESS, id, name),
            Owner::Professional { id, name } => ("urn:journey:professional", id, name),
            Owner::Territory(t) => ("urn:journey:territory", t, t),
        };
        OwnerRef {
            display: (!name.trim().is_empty()).then_some(name),
            identifier: (!id.is_empty()).then_some(Identifier { system, value: id }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{encounter_ref, meta, patient_ref, put, text};
    use journey_proto::v1::{DischargeLetterSent, Discharged};
    use serde_json::{json, Value};

    /// The tree a Task was built as before it was written straight (the code it replaced), its
    /// `meta` from `last`.
    fn tree(patient_id: &str, item: &Item, last: &Event) -> Value {
        let at = |secs: i64| {
            instant(Some(&Timestamp {
                seconds: secs,
                nanos: 0,
            }))
        };
        let (code, display) = item.work.code();
        let id = fhir_id("Task", &format!("{}.{code}", item.encounter_id));
        let (status, business) = match (item.done_at, item.overdue) {
            (Some(done), _) if done < item.due_at => ("completed", "done on time"),
            (Some(_), _) => ("completed", "done late"),
            (None, true) => ("requested", "overdue"),
            (None, false) => ("requested", "to do"),
        };
        let (system, owner_id, name) = match &item.owner {
            Owner::Facility { id, name } => (FINESS, *id, *name),
            Owner::Professional { id, name } => ("urn:journey:professional", *id, *name),
            Owner::Territory(t) => ("urn:journey:territory", *t, *t),
        };
        let mut owner = json!({});
        if !owner_id.is_empty() {
            owner["identifier"] = json!({ "system": system, "value": owner_id });
        }
        put(&mut owner, "display", text(name));
        let mut body = json!({
            "resourceType": "Task",
            "id": id,
            "meta": meta(last, None),
            "identifier": [{ "system": ITEMS, "value": format!("{}.{code}", item.encounter_id) }],
            "status": status,
            "businessStatus": { "text": business },
            "intent": "order",
            "code": {
                "coding": [{ "system": ITEMS, "code": code, "display": display }],
                "text": display,
            },
            "for": patient_ref(patient_id),
            "focus": encounter_ref(item.encounter_id),
            "encounter": encounter_ref(item.encounter_id),
            "owner": owner,
        });
        put(
            &mut body,
            "authoredOn",
            at(item.discharged_at).map(Value::from),
        );
        put(
            &mut body,
            "restriction",
            at(item.due_at).map(|due| json!({ "period": { "end": due } })),
        );
        put(
            &mut body,
            "executionPeriod",
            item.done_at.and_then(at).map(|done| json!({ "end": done })),
        );
        body
    }

    #[test]
    fn a_task_is_written_as_its_tree_was_built() {
        let day = 1_780_000_000;
        let discharge = ev(
            1,
            day,
            Payload::Discharged(Discharged {
                encounter_id: "S 1/é".into(),
                ..Default::default()
            }),
        );
        let owners = [
            Owner::Facility {
                id: "750000001",
                name: "CHU \"Nord\"",
            },
            Owner::Facility { id: "", name: " " },
            Owner::Professional {
                id: "gp-1",
                name: "Dr Lefèvre",
            },
            Owner::Professional {
                id: "gp-2",
                name: "",
            },
            Owner::Territory("CPTS-NORD"),
        ];
        let mut n = 0;
        for work in Work::ALL {
            for owner in &owners {
                for (done_at, overdue) in [
                    (None, false),
                    (None, true),
                    (Some(day + 60), false),
                    (Some(day + 90_000), false),
                ] {
                    let item = Item {
                        encounter_id: "S 1/é",
                        discharge_event_id: None,
                        work,
                        owner: owner.clone(),
                        discharged_at: day,
                        due_at: day + 86_400,
                        done_at,
                        overdue,
                    };
                    let written = build("P 1", &item, std::slice::from_ref(&discharge)).unwrap();
                    assert_eq!(written.json(), tree("P 1", &item, &discharge), "{item:?}");
                    assert_eq!(written.last_updated(), Some("2026-05-28T20:27:40.000Z"));
                    n += 1;
                }
            }
        }
        assert_eq!(n, 60);
    }

    fn ev(n: u64, secs: i64, payload: Payload) -> Event {
        Event {
            event_id: format!("e{n}"),
            stream_version: n,
            occurred_at: Some(Timestamp {
                seconds: secs,
                nanos: 0,
            }),
            recorded_at: Some(Timestamp {
                seconds: secs + 60,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    #[test]
    fn an_item_is_a_task_with_its_owner_due_date_and_state() {
        let day = 1_780_000_000;
        let events = [
            ev(
                1,
                day,
                Payload::Discharged(Discharged {
                    encounter_id: "S1".into(),
                    ..Default::default()
                }),
            ),
            ev(
                2,
                day + 3600,
                Payload::DischargeLetterSent(DischargeLetterSent {
                    encounter_id: "S1".into(),
                    ..Default::default()
                }),
            ),
        ];
        let item = |work, done_at, overdue, owner| Item {
            encounter_id: "S1",
            discharge_event_id: Some("e1"),
            work,
            owner,
            discharged_at: day,
            due_at: day + 7200,
            done_at,
            overdue,
        };
        let chu = Owner::Facility {
            id: "750000001",
            name: "CHU",
        };
        let letter = build(
            "P1",
            &item(Work::Letter, Some(day + 3600), false, chu),
            &events,
        )
        .unwrap()
        .json();
        assert_eq!(letter["id"], "S1.discharge-letter");
        assert_eq!(letter["status"], "completed");
        assert_eq!(letter["businessStatus"]["text"], "done on time");
        assert_eq!(letter["meta"]["versionId"], "2", "the letter did it");
        assert_eq!(letter["owner"]["identifier"]["value"], "750000001");
        assert_eq!(
            letter["restriction"]["period"]["end"],
            "2026-05-28T22:26:40.000Z"
        );
        assert_eq!(letter["executionPeriod"]["end"], "2026-05-28T21:26:40.000Z");
        assert_eq!(letter["focus"]["reference"], "Encounter/S1");
        let contact = build(
            "P1",
            &item(Work::FirstContact, None, true, Owner::Territory("T1")),
            &events,
        )
        .unwrap()
        .json();
        assert_eq!(contact["status"], "requested");
        assert_eq!(contact["businessStatus"]["text"], "overdue");
        assert_eq!(contact["meta"]["versionId"], "1", "opened by the discharge");
        assert_eq!(contact["owner"]["display"], "T1");
        assert!(contact.get("executionPeriod").is_none());
        let unknown = Item {
            encounter_id: "S9",
            ..item(Work::Letter, None, false, Owner::Territory("T1"))
        };
        assert!(build("P1", &unknown, &events).is_none());
    }
}
