//! `journey simulate`: synthetic, realistic hospital-to-home journeys appended through the gRPC
//! client, for demos, projections and load.
//!
//! Deterministic for a seed: a small PRNG (splitmix64) seeded per patient, and event ids that are
//! UUID v5 of (seed, patient index, event counter), so re-running the same command appends
//! nothing twice (the log deduplicates by event id). Each patient's journey is generated whole,
//! ordered by clinical time, cut at the end of the window (never in the future) and at death, so
//! that every event passes the journey rules (docs/design.md §3).
//!
//! Patients are sharded across concurrent callers (patient `i` goes to caller `i % concurrency`);
//! a caller appends its patients' events in order, in batches, so one patient's events are always
//! appended in order.
use anyhow::{bail, Context};
use clap::Args;
use journey_log_access::{LogClient, Remote};
use journey_proto::{
    prost_types::Timestamp,
    v1::{self, event::Payload, AppendRequest, Event, Role},
};
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Namespace of the simulated event ids (UUID v5).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x4a6f_7572_6e65_5953_696d_756c_6174_6531);

#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    /// Number of patients to simulate.
    #[arg(long, default_value_t = 100)]
    pub patients: u64,
    /// Length of the simulated window, in days.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
    /// Seed: the same seed (and window) gives the same journeys and the same event ids.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First day of the window (YYYY-MM-DD, UTC); default: today − days.
    #[arg(long)]
    pub start: Option<String>,
    /// Events per Append call.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Append calls in flight (patients are sharded across them).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

// --- calendar ---------------------------------------------------------------------------------

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn parse_date(s: &str) -> anyhow::Result<i64> {
    let parts: Vec<&str> = s.trim().split('-').collect();
    let bad = || format!("--start {s:?} is not a date YYYY-MM-DD");
    if parts.len() != 3 {
        bail!(bad());
    }
    let y: i64 = parts[0].parse().with_context(bad)?;
    let m: u32 = parts[1].parse().with_context(bad)?;
    let d: u32 = parts[2].parse().with_context(bad)?;
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || civil_from_days(days_from_civil(y, m, d)) != (y, m, d)
    {
        bail!(bad());
    }
    Ok(days_from_civil(y, m, d))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// --- randomness -------------------------------------------------------------------------------

/// splitmix64: small, fast, good enough for synthetic data, and stable across versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng(seed ^ 0x6a09_e667_f3bc_c908);
        r.next_u64();
        r
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi] (inclusive).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() as i64 - 1) as usize]
    }
    /// Index chosen with the given weights.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
    /// Roughly normal (sum of uniforms), mean 0, standard deviation `sd`.
    pub fn normal(&mut self, sd: f64) -> f64 {
        ((0..6).map(|_| self.f64()).sum::<f64>() - 3.0) * sd * std::f64::consts::SQRT_2
    }
}

// --- reference data ---------------------------------------------------------------------------

struct Fac {
    id: &'static str,
    name: &'static str,
    territory: &'static str,
}

const FACILITIES: [Fac; 3] = [
    Fac {
        id: "CHU-NORD",
        name: "CHU Nord",
        territory: "CPTS-NORD",
    },
    Fac {
        id: "CH-EST",
        name: "Centre hospitalier de l'Est",
        territory: "CPTS-EST",
    },
    Fac {
        id: "CLIN-SUD",
        name: "Clinique du Sud",
        territory: "CPTS-SUD",
    },
];

type Dx = (&'static str, &'static str);
type Med = (&'static str, &'static str, &'static str, u32);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Measure {
    Weight,
    Spo2,
    None,
}

struct Profile {
    unit: &'static str,
    weight: f64,
    emergency: &'static [Dx],
    elective: &'static [Dx],
    meds: &'static [Med],
    measure: Measure,
    readmit: f64,
    death: f64,
    transfer_to: &'static [&'static str],
    goals: &'static [&'static str],
    symptoms: &'static [&'static str],
}

const PROFILES: [Profile; 5] = [
    Profile {
        unit: "cardiologie",
        weight: 0.28,
        emergency: &[
            ("I50.0", "Congestive heart failure"),
            ("I50.1", "Left ventricular failure"),
            ("I50.9", "Heart failure, unspecified"),
            ("I21.4", "Acute subendocardial myocardial infarction"),
        ],
        elective: &[
            ("I48.1", "Persistent atrial fibrillation"),
            ("I25.1", "Atherosclerotic heart disease"),
        ],
        meds: &[
            ("C03CA01", "furosemide", "40 mg once daily", 30),
            ("C07AB07", "bisoprolol", "2.5 mg once daily", 90),
            ("C09AA05", "ramipril", "5 mg once daily", 90),
            ("C03DA01", "spironolactone", "25 mg once daily", 90),
            ("B01AF01", "rivaroxaban", "20 mg once daily", 90),
        ],
        measure: Measure::Weight,
        readmit: 0.20,
        death: 0.04,
        transfer_to: &["réanimation", "médecine interne"],
        goals: &[
            "poids stable",
            "régime pauvre en sel",
            "marcher 20 minutes par jour",
        ],
        symptoms: &["essoufflement", "œdème des chevilles", "prise de poids"],
    },
    Profile {
        unit: "pneumologie",
        weight: 0.22,
        emergency: &[
            ("J44.1", "COPD with acute exacerbation"),
            ("J44.0", "COPD with acute lower respiratory infection"),
            ("J18.9", "Pneumonia, unspecified"),
        ],
        elective: &[
            (
                "C34.1",
                "Malignant neoplasm of upper lobe, bronchus or lung",
            ),
            ("J44.9", "COPD, unspecified"),
        ],
        meds: &[
            (
                "R03AL03",
                "umeclidinium and vilanterol",
                "1 inhalation daily",
                90,
            ),
            ("R03AC02", "salbutamol", "2 puffs as needed", 90),
            ("H02AB06", "prednisolone", "40 mg once daily", 5),
            (
                "J01CR02",
                "amoxicillin and clavulanic acid",
                "1 g three times daily",
                7,
            ),
        ],
        measure: Measure::Spo2,
        readmit: 0.18,
        death: 0.04,
        transfer_to: &["réanimation", "médecine interne"],
        goals: &[
            "pas d'exacerbation",
            "réhabilitation respiratoire",
            "arrêt du tabac",
        ],
        symptoms: &[
            "essoufflement",
            "changement de couleur des crachats",
            "fièvre",
        ],
    },
    Profile {
        unit: "gériatrie",
        weight: 0.20,
        emergency: &[
            ("J18.9", "Pneumonia, unspecified"),
            ("N39.0", "Urinary tract infection"),
            ("E86", "Volume depletion"),
            ("F05.9", "Delirium, unspecified"),
            ("W19", "Unspecified fall"),
        ],
        elective: &[("F03", "Unspecified dementia")],
        meds: &[
            ("N02BE01", "paracetamol", "1 g up to four times daily", 10),
            ("B01AB05", "enoxaparin", "4000 IU once daily", 10),
            ("J01DD04", "ceftriaxone", "1 g once daily", 7),
            ("A12AX", "calcium and vitamin D", "1 tablet daily", 90),
        ],
        measure: Measure::None,
        readmit: 0.18,
        death: 0.08,
        transfer_to: &["médecine interne", "orthopédie"],
        goals: &[
            "rester à domicile en sécurité",
            "prévenir les chutes",
            "continuer à manger et boire",
        ],
        symptoms: &["confusion", "fall", "fièvre"],
    },
    Profile {
        unit: "orthopédie",
        weight: 0.15,
        emergency: &[
            ("S72.0", "Fracture of neck of femur"),
            ("S82.8", "Fracture of other parts of lower leg"),
        ],
        elective: &[
            ("M16.1", "Primary coxarthrosis, unilateral"),
            ("M17.1", "Primary gonarthrosis, unilateral"),
        ],
        meds: &[
            ("B01AB06", "nadroparin", "2850 IU once daily", 35),
            ("N02BE01", "paracetamol", "1 g up to four times daily", 15),
            ("N02AX02", "tramadol", "50 mg up to three times daily", 7),
        ],
        measure: Measure::None,
        readmit: 0.06,
        death: 0.01,
        transfer_to: &["gériatrie"],
        goals: &["marcher sans aide", "cicatrisation"],
        symptoms: &["rougeur de la plaie", "douleur du mollet", "fièvre"],
    },
    Profile {
        unit: "médecine interne",
        weight: 0.15,
        emergency: &[
            (
                "E11.6",
                "Type 2 diabetes with other specified complications",
            ),
            ("N17.9", "Acute kidney failure, unspecified"),
            ("D64.9", "Anaemia, unspecified"),
            ("A41.9", "Sepsis, unspecified"),
        ],
        elective: &[
            ("E11.9", "Type 2 diabetes without complications"),
            ("N18.4", "Chronic kidney disease, stage 4"),
            (
                "C34.9",
                "Malignant neoplasm of bronchus or lung, unspecified",
            ),
        ],
        meds: &[
            ("A10BA02", "metformin", "1000 mg twice daily", 90),
            ("A10AE04", "insulin glargine", "14 IU at bedtime", 90),
            ("C10AA05", "atorvastatin", "20 mg once daily", 90),
            ("B03AA07", "ferrous sulfate", "80 mg once daily", 60),
        ],
        measure: Measure::None,
        readmit: 0.12,
        death: 0.03,
        transfer_to: &["réanimation", "cardiologie", "pneumologie"],
        goals: &["HbA1c sous 8 %", "préserver la fonction rénale"],
        symptoms: &["hypoglycémie", "baisse de la diurèse", "fatigue"],
    },
];

