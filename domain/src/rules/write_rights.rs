//! Write rights of an organisation (docs/design.md §6, "Who may write what"): which events a
//! partner of one organisation may append about a patient, given what the log already holds.
//!
//! A partner writes about its own encounters and about patients it has a relationship with:
//! - it **has a relationship** with a patient it registered, admitted, saw in its emergency
//!   department, or that names it as GP or referent (a `ReferentAssigned`, the referents of a care
//!   plan, the GP of a registration or identity update);
//! - an **encounter is its own** when it opened it (its `Admitted`): only it records the encounter's
//!   transfers, leaves, class changes, discharge, discharge letter, cancellations and corrections;
//! - a **facility is its own** when it was the first to admit a patient or record an emergency
//!   visit there (facility ids are national, FINESS in France): no other organisation opens
//!   encounters there. An admission or an emergency visit at its own facility is how an
//!   organisation meets a patient for the first time, and what gives it the relationship.
//!
//! The role-level part of the model (consent events only through the consent role, the reactor's
//! service key only `AlertRaised`) does not depend on the log and is checked before the log, by
//! the server (`journey-services`, `write_policy.rs`). Trusted writers (admin) are not held to
//! these rights.
use super::{refuse, PatientState, Refusal, Rule};
use journey_proto::v1::event::Payload;
use journey_proto::v1::{Event, Professional};
use std::collections::HashMap;

/// Facility id → the organisation it belongs to.
pub(super) type Facilities = HashMap<String, String>;

fn facility_of(payload: &Payload) -> Option<&str> {
    let facility = match payload {
        Payload::Admitted(a) => a.facility.as_ref(),
        Payload::ClassChanged(c) => c.facility.as_ref(),
        Payload::EmergencyVisit(v) => v.facility.as_ref(),
        _ => None,
    }?;
    Some(facility.id.as_str()).filter(|id| !id.is_empty())
}

/// The encounter an event is a movement or a record of, when only that encounter's organisation
/// may write it.
fn own_encounter_of<'a>(state: &'a PatientState, payload: &'a Payload) -> Option<&'a str> {
    let cancelled = |id: &str| state.movements.get(id).map(|m| m.encounter_id.as_str());
    match payload {
        Payload::Transferred(t) => Some(t.encounter_id.as_str()),
        Payload::Discharged(d) => Some(d.encounter_id.as_str()),
        Payload::DischargeLetterSent(l) => Some(l.encounter_id.as_str()),
        Payload::AdmissionCancelled(c) => cancelled(&c.cancelled_event_id),
        Payload::TransferCancelled(c) => cancelled(&c.cancelled_event_id),
        Payload::DischargeCancelled(c) => cancelled(&c.cancelled_event_id),
        Payload::LeaveStarted(l) => Some(l.encounter_id.as_str()),
        Payload::LeaveEnded(l) => Some(l.encounter_id.as_str()),
        Payload::ClassChanged(c) => Some(c.encounter_id.as_str()),
        Payload::MovementCancelled(c) => cancelled(&c.cancelled_event_id),
        Payload::MovementCorrected(c) => cancelled(&c.corrected_event_id),
        _ => None,
    }
}

/// The organisations an event names as the patient's GP or referents.
fn named_organisations(payload: &Payload) -> Vec<&str> {
    let professionals: Vec<&Professional> = match payload {
        Payload::PatientRegistered(r) => r.gp.iter().collect(),
        Payload::IdentityUpdated(u) => u.gp.iter().collect(),
        Payload::ReferentAssigned(r) => r.professional.iter().collect(),
        Payload::CarePlanEstablished(c) => c.referents.iter().collect(),
        _ => Vec::new(),
    };
    professionals
        .into_iter()
        .map(|p| p.organisation.as_str())
        .filter(|o| !o.is_empty())
        .collect()
}

