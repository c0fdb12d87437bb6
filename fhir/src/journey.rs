//! A patient's events, oldest first, folded into the resources they map to (docs/fhir.md): one
//! Patient; an Encounter per stay (its admission, transfers, discharge and their cancellations),
//! per movement, per emergency visit and per home visit or contact; a Procedure per medication
//! reconciliation; an Observation, a Condition, a MedicationRequest, a
//! CarePlan or a Consent per event of those kinds, a DocumentReference and a Communication per
//! discharge letter; a Flag per alert (raised, acknowledged,
//! resolved); an Appointment per appointment (scheduled, completed, missed); one CareTeam of the
//! patient's referents.
use crate::{
    appointment, care_plan, care_team, condition, consent, contact, encounter, flag, letter,
    medication, observation, patient, procedure, Resource,
};
use journey_proto::v1::{event::Payload, Event};
use std::collections::{hash_map::Entry, HashMap};

/// The resource types the mapping makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Patient,
    Encounter,
    Observation,
    Condition,
    MedicationRequest,
    Procedure,
    CarePlan,
    CareTeam,
    Appointment,
    DocumentReference,
    Communication,
    Flag,
    Consent,
    /// A coordination item of a discharge (from the coordination view, not the events: `task`).
    Task,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Patient,
        Kind::Encounter,
        Kind::Observation,
        Kind::Condition,
        Kind::MedicationRequest,
        Kind::Procedure,
        Kind::CarePlan,
        Kind::CareTeam,
        Kind::Appointment,
        Kind::DocumentReference,
        Kind::Communication,
        Kind::Flag,
        Kind::Consent,
        Kind::Task,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Patient => "Patient",
            Kind::Encounter => "Encounter",
            Kind::Observation => "Observation",
            Kind::Condition => "Condition",
            Kind::MedicationRequest => "MedicationRequest",
            Kind::Procedure => "Procedure",
            Kind::CarePlan => "CarePlan",
            Kind::CareTeam => "CareTeam",
            Kind::Appointment => "Appointment",
            Kind::DocumentReference => "DocumentReference",
            Kind::Communication => "Communication",
            Kind::Flag => "Flag",
            Kind::Consent => "Consent",
            Kind::Task => "Task",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// Every resource of `patient_id`'s `events` (its stream, oldest first): the Patient first, then
/// the others in the order of their first event, the CareTeam last.
pub fn resources(patient_id: &str, events: &[Event]) -> Vec<Resource> {
    let mut fold = Fold {
        patient_id,
        person: patient::Person::new(patient_id),
        team: care_team::Team::default(),
        slots: Vec::new(),
        keyed: HashMap::new(),
        movements: HashMap::new(),
        done_at: HashMap::new(),
    };
    for e in events {
        fold.apply(e);
    }
    fold.finish()
}

