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
use futures::StreamExt;
use journey_log_access::{LogClient, Remote};
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

/// What `journey import synthea` is asked to do.
pub struct Options {
    /// The export folder (the CSV files).
    pub dir: PathBuf,
    /// Stop at the first malformed or refused row.
    pub strict: bool,
    /// The server the events are appended to, with the token to present.
    pub remote: Remote,
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

/// Where an event goes among a patient's events at the same instant (module doc, "Order").
mod rank {
    pub const REGISTRATION: u8 = 0;
    pub const DISCHARGE: u8 = 1;
    pub const ED_VISIT: u8 = 2;
    pub const ADMISSION: u8 = 3;
    /// The discharge of a stay that ends the instant it starts comes after its admission.
    pub const ZERO_LENGTH_DISCHARGE: u8 = 4;
    pub const CONTACT: u8 = 5;
    pub const CLINICAL: u8 = 6;
    pub const DEATH: u8 = 9;
}

/// Builds every patient's events from the export, file by file (see [`build`]).
struct Builder {
    source: String,
    seq: u64,
    patients: BTreeMap<String, Vec<Item>>,
    files: BTreeMap<&'static str, FileCount>,
    /// Occurrences of identical rows, for the ids of rows without an Id column.
    seen: HashMap<(&'static str, String), u32>,
    problems: Vec<Problem>,
    non_numeric: u64,
    registered: u64,
}

impl Builder {
    fn new(source: String) -> Builder {
        Builder {
            source,
            seq: 0,
            patients: BTreeMap::new(),
            files: BTreeMap::new(),
            seen: HashMap::new(),
            problems: Vec::new(),
            non_numeric: 0,
            registered: 0,
        }
    }

    /// Reads `dir/file` ([`Table::read`]: `None` when missing or unusable) and counts its rows.
    fn table(
        &mut self,
        dir: &Path,
        file: &'static str,
        required: &[&str],
    ) -> anyhow::Result<Option<Table>> {
        let table = Table::read(dir, file, required, &mut self.problems)?;
        if let Some(t) = &table {
            self.files.entry(t.file).or_default().rows = t.rows.len() as u64;
        }
        Ok(table)
    }

    /// A file the import expects: reported when missing or unusable.
    fn expected_table(
        &mut self,
        dir: &Path,
        file: &'static str,
        required: &[&str],
    ) -> anyhow::Result<Option<Table>> {
        let table = self.table(dir, file, required)?;
        if table.is_none() {
            self.malformed(file, 0, String::new(), "file missing or unusable");
        }
        Ok(table)
    }

    fn malformed(&mut self, file: &'static str, line: u64, id: String, reason: impl Into<String>) {
        self.problems
            .push(Problem::malformed(file, line, id, reason));
    }

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

    /// Each patient's events in order: occurred_at, then rank, then the order they were built in.
    fn finish(self) -> Built {
        let mut patients = self.patients;
        for items in patients.values_mut() {
            items.sort_by_key(|i| {
                let t = i.event.occurred_at.unwrap_or_default();
                (t.seconds, t.nanos, i.rank, i.seq)
            });
        }
        Built {
            patients,
            files: self.files,
            problems: self.problems,
            non_numeric: self.non_numeric,
            registered: self.registered,
        }
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

/// The first second (UTC) of the day `seconds` falls in.
fn day_start(seconds: i64) -> i64 {
    seconds.div_euclid(DAY) * DAY
}

/// Facility names (`organizations.csv`) and professionals (`providers.csv`), both optional.
#[derive(Default)]
struct Directory {
    org_names: HashMap<String, String>,
    /// provider Id -> (name, role)
    providers: HashMap<String, (String, Role)>,
}

impl Directory {
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
        })
    }