const COMORBIDITIES: [Dx; 12] = [
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes without complications"),
    ("E11.2", "Type 2 diabetes with kidney complications"),
    ("N18.3", "Chronic kidney disease, stage 3"),
    ("N18.4", "Chronic kidney disease, stage 4"),
    ("I48.9", "Atrial fibrillation, unspecified"),
    ("I50.9", "Heart failure, unspecified"),
    ("J44.9", "COPD, unspecified"),
    ("F03", "Unspecified dementia"),
    (
        "C34.9",
        "Malignant neoplasm of bronchus or lung, unspecified",
    ),
    ("I63.9", "Cerebral infarction, unspecified"),
    ("E66.9", "Obesity, unspecified"),
];

const FAMILY: [&str; 16] = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau",
    "Laurent", "Simon", "Michel", "Lefebvre", "Leroy", "Roux", "Garcia",
];
const GIVEN_F: [&str; 8] = [
    "Marie",
    "Jeanne",
    "Françoise",
    "Monique",
    "Catherine",
    "Nathalie",
    "Isabelle",
    "Sylvie",
];
const GIVEN_M: [&str; 8] = [
    "Jean", "Pierre", "Michel", "André", "Philippe", "Alain", "Bernard", "Jacques",
];

/// Birth places, by INSEE code: communes (Paris, Lyon, Marseille, Lille, Bordeaux, Ajaccio in
/// Corsica, Saint-Denis de La Réunion) and, for births abroad, countries (Morocco, Algeria,
/// Portugal, Italy).
const BIRTH_PLACES: [&str; 11] = [
    "75056", "69123", "13055", "59350", "33063", "2A004", "97411", "99350", "99352", "99139",
    "99127",
];

/// The INS authority of demonstration NIRs (`INS-NIR-DEMO`): simulated people's.
const NIR_DEMO_OID: &str = "1.2.250.1.213.1.4.11";

/// A NIR as INSEE writes it: sex, year and month of birth, the INSEE code of the birth place
/// (département and commune, or 99 and the country), an order number from `n`, and the key
/// (97 less the number modulo 97, Corsica's 2A and 2B counted as 19 and 18).
fn nir(female: bool, birth: (i64, u32, u32), place: &str, n: u64) -> String {
    let body = format!(
        "{}{:02}{:02}{place}{:03}",
        if female { 2 } else { 1 },
        birth.0 % 100,
        birth.1,
        n % 1000
    );
    let numeric: u64 = body
        .replace("2A", "19")
        .replace("2B", "18")
        .parse()
        .expect("a NIR's digits");
    format!("{body}{:02}", 97 - numeric % 97)
}

const ALL_ITEMS: [v1::LetterItem; 11] = [
    v1::LetterItem::ReasonForStay,
    v1::LetterItem::MedicalSummary,
    v1::LetterItem::Risks,
    v1::LetterItem::ProceduresAndTests,
    v1::LetterItem::Medications,
    v1::LetterItem::CarePlan,
    v1::LetterItem::RecipientDoctor,
    v1::LetterItem::Identification,
    v1::LetterItem::Dates,
    v1::LetterItem::Signatory,
    v1::LetterItem::Destination,
];

fn code(system: &str, (c, display): Dx) -> v1::Code {
    v1::Code {
        system: system.into(),
        code: c.into(),
        display: display.into(),
    }
}

fn facility(i: usize) -> v1::Facility {
    let f = &FACILITIES[i];
    v1::Facility {
        id: f.id.into(),
        name: f.name.into(),
        territory: f.territory.into(),
        time_zone: "Europe/Paris".into(),
    }
}

fn pro(role: Role, id: String, name: String, org: &str) -> v1::Professional {
    // A made-up French mobile number (06 …), steady for a professional.
    let digits: u64 = id
        .bytes()
        .fold(7, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let n = digits % 100_000_000;
    let phone = format!(
        "06 {:02} {:02} {:02} {:02}",
        n / 1_000_000,
        n / 10_000 % 100,
        n / 100 % 100,
        n % 100
    );
    v1::Professional {
        id,
        role: role as i32,
        name,
        organisation: org.into(),
        phone,
    }
}

fn ts(seconds: i64) -> Timestamp {
    Timestamp { seconds, nanos: 0 }
}

// --- one patient ------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AdmKind {
    Emergency,
    Elective,
    TransferIn,
    DaySurgery,
    Had(v1::HadGroup),
}

/// The patient identifier the simulator uses for patient `index` of `seed`.
pub fn patient_id(seed: u64, index: u64) -> String {
    format!("sim-{seed}-{index:06}")
}

/// Where a patient's events go: ids are UUID v5 of (seed, patient index, counter).
struct Sink {
    seed: u64,
    index: u64,
    patient_id: String,
    counter: u64,
    events: Vec<(i64, Event)>,
}

impl Sink {
    fn push(
        &mut self,
        at: i64,
        actor: v1::Actor,
        source: &str,
        correlation: &str,
        causation: &str,
        payload: Payload,
    ) -> String {
        self.counter += 1;
        let id = uuid::Uuid::new_v5(
            &NAMESPACE,
            format!("{}/{}/{}", self.seed, self.index, self.counter).as_bytes(),
        )
        .to_string();
        self.events.push((
            at,
            Event {
                event_id: id.clone(),
                patient_id: self.patient_id.clone(),
                occurred_at: Some(ts(at)),
                actor: Some(actor),
                source: source.into(),
                correlation_id: correlation.into(),
                causation_id: causation.into(),
                payload: Some(payload),
                ..Default::default()
            },
        ));
        id
    }
}

/// The next admission: when, what kind, in which facility.
type Admission = (i64, AdmKind, usize);

/// What the phases of one stay share.
struct Stay {
    enc: String,
    kind: AdmKind,
    fac: usize,
    setting: v1::Setting,
    had_group: v1::HadGroup,
    admit_type: v1::AdmitType,
    unit: &'static str,
    dx: Vec<Dx>,
    /// The facility's ADT feed, and its source name.
    adt: v1::Actor,
    src: String,
    /// The facility's EHR (source name).
    ehr: String,
    t_adm: i64,
    /// The planned discharge (a wrongly recorded discharge delays the actual one).
    t_dis: i64,
}

impl Stay {
    fn inpatient(&self) -> bool {
        self.setting == v1::Setting::Inpatient
    }

    fn admitted(&self, unit: &str, dx: &[Dx]) -> Payload {
        Payload::Admitted(v1::Admitted {
            encounter_id: self.enc.clone(),
            facility: Some(facility(self.fac)),
            unit: unit.into(),
            setting: self.setting as i32,
            had_group: self.had_group as i32,
            admit_type: self.admit_type as i32,
            diagnoses: dx.iter().map(|d| code("ICD-10", *d)).collect(),
        })
    }

    fn discharged(&self, disposition: v1::Disposition, dest: &str) -> Payload {
        Payload::Discharged(v1::Discharged {
            encounter_id: self.enc.clone(),
            disposition: disposition as i32,
            diagnoses: self.dx.iter().map(|d| code("ICD-10", *d)).collect(),
            destination_facility_id: dest.into(),
        })
    }

    /// `lo..hi` before the planned discharge, but after the admission.
    fn shortly_before_discharge(&self, rng: &mut Rng, lo: i64, hi: i64) -> i64 {
        (self.t_dis - rng.range(lo, hi)).max(self.t_adm + MIN)
    }
}

/// Whether a patient leaving with `disposition` goes home alive.
fn alive_home(disposition: v1::Disposition) -> bool {
    matches!(
        disposition,
        v1::Disposition::Home
            | v1::Disposition::HomeWithHad
            | v1::Disposition::AgainstMedicalAdvice
    )
}

/// Whether an event ends the patient's life: a death, or a discharge of a patient deceased.
fn is_death(e: &Event) -> bool {
    match &e.payload {
        Some(Payload::PatientDeceased(_)) => true,
        Some(Payload::Discharged(d)) => d.disposition == v1::Disposition::Deceased as i32,
        _ => false,
    }
}

/// The source name of a facility's ADT feed.
fn adt_source(fac: usize) -> String {
    format!("adt:{}", FACILITIES[fac].id.to_lowercase())
}

struct Gen {
    rng: Rng,
    seed: u64,
    index: u64,
    sink: Sink,
    profile: &'static Profile,
    home_fac: usize,
    gp: v1::Professional,
    nurse: v1::Professional,
    comorbid: Vec<Dx>,
    conditions_recorded: bool,
    baseline: f64,
    stays: u32,
}

impl Gen {
    fn adt(fac: usize) -> v1::Actor {
        v1::Actor {
            id: format!("adt-{}", FACILITIES[fac].id.to_lowercase()),
            role: Role::System as i32,
            organisation: FACILITIES[fac].id.into(),
            display_name: format!("ADT feed {}", FACILITIES[fac].name),
        }
    }

    fn physician(&mut self, fac: usize) -> v1::Professional {
        let n = self.rng.range(1, 40);
        pro(
            Role::HospitalPhysician,
            format!("rpps-81{:02}{n:05}", fac),
            format!("Dr {}", self.rng.pick(&FAMILY)),
            FACILITIES[fac].id,
        )
    }

