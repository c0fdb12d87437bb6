//! The one Synthea mapping: a [`Population`] (read from CSV or from FHIR) → each patient's
//! journey events, in order, with the record each event comes from.
//!
//! # Events
//!
//! | record | event(s) |
//! |---|---|
//! | patient | `PatientRegistered` at the birth date 00:00Z (birth date, sex, names, local id); `PatientDeceased` when a death is recorded |
//! | inpatient encounters (one stay, see "Stays") | `Admitted` at the first START (setting INPATIENT, facility = organisation id + name, unit, diagnoses = the reasons), `Transferred` at each change of unit, `Discharged` at the last STOP |
//! | emergency, urgent-care encounter | `EmergencyVisit` at START (facility, outcome, diagnoses = the reasons) |
//! | home, hospice encounter | `HomeVisitRecorded` at START (professional, channel VISIT, duration); a `ConditionRecorded` per reason |
//! | virtual encounter | `ContactMade` at START, channel TELECONSULTATION, reason = the description; a `ConditionRecorded` per reason |
//! | ambulatory, outpatient, wellness, skilled-nursing and other encounters | `ContactMade` at START, channel VISIT; a `ConditionRecorded` per reason |
//! | condition | `ConditionRecorded` at START (SNOMED CT code, onset START, encounter) |
//! | medication | `PrescriptionIssued` at START (RxNorm code, duration STOP−START in days, prescriber = the encounter's professional) |
//! | observation | `ObservationRecorded` at DATE (LOINC code, value, UCUM unit); non-numeric ones are counted and skipped |
//! | care plan | `CarePlanEstablished` at START (goal = description, symptom to watch = its reason) |
//!
//! The reasons of every encounter thus reach the record as diagnoses (the visit's, or a
//! `ConditionRecorded`), so the Charlson index sees them.
//!
//! # Rules decided here
//! - **Stays**: a patient's inpatient encounters that overlap at the same facility are one stay:
//!   `Admitted` at the first one's START (its encounter id is the stay's), a `Transferred` each time
//!   the unit changes (the unit of an encounter is `ICU` for an intensive-care admission, SNOMED CT
//!   305351004, `ward` otherwise; the unit at an instant is that of the latest-started encounter
//!   still open), `Discharged` at the latest STOP; the later encounters' reasons are
//!   `ConditionRecorded`. An inpatient encounter starting during a stay at another facility is a
//!   transfer between hospitals: the first stay is discharged at that instant (disposition OTHER
//!   ACUTE HOSPITAL) and the second admitted with admit type TRANSFER IN.
//! - **Admit type**: EMERGENCY when the first encounter's DESCRIPTION contains "emergency", its
//!   CODE is an emergency-admission SNOMED code (50849002, 183452005, 4525004), or an emergency or
//!   urgent-care encounter of the same patient started before it and ended at most
//!   [`ED_TO_ADMISSION_SECS`] (6 h) before its START; ELECTIVE otherwise.
//! - **ED outcome**: ADMITTED when a stay of the same patient is admitted between the visit's
//!   START and 6 h after its STOP; otherwise DECEASED when the visit starts on the day of death;
//!   otherwise DISCHARGED_HOME.
//! - **Death**: the death is known by its day (UTC), so it is placed at the end of that day
//!   (23:59:59Z): what happened that day is not "after death". The first stay open on the day of
//!   death (admitted before its end, discharged on or after it, or not discharged) ends in death:
//!   `Discharged` with disposition DECEASED at min(discharge, end of the day of death), and
//!   `PatientDeceased.died_at` is that same instant. Other stays are discharged HOME.
//! - **Checks**: an encounter, condition, medication, care plan or observation of a patient not
//!   in the population, or naming an encounter not in it, is malformed (nothing appended for it),
//!   as is an encounter that ends before it starts, an inpatient or ED encounter without
//!   organisation, or a clinical record whose code is not of its system's form
//!   ([`malformed_code`]); an encounter's malformed reason code is reported and dropped (the
//!   encounter is kept).
//! - **Order**: each patient's events are sorted by occurred_at; at the same instant:
//!   registration, discharges, ED visits, admissions, transfers, (zero-length stays'
//!   discharges), the rest, death last. Records are taken in an order of their content, not of
//!   the file they came from, so both forms give the same order.
//!
//! # Identity
//!
//! Event ids are UUID v5 (namespace derived from `urn:journey:import:synthea`) over the
//! identity of the record: a patient's and an encounter's by their id (plus the event kind), a
//! care plan by its id, a condition, medication or observation by its content (patient,
//! encounter, code, time, value) plus its occurrence number among identical ones. Patient ids are
//! Synthea's patient ids.
use crate::{
    records::{
        malformed_code, Class, ClinicalKind, ClinicalRec, EncounterRec, ObservationRec, PatientRec,
        Population, LOINC,
    },
    Origin, Problem,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        event::Payload, Actor, AdmitType, Admitted, CarePlanEstablished, Code, ConditionRecorded,
        ContactChannel, ContactMade, Discharged, Disposition, EdOutcome, EmergencyVisit, Event,
        Facility, HomeVisitRecorded, ObservationRecorded, PatientDeceased, PatientRegistered,
        PrescriptionIssued, Professional, Role, Transferred,
    },
    EventType,
};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, LazyLock},
};
use uuid::Uuid;