    fn facility(&self, org: &str) -> Facility {
        Facility {
            id: org.to_owned(),
            name: self.org_names.get(org).cloned().unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// Dead patients: patient -> (line in `patients.csv`, first second of the day of death).
type Deaths = HashMap<String, (u64, i64)>;

const ENCOUNTER_COLUMNS: [&str; 9] = [
    "Id",
    "START",
    "STOP",
    "PATIENT",
    "ORGANIZATION",
    "PROVIDER",
    "ENCOUNTERCLASS",
    "CODE",
    "DESCRIPTION",
];

/// The columns of `encounters.csv` an [`Enc`] is read from.
struct EncCols {
    required: [Col; 9],
    reason_code: Option<Col>,
    reason_desc: Option<Col>,
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
    /// One row of `encounters.csv`; `Err` is the reason for a malformed-row report.
    fn parse(line: u64, r: &csv::StringRecord, cols: &EncCols) -> Result<Enc, String> {
        let [c_id, c_start, c_stop, c_patient, c_org, c_provider, c_class, c_code, c_desc] =
            cols.required;
        let id = get(r, c_id);
        if id.is_empty() {
            return Err("Id is empty".to_string());
        }
        let start = time_col(r, c_start, "START")?;
        let stop = opt_time_col(r, c_stop, "STOP")?;
        if stop.is_some_and(|s| s.seconds < start.seconds) {
            return Err("STOP is before START".into());
        }
        let patient = get(r, c_patient);
        if patient.is_empty() {
            return Err("PATIENT is empty".into());
        }
        let class = get(r, c_class).to_ascii_lowercase();
        let org = get(r, c_org);
        if org.is_empty() && matches!(class.as_str(), "inpatient" | "emergency" | "urgentcare") {
            return Err("ORGANIZATION is empty (the facility is required)".into());
        }
        Ok(Enc {
            line,
            id: id.to_owned(),
            start,
            stop,
            patient: patient.to_owned(),
            org: org.to_owned(),
            provider: get(r, c_provider).to_owned(),
            class,
            code: get(r, c_code).to_owned(),
            desc: get(r, c_desc).to_owned(),
            reason_code: get_opt(r, cols.reason_code).to_owned(),
            reason_desc: get_opt(r, cols.reason_desc).to_owned(),
        })
    }

    fn end(&self) -> i64 {
        self.stop.map_or(self.start.seconds, |s| s.seconds)
    }

    fn is_ed(&self) -> bool {
        matches!(self.class.as_str(), "emergency" | "urgentcare")
    }

    /// Whether `admission` starts during this (ED) visit or at most [`ED_TO_ADMISSION_SECS`]
    /// after it ends: the admission comes from the ED.
    fn leads_to(&self, admission: &Enc) -> bool {
        self.start.seconds <= admission.start.seconds
            && admission.start.seconds <= self.end() + ED_TO_ADMISSION_SECS
    }

    /// Whether this stay is still open on the day starting at `day`.
    fn open_on(&self, day: i64) -> bool {
        self.start.seconds < day + DAY && self.stop.is_none_or(|s| s.seconds >= day)
    }

    /// The identity of one of the encounter's events.
    fn key(&self, kind: &str) -> String {
        format!("encounters.csv|{}|{kind}", self.id)
    }

    fn origin(&self) -> Arc<Origin> {
        Arc::new(Origin {
            file: "encounters.csv",
            line: self.line,
            id: self.id.clone(),
        })
    }
}

const CLINICAL_COLUMNS: [&str; 5] = ["START", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"];

/// The columns of `conditions.csv`, `medications.csv` or `careplans.csv`.
struct ClinicalCols {
    start: Col,
    patient: Col,
    encounter: Col,
    code: Col,
    desc: Col,
    stop: Option<Col>,
    id: Option<Col>,
    reason: Option<Col>,
}

const OBSERVATION_COLUMNS: [&str; 7] = [
    "DATE",
    "PATIENT",
    "ENCOUNTER",
    "CODE",
    "DESCRIPTION",
    "VALUE",
    "UNITS",
];

/// Reads the export and builds every patient's events (no network).
fn build(dir: &Path, source: String) -> anyhow::Result<Built> {
    let mut b = Builder::new(source);
    let directory = b.read_directory(dir)?;
    let deaths = b.patients(dir)?;
    let encounters = b.read_encounters(dir)?;
    let died_at = b.encounters(&directory, &encounters, &deaths);
    b.deaths(&deaths, &died_at);
    b.clinical(dir, &directory, &encounters)?;
    b.observations(dir)?;
    Ok(b.finish())
}

/// The phases of [`build`], in the order they run (the order events are built in breaks ties
/// between events of the same instant and rank).
impl Builder {
    /// `organizations.csv` and `providers.csv`.
    fn read_directory(&mut self, dir: &Path) -> anyhow::Result<Directory> {
        let mut directory = Directory::default();
        if let Some(t) = self.table(dir, "organizations.csv", &["Id", "NAME"])? {
            let (id, name) = (t.col("Id"), t.col("NAME"));
            for (_, r) in &t.rows {
                directory
                    .org_names
                    .insert(get(r, id).to_owned(), get(r, name).to_owned());
            }
        }
        if let Some(t) = self.table(dir, "providers.csv", &["Id", "NAME"])? {
            let (id, name, spec) = (t.col("Id"), t.col("NAME"), t.opt_col("SPECIALITY"));
            for (_, r) in &t.rows {
                let role = match get_opt(r, spec) {
                    "" => Role::Unspecified,
                    "GENERAL PRACTICE" => Role::Gp,
                    _ => Role::Specialist,
                };
                directory
                    .providers
                    .insert(get(r, id).to_owned(), (get(r, name).to_owned(), role));
            }
        }
        Ok(directory)
    }

    /// `patients.csv`: the registrations now; the deaths are returned, for their events wait for
    /// the encounters (a stay may end in death).
    fn patients(&mut self, dir: &Path) -> anyhow::Result<Deaths> {
        let Some(t) = self.table(
            dir,
            "patients.csv",
            &["Id", "BIRTHDATE", "DEATHDATE", "GENDER"],
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
        let mut deaths = Deaths::new();
        for (line, r) in &t.rows {
            let id = get(r, c_id);
            let dates = (|| {
                if id.is_empty() {
                    return Err("Id is empty".to_string());
                }
                Ok((
                    time_col(r, c_birth, "BIRTHDATE")?,
                    opt_time_col(r, c_death, "DEATHDATE")?,
                ))
            })();
            let (birth, death) = match dates {
                Ok(dates) => dates,
                Err(reason) => {
                    self.malformed(t.file, *line, id.to_owned(), reason);
                    continue;
                }
            };
            let sex = match get(r, c_gender) {
                "M" => Sex::Male,
                "F" => Sex::Female,
                "" => Sex::Unspecified,
                _ => Sex::Other,
            };
            let origin = self.origin(t.file, *line, id);
            self.push(
                id,
                &format!("patients.csv|{id}|registered"),
                birth,
                rank::REGISTRATION,
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
            self.registered += 1;
            if let Some(d) = death {
                deaths.insert(id.to_owned(), (*line, day_start(d.seconds)));
            }
        }
        Ok(deaths)
    }

    /// The well-formed rows of `encounters.csv`.
    fn read_encounters(&mut self, dir: &Path) -> anyhow::Result<Vec<Enc>> {
        let Some(t) = self.expected_table(dir, "encounters.csv", &ENCOUNTER_COLUMNS)? else {
            return Ok(Vec::new());
        };
        let cols = EncCols {
            required: ENCOUNTER_COLUMNS.map(|c| t.col(c)),
            reason_code: t.opt_col("REASONCODE"),
            reason_desc: t.opt_col("REASONDESCRIPTION"),
        };
        let mut encounters = Vec::new();
        for (line, r) in &t.rows {
            match Enc::parse(*line, r, &cols) {
                Ok(e) => encounters.push(e),
                Err(reason) => {
                    let id = get(r, cols.required[0]).to_owned();
                    self.malformed(t.file, *line, id, reason);
                }
            }
        }
        Ok(encounters)
    }

    /// The encounters' events, patient by patient, each patient's encounters in order. Returns
    /// when each death is placed: the end of the day of death, or the discharge of the stay that
    /// ends in death.
    fn encounters(
        &mut self,
        directory: &Directory,
        encounters: &[Enc],
        deaths: &Deaths,
    ) -> HashMap<String, i64> {
        let mut by_patient: HashMap<&str, Vec<&Enc>> = HashMap::new();
        for e in encounters {
            by_patient.entry(e.patient.as_str()).or_default().push(e);
        }
        let mut died_at: HashMap<String, i64> = deaths
            .iter()
            .map(|(p, (_, day))| (p.clone(), day + DAY - 1))
            .collect();
        let mut patient_ids: Vec<&str> = by_patient.keys().copied().collect();
        patient_ids.sort_unstable();
        for pid in patient_ids {
            let mut encs = by_patient[pid].clone();
            encs.sort_by_key(|e| (e.start.seconds, e.line));
            let death_day = deaths.get(pid).map(|(_, d)| *d);
            let mut death_stay_done = false;
            for e in &encs {
                match e.class.as_str() {
                    "inpatient" => {
                        // Only the first stay open on the day of death ends in death.
                        let dies = death_day.filter(|day| !death_stay_done && e.open_on(*day));
                        if let Some(at) = self.inpatient_stay(directory, pid, e, &encs, dies) {
                            death_stay_done = true;
                            died_at.insert(pid.to_owned(), at);
                        }
                    }
                    "emergency" | "urgentcare" => {
                        self.ed_visit(directory, pid, e, &encs, death_day);
                    }
                    "home" | "hospice" => self.home_visit(directory, pid, e),
                    _ => self.contact(directory, pid, e),
                }
            }
        }
        died_at
    }

    /// `Admitted`, and `Discharged` at STOP (home) or, when the stay ends in death (`dies`: the
    /// first second of the day of death), at min(STOP, end of that day). Returns when the patient
    /// died, if the stay ends in death.
    fn inpatient_stay(
        &mut self,
        directory: &Directory,
        pid: &str,
        e: &Enc,
        encs: &[&Enc],
        dies: Option<i64>,
    ) -> Option<i64> {
        let origin = e.origin();
        let from_ed = encs.iter().any(|x| x.is_ed() && x.leads_to(e));
        let emergency = from_ed
            || e.desc.to_ascii_lowercase().contains("emergency")
            || EMERGENCY_CODES.contains(&e.code.as_str());
        let diagnoses = snomed(&e.reason_code, &e.reason_desc);
        let admitted = self.push(
            pid,
            &e.key("admitted"),
            e.start,
            rank::ADMISSION,
            &origin,
            &e.id,
            None,
            Payload::Admitted(Admitted {
                encounter_id: e.id.clone(),
                facility: Some(directory.facility(&e.org)),
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
        let (at, disposition, died) = match dies {
            Some(day) => {
                let end = day + DAY - 1;
                let at = e.stop.map_or(end, |s| s.seconds.min(end));
                (Some(ts(at)), Disposition::Deceased, Some(at))
            }
            None => (e.stop, Disposition::Home, None),
        };
        if let Some(at) = at {
            let zero = at.seconds <= e.start.seconds;
            self.push(
                pid,
                &e.key("discharged"),
                at,
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
                    diagnoses,
                    ..Default::default()
                }),
            );
        }
        died
    }

    /// `EmergencyVisit`, its outcome decided by what follows it (module doc, "ED outcome").
    fn ed_visit(
        &mut self,
        directory: &Directory,
        pid: &str,
        e: &Enc,
        encs: &[&Enc],
        death_day: Option<i64>,
    ) {
        let admitted = encs.iter().any(|x| x.class == "inpatient" && e.leads_to(x));
        let outcome = if admitted {
            EdOutcome::Admitted
        } else if death_day.is_some_and(|d| day_start(e.start.seconds) == d) {
            EdOutcome::Deceased
        } else {
            EdOutcome::DischargedHome
        };
        self.push(
            pid,
            &e.key("ed"),
            e.start,
            rank::ED_VISIT,
            &e.origin(),
            &e.id,
            None,
            Payload::EmergencyVisit(EmergencyVisit {
                visit_id: e.id.clone(),
                facility: Some(directory.facility(&e.org)),
                outcome: outcome as i32,
                diagnoses: snomed(&e.reason_code, &e.reason_desc),
            }),
        );
    }

    /// `HomeVisitRecorded` (home and hospice encounters).
    fn home_visit(&mut self, directory: &Directory, pid: &str, e: &Enc) {
        let minutes = (e.end() - e.start.seconds) / 60;
        self.push(
            pid,
            &e.key("home-visit"),
            e.start,
            rank::CONTACT,
            &e.origin(),
            &e.id,
            None,
            Payload::HomeVisitRecorded(HomeVisitRecorded {
                professional: directory.professional(&e.provider, &e.org),
                channel: ContactChannel::Visit as i32,
                duration_minutes: u32::try_from(minutes).unwrap_or(u32::MAX),
                notes_ref: format!("synthea:encounter:{}", e.id),
            }),
        );
    }

    /// `ContactMade` (every other class; `virtual` is a teleconsultation).
    fn contact(&mut self, directory: &Directory, pid: &str, e: &Enc) {
        let channel = if e.class == "virtual" {
            ContactChannel::Teleconsultation
        } else {
            ContactChannel::Visit
        };
        self.push(
            pid,
            &e.key("contact"),
            e.start,
            rank::CONTACT,
            &e.origin(),
            &e.id,
            None,
            Payload::ContactMade(ContactMade {
                professional: directory.professional(&e.provider, &e.org),
                channel: channel as i32,
                reason: e.desc.clone(),
            }),
        );
    }

    /// `PatientDeceased`, now that the stays ending in death are known.
    fn deaths(&mut self, deaths: &Deaths, died_at: &HashMap<String, i64>) {
        let mut dead: Vec<(&String, &(u64, i64))> = deaths.iter().collect();
        dead.sort();
        for (pid, (line, _)) in dead {
            let at = ts(died_at[pid]);
            let origin = self.origin("patients.csv", *line, pid.clone());
            self.push(
                pid,
                &format!("patients.csv|{pid}|deceased"),
                at,
                rank::DEATH,
                &origin,
                "",
                None,
                Payload::PatientDeceased(PatientDeceased { died_at: Some(at) }),
            );
        }
    }

    /// `conditions.csv`, `medications.csv` and the optional `careplans.csv`: one event a row.
    fn clinical(
        &mut self,
        dir: &Path,
        directory: &Directory,
        encounters: &[Enc],
    ) -> anyhow::Result<()> {
        // The prescriber of a medication is its encounter's provider.
        let enc_provider: HashMap<&str, (&str, &str)> = encounters
            .iter()
            .map(|e| (e.id.as_str(), (e.provider.as_str(), e.org.as_str())))
            .collect();
        let prescriber = |enc: &str| {
            enc_provider
                .get(enc)
                .and_then(|(p, o)| directory.professional(p, o))
        };
        for file in ["conditions.csv", "medications.csv", "careplans.csv"] {
            let mut required = CLINICAL_COLUMNS.to_vec();
            let table = if file == "careplans.csv" {
                required.push("Id");
                self.table(dir, file, &required)?
            } else {
                self.expected_table(dir, file, &required)?
            };
            let Some(t) = table else { continue };
            let [start, patient, encounter, code, desc] = CLINICAL_COLUMNS.map(|c| t.col(c));
            let cols = ClinicalCols {
                start,
                patient,
                encounter,
                code,
                desc,
                stop: t.opt_col("STOP"),
                id: t.opt_col("Id"),
                reason: t.opt_col("REASONDESCRIPTION"),
            };
            for (line, r) in &t.rows {
                let row_id = match get_opt(r, cols.id) {
                    "" => format!("patient {}, code {}", get(r, patient), get(r, code)),
                    id => id.to_owned(),
                };
                if let Err(reason) = self.clinical_row(file, *line, r, &cols, &row_id, &prescriber)
                {
                    self.malformed(file, *line, row_id, reason);
                }
            }
        }
        Ok(())
    }

    /// One row of a clinical file; `Err` is the reason for a malformed-row report.
    fn clinical_row(
        &mut self,
        file: &'static str,
        line: u64,
        r: &csv::StringRecord,
        cols: &ClinicalCols,
        row_id: &str,
        prescriber: &dyn Fn(&str) -> Option<Professional>,
    ) -> Result<(), String> {
        let pid = get(r, cols.patient);
        let code = get(r, cols.code);
        let enc = get(r, cols.encounter);
        let desc = get(r, cols.desc);
        let start = time_col(r, cols.start, "START")?;
        if pid.is_empty() || code.is_empty() {
            return Err("PATIENT or CODE is empty".into());
        }
        let key = match file {
            "careplans.csv" => format!("careplans.csv|{}", get_opt(r, cols.id)),
            _ => self.row_key(file, r),
        };
        let origin = self.origin(file, line, row_id);
        let payload = match file {
            "conditions.csv" => Payload::ConditionRecorded(ConditionRecorded {
                diagnosis: snomed(code, desc).pop(),
                onset: Some(start),
                encounter_id: enc.to_owned(),
            }),
            "medications.csv" => {
                let stop = match cols.stop {
                    Some(c) => opt_time_col(r, c, "STOP")?,
                    None => None,
                };
                let days = stop.map_or(0, |s| (s.seconds - start.seconds + DAY - 1) / DAY);
                Payload::PrescriptionIssued(PrescriptionIssued {
                    prescription_id: event_id(&key),
                    medication: Some(Code {
                        system: "RXNORM".into(),
                        code: code.into(),
                        display: desc.into(),
                    }),
                    duration_days: u32::try_from(days.max(0)).unwrap_or(u32::MAX),
                    prescriber: prescriber(enc),
                    encounter_id: enc.to_owned(),
                    ..Default::default()
                })
            }
            _ => Payload::CarePlanEstablished(CarePlanEstablished {
                care_plan_id: get_opt(r, cols.id).to_owned(),
                goals: vec![desc.to_owned()],
                symptoms_to_watch: match get_opt(r, cols.reason) {
                    "" => Vec::new(),
                    s => vec![s.to_owned()],
                },
                encounter_id: enc.to_owned(),
                ..Default::default()
            }),
        };
        self.push(
            pid,
            &key,
            start,
            rank::CLINICAL,
            &origin,
            enc,
            None,
            payload,
        );
        Ok(())
    }

    /// `observations.csv`: numeric rows as `ObservationRecorded`; the others are counted and
    /// skipped.
    fn observations(&mut self, dir: &Path) -> anyhow::Result<()> {
        let Some(t) = self.expected_table(dir, "observations.csv", &OBSERVATION_COLUMNS)? else {
            return Ok(());
        };
        let [c_date, c_pat, c_enc, c_code, c_desc, c_value, c_units] =
            OBSERVATION_COLUMNS.map(|c| t.col(c));
        let c_type = t.opt_col("TYPE");
        for (line, r) in &t.rows {
            let pid = get(r, c_pat);
            let code = get(r, c_code);
            let row_id = format!("patient {pid}, code {code}");
            let at = match time_col(r, c_date, "DATE") {
                Ok(t) => t,
                Err(e) => {
                    self.malformed(t.file, *line, row_id, e);
                    continue;
                }
            };
            if pid.is_empty() || code.is_empty() {
                self.malformed(t.file, *line, row_id, "PATIENT or CODE is empty");
                continue;
            }
            let kind = get_opt(r, c_type);
            let value = match get(r, c_value).parse::<f64>() {
                Ok(v) if v.is_finite() && (kind.is_empty() || kind == "numeric") => v,
                _ => {
                    self.non_numeric += 1;
                    continue;
                }
            };
            let key = self.row_key(t.file, r);
            let origin = self.origin(t.file, *line, row_id);
            let desc = get(r, c_desc);
            let enc = get(r, c_enc);
            self.push(
                pid,
                &key,
                at,
                rank::CLINICAL,
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
        Ok(())
    }
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

/// What a refusal says of one event of the batch, read from the status's structured details
/// (never from its message): the event's index, the reason it is counted under (the journey
/// rule, or the invalid field), and the server's words.
#[derive(Debug, PartialEq)]
struct Refusal {
    index: usize,
    reason: String,
    detail: String,
}

fn refusal(status: &tonic::Status) -> Option<Refusal> {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    if let Some(v) = details
        .precondition_failure()
        .and_then(|p| p.violations.first())
    {
        return Some(Refusal {
            index: event_index(&v.subject)?.0,
            reason: v.r#type.replace('_', " "),
            detail: v.description.clone(),
        });
    }
    let v = details.bad_request()?.field_violations.first()?;
    let (index, field) = event_index(&v.field)?;
    let field = if field.is_empty() { "event" } else { field };
    Some(Refusal {
        index,
        reason: format!("invalid {field}"),
        detail: format!("{field}: {}", v.description),
    })
}

/// `events[3].occurred_at` → (3, "occurred_at"); `events[3]` → (3, "").
fn event_index(subject: &str) -> Option<(usize, &str)> {
    let (n, rest) = subject.strip_prefix("events[")?.split_once(']')?;
    Some((n.parse().ok()?, rest.trim_start_matches('.')))
}

/// Remembers a refused admission: the events that need it (its discharge) are skipped.
fn refused_admission(refused_ids: &mut HashSet<String>, item: &Item) {
    if matches!(item.event.payload, Some(Payload::Admitted(_))) {
        refused_ids.insert(item.event.event_id.clone());
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
        match (status.code(), refusal(&status)) {
            (C::FailedPrecondition | C::InvalidArgument | C::ResourceExhausted, Some(r))
                if r.index < batch.len() =>
            {
                let mut rest = batch.split_off(r.index);
                let bad = rest.remove(0);
                shared.refused(&bad, &r.reason, &r.detail);
                refused_admission(&mut refused_ids, &bad);
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
                refused_admission(&mut refused_ids, bad);
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
    let mut built = tokio::task::spawn_blocking(move || build(&build_dir, source)).await??;
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

    let client = opts.remote.client().await?;
    let patients = std::mem::take(&mut built.patients);
    let append_started = Instant::now();
    let (stats, stopped) = append_all(client, patients, opts.strict, total).await?;
    let append_time = append_started.elapsed();

    println!(
        "synthea import of {} (source synthea:{name})",
        dir.display()
    );
    print_report(&built, &stats);
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

/// Appends every patient's events ([`CONCURRENCY`] patients at a time) with a progress line
/// every second; returns what was counted and whether `--strict` stopped at a refused row.
async fn append_all(
    client: LogClient,
    patients: BTreeMap<String, Vec<Item>>,
    strict: bool,
    total: u64,
) -> anyhow::Result<(Stats, bool)> {
    let shared = Arc::new(Shared {
        strict,
        abort: AtomicBool::new(false),
        done: AtomicU64::new(0),
        stats: Mutex::new(Stats::default()),
    });
    let started = Instant::now();
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
                    rate(done, started.elapsed())
                );
            }
        })
    };
    let shared_ref = &shared;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(patients)
        .map(|(_, items)| {
            let client = client.clone();
            async move { append_patient(client, items, shared_ref).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    progress.abort();
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    let stats = std::mem::take(&mut *shared.stats.lock().expect("stats"));
    Ok((stats, shared.abort.load(Ordering::SeqCst)))
}

/// The per-file table and the totals.
fn print_report(built: &Built, stats: &Stats) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_the_details() {
        use tonic_types::{ErrorDetails, StatusExt};
        let rule = tonic::Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "events[3] (abc): whatever the message says",
            ErrorDetails::with_precondition_failure_violation(
                "nothing_after_death",
                "events[3]",
                "nothing after death: event occurred",
            ),
        );
        assert_eq!(
            refusal(&rule),
            Some(Refusal {
                index: 3,
                reason: "nothing after death".into(),
                detail: "nothing after death: event occurred".into(),
            })
        );
        let field = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "unrelated text",
            ErrorDetails::with_bad_request_violation("events[0].occurred_at", "is before 1900"),
        );
        assert_eq!(
            refusal(&field),
            Some(Refusal {
                index: 0,
                reason: "invalid occurred_at".into(),
                detail: "occurred_at: is before 1900".into(),
            })
        );
        let batch = tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "events: too many",
            ErrorDetails::with_bad_request_violation("events", "too many"),
        );
        assert_eq!(refusal(&batch), None, "not about one event");
        assert_eq!(
            refusal(&tonic::Status::aborted("events[1] (x): version conflict")),
            None
        );
    }

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(event_id("a"), event_id("a"));
        assert_ne!(event_id("a"), event_id("b"));
    }
}