    /// One of `pool` staff of a facility in `role` (RPPS numbers `rpps-<series><fac><n>`).
    fn hospital_staff(
        &mut self,
        role: Role,
        series: u32,
        fac: usize,
        pool: i64,
    ) -> v1::Professional {
        let n = self.rng.range(1, pool);
        pro(
            role,
            format!("rpps-{series}{fac:02}{n:05}"),
            format!("{} {}", self.rng.pick(&GIVEN_F), self.rng.pick(&FAMILY)),
            FACILITIES[fac].id,
        )
    }

    fn as_actor(p: &v1::Professional) -> v1::Actor {
        v1::Actor {
            id: p.id.clone(),
            role: p.role,
            organisation: p.organisation.clone(),
            display_name: p.name.clone(),
        }
    }

    /// An event of the stay's ADT feed at `t`; returns its id.
    fn adt_event(&mut self, s: &Stay, t: i64, causation: &str, payload: Payload) -> String {
        self.sink
            .push(t, s.adt.clone(), &s.src, &s.enc, causation, payload)
    }

    /// Now and then (3 %) an ADT message is first recorded wrongly at `t` (what `wrong` draws),
    /// cancelled (`cancelled` of its id: A11, A13) `cancel_in` later, to be recorded right
    /// `redo_in` after that. Returns when the right record is due: `t` without a mistake.
    fn adt_mistake(
        &mut self,
        s: &Stay,
        t: i64,
        wrong: impl FnOnce(&mut Rng) -> Payload,
        cancelled: fn(String) -> Payload,
        cancel_in: (i64, i64),
        redo_in: (i64, i64),
    ) -> i64 {
        if !self.rng.chance(0.03) {
            return t;
        }
        let wrong = wrong(&mut self.rng);
        let id = self.adt_event(s, t, "", wrong);
        let t = t + self.rng.range(cancel_in.0, cancel_in.1);
        self.adt_event(s, t, &id, cancelled(id.clone()));
        t + self.rng.range(redo_in.0, redo_in.1)
    }

    /// An emergency department visit to facility `fac` at `at`, from its ADT feed.
    fn ed_visit(
        &mut self,
        at: i64,
        fac: usize,
        correlation: &str,
        visit_id: String,
        outcome: v1::EdOutcome,
        dx: Dx,
    ) {
        self.sink.push(
            at,
            Self::adt(fac),
            &adt_source(fac),
            correlation,
            "",
            Payload::EmergencyVisit(v1::EmergencyVisit {
                visit_id,
                facility: Some(facility(fac)),
                outcome: outcome as i32,
                diagnoses: vec![code("ICD-10", dx)],
            }),
        );
    }

    /// A condition of the stay (`dx`, since `onset`) recorded at `at` by the stay's doctor.
    fn condition(&mut self, s: &Stay, at: i64, doc_actor: &v1::Actor, dx: Dx, onset: i64) {
        self.sink.push(
            at,
            doc_actor.clone(),
            &s.ehr,
            &s.enc,
            "",
            Payload::ConditionRecorded(v1::ConditionRecorded {
                diagnosis: Some(code("ICD-10", dx)),
                onset: Some(ts(onset)),
                encounter_id: s.enc.clone(),
            }),
        );
    }

    /// `p` assigned as the patient's referent in their own role, as they record it.
    fn referent(&mut self, at: i64, source: &str, correlation: &str, p: v1::Professional) {
        self.sink.push(
            at,
            Self::as_actor(&p),
            source,
            correlation,
            "",
            Payload::ReferentAssigned(v1::ReferentAssigned {
                role: p.role,
                professional: Some(p),
            }),
        );
    }

    /// A visit of `nurse` at the patient's home, as they record it.
    fn home_visit(
        &mut self,
        at: i64,
        nurse: v1::Professional,
        source: &str,
        correlation: &str,
        duration_minutes: u32,
        notes_ref: String,
    ) {
        self.sink.push(
            at,
            Self::as_actor(&nurse),
            source,
            correlation,
            "",
            Payload::HomeVisitRecorded(v1::HomeVisitRecorded {
                professional: Some(nurse),
                channel: v1::ContactChannel::Visit as i32,
                duration_minutes,
                notes_ref,
            }),
        );
    }

    /// The patient's death at `at`, as `actor` records it.
    fn death(&mut self, at: i64, actor: v1::Actor, source: &str, correlation: &str) {
        self.sink.push(
            at,
            actor,
            source,
            correlation,
            "",
            Payload::PatientDeceased(v1::PatientDeceased {
                died_at: Some(ts(at)),
            }),
        );
    }

    fn diagnoses(&mut self, kind: AdmKind) -> Vec<Dx> {
        let primary = match kind {
            AdmKind::Elective | AdmKind::DaySurgery => *self.rng.pick(self.profile.elective),
            _ => *self.rng.pick(self.profile.emergency),
        };
        let mut out = vec![primary];
        for c in &self.comorbid {
            if c.0 != primary.0 {
                out.push(*c);
            }
        }
        out
    }

    /// One stay (and what follows it); returns the next admission, if any.
    fn stay(&mut self, t_adm: i64, kind: AdmKind, fac: usize) -> Option<Admission> {
        let mut s = self.open_stay(t_adm, kind, fac);
        self.ed_before_admission(&s);
        s.t_adm = self.admit(&s, t_adm);
        s.t_dis = self.planned_discharge(&s);
        let doctor = self.physician(fac);
        let doc_actor = Self::as_actor(&doctor);
        self.record_conditions(&s, &doc_actor);
        self.maybe_transfer(&s);
        let disposition = self.disposition(kind);
        self.before_discharge(&s, disposition, &doctor);
        let other_fac = (fac + 1 + self.rng.range(0, 1) as usize) % FACILITIES.len();
        let t_dis = self.discharge(&s, disposition, other_fac);
        if disposition == v1::Disposition::Deceased {
            self.death(t_dis, doc_actor, &s.ehr, &s.enc);
            return None;
        }
        self.discharge_letter(&s, t_dis, disposition, other_fac, doc_actor);
        self.after_discharge(&s, t_dis, disposition, other_fac)
    }

    /// The stay's identity, setting, unit, diagnoses and sources; admitted at `t_adm` so far.
    fn open_stay(&mut self, t_adm: i64, kind: AdmKind, fac: usize) -> Stay {
        self.stays += 1;
        let (setting, had_group, admit_type) = match kind {
            AdmKind::Emergency => (
                v1::Setting::Inpatient,
                v1::HadGroup::Unspecified,
                v1::AdmitType::Emergency,
            ),
            AdmKind::Elective => (
                v1::Setting::Inpatient,
                v1::HadGroup::Unspecified,
                v1::AdmitType::Elective,
            ),
            AdmKind::TransferIn => (
                v1::Setting::Inpatient,
                v1::HadGroup::Unspecified,
                v1::AdmitType::TransferIn,
            ),
            AdmKind::DaySurgery => (
                v1::Setting::DaySurgery,
                v1::HadGroup::Unspecified,
                v1::AdmitType::Elective,
            ),
            AdmKind::Had(g) => (v1::Setting::Had, g, v1::AdmitType::Elective),
        };
        let unit = match kind {
            AdmKind::Had(_) => "HAD",
            AdmKind::DaySurgery => "chirurgie ambulatoire",
            _ => self.profile.unit,
        };
        Stay {
            enc: format!("E{}-{}-{}", self.seed, self.index, self.stays),
            kind,
            fac,
            setting,
            had_group,
            admit_type,
            unit,
            dx: self.diagnoses(kind),
            adt: Self::adt(fac),
            src: adt_source(fac),
            ehr: format!("ehr:{}", FACILITIES[fac].id.to_lowercase()),
            t_adm,
            t_dis: t_adm,
        }
    }

    /// Half the emergency admissions come through the emergency department a few hours before.
    fn ed_before_admission(&mut self, s: &Stay) {
        if s.kind == AdmKind::Emergency && self.rng.chance(0.5) {
            let visit = format!("ED{}-{}-{}", self.seed, self.index, self.stays);
            let at = s.t_adm - self.rng.range(2 * HOUR, 7 * HOUR);
            self.ed_visit(at, s.fac, &s.enc, visit, v1::EdOutcome::Admitted, s.dx[0]);
        }
    }

    /// `Admitted` at `t`; a few admissions are first recorded in the wrong unit, cancelled (A11),
    /// and recorded again a little later. Returns when the patient was admitted.
    fn admit(&mut self, s: &Stay, t: i64) -> i64 {
        let units = self.profile.transfer_to;
        let t = self.adt_mistake(
            s,
            t,
            |rng| {
                let wrong_unit = *rng.pick(units);
                s.admitted(wrong_unit, &s.dx[..1])
            },
            |id| {
                Payload::AdmissionCancelled(v1::AdmissionCancelled {
                    cancelled_event_id: id,
                    ..Default::default()
                })
            },
            (15 * MIN, 60 * MIN),
            (5 * MIN, 30 * MIN),
        );
        self.adt_event(s, t, "", s.admitted(s.unit, &s.dx));
        t
    }

