//! `journey import synthea <dir> [--strict]`: a Synthea CSV export as journey events, appended
//! through the gRPC Append API.
//!
//! # Mapping (one CSV row → events)
//!
//! | file | row | event(s) |
//! |---|---|---|
//! | `patients.csv` | every patient | `PatientRegistered` at BIRTHDATE 00:00Z (birth date, sex, names, local id); `PatientDeceased` when DEATHDATE is set |
//! | `encounters.csv` | ENCOUNTERCLASS `inpatient` | `Admitted` at START (setting INPATIENT, facility = ORGANIZATION id + name, diagnoses = REASONCODE as SNOMED-CT) and `Discharged` at STOP |
//! | | `emergency`, `urgentcare` | `EmergencyVisit` at START (facility, outcome, diagnoses) |
//! | | `home`, `hospice` | `HomeVisitRecorded` at START (provider, channel VISIT, duration) |
//! | | `virtual` | `ContactMade` at START, channel TELECONSULTATION, reason = DESCRIPTION |
//! | | `ambulatory`, `outpatient`, `wellness` and any other class | `ContactMade` at START, channel VISIT, reason = DESCRIPTION |
//! | `conditions.csv` | every row | `ConditionRecorded` at START (SNOMED-CT code, onset START, encounter) |
//! | `medications.csv` | every row | `PrescriptionIssued` at START (RxNorm code, duration STOP−START in days, prescriber = the encounter's provider) |
//! | `observations.csv` | numeric rows | `ObservationRecorded` at DATE (LOINC code, value, UCUM unit); non-numeric rows are counted and skipped |
//! | `careplans.csv` (optional) | every row | `CarePlanEstablished` at START (goal = DESCRIPTION, symptom to watch = REASONDESCRIPTION) |
//! | `organizations.csv`, `providers.csv` (optional) | | facility names; professional names and roles (GENERAL PRACTICE → GP, other specialities → SPECIALIST) |
//!
//! Rules decided here:
//! - **Admit type**: EMERGENCY when the encounter's DESCRIPTION contains "emergency", its CODE is
//!   an emergency-admission SNOMED code (50849002, 183452005, 4525004), or an emergency/urgent-care
//!   encounter of the same patient started before it and ended at most [`ED_TO_ADMISSION_SECS`]
//!   (6 h) before its START; ELECTIVE otherwise.
//! - **ED outcome**: ADMITTED when an inpatient encounter of the same patient starts between the
//!   visit's START and 6 h after its STOP; otherwise DECEASED when the visit starts on the day of
//!   death; otherwise DISCHARGED_HOME.
//! - **Death**: Synthea gives DEATHDATE as a day, so the death is placed at the end of that day
//!   (23:59:59Z): what happened that day is not "after death". An inpatient stay open on the day of
//!   death (START ≤ end of that day, STOP on or after it, or no STOP) ends in death: `Discharged`
//!   with disposition DECEASED at min(STOP, end of the day of death), and `PatientDeceased.died_at`
//!   is that same instant. Other stays are discharged HOME at STOP.
//! - **Order**: each patient's events are sorted by occurred_at; at the same instant: registration,
//!   discharges, ED visits, admissions, (zero-length stays' discharges), the rest, death last.
//!
//! # Identity and idempotency
//!
//! Event ids are UUID v5 (namespace derived from `urn:journey:import:synthea`) over the row
//! identity: `patients.csv` and `encounters.csv` rows by their Id (plus the event kind),
//! `careplans.csv` by Id, the other files by the full row text plus its occurrence number among
//! identical rows. Patient ids are Synthea's patient Ids. A re-run therefore appends nothing.
//!
//! # Appending
//!
//! Patients are appended concurrently ([`CONCURRENCY`] at a time), each patient's events in order,
//! in batches of up to [`CHUNK`]. A batch is atomic: when the journey rules refuse one event
//! (FAILED_PRECONDITION, or INVALID_ARGUMENT for a field), that event's row is reported (file,
//! line, id, reason), the event is dropped (a refused `Admitted` also drops its `Discharged`) and
//! the rest is sent again. When a batch mixes stored and new events (ALREADY_EXISTS: a re-run
//! after refusals), the patient goes on one event at a time. `--strict` stops at the first
//! malformed or refused row with exit code 1.
use super::{
    csv_table::{get, get_opt, Col, Table},
    parse_time, Problem,
};
use crate::client::{self, LogClient};
use futures::StreamExt;
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        event::Payload, Actor, AdmitType, Admitted, AppendRequest, CarePlanEstablished, Code,
        ConditionRecorded, ContactChannel, ContactMade, Discharged, Disposition, EdOutcome,
        EmergencyVisit, Event, Facility, HomeVisitRecorded, ObservationRecorded, PatientDeceased,
        PatientRegistered, PrescriptionIssued, Professional, Role, Sex,
    },
    EventType,
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, LazyLock, Mutex,
    },
    time::{Duration, Instant},
};
use uuid::Uuid;

