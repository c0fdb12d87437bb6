//! Journey rules checked by the single writer (docs/design.md §3): movements of encounters,
//! cancellations, death and merges. State is kept per patient; a batch is staged on clones of the
//! touched patients and written back only when every event passes.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use journey_proto::v1::event::Payload;
use journey_proto::v1::{Disposition, Event, Setting};
use prost_types::Timestamp;

mod movements;
mod write_rights;

use movements::{Encounter, Kind, Movement, New};

/// A clinical time, (seconds, nanos).
type Instant = (i64, i32);

/// A journey rule of docs/design.md §3, as checked by [`JourneyRules`]. Each has a stable
/// snake_case [`code`](Rule::code) that clients may match on (the human message may change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// The patient was merged into another (or is already retired by a merge): nothing more is
    /// recorded on its stream. Code `patient_merged`.
    PatientMerged,
    /// A merge names the same patient as surviving and retired. Code `merge_into_itself`.
    MergeIntoItself,
    /// Nothing after death but cancellations, the death's own declaration and the closing of a
    /// stay (a discharge with disposition deceased): any other event that occurred after the
    /// patient's death. Code `nothing_after_death`.
    NothingAfterDeath,
    /// A second PatientDeceased for a patient already declared dead. Code `already_deceased`.
    AlreadyDeceased,
    /// An encounter id admitted a second time. Code `encounter_already_admitted`.
    EncounterAlreadyAdmitted,
    /// No second open inpatient stay: on admission, or when cancelling a discharge would re-open
    /// one. Code `second_open_inpatient_stay`.
    SecondOpenInpatientStay,
    /// No transfer or discharge without an open admission of that encounter. Code
    /// `no_open_admission`.
    NoOpenAdmission,
    /// No transfer or discharge before the encounter's admission. Code `before_admission`.
    BeforeAdmission,
    /// A cancellation names an event that is not a movement of this patient. Code
    /// `cancelled_event_unknown`.
    CancelledEventUnknown,
    /// A cancellation names a movement of another kind (e.g. a DischargeCancelled naming an
    /// admission). Code `cancelled_kind_mismatch`.
    CancelledKindMismatch,
    /// A cancellation names a movement already cancelled. Code `already_cancelled`.
    AlreadyCancelled,
    /// A cancellation names a movement that is not the latest live one of its encounter, and is
    /// not flagged historic (or names an admission whose later movements are still live). Code
    /// `not_latest_movement`.
    NotLatestMovement,
    /// A historic movement, or a corrected time, falls after the encounter's discharge. Code
    /// `after_discharge`.
    AfterDischarge,
    /// A correction names an event that is not a live movement of this patient. Code
    /// `corrected_event_unknown`.
    CorrectedEventUnknown,
    /// A correction sets a field the corrected movement does not have (a disposition on a
    /// transfer, a unit on a discharge…). Code `correction_mismatch`.
    CorrectionMismatch,
    /// Write rights: the writing organisation has no relationship with the patient. Code
    /// `not_related`.
    NotRelated,
    /// Write rights: a movement, letter or cancellation of an encounter another organisation
    /// opened. Code `not_your_encounter`.
    NotYourEncounter,
    /// Write rights: an admission or emergency visit at another organisation's facility. Code
    /// `not_your_facility`.
    NotYourFacility,
}

impl Rule {
    /// Every rule, in declaration order.
    pub const ALL: [Rule; 18] = [
        Rule::PatientMerged,
        Rule::MergeIntoItself,
        Rule::NothingAfterDeath,
        Rule::AlreadyDeceased,
        Rule::EncounterAlreadyAdmitted,
        Rule::SecondOpenInpatientStay,
        Rule::NoOpenAdmission,
        Rule::BeforeAdmission,
        Rule::CancelledEventUnknown,
        Rule::CancelledKindMismatch,
        Rule::AlreadyCancelled,
        Rule::NotLatestMovement,
        Rule::AfterDischarge,
        Rule::CorrectedEventUnknown,
        Rule::CorrectionMismatch,
        Rule::NotRelated,
        Rule::NotYourEncounter,
        Rule::NotYourFacility,
    ];

    /// The stable snake_case code of the rule (what a gRPC client reads in the error details).
    pub const fn code(self) -> &'static str {
        match self {
            Rule::PatientMerged => "patient_merged",
            Rule::MergeIntoItself => "merge_into_itself",
            Rule::NothingAfterDeath => "nothing_after_death",
            Rule::AlreadyDeceased => "already_deceased",
            Rule::EncounterAlreadyAdmitted => "encounter_already_admitted",
            Rule::SecondOpenInpatientStay => "second_open_inpatient_stay",
            Rule::NoOpenAdmission => "no_open_admission",
            Rule::BeforeAdmission => "before_admission",
            Rule::CancelledEventUnknown => "cancelled_event_unknown",
            Rule::CancelledKindMismatch => "cancelled_kind_mismatch",
            Rule::AlreadyCancelled => "already_cancelled",
            Rule::NotLatestMovement => "not_latest_movement",
            Rule::AfterDischarge => "after_discharge",
            Rule::CorrectedEventUnknown => "corrected_event_unknown",
            Rule::CorrectionMismatch => "correction_mismatch",
            Rule::NotRelated => "not_related",
            Rule::NotYourEncounter => "not_your_encounter",
            Rule::NotYourFacility => "not_your_facility",
        }
    }

    /// The rule with this [`code`](Rule::code).
    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }

    /// Whether the rule is a write right of the writing organisation (a refusal that is a
    /// permission, not a state of the journey).
    pub const fn is_write_right(self) -> bool {
        matches!(
            self,
            Rule::NotRelated | Rule::NotYourEncounter | Rule::NotYourFacility
        )
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Why the journey rules refused an event: the rule broken and a human message (displayed as is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
}

fn refuse(rule: Rule, message: String) -> Refusal {
    Refusal { rule, message }
}

/// The journey rules: per-patient state rebuilt from the log and checked on every append. Pure:
/// the server adapts it to the log's gate.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct JourneyRules {
    patients: HashMap<String, PatientState>,
    facilities: write_rights::Facilities,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Death {
    at: (i64, i32),
    /// Set by a PatientDeceased event (as opposed to a discharge with disposition deceased).
    declared: bool,
    /// The discharge that recorded the death, when that is where it came from.
    discharge_event_id: Option<String>,
}

/// What the rules remember of one patient.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct PatientState {
    movements: HashMap<String, Movement>,
    encounters: HashMap<String, Encounter>,
    death: Option<Death>,
    merged_into: Option<String>,
    /// Organisations with a relationship to the patient (`write_rights`).
    organisations: BTreeSet<String>,
    /// Whether the log holds any event of the patient.
    known: bool,
    /// Emergency visits (visit id → the organisation that recorded it): a class change may make
    /// one a stay.
    #[serde(default)]
    visits: BTreeMap<String, String>,
}