/// Whether `organisation` may write `event`, as the partner `writer`. `states` holds the patients
/// the event touches (staged: earlier events of the same batch count); `facility_owner` answers
/// who owns a facility so far.
pub(super) fn check(
    states: &HashMap<String, PatientState>,
    facility_owner: impl Fn(&str) -> Option<String>,
    event: &Event,
    writer: &str,
) -> Result<(), Refusal> {
    let pid = event.patient_id.as_str();
    let Some(payload) = &event.payload else {
        return Ok(());
    };
    let empty = PatientState::default();
    let state = states.get(pid).unwrap_or(&empty);
    let related = |st: &PatientState| st.organisations.contains(writer);
    let not_related = |pid: &str| {
        refuse(
            Rule::NotRelated,
            format!(
                "organisation {writer} has no relationship with patient {pid}: a partner writes about the patients it registered, admitted, saw in its emergency department or is GP or referent of (docs/design.md §6)"
            ),
        )
    };
    if let Some(facility) = facility_of(payload) {
        return match facility_owner(facility) {
            Some(owner) if owner != writer => Err(refuse(
                Rule::NotYourFacility,
                format!(
                    "facility {facility} belongs to organisation {owner}; organisation {writer} opens encounters at its own facilities only"
                ),
            )),
            _ => Ok(()),
        };
    }
    if let Some(encounter) = own_encounter_of(state, payload) {
        if let Some(e) = state.encounters.get(encounter) {
            return if e.organisation == writer {
                Ok(())
            } else {
                Err(refuse(
                    Rule::NotYourEncounter,
                    format!(
                        "encounter {encounter} of patient {pid} was opened by organisation {}; only it records the encounter's movements, discharge letter and cancellations",
                        e.organisation
                    ),
                ))
            };
        }
        // An emergency visit a class change makes a stay: only the visit's organisation.
        if let Some(org) = state.visits.get(encounter).filter(|o| *o != writer) {
            return Err(refuse(
                Rule::NotYourEncounter,
                format!(
                    "emergency visit {encounter} of patient {pid} was recorded by organisation {org}; only it makes the visit a stay"
                ),
            ));
        }
        // An encounter the log does not know: the journey rules say what is wrong with it, once
        // the writer is known to the patient.
    }
    match payload {
        Payload::PatientRegistered(_) if state.is_new() => Ok(()),
        Payload::PatientsMerged(m) => {
            let retired = states.get(&m.retired_patient_id).unwrap_or(&empty);
            if !related(state) {
                Err(not_related(pid))
            } else if !related(retired) && !retired.is_new() {
                Err(not_related(&m.retired_patient_id))
            } else {
                Ok(())
            }
        }
        _ if related(state) => Ok(()),
        _ => Err(not_related(pid)),
    }
}