    /// When the patient is to leave: a length of stay skewed short, at a working hour.
    fn planned_discharge(&mut self, s: &Stay) -> i64 {
        let (los_secs, end_hour) = match s.kind {
            AdmKind::DaySurgery => (0, self.rng.range(16 * HOUR, 19 * HOUR)),
            AdmKind::Had(_) => (
                self.rng.range(7, 35) * DAY,
                self.rng.range(9 * HOUR, 17 * HOUR),
            ),
            AdmKind::TransferIn => (
                (1 + (self.rng.f64().powf(2.0) * 10.0) as i64) * DAY,
                self.rng.range(10 * HOUR, 17 * HOUR),
            ),
            _ => (
                (1 + (self.rng.f64().powf(2.2) * 19.0) as i64) * DAY,
                self.rng.range(10 * HOUR, 17 * HOUR),
            ),
        };
        let t_dis = s.t_adm.div_euclid(DAY) * DAY + los_secs + end_hour;
        if t_dis <= s.t_adm {
            s.t_adm + self.rng.range(4 * HOUR, 8 * HOUR)
        } else {
            t_dis
        }
    }

    /// Conditions: the primary every stay, chronic ones once.
    fn record_conditions(&mut self, s: &Stay, doc_actor: &v1::Actor) {
        let onset_primary = s.t_adm - self.rng.range(HOUR, 5 * DAY);
        let at = s.t_adm + self.rng.range(HOUR, 6 * HOUR);
        self.condition(s, at, doc_actor, s.dx[0], onset_primary);
        if !self.conditions_recorded {
            self.conditions_recorded = true;
            for c in self.comorbid.clone() {
                let onset = s.t_adm - self.rng.range(365, 15 * 365) * DAY;
                let at = s.t_adm + self.rng.range(HOUR, 8 * HOUR);
                self.condition(s, at, doc_actor, c, onset);
            }
        }
    }

    /// Some inpatient stays of more than a day move to another unit on the way.
    fn maybe_transfer(&mut self, s: &Stay) {
        if s.inpatient() && s.t_dis - s.t_adm > DAY && self.rng.chance(0.15) {
            let at = s.t_adm + ((s.t_dis - s.t_adm) as f64 * (0.2 + 0.5 * self.rng.f64())) as i64;
            let to = *self.rng.pick(self.profile.transfer_to);
            self.adt_event(
                s,
                at,
                "",
                Payload::Transferred(v1::Transferred {
                    encounter_id: s.enc.clone(),
                    from_unit: s.unit.into(),
                    to_unit: to.into(),
                    ..Default::default()
                }),
            );
        }
    }

    /// Where the patient goes at discharge.
    fn disposition(&mut self, kind: AdmKind) -> v1::Disposition {
        match kind {
            AdmKind::DaySurgery => v1::Disposition::Home,
            AdmKind::Had(g) => {
                let die = if g == v1::HadGroup::Palliative {
                    0.35
                } else {
                    0.03
                };
                if self.rng.chance(die) {
                    v1::Disposition::Deceased
                } else {
                    v1::Disposition::Home
                }
            }
            _ => {
                use v1::Disposition as D;
                let options = [
                    (D::Home, 0.64),
                    (D::HomeWithHad, 0.08),
                    (D::NursingHome, 0.07),
                    (D::Rehab, 0.08),
                    (
                        D::OtherAcuteHospital,
                        if kind == AdmKind::TransferIn {
                            0.0
                        } else {
                            0.05
                        },
                    ),
                    (D::Deceased, self.profile.death),
                    (D::AgainstMedicalAdvice, 0.02),
                    (D::Other, 0.01),
                ];
                let w: Vec<f64> = options.iter().map(|o| o.1).collect();
                options[self.rng.weighted(&w)].0
            }
        }
    }

    /// Before discharge: reconciliation, prescriptions, care plan, liaison nurse.
    fn before_discharge(
        &mut self,
        s: &Stay,
        disposition: v1::Disposition,
        doctor: &v1::Professional,
    ) {
        let deceased = disposition == v1::Disposition::Deceased;
        let alive_home = alive_home(disposition);
        let doc_actor = Self::as_actor(doctor);
        if !deceased && disposition != v1::Disposition::AgainstMedicalAdvice && self.rng.chance(0.8)
        {
            let at = s.shortly_before_discharge(&mut self.rng, 2 * HOUR, 20 * HOUR);
            let pharmacist = self.hospital_staff(Role::Pharmacist, 82, s.fac, 20);
            let disc = if self.rng.chance(0.6) {
                0
            } else {
                self.rng.range(1, 4) as u32
            };
            self.sink.push(
                at,
                Self::as_actor(&pharmacist),
                &s.ehr,
                &s.enc,
                "",
                Payload::MedicationReconciled(v1::MedicationReconciled {
                    encounter_id: s.enc.clone(),
                    discrepancies_found: disc,
                    performed_by: Some(pharmacist),
                }),
            );
        }
        if !deceased {
            self.prescriptions(s, doctor, &doc_actor);
        }
        let liaison = self.hospital_staff(Role::LiaisonNurse, 83, s.fac, 10);
        if alive_home && s.inpatient() && self.rng.chance(0.75) {
            let at = s.shortly_before_discharge(&mut self.rng, HOUR, 4 * HOUR);
            self.sink.push(
                at,
                doc_actor.clone(),
                &s.ehr,
                &s.enc,
                "",
                Payload::CarePlanEstablished(v1::CarePlanEstablished {
                    care_plan_id: format!("CP{}-{}-{}", self.seed, self.index, self.stays),
                    goals: self.profile.goals.iter().map(|g| g.to_string()).collect(),
                    symptoms_to_watch: self
                        .profile
                        .symptoms
                        .iter()
                        .map(|g| g.to_string())
                        .collect(),
                    thresholds: self.thresholds(),
                    referents: vec![self.gp.clone(), self.nurse.clone()],
                    encounter_id: s.enc.clone(),
                }),
            );
        }
        if alive_home && s.inpatient() && self.rng.chance(0.4) {
            let at = s.shortly_before_discharge(&mut self.rng, 2 * HOUR, 6 * HOUR);
            self.referent(at, &s.ehr, &s.enc, liaison);
        }
    }

    /// Two to four of the profile's medications, prescribed by the stay's doctor.
    fn prescriptions(&mut self, s: &Stay, doctor: &v1::Professional, doc_actor: &v1::Actor) {
        let n = self.rng.range(2, 4) as usize;
        let mut meds: Vec<&Med> = self.profile.meds.iter().collect();
        for i in 0..n.min(meds.len()) {
            let j = self.rng.range(i as i64, meds.len() as i64 - 1) as usize;
            meds.swap(i, j);
            let m = meds[i];
            let at = s.shortly_before_discharge(&mut self.rng, HOUR, 3 * HOUR);
            let rx = format!("RX{}-{}-{}-{}", self.seed, self.index, self.stays, i + 1);
            self.sink.push(
                at,
                doc_actor.clone(),
                &s.ehr,
                &s.enc,
                "",
                Payload::PrescriptionIssued(v1::PrescriptionIssued {
                    prescription_id: rx,
                    medication: Some(code("ATC", (m.0, m.1))),
                    dose: m.2.into(),
                    duration_days: m.3,
                    prescriber: Some(doctor.clone()),
                    encounter_id: s.enc.clone(),
                }),
            );
        }
    }

    /// The care plan's alert thresholds for the profile's telemonitoring measure.
    fn thresholds(&self) -> Vec<v1::AlertThreshold> {
        match self.profile.measure {
            Measure::Weight => vec![v1::AlertThreshold {
                measure: "weight".into(),
                low: self.baseline - 3.0,
                high: self.baseline + 2.0,
                severity: v1::Severity::Moderate as i32,
            }],
            Measure::Spo2 => vec![v1::AlertThreshold {
                measure: "spo2".into(),
                low: 90.0,
                high: 100.0,
                severity: v1::Severity::High as i32,
            }],
            Measure::None => Vec::new(),
        }
    }

    /// `Discharged` at the planned time; a few are first recorded wrongly, cancelled (A13) and
    /// recorded again a little later. Returns when the patient was discharged.
    fn discharge(&mut self, s: &Stay, disposition: v1::Disposition, other_fac: usize) -> i64 {
        let dest = if disposition == v1::Disposition::OtherAcuteHospital {
            FACILITIES[other_fac].id
        } else {
            ""
        };
        let wrong = if disposition == v1::Disposition::Home {
            v1::Disposition::Rehab
        } else {
            v1::Disposition::Home
        };
        let t = self.adt_mistake(
            s,
            s.t_dis,
            |_| s.discharged(wrong, ""),
            |id| {
                Payload::DischargeCancelled(v1::DischargeCancelled {
                    cancelled_event_id: id,
                    ..Default::default()
                })
            },
            (20 * MIN, 90 * MIN),
            (10 * MIN, 60 * MIN),
        );
        self.adt_event(s, t, "", s.discharged(disposition, dest));
        t
    }

