//! A patient's state "as of" a clinical time T, as known at a recording time R (bi-temporal,
//! docs/design.md §5 "Audit trail"). Pure: the events and both times come in, the state comes out.
//!
//! - An event counts when it was recorded by R (`recorded_at <= R`) and occurred by T
//!   (`occurred_at <= T`): a late event (occurred before T, recorded after R) is not known at R,
//!   and is listed in [`AsOf::known_later`] so an auditor sees what was learnt afterwards.
//! - A cancellation (admission, transfer, discharge) recorded by R undoes the event it names
//!   whatever its own clinical time: it says the cancelled movement never happened, so the state
//!   at T is folded as if that event did not exist. A cancellation recorded after R is not known
//!   at R, and the cancelled event still counts (the cancellation is then listed as known later
//!   when the event it names happened by T).
//! - A movement correction (PAM-FR Z99) recorded by R changes the movement it names (its clinical
//!   time, unit, class, disposition) before anything is folded, whatever its own clinical time.
//! - Events are folded in clinical order (occurred_at, then position), so a late-recorded older
//!   event never overrides a newer one (care plan, referent, consent), and a historic movement
//!   inserted late takes its place in the stay.
use journey_proto::v1::{
    event::Payload, AdmitType, AsOfAlert, AsOfCarePlan, AsOfConsent, AsOfReferent, AsOfResponse,
    AsOfStay, Disposition, Event, MovementCorrected,
};
use prost_types::Timestamp;
use std::collections::{BTreeMap, HashSet};

/// The state of one patient at clinical time T as known at recording time R.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AsOf {
    pub registered: bool,
    /// Stays admitted by T and not discharged by T, oldest admission first.
    pub open_stays: Vec<AsOfStay>,
    /// Stays admitted and discharged by T, oldest admission first.
    pub discharged_stays: Vec<AsOfStay>,
    /// The latest care plan established by T.
    pub care_plan: Option<AsOfCarePlan>,
    /// Alerts raised by T and not resolved by T, oldest first.
    pub open_alerts: Vec<AsOfAlert>,
    /// The latest referent of each role, by role.
    pub referents: Vec<AsOfReferent>,
    /// When the patient died, if a death is known (PatientDeceased or a discharge "deceased").
    pub died_at: Option<Timestamp>,
    /// One entry per consent scope, by scope.
    pub consents: Vec<AsOfConsent>,
    /// Patient ids merged into this one.
    pub merged_patient_ids: Vec<String>,
    /// Every event folded (cancellations that undid something included), in position order.
    pub used: Vec<String>,
    /// Events that occurred by T but were recorded after R, in position order.
    pub known_later: Vec<String>,
    /// Events undone by a cancellation known at R, in position order.
    pub cancelled: Vec<String>,
}

impl AsOf {
    /// The gRPC answer for `patient_id` at (T, R).
    pub fn into_response(
        self,
        patient_id: &str,
        clinical_time: Timestamp,
        recorded_time: Timestamp,
    ) -> AsOfResponse {
        AsOfResponse {
            patient_id: patient_id.to_owned(),
            clinical_time: Some(clinical_time),
            recorded_time: Some(recorded_time),
            registered: self.registered,
            open_stays: self.open_stays,
            discharged_stays: self.discharged_stays,
            care_plan: self.care_plan,
            open_alerts: self.open_alerts,
            referents: self.referents,
            deceased: self.died_at.is_some(),
            died_at: self.died_at,
            consents: self.consents,
            merged_patient_ids: self.merged_patient_ids,
            event_ids: self.used,
            known_later_event_ids: self.known_later,
            cancelled_event_ids: self.cancelled,
        }
    }
}

type Instant = (i64, i32);

fn key(t: &Timestamp) -> Instant {
    (t.seconds, t.nanos)
}

/// Log time of an event (an event read from the log always has one).
fn recorded(e: &Event) -> Instant {
    e.recorded_at.as_ref().map_or((i64::MIN, 0), key)
}

/// Clinical time of an event; an event without one happened when it was recorded.
fn occurred(e: &Event) -> Timestamp {
    e.occurred_at.or(e.recorded_at).unwrap_or(Timestamp {
        seconds: i64::MIN,
        nanos: 0,
    })
}