/// Patients appended at the same time.
pub const CONCURRENCY: usize = 8;
/// Most events in one Append call.
pub const CHUNK: usize = 500;
/// How long after an ED visit ends an inpatient admission still counts as coming from it.
pub const ED_TO_ADMISSION_SECS: i64 = 6 * 3600;
/// SNOMED CT codes of emergency admissions.
const EMERGENCY_CODES: &[&str] = &["50849002", "183452005", "4525004"];
const DAY: i64 = 86_400;

static NAMESPACE: LazyLock<Uuid> =
    LazyLock::new(|| Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:journey:import:synthea"));

fn event_id(key: &str) -> String {
    Uuid::new_v5(&NAMESPACE, key.as_bytes()).to_string()
}

pub struct Options {
    pub dir: PathBuf,
    pub strict: bool,
    pub server: String,
    pub token: Option<String>,
}

/// The CSV row an event comes from.
#[derive(Debug)]
struct Origin {
    file: &'static str,
    line: u64,
    id: String,
}

struct Item {
    event: Event,
    origin: Arc<Origin>,
    rank: u8,
    seq: u64,
    /// The event this one needs (a discharge needs its admission).
    after: Option<String>,
}

impl Item {
    fn kind(&self) -> &'static str {
        self.event
            .payload
            .as_ref()
            .map_or("?", |p| EventType::of(p).name())
    }
}

#[derive(Default, Clone, Copy)]
struct FileCount {
    rows: u64,
    events: u64,
    appended: u64,
    present: u64,
    refused: u64,
}

const FILES: [&str; 8] = [
    "patients.csv",
    "encounters.csv",
    "conditions.csv",
    "medications.csv",
    "observations.csv",
    "careplans.csv",
    "organizations.csv",
    "providers.csv",
];

/// What [`build`] produces: each patient's events in order, and what it counted.
struct Built {
    patients: BTreeMap<String, Vec<Item>>,
    files: BTreeMap<&'static str, FileCount>,
    problems: Vec<Problem>,
    non_numeric: u64,
    registered: u64,
}

struct Builder {
    source: String,
    seq: u64,
    patients: BTreeMap<String, Vec<Item>>,
    files: BTreeMap<&'static str, FileCount>,
    /// Occurrences of identical rows, for the ids of rows without an Id column.
    seen: HashMap<(&'static str, String), u32>,
}

impl Builder {
    fn origin(&self, file: &'static str, line: u64, id: impl Into<String>) -> Arc<Origin> {
        Arc::new(Origin {
            file,
            line,
            id: id.into(),
        })
    }