impl PatientState {
    fn is_new(&self) -> bool {
        !self.known
    }
}

fn key(t: Option<&Timestamp>) -> Instant {
    t.map_or((i64::MIN, 0), |t| (t.seconds, t.nanos))
}

fn is_cancellation(p: &Payload) -> bool {
    matches!(
        p,
        Payload::AdmissionCancelled(_)
            | Payload::TransferCancelled(_)
            | Payload::DischargeCancelled(_)
            | Payload::MovementCancelled(_)
            | Payload::MovementCorrected(_)
    )
}

/// What may still be recorded after a death (docs/design.md §3): cancellations; the closing of a
/// stay left open, by a discharge with disposition deceased (the discharge rules still apply: the
/// encounter must be open, the discharge not before its admission); and the PatientDeceased of a
/// death so far known only from such a discharge (feeds send the two in either order).
fn allowed_after_death(p: &Payload, death: &Death) -> bool {
    match p {
        Payload::Discharged(d) => d.disposition == Disposition::Deceased as i32,
        Payload::PatientDeceased(_) => !death.declared,
        _ => is_cancellation(p),
    }
}

/// The patients an event touches besides its own stream.
fn other_patient(event: &Event) -> Option<&str> {
    match &event.payload {
        Some(Payload::PatientsMerged(m)) => Some(m.retired_patient_id.as_str()),
        _ => None,
    }
}

/// Checks (when `check`) and applies one event. `states` holds every patient the event touches.
fn step<'e>(
    states: &mut HashMap<String, PatientState>,
    event: &'e Event,
    check: bool,
) -> Result<(), Refusal> {
    let pid = event.patient_id.as_str();
    let Some(payload) = &event.payload else {
        return Ok(());
    };
    let at = key(event.occurred_at.as_ref());
    let st = states.entry(pid.to_owned()).or_default();
    if check {
        if let Some(into) = &st.merged_into {
            return Err(refuse(
                Rule::PatientMerged,
                format!("merged patient: patient {pid} was merged into {into}"),
            ));
        }
        if let Some(d) = &st.death {
            if !allowed_after_death(payload, d) && event.occurred_at.is_some() && at > d.at {
                let hint = if matches!(payload, Payload::Discharged(_)) {
                    " (a stay open at death closes with disposition deceased)"
                } else {
                    ""
                };
                return Err(refuse(
                    Rule::NothingAfterDeath,
                    format!(
                        "nothing after death: event occurred after the death of patient {pid}{hint}"
                    ),
                ));
            }
        }
    }
    let new = |encounter_id: &'e str, kind: Kind, historic: bool| New {
        event_id: &event.event_id,
        encounter_id,
        kind,
        at,
        position: event.position,
        historic,
        setting: 0,
        disposition: 0,
    };
    match payload {
        Payload::Admitted(a) => {
            let organisation = event.actor.as_ref().map_or("", |a| a.organisation.as_str());
            let m = New {
                setting: a.setting,
                ..new(&a.encounter_id, Kind::Admission, false)
            };
            movements::admit(st, pid, m, organisation, check)?;
        }
        Payload::Transferred(t) => movements::movement(
            st,
            pid,
            new(&t.encounter_id, Kind::Transfer, t.historic),
            check,
        )?,
        Payload::LeaveStarted(l) => movements::movement(
            st,
            pid,
            new(&l.encounter_id, Kind::LeaveStart, l.historic),
            check,
        )?,
        Payload::LeaveEnded(l) => movements::movement(
            st,
            pid,
            new(&l.encounter_id, Kind::LeaveEnd, l.historic),
            check,
        )?,
        Payload::ClassChanged(c) => {
            let m = New {
                setting: c.setting,
                ..new(&c.encounter_id, Kind::ClassChange, c.historic)
            };
            let opens_visit = !st.encounters.contains_key(&c.encounter_id)
                && st.visits.contains_key(&c.encounter_id)
                && c.setting != Setting::Outpatient as i32;
            if opens_visit {
                if check && c.facility.as_ref().is_none_or(|f| f.id.is_empty()) {
                    return Err(refuse(
                        Rule::NoOpenAdmission,
                        format!(
                            "class change without open admission: making emergency visit {} of patient {pid} a stay needs its facility (class_changed.facility)",
                            c.encounter_id
                        ),
                    ));
                }
                let organisation = event.actor.as_ref().map_or("", |a| a.organisation.as_str());
                movements::admit(st, pid, m, organisation, check)?;
            } else {
                movements::movement(st, pid, m, check)?;
            }
        }
        Payload::EmergencyVisit(v) => {
            let organisation = event.actor.as_ref().map_or("", |a| a.organisation.as_str());
            st.visits
                .entry(v.visit_id.clone())
                .or_insert_with(|| organisation.to_owned());
        }
        Payload::Discharged(d) => {
            let m = New {
                disposition: d.disposition,
                ..new(&d.encounter_id, Kind::Discharge, false)
            };
            movements::movement(st, pid, m, check)?;
            if d.disposition == Disposition::Deceased as i32 && st.death.is_none() {
                st.death = Some(Death {
                    at,
                    declared: false,
                    discharge_event_id: Some(event.event_id.clone()),
                });
            }
        }
        Payload::AdmissionCancelled(c) => movements::cancel(
            st,
            pid,
            &c.cancelled_event_id,
            &[Kind::Admission],
            c.historic,
            check,
        )?,
        Payload::TransferCancelled(c) => movements::cancel(
            st,
            pid,
            &c.cancelled_event_id,
            &[Kind::Transfer],
            c.historic,
            check,
        )?,
        Payload::DischargeCancelled(c) => movements::cancel(
            st,
            pid,
            &c.cancelled_event_id,
            &[Kind::Discharge],
            c.historic,
            check,
        )?,
        Payload::MovementCancelled(c) => movements::cancel(
            st,
            pid,
            &c.cancelled_event_id,
            &[Kind::LeaveStart, Kind::LeaveEnd, Kind::ClassChange],
            c.historic,
            check,
        )?,
        Payload::MovementCorrected(c) => movements::correct(st, pid, c, check)?,
        Payload::PatientDeceased(d) => {
            if check && st.death.as_ref().is_some_and(|d| d.declared) {
                return Err(refuse(
                    Rule::AlreadyDeceased,
                    format!("second death: patient {pid} is already deceased"),
                ));
            }
            let died = d.died_at.as_ref().map_or(at, |t| (t.seconds, t.nanos));
            st.death = Some(Death {
                at: died,
                declared: true,
                discharge_event_id: None,
            });
        }
        Payload::PatientsMerged(m) => {
            let retired = m.retired_patient_id.clone();
            let surviving = pid.to_owned();
            let r = states.entry(retired.clone()).or_default();
            if check {
                if let Some(into) = &r.merged_into {
                    return Err(refuse(
                        Rule::PatientMerged,
                        format!("merged patient: patient {retired} was merged into {into}"),
                    ));
                }
                if retired == surviving {
                    return Err(refuse(
                        Rule::MergeIntoItself,
                        format!("merged patient: patient {retired} cannot be merged into itself"),
                    ));
                }
            }
            r.merged_into = Some(surviving);
        }
        _ => {}
    }
    Ok(())
}