/// What `event` teaches about relationships and facilities (applied to every stored event, whoever
/// wrote it). `claim` records a facility's first organisation.
pub(super) fn learn(state: &mut PatientState, event: &Event, claim: impl FnOnce(&str, &str)) {
    let Some(payload) = &event.payload else {
        return;
    };
    let actor = event.actor.as_ref().map_or("", |a| a.organisation.as_str());
    let mut related: Vec<&str> = named_organisations(payload);
    match payload {
        Payload::PatientRegistered(_) => related.push(actor),
        Payload::Admitted(_) | Payload::EmergencyVisit(_) => {
            related.push(actor);
            if let Some(facility) = facility_of(payload).filter(|_| !actor.is_empty()) {
                claim(facility, actor);
            }
        }
        _ => {}
    }
    for org in related.into_iter().filter(|o| !o.is_empty()) {
        if !state.organisations.contains(org) {
            state.organisations.insert(org.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{JourneyRules, Rule};
    use journey_proto::v1::{
        event::Payload, Actor, AdmissionCancelled, Admitted, ConsentRevoked, DischargeLetterSent,
        Discharged, EmergencyVisit, Event, Facility, HomeVisitRecorded, ObservationRecorded,
        PatientDeceased, PatientRegistered, PatientsMerged, Professional, ReferentAssigned,
        Setting, Transferred,
    };

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn ev(n: u32, patient: &str, org: &str, payload: Payload) -> Event {
        Event {
            event_id: id(n),
            patient_id: patient.into(),
            occurred_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + i64::from(n) * 3600,
                nanos: 0,
            }),
            actor: Some(Actor {
                organisation: org.into(),
                ..Default::default()
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn admitted(encounter: &str, facility: &str) -> Payload {
        Payload::Admitted(Admitted {
            encounter_id: encounter.into(),
            facility: Some(Facility {
                id: facility.into(),
                ..Default::default()
            }),
            setting: Setting::Inpatient as i32,
            ..Default::default()
        })
    }

    fn registered(gp_org: &str) -> Payload {
        Payload::PatientRegistered(PatientRegistered {
            gp: Some(Professional {
                organisation: gp_org.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn visit() -> Payload {
        Payload::HomeVisitRecorded(HomeVisitRecorded::default())
    }

    /// The rule that refuses `event` written by `org`, or `None` when it is admitted.
    fn verdict(rules: &mut JourneyRules, event: Event, org: &str) -> Option<Rule> {
        rules
            .admit_as(&[event], Some(org))
            .err()
            .map(|(_, refusal)| refusal.rule)
    }

    /// A hospital (CHU-A) admitted P1 at its facility F-A; clinic CHU-B owns F-B; the patient's GP
    /// belongs to CAB-GP.
    fn journey() -> JourneyRules {
        let mut rules = JourneyRules::default();
        rules
            .admit_as(&[ev(1, "P1", "CHU-A", registered("CAB-GP"))], Some("CHU-A"))
            .unwrap();
        rules
            .admit_as(
                &[ev(2, "P1", "CHU-A", admitted("E1", "F-A"))],
                Some("CHU-A"),
            )
            .unwrap();
        rules
            .admit_as(
                &[ev(3, "P2", "CHU-B", admitted("E2", "F-B"))],
                Some("CHU-B"),
            )
            .unwrap();
        rules
    }

    #[test]
    fn who_may_write_about_whom() {
        use Rule::*;
        let discharged = || {
            Payload::Discharged(Discharged {
                encounter_id: "E1".into(),
                ..Default::default()
            })
        };
        let cases: Vec<(&str, Event, &str, Option<Rule>)> = vec![
            (
                "a new patient's registration",
                ev(10, "P9", "CHU-B", registered("")),
                "CHU-B",
                None,
            ),
            (
                "another's patient registered again",
                ev(11, "P1", "CHU-B", registered("")),
                "CHU-B",
                Some(NotRelated),
            ),
            (
                "the registrar updates its registration",
                ev(12, "P1", "CHU-A", registered("")),
                "CHU-A",
                None,
            ),
            (
                "an admission at its own facility",
                ev(13, "P8", "CHU-B", admitted("E3", "F-B")),
                "CHU-B",
                None,
            ),
            (
                "an admission at a new facility",
                ev(14, "P8", "CHU-C", admitted("E4", "F-C")),
                "CHU-C",
                None,
            ),
            (
                "an admission at another's facility",
                ev(15, "P2", "CHU-B", admitted("E5", "F-A")),
                "CHU-B",
                Some(NotYourFacility),
            ),
            (
                "an ED visit at another's facility",
                ev(
                    16,
                    "P2",
                    "CHU-B",
                    Payload::EmergencyVisit(EmergencyVisit {
                        facility: Some(Facility {
                            id: "F-A".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                ),
                "CHU-B",
                Some(NotYourFacility),
            ),
            (
                "its own encounter's discharge",
                ev(17, "P1", "CHU-A", discharged()),
                "CHU-A",
                None,
            ),
            (
                "another's encounter's discharge",
                ev(18, "P1", "CHU-B", discharged()),
                "CHU-B",
                Some(NotYourEncounter),
            ),
            (
                "another's encounter's transfer",
                ev(
                    19,
                    "P2",
                    "CHU-A",
                    Payload::Transferred(Transferred {
                        encounter_id: "E2".into(),
                        ..Default::default()
                    }),
                ),
                "CHU-A",
                Some(NotYourEncounter),
            ),
            (
                "another's encounter's letter",
                ev(
                    20,
                    "P2",
                    "CHU-A",
                    Payload::DischargeLetterSent(DischargeLetterSent {
                        encounter_id: "E2".into(),
                        ..Default::default()
                    }),
                ),
                "CHU-A",
                Some(NotYourEncounter),
            ),
            (
                "another's admission cancelled",
                ev(
                    21,
                    "P2",
                    "CHU-A",
                    Payload::AdmissionCancelled(AdmissionCancelled {
                        cancelled_event_id: id(3),
                        ..Default::default()
                    }),
                ),
                "CHU-A",
                Some(NotYourEncounter),
            ),
            (
                "its own admission cancelled",
                ev(
                    22,
                    "P2",
                    "CHU-B",
                    Payload::AdmissionCancelled(AdmissionCancelled {
                        cancelled_event_id: id(3),
                        ..Default::default()
                    }),
                ),
                "CHU-B",
                None,
            ),
            (
                "a visit by the registered GP",
                ev(23, "P1", "CAB-GP", visit()),
                "CAB-GP",
                None,
            ),
            (
                "a visit by a stranger",
                ev(24, "P1", "SSIAD-X", visit()),
                "SSIAD-X",
                Some(NotRelated),
            ),
            (
                "an observation by a stranger",
                ev(
                    25,
                    "P2",
                    "TELE-Y",
                    Payload::ObservationRecorded(ObservationRecorded::default()),
                ),
                "TELE-Y",
                Some(NotRelated),
            ),
            (
                "a death by a stranger",
                ev(
                    26,
                    "P2",
                    "CHU-A",
                    Payload::PatientDeceased(PatientDeceased::default()),
                ),
                "CHU-A",
                Some(NotRelated),
            ),
            (
                "a death by the admitting hospital",
                ev(
                    27,
                    "P2",
                    "CHU-B",
                    Payload::PatientDeceased(PatientDeceased::default()),
                ),
                "CHU-B",
                None,
            ),
            (
                "a consent revoked by a related partner",
                ev(
                    28,
                    "P1",
                    "CHU-A",
                    Payload::ConsentRevoked(ConsentRevoked::default()),
                ),
                "CHU-A",
                None,
            ),
            (
                "a merge of another's patient",
                ev(
                    29,
                    "P1",
                    "CHU-A",
                    Payload::PatientsMerged(PatientsMerged {
                        surviving_patient_id: "P1".into(),
                        retired_patient_id: "P2".into(),
                    }),
                ),
                "CHU-A",
                Some(NotRelated),
            ),
        ];
        for (what, event, org, expected) in cases {
            let mut rules = journey();
            assert_eq!(verdict(&mut rules, event, org), expected, "{what}");
        }
    }

    #[test]
    fn a_referent_assignment_opens_the_patient_to_its_organisation() {
        let mut rules = journey();
        assert_eq!(
            verdict(&mut rules, ev(30, "P1", "SSIAD-X", visit()), "SSIAD-X"),
            Some(Rule::NotRelated)
        );
        let referent = Payload::ReferentAssigned(ReferentAssigned {
            professional: Some(Professional {
                organisation: "SSIAD-X".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        // Only someone related to the patient names a referent.
        assert_eq!(
            verdict(
                &mut rules,
                ev(31, "P1", "SSIAD-X", referent.clone()),
                "SSIAD-X"
            ),
            Some(Rule::NotRelated)
        );
        assert_eq!(
            verdict(&mut rules, ev(32, "P1", "CHU-A", referent), "CHU-A"),
            None
        );
        assert_eq!(
            verdict(&mut rules, ev(33, "P1", "SSIAD-X", visit()), "SSIAD-X"),
            None
        );
    }

    #[test]
    fn a_refused_batch_teaches_nothing_and_a_batch_counts_its_own_events() {
        let mut rules = journey();
        // The admission would give CHU-C the facility and the patient, but the batch fails.
        let batch = [
            ev(40, "P5", "CHU-C", admitted("E9", "F-C")),
            ev(41, "P2", "CHU-C", visit()),
        ];
        let (index, refusal) = rules.admit_as(&batch, Some("CHU-C")).unwrap_err();
        assert_eq!((index, refusal.rule), (1, Rule::NotRelated));
        assert_eq!(
            verdict(&mut rules, ev(42, "P5", "CHU-C", visit()), "CHU-C"),
            Some(Rule::NotRelated)
        );
        // Registration then a visit in one batch: the second event sees the first.
        let batch = [
            ev(43, "P7", "CHU-C", registered("")),
            ev(44, "P7", "CHU-C", visit()),
        ];
        rules.admit_as(&batch, Some("CHU-C")).unwrap();
    }

    #[test]
    fn rights_are_rebuilt_from_the_log() {
        let stored = [
            ev(1, "P1", "CHU-A", admitted("E1", "F-A")),
            ev(2, "P1", "CHU-A", visit()),
        ];
        let mut restored = JourneyRules::default();
        for e in &stored {
            restored.restore(e);
        }
        // What the log's checkpoint keeps of them is the same state.
        let mut rules = JourneyRules::load(&restored.save()).expect("saved state loads");
        assert!(JourneyRules::load(b"not a state").is_none());
        assert_eq!(
            verdict(
                &mut rules,
                ev(3, "P2", "CHU-B", admitted("E2", "F-A")),
                "CHU-B"
            ),
            Some(Rule::NotYourFacility)
        );
        assert_eq!(
            verdict(&mut rules, ev(4, "P1", "CHU-A", visit()), "CHU-A"),
            None
        );
        // A trusted writer is not held to the rights.
        rules
            .admit(&[ev(5, "P1", "CHU-B", visit())])
            .expect("an admin writes about any patient");
    }
}