/// What an event contributes to, while folding.
enum Slot<'a> {
    Stay(encounter::Stay<'a>),
    Alert(flag::Alert<'a>),
    Booking(appointment::Booking<'a>),
    Done(Resource),
}

struct Fold<'a> {
    patient_id: &'a str,
    person: patient::Person<'a>,
    team: care_team::Team<'a>,
    slots: Vec<Slot<'a>>,
    /// (type, journey id) → its slot: a stay, an alert, an appointment, or a resource a later
    /// event under the same id replaces.
    keyed: HashMap<(&'static str, &'a str), usize>,
    /// A movement's event id → its stay, for the cancellations that name it.
    movements: HashMap<&'a str, usize>,
    /// (type, resource id) → the slot of a resource made whole by one event.
    done_at: HashMap<(&'static str, String), usize>,
}

impl<'a> Fold<'a> {
    fn apply(&mut self, e: &'a Event) {
        let Some(payload) = &e.payload else { return };
        let patient_id = self.patient_id;
        self.person.touch_first(e);
        match payload {
            Payload::PatientRegistered(_)
            | Payload::IdentityUpdated(_)
            | Payload::PatientDeceased(_)
            | Payload::PatientsMerged(_) => self.person.apply(e, payload),
            Payload::Admitted(a) => {
                let at = self.slot("Encounter", &a.encounter_id, || {
                    Slot::Stay(encounter::Stay::new(&a.encounter_id, e))
                });
                self.movements.insert(&e.event_id, at);
                if let Slot::Stay(s) = &mut self.slots[at] {
                    s.admitted(e, a);
                }
            }
            Payload::Transferred(t) => self.on_stay(e, &t.encounter_id, |s| s.transferred(e, t)),
            Payload::Discharged(d) => self.on_stay(e, &d.encounter_id, |s| s.discharged(e, d)),
            Payload::AdmissionCancelled(c) => self.cancel(e, &c.cancelled_event_id),
            Payload::TransferCancelled(c) => self.cancel(e, &c.cancelled_event_id),
            Payload::DischargeCancelled(c) => self.cancel(e, &c.cancelled_event_id),
            Payload::EmergencyVisit(v) => {
                for r in encounter::emergency(patient_id, e, v) {
                    self.done(r);
                }
            }
            Payload::HomeVisitRecorded(v) => {
                let visit = contact::Contact {
                    professional: v.professional.as_ref(),
                    channel: v.channel,
                    visit: true,
                    minutes: v.duration_minutes,
                    reason: "",
                };
                self.done(contact::build(patient_id, e, visit))
            }
            Payload::ContactMade(c) => {
                let contact = contact::Contact {
                    professional: c.professional.as_ref(),
                    channel: c.channel,
                    visit: false,
                    minutes: 0,
                    reason: &c.reason,
                };
                self.done(contact::build(patient_id, e, contact))
            }
            Payload::ObservationRecorded(o) => self.done(observation::build(patient_id, e, o)),
            Payload::ConditionRecorded(c) => self.done(condition::build(patient_id, e, c)),
            Payload::PrescriptionIssued(p) => self.done(medication::build(patient_id, e, p)),
            Payload::DischargeLetterSent(l) => {
                for r in letter::build(patient_id, e, l) {
                    self.done(r);
                }
            }
            Payload::CarePlanEstablished(c) => {
                for p in &c.referents {
                    self.team.name(e, p.role, p);
                }
                let team = self.team.id(patient_id);
                let team = team.as_deref().filter(|_| !c.referents.is_empty());
                self.done(care_plan::build(patient_id, e, c, team));
            }
            Payload::ReferentAssigned(r) => {
                if let Some(p) = &r.professional {
                    let role = if r.role != 0 { r.role } else { p.role };
                    self.team.name(e, role, p);
                }
            }
            Payload::AppointmentScheduled(a) => {
                let at = self.slot("Appointment", &a.appointment_id, || {
                    Slot::Booking(appointment::Booking::new(e, a))
                });
                if let Slot::Booking(b) = &mut self.slots[at] {
                    b.rescheduled(e, a);
                }
            }
            Payload::AppointmentCompleted(a) => {
                if let Some(Slot::Booking(b)) = self.keyed_slot("Appointment", &a.appointment_id) {
                    b.completed(e);
                }
            }
            Payload::AppointmentMissed(a) => {
                if let Some(Slot::Booking(b)) = self.keyed_slot("Appointment", &a.appointment_id) {
                    b.missed(e, &a.reason);
                }
            }
            Payload::ConsentGiven(c) => self.done(consent::build(
                patient_id,
                e,
                &c.scope,
                &c.organisations,
                true,
            )),
            Payload::ConsentRevoked(c) => self.done(consent::build(
                patient_id,
                e,
                &c.scope,
                &c.organisations,
                false,
            )),
            // An alert raised again under the same id is the same alert.
            Payload::AlertRaised(a) => {
                self.slot("Flag", &a.alert_id, || Slot::Alert(flag::Alert::new(e, a)));
            }
            Payload::AlertAcknowledged(a) => {
                if let Some(Slot::Alert(f)) = self.keyed_slot("Flag", &a.alert_id) {
                    f.acknowledged(e);
                }
            }
            Payload::AlertResolved(a) => {
                if let Some(Slot::Alert(f)) = self.keyed_slot("Flag", &a.alert_id) {
                    f.resolved(e);
                }
            }
            Payload::MedicationReconciled(m) => self.done(procedure::build(patient_id, e, m)),
            // PAM-FR movements of a stay (issue 15): movement Encounters `partOf` it.
            Payload::LeaveStarted(l) => self.on_stay(e, &l.encounter_id, |s| s.left(e, l)),
            Payload::LeaveEnded(l) => self.on_stay(e, &l.encounter_id, |s| s.returned(e, l)),
            Payload::ClassChanged(c) => self.on_stay(e, &c.encounter_id, |s| s.class_changed(e, c)),
            Payload::MovementCancelled(c) => self.cancel(e, &c.cancelled_event_id),
            Payload::MovementCorrected(c) => {
                if let Some(&at) = self.movements.get(c.corrected_event_id.as_str()) {
                    if let Slot::Stay(s) = &mut self.slots[at] {
                        s.corrected(e, c);
                    }
                }
            }
            // Not mapped yet (issue 18's discharge planning): their Provenance only.
            Payload::DischargeExpected(_)
            | Payload::ChecklistItemSet(_)
            | Payload::ComplexDischargeFlagged(_) => {}
        }
    }

    /// The slot of (`kind`, `id`), made by `new` the first time.
    fn slot(&mut self, kind: &'static str, id: &'a str, new: impl FnOnce() -> Slot<'a>) -> usize {
        *self.keyed.entry((kind, id)).or_insert_with(|| {
            self.slots.push(new());
            self.slots.len() - 1
        })
    }

    fn keyed_slot(&mut self, kind: &'static str, id: &str) -> Option<&mut Slot<'a>> {
        let at = *self.keyed.get(&(kind, id))?;
        self.slots.get_mut(at)
    }

    /// The stay `encounter_id`, its movement `event_id` noted for the cancellations.
    fn stay(&mut self, event_id: &'a str, encounter_id: &str) -> Option<&mut encounter::Stay<'a>> {
        let at = *self.keyed.get(&("Encounter", encounter_id))?;
        self.movements.insert(event_id, at);
        match &mut self.slots[at] {
            Slot::Stay(s) => Some(s),
            _ => None,
        }
    }

    /// `apply` to the stay `encounter_id` (if known), the movement `e` noted for the
    /// cancellations and corrections that name it.
    fn on_stay(
        &mut self,
        e: &'a Event,
        encounter_id: &str,
        apply: impl FnOnce(&mut encounter::Stay<'a>),
    ) {
        if let Some(s) = self.stay(&e.event_id, encounter_id) {
            apply(s);
        }
    }

    /// A cancellation: the stay of the movement it names undoes it.
    fn cancel(&mut self, e: &'a Event, cancelled: &str) {
        if let Some(&at) = self.movements.get(cancelled) {
            if let Slot::Stay(s) = &mut self.slots[at] {
                s.cancel(e, cancelled);
            }
        }
    }

    /// A resource made whole by one event; a later one with the same type and id replaces it.
    fn done(&mut self, r: Resource) {
        match self.done_at.entry((r.kind, r.id.clone())) {
            Entry::Occupied(at) => self.slots[*at.get()] = Slot::Done(r),
            Entry::Vacant(v) => {
                v.insert(self.slots.len());
                self.slots.push(Slot::Done(r));
            }
        }
    }

    fn finish(self) -> Vec<Resource> {
        let mut out = Vec::with_capacity(self.slots.len() + 2);
        out.extend(self.person.build());
        for slot in self.slots {
            match slot {
                Slot::Stay(s) => out.extend(s.build(self.patient_id)),
                Slot::Alert(a) => out.push(a.build(self.patient_id)),
                Slot::Booking(b) => out.push(b.build(self.patient_id)),
                Slot::Done(r) => out.push(r),
            }
        }
        out.extend(self.team.build(self.patient_id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::{
        prost_types::Timestamp,
        v1::{
            AdmissionCancelled, Admitted, AlertRaised, AlertResolved, ClassChanged, Code,
            ContactMade, DischargeCancelled, Discharged, EmergencyVisit, LeaveEnded, LeaveStarted,
            MovementCancelled, MovementCorrected, ObservationRecorded, PatientRegistered,
            PatientsMerged, TransferCancelled, Transferred,
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
        let transfer = |n, unit: &str| {
            ev(
                n,
                Payload::Transferred(Transferred {
                    encounter_id: "S1".into(),
                    from_unit: "cardio".into(),
                    to_unit: unit.into(),
                    ..Default::default()
                }),
            )
        };
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
            transfer(3, "icu"),
            ev(
                4,
                Payload::TransferCancelled(TransferCancelled {
                    cancelled_event_id: "e3".into(),
                    ..Default::default()
                }),
            ),
            transfer(5, "geriatrics"),
            ev(
                6,
                Payload::Discharged(Discharged {
                    encounter_id: "S1".into(),
                    disposition: 1,
                    ..Default::default()
                }),
            ),
            ev(
                7,
                Payload::DischargeCancelled(DischargeCancelled {
                    cancelled_event_id: "e6".into(),
                    ..Default::default()
                }),
            ),
            admitted(8, "S2"),
            ev(
                9,
                Payload::AdmissionCancelled(AdmissionCancelled {
                    cancelled_event_id: "e8".into(),
                    ..Default::default()
                }),
            ),
        ];
        let all = resources("P1", &events);
        let ids: Vec<(&str, &str)> = all.iter().map(|r| (r.kind, r.id.as_str())).collect();
        assert_eq!(
            ids,
            [
                ("Patient", "P1"),
                ("Encounter", "S1"),
                ("Encounter", "e2"),
                ("Encounter", "e3"),
                ("Encounter", "e5"),
                ("Encounter", "S2"),
                ("Encounter", "e8"),
            ]
        );
        let s1 = &of(&all, "S1").json();
        assert_eq!(s1["status"], "in-progress", "the discharge was cancelled");
        assert!(s1["period"].get("end").is_none());
        assert_eq!(s1["meta"]["versionId"], "7");
        assert_eq!(s1["class"]["code"], "IMP");
        assert_eq!(
            s1["hospitalization"]["admitSource"]["coding"][0]["code"],
            "emd"
        );
        let units: Vec<&str> = s1["location"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["location"]["display"].as_str().unwrap())
            .collect();
        assert_eq!(
            units,
            ["cardio", "geriatrics"],
            "the cancelled transfer is not a place"
        );
        // The movements: the admission ended by the transfer that holds, the cancelled transfer,
        // the last one open again once the discharge was cancelled.
        let admission = &of(&all, "e2").json();
        assert_eq!(admission["status"], "finished");
        assert_eq!(admission["partOf"]["reference"], "Encounter/S1");
        assert_eq!(
            admission["period"]["end"],
            of(&all, "e5").json()["period"]["start"]
        );
        assert_eq!(
            admission["meta"]["versionId"], "5",
            "ended by the transfer of version 5"
        );
        assert_eq!(of(&all, "e3").json()["status"], "entered-in-error");
        assert_eq!(of(&all, "e5").json()["status"], "in-progress");
        assert_eq!(of(&all, "e5").json()["location"][0]["status"], "active");
        assert_eq!(of(&all, "S2").json()["status"], "entered-in-error");
        assert_eq!(of(&all, "e8").json()["status"], "entered-in-error");
        let p = &of(&all, "P1").json();
        assert_eq!(p["gender"], "female");
        assert_eq!(p["meta"]["versionId"], "1");
        assert_eq!(p["meta"]["lastUpdated"], "2023-11-14T23:15:00.000Z");
    }

    #[test]
    fn a_merge_links_the_retired_patient_and_a_phone_call_is_a_virtual_encounter() {
        let events = vec![
            ev(
                1,
                Payload::PatientsMerged(PatientsMerged {
                    surviving_patient_id: "P1".into(),
                    retired_patient_id: "P0".into(),
                }),
            ),
            ev(
                2,
                Payload::ContactMade(ContactMade {
                    channel: 2,
                    reason: "first call home".into(),
                    ..Default::default()
                }),
            ),
        ];
        let all = resources("P1", &events);
        let p = &of(&all, "P1").json();
        assert_eq!(p["link"][0]["other"]["reference"], "Patient/P0");
        assert_eq!(p["link"][0]["type"], "replaces");
        let call = &of(&all, "e2").json();
        assert_eq!(call["class"]["code"], "VR");
        assert_eq!(call["reasonCode"][0]["text"], "first call home");
    }

    #[test]
    fn the_diagnoses_of_stays_and_visits_are_conditions_of_their_encounter() {
        let code = |c: &str| Code {
            system: "ICD-10".into(),
            code: c.into(),
            display: String::new(),
        };
        let mut admission = admitted(1, "S1");
        if let Some(Payload::Admitted(a)) = &mut admission.payload {
            a.diagnoses = vec![code("I50.0"), code("E11.9")];
        }
        let events = vec![
            admission,
            ev(
                2,
                Payload::AdmissionCancelled(AdmissionCancelled {
                    cancelled_event_id: "e1".into(),
                    ..Default::default()
                }),
            ),
            ev(
                3,
                Payload::EmergencyVisit(EmergencyVisit {
                    visit_id: "V1".into(),
                    diagnoses: vec![code("J18.9")],
                    ..Default::default()
                }),
            ),
        ];
        let all = resources("P1", &events);
        let void = &of(&all, "e1.2").json();
        assert_eq!(
            void["verificationStatus"]["coding"][0]["code"],
            "entered-in-error"
        );
        assert!(void.get("clinicalStatus").is_none(), "con-5");
        assert_eq!(void["encounter"]["reference"], "Encounter/S1");
        assert_eq!(
            void["meta"]["versionId"], "2",
            "changed by the cancellation"
        );
        assert!(of(&all, "S1").json().get("diagnosis").is_none());
        let visit = &of(&all, "V1").json();
        assert_eq!(
            visit["diagnosis"][0]["condition"]["reference"],
            "Condition/e3.1"
        );
        let pneumonia = &of(&all, "e3.1").json();
        assert_eq!(pneumonia["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(pneumonia["code"]["coding"][0]["code"], "J18.9");
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
        let o = &of(&all, "e1").json();
        assert_eq!(o["code"]["coding"][0]["code"], "29463-7");
        assert_eq!(o["valueQuantity"]["code"], "kg");
        let f = &of(&all, "A1").json();
        assert_eq!(f["status"], "inactive");
        assert_eq!(f["meta"]["versionId"], "3");
        assert_eq!(
            f["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
            "PH"
        );
    }

    #[test]
    fn leaves_class_changes_cancellations_and_corrections_are_movements_of_the_stay() {
        let corrected_at = Timestamp {
            seconds: 1_700_020_000,
            nanos: 0,
        };
        let events = vec![
            admitted(1, "S1"),
            ev(
                2,
                Payload::LeaveStarted(LeaveStarted {
                    encounter_id: "S1".into(),
                    unit: "home".into(),
                    ..Default::default()
                }),
            ),
            ev(
                3,
                Payload::LeaveEnded(LeaveEnded {
                    encounter_id: "S1".into(),
                    unit: "cardio".into(),
                    ..Default::default()
                }),
            ),
            ev(
                4,
                Payload::ClassChanged(ClassChanged {
                    encounter_id: "S1".into(),
                    setting: 3,
                    unit: "had".into(),
                    ..Default::default()
                }),
            ),
            ev(
                5,
                Payload::MovementCancelled(MovementCancelled {
                    cancelled_event_id: "e4".into(),
                    ..Default::default()
                }),
            ),
            ev(
                6,
                Payload::MovementCorrected(MovementCorrected {
                    corrected_event_id: "e3".into(),
                    moved_at: Some(corrected_at),
                    unit: "icu".into(),
                    ..Default::default()
                }),
            ),
        ];
        // On leave: the stay says so.
        let away = resources("P1", &events[..2]);
        assert_eq!(of(&away, "S1").json()["status"], "onleave");
        assert_eq!(
            of(&away, "e2").json()["type"][0]["text"],
            "leave of absence"
        );
        assert_eq!(
            of(&away, "e2").json()["location"][0]["location"]["display"],
            "home"
        );

        let all = resources("P1", &events);
        let movements: Vec<(String, String)> = all
            .iter()
            .map(|r| r.json())
            .filter(|r| r["partOf"]["reference"] == "Encounter/S1")
            .map(|r| {
                let id = r["id"].as_str().unwrap().to_string();
                (id, r["status"].as_str().unwrap().to_string())
            })
            .collect();
        let expected = [
            ("e1", "finished"),
            ("e2", "finished"),
            ("e3", "in-progress"),
            ("e4", "entered-in-error"),
        ]
        .map(|(i, s)| (i.to_string(), s.to_string()));
        assert_eq!(movements, expected);
        // The return, corrected: its time ends the leave, its unit is the one corrected.
        let back = of(&all, "e3").json();
        assert_eq!(back["period"]["start"], "2023-11-15T03:46:40.000Z");
        assert_eq!(
            of(&all, "e2").json()["period"]["end"],
            back["period"]["start"]
        );
        assert_eq!(back["location"][0]["location"]["display"], "icu");
        assert_eq!(back["meta"]["versionId"], "3");
        // The class change cancelled: the stay is inpatient again, back in its units.
        let stay = of(&all, "S1").json();
        assert_eq!(stay["status"], "in-progress");
        assert_eq!(stay["class"]["code"], "IMP");
        assert_eq!(stay["meta"]["versionId"], "6");
        let units: Vec<&str> = stay["location"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["location"]["display"].as_str().unwrap())
            .collect();
        assert_eq!(
            units,
            ["cardio", "icu"],
            "not the leave, not the cancelled class change"
        );
        // Not cancelled, the class change gives the stay its class.
        let had = resources("P1", &events[..4]);
        assert_eq!(of(&had, "S1").json()["class"]["code"], "HH");
    }
}