/// The event a cancellation undoes, if `e` is one.
fn cancels(e: &Event) -> Option<&str> {
    match e.payload.as_ref()? {
        Payload::AdmissionCancelled(c) => Some(&c.cancelled_event_id),
        Payload::TransferCancelled(c) => Some(&c.cancelled_event_id),
        Payload::DischargeCancelled(c) => Some(&c.cancelled_event_id),
        Payload::MovementCancelled(c) => Some(&c.cancelled_event_id),
        _ => None,
    }
}

/// The movement a correction changes, if `e` is one.
fn corrects(e: &Event) -> Option<&str> {
    match e.payload.as_ref()? {
        Payload::MovementCorrected(c) => Some(&c.corrected_event_id),
        _ => None,
    }
}

/// The events with the movement corrections recorded by `r` applied to the movements they name,
/// in position order (a later correction wins).
fn corrected(events: &[Event], r: Instant) -> Vec<Event> {
    let mut out: Vec<Event> = events.to_vec();
    out.sort_by_key(|e| e.position);
    let corrections: Vec<MovementCorrected> = out
        .iter()
        .filter(|e| recorded(e) <= r)
        .filter_map(|e| match &e.payload {
            Some(Payload::MovementCorrected(c)) => Some(c.clone()),
            _ => None,
        })
        .collect();
    for c in corrections {
        let Some(target) = out.iter_mut().find(|e| e.event_id == c.corrected_event_id) else {
            continue;
        };
        if c.moved_at.is_some() {
            target.occurred_at = c.moved_at;
        }
        match target.payload.as_mut() {
            Some(Payload::Admitted(a)) => {
                if !c.unit.is_empty() {
                    a.unit = c.unit.clone();
                }
                if c.setting != 0 {
                    a.setting = c.setting;
                }
            }
            Some(Payload::Transferred(t)) if !c.unit.is_empty() => t.to_unit = c.unit.clone(),
            Some(Payload::ClassChanged(x)) => {
                if !c.unit.is_empty() {
                    x.unit = c.unit.clone();
                }
                if c.setting != 0 {
                    x.setting = c.setting;
                }
            }
            Some(Payload::Discharged(d)) => {
                if c.disposition != 0 {
                    d.disposition = c.disposition;
                }
                if !c.destination_facility_id.is_empty() {
                    d.destination_facility_id = c.destination_facility_id.clone();
                }
            }
            _ => {}
        }
    }
    out
}

/// Folds one patient's events (any order) into the state at clinical time `clinical` as known at
/// recording time `recorded`.
pub fn as_of(events: &[Event], clinical: Timestamp, recorded_time: Timestamp) -> AsOf {
    let (t, r) = (key(&clinical), key(&recorded_time));
    let events = corrected(events, r);
    let by_position: Vec<&Event> = events.iter().collect();

    // Cancellations known at R, and what they undo.
    let cancellations: Vec<(&Event, &str)> = by_position
        .iter()
        .filter(|e| recorded(e) <= r)
        .filter_map(|e| cancels(e).map(|id| (*e, id)))
        .collect();
    let undone: HashSet<&str> = cancellations.iter().map(|(_, id)| *id).collect();

    // What a cancellation undoes, or a correction changes, happened when that event did.
    let names = |e: &Event| cancels(e).or_else(|| corrects(e)).map(str::to_owned);
    let happened_by_t: HashSet<&str> = by_position
        .iter()
        .filter(|e| names(e).is_none() && key(&occurred(e)) <= t)
        .map(|e| e.event_id.as_str())
        .collect();

    let mut state = AsOf::default();
    let mut folded: Vec<&Event> = Vec::new();
    let mut in_scope: HashSet<&str> = HashSet::new();
    for e in &by_position {
        let happened = match names(e) {
            Some(target) => happened_by_t.contains(target.as_str()),
            None => happened_by_t.contains(e.event_id.as_str()),
        };
        if recorded(e) > r {
            if happened {
                state.known_later.push(e.event_id.clone());
            }
            continue;
        }
        if !happened || names(e).is_some() {
            continue;
        }
        in_scope.insert(e.event_id.as_str());
        if undone.contains(e.event_id.as_str()) {
            state.cancelled.push(e.event_id.clone());
        } else {
            folded.push(e);
        }
    }
    // A cancellation or correction is used when the event it names would otherwise have counted.
    let mut used: Vec<&Event> = folded.clone();
    used.extend(
        cancellations
            .iter()
            .filter(|(_, id)| in_scope.contains(id))
            .map(|(e, _)| *e),
    );
    used.extend(
        by_position
            .iter()
            .filter(|e| recorded(e) <= r && corrects(e).is_some_and(|id| in_scope.contains(id))),
    );
    used.sort_by_key(|e| e.position);
    state.used = used.iter().map(|e| e.event_id.clone()).collect();

    folded.sort_by_key(|e| (key(&occurred(e)), e.position));
    let mut fold = Fold::default();
    for e in folded {
        fold.apply(e, &mut state);
    }
    fold.finish(&mut state);
    state
}