    /// The discharge letter: most the same day, some late, some incomplete.
    fn discharge_letter(
        &mut self,
        s: &Stay,
        t_dis: i64,
        disposition: v1::Disposition,
        other_fac: usize,
        doc_actor: v1::Actor,
    ) {
        let r = self.rng.f64();
        let delay = if r < 0.7 {
            self.rng.range(0, 5 * HOUR)
        } else if r < 0.9 {
            self.rng.range(1, 7) * DAY + self.rng.range(0, 8 * HOUR)
        } else {
            self.rng.range(8, 25) * DAY + self.rng.range(0, 8 * HOUR)
        };
        let mut items: Vec<i32> = ALL_ITEMS.iter().map(|i| *i as i32).collect();
        if self.rng.chance(0.25) {
            for _ in 0..self.rng.range(1, 3) {
                let k = self.rng.range(0, items.len() as i64 - 1) as usize;
                items.remove(k);
            }
        }
        let channel = [
            v1::LetterChannel::Mssante,
            v1::LetterChannel::Dmp,
            v1::LetterChannel::Paper,
        ][self.rng.weighted(&[0.6, 0.25, 0.15])];
        let mut recipients = vec![self.gp.clone()];
        if disposition == v1::Disposition::OtherAcuteHospital {
            recipients.push(pro(
                Role::HospitalPhysician,
                format!("svc-{}", FACILITIES[other_fac].id.to_lowercase()),
                format!("{} {}", FACILITIES[other_fac].name, self.profile.unit),
                FACILITIES[other_fac].id,
            ));
        }
        self.sink.push(
            t_dis + delay,
            doc_actor,
            &s.ehr,
            &s.enc,
            "",
            Payload::DischargeLetterSent(v1::DischargeLetterSent {
                encounter_id: s.enc.clone(),
                channel: channel as i32,
                recipients,
                handed_to_patient: self.rng.chance(0.7),
                items_present: items,
            }),
        );
    }

    /// What comes after a discharge alive: the next admission (a transfer, a readmission, a
    /// later stay), an HAD stay, the follow-up at home, and now and then a death at home.
    fn after_discharge(
        &mut self,
        s: &Stay,
        t_dis: i64,
        disposition: v1::Disposition,
        other_fac: usize,
    ) -> Option<Admission> {
        if disposition == v1::Disposition::OtherAcuteHospital {
            let at = t_dis + self.rng.range(HOUR, 20 * HOUR);
            return Some((at, AdmKind::TransferIn, other_fac));
        }
        let mut next = self.next_admission(s, t_dis, disposition, other_fac);

        // Home+HAD: an HAD stay starts the same day, ends before any readmission.
        let mut had = false;
        if disposition == v1::Disposition::HomeWithHad
            || (disposition == v1::Disposition::NursingHome && self.rng.chance(0.15))
        {
            let group = if disposition == v1::Disposition::NursingHome {
                v1::HadGroup::NursingHomeSupport
            } else if s.dx.iter().any(|d| d.0.starts_with('C')) || self.rng.chance(0.25) {
                v1::HadGroup::Palliative
            } else {
                v1::HadGroup::AcuteChronic
            };
            had = true;
            let had_start = t_dis + self.rng.range(HOUR, 5 * HOUR);
            let end = self.follow_up_end(had_start, next);
            self.had_stay(had_start, group, s.fac, end, next.map(|n| n.0));
            if self.dead_by(next.map_or(i64::MAX, |n| n.0)) {
                return None;
            }
        }

        let window_end = next.map_or(t_dis + 45 * DAY, |n| n.0);
        let alive_home = alive_home(disposition);
        if alive_home || disposition == v1::Disposition::Rehab {
            self.follow_up(t_dis, window_end, alive_home, &s.enc, s.inpatient());
        }
        // Death outside hospital now and then.
        if !had && self.rng.chance(self.profile.death * 0.6) {
            let at = t_dis + self.rng.range(3, 60) * DAY + self.rng.range(0, DAY - 1);
            if next.is_none_or(|n| at < n.0 - HOUR) {
                self.death(at, Self::as_actor(&self.gp), "gp-software", "");
                next = None;
            }
        }
        next
    }

    /// A readmission within 30 days (likelier after an index stay, or after leaving against
    /// medical advice), or a later stay, or none.
    fn next_admission(
        &mut self,
        s: &Stay,
        t_dis: i64,
        disposition: v1::Disposition,
        other_fac: usize,
    ) -> Option<Admission> {
        let index_stay = s.inpatient() && disposition != v1::Disposition::AgainstMedicalAdvice;
        let readmit_p = match (index_stay, disposition) {
            (true, _) => self.profile.readmit,
            (false, v1::Disposition::AgainstMedicalAdvice) => self.profile.readmit + 0.1,
            _ => 0.04,
        };
        if self.rng.chance(readmit_p) {
            let days = (self.rng.f64().powf(1.5) * 29.0) as i64;
            let at = t_dis.div_euclid(DAY) * DAY + days * DAY + self.rng.range(0, DAY - 1);
            let at = at.max(t_dis + 12 * HOUR);
            let kind = if self.rng.chance(0.85) {
                AdmKind::Emergency
            } else {
                AdmKind::Elective
            };
            Some((
                at,
                kind,
                if self.rng.chance(0.8) {
                    self.home_fac
                } else {
                    other_fac
                },
            ))
        } else if self.rng.chance(0.12) {
            let at = t_dis + self.rng.range(31, 120) * DAY;
            let kind = if self.rng.chance(0.5) {
                AdmKind::Emergency
            } else {
                AdmKind::Elective
            };
            let at = if kind == AdmKind::Elective {
                at.div_euclid(DAY) * DAY + self.rng.range(7 * HOUR, 10 * HOUR)
            } else {
                at
            };
            Some((at, kind, self.home_fac))
        } else {
            None
        }
    }

    fn dead_by(&self, t: i64) -> bool {
        self.sink
            .events
            .iter()
            .any(|(at, e)| *at <= t && is_death(e))
    }

    fn follow_up_end(&self, from: i64, next: Option<Admission>) -> i64 {
        next.map_or(from + 60 * DAY, |n| n.0)
    }

    /// An HAD stay after discharge: nurse visits, ends (home or death) before `next`.
    fn had_stay(&mut self, t: i64, group: v1::HadGroup, fac: usize, end: i64, next: Option<i64>) {
        let enc = format!("E{}-{}-{}-had", self.seed, self.index, self.stays);
        let actor = Self::adt(fac);
        let src = adt_source(fac);
        self.sink.push(
            t,
            actor.clone(),
            &src,
            &enc,
            "",
            Payload::Admitted(v1::Admitted {
                encounter_id: enc.clone(),
                facility: Some(facility(fac)),
                unit: "HAD".into(),
                setting: v1::Setting::Had as i32,
                had_group: group as i32,
                admit_type: v1::AdmitType::TransferIn as i32,
                diagnoses: vec![],
            }),
        );
        let coordinator = self.hospital_staff(Role::HadCoordinator, 84, fac, 5);
        self.referent(t + 10 * MIN, "had-software", &enc, coordinator.clone());
        let planned = t + self.rng.range(7, 35) * DAY;
        let (stop, disposition) = match next {
            Some(n) if n - 2 * HOUR <= planned => {
                (n - 2 * HOUR, v1::Disposition::OtherAcuteHospital)
            }
            _ => {
                let die = group == v1::HadGroup::Palliative && self.rng.chance(0.35);
                (
                    planned.min(end.max(t + DAY)),
                    if die {
                        v1::Disposition::Deceased
                    } else {
                        v1::Disposition::Home
                    },
                )
            }
        };
        let stop = stop.max(t + HOUR);
        let mut v = t.div_euclid(DAY) * DAY + DAY + 9 * HOUR;
        while v + HOUR < stop {
            let at = v + self.rng.range(0, 8 * HOUR);
            let minutes = self.rng.range(20, 60) as u32;
            let nurse = self.nurse.clone();
            self.home_visit(at, nurse, "had-software", &enc, minutes, String::new());
            v += self.rng.range(1, 3) * DAY;
        }
        self.sink.push(
            stop,
            actor,
            &src,
            &enc,
            "",
            Payload::Discharged(v1::Discharged {
                encounter_id: enc.clone(),
                disposition: disposition as i32,
                diagnoses: vec![],
                destination_facility_id: String::new(),
            }),
        );
        if disposition == v1::Disposition::Deceased {
            self.death(stop, Self::as_actor(&coordinator), "had-software", &enc);
        }
    }

    /// After a discharge home: referents, first contact, appointments, telemonitoring, ED visits.
    fn follow_up(&mut self, t_dis: i64, end: i64, home: bool, enc: &str, inpatient: bool) {
        let nurse = self.nurse.clone();
        let at = t_dis + self.rng.range(5 * MIN, 2 * HOUR);
        self.referent(at, "gp-software", enc, self.gp.clone());
        if !home {
            return;
        }
        if self.rng.chance(0.7) {
            let at = t_dis + self.rng.range(HOUR, DAY);
            self.referent(at, "home-care-software", enc, nurse.clone());
        }
        self.first_home_contact(t_dis, end, enc);
        self.appointments(t_dis, end, enc, inpatient);
        // Telemonitoring for some heart-failure and COPD patients.
        if self.profile.measure != Measure::None && self.rng.chance(0.5) {
            self.telemonitoring(t_dis, end, enc);
        } else if self.rng.chance(0.05) {
            let at = t_dis + self.rng.range(2, 20) * DAY;
            if at < end {
                self.alert(
                    at,
                    v1::Severity::Moderate,
                    "chute à domicile signalée par l'infirmière",
                    enc,
                    &nurse,
                );
            }
        }
        self.ed_visit_without_admission(t_dis, end);
    }