impl JourneyRules {
    /// Checks new events (envelopes complete: version, position and recorded time assigned)
    /// against the current state and, only if every one passes, applies them. On `Err` (the index
    /// of the first event at fault and why) nothing changed. A trusted writer's batch: no write
    /// rights apply ([`admit_as`](Self::admit_as)).
    pub fn admit(&mut self, events: &[Event]) -> Result<(), (usize, Refusal)> {
        self.admit_as(events, None)
    }

    /// [`admit`](Self::admit), for `writer`: the organisation of a partner whose write rights
    /// (`write_rights`) the batch must respect; `None` for a trusted writer.
    pub fn admit_as(
        &mut self,
        events: &[Event],
        writer: Option<&str>,
    ) -> Result<(), (usize, Refusal)> {
        let mut staged: HashMap<String, PatientState> = HashMap::new();
        let mut claimed = write_rights::Facilities::new();
        for (index, event) in events.iter().enumerate() {
            for pid in std::iter::once(event.patient_id.as_str()).chain(other_patient(event)) {
                if !staged.contains_key(pid) {
                    let base = self.patients.get(pid).cloned().unwrap_or_default();
                    staged.insert(pid.to_owned(), base);
                }
            }
            if let Some(writer) = writer {
                let owner = |f: &str| claimed.get(f).or(self.facilities.get(f)).cloned();
                write_rights::check(&staged, owner, event, writer)
                    .map_err(|refusal| (index, refusal))?;
            }
            step(&mut staged, event, true).map_err(|refusal| (index, refusal))?;
            let facilities = &self.facilities;
            learn(&mut staged, event, |facility, org| {
                if !facilities.contains_key(facility) {
                    claimed.entry(facility.into()).or_insert_with(|| org.into());
                }
            });
        }
        self.patients.extend(staged);
        self.facilities.extend(claimed);
        Ok(())
    }

    /// The whole state, as bytes (kept with the log's checkpoint, read back by [`load`](Self::load)
    /// of the same program).
    pub fn save(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("the rules' state serialises")
    }

    /// The state [`save`](Self::save) made; `None` when the bytes are not one.
    pub fn load(bytes: &[u8]) -> Option<JourneyRules> {
        postcard::from_bytes(bytes).ok()
    }

    /// Applies an event already in the log (state rebuilt at start). Never refuses: what the rules
    /// would refuse today is applied as far as it can be.
    pub fn restore(&mut self, event: &Event) {
        let _ = step(&mut self.patients, event, false);
        let facilities = &mut self.facilities;
        learn(&mut self.patients, event, |facility, org| {
            facilities
                .entry(facility.into())
                .or_insert_with(|| org.into());
        });
    }
}

