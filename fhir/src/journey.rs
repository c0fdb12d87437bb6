//! A patient's events, oldest first, folded into the resources they map to (docs/fhir.md): one
//! Patient; an Encounter per stay (its admission, transfers, discharge and their cancellations)
//! and per emergency visit; an Observation, a Condition, a MedicationRequest or a Consent per
//! event of those kinds; a Flag per alert (raised, acknowledged, resolved).
use crate::{condition, consent, encounter, flag, medication, observation, patient, Resource};
use journey_proto::v1::{event::Payload, Event};
use std::collections::HashMap;

/// The resource types the mapping makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Patient,
    Encounter,
    Observation,
    Condition,
    MedicationRequest,
    Flag,
    Consent,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Patient,
        Kind::Encounter,
        Kind::Observation,
        Kind::Condition,
        Kind::MedicationRequest,
        Kind::Flag,
        Kind::Consent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Patient => "Patient",
            Kind::Encounter => "Encounter",
            Kind::Observation => "Observation",
            Kind::Condition => "Condition",
            Kind::MedicationRequest => "MedicationRequest",
            Kind::Flag => "Flag",
            Kind::Consent => "Consent",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What an event contributes to, while folding.
enum Slot<'a> {
    Stay(encounter::Stay<'a>),
    Alert(flag::Alert<'a>),
    Done(Resource),
}

/// Every resource of `patient_id`'s `events` (its stream, oldest first): the Patient first, then
/// the others in the order of their first event.
pub fn resources(patient_id: &str, events: &[Event]) -> Vec<Resource> {
    let mut person = patient::Person::new(patient_id);
    let mut slots: Vec<Slot> = Vec::new();
    let mut stays: HashMap<&str, usize> = HashMap::new();
    let mut alerts: HashMap<&str, usize> = HashMap::new();
    // A movement's event id → its stay, for the cancellations that name it.
    let mut movements: HashMap<&str, usize> = HashMap::new();
    for e in events {
        let Some(payload) = &e.payload else { continue };
        person.touch_first(e);
        match payload {
            Payload::PatientRegistered(_)
            | Payload::IdentityUpdated(_)
            | Payload::PatientDeceased(_) => person.apply(e, payload),
            Payload::Admitted(a) => {
                let at = *stays.entry(&a.encounter_id).or_insert_with(|| {
                    slots.push(Slot::Stay(encounter::Stay::new(&a.encounter_id, e)));
                    slots.len() - 1
                });
                movements.insert(&e.event_id, at);
                if let Slot::Stay(s) = &mut slots[at] {
                    s.admitted(e, a);
                }
            }
            Payload::Transferred(t) => {
                if let Some(&at) = stays.get(t.encounter_id.as_str()) {
                    movements.insert(&e.event_id, at);
                    if let Slot::Stay(s) = &mut slots[at] {
                        s.transferred(e, t);
                    }
                }
            }
            Payload::Discharged(d) => {
                if let Some(&at) = stays.get(d.encounter_id.as_str()) {
                    movements.insert(&e.event_id, at);
                    if let Slot::Stay(s) = &mut slots[at] {
                        s.discharged(e, d);
                    }
                }
            }
            Payload::AdmissionCancelled(c) => {
                cancel(&mut slots, &movements, e, &c.cancelled_event_id)
            }
            Payload::TransferCancelled(c) => {
                cancel(&mut slots, &movements, e, &c.cancelled_event_id)
            }
            Payload::DischargeCancelled(c) => {
                cancel(&mut slots, &movements, e, &c.cancelled_event_id)
            }
            Payload::EmergencyVisit(v) => {
                slots.push(Slot::Done(encounter::emergency(patient_id, e, v)))
            }
            Payload::ObservationRecorded(o) => {
                slots.push(Slot::Done(observation::build(patient_id, e, o)))
            }
            Payload::ConditionRecorded(c) => {
                slots.push(Slot::Done(condition::build(patient_id, e, c)))
            }
            Payload::PrescriptionIssued(p) => {
                slots.push(Slot::Done(medication::build(patient_id, e, p)))
            }
            Payload::ConsentGiven(c) => slots.push(Slot::Done(consent::build(
                patient_id,
                e,
                &c.scope,
                &c.organisations,
                true,
            ))),
            Payload::ConsentRevoked(c) => slots.push(Slot::Done(consent::build(
                patient_id,
                e,
                &c.scope,
                &c.organisations,
                false,
            ))),
            // An alert raised again under the same id is the same alert.
            Payload::AlertRaised(a) if !alerts.contains_key(a.alert_id.as_str()) => {
                alerts.insert(&a.alert_id, slots.len());
                slots.push(Slot::Alert(flag::Alert::new(e, a)));
            }
            Payload::AlertAcknowledged(a) => {
                if let Some(Slot::Alert(f)) =
                    alerts.get(a.alert_id.as_str()).map(|&i| &mut slots[i])
                {
                    f.acknowledged(e);
                }
            }
            Payload::AlertResolved(a) => {
                if let Some(Slot::Alert(f)) =
                    alerts.get(a.alert_id.as_str()).map(|&i| &mut slots[i])
                {
                    f.resolved(e);
                }
            }
            // Not mapped yet (docs/fhir.md lists them): merges, letters, reconciliations, care
            // plans, referents, appointments, home visits and contacts.
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(slots.len() + 1);
    if let Some(p) = person.build() {
        out.push(p);
    }
    out.extend(slots.into_iter().map(|s| match s {
        Slot::Stay(s) => s.build(patient_id),
        Slot::Alert(a) => a.build(patient_id),
        Slot::Done(r) => r,
    }));
    out
}

/// A cancellation: the stay of the movement it names undoes it.
fn cancel<'a>(
    slots: &mut [Slot<'a>],
    movements: &HashMap<&str, usize>,
    e: &'a Event,
    cancelled: &str,
) {
    if let Some(&at) = movements.get(cancelled) {
        if let Slot::Stay(s) = &mut slots[at] {
            s.cancel(e, cancelled);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::{
        prost_types::Timestamp,
        v1::{
            AdmissionCancelled, Admitted, AlertRaised, AlertResolved, DischargeCancelled,
            Discharged, ObservationRecorded, PatientRegistered,
        },
    };

    fn ev(n: u64, payload: Payload) -> Event {
        Event {
            event_id: format!("e{n}"),
            patient_id: "P1".into(),
            stream_version: n,
            occurred_at: Some(Timestamp {
                seconds: 1_700_000_000 + n as i64 * 3600,
                nanos: 0,
            }),
            recorded_at: Some(Timestamp {
                seconds: 1_700_000_100 + n as i64 * 3600,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn admitted(n: u64, enc: &str) -> Event {
        ev(
            n,
            Payload::Admitted(Admitted {
                encounter_id: enc.into(),
                unit: "cardio".into(),
                setting: 1,
                admit_type: 1,
                ..Default::default()
            }),
        )
    }

    fn of<'a>(all: &'a [Resource], id: &str) -> &'a Resource {
        all.iter().find(|r| r.id == id).expect(id)
    }

    #[test]
    fn a_stay_folds_its_movements_and_cancellations() {
        let events = vec![
            ev(
                1,
                Payload::PatientRegistered(PatientRegistered {
                    family_name: "Martin".into(),
                    sex: 1,
                    ..Default::default()
                }),
            ),
            admitted(2, "S1"),
            ev(
                3,
                Payload::Discharged(Discharged {
                    encounter_id: "S1".into(),
                    disposition: 1,
                    ..Default::default()
                }),
            ),
            ev(
                4,
                Payload::DischargeCancelled(DischargeCancelled {
                    cancelled_event_id: "e3".into(),
                }),
            ),
            admitted(5, "S2"),
            ev(
                6,
                Payload::AdmissionCancelled(AdmissionCancelled {
                    cancelled_event_id: "e5".into(),
                }),
            ),
        ];
        let all = resources("P1", &events);
        let kinds: Vec<&str> = all.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["Patient", "Encounter", "Encounter"]);
        let s1 = &of(&all, "S1").body;
        assert_eq!(s1["status"], "in-progress", "the discharge was cancelled");
        assert!(s1["period"].get("end").is_none());
        assert_eq!(s1["meta"]["versionId"], "4");
        assert_eq!(s1["class"]["code"], "IMP");
        assert_eq!(
            s1["hospitalization"]["admitSource"]["coding"][0]["code"],
            "emd"
        );
        assert_eq!(of(&all, "S2").body["status"], "entered-in-error");
        let p = &of(&all, "P1").body;
        assert_eq!(p["gender"], "female");
        assert_eq!(p["meta"]["versionId"], "1");
        assert_eq!(p["meta"]["lastUpdated"], "2023-11-14T23:15:00.000Z");
    }

    #[test]
    fn an_alert_is_a_flag_inactive_once_resolved_and_each_measure_an_observation() {
        let events = vec![
            ev(
                1,
                Payload::ObservationRecorded(ObservationRecorded {
                    measure: "weight".into(),
                    value: 81.5,
                    unit: "kg".into(),
                    ..Default::default()
                }),
            ),
            ev(
                2,
                Payload::AlertRaised(AlertRaised {
                    alert_id: "A1".into(),
                    severity: 3,
                    rule: "weight_gain".into(),
                    reason: "+2 kg in 3 days".into(),
                }),
            ),
            ev(
                3,
                Payload::AlertResolved(AlertResolved {
                    alert_id: "A1".into(),
                    resolution: "diuretics".into(),
                }),
            ),
        ];
        let all = resources("P1", &events);
        let kinds: Vec<&str> = all.iter().map(|r| r.kind).collect();
        assert_eq!(kinds, ["Patient", "Observation", "Flag"]);
        let o = &of(&all, "e1").body;
        assert_eq!(o["code"]["coding"][0]["code"], "29463-7");
        assert_eq!(o["valueQuantity"]["code"], "kg");
        let f = &of(&all, "A1").body;
        assert_eq!(f["status"], "inactive");
        assert_eq!(f["meta"]["versionId"], "3");
        assert_eq!(
            f["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
            "PH"
        );
    }
}