    /// The first home contact after discharge (most within 2 working days, some later): a
    /// nurse's visit or a phone call; then weekly nurse visits for some, until `end`.
    fn first_home_contact(&mut self, t_dis: i64, end: i64, enc: &str) {
        let gp = self.gp.clone();
        let nurse = self.nurse.clone();
        let r = self.rng.f64();
        let days = if r < 0.35 {
            1
        } else if r < 0.65 {
            2
        } else if r < 0.85 {
            self.rng.range(3, 4)
        } else {
            self.rng.range(5, 9)
        };
        let first = t_dis.div_euclid(DAY) * DAY + days * DAY + self.rng.range(8 * HOUR, 18 * HOUR);
        if first < end {
            if self.rng.chance(0.6) {
                let minutes = self.rng.range(20, 60) as u32;
                let notes = format!("doc://home-care/{}", self.sink.counter + 1);
                self.home_visit(
                    first,
                    nurse.clone(),
                    "home-care-software",
                    enc,
                    minutes,
                    notes,
                );
            } else {
                let who = if self.rng.chance(0.5) {
                    gp.clone()
                } else {
                    nurse.clone()
                };
                self.sink.push(
                    first,
                    Self::as_actor(&who),
                    "gp-software",
                    enc,
                    "",
                    Payload::ContactMade(v1::ContactMade {
                        professional: Some(who),
                        channel: v1::ContactChannel::Phone as i32,
                        reason: "post-discharge check".into(),
                    }),
                );
            }
            // Then weekly nurse visits for some.
            if self.rng.chance(0.5) {
                let mut v = first + 7 * DAY;
                while v < end.min(t_dis + 42 * DAY) {
                    let minutes = self.rng.range(15, 45) as u32;
                    let nurse = nurse.clone();
                    self.home_visit(v, nurse, "home-care-software", enc, minutes, String::new());
                    v += 7 * DAY + self.rng.range(-HOUR, HOUR);
                }
            }
        }
    }

    /// Appointments: J+7 GP, J+30 specialist (inpatient stays); completed, or missed (always
    /// when due after `end`, the next admission).
    fn appointments(&mut self, t_dis: i64, end: i64, enc: &str, inpatient: bool) {
        let gp = self.gp.clone();
        let mut appts = vec![("J+7 médecin traitant", 7, gp.clone())];
        if inpatient {
            let specialist = pro(
                Role::Specialist,
                format!("rpps-85{:05}", self.rng.range(1, 30)),
                format!("Dr {} ({})", self.rng.pick(&FAMILY), self.profile.unit),
                FACILITIES[self.home_fac].id,
            );
            appts.push(("J+30 spécialiste", 30, specialist));
        }
        for (k, (kind, d, with)) in appts.into_iter().enumerate() {
            let id = format!("AP{}-{}-{}-{}", self.seed, self.index, self.stays, k + 1);
            let due = t_dis.div_euclid(DAY) * DAY + d * DAY + self.rng.range(9 * HOUR, 17 * HOUR);
            let scheduled = t_dis + self.rng.range(10 * MIN, 20 * HOUR);
            let sched_id = self.sink.push(
                scheduled,
                Self::as_actor(&with),
                "scheduling",
                enc,
                "",
                Payload::AppointmentScheduled(v1::AppointmentScheduled {
                    appointment_id: id.clone(),
                    kind: kind.into(),
                    due_at: Some(ts(due)),
                    with: Some(with.clone()),
                    encounter_id: enc.into(),
                }),
            );
            let at = due + self.rng.range(0, HOUR);
            let payload = if due >= end {
                Payload::AppointmentMissed(v1::AppointmentMissed {
                    appointment_id: id,
                    reason: "patient hospitalisé".into(),
                })
            } else if self.rng.chance(0.8) {
                Payload::AppointmentCompleted(v1::AppointmentCompleted { appointment_id: id })
            } else {
                Payload::AppointmentMissed(v1::AppointmentMissed {
                    appointment_id: id,
                    reason: (*self.rng.pick(&[
                        "ne s'est pas présenté",
                        "pas de transport",
                        "oubli",
                    ]))
                    .into(),
                })
            };
            self.sink.push(
                at,
                Self::as_actor(&with),
                "scheduling",
                enc,
                &sched_id,
                payload,
            );
        }
    }

    /// Now and then an ED visit without admission, a day or more before `end`.
    fn ed_visit_without_admission(&mut self, t_dis: i64, end: i64) {
        if self.rng.chance(0.1) {
            let at = t_dis + self.rng.range(2, 28) * DAY + self.rng.range(0, DAY - 1);
            if at < end - DAY {
                let outcome = if self.rng.chance(0.85) {
                    v1::EdOutcome::DischargedHome
                } else {
                    v1::EdOutcome::LeftWithoutBeingSeen
                };
                let visit = format!("ED{}-{}-{}-x", self.seed, self.index, self.stays);
                let dx = *self.rng.pick(&[
                    ("R07.4", "Chest pain, unspecified"),
                    ("R06.0", "Dyspnoea"),
                    ("R55", "Syncope and collapse"),
                ]);
                self.ed_visit(at, self.home_fac, "", visit, outcome, dx);
            }
        }
    }

    /// An alert a professional reports (a fall at home), then, most often, acknowledged and
    /// resolved by them.
    fn alert(
        &mut self,
        at: i64,
        severity: v1::Severity,
        reason: &str,
        enc: &str,
        by: &v1::Professional,
    ) {
        let id = format!("AL{}-{}-{}", self.seed, self.index, self.sink.counter + 1);
        let raised = self.sink.push(
            at,
            Self::as_actor(by),
            "home-care-software",
            enc,
            "",
            Payload::AlertRaised(v1::AlertRaised {
                alert_id: id.clone(),
                severity: severity as i32,
                rule: String::new(),
                reason: reason.into(),
            }),
        );
        self.handle_alert(at, &id, &raised, enc, by);
    }

    /// The nurse's answer to an alert raised at `at`: acknowledged most often, then resolved.
    fn handle_alert(&mut self, at: i64, id: &str, raised: &str, enc: &str, by: &v1::Professional) {
        if self.rng.chance(0.9) {
            let ack = at + self.rng.range(10 * MIN, 8 * HOUR);
            self.sink.push(
                ack,
                Self::as_actor(by),
                "home-care-software",
                enc,
                raised,
                Payload::AlertAcknowledged(v1::AlertAcknowledged {
                    alert_id: id.into(),
                }),
            );
            if self.rng.chance(0.85) {
                let done = ack + self.rng.range(2 * HOUR, 2 * DAY);
                self.sink.push(
                    done,
                    Self::as_actor(by),
                    "home-care-software",
                    enc,
                    raised,
                    Payload::AlertResolved(v1::AlertResolved {
                        alert_id: id.into(),
                        resolution: (*self.rng.pick(&[
                            "traitement ajusté",
                            "fausse alerte",
                            "visite du médecin traitant",
                        ]))
                        .into(),
                    }),
                );
            }
        }
    }

    /// The telemonitoring alerts of the journey, as the alert reactor raises them: the rules of
    /// `journey_domain::alert_rules` over the patient's events in order, each alert the very
    /// event the reactor would append (same event id, derived from the observation and the
    /// rule), so that the log keeps one alert per crossing whoever appends it first. The home
    /// nurse then answers it.
    fn telemonitoring_alerts(&mut self) {
        self.sink.events.sort_by_key(|(at, _)| *at);
        let mut rules = journey_domain::alert_rules::AlertRules::default();
        let mut raised = Vec::new();
        for (at, e) in &self.sink.events {
            for decision in rules.apply(e) {
                let enc = e.correlation_id.clone();
                raised.push((
                    *at,
                    journey_domain::alert_rules::alert_event(e, &decision),
                    enc,
                ));
            }
        }
        let nurse = self.nurse.clone();
        for (at, alert, enc) in raised {
            let id = alert.event_id.clone();
            self.sink.events.push((at, alert));
            self.handle_alert(at, &id, &id, &enc, &nurse);
        }
    }

    fn telemonitoring(&mut self, t_dis: i64, end: i64, enc: &str) {
        let device = format!("dev-{}-{}", self.seed, self.index);
        let measure = self.profile.measure;
        let actor = v1::Actor {
            id: device.clone(),
            role: Role::System as i32,
            organisation: "telemonitoring".into(),
            display_name: String::new(),
        };
        let readmitted_soon = end < t_dis + 31 * DAY;
        let mut value = match measure {
            Measure::Weight => self.baseline,
            _ => 94.0 + self.rng.range(0, 3) as f64,
        };
        let mut day = t_dis.div_euclid(DAY) * DAY + DAY + 8 * HOUR;
        let stop = end.min(t_dis + 30 * DAY);
        while day + 10 * MIN < stop {
            let at = day + self.rng.range(0, 90 * MIN);
            let worsening = readmitted_soon && end - day < 4 * DAY;
            match measure {
                Measure::Weight => {
                    value += self.rng.normal(0.3)
                        + if worsening {
                            0.7
                        } else {
                            -0.02 * (value - self.baseline)
                        };
                }
                _ => {
                    value += self.rng.normal(0.8)
                        + if worsening {
                            -1.5
                        } else {
                            0.2 * (95.0 - value)
                        };
                    value = value.min(100.0);
                }
            }
            let (name, unit, loinc, display) = match measure {
                Measure::Weight => ("weight", "kg", "29463-7", "Body weight"),
                _ => (
                    "spo2",
                    "%",
                    "59408-5",
                    "Oxygen saturation by pulse oximetry",
                ),
            };
            let rounded = (value * 10.0).round() / 10.0;
            self.sink.push(
                at,
                actor.clone(),
                "telemonitoring",
                enc,
                "",
                Payload::ObservationRecorded(v1::ObservationRecorded {
                    measure: name.into(),
                    value: if measure == Measure::Spo2 {
                        rounded.round()
                    } else {
                        rounded
                    },
                    unit: unit.into(),
                    code: Some(v1::Code {
                        system: "LOINC".into(),
                        code: loinc.into(),
                        display: display.into(),
                    }),
                    device_id: device.clone(),
                }),
            );
            // No alert here: the alert rules raise it (`telemonitoring_alerts`).
            day += DAY;
        }
    }
}