/// Remembers that the log holds an event of the patient, and what it teaches of its
/// relationships and of facilities (`claim`: a facility's first organisation).
fn learn(
    states: &mut HashMap<String, PatientState>,
    event: &Event,
    claim: impl FnOnce(&str, &str),
) {
    if let Some(st) = states.get_mut(event.patient_id.as_str()) {
        st.known = true;
        write_rights::learn(st, event, claim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{
        AdmissionCancelled, AdmitType, Admitted, ClassChanged, DischargeCancelled, Discharged,
        EmergencyVisit, HomeVisitRecorded, LeaveEnded, LeaveStarted, MovementCancelled,
        MovementCorrected, PatientDeceased, PatientsMerged, Setting, TransferCancelled,
        Transferred,
    };

    const DAY: i64 = 86_400;

    fn id(n: u32) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    fn ev(n: u32, patient: &str, day: i64, payload: Payload) -> Event {
        Event {
            event_id: id(n),
            patient_id: patient.into(),
            occurred_at: Some(Timestamp {
                seconds: 1_700_000_000 + day * DAY,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn admit_p(enc: &str, setting: Setting) -> Payload {
        Payload::Admitted(Admitted {
            encounter_id: enc.into(),
            setting: setting as i32,
            admit_type: AdmitType::Emergency as i32,
            ..Default::default()
        })
    }
    fn discharge_p(enc: &str, d: Disposition) -> Payload {
        Payload::Discharged(Discharged {
            encounter_id: enc.into(),
            disposition: d as i32,
            ..Default::default()
        })
    }
    fn transfer_p(enc: &str) -> Payload {
        Payload::Transferred(Transferred {
            encounter_id: enc.into(),
            ..Default::default()
        })
    }
    fn visit() -> Payload {
        Payload::HomeVisitRecorded(HomeVisitRecorded::default())
    }
    fn cancel_adm(n: u32) -> Payload {
        Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id: id(n),
            ..Default::default()
        })
    }
    fn cancel_tr(n: u32) -> Payload {
        Payload::TransferCancelled(TransferCancelled {
            cancelled_event_id: id(n),
            ..Default::default()
        })
    }
    fn cancel_dis(n: u32) -> Payload {
        Payload::DischargeCancelled(DischargeCancelled {
            cancelled_event_id: id(n),
            ..Default::default()
        })
    }
    fn deceased(day: Option<i64>) -> Payload {
        Payload::PatientDeceased(PatientDeceased {
            died_at: day.map(|d| Timestamp {
                seconds: 1_700_000_000 + d * DAY,
                nanos: 0,
            }),
        })
    }

    /// Given: the events restored from the log.
    fn given(events: &[Event]) -> JourneyRules {
        let mut r = JourneyRules::default();
        for e in events {
            r.restore(e);
        }
        r
    }

    fn refused(r: &mut JourneyRules, events: &[Event], index: usize, rule: Rule, needle: &str) {
        let before = snapshot(r);
        let (at, refusal) = r.admit(events).expect_err("should be refused");
        assert_eq!(at, index, "{refusal:?}");
        assert_eq!(refusal.rule, rule, "{refusal:?}");
        assert!(
            refusal.message.contains(needle),
            "message {:?} lacks {needle:?}",
            refusal.message
        );
        assert_eq!(refusal.to_string(), refusal.message);
        assert_eq!(snapshot(r), before, "a refused batch changed the state");
    }

    /// The state, in a comparable form.
    fn snapshot(r: &JourneyRules) -> Vec<(String, String)> {
        let mut v: Vec<_> = r
            .patients
            .iter()
            .map(|(k, s)| (k.clone(), format!("{s:?}")))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn admission_then_discharge_is_accepted() {
        let mut r = given(&[]);
        r.admit(&[ev(1, "p1", 0, admit_p("e1", Setting::Inpatient))])
            .unwrap();
        r.admit(&[ev(2, "p1", 1, transfer_p("e1"))]).unwrap();
        r.admit(&[ev(3, "p1", 2, discharge_p("e1", Disposition::Home))])
            .unwrap();
    }

    #[test]
    fn discharge_without_open_admission_is_refused() {
        let mut r = given(&[]);
        refused(
            &mut r,
            &[ev(1, "p1", 0, discharge_p("e1", Disposition::Home))],
            0,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
        ]);
        refused(
            &mut r,
            &[ev(3, "p1", 2, discharge_p("e1", Disposition::Home))],
            0,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
    }

    #[test]
    fn transfer_without_open_admission_is_refused() {
        let mut r = given(&[]);
        refused(
            &mut r,
            &[ev(1, "p1", 0, transfer_p("e1"))],
            0,
            Rule::NoOpenAdmission,
            "transfer without open admission",
        );
    }

    #[test]
    fn second_open_inpatient_stay_is_refused() {
        let mut r = given(&[ev(1, "p1", 0, admit_p("e1", Setting::Inpatient))]);
        refused(
            &mut r,
            &[ev(2, "p1", 1, admit_p("e2", Setting::Inpatient))],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
    }

    #[test]
    fn non_inpatient_stay_alongside_inpatient_is_accepted() {
        let mut r = given(&[ev(1, "p1", 0, admit_p("e1", Setting::Inpatient))]);
        r.admit(&[ev(2, "p1", 1, admit_p("e2", Setting::DaySurgery))])
            .unwrap();
        // another patient is independent
        r.admit(&[ev(3, "p2", 1, admit_p("e3", Setting::Inpatient))])
            .unwrap();
    }

    #[test]
    fn inpatient_after_discharge_is_accepted() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
        ]);
        r.admit(&[ev(3, "p1", 2, admit_p("e2", Setting::Inpatient))])
            .unwrap();
    }

    #[test]
    fn encounter_admitted_twice_is_refused() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
        ]);
        refused(
            &mut r,
            &[ev(3, "p1", 2, admit_p("e1", Setting::Inpatient))],
            0,
            Rule::EncounterAlreadyAdmitted,
            "encounter admitted twice",
        );
    }

    #[test]
    fn discharge_before_admission_is_refused() {
        let mut r = given(&[ev(1, "p1", 5, admit_p("e1", Setting::Inpatient))]);
        refused(
            &mut r,
            &[ev(2, "p1", 4, discharge_p("e1", Disposition::Home))],
            0,
            Rule::BeforeAdmission,
            "discharge before admission",
        );
        refused(
            &mut r,
            &[ev(2, "p1", 4, transfer_p("e1"))],
            0,
            Rule::BeforeAdmission,
            "transfer before admission",
        );
        // same instant is fine
        r.admit(&[ev(3, "p1", 5, discharge_p("e1", Disposition::Home))])
            .unwrap();
    }

    #[test]
    fn cancelling_latest_movements_is_accepted() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, transfer_p("e1")),
            ev(3, "p1", 2, discharge_p("e1", Disposition::Home)),
        ]);
        r.admit(&[ev(4, "p1", 3, cancel_dis(3))]).unwrap();
        r.admit(&[ev(5, "p1", 3, cancel_tr(2))]).unwrap();
        r.admit(&[ev(6, "p1", 3, cancel_adm(1))]).unwrap();
        // the encounter is gone: it may be admitted again, and cannot be discharged
        refused(
            &mut r,
            &[ev(7, "p1", 4, discharge_p("e1", Disposition::Home))],
            0,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
        r.admit(&[ev(8, "p1", 4, admit_p("e1", Setting::Inpatient))])
            .unwrap();
    }

    #[test]
    fn cancelling_an_unknown_event_is_refused() {
        let mut r = given(&[ev(1, "p1", 0, admit_p("e1", Setting::Inpatient))]);
        refused(
            &mut r,
            &[ev(2, "p1", 1, cancel_adm(99))],
            0,
            Rule::CancelledEventUnknown,
            "not a movement of patient p1",
        );
        // an event of another patient does not exist for this one
        refused(
            &mut r,
            &[ev(2, "p2", 1, cancel_adm(1))],
            0,
            Rule::CancelledEventUnknown,
            "not a movement of patient p2",
        );
    }

    #[test]
    fn cancelling_the_wrong_type_is_refused() {
        let mut r = given(&[ev(1, "p1", 0, admit_p("e1", Setting::Inpatient))]);
        refused(
            &mut r,
            &[ev(2, "p1", 1, cancel_dis(1))],
            0,
            Rule::CancelledKindMismatch,
            "is an admission, not a discharge",
        );
        refused(
            &mut r,
            &[ev(2, "p1", 1, cancel_tr(1))],
            0,
            Rule::CancelledKindMismatch,
            "transfer cancellation",
        );
    }

    #[test]
    fn cancelling_twice_is_refused() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, transfer_p("e1")),
            ev(3, "p1", 2, cancel_tr(2)),
        ]);
        refused(
            &mut r,
            &[ev(4, "p1", 3, cancel_tr(2))],
            0,
            Rule::AlreadyCancelled,
            "already cancelled",
        );
    }

    #[test]
    fn cancelling_other_than_the_latest_movement_is_refused() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, transfer_p("e1")),
        ]);
        refused(
            &mut r,
            &[ev(3, "p1", 2, cancel_adm(1))],
            0,
            Rule::NotLatestMovement,
            "not the latest movement",
        );
    }

    #[test]
    fn cancelling_a_discharge_reopens_the_encounter() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
            ev(3, "p1", 2, cancel_dis(2)),
        ]);
        refused(
            &mut r,
            &[ev(4, "p1", 3, admit_p("e2", Setting::Inpatient))],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
        r.admit(&[ev(5, "p1", 3, discharge_p("e1", Disposition::Home))])
            .unwrap();
    }

    #[test]
    fn cancelling_a_discharge_that_would_make_a_second_inpatient_stay_is_refused() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
            ev(3, "p1", 2, admit_p("e2", Setting::Inpatient)),
        ]);
        refused(
            &mut r,
            &[ev(4, "p1", 3, cancel_dis(2))],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
    }

    #[test]
    fn batch_is_all_or_nothing() {
        let mut r = given(&[]);
        // given a batch whose second event breaks a rule
        let batch = [
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p2", 0, admit_p("e2", Setting::Inpatient)),
            ev(3, "p1", 1, admit_p("e3", Setting::Inpatient)),
        ];
        refused(
            &mut r,
            &batch[..],
            2,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
        let batch = [
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("zz", Disposition::Home)),
        ];
        refused(
            &mut r,
            &batch,
            1,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
        // then the first was not applied: e1 is not open and may be admitted
        refused(
            &mut r,
            &[ev(4, "p1", 1, discharge_p("e1", Disposition::Home))],
            0,
            Rule::NoOpenAdmission,
            "not open",
        );
        r.admit(&[ev(1, "p1", 0, admit_p("e1", Setting::Inpatient))])
            .unwrap();
    }

    #[test]
    fn batch_events_of_one_patient_apply_in_order() {
        let mut r = given(&[]);
        r.admit(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
            ev(3, "p1", 2, admit_p("e2", Setting::Inpatient)),
            ev(4, "p2", 2, admit_p("e3", Setting::Inpatient)),
        ])
        .unwrap();
        refused(
            &mut r,
            &[ev(5, "p1", 3, admit_p("e4", Setting::Inpatient))],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
        refused(
            &mut r,
            &[ev(5, "p2", 3, admit_p("e5", Setting::Inpatient))],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
    }

    #[test]
    fn death_rule() {
        // given a patient who died on day 10, the death recorded on day 12
        let mut r = given(&[ev(1, "p1", 12, deceased(Some(10)))]);
        // a visit that occurred before death but is recorded later is accepted
        r.admit(&[ev(2, "p1", 9, visit())]).unwrap();
        r.admit(&[ev(3, "p1", 10, visit())]).unwrap();
        // anything after death is refused
        refused(
            &mut r,
            &[ev(4, "p1", 11, visit())],
            0,
            Rule::NothingAfterDeath,
            "nothing after death",
        );
        // a second death is refused
        refused(
            &mut r,
            &[ev(5, "p1", 9, deceased(Some(9)))],
            0,
            Rule::AlreadyDeceased,
            "second death",
        );
    }

    #[test]
    fn death_without_died_at_uses_occurred_at() {
        let mut r = given(&[ev(1, "p1", 10, deceased(None))]);
        refused(
            &mut r,
            &[ev(2, "p1", 11, admit_p("e1", Setting::Inpatient))],
            0,
            Rule::NothingAfterDeath,
            "nothing after death",
        );
    }

    #[test]
    fn cancellation_after_death_is_accepted() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, transfer_p("e1")),
            ev(3, "p1", 5, deceased(Some(5))),
        ]);
        r.admit(&[ev(4, "p1", 20, cancel_tr(2))]).unwrap();
    }

    #[test]
    fn discharge_deceased_counts_as_death() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 3, discharge_p("e1", Disposition::Deceased)),
        ]);
        refused(
            &mut r,
            &[ev(3, "p1", 4, visit())],
            0,
            Rule::NothingAfterDeath,
            "nothing after death",
        );
        // the PatientDeceased itself is still accepted at the time of death
        r.admit(&[ev(4, "p1", 3, deceased(Some(3)))]).unwrap();
    }

    #[test]
    fn death_then_discharge_deceased_closes_the_stay() {
        // given a patient admitted on day 0 who died in hospital on day 5, the death sent first
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 5, deceased(Some(5))),
        ]);
        // the discharge (disposition deceased) recorded after the death closes the stay
        r.admit(&[ev(3, "p1", 6, discharge_p("e1", Disposition::Deceased))])
            .unwrap();
        assert!(!r.patients["p1"].encounters["e1"].open);
        // and the stay is closed once only
        refused(
            &mut r,
            &[ev(4, "p1", 7, discharge_p("e1", Disposition::Deceased))],
            0,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
        // anything else after death is still refused
        refused(
            &mut r,
            &[ev(5, "p1", 7, visit())],
            0,
            Rule::NothingAfterDeath,
            "nothing after death",
        );
        refused(
            &mut r,
            &[ev(6, "p1", 7, admit_p("e2", Setting::Inpatient))],
            0,
            Rule::NothingAfterDeath,
            "nothing after death",
        );
    }

    #[test]
    fn death_then_discharge_other_than_deceased_is_refused() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 5, deceased(Some(5))),
        ]);
        for disposition in [
            Disposition::Home,
            Disposition::HomeWithHad,
            Disposition::OtherAcuteHospital,
            Disposition::Unspecified,
        ] {
            refused(
                &mut r,
                &[ev(3, "p1", 6, discharge_p("e1", disposition))],
                0,
                Rule::NothingAfterDeath,
                "closes with disposition deceased",
            );
        }
        // the stay is still open: the deceased discharge closes it
        r.admit(&[ev(4, "p1", 6, discharge_p("e1", Disposition::Deceased))])
            .unwrap();
    }

    #[test]
    fn death_then_discharge_deceased_still_needs_an_open_stay() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, discharge_p("e1", Disposition::Home)),
            ev(3, "p1", 5, deceased(Some(5))),
        ]);
        refused(
            &mut r,
            &[ev(4, "p1", 6, discharge_p("e1", Disposition::Deceased))],
            0,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
        refused(
            &mut r,
            &[ev(4, "p1", 6, discharge_p("zz", Disposition::Deceased))],
            0,
            Rule::NoOpenAdmission,
            "discharge without open admission",
        );
    }

    #[test]
    fn death_and_deceased_discharge_in_one_batch_either_order() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p2", 0, admit_p("e2", Setting::Inpatient)),
        ]);
        r.admit(&[
            ev(3, "p1", 5, deceased(Some(5))),
            ev(4, "p1", 6, discharge_p("e1", Disposition::Deceased)),
        ])
        .unwrap();
        r.admit(&[
            ev(5, "p2", 6, discharge_p("e2", Disposition::Deceased)),
            ev(6, "p2", 7, deceased(Some(5))),
        ])
        .unwrap();
        for (n, p) in [(7, "p1"), (8, "p2")] {
            refused(
                &mut r,
                &[ev(n, p, 8, visit())],
                0,
                Rule::NothingAfterDeath,
                "nothing after death",
            );
        }
    }

    #[test]
    fn discharge_deceased_then_death_declared_later_is_accepted() {
        // given a stay closed by a discharge with disposition deceased on day 3
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 3, discharge_p("e1", Disposition::Deceased)),
        ]);
        // the PatientDeceased recorded the next day (death at the time of discharge) is accepted
        r.admit(&[ev(3, "p1", 4, deceased(Some(3)))]).unwrap();
        // once declared, a second death is refused, and nothing else follows
        refused(
            &mut r,
            &[ev(4, "p1", 3, deceased(Some(3)))],
            0,
            Rule::AlreadyDeceased,
            "second death",
        );
        refused(
            &mut r,
            &[ev(5, "p1", 5, visit())],
            0,
            Rule::NothingAfterDeath,
            "nothing after death",
        );
    }

    #[test]
    fn cancelling_a_deceased_discharge_lifts_the_death() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 3, discharge_p("e1", Disposition::Deceased)),
            ev(3, "p1", 4, cancel_dis(2)),
        ]);
        r.admit(&[ev(4, "p1", 5, discharge_p("e1", Disposition::Home))])
            .unwrap();
    }

    #[test]
    fn merged_patient_is_refused() {
        let merge = Payload::PatientsMerged(PatientsMerged {
            surviving_patient_id: "p1".into(),
            retired_patient_id: "p2".into(),
        });
        let mut r = given(&[ev(1, "p2", 0, visit())]);
        r.admit(&[ev(2, "p1", 1, merge.clone())]).unwrap();
        refused(
            &mut r,
            &[ev(3, "p2", 2, visit())],
            0,
            Rule::PatientMerged,
            "patient p2 was merged into p1",
        );
        refused(
            &mut r,
            &[ev(
                4,
                "p3",
                2,
                Payload::PatientsMerged(PatientsMerged {
                    surviving_patient_id: "p3".into(),
                    retired_patient_id: "p2".into(),
                }),
            )],
            0,
            Rule::PatientMerged,
            "patient p2 was merged into p1",
        );
        // the survivor carries on
        r.admit(&[ev(5, "p1", 2, visit())]).unwrap();
    }

    #[test]
    fn merge_into_itself_is_refused() {
        let mut r = given(&[]);
        refused(
            &mut r,
            &[ev(
                1,
                "p1",
                0,
                Payload::PatientsMerged(PatientsMerged {
                    surviving_patient_id: "p1".into(),
                    retired_patient_id: "p1".into(),
                }),
            )],
            0,
            Rule::MergeIntoItself,
            "cannot be merged into itself",
        );
    }

    #[test]
    fn rule_codes_are_distinct_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for rule in Rule::ALL {
            let code = rule.code();
            assert!(seen.insert(code), "{code} used twice");
            assert!(
                !code.is_empty()
                    && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    && !code.starts_with('_')
                    && !code.ends_with('_'),
                "{code} is not snake_case"
            );
            assert_eq!(rule.to_string(), code);
        }
    }

    #[test]
    fn merge_in_a_refused_batch_is_not_applied() {
        let merge = Payload::PatientsMerged(PatientsMerged {
            surviving_patient_id: "p1".into(),
            retired_patient_id: "p2".into(),
        });
        let mut r = given(&[]);
        refused(
            &mut r,
            &[ev(1, "p1", 0, merge), ev(2, "p1", 0, transfer_p("x"))],
            1,
            Rule::NoOpenAdmission,
            "transfer without",
        );
        r.admit(&[ev(3, "p2", 1, visit())]).unwrap();
    }

    #[test]
    fn merge_applies_within_the_batch() {
        let merge = Payload::PatientsMerged(PatientsMerged {
            surviving_patient_id: "p1".into(),
            retired_patient_id: "p2".into(),
        });
        let mut r = given(&[]);
        refused(
            &mut r,
            &[ev(1, "p1", 0, merge), ev(2, "p2", 0, visit())],
            1,
            Rule::PatientMerged,
            "was merged into p1",
        );
    }

    #[test]
    fn restore_applies_without_checks() {
        // given a log holding what the rules would refuse, restore never fails
        let r = given(&[
            ev(1, "p1", 0, discharge_p("e1", Disposition::Home)),
            ev(2, "p1", 0, admit_p("e2", Setting::Inpatient)),
            ev(3, "p1", 0, admit_p("e3", Setting::Inpatient)),
            ev(4, "p1", 0, cancel_adm(77)),
        ]);
        assert_eq!(r.patients["p1"].encounters.len(), 2);
    }

    // --- historic movements (IHE PAM-FR ZBE-5 = Y), corrections (Z99), leaves, class changes ---

    fn historic_transfer(enc: &str) -> Payload {
        Payload::Transferred(Transferred {
            encounter_id: enc.into(),
            historic: true,
            ..Default::default()
        })
    }
    fn historic_cancel_tr(n: u32) -> Payload {
        Payload::TransferCancelled(TransferCancelled {
            cancelled_event_id: id(n),
            historic: true,
        })
    }
    fn correct(n: u32, day: Option<i64>, disposition: Option<Disposition>) -> Payload {
        Payload::MovementCorrected(MovementCorrected {
            corrected_event_id: id(n),
            moved_at: day.map(|d| Timestamp {
                seconds: 1_700_000_000 + d * DAY,
                nanos: 0,
            }),
            disposition: disposition.map_or(0, |d| d as i32),
            ..Default::default()
        })
    }
    fn stay_with_transfers() -> JourneyRules {
        // admitted day 0, transfers days 1 and 2, discharged day 5
        given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, transfer_p("e1")),
            ev(3, "p1", 2, transfer_p("e1")),
            ev(4, "p1", 5, discharge_p("e1", Disposition::Home)),
        ])
    }

    #[test]
    fn a_past_transfer_is_cancelled_only_when_flagged_historic() {
        let mut r = stay_with_transfers();
        refused(
            &mut r,
            &[ev(5, "p1", 6, cancel_tr(2))],
            0,
            Rule::NotLatestMovement,
            "flagged historic",
        );
        r.admit(&[ev(5, "p1", 6, historic_cancel_tr(2))]).unwrap();
        // the stay stays closed: nothing re-opened
        assert!(!r.patients["p1"].encounters["e1"].open);
        refused(
            &mut r,
            &[ev(6, "p1", 6, historic_cancel_tr(2))],
            0,
            Rule::AlreadyCancelled,
            "already cancelled",
        );
    }

    #[test]
    fn a_forgotten_transfer_is_inserted_within_a_closed_stay_only() {
        let mut r = stay_with_transfers();
        // not flagged historic: the stay is closed
        refused(
            &mut r,
            &[ev(5, "p1", 3, transfer_p("e1"))],
            0,
            Rule::NoOpenAdmission,
            "not open",
        );
        refused(
            &mut r,
            &[ev(5, "p1", 7, historic_transfer("e1"))],
            0,
            Rule::AfterDischarge,
            "after its discharge",
        );
        refused(
            &mut r,
            &[ev(5, "p1", -1, historic_transfer("e1"))],
            0,
            Rule::BeforeAdmission,
            "before its admission",
        );
        r.admit(&[ev(5, "p1", 3, historic_transfer("e1"))]).unwrap();
        // the discharge is still the latest movement: a plain cancellation of it is accepted
        r.admit(&[ev(6, "p1", 8, cancel_dis(4))]).unwrap();
        assert!(r.patients["p1"].encounters["e1"].open);
    }

    #[test]
    fn an_admission_is_cancelled_after_its_later_movements() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::Inpatient)),
            ev(2, "p1", 1, transfer_p("e1")),
        ]);
        let historic_cancel_adm = Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id: id(1),
            historic: true,
        });
        refused(
            &mut r,
            &[ev(3, "p1", 2, historic_cancel_adm.clone())],
            0,
            Rule::NotLatestMovement,
            "cancel its later movements first",
        );
        r.admit(&[
            ev(3, "p1", 2, historic_cancel_tr(2)),
            ev(4, "p1", 2, historic_cancel_adm),
        ])
        .unwrap();
        assert!(r.patients["p1"].encounters.is_empty());
    }

    #[test]
    fn a_correction_keeps_the_movements_in_order() {
        let mut r = stay_with_transfers();
        // the discharge moved before a transfer, the admission after one: refused
        refused(
            &mut r,
            &[ev(5, "p1", 6, correct(4, Some(1), None))],
            0,
            Rule::AfterDischarge,
            "out of order",
        );
        refused(
            &mut r,
            &[ev(5, "p1", 6, correct(1, Some(3), None))],
            0,
            Rule::BeforeAdmission,
            "out of order",
        );
        refused(
            &mut r,
            &[ev(5, "p1", 6, correct(2, None, Some(Disposition::Home)))],
            0,
            Rule::CorrectionMismatch,
            "has no disposition",
        );
        refused(
            &mut r,
            &[ev(5, "p1", 6, correct(99, Some(1), None))],
            0,
            Rule::CorrectedEventUnknown,
            "not a live movement",
        );
        // the discharge a day later, deceased: the death moves with it
        r.admit(&[ev(
            5,
            "p1",
            6,
            correct(4, Some(6), Some(Disposition::Deceased)),
        )])
        .unwrap();
        let death = r.patients["p1"].death.as_ref().expect("a death");
        assert_eq!(death.at.0, 1_700_000_000 + 6 * DAY);
        // corrected back to home: no death
        r.admit(&[ev(6, "p1", 7, correct(4, None, Some(Disposition::Home)))])
            .unwrap();
        assert!(r.patients["p1"].death.is_none());
    }

    #[test]
    fn leaves_and_class_changes_are_movements_of_an_open_stay() {
        let mut r = given(&[
            ev(1, "p1", 0, admit_p("e1", Setting::DaySurgery)),
            ev(2, "p1", 0, admit_p("e2", Setting::Inpatient)),
        ]);
        let leave = Payload::LeaveStarted(LeaveStarted {
            encounter_id: "e2".into(),
            ..Default::default()
        });
        let back = Payload::LeaveEnded(LeaveEnded {
            encounter_id: "e2".into(),
            ..Default::default()
        });
        r.admit(&[ev(3, "p1", 1, leave), ev(4, "p1", 2, back)])
            .unwrap();
        // the leave is not the latest movement any more
        let cancel_leave = |historic| {
            Payload::MovementCancelled(MovementCancelled {
                cancelled_event_id: id(3),
                historic,
            })
        };
        refused(
            &mut r,
            &[ev(5, "p1", 3, cancel_leave(false))],
            0,
            Rule::NotLatestMovement,
            "not the latest movement",
        );
        // a MovementCancelled names a leave or class change, not a transfer-like movement
        refused(
            &mut r,
            &[ev(
                5,
                "p1",
                3,
                Payload::MovementCancelled(MovementCancelled {
                    cancelled_event_id: id(2),
                    historic: true,
                }),
            )],
            0,
            Rule::CancelledKindMismatch,
            "is an admission, not a leave of absence or a return from leave or a class change",
        );
        r.admit(&[ev(5, "p1", 3, cancel_leave(true))]).unwrap();
        // the day case becoming inpatient would be a second open inpatient stay
        let to_inpatient = Payload::ClassChanged(ClassChanged {
            encounter_id: "e1".into(),
            setting: Setting::Inpatient as i32,
            ..Default::default()
        });
        refused(
            &mut r,
            &[ev(6, "p1", 3, to_inpatient.clone())],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
        r.admit(&[
            ev(6, "p1", 3, discharge_p("e2", Disposition::Home)),
            ev(7, "p1", 3, to_inpatient),
        ])
        .unwrap();
        assert!(r.patients["p1"].encounters["e1"].inpatient);
        // its cancellation makes it a day case again
        r.admit(&[ev(
            8,
            "p1",
            4,
            Payload::MovementCancelled(MovementCancelled {
                cancelled_event_id: id(7),
                historic: false,
            }),
        )])
        .unwrap();
        assert!(!r.patients["p1"].encounters["e1"].inpatient);
    }

    #[test]
    fn a_class_change_makes_an_emergency_visit_a_stay() {
        let visit = Payload::EmergencyVisit(EmergencyVisit {
            visit_id: "v1".into(),
            ..Default::default()
        });
        let to = |setting: Setting| {
            Payload::ClassChanged(ClassChanged {
                encounter_id: "v1".into(),
                setting: setting as i32,
                facility: Some(journey_proto::v1::Facility {
                    id: "F1".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        let mut r = given(&[
            ev(1, "p1", 0, visit),
            ev(2, "p1", 0, admit_p("e2", Setting::Inpatient)),
        ]);
        // no class change of an encounter nobody opened
        refused(
            &mut r,
            &[ev(
                3,
                "p1",
                1,
                Payload::ClassChanged(ClassChanged {
                    encounter_id: "nowhere".into(),
                    setting: Setting::Inpatient as i32,
                    ..Default::default()
                }),
            )],
            0,
            Rule::NoOpenAdmission,
            "not open",
        );
        // the stay opens at a facility
        refused(
            &mut r,
            &[ev(
                3,
                "p1",
                1,
                Payload::ClassChanged(ClassChanged {
                    encounter_id: "v1".into(),
                    setting: Setting::Inpatient as i32,
                    ..Default::default()
                }),
            )],
            0,
            Rule::NoOpenAdmission,
            "needs its facility",
        );
        // the visit turned inpatient would be a second open inpatient stay
        refused(
            &mut r,
            &[ev(3, "p1", 1, to(Setting::Inpatient))],
            0,
            Rule::SecondOpenInpatientStay,
            "second open inpatient stay",
        );
        r.admit(&[
            ev(3, "p1", 1, discharge_p("e2", Disposition::Home)),
            ev(4, "p1", 1, to(Setting::Inpatient)),
        ])
        .unwrap();
        assert!(r.patients["p1"].encounters["v1"].open);
        // the stay it opened is discharged like any
        r.admit(&[ev(5, "p1", 3, discharge_p("v1", Disposition::Home))])
            .unwrap();
        // its cancellation (A07, ZBE-4 = CANCEL), once the discharge is, closes the stay
        r.admit(&[
            ev(6, "p1", 4, cancel_dis(5)),
            ev(
                7,
                "p1",
                4,
                Payload::MovementCancelled(MovementCancelled {
                    cancelled_event_id: id(4),
                    historic: false,
                }),
            ),
        ])
        .unwrap();
        assert!(!r.patients["p1"].encounters.contains_key("v1"));
    }
}