#[derive(Default)]
struct Fold {
    stays: Vec<AsOfStay>,
    alerts: Vec<AsOfAlert>,
    resolved: HashSet<String>,
    referents: BTreeMap<i32, AsOfReferent>,
    consents: BTreeMap<String, AsOfConsent>,
}

impl Fold {
    fn stay(&mut self, encounter_id: &str) -> Option<&mut AsOfStay> {
        self.stays
            .iter_mut()
            .find(|s| s.encounter_id == encounter_id)
    }

    fn apply(&mut self, e: &Event, state: &mut AsOf) {
        let Some(payload) = &e.payload else {
            return;
        };
        let at = occurred(e);
        let id = e.event_id.clone();
        match payload {
            Payload::PatientRegistered(_) => state.registered = true,
            Payload::PatientsMerged(m)
                if !state.merged_patient_ids.contains(&m.retired_patient_id) =>
            {
                state.merged_patient_ids.push(m.retired_patient_id.clone());
            }
            // Journey rules refuse a second admission of one encounter; keep the first.
            Payload::Admitted(a) if self.stay(&a.encounter_id).is_none() => {
                self.stays.push(AsOfStay {
                    encounter_id: a.encounter_id.clone(),
                    facility: a.facility.clone(),
                    unit: a.unit.clone(),
                    setting: a.setting,
                    had_group: a.had_group,
                    admit_type: a.admit_type,
                    admitted_at: Some(at),
                    admission_event_id: id,
                    ..Default::default()
                });
            }
            Payload::Transferred(tr) => {
                if let Some(s) = self.stay(&tr.encounter_id) {
                    if s.discharged_at.is_none() {
                        s.unit = tr.to_unit.clone();
                    }
                }
            }
            // A class change that makes an emergency visit a stay opens it.
            Payload::ClassChanged(c)
                if self.stay(&c.encounter_id).is_none() && c.facility.is_some() =>
            {
                self.stays.push(AsOfStay {
                    encounter_id: c.encounter_id.clone(),
                    facility: c.facility.clone(),
                    unit: c.unit.clone(),
                    setting: c.setting,
                    admit_type: match c.admit_type {
                        0 => AdmitType::Emergency as i32,
                        t => t,
                    },
                    admitted_at: Some(at),
                    admission_event_id: id,
                    ..Default::default()
                });
            }
            Payload::ClassChanged(c) => {
                if let Some(s) = self.stay(&c.encounter_id) {
                    if s.discharged_at.is_none() {
                        s.setting = c.setting;
                        if !c.unit.is_empty() {
                            s.unit = c.unit.clone();
                        }
                    }
                }
            }
            Payload::Discharged(d) => {
                if let Some(s) = self.stay(&d.encounter_id) {
                    s.discharged_at = Some(at);
                    s.disposition = d.disposition;
                    s.discharge_event_id = id;
                }
                if d.disposition == Disposition::Deceased as i32 && state.died_at.is_none() {
                    state.died_at = Some(at);
                }
            }
            Payload::CarePlanEstablished(p) => {
                state.care_plan = Some(AsOfCarePlan {
                    plan: Some(p.clone()),
                    established_at: Some(at),
                    event_id: id,
                });
            }
            Payload::ReferentAssigned(ra) => {
                self.referents.insert(
                    ra.role,
                    AsOfReferent {
                        role: ra.role,
                        professional: ra.professional.clone(),
                        assigned_at: Some(at),
                        event_id: id,
                    },
                );
            }
            Payload::AlertRaised(a) if !self.alerts.iter().any(|x| x.alert_id == a.alert_id) => {
                self.alerts.push(AsOfAlert {
                    alert_id: a.alert_id.clone(),
                    severity: a.severity,
                    rule: a.rule.clone(),
                    reason: a.reason.clone(),
                    raised_at: Some(at),
                    acknowledged: false,
                    event_id: id,
                });
            }
            Payload::AlertAcknowledged(a) => {
                if let Some(x) = self.alerts.iter_mut().find(|x| x.alert_id == a.alert_id) {
                    x.acknowledged = true;
                }
            }
            Payload::AlertResolved(a) => {
                self.resolved.insert(a.alert_id.clone());
            }
            Payload::ConsentGiven(c) => {
                let entry = self.consents.entry(c.scope.clone()).or_default();
                let mut organisations = if entry.given {
                    entry.organisations.clone()
                } else {
                    Vec::new()
                };
                // Empty = every organisation: a wider consent replaces a narrower one.
                if c.organisations.is_empty() || (entry.given && organisations.is_empty()) {
                    organisations.clear();
                } else {
                    for o in &c.organisations {
                        if !organisations.contains(o) {
                            organisations.push(o.clone());
                        }
                    }
                }
                *entry = AsOfConsent {
                    scope: c.scope.clone(),
                    given: true,
                    organisations,
                    at: Some(at),
                    event_id: id,
                };
            }
            Payload::ConsentRevoked(c) => {
                let entry = self.consents.entry(c.scope.clone()).or_default();
                let remaining: Vec<String> = if c.organisations.is_empty() || !entry.given {
                    Vec::new()
                } else {
                    entry
                        .organisations
                        .iter()
                        .filter(|o| !c.organisations.contains(o))
                        .cloned()
                        .collect()
                };
                // Revoking some organisations of an "every organisation" consent cannot be
                // expressed as a list: it is reported as revoked for the scope (the safe side).
                let given = !remaining.is_empty();
                *entry = AsOfConsent {
                    scope: c.scope.clone(),
                    given,
                    organisations: remaining,
                    at: Some(at),
                    event_id: id,
                };
            }
            Payload::PatientDeceased(d) => {
                state.died_at = Some(d.died_at.unwrap_or(at));
            }
            _ => {}
        }
    }