/// The whole journey of patient `index`, in append order (clinical time), cut at `horizon`.
pub fn patient_events(seed: u64, index: u64, start: i64, days: u32, horizon: i64) -> Vec<Event> {
    let mut g = Gen::new(seed, index);
    let first = g.first_admission(start, days);
    g.register(start, first.0);
    let mut next = Some(first);
    while let Some((at, kind, fac)) = next {
        if at > horizon || g.stays >= 8 {
            break;
        }
        next = g.stay(at, kind, fac);
    }
    g.journey(horizon)
}

/// A patient's setting and the beginning and end of the journey.
impl Gen {
    /// Patient `index` of `seed`: profile, home facility, GP, home nurse, comorbidities.
    fn new(seed: u64, index: u64) -> Gen {
        let mut rng = Rng::new(
            seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03),
        );
        let weights: Vec<f64> = PROFILES.iter().map(|p| p.weight).collect();
        let profile = &PROFILES[rng.weighted(&weights)];
        let home_fac = rng.range(0, FACILITIES.len() as i64 - 1) as usize;
        let territory = FACILITIES[home_fac].territory;
        let gp_n = rng.range(1, 12);
        let gp = pro(
            Role::Gp,
            format!("rpps-10{home_fac}{gp_n:05}"),
            format!(
                "Dr {}",
                FAMILY[(gp_n as usize * 7 + home_fac) % FAMILY.len()]
            ),
            &format!("Cabinet {territory} {gp_n}"),
        );
        let nurse_n = rng.range(1, 8);
        let nurse = pro(
            Role::HomeNurse,
            format!("rpps-20{home_fac}{nurse_n:05}"),
            format!(
                "{} {}",
                GIVEN_F[nurse_n as usize % GIVEN_F.len()],
                FAMILY[(nurse_n as usize * 5) % FAMILY.len()]
            ),
            &format!("Cabinet infirmier {territory}"),
        );
        let mut comorbid = Vec::new();
        for _ in 0..rng.range(0, 3) {
            let c = *rng.pick(&COMORBIDITIES);
            if !comorbid.contains(&c) {
                comorbid.push(c);
            }
        }
        Gen {
            baseline: 60.0 + rng.range(0, 40) as f64,
            rng,
            seed,
            index,
            sink: Sink {
                seed,
                index,
                patient_id: patient_id(seed, index),
                counter: 0,
                events: Vec::new(),
            },
            profile,
            home_fac,
            gp,
            nurse,
            comorbid,
            conditions_recorded: false,
            stays: 0,
        }
    }

    /// The first admission, somewhere in the first 70 % of the window of `days` from `start`.
    fn first_admission(&mut self, start: i64, days: u32) -> Admission {
        let span = ((days as f64 * 0.7) * DAY as f64) as i64;
        let first_day = (start + self.rng.range(0, span.max(1))).div_euclid(DAY) * DAY;
        let ortho = self.profile.unit == "orthopédie";
        let r = self.rng.f64();
        let kind = if r < if ortho { 0.25 } else { 0.06 } {
            AdmKind::DaySurgery
        } else if r < if ortho { 0.25 } else { 0.10 } {
            AdmKind::Had(if self.profile.death > 0.05 {
                v1::HadGroup::Palliative
            } else {
                v1::HadGroup::AcuteChronic
            })
        } else if self.rng.chance(0.6) {
            AdmKind::Emergency
        } else {
            AdmKind::Elective
        };
        let t_first = first_day
            + match kind {
                AdmKind::Emergency => self.rng.range(0, DAY - 1),
                AdmKind::DaySurgery => self.rng.range(7 * HOUR, 9 * HOUR),
                _ => self.rng.range(8 * HOUR, 14 * HOUR),
            };
        (t_first, kind, self.home_fac)
    }

    /// The registration, before the first admission at `t_first`, and sometimes an earlier ED
    /// visit without admission.
    fn register(&mut self, start: i64, t_first: i64) {
        let prior_ed = self
            .rng
            .chance(0.12)
            .then(|| t_first - self.rng.range(10, 150) * DAY);
        let registered_at = prior_ed.unwrap_or(t_first) - self.rng.range(6 * HOUR, 30 * DAY);
        let female = self.rng.chance(0.5);
        let age = if self.profile.unit == "gériatrie" {
            self.rng.range(78, 97)
        } else {
            self.rng.range(40, 92)
        };
        let birth = civil_from_days(start.div_euclid(DAY) - age * 365 - self.rng.range(0, 364));
        let family = *self.rng.pick(&FAMILY);
        let given = if female {
            *self.rng.pick(&GIVEN_F)
        } else {
            *self.rng.pick(&GIVEN_M)
        };
        // A validated identity (the INS of a demonstration NIR, its birth place and the list of
        // given names of the birth certificate), from the patient's own numbers: the random
        // stream stays that of the journeys.
        let names = if female { &GIVEN_F } else { &GIVEN_M };
        let second = names[(self.index as usize * 3 + 1) % names.len()];
        let birth_given_names = if second == given {
            given.to_string()
        } else {
            format!("{given} {second}")
        };
        let birth_place = BIRTH_PLACES[(self.seed ^ self.index) as usize % BIRTH_PLACES.len()];
        let admin = v1::Actor {
            id: format!("adm-{}", FACILITIES[self.home_fac].id.to_lowercase()),
            role: Role::Administrative as i32,
            organisation: FACILITIES[self.home_fac].id.into(),
            display_name: String::new(),
        };
        self.sink.push(
            registered_at,
            admin,
            &adt_source(self.home_fac),
            "",
            "",
            Payload::PatientRegistered(v1::PatientRegistered {
                ins: nir(
                    female,
                    birth,
                    birth_place,
                    (self.seed.wrapping_mul(1_000_003) ^ self.index) % 1_000_000,
                ),
                ins_oid: NIR_DEMO_OID.into(),
                identity_status: v1::IdentityStatus::Validated as i32,
                birth_place_code: birth_place.into(),
                birth_given_names,
                local_id: format!("IPP{}{:07}", self.seed % 1000, self.index),
                birth_date: format!("{:04}-{:02}-{:02}", birth.0, birth.1, birth.2),
                sex: if female {
                    v1::Sex::Female
                } else {
                    v1::Sex::Male
                } as i32,
                gp: Some(self.gp.clone()),
                family_name: family.into(),
                given_name: given.into(),
            }),
        );
        if let Some(at) = prior_ed {
            let visit = format!("ED{}-{}-0", self.seed, self.index);
            let dx = self.profile.emergency[0];
            let outcome = v1::EdOutcome::DischargedHome;
            self.ed_visit(at, self.home_fac, "", visit, outcome, dx);
        }
    }

    /// Append order = clinical order (stable: same-instant events keep their generation order),
    /// cut at the horizon and at death.
    fn journey(mut self, horizon: i64) -> Vec<Event> {
        self.telemonitoring_alerts();
        let mut events = self.sink.events;
        events.sort_by_key(|(at, _)| *at);
        let death = events.iter().find(|(_, e)| is_death(e)).map(|(at, _)| *at);
        let limit = death.map_or(horizon, |d| d.min(horizon));
        events
            .into_iter()
            .take_while(|(at, _)| *at <= limit)
            .map(|(_, e)| e)
            .collect()
    }
}

// --- appending --------------------------------------------------------------------------------

#[derive(Default)]
struct Stats {
    appended: AtomicU64,
    present: AtomicU64,
    refused: AtomicU64,
    reasons: Mutex<Vec<String>>,
}

impl Stats {
    fn refuse(&self, n: usize, reason: String) {
        self.refused.fetch_add(n as u64, Ordering::Relaxed);
        let mut r = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        if r.len() < 5 {
            r.push(reason);
        }
    }
}

async fn call(c: &mut LogClient, events: &[Event]) -> Result<v1::AppendResponse, tonic::Status> {
    let mut attempt = 0u32;
    loop {
        let request = AppendRequest {
            events: events.to_vec(),
            expected_versions: Default::default(),
        };
        match c.append(request).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) if s.code() == tonic::Code::Unavailable && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(s) => return Err(s),
        }
    }
}