/// How long after an ED visit ends an inpatient admission still counts as coming from it.
pub const ED_TO_ADMISSION_SECS: i64 = 6 * 3600;
/// SNOMED CT codes of emergency admissions.
const EMERGENCY_CODES: &[&str] = &["50849002", "183452005", "4525004"];
/// SNOMED CT code of an admission to intensive care.
const ICU_CODE: &str = "305351004";
const DAY: i64 = 86_400;

static NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:journey:import:synthea"));

pub fn event_id(key: &str) -> String {
    Uuid::new_v5(&NAMESPACE, key.as_bytes()).to_string()
}

/// One event to append and the record it comes from.
pub struct Item {
    pub event: Event,
    pub origin: Arc<Origin>,
    rank: u8,
    seq: u64,
    /// The event this one needs (a transfer or a discharge needs its admission).
    pub after: Option<String>,
}

impl Item {
    pub fn kind(&self) -> &'static str {
        self.event
            .payload
            .as_ref()
            .map_or("?", |p| EventType::of(p).name())
    }
}

/// What [`map`] produces.
pub struct Built {
    /// Each patient's events, in order.
    pub patients: BTreeMap<String, Vec<Item>>,
    /// Events built per file.
    pub events: BTreeMap<Arc<str>, u64>,
    /// The readers' problems and the mapping's.
    pub problems: Vec<Problem>,
    pub rows: BTreeMap<Arc<str>, u64>,
    pub skipped: BTreeMap<String, u64>,
    pub registered: u64,
}

/// Where an event goes among a patient's events at the same instant (module doc, "Order").
mod rank {
    pub const REGISTRATION: u8 = 0;
    pub const DISCHARGE: u8 = 1;
    pub const ED_VISIT: u8 = 2;
    pub const ADMISSION: u8 = 3;
    pub const TRANSFER: u8 = 4;
    /// The discharge of a stay that ends the instant it starts comes after its admission.
    pub const ZERO_LENGTH_DISCHARGE: u8 = 5;
    pub const CONTACT: u8 = 6;
    pub const CLINICAL: u8 = 7;
    pub const DEATH: u8 = 9;
}

fn ts(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

fn day_start(seconds: i64) -> i64 {
    seconds.div_euclid(DAY) * DAY
}

fn measure_of(loinc: &str, description: &str) -> String {
    let known = match loinc {
        "29463-7" => "weight",
        "8302-2" => "height",
        "39156-5" => "bmi",
        "8480-6" => "bp_systolic",
        "8462-4" => "bp_diastolic",
        "8867-4" => "heart_rate",
        "9279-1" => "respiratory_rate",
        "8310-5" => "temperature",
        "2708-6" | "59408-5" => "spo2",
        "2339-0" | "2345-7" => "glucose",
        _ => "",
    };
    if !known.is_empty() {
        known.into()
    } else if !description.is_empty() {
        description.into()
    } else {
        format!("loinc:{loinc}")
    }
}

fn unit_of(e: &EncounterRec) -> &'static str {
    if e.code == ICU_CODE {
        "ICU"
    } else {
        "ward"
    }
}