    /// The identity of a row without an Id column: its text and how many identical rows came
    /// before it.
    fn row_key(&mut self, file: &'static str, record: &csv::StringRecord) -> String {
        let text = record.iter().collect::<Vec<_>>().join("\u{1f}");
        let n = self.seen.entry((file, text.clone())).or_insert(0);
        *n += 1;
        format!("{file}|{text}|#{n}")
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
        self.files.entry(origin.file).or_default().events += 1;
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
}

fn snomed(code: &str, display: &str) -> Vec<Code> {
    if code.is_empty() {
        return Vec::new();
    }
    vec![Code {
        system: "SNOMED-CT".into(),
        code: code.into(),
        display: display.into(),
    }]
}

fn ts(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

/// A required timestamp column; `Err` is the reason for a malformed-row report.
fn time_col(record: &csv::StringRecord, col: Col, name: &str) -> Result<Timestamp, String> {
    let v = get(record, col);
    if v.is_empty() {
        return Err(format!("{name} is empty"));
    }
    parse_time(v).ok_or_else(|| format!("{name} {v:?} is not a date or UTC date-time"))
}

fn opt_time_col(
    record: &csv::StringRecord,
    col: Col,
    name: &str,
) -> Result<Option<Timestamp>, String> {
    if get(record, col).is_empty() {
        return Ok(None);
    }
    time_col(record, col, name).map(Some)
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

struct Enc {
    line: u64,
    id: String,
    start: Timestamp,
    stop: Option<Timestamp>,
    patient: String,
    org: String,
    provider: String,
    class: String,
    code: String,
    desc: String,
    reason_code: String,
    reason_desc: String,
}

impl Enc {
    fn end(&self) -> i64 {
        self.stop.map_or(self.start.seconds, |s| s.seconds)
    }
}

/// Reads the export and builds every patient's events (no network).
fn build(dir: &Path, source: String) -> anyhow::Result<Built> {
    let mut problems = Vec::new();
    let mut b = Builder {
        source,
        seq: 0,
        patients: BTreeMap::new(),
        files: BTreeMap::new(),
        seen: HashMap::new(),
    };
    let mut non_numeric = 0;

    // Facility names and professionals.
    let mut org_names: HashMap<String, String> = HashMap::new();
    if let Some(t) = Table::read(dir, "organizations.csv", &["Id", "NAME"], &mut problems)? {
        let (id, name) = (t.col("Id"), t.col("NAME"));
        b.files.entry(t.file).or_default().rows = t.rows.len() as u64;
        for (_, r) in &t.rows {
            org_names.insert(get(r, id).to_owned(), get(r, name).to_owned());
        }
    }
    let mut providers: HashMap<String, (String, Role)> = HashMap::new();
    if let Some(t) = Table::read(dir, "providers.csv", &["Id", "NAME"], &mut problems)? {
        let (id, name, spec) = (t.col("Id"), t.col("NAME"), t.opt_col("SPECIALITY"));
        b.files.entry(t.file).or_default().rows = t.rows.len() as u64;
        for (_, r) in &t.rows {
            let role = match get_opt(r, spec) {
                "" => Role::Unspecified,
                "GENERAL PRACTICE" => Role::Gp,
                _ => Role::Specialist,
            };
            providers.insert(get(r, id).to_owned(), (get(r, name).to_owned(), role));
        }
    }
    let professional = |provider: &str, org: &str| -> Option<Professional> {
        if provider.is_empty() {
            return None;
        }
        let (name, role) = providers
            .get(provider)
            .cloned()
            .unwrap_or((String::new(), Role::Unspecified));
        Some(Professional {
            id: provider.to_owned(),
            role: role as i32,
            name,
            organisation: org.to_owned(),
        })
    };
    let facility = |org: &str| Facility {
        id: org.to_owned(),
        name: org_names.get(org).cloned().unwrap_or_default(),
        ..Default::default()
    };

    // Patients: registration now, death once the encounters are known.
    let Some(t) = Table::read(
        dir,
        "patients.csv",
        &["Id", "BIRTHDATE", "DEATHDATE", "GENDER"],
        &mut problems,
    )?
    else {
        anyhow::bail!("{} has no usable patients.csv", dir.display());
    };
    let (c_id, c_birth, c_death, c_gender) = (
        t.col("Id"),
        t.col("BIRTHDATE"),
        t.col("DEATHDATE"),
        t.col("GENDER"),
    );
    let (c_first, c_last) = (t.opt_col("FIRST"), t.opt_col("LAST"));
    b.files.entry(t.file).or_default().rows = t.rows.len() as u64;
    // patient -> (line, day of death start)
    let mut deaths: HashMap<String, (u64, i64)> = HashMap::new();
    let mut registered = 0;
    for (line, r) in &t.rows {
        let id = get(r, c_id);
        let bad = |reason: String| Problem::malformed("patients.csv", *line, id.to_owned(), reason);
        if id.is_empty() {
            problems.push(bad("Id is empty".into()));
            continue;
        }
        let birth = match time_col(r, c_birth, "BIRTHDATE") {
            Ok(t) => t,
            Err(e) => {
                problems.push(bad(e));
                continue;
            }
        };
        let death = match opt_time_col(r, c_death, "DEATHDATE") {
            Ok(d) => d,
            Err(e) => {
                problems.push(bad(e));
                continue;
            }
        };
        let sex = match get(r, c_gender) {
            "M" => Sex::Male,
            "F" => Sex::Female,
            "" => Sex::Unspecified,
            _ => Sex::Other,
        };
        let origin = b.origin("patients.csv", *line, id);
        b.push(
            id,
            &format!("patients.csv|{id}|registered"),
            birth,
            0,
            &origin,
            "",
            None,
            Payload::PatientRegistered(PatientRegistered {
                local_id: id.to_owned(),
                birth_date: get(r, c_birth).chars().take(10).collect(),
                sex: sex as i32,
                family_name: get_opt(r, c_last).to_owned(),
                given_name: get_opt(r, c_first).to_owned(),
                ..Default::default()
            }),
        );
        registered += 1;
        if let Some(d) = death {
            deaths.insert(id.to_owned(), (*line, d.seconds.div_euclid(DAY) * DAY));
        }
    }

    // Encounters.
    let mut encounters: Vec<Enc> = Vec::new();
    if let Some(t) = Table::read(
        dir,
        "encounters.csv",
        &[
            "Id",
            "START",
            "STOP",
            "PATIENT",
            "ORGANIZATION",
            "PROVIDER",
            "ENCOUNTERCLASS",
            "CODE",
            "DESCRIPTION",
        ],
        &mut problems,
    )? {
        let cols = [
            "Id",
            "START",
            "STOP",
            "PATIENT",
            "ORGANIZATION",
            "PROVIDER",
            "ENCOUNTERCLASS",
            "CODE",
            "DESCRIPTION",
        ]
        .map(|c| t.col(c));
        let (rc, rd) = (t.opt_col("REASONCODE"), t.opt_col("REASONDESCRIPTION"));
        b.files.entry(t.file).or_default().rows = t.rows.len() as u64;
        for (line, r) in &t.rows {
            let id = get(r, cols[0]);
            let parsed = (|| {
                if id.is_empty() {
                    return Err("Id is empty".to_string());
                }
                let start = time_col(r, cols[1], "START")?;
                let stop = opt_time_col(r, cols[2], "STOP")?;
                if stop.is_some_and(|s| s.seconds < start.seconds) {
                    return Err("STOP is before START".into());
                }
                let patient = get(r, cols[3]);
                if patient.is_empty() {
                    return Err("PATIENT is empty".into());
                }
                let class = get(r, cols[6]).to_ascii_lowercase();
                let org = get(r, cols[4]);
                if org.is_empty()
                    && matches!(class.as_str(), "inpatient" | "emergency" | "urgentcare")
                {
                    return Err("ORGANIZATION is empty (the facility is required)".into());
                }
                Ok(Enc {
                    line: *line,
                    id: id.to_owned(),
                    start,
                    stop,
                    patient: patient.to_owned(),
                    org: org.to_owned(),
                    provider: get(r, cols[5]).to_owned(),
                    class,
                    code: get(r, cols[7]).to_owned(),
                    desc: get(r, cols[8]).to_owned(),
                    reason_code: get_opt(r, rc).to_owned(),
                    reason_desc: get_opt(r, rd).to_owned(),
                })
            })();
            match parsed {
                Ok(e) => encounters.push(e),
                Err(reason) => problems.push(Problem::malformed(
                    "encounters.csv",
                    *line,
                    id.to_owned(),
                    reason,
                )),
            }
        }
    } else {
        problems.push(Problem::malformed(
            "encounters.csv",
            0,
            String::new(),
            "file missing or unusable",
        ));
    }
    let mut by_patient: HashMap<&str, Vec<&Enc>> = HashMap::new();
    for e in &encounters {
        by_patient.entry(e.patient.as_str()).or_default().push(e);
    }
    let enc_provider: HashMap<&str, (&str, &str)> = encounters
        .iter()
        .map(|e| (e.id.as_str(), (e.provider.as_str(), e.org.as_str())))
        .collect();
    // patient -> when the death is placed
    let mut died_at: HashMap<String, i64> = deaths
        .iter()
        .map(|(p, (_, day))| (p.clone(), day + DAY - 1))
        .collect();
    let mut patient_ids: Vec<&str> = by_patient.keys().copied().collect();
    patient_ids.sort_unstable();
    for pid in patient_ids {
        let mut encs = by_patient[pid].clone();
        encs.sort_by_key(|e| (e.start.seconds, e.line));
        let is_ed = |e: &Enc| matches!(e.class.as_str(), "emergency" | "urgentcare");
        let death_day = deaths.get(pid).map(|(_, d)| *d);
        let mut death_stay_done = false;
        for e in &encs {
            let origin = b.origin("encounters.csv", e.line, e.id.clone());
            let key = format!("encounters.csv|{}", e.id);
            match e.class.as_str() {
                "inpatient" => {
                    let from_ed = encs.iter().any(|x| {
                        is_ed(x)
                            && x.start.seconds <= e.start.seconds
                            && e.start.seconds <= x.end() + ED_TO_ADMISSION_SECS
                    });
                    let emergency = from_ed
                        || e.desc.to_ascii_lowercase().contains("emergency")
                        || EMERGENCY_CODES.contains(&e.code.as_str());
                    let diagnoses = snomed(&e.reason_code, &e.reason_desc);
                    let admitted = b.push(
                        pid,
                        &format!("{key}|admitted"),
                        e.start,
                        3,
                        &origin,
                        &e.id,
                        None,
                        Payload::Admitted(Admitted {
                            encounter_id: e.id.clone(),
                            facility: Some(facility(&e.org)),
                            setting: journey_proto::v1::Setting::Inpatient as i32,
                            admit_type: if emergency {
                                AdmitType::Emergency
                            } else {
                                AdmitType::Elective
                            } as i32,
                            diagnoses: diagnoses.clone(),
                            ..Default::default()
                        }),
                    );
                    // Does the stay end in death?
                    let dies = death_day.filter(|day| {
                        !death_stay_done
                            && e.start.seconds < day + DAY
                            && e.stop.is_none_or(|s| s.seconds >= *day)
                    });
                    let (at, disposition) = match (dies, e.stop) {
                        (Some(day), stop) => {
                            death_stay_done = true;
                            let end = day + DAY - 1;
                            let at = stop.map_or(end, |s| s.seconds.min(end));
                            died_at.insert(pid.to_owned(), at);
                            (Some(ts(at)), Disposition::Deceased)
                        }
                        (None, stop) => (stop, Disposition::Home),
                    };
                    if let Some(at) = at {
                        let zero = at.seconds <= e.start.seconds;
                        b.push(
                            pid,
                            &format!("{key}|discharged"),
                            at,
                            if zero { 4 } else { 1 },
                            &origin,
                            &e.id,
                            Some(admitted),
                            Payload::Discharged(Discharged {
                                encounter_id: e.id.clone(),
                                disposition: disposition as i32,
                                diagnoses,
                                ..Default::default()
                            }),
                        );
                    }
                }
                "emergency" | "urgentcare" => {
                    let admitted = encs.iter().any(|x| {
                        x.class == "inpatient"
                            && x.start.seconds >= e.start.seconds
                            && x.start.seconds <= e.end() + ED_TO_ADMISSION_SECS
                    });
                    let outcome = if admitted {
                        EdOutcome::Admitted
                    } else if death_day.is_some_and(|d| e.start.seconds.div_euclid(DAY) * DAY == d)
                    {
                        EdOutcome::Deceased
                    } else {
                        EdOutcome::DischargedHome
                    };
                    b.push(
                        pid,
                        &format!("{key}|ed"),
                        e.start,
                        2,
                        &origin,
                        &e.id,
                        None,
                        Payload::EmergencyVisit(EmergencyVisit {
                            visit_id: e.id.clone(),
                            facility: Some(facility(&e.org)),
                            outcome: outcome as i32,
                            diagnoses: snomed(&e.reason_code, &e.reason_desc),
                        }),
                    );
                }
                "home" | "hospice" => {
                    let minutes = (e.end() - e.start.seconds) / 60;
                    b.push(
                        pid,
                        &format!("{key}|home-visit"),
                        e.start,
                        5,
                        &origin,
                        &e.id,
                        None,
                        Payload::HomeVisitRecorded(HomeVisitRecorded {
                            professional: professional(&e.provider, &e.org),
                            channel: ContactChannel::Visit as i32,
                            duration_minutes: u32::try_from(minutes).unwrap_or(u32::MAX),
                            notes_ref: format!("synthea:encounter:{}", e.id),
                        }),
                    );
                }
                other => {
                    let channel = if other == "virtual" {
                        ContactChannel::Teleconsultation
                    } else {
                        ContactChannel::Visit
                    };
                    b.push(
                        pid,
                        &format!("{key}|contact"),
                        e.start,
                        5,
                        &origin,
                        &e.id,
                        None,
                        Payload::ContactMade(ContactMade {
                            professional: professional(&e.provider, &e.org),
                            channel: channel as i32,
                            reason: e.desc.clone(),
                        }),
                    );
                }
            }
        }
    }
    // Deaths, now that stays ending in death are known.
    let mut dead: Vec<(&String, &(u64, i64))> = deaths.iter().collect();
    dead.sort();
    for (pid, (line, _)) in dead {
        let at = ts(died_at[pid]);
        let origin = b.origin("patients.csv", *line, pid.clone());
        b.push(
            pid,
            &format!("patients.csv|{pid}|deceased"),
            at,
            9,
            &origin,
            "",
            None,
            Payload::PatientDeceased(PatientDeceased { died_at: Some(at) }),
        );
    }

    // Conditions.
    let common = ["START", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"];
    for file in ["conditions.csv", "medications.csv", "careplans.csv"] {
        let mut required = common.to_vec();
        if file == "careplans.csv" {
            required.push("Id");
        }
        let Some(t) = Table::read(dir, file, &required, &mut problems)? else {
            if file != "careplans.csv" {
                problems.push(Problem::malformed(
                    file,
                    0,
                    String::new(),
                    "file missing or unusable",
                ));
            }
            continue;
        };
        let [c_start, c_pat, c_enc, c_code, c_desc] = common.map(|c| t.col(c));
        let c_stop = t.opt_col("STOP");
        let c_id = t.opt_col("Id");
        let c_reason = t.opt_col("REASONDESCRIPTION");
        b.files.entry(t.file).or_default().rows = t.rows.len() as u64;
        for (line, r) in &t.rows {
            let pid = get(r, c_pat);
            let code = get(r, c_code);
            let enc = get(r, c_enc);
            let desc = get(r, c_desc);
            let row_id = match get_opt(r, c_id) {
                "" => format!("patient {pid}, code {code}"),
                id => id.to_owned(),
            };
            let bad = |reason: String| Problem::malformed(file, *line, row_id.clone(), reason);
            let start = match time_col(r, c_start, "START") {
                Ok(t) => t,
                Err(e) => {
                    problems.push(bad(e));
                    continue;
                }
            };
            if pid.is_empty() || code.is_empty() {
                problems.push(bad("PATIENT or CODE is empty".into()));
                continue;
            }
            let key = match file {
                "careplans.csv" => format!("careplans.csv|{}", get_opt(r, c_id)),
                _ => b.row_key(file, r),
            };
            let origin = b.origin(file, *line, row_id.clone());
            let payload = match file {
                "conditions.csv" => Payload::ConditionRecorded(ConditionRecorded {
                    diagnosis: snomed(code, desc).pop(),
                    onset: Some(start),
                    encounter_id: enc.to_owned(),
                }),
                "medications.csv" => {
                    let stop = match c_stop.map(|c| opt_time_col(r, c, "STOP")) {
                        Some(Err(e)) => {
                            problems.push(bad(e));
                            continue;
                        }
                        Some(Ok(s)) => s,
                        None => None,
                    };
                    let days = stop.map_or(0, |s| (s.seconds - start.seconds + DAY - 1) / DAY);
                    let prescriber = enc_provider.get(enc).and_then(|(p, o)| professional(p, o));
                    Payload::PrescriptionIssued(PrescriptionIssued {
                        prescription_id: event_id(&key),
                        medication: Some(Code {
                            system: "RXNORM".into(),
                            code: code.into(),
                            display: desc.into(),
                        }),
                        duration_days: u32::try_from(days.max(0)).unwrap_or(u32::MAX),
                        prescriber,
                        encounter_id: enc.to_owned(),
                        ..Default::default()
                    })
                }
                _ => Payload::CarePlanEstablished(CarePlanEstablished {
                    care_plan_id: get_opt(r, c_id).to_owned(),
                    goals: vec![desc.to_owned()],
                    symptoms_to_watch: match get_opt(r, c_reason) {
                        "" => Vec::new(),
                        s => vec![s.to_owned()],
                    },
                    encounter_id: enc.to_owned(),
                    ..Default::default()
                }),
            };
            b.push(pid, &key, start, 6, &origin, enc, None, payload);
        }
    }

    // Observations.
    match Table::read(
        dir,
        "observations.csv",
        &[
            "DATE",
            "PATIENT",
            "ENCOUNTER",
            "CODE",
            "DESCRIPTION",
            "VALUE",
            "UNITS",
        ],
        &mut problems,
    )? {
        None => problems.push(Problem::malformed(
            "observations.csv",
            0,
            String::new(),
            "file missing or unusable",
        )),
        Some(t) => {
            let [c_date, c_pat, c_enc, c_code, c_desc, c_value, c_units] = [
                "DATE",
                "PATIENT",
                "ENCOUNTER",
                "CODE",
                "DESCRIPTION",
                "VALUE",
                "UNITS",
            ]
            .map(|c| t.col(c));
            let c_type = t.opt_col("TYPE");
            b.files.entry(t.file).or_default().rows = t.rows.len() as u64;
            for (line, r) in &t.rows {
                let pid = get(r, c_pat);
                let code = get(r, c_code);
                let row_id = format!("patient {pid}, code {code}");
                let at = match time_col(r, c_date, "DATE") {
                    Ok(t) => t,
                    Err(e) => {
                        problems.push(Problem::malformed(t.file, *line, row_id, e));
                        continue;
                    }
                };
                if pid.is_empty() || code.is_empty() {
                    problems.push(Problem::malformed(
                        t.file,
                        *line,
                        row_id,
                        "PATIENT or CODE is empty",
                    ));
                    continue;
                }
                let kind = get_opt(r, c_type);
                let value = match get(r, c_value).parse::<f64>() {
                    Ok(v) if v.is_finite() && (kind.is_empty() || kind == "numeric") => v,
                    _ => {
                        non_numeric += 1;
                        continue;
                    }
                };
                let key = b.row_key(t.file, r);
                let origin = b.origin(t.file, *line, row_id);
                let desc = get(r, c_desc);
                let enc = get(r, c_enc);
                b.push(
                    pid,
                    &key,
                    at,
                    6,
                    &origin,
                    enc,
                    None,
                    Payload::ObservationRecorded(ObservationRecorded {
                        measure: measure_of(code, desc),
                        value,
                        unit: get(r, c_units).to_owned(),
                        code: Some(Code {
                            system: "LOINC".into(),
                            code: code.into(),
                            display: desc.into(),
                        }),
                        ..Default::default()
                    }),
                );
            }
        }
    }

    let mut patients = b.patients;
    for items in patients.values_mut() {
        items.sort_by_key(|i| {
            let t = i.event.occurred_at.unwrap_or_default();
            (t.seconds, t.nanos, i.rank, i.seq)
        });
    }
    Ok(Built {
        patients,
        files: b.files,
        problems,
        non_numeric,
        registered,
    })
}

/// What the appending tasks share.
struct Shared {
    strict: bool,
    abort: AtomicBool,
    done: AtomicU64,
    stats: Mutex<Stats>,
}

#[derive(Default)]
struct Stats {
    appended: u64,
    present: u64,
    refused_events: u64,
    skipped_dependent: u64,
    by_reason: BTreeMap<String, u64>,
    refused_rows: BTreeSet<(&'static str, u64)>,
    files: BTreeMap<&'static str, FileCount>,
}

impl Shared {
    fn stored(&self, batch: &[Item], deduplicated: bool) {
        let mut s = self.stats.lock().expect("stats");
        for i in batch {
            let f = s.files.entry(i.origin.file).or_default();
            if deduplicated {
                f.present += 1;
            } else {
                f.appended += 1;
            }
        }
        if deduplicated {
            s.present += batch.len() as u64;
        } else {
            s.appended += batch.len() as u64;
        }
        drop(s);
        self.done.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    fn refused(&self, item: &Item, reason: &str, detail: &str) {
        eprintln!(
            "refused {}:{} ({}) {}: {detail}",
            item.origin.file,
            item.origin.line,
            item.origin.id,
            item.kind()
        );
        let mut s = self.stats.lock().expect("stats");
        s.refused_events += 1;
        *s.by_reason.entry(reason.to_owned()).or_default() += 1;
        if s.refused_rows.insert((item.origin.file, item.origin.line)) {
            s.files.entry(item.origin.file).or_default().refused += 1;
        }
        drop(s);
        self.done.fetch_add(1, Ordering::Relaxed);
        if self.strict {
            self.abort.store(true, Ordering::SeqCst);
        }
    }

    fn skipped(&self) {
        self.stats.lock().expect("stats").skipped_dependent += 1;
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// `events[3] (id): rule: …` or `events[3].field: …` → (3, the text after the prefix).
fn split_status(message: &str) -> Option<(usize, &str)> {
    let rest = message.strip_prefix("events[")?;
    let (n, rest) = rest.split_once(']')?;
    let index = n.parse().ok()?;
    let detail = if let Some(r) = rest.strip_prefix(" (") {
        r.split_once("): ").map_or(r, |(_, d)| d)
    } else {
        rest.trim_start_matches(['.', ':', ' '])
    };
    Some((index, detail))
}

/// The reason a refusal is counted under: the rule's name, or the invalid field.
fn reason_key(code: tonic::Code, detail: &str) -> String {
    let head = detail.split(':').next().unwrap_or(detail).trim();
    match code {
        tonic::Code::FailedPrecondition => head.to_owned(),
        _ => format!("invalid {head}"),
    }
}

async fn append_patient(
    mut client: LogClient,
    items: Vec<Item>,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut queue: VecDeque<Item> = items.into();
    let mut refused_ids: HashSet<String> = HashSet::new();
    let mut one_by_one = false;
    while !queue.is_empty() {
        if shared.abort.load(Ordering::SeqCst) {
            return Ok(());
        }
        let limit = if one_by_one { 1 } else { CHUNK };
        let mut batch = Vec::new();
        while batch.len() < limit {
            let Some(item) = queue.pop_front() else { break };
            if item.after.as_ref().is_some_and(|a| refused_ids.contains(a)) {
                shared.skipped();
                continue;
            }
            batch.push(item);
        }
        if batch.is_empty() {
            continue;
        }
        let request = AppendRequest {
            events: batch.iter().map(|i| i.event.clone()).collect(),
            expected_versions: Default::default(),
        };
        let status = match client.append(request).await {
            Ok(r) => {
                shared.stored(&batch, r.into_inner().deduplicated);
                continue;
            }
            Err(status) => status,
        };
        use tonic::Code as C;
        match (status.code(), split_status(status.message())) {
            (
                C::FailedPrecondition | C::InvalidArgument | C::ResourceExhausted,
                Some((k, detail)),
            ) if k < batch.len() => {
                let mut rest = batch.split_off(k);
                let bad = rest.remove(0);
                shared.refused(&bad, &reason_key(status.code(), detail), detail);
                if matches!(bad.event.payload, Some(Payload::Admitted(_))) {
                    refused_ids.insert(bad.event.event_id.clone());
                }
                for item in batch.into_iter().chain(rest).rev() {
                    queue.push_front(item);
                }
            }
            (C::AlreadyExists, _) if !one_by_one => {
                one_by_one = true;
                for item in batch.into_iter().rev() {
                    queue.push_front(item);
                }
            }
            (C::AlreadyExists, _) => {
                let bad = &batch[0];
                shared.refused(
                    bad,
                    "event id already used by another patient",
                    status.message(),
                );
                if matches!(bad.event.payload, Some(Payload::Admitted(_))) {
                    refused_ids.insert(bad.event.event_id.clone());
                }
            }
            (code, _) => {
                anyhow::bail!("append failed ({code:?}): {}", status.message());
            }
        }
    }
    Ok(())
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Runs the import; `Ok(false)` when `--strict` stopped it.
pub async fn run(opts: Options) -> anyhow::Result<bool> {
    let dir = opts.dir.clone();
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder", dir.display());
    }
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    let source = format!("synthea:{name}");
    let started = Instant::now();
    let build_dir = dir.clone();
    let built = tokio::task::spawn_blocking(move || build(&build_dir, source)).await??;
    let read_time = started.elapsed();
    let rows: u64 = built.files.values().map(|f| f.rows).sum();
    let total: u64 = built.patients.values().map(|v| v.len() as u64).sum();
    eprintln!(
        "read {rows} rows from {} in {:.2} s ({:.0} rows/s): {} patients, {total} events to append",
        dir.display(),
        read_time.as_secs_f64(),
        rate(rows, read_time),
        built.patients.len(),
    );
    for p in &built.problems {
        eprintln!("malformed {p}");
    }
    if opts.strict && !built.problems.is_empty() {
        eprintln!(
            "stopped (--strict): {} malformed row(s); nothing appended",
            built.problems.len()
        );
        return Ok(false);
    }

    let client = client::connect(&opts.server, opts.token.as_deref()).await?;
    let shared = Arc::new(Shared {
        strict: opts.strict,
        abort: AtomicBool::new(false),
        done: AtomicU64::new(0),
        stats: Mutex::new(Stats::default()),
    });
    let append_started = Instant::now();
    let progress = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = shared.done.load(Ordering::Relaxed);
                eprintln!(
                    "progress: {done}/{total} events, {:.0} events/s",
                    rate(done, append_started.elapsed())
                );
            }
        })
    };
    let shared_ref = &shared;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(built.patients)
        .map(|(_, items)| {
            let client = client.clone();
            async move { append_patient(client, items, shared_ref).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    progress.abort();
    let append_time = append_started.elapsed();
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    let stats = std::mem::take(&mut *shared.stats.lock().expect("stats"));
    let stopped = shared.abort.load(Ordering::SeqCst);

    println!(
        "synthea import of {} (source synthea:{name})",
        dir.display()
    );
    println!(
        "  {:<18} {:>8} {:>8} {:>9} {:>8} {:>8}",
        "file", "rows", "events", "appended", "present", "refused"
    );
    for file in FILES {
        let Some(f) = built.files.get(file) else {
            continue;
        };
        let a = stats.files.get(file).copied().unwrap_or_default();
        println!(
            "  {file:<18} {:>8} {:>8} {:>9} {:>8} {:>8}",
            f.rows, f.events, a.appended, a.present, a.refused
        );
    }
    println!("patients: {}", built.registered);
    println!("events appended: {}", stats.appended);
    println!("already present: {}", stats.present);
    println!(
        "refused rows: {} ({} events refused, {} discharges skipped with their admission)",
        stats.refused_rows.len(),
        stats.refused_events,
        stats.skipped_dependent
    );
    for (reason, n) in &stats.by_reason {
        println!("  {reason}: {n}");
    }
    println!("malformed rows: {}", built.problems.len());
    println!("non-numeric observations skipped: {}", built.non_numeric);
    println!(
        "time: read {:.2} s, append {:.2} s ({:.0} events/s)",
        read_time.as_secs_f64(),
        append_time.as_secs_f64(),
        rate(stats.appended + stats.present, append_time)
    );
    if stopped {
        eprintln!("stopped (--strict) at the first refused row");
        return Ok(false);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_split() {
        assert_eq!(
            split_status("events[3] (abc): nothing after death: event occurred"),
            Some((3, "nothing after death: event occurred"))
        );
        assert_eq!(
            split_status("events[0].occurred_at: is before 1900-01-01"),
            Some((0, "occurred_at: is before 1900-01-01"))
        );
        assert_eq!(
            reason_key(tonic::Code::FailedPrecondition, "nothing after death: x: y"),
            "nothing after death"
        );
        assert_eq!(
            reason_key(tonic::Code::InvalidArgument, "occurred_at: is before"),
            "invalid occurred_at"
        );
        assert_eq!(split_status("version conflict"), None);
    }

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
    }
}