/// Appends one batch; a batch partly stored already (another batch size earlier) goes event by event.
async fn send(c: &mut LogClient, events: Vec<Event>, stats: &Stats) -> anyhow::Result<()> {
    let describe = |s: &tonic::Status| format!("{:?}: {}", s.code(), s.message());
    match call(c, &events).await {
        Ok(r) => {
            let n = events.len() as u64;
            if r.deduplicated {
                stats.present.fetch_add(n, Ordering::Relaxed);
            } else {
                stats.appended.fetch_add(n, Ordering::Relaxed);
            }
        }
        Err(s) if s.code() == tonic::Code::AlreadyExists && events.len() > 1 => {
            for e in events {
                match call(c, std::slice::from_ref(&e)).await {
                    Ok(r) if r.deduplicated => {
                        stats.present.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        stats.appended.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(s) if s.code() == tonic::Code::Unavailable => {
                        bail!("the server is unavailable: {}", s.message())
                    }
                    Err(s) => stats.refuse(1, format!("event {}: {}", e.event_id, describe(&s))),
                }
            }
        }
        Err(s) if s.code() == tonic::Code::Unavailable => {
            bail!("the server is unavailable: {}", s.message())
        }
        Err(s) => stats.refuse(events.len(), describe(&s)),
    }
    Ok(())
}

/// `journey simulate`: generates the journeys `args` asks for and appends them to the log of
/// `remote` (with its token); returns false when anything was refused.
pub async fn run(args: SimulateArgs, remote: &Remote) -> anyhow::Result<bool> {
    if args.patients == 0 || args.days == 0 {
        bail!("--patients and --days must be at least 1");
    }
    if args.batch_size == 0 || args.concurrency == 0 {
        bail!("--batch-size and --concurrency must be at least 1");
    }
    let now = now_secs();
    let start_day = match &args.start {
        Some(s) => parse_date(s)?,
        None => now.div_euclid(DAY) - args.days as i64,
    };
    let start = start_day * DAY;
    let horizon = (start + args.days as i64 * DAY).min(now);
    if horizon <= start {
        bail!("the window starts in the future: nothing to simulate");
    }
    let client = remote.client().await?;
    let (y, m, d) = civil_from_days(start_day);
    eprintln!(
        "simulate: {} patients over {} days from {y:04}-{m:02}-{d:02}, seed {}, batches of {}, {} in flight",
        args.patients, args.days, args.seed, args.batch_size, args.concurrency
    );

    let stats = Arc::new(Stats::default());
    let began = Instant::now();
    let progress = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let done =
                    stats.appended.load(Ordering::Relaxed) + stats.present.load(Ordering::Relaxed);
                eprintln!(
                    "simulate: {done} events ({} new), {:.0} events/s",
                    stats.appended.load(Ordering::Relaxed),
                    (done - last) as f64
                );
                last = done;
            }
        })
    };

    let workers = args.concurrency.min(args.patients as usize);
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let mut c = client.clone();
        let stats = stats.clone();
        let a = args.clone();
        tasks.push(tokio::spawn(async move {
            let mut buf = Vec::with_capacity(a.batch_size);
            let mut p = w as u64;
            while p < a.patients {
                for e in patient_events(a.seed, p, start, a.days, horizon) {
                    buf.push(e);
                    if buf.len() == a.batch_size {
                        send(&mut c, std::mem::take(&mut buf), &stats).await?;
                    }
                }
                p += workers as u64;
            }
            if !buf.is_empty() {
                send(&mut c, buf, &stats).await?;
            }
            anyhow::Ok(())
        }));
    }
    let mut result = Ok(());
    for t in tasks {
        if let Err(e) = t.await.context("simulate worker")? {
            result = Err(e);
        }
    }
    progress.abort();
    result?;

    let elapsed = began.elapsed().as_secs_f64();
    let appended = stats.appended.load(Ordering::Relaxed);
    let present = stats.present.load(Ordering::Relaxed);
    let refused = stats.refused.load(Ordering::Relaxed);
    println!(
        "patients {}, events appended {appended}, already present {present}, refused {refused} ({elapsed:.2} s, {:.0} events/s)",
        args.patients,
        (appended + present) as f64 / elapsed.max(1e-9)
    );
    let reasons = stats.reasons.lock().unwrap_or_else(|e| e.into_inner());
    for r in reasons.iter() {
        println!("refused: {r}");
    }
    Ok(refused == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        for z in [-800_000, -1, 0, 59, 60, 19_782, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(
            parse_date("2025-03-01").unwrap(),
            days_from_civil(2025, 3, 1)
        );
        assert!(parse_date("2025-02-30").is_err());
        assert!(parse_date("yesterday").is_err());
    }

    #[test]
    fn generation_is_deterministic() {
        let start = days_from_civil(2025, 1, 1) * DAY;
        let a = patient_events(3, 17, start, 90, start + 90 * DAY);
        let b = patient_events(3, 17, start, 90, start + 90 * DAY);
        assert_eq!(a, b);
        assert_ne!(a, patient_events(4, 17, start, 90, start + 90 * DAY));
    }

    /// Simulated identities are validated: a demonstration NIR whose birth fields are the
    /// identity's and whose key checks, the birth place's INSEE code, and the list of birth given
    /// names beginning with the given name; each registration passes the log's field checks.
    #[test]
    fn identities_are_validated_with_their_ins_traits() {
        let start = days_from_civil(2025, 1, 1) * DAY;
        let now = Timestamp {
            seconds: start + 200 * DAY,
            nanos: 0,
        };
        let mut places = std::collections::BTreeSet::new();
        for p in 0..40 {
            let events = patient_events(5, p, start, 90, start + 90 * DAY);
            let registration = events
                .iter()
                .find_map(|e| match &e.payload {
                    Some(Payload::PatientRegistered(r)) => Some((e, r)),
                    _ => None,
                })
                .expect("a registration");
            journey_domain::validate(registration.0, now).unwrap();
            let r = registration.1;
            assert_eq!(r.identity_status, v1::IdentityStatus::Validated as i32);
            assert_eq!(r.ins_oid, NIR_DEMO_OID);
            assert_eq!(r.ins.len(), 15, "{}", r.ins);
            assert_eq!(&r.ins[1..3], &r.birth_date[2..4], "the year of birth");
            assert_eq!(&r.ins[3..5], &r.birth_date[5..7], "the month of birth");
            assert_eq!(&r.ins[5..10], r.birth_place_code, "the birth place");
            let digits: u64 = r.ins[..13]
                .replace("2A", "19")
                .replace("2B", "18")
                .parse()
                .unwrap();
            assert_eq!(
                97 - digits % 97,
                r.ins[13..].parse::<u64>().unwrap(),
                "the key"
            );
            assert!(
                r.birth_given_names.split(' ').next() == Some(r.given_name.as_str()),
                "{r:?}"
            );
            places.insert(r.birth_place_code.clone());
        }
        assert!(places.len() > 5, "{places:?}");
    }

    /// One alert per crossing: the telemonitoring alerts of the simulated journeys are exactly
    /// those the alert reactor decides over the same events (the same event ids, so that the log
    /// keeps one when both append), and the simulator raises no other rule-based alert.
    #[test]
    fn telemonitoring_alerts_are_the_reactors() {
        use journey_domain::alert_rules::{alert_event, AlertRules};
        let now = now_secs();
        let (days, start) = (120u32, (now.div_euclid(DAY) - 120) * DAY);
        let (mut simulated, mut decided) = (Vec::new(), Vec::new());
        for p in 0..300 {
            let events = patient_events(3, p, start, days, now);
            let mut rules = AlertRules::default();
            for e in &events {
                if let Some(Payload::AlertRaised(a)) = &e.payload {
                    if !a.rule.is_empty() {
                        simulated.push(e.event_id.clone());
                    }
                    continue; // the reactor's rules do not fold alerts
                }
                for d in rules.apply(e) {
                    decided.push(alert_event(e, &d).event_id);
                }
            }
        }
        assert!(
            simulated.len() > 5,
            "{} telemonitoring alerts",
            simulated.len()
        );
        assert_eq!(simulated, decided);
    }

    /// Every generated event passes field validation and the journey rules, one patient at a time
    /// and all together, across seeds and windows.
    #[test]
    fn generated_journeys_pass_validation_and_rules() {
        let now = now_secs();
        let mut kinds: HashMap<&'static str, usize> = HashMap::new();
        let mut total = 0;
        for (seed, days) in [(1u64, 60u32), (7, 60), (42, 365), (5, 3)] {
            let start = (now.div_euclid(DAY) - days as i64) * DAY;
            let horizon = (start + days as i64 * DAY).min(now);
            let mut rules = journey_domain::JourneyRules::default();
            let mut ids = std::collections::HashSet::new();
            for p in 0..400 {
                let events = patient_events(seed, p, start, days, horizon);
                for e in &events {
                    journey_domain::validate(
                        e,
                        Timestamp {
                            seconds: now,
                            nanos: 0,
                        },
                    )
                    .unwrap_or_else(|err| panic!("seed {seed} patient {p}: {err}: {e:?}"));
                    assert!(ids.insert(e.event_id.clone()), "event id reused");
                    rules
                        .admit(std::slice::from_ref(e))
                        .unwrap_or_else(|(_, r)| {
                            panic!("seed {seed} patient {p}: {}: {e:?}", r.message)
                        });
                    let name = journey_proto::EventType::of(e.payload.as_ref().unwrap()).name();
                    *kinds.entry(name).or_default() += 1;
                    total += 1;
                }
            }
        }
        for k in [
            "PatientRegistered",
            "Admitted",
            "Discharged",
            "Transferred",
            "AdmissionCancelled",
            "DischargeCancelled",
            "EmergencyVisit",
            "DischargeLetterSent",
            "PrescriptionIssued",
            "MedicationReconciled",
            "CarePlanEstablished",
            "ReferentAssigned",
            "AppointmentScheduled",
            "AppointmentCompleted",
            "AppointmentMissed",
            "HomeVisitRecorded",
            "ContactMade",
            "ObservationRecorded",
            "ConditionRecorded",
            "AlertRaised",
            "AlertAcknowledged",
            "AlertResolved",
            "PatientDeceased",
        ] {
            assert!(
                kinds.get(k).copied().unwrap_or(0) > 0,
                "no {k} in {kinds:?}"
            );
        }
        assert!(total > 10_000, "{total}");
    }
}