/// Maps `pop` to events; `source` is the events' source system.
pub fn map(pop: Population, source: String) -> Built {
    let Population {
        rows,
        problems,
        skipped,
        org_names,
        providers,
        patients,
        encounters,
        clinical,
        observations,
    } = pop;
    let mut m = Mapper {
        source,
        seq: 0,
        patients: BTreeMap::new(),
        events: BTreeMap::new(),
        seen: HashMap::new(),
        problems,
        skipped,
        org_names,
        providers,
        registered: 0,
    };
    let deaths = m.register(patients);
    let encounters = m.checked_encounters(encounters, &deaths);
    let died_at = m.encounters(&encounters, &deaths);
    m.deaths(&deaths, &died_at);
    let known: HashMap<&str, &EncounterRec> =
        encounters.iter().map(|e| (e.id.as_str(), e)).collect();
    m.clinical(clinical, &deaths, &known);
    m.observations(observations, &deaths, &known);
    m.finish(rows)
}

/// Dead and living patients: patient → (its record's origin, first second of the day of
/// death, if dead).
type Registered = HashMap<String, (Arc<Origin>, Option<i64>)>;

struct Mapper {
    source: String,
    seq: u64,
    patients: BTreeMap<String, Vec<Item>>,
    events: BTreeMap<Arc<str>, u64>,
    /// Occurrences of identical records, for the ids of records without an id.
    seen: HashMap<String, u32>,
    problems: Vec<Problem>,
    skipped: BTreeMap<String, u64>,
    org_names: HashMap<String, String>,
    providers: HashMap<String, (String, Role)>,
    registered: u64,
}

/// One inpatient stay: its encounters (the first is the stay's), and how it ends.
struct Stay<'a> {
    members: Vec<&'a EncounterRec>,
    /// The latest STOP (`None`: still open).
    end: Option<i64>,
    /// Ended by a transfer to another hospital at this instant.
    cut: Option<i64>,
    transfer_in: bool,
}

impl Stay<'_> {
    fn first(&self) -> &EncounterRec {
        self.members[0]
    }

    fn open_at(&self, t: i64) -> bool {
        self.cut.is_none() && self.end.is_none_or(|end| t < end)
    }
}

impl Mapper {
    fn malformed(&mut self, origin: &Origin, reason: impl Into<String>) {
        self.problems
            .push(Problem::malformed(origin.clone(), reason));
    }

    fn occurrence(&mut self, key: String) -> String {
        let n = self.seen.entry(key.clone()).or_insert(0);
        *n += 1;
        format!("{key}|#{n}")
    }

    fn professional(&self, provider: &str, org: &str) -> Option<Professional> {
        if provider.is_empty() {
            return None;
        }
        let (name, role) = self
            .providers
            .get(provider)
            .cloned()
            .unwrap_or((String::new(), Role::Unspecified));
        Some(Professional {
            id: provider.to_owned(),
            role: role as i32,
            name,
            organisation: org.to_owned(),
            ..Default::default()
        })
    }