    fn finish(self, state: &mut AsOf) {
        let (open, discharged): (Vec<_>, Vec<_>) = self
            .stays
            .into_iter()
            .partition(|s| s.discharged_at.is_none());
        state.open_stays = open;
        state.discharged_stays = discharged;
        state.open_alerts = self
            .alerts
            .into_iter()
            .filter(|a| !self.resolved.contains(&a.alert_id))
            .collect();
        state.referents = self.referents.into_values().collect();
        state.consents = self.consents.into_values().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{
        self, AdmissionCancelled, Admitted, AlertRaised, AlertResolved, CarePlanEstablished,
        ConsentGiven, ConsentRevoked, DischargeCancelled, Discharged, PatientDeceased,
        Professional, ReferentAssigned, Role, Setting, TransferCancelled, Transferred,
    };

    const DAY: i64 = 86_400;
    const BASE: i64 = 1_780_000_000;

    fn day(d: i64) -> Timestamp {
        Timestamp {
            seconds: BASE + d * DAY,
            nanos: 0,
        }
    }

    fn id(n: u64) -> String {
        format!("00000000-0000-4000-8000-{n:012}")
    }

    /// Event `n` at position `n`: occurred on day `occurred`, recorded on day `recorded`.
    fn ev(n: u64, occurred: i64, recorded: i64, payload: Payload) -> Event {
        Event {
            event_id: id(n),
            patient_id: "P1".into(),
            position: n,
            stream_version: n,
            occurred_at: Some(day(occurred)),
            recorded_at: Some(day(recorded)),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn admit(enc: &str) -> Payload {
        Payload::Admitted(Admitted {
            encounter_id: enc.into(),
            unit: "cardio".into(),
            setting: Setting::Inpatient as i32,
            ..Default::default()
        })
    }

    fn transfer(enc: &str, to: &str) -> Payload {
        Payload::Transferred(Transferred {
            encounter_id: enc.into(),
            from_unit: "cardio".into(),
            to_unit: to.into(),
            ..Default::default()
        })
    }

    fn discharge(enc: &str, d: Disposition) -> Payload {
        Payload::Discharged(Discharged {
            encounter_id: enc.into(),
            disposition: d as i32,
            ..Default::default()
        })
    }

    fn raise(alert: &str) -> Payload {
        Payload::AlertRaised(AlertRaised {
            alert_id: alert.into(),
            severity: v1::Severity::High as i32,
            ..Default::default()
        })
    }

    fn resolve(alert: &str) -> Payload {
        Payload::AlertResolved(AlertResolved {
            alert_id: alert.into(),
            ..Default::default()
        })
    }

    fn plan(goal: &str) -> Payload {
        Payload::CarePlanEstablished(CarePlanEstablished {
            care_plan_id: goal.into(),
            goals: vec![goal.into()],
            ..Default::default()
        })
    }

    fn referent(role: Role, who: &str) -> Payload {
        Payload::ReferentAssigned(ReferentAssigned {
            role: role as i32,
            professional: Some(Professional {
                id: who.into(),
                role: role as i32,
                ..Default::default()
            }),
        })
    }

    fn consent(scope: &str, orgs: &[&str]) -> Payload {
        Payload::ConsentGiven(ConsentGiven {
            scope: scope.into(),
            organisations: orgs.iter().map(|o| o.to_string()).collect(),
        })
    }

    fn revoke(scope: &str, orgs: &[&str]) -> Payload {
        Payload::ConsentRevoked(ConsentRevoked {
            scope: scope.into(),
            organisations: orgs.iter().map(|o| o.to_string()).collect(),
        })
    }

    fn cancel_admission(n: u64) -> Payload {
        Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id: id(n),
            ..Default::default()
        })
    }

    fn cancel_transfer(n: u64) -> Payload {
        Payload::TransferCancelled(TransferCancelled {
            cancelled_event_id: id(n),
            ..Default::default()
        })
    }

    fn cancel_discharge(n: u64) -> Payload {
        Payload::DischargeCancelled(DischargeCancelled {
            cancelled_event_id: id(n),
            ..Default::default()
        })
    }

    /// What a case pins, in a form a table can spell.
    #[derive(Debug, PartialEq, Default)]
    struct Then {
        /// (encounter, unit) of the open stays.
        open: Vec<(&'static str, &'static str)>,
        discharged: Vec<&'static str>,
        alerts: Vec<&'static str>,
        care_plan: Option<&'static str>,
        referents: Vec<&'static str>,
        deceased: bool,
        /// scope, given, organisations
        consents: Vec<(&'static str, bool, Vec<&'static str>)>,
        used: Vec<u64>,
        known_later: Vec<u64>,
        cancelled: Vec<u64>,
    }

    fn observed(s: &AsOf) -> Then {
        let leak = |v: &str| -> &'static str { Box::leak(v.to_string().into_boxed_str()) };
        let num = |ids: &[String]| -> Vec<u64> {
            ids.iter()
                .map(|i| i.rsplit('-').next().unwrap().parse().unwrap())
                .collect()
        };
        Then {
            open: s
                .open_stays
                .iter()
                .map(|x| (leak(&x.encounter_id), leak(&x.unit)))
                .collect(),
            discharged: s
                .discharged_stays
                .iter()
                .map(|x| leak(&x.encounter_id))
                .collect(),
            alerts: s.open_alerts.iter().map(|a| leak(&a.alert_id)).collect(),
            care_plan: s
                .care_plan
                .as_ref()
                .map(|p| leak(&p.plan.as_ref().unwrap().care_plan_id)),
            referents: s
                .referents
                .iter()
                .map(|r| leak(&r.professional.as_ref().unwrap().id))
                .collect(),
            deceased: s.died_at.is_some(),
            consents: s
                .consents
                .iter()
                .map(|c| {
                    (
                        leak(&c.scope),
                        c.given,
                        c.organisations.iter().map(|o| leak(o)).collect(),
                    )
                })
                .collect(),
            used: num(&s.used),
            known_later: num(&s.known_later),
            cancelled: num(&s.cancelled),
        }
    }

    struct Case {
        name: &'static str,
        given: Vec<Event>,
        /// (clinical day T, recording day R)
        when: (i64, i64),
        then: Then,
    }

    fn cases() -> Vec<Case> {
        vec![
            Case {
                name: "open stay after admission and transfer",
                given: vec![ev(1, 0, 0, admit("E1")), ev(2, 1, 1, transfer("E1", "icu"))],
                when: (2, 2),
                then: Then {
                    open: vec![("E1", "icu")],
                    used: vec![1, 2],
                    ..Default::default()
                },
            },
            Case {
                name: "clinical time before the transfer: still in the first unit",
                given: vec![ev(1, 0, 0, admit("E1")), ev(2, 3, 3, transfer("E1", "icu"))],
                when: (2, 5),
                then: Then {
                    open: vec![("E1", "cardio")],
                    used: vec![1],
                    ..Default::default()
                },
            },
            Case {
                name: "discharged stay",
                given: vec![
                    ev(1, 0, 0, admit("E1")),
                    ev(2, 4, 4, discharge("E1", Disposition::Home)),
                ],
                when: (5, 5),
                then: Then {
                    discharged: vec!["E1"],
                    used: vec![1, 2],
                    ..Default::default()
                },
            },
            Case {
                name: "late-recorded discharge: occurred before T, recorded after R, not known",
                given: vec![
                    ev(1, 0, 0, admit("E1")),
                    ev(2, 4, 9, discharge("E1", Disposition::Home)),
                ],
                when: (6, 7),
                then: Then {
                    open: vec![("E1", "cardio")],
                    used: vec![1],
                    known_later: vec![2],
                    ..Default::default()
                },
            },
            Case {
                name: "late-recorded discharge: recorded before R, known",
                given: vec![
                    ev(1, 0, 0, admit("E1")),
                    ev(2, 4, 9, discharge("E1", Disposition::Home)),
                ],
                when: (6, 10),
                then: Then {
                    discharged: vec!["E1"],
                    used: vec![1, 2],
                    ..Default::default()
                },
            },
            Case {
                name: "cancelled admission: as if it never happened",
                given: vec![ev(1, 0, 0, admit("E1")), ev(2, 1, 1, cancel_admission(1))],
                when: (3, 3),
                then: Then {
                    used: vec![2],
                    cancelled: vec![1],
                    ..Default::default()
                },
            },
            Case {
                name: "cancellation undoes the past too (its own clinical time does not matter)",
                given: vec![ev(1, 0, 0, admit("E1")), ev(2, 5, 5, cancel_admission(1))],
                when: (2, 6),
                then: Then {
                    used: vec![2],
                    cancelled: vec![1],
                    ..Default::default()
                },
            },
            Case {
                name: "cancellation recorded after R is not known: the admission stands",
                given: vec![ev(1, 0, 0, admit("E1")), ev(2, 5, 5, cancel_admission(1))],
                when: (2, 4),
                then: Then {
                    open: vec![("E1", "cardio")],
                    used: vec![1],
                    known_later: vec![2],
                    ..Default::default()
                },
            },
            Case {
                name: "cancellation of an event after T changes nothing at T",
                given: vec![
                    ev(1, 0, 0, admit("E1")),
                    ev(2, 4, 4, discharge("E1", Disposition::Home)),
                    ev(3, 5, 5, cancel_discharge(2)),
                ],
                when: (3, 9),
                then: Then {
                    open: vec![("E1", "cardio")],
                    used: vec![1],
                    ..Default::default()
                },
            },
            Case {
                name: "cancelled discharge reopens the stay; cancelled transfer restores the unit",
                given: vec![
                    ev(1, 0, 0, admit("E1")),
                    ev(2, 1, 1, transfer("E1", "icu")),
                    ev(3, 1, 1, cancel_transfer(2)),
                    ev(4, 3, 3, discharge("E1", Disposition::Home)),
                    ev(5, 3, 3, cancel_discharge(4)),
                ],
                when: (4, 4),
                then: Then {
                    open: vec![("E1", "cardio")],
                    used: vec![1, 3, 5],
                    cancelled: vec![2, 4],
                    ..Default::default()
                },
            },
            Case {
                name: "alerts: raised and not resolved by T are open",
                given: vec![
                    ev(1, 0, 0, raise("A1")),
                    ev(2, 1, 1, raise("A2")),
                    ev(3, 2, 2, resolve("A1")),
                    ev(4, 5, 5, resolve("A2")),
                ],
                when: (3, 9),
                then: Then {
                    alerts: vec!["A2"],
                    used: vec![1, 2, 3],
                    ..Default::default()
                },
            },
            Case {
                name:
                    "care plan and referents: the latest by clinical time, even if recorded first",
                given: vec![
                    ev(1, 3, 3, plan("new")),
                    ev(2, 1, 4, plan("old")),
                    ev(3, 0, 0, referent(Role::Gp, "gp-1")),
                    ev(4, 2, 2, referent(Role::Gp, "gp-2")),
                    ev(5, 2, 2, referent(Role::HomeNurse, "nurse-1")),
                ],
                when: (5, 5),
                then: Then {
                    care_plan: Some("new"),
                    referents: vec!["gp-2", "nurse-1"],
                    used: vec![1, 2, 3, 4, 5],
                    ..Default::default()
                },
            },
            Case {
                name: "consent given then partly revoked",
                given: vec![
                    ev(1, 0, 0, consent("share", &["CHU", "HAD"])),
                    ev(2, 2, 2, revoke("share", &["CHU"])),
                    ev(3, 2, 2, consent("dmp", &[])),
                    ev(4, 3, 3, revoke("dmp", &[])),
                ],
                when: (2, 9),
                then: Then {
                    consents: vec![("dmp", true, vec![]), ("share", true, vec!["HAD"])],
                    used: vec![1, 2, 3],
                    ..Default::default()
                },
            },
            Case {
                name: "death by discharge deceased, and by PatientDeceased",
                given: vec![
                    ev(1, 0, 0, admit("E1")),
                    ev(2, 2, 2, discharge("E1", Disposition::Deceased)),
                ],
                when: (3, 3),
                then: Then {
                    discharged: vec!["E1"],
                    deceased: true,
                    used: vec![1, 2],
                    ..Default::default()
                },
            },
            Case {
                name: "death declared later is not known before it is recorded",
                given: vec![ev(
                    1,
                    2,
                    6,
                    Payload::PatientDeceased(PatientDeceased {
                        died_at: Some(day(2)),
                    }),
                )],
                when: (3, 5),
                then: Then {
                    known_later: vec![1],
                    ..Default::default()
                },
            },
        ]
    }

    #[test]
    fn given_when_then() {
        for case in cases() {
            let (t, r) = case.when;
            let state = as_of(&case.given, day(t), day(r));
            assert_eq!(observed(&state), case.then, "case: {}", case.name);
        }
    }

    #[test]
    fn order_of_the_input_does_not_matter() {
        for case in cases() {
            let (t, r) = case.when;
            let mut reversed = case.given.clone();
            reversed.reverse();
            assert_eq!(
                as_of(&reversed, day(t), day(r)),
                as_of(&case.given, day(t), day(r)),
                "case: {}",
                case.name
            );
        }
    }

    #[test]
    fn response_carries_the_times_and_the_state() {
        let events = vec![
            ev(1, 0, 0, admit("E1")),
            ev(2, 1, 1, discharge("E1", Disposition::Deceased)),
        ];
        let r = as_of(&events, day(2), day(2)).into_response("P1", day(2), day(2));
        assert_eq!(r.patient_id, "P1");
        assert_eq!(r.clinical_time, Some(day(2)));
        assert!(r.deceased);
        assert_eq!(r.died_at, Some(day(1)));
        assert_eq!(r.discharged_stays[0].admitted_at, Some(day(0)));
        assert_eq!(r.discharged_stays[0].discharge_event_id, id(2));
        assert_eq!(r.event_ids, vec![id(1), id(2)]);
    }
}