    fn facility(&self, org: &str) -> Facility {
        Facility {
            id: org.to_owned(),
            name: self.org_names.get(org).cloned().unwrap_or_default(),
            ..Default::default()
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        patient: &str,
        key: &str,
        at: Timestamp,
        rank: u8,
        origin: &Arc<Origin>,
        correlation: &str,
        after: Option<String>,
        payload: Payload,
    ) -> String {
        let id = event_id(key);
        self.seq += 1;
        *self.events.entry(origin.file.clone()).or_default() += 1;
        let event = Event {
            event_id: id.clone(),
            patient_id: patient.to_owned(),
            occurred_at: Some(at),
            actor: Some(Actor {
                id: "synthea-import".into(),
                role: Role::System as i32,
                ..Default::default()
            }),
            source: self.source.clone(),
            correlation_id: correlation.to_owned(),
            payload: Some(payload),
            ..Default::default()
        };
        self.patients
            .entry(patient.to_owned())
            .or_default()
            .push(Item {
                event,
                origin: origin.clone(),
                rank,
                seq: self.seq,
                after,
            });
        id
    }

    /// Each patient's events in order: occurred_at, then rank, then the order they were built in.
    fn finish(self, rows: BTreeMap<Arc<str>, u64>) -> Built {
        let mut patients = self.patients;
        for items in patients.values_mut() {
            items.sort_by_key(|i| {
                let t = i.event.occurred_at.unwrap_or_default();
                (t.seconds, t.nanos, i.rank, i.seq)
            });
        }
        Built {
            patients,
            events: self.events,
            problems: self.problems,
            rows,
            skipped: self.skipped,
            registered: self.registered,
        }
    }

    /// `PatientRegistered` for each patient (the first record of an id; a second one is
    /// malformed); returns the patients and their deaths.
    fn register(&mut self, mut patients: Vec<PatientRec>) -> Registered {
        patients.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.origin.cmp(&b.origin)));
        let mut out = Registered::new();
        for p in patients {
            if p.id.is_empty() {
                self.malformed(&p.origin, "no patient id");
                continue;
            }
            if out.contains_key(&p.id) {
                self.malformed(&p.origin, format!("patient {} appears twice", p.id));
                continue;
            }
            let origin = Arc::new(p.origin);
            self.push(
                &p.id,
                &format!("patients.csv|{}|registered", p.id),
                p.birth,
                rank::REGISTRATION,
                &origin,
                "",
                None,
                Payload::PatientRegistered(PatientRegistered {
                    local_id: p.id.clone(),
                    birth_date: p.birth_date,
                    sex: p.sex as i32,
                    family_name: p.family,
                    given_name: p.given,
                    birth_place_code: p.birth_place,
                    birth_given_names: p.birth_given_names,
                    ..Default::default()
                }),
            );
            self.registered += 1;
            out.insert(p.id, (origin, p.death_day));
        }
        out
    }

    /// The encounters the mapping can use, their malformed reason codes dropped, in the order of
    /// their patient, START and id.
    fn checked_encounters(
        &mut self,
        encounters: Vec<EncounterRec>,
        patients: &Registered,
    ) -> Vec<EncounterRec> {
        let mut out = Vec::with_capacity(encounters.len());
        let mut ids = HashSet::new();
        for mut e in encounters {
            let problem = if e.id.is_empty() {
                Some("no encounter id".to_string())
            } else if !patients.contains_key(&e.patient) {
                Some(format!("patient {:?} is not in the export", e.patient))
            } else if e.stop.is_some_and(|s| s.seconds < e.start.seconds) {
                Some("it ends (STOP) before it starts (START)".to_string())
            } else if e.org.is_empty() && (e.class == Class::Inpatient || e.class.is_ed()) {
                Some("no organisation (the facility is required)".to_string())
            } else if !ids.insert(e.id.clone()) {
                Some(format!("encounter {} appears twice", e.id))
            } else {
                None
            };
            if let Some(reason) = problem {
                self.malformed(&e.origin, reason);
                continue;
            }
            let origin = e.origin.clone();
            e.reasons
                .retain(|c| match malformed_code(&c.system, &c.code) {
                    None => true,
                    Some(why) => {
                        self.problems.push(Problem::code_dropped(
                            origin.clone(),
                            format!("reason code {why}: the encounter is kept without it"),
                        ));
                        false
                    }
                });
            out.push(e);
        }
        out.sort_by(|a, b| {
            (&a.patient, a.start.seconds, &a.id).cmp(&(&b.patient, b.start.seconds, &b.id))
        });
        out
    }

    /// The encounters' events, patient by patient. Returns when each death is placed: the end of
    /// the day of death, or the discharge of the stay that ends in death.
    fn encounters(
        &mut self,
        encounters: &[EncounterRec],
        patients: &Registered,
    ) -> HashMap<String, i64> {
        let mut died_at: HashMap<String, i64> = patients
            .iter()
            .filter_map(|(p, (_, day))| day.map(|d| (p.clone(), d + DAY - 1)))
            .collect();
        for encs in encounters.chunk_by(|a, b| a.patient == b.patient) {
            let pid = encs[0].patient.as_str();
            let death_day = patients[pid].1;
            let stays = stays(encs);
            let admissions: Vec<i64> = stays.iter().map(|s| s.first().start.seconds).collect();
            let mut death_stay_done = false;
            for stay in &stays {
                let dies = death_day.filter(|day| {
                    !death_stay_done
                        && stay.cut.is_none()
                        && stay.first().start.seconds < day + DAY
                        && stay.end.is_none_or(|end| end >= *day)
                });
                if let Some(at) = self.stay(pid, stay, encs, dies) {
                    death_stay_done = true;
                    died_at.insert(pid.to_owned(), at);
                }
            }
            for e in encs {
                match e.class {
                    Class::Inpatient => {}
                    Class::Emergency | Class::UrgentCare => {
                        self.ed_visit(pid, e, &admissions, death_day)
                    }
                    Class::Home => self.home_visit(pid, e),
                    _ => self.contact(pid, e),
                }
            }
        }
        died_at
    }

    /// A stay's events: `Admitted`, `Transferred` at each change of unit, the later encounters'
    /// reasons, and `Discharged` (module doc, "Stays", "Death"). Returns when the patient died,
    /// if the stay ends in death.
    fn stay(
        &mut self,
        pid: &str,
        stay: &Stay,
        encs: &[EncounterRec],
        dies: Option<i64>,
    ) -> Option<i64> {
        let e = stay.first();
        let origin = Arc::new(e.origin.clone());
        let from_ed = encs
            .iter()
            .any(|x| x.class.is_ed() && leads_to(x, e.start.seconds));
        let admit_type = if stay.transfer_in {
            AdmitType::TransferIn
        } else if from_ed
            || e.desc.to_ascii_lowercase().contains("emergency")
            || EMERGENCY_CODES.contains(&e.code.as_str())
        {
            AdmitType::Emergency
        } else {
            AdmitType::Elective
        };
        let admitted = self.push(
            pid,
            &format!("encounters.csv|{}|admitted", e.id),
            e.start,
            rank::ADMISSION,
            &origin,
            &e.id,
            None,
            Payload::Admitted(Admitted {
                encounter_id: e.id.clone(),
                facility: Some(self.facility(&e.org)),
                unit: unit_of(e).into(),
                setting: journey_proto::v1::Setting::Inpatient as i32,
                admit_type: admit_type as i32,
                diagnoses: e.reasons.clone(),
                ..Default::default()
            }),
        );
        let (discharge, disposition, died) = match (dies, stay.cut) {
            (Some(day), _) => {
                let end = day + DAY - 1;
                let at = stay.end.map_or(end, |s| s.min(end));
                (Some(at), Disposition::Deceased, Some(at))
            }
            (None, Some(cut)) => (Some(cut), Disposition::OtherAcuteHospital, None),
            (None, None) => (stay.end, Disposition::Home, None),
        };
        self.transfers(pid, stay, discharge, &admitted);
        for m in &stay.members[1..] {
            if discharge.is_some_and(|d| m.start.seconds > d) {
                continue;
            }
            self.reasons(pid, m);
        }
        if let Some(at) = discharge {
            let zero = at <= e.start.seconds;
            self.push(
                pid,
                &format!("encounters.csv|{}|discharged", e.id),
                ts(at),
                if zero {
                    rank::ZERO_LENGTH_DISCHARGE
                } else {
                    rank::DISCHARGE
                },
                &origin,
                &e.id,
                Some(admitted),
                Payload::Discharged(Discharged {
                    encounter_id: e.id.clone(),
                    disposition: disposition as i32,
                    diagnoses: e.reasons.clone(),
                    ..Default::default()
                }),
            );
        }
        died
    }

    /// `Transferred` at each instant inside the stay where the unit changes: the unit of the
    /// latest-started encounter open at that instant.
    fn transfers(&mut self, pid: &str, stay: &Stay, discharge: Option<i64>, admitted: &str) {
        let first = stay.first();
        let inside = |t: i64| t > first.start.seconds && discharge.is_none_or(|d| t < d);
        let mut instants: Vec<i64> = stay.members[1..]
            .iter()
            .flat_map(|m| [Some(m.start.seconds), m.stop.map(|s| s.seconds)])
            .flatten()
            .filter(|t| inside(*t))
            .collect();
        instants.sort_unstable();
        instants.dedup();
        let mut unit = unit_of(first);
        for t in instants {
            let Some(now) = stay
                .members
                .iter()
                .filter(|m| m.start.seconds <= t && m.stop.is_none_or(|s| t < s.seconds))
                .max_by_key(|m| (m.start.seconds, &m.id))
            else {
                continue;
            };
            let to = unit_of(now);
            if to == unit {
                continue;
            }
            let origin = Arc::new(now.origin.clone());
            self.push(
                pid,
                &format!("encounters.csv|{}|transfer|{t}", first.id),
                ts(t),
                rank::TRANSFER,
                &origin,
                &first.id,
                Some(admitted.to_owned()),
                Payload::Transferred(Transferred {
                    encounter_id: first.id.clone(),
                    from_unit: unit.into(),
                    to_unit: to.into(),
                    historic: false,
                }),
            );
            unit = to;
        }
    }

    /// A `ConditionRecorded` for each reason of an encounter whose event carries no diagnoses.
    fn reasons(&mut self, pid: &str, e: &EncounterRec) {
        let origin = Arc::new(e.origin.clone());
        for code in &e.reasons {
            self.push(
                pid,
                &format!(
                    "encounters.csv|{}|reason|{}|{}",
                    e.id, code.system, code.code
                ),
                e.start,
                rank::CLINICAL,
                &origin,
                &e.id,
                None,
                Payload::ConditionRecorded(ConditionRecorded {
                    diagnosis: Some(code.clone()),
                    onset: Some(e.start),
                    encounter_id: e.id.clone(),
                }),
            );
        }
    }

    /// `EmergencyVisit`, its outcome decided by what follows it (module doc, "ED outcome").
    fn ed_visit(&mut self, pid: &str, e: &EncounterRec, admissions: &[i64], death: Option<i64>) {
        let outcome = if admissions.iter().any(|a| leads_to(e, *a)) {
            EdOutcome::Admitted
        } else if death.is_some_and(|d| day_start(e.start.seconds) == d) {
            EdOutcome::Deceased
        } else {
            EdOutcome::DischargedHome
        };
        let facility = self.facility(&e.org);
        self.push(
            pid,
            &format!("encounters.csv|{}|ed", e.id),
            e.start,
            rank::ED_VISIT,
            &Arc::new(e.origin.clone()),
            &e.id,
            None,
            Payload::EmergencyVisit(EmergencyVisit {
                visit_id: e.id.clone(),
                facility: Some(facility),
                outcome: outcome as i32,
                diagnoses: e.reasons.clone(),
            }),
        );
    }

    /// `HomeVisitRecorded` (home and hospice encounters) and the reasons.
    fn home_visit(&mut self, pid: &str, e: &EncounterRec) {
        let minutes = (e.end() - e.start.seconds) / 60;
        let professional = self.professional(&e.provider, &e.org);
        self.push(
            pid,
            &format!("encounters.csv|{}|home-visit", e.id),
            e.start,
            rank::CONTACT,
            &Arc::new(e.origin.clone()),
            &e.id,
            None,
            Payload::HomeVisitRecorded(HomeVisitRecorded {
                professional,
                channel: ContactChannel::Visit as i32,
                duration_minutes: u32::try_from(minutes).unwrap_or(u32::MAX),
                notes_ref: format!("synthea:encounter:{}", e.id),
            }),
        );
        self.reasons(pid, e);
    }

    /// `ContactMade` (every other class; `virtual` is a teleconsultation) and the reasons.
    fn contact(&mut self, pid: &str, e: &EncounterRec) {
        let channel = if e.class == Class::Virtual {
            ContactChannel::Teleconsultation
        } else {
            ContactChannel::Visit
        };
        let professional = self.professional(&e.provider, &e.org);
        self.push(
            pid,
            &format!("encounters.csv|{}|contact", e.id),
            e.start,
            rank::CONTACT,
            &Arc::new(e.origin.clone()),
            &e.id,
            None,
            Payload::ContactMade(ContactMade {
                professional,
                channel: channel as i32,
                reason: e.desc.clone(),
            }),
        );
        self.reasons(pid, e);
    }

    /// `PatientDeceased`, now that the stays ending in death are known.
    fn deaths(&mut self, patients: &Registered, died_at: &HashMap<String, i64>) {
        let mut dead: Vec<(&String, &Arc<Origin>)> = patients
            .iter()
            .filter(|(_, (_, d))| d.is_some())
            .map(|(p, (o, _))| (p, o))
            .collect();
        dead.sort();
        for (pid, origin) in dead {
            let at = ts(died_at[pid]);
            self.push(
                pid,
                &format!("patients.csv|{pid}|deceased"),
                at,
                rank::DEATH,
                origin,
                "",
                None,
                Payload::PatientDeceased(PatientDeceased { died_at: Some(at) }),
            );
        }
    }

    /// Why a clinical or observation record cannot be used.
    fn check_refs(
        patient: &str,
        encounter: &str,
        patients: &Registered,
        encounters: &HashMap<&str, &EncounterRec>,
    ) -> Option<String> {
        if !patients.contains_key(patient) {
            return Some(format!("patient {patient:?} is not in the export"));
        }
        match encounters.get(encounter) {
            None if !encounter.is_empty() => {
                Some(format!("encounter {encounter:?} is not in the export"))
            }
            Some(e) if e.patient != patient => {
                Some(format!("encounter {encounter:?} is another patient's"))
            }
            _ => None,
        }
    }

    /// Conditions, medications and care plans: one event each.
    fn clinical(
        &mut self,
        mut records: Vec<ClinicalRec>,
        patients: &Registered,
        encounters: &HashMap<&str, &EncounterRec>,
    ) {
        records.sort_by(|a, b| {
            (a.kind, &a.patient, a.start.seconds, &a.encounter, &a.code)
                .cmp(&(b.kind, &b.patient, b.start.seconds, &b.encounter, &b.code))
                .then_with(|| {
                    (&a.desc, &a.care_plan_id, &a.reason).cmp(&(
                        &b.desc,
                        &b.care_plan_id,
                        &b.reason,
                    ))
                })
                .then_with(|| a.stop.map(|s| s.seconds).cmp(&b.stop.map(|s| s.seconds)))
                .then_with(|| a.origin.cmp(&b.origin))
        });
        for r in records {
            let problem = Self::check_refs(&r.patient, &r.encounter, patients, encounters)
                .or_else(|| malformed_code(&r.system, &r.code))
                .or_else(|| {
                    (r.kind == ClinicalKind::CarePlan && r.care_plan_id.is_empty())
                        .then(|| "no care plan id".to_string())
                });
            if let Some(reason) = problem {
                self.malformed(&r.origin, reason);
                continue;
            }
            let key = match r.kind {
                ClinicalKind::CarePlan => format!("careplans.csv|{}", r.care_plan_id),
                kind => self.occurrence(format!(
                    "{kind:?}|{}|{}|{}|{}|{}",
                    r.patient,
                    r.encounter,
                    r.code,
                    r.start.seconds,
                    r.stop.map_or(String::new(), |s| s.seconds.to_string())
                )),
            };
            let payload = match r.kind {
                ClinicalKind::Condition => Payload::ConditionRecorded(ConditionRecorded {
                    diagnosis: Some(Code {
                        system: r.system.clone(),
                        code: r.code.clone(),
                        display: r.desc.clone(),
                    }),
                    onset: Some(r.start),
                    encounter_id: r.encounter.clone(),
                }),
                ClinicalKind::Medication => {
                    let days = r
                        .stop
                        .map_or(0, |s| (s.seconds - r.start.seconds + DAY - 1) / DAY);
                    let prescriber = encounters
                        .get(r.encounter.as_str())
                        .and_then(|e| self.professional(&e.provider, &e.org));
                    Payload::PrescriptionIssued(PrescriptionIssued {
                        prescription_id: event_id(&key),
                        medication: Some(Code {
                            system: r.system.clone(),
                            code: r.code.clone(),
                            display: r.desc.clone(),
                        }),
                        duration_days: u32::try_from(days.max(0)).unwrap_or(u32::MAX),
                        prescriber,
                        encounter_id: r.encounter.clone(),
                        ..Default::default()
                    })
                }
                ClinicalKind::CarePlan => Payload::CarePlanEstablished(CarePlanEstablished {
                    care_plan_id: r.care_plan_id.clone(),
                    goals: vec![r.desc.clone()],
                    symptoms_to_watch: match r.reason.as_str() {
                        "" => Vec::new(),
                        s => vec![s.to_owned()],
                    },
                    encounter_id: r.encounter.clone(),
                    ..Default::default()
                }),
            };
            let origin = Arc::new(r.origin);
            self.push(
                &r.patient,
                &key,
                r.start,
                rank::CLINICAL,
                &origin,
                &r.encounter,
                None,
                payload,
            );
        }
    }

    /// Numeric observations as `ObservationRecorded`; the others are counted and skipped.
    fn observations(
        &mut self,
        mut records: Vec<ObservationRec>,
        patients: &Registered,
        encounters: &HashMap<&str, &EncounterRec>,
    ) {
        records.sort_by(|a, b| {
            (
                &a.patient,
                a.at.seconds,
                &a.encounter,
                &a.code,
                &a.desc,
                &a.unit,
            )
                .cmp(&(
                    &b.patient,
                    b.at.seconds,
                    &b.encounter,
                    &b.code,
                    &b.desc,
                    &b.unit,
                ))
                .then_with(|| {
                    a.value
                        .partial_cmp(&b.value)
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .then_with(|| a.origin.cmp(&b.origin))
        });
        for r in records {
            let problem = Self::check_refs(&r.patient, &r.encounter, patients, encounters)
                .or_else(|| malformed_code(LOINC, &r.code));
            if let Some(reason) = problem {
                self.malformed(&r.origin, reason);
                continue;
            }
            let Some(value) = r.value else {
                *self
                    .skipped
                    .entry("non-numeric observations".into())
                    .or_default() += 1;
                continue;
            };
            let key = self.occurrence(format!(
                "observation|{}|{}|{}|{}|{}|{}",
                r.patient, r.encounter, r.code, r.at.seconds, r.at.nanos, value
            ));
            let origin = Arc::new(r.origin);
            self.push(
                &r.patient,
                &key,
                r.at,
                rank::CLINICAL,
                &origin,
                &r.encounter,
                None,
                Payload::ObservationRecorded(ObservationRecorded {
                    measure: measure_of(&r.code, &r.desc),
                    value,
                    unit: r.unit.clone(),
                    code: Some(Code {
                        system: LOINC.into(),
                        code: r.code.clone(),
                        display: r.desc.clone(),
                    }),
                    ..Default::default()
                }),
            );
        }
    }
}

/// Whether an admission at `admission` starts during the (ED) visit `ed` or at most
/// [`ED_TO_ADMISSION_SECS`] after it ends: the admission comes from the ED.
fn leads_to(ed: &EncounterRec, admission: i64) -> bool {
    ed.start.seconds <= admission && admission <= ed.end() + ED_TO_ADMISSION_SECS
}

/// A patient's inpatient stays, from their encounters in START order (module doc, "Stays").
fn stays(encs: &[EncounterRec]) -> Vec<Stay<'_>> {
    let mut stays: Vec<Stay> = Vec::new();
    for e in encs.iter().filter(|e| e.class == Class::Inpatient) {
        let mut transfer_in = false;
        if let Some(cur) = stays.last_mut() {
            if cur.open_at(e.start.seconds) {
                if cur.first().org == e.org {
                    cur.end = match (cur.end, e.stop) {
                        (Some(a), Some(b)) => Some(a.max(b.seconds)),
                        _ => None,
                    };
                    cur.members.push(e);
                    continue;
                }
                cur.cut = Some(e.start.seconds);
                transfer_in = true;
            }
        }
        stays.push(Stay {
            members: vec![e],
            end: e.stop.map(|s| s.seconds),
            cut: None,
            transfer_in,
        });
    }
    stays
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
    }
}
