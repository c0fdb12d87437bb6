//! Follow-up templates per care pathway (pure): which pathway a stay follows (its admission
//! diagnoses), and the steps its template asks after discharge, each a visit or contact by one of
//! some professional roles within a deadline. A step is done by the first contact
//! (`HomeVisitRecorded`, `ContactMade`) with a professional of one of its roles at or after the
//! discharge, or by an appointment with one, completed, due at or after the discharge (done at its
//! due time). Every discharge keeps the base rules of `followup.rs` (letter the same day, first
//! home contact within two working days, reconciliation within seven days); a template adds its
//! steps.
//!
//! Built in (docs/design.md §5): heart failure as in the national PRADO programme (home nurse and
//! GP by day 7, cardiologist within two months), COPD likewise (GP and physiotherapist by day 7,
//! pulmonologist within two months), no extra step otherwise. A JSON file replaces them
//! ([`Pathways::from_json`]; `JOURNEY_PATHWAYS` names it, [`active`]).
use super::{
    calendar::{paris_date, paris_midnight, working_days_deadline},
    followup::Timeliness,
};
use chrono::{Days, Months};
use journey_proto::v1::Role;
use serde::Deserialize;
use std::sync::OnceLock;

/// A label in both languages of the pages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub fr: String,
    pub en: String,
}

/// How long after the discharge a step is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Within {
    /// By the end of the `n`-th calendar day after the discharge day (Paris): "by day 7".
    Days(u32),
    /// By the end of the `n`-th working day after it (`calendar.rs`).
    WorkingDays(u32),
    /// By the end of the same day `n` months later.
    Months(u32),
}

impl Within {
    /// The deadline (exclusive, UTC seconds) for a discharge at `discharged_at`.
    pub fn deadline(self, discharged_at: i64) -> i64 {
        let day = paris_date(discharged_at);
        let last = match self {
            Within::Days(n) => day + Days::new(u64::from(n)),
            Within::WorkingDays(n) => return working_days_deadline(discharged_at, n),
            Within::Months(n) => day
                .checked_add_months(Months::new(n))
                .unwrap_or(chrono::NaiveDate::MAX),
        };
        paris_midnight(last + Days::new(1))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// A stable code (`gp`, `home_nurse`, …).
    pub name: String,
    pub label: Label,
    /// Who may do it (`Role` values).
    pub roles: Vec<i32>,
    pub within: Within,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pathway {
    pub name: String,
    pub label: Label,
    /// Diagnosis codes (ICD-10 by prefix, dots ignored; all-digit codes such as SNOMED CT whole).
    pub codes: Vec<String>,
    pub steps: Vec<Step>,
}

/// The templates: pathways tried in order, then the default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pathways {
    pub pathways: Vec<Pathway>,
    pub default: Pathway,
}

/// A code as compared: upper case, without dots or spaces.
fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '.' | ' '))
        .flat_map(char::to_uppercase)
        .collect()
}

fn matches(template: &str, diagnosis: &str) -> bool {
    let (t, d) = (normalise(template), normalise(diagnosis));
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t == d
    } else {
        !t.is_empty() && d.starts_with(&t)
    }
}

impl Pathways {
    /// The pathway of a stay with these diagnosis codes: the first whose codes match one.
    pub fn of<'a>(&self, diagnoses: impl IntoIterator<Item = &'a str> + Clone) -> &Pathway {
        self.pathways
            .iter()
            .find(|p| {
                diagnoses
                    .clone()
                    .into_iter()
                    .any(|d| p.codes.iter().any(|c| matches(c, d)))
            })
            .unwrap_or(&self.default)
    }

    /// The pathway named `name` (the default's name included).
    pub fn named(&self, name: &str) -> Option<&Pathway> {
        self.pathways
            .iter()
            .chain(std::iter::once(&self.default))
            .find(|p| p.name == name)
    }

    pub fn builtin() -> Pathways {
        let label = |fr: &str, en: &str| Label {
            fr: fr.into(),
            en: en.into(),
        };
        let step = |name: &str, l: Label, roles: &[Role], within| Step {
            name: name.into(),
            label: l,
            roles: roles.iter().map(|r| *r as i32).collect(),
            within,
        };
        Pathways {
            pathways: vec![
                Pathway {
                    name: "heart_failure".into(),
                    label: label("Insuffisance cardiaque (PRADO)", "Heart failure (PRADO)"),
                    codes: ["I50", "I11.0", "I13.0", "I13.2", "84114007", "42343007"]
                        .map(String::from)
                        .to_vec(),
                    steps: vec![
                        step(
                            "home_nurse",
                            label("Infirmier à domicile", "Home nurse"),
                            &[Role::HomeNurse],
                            Within::Days(7),
                        ),
                        step(
                            "gp",
                            label("Médecin traitant", "GP"),
                            &[Role::Gp],
                            Within::Days(7),
                        ),
                        step(
                            "cardiologist",
                            label("Cardiologue", "Cardiologist"),
                            &[Role::Specialist],
                            Within::Months(2),
                        ),
                    ],
                },
                Pathway {
                    name: "copd".into(),
                    label: label("BPCO (PRADO)", "COPD (PRADO)"),
                    codes: ["J44", "13645005"].map(String::from).to_vec(),
                    steps: vec![
                        step(
                            "gp",
                            label("Médecin traitant", "GP"),
                            &[Role::Gp],
                            Within::Days(7),
                        ),
                        step(
                            "physiotherapist",
                            label("Kinésithérapeute", "Physiotherapist"),
                            &[Role::Physiotherapist],
                            Within::Days(7),
                        ),
                        step(
                            "pulmonologist",
                            label("Pneumologue", "Pulmonologist"),
                            &[Role::Specialist],
                            Within::Months(2),
                        ),
                    ],
                },
            ],
            default: Pathway {
                name: "default".into(),
                label: label("Suivi habituel", "Usual follow-up"),
                codes: Vec::new(),
                steps: Vec::new(),
            },
        }
    }

    /// Templates from a JSON file's text (its shape in docs/design.md §5); they replace the built-in
    /// ones. Refused: unknown fields, an unknown role, a step without a role or with not exactly one
    /// deadline, a pathway without codes, two pathways or two steps of one pathway of one name.
    pub fn from_json(text: &str) -> Result<Pathways, String> {
        let file: FilePathways =
            serde_json::from_str(text).map_err(|e| format!("not a pathways file: {e}"))?;
        let mut pathways = Vec::new();
        for p in file.pathways {
            if p.codes.iter().all(|c| normalise(c).is_empty()) {
                return Err(format!("pathway {:?}: no diagnosis code", p.name));
            }
            pathways.push(p.checked()?);
        }
        let default = match file.default {
            Some(d) if !d.codes.is_empty() => {
                return Err("the default pathway takes no codes".into());
            }
            Some(d) => d.checked()?,
            None => Pathways::builtin().default,
        };
        for (i, p) in pathways.iter().enumerate() {
            if pathways[..i].iter().any(|q| q.name == p.name) || p.name == default.name {
                return Err(format!("two pathways named {:?}", p.name));
            }
        }
        Ok(Pathways { pathways, default })
    }

    /// A fingerprint of the templates (FNV-1a of their description): the coordination view's
    /// stored standing depends on them, so other templates make its version another.
    pub fn fingerprint(&self) -> u32 {
        format!("{self:?}").bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePathways {
    pathways: Vec<FilePathway>,
    default: Option<FilePathway>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePathway {
    name: String,
    label: Label,
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    steps: Vec<FileStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStep {
    name: String,
    label: Label,
    roles: Vec<String>,
    within_days: Option<u32>,
    within_working_days: Option<u32>,
    within_months: Option<u32>,
}

impl FilePathway {
    fn checked(self) -> Result<Pathway, String> {
        if self.name.is_empty() {
            return Err("a pathway without a name".into());
        }
        let mut steps: Vec<Step> = Vec::new();
        for s in self.steps {
            let at = |what: &str| format!("pathway {:?}, step {:?}: {what}", self.name, s.name);
            if s.name.is_empty() || steps.iter().any(|t| t.name == s.name) {
                return Err(at("a step needs a name of its own"));
            }
            let within = match (s.within_days, s.within_working_days, s.within_months) {
                (Some(n), None, None) => Within::Days(n),
                (None, Some(n), None) => Within::WorkingDays(n),
                (None, None, Some(n)) => Within::Months(n),
                _ => {
                    return Err(at(
                        "exactly one of within_days, within_working_days, within_months",
                    ))
                }
            };
            if s.roles.is_empty() {
                return Err(at("no role"));
            }
            let mut roles = Vec::new();
            for r in &s.roles {
                let role = Role::from_str_name(&format!("ROLE_{}", r.to_uppercase()))
                    .filter(|r| *r != Role::Unspecified)
                    .ok_or_else(|| at(&format!("unknown role {r:?}")))?;
                roles.push(role as i32);
            }
            steps.push(Step {
                name: s.name,
                label: s.label,
                roles,
                within,
            });
        }
        Ok(Pathway {
            name: self.name,
            label: self.label,
            codes: self.codes,
            steps,
        })
    }
}

static ACTIVE: OnceLock<Result<Pathways, String>> = OnceLock::new();

/// The environment variable naming the templates' JSON file (unset: the built-in ones).
pub const ENV: &str = "JOURNEY_PATHWAYS";

/// Reads the templates of the file `path`.
pub fn load(path: &str) -> Result<Pathways, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{ENV} {path}: {e}"))?;
    Pathways::from_json(&text).map_err(|e| format!("{ENV} {path}: {e}"))
}

/// Sets the templates of this process (before the first [`active`]; a flag's hook). False if they
/// were set already.
pub fn configure(p: Pathways) -> bool {
    ACTIVE.set(Ok(p)).is_ok()
}

/// The templates of this process: those [`configure`] set, else the file `JOURNEY_PATHWAYS` names
/// (read once), else the built-in ones; the reason when that file cannot be used.
pub fn active() -> Result<&'static Pathways, &'static str> {
    ACTIVE
        .get_or_init(|| match std::env::var(ENV) {
            Ok(path) if !path.is_empty() => load(&path),
            _ => Ok(Pathways::builtin()),
        })
        .as_ref()
        .map_err(String::as_str)
}

/// What a stay's care says about its pathway's steps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Care {
    /// Contacts and visits: (time, role of the professional).
    pub contacts: Vec<(i64, i32)>,
    /// Appointments completed: (due time, role of the professional).
    pub appointments_completed: Vec<(i64, i32)>,
}

/// A step of a discharge's pathway at a given time.
#[derive(Debug, Clone, PartialEq)]
pub struct StepState<'p> {
    pub step: &'p Step,
    pub due_at: i64,
    pub done_at: Option<i64>,
    pub timeliness: Timeliness,
}

/// The steps of `pathway` for a discharge at `discharged_at`, at `now`.
pub fn steps<'p>(
    pathway: &'p Pathway,
    discharged_at: i64,
    care: &Care,
    now: i64,
) -> Vec<StepState<'p>> {
    pathway
        .steps
        .iter()
        .map(|step| {
            let due_at = step.within.deadline(discharged_at);
            let done_at = care
                .contacts
                .iter()
                .chain(&care.appointments_completed)
                .filter(|(at, role)| *at >= discharged_at && step.roles.contains(role))
                .map(|(at, _)| *at)
                .min();
            StepState {
                step,
                due_at,
                done_at,
                timeliness: Timeliness::of(done_at, due_at, now),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }
    /// Discharged Tuesday 24 Nov 2026 at 11:00 Paris.
    fn discharged() -> i64 {
        utc("2026-11-24T10:00:00Z")
    }
    fn heart_failure() -> Pathway {
        Pathways::builtin().pathways[0].clone()
    }
    fn state<'p>(s: &'p [StepState<'p>], name: &str) -> &'p StepState<'p> {
        s.iter().find(|s| s.step.name == name).unwrap()
    }

    #[test]
    fn given_heart_failure_diagnoses_when_chosen_then_the_heart_failure_pathway() {
        let p = Pathways::builtin();
        for code in ["I50.9", "I509", "i50.1", "I11.0", "I13.2", "84114007"] {
            assert_eq!(p.of([code]).name, "heart_failure", "{code}");
        }
        assert_eq!(p.of(["E11.9", "I50.0"]).name, "heart_failure");
        assert_eq!(p.of(["J44.1"]).name, "copd");
        // Near misses: another hypertensive disease, a longer SNOMED code, none.
        for codes in [vec!["I11.9"], vec!["841140071"], vec!["S72.0"], vec![]] {
            assert_eq!(p.of(codes.iter().copied()).name, "default", "{codes:?}");
        }
    }

    #[test]
    fn given_a_heart_failure_discharge_when_nothing_is_done_then_nurse_and_gp_by_day_7_cardiologist_within_two_months(
    ) {
        let hf = heart_failure();
        let s = steps(&hf, discharged(), &Care::default(), discharged());
        let names: Vec<&str> = s.iter().map(|s| s.step.name.as_str()).collect();
        assert_eq!(names, ["home_nurse", "gp", "cardiologist"]);
        // Day 7 = Tuesday 1 December, due by its end in Paris.
        assert_eq!(state(&s, "home_nurse").due_at, utc("2026-12-01T23:00:00Z"));
        assert_eq!(state(&s, "gp").due_at, utc("2026-12-01T23:00:00Z"));
        // Two months: 24 January 2027, by its end.
        assert_eq!(
            state(&s, "cardiologist").due_at,
            utc("2027-01-24T23:00:00Z")
        );
        assert!(s.iter().all(|s| s.timeliness == Timeliness::Pending));
    }

    #[test]
    fn given_no_visit_when_day_7_is_over_then_nurse_and_gp_overdue_cardiologist_pending() {
        let hf = heart_failure();
        let s = steps(
            &hf,
            discharged(),
            &Care::default(),
            utc("2026-12-01T23:00:00Z"),
        );
        assert_eq!(state(&s, "home_nurse").timeliness, Timeliness::Overdue);
        assert_eq!(state(&s, "gp").timeliness, Timeliness::Overdue);
        assert_eq!(state(&s, "cardiologist").timeliness, Timeliness::Pending);
        // One second earlier, still pending.
        let s = steps(
            &hf,
            discharged(),
            &Care::default(),
            utc("2026-12-01T22:59:59Z"),
        );
        assert_eq!(state(&s, "gp").timeliness, Timeliness::Pending);
    }

    #[test]
    fn given_visits_by_role_when_steps_derived_then_each_done_by_its_own_role_only() {
        let hf = heart_failure();
        let care = Care {
            contacts: vec![
                // Before the discharge: does not count.
                (utc("2026-11-23T10:00:00Z"), Role::Gp as i32),
                // The home nurse on day 2.
                (utc("2026-11-26T09:00:00Z"), Role::HomeNurse as i32),
                // A pharmacist: no step of this pathway.
                (utc("2026-11-25T09:00:00Z"), Role::Pharmacist as i32),
            ],
            // The GP seen at an appointment on day 9: late.
            appointments_completed: vec![(utc("2026-12-03T09:00:00Z"), Role::Gp as i32)],
        };
        let s = steps(&hf, discharged(), &care, utc("2026-12-10T09:00:00Z"));
        assert_eq!(state(&s, "home_nurse").timeliness, Timeliness::OnTime);
        assert_eq!(
            state(&s, "home_nurse").done_at,
            Some(utc("2026-11-26T09:00:00Z"))
        );
        assert_eq!(state(&s, "gp").timeliness, Timeliness::Late);
        assert_eq!(state(&s, "cardiologist").timeliness, Timeliness::Pending);
    }

    #[test]
    fn given_a_cardiologist_after_two_months_when_derived_then_late() {
        let hf = heart_failure();
        let care = Care {
            contacts: vec![(utc("2027-01-25T09:00:00Z"), Role::Specialist as i32)],
            ..Default::default()
        };
        let s = steps(&hf, discharged(), &care, utc("2027-02-01T09:00:00Z"));
        assert_eq!(state(&s, "cardiologist").timeliness, Timeliness::Late);
    }

    #[test]
    fn given_the_copd_pathway_when_derived_then_gp_and_physiotherapist_by_day_7() {
        let copd = Pathways::builtin().pathways[1].clone();
        let care = Care {
            contacts: vec![(utc("2026-11-27T09:00:00Z"), Role::Physiotherapist as i32)],
            ..Default::default()
        };
        let s = steps(&copd, discharged(), &care, utc("2026-12-02T09:00:00Z"));
        assert_eq!(state(&s, "physiotherapist").timeliness, Timeliness::OnTime);
        assert_eq!(state(&s, "gp").timeliness, Timeliness::Overdue);
        assert_eq!(state(&s, "pulmonologist").timeliness, Timeliness::Pending);
    }

    #[test]
    fn given_the_default_pathway_when_derived_then_no_extra_step() {
        let p = Pathways::builtin();
        assert!(steps(&p.default, discharged(), &Care::default(), discharged()).is_empty());
    }

    #[test]
    fn deadlines_in_days_working_days_and_months() {
        // Discharged Friday 27 Nov 2026 16:00 Paris.
        let friday = utc("2026-11-27T15:00:00Z");
        assert_eq!(
            Within::Days(0).deadline(friday),
            utc("2026-11-27T23:00:00Z")
        );
        assert_eq!(
            Within::Days(3).deadline(friday),
            utc("2026-11-30T23:00:00Z")
        );
        assert_eq!(
            Within::WorkingDays(2).deadline(friday),
            utc("2026-12-01T23:00:00Z")
        );
        // 31 January + 1 month: the last day of February.
        let jan31 = utc("2027-01-31T10:00:00Z");
        assert_eq!(
            Within::Months(1).deadline(jan31),
            utc("2027-02-28T23:00:00Z")
        );
        // Across the change to summer time: 1 March + 1 month ends at 22:00 UTC.
        assert_eq!(
            Within::Months(1).deadline(utc("2027-03-01T10:00:00Z")),
            utc("2027-04-01T22:00:00Z")
        );
    }

    const FILE: &str = r#"{
      "pathways": [{
        "name": "heart_failure", "label": {"fr": "Insuffisance cardiaque", "en": "Heart failure"},
        "codes": ["I50"],
        "steps": [
          {"name": "home_nurse", "label": {"fr": "Infirmier", "en": "Nurse"}, "roles": ["home_nurse"], "within_days": 2},
          {"name": "cardiologist", "label": {"fr": "Cardiologue", "en": "Cardiologist"}, "roles": ["specialist", "hospital_physician"], "within_working_days": 10}
        ]
      }],
      "default": {"name": "usual", "label": {"fr": "Habituel", "en": "Usual"},
        "steps": [{"name": "gp", "label": {"fr": "Médecin", "en": "GP"}, "roles": ["gp"], "within_months": 1}]}
    }"#;

    #[test]
    fn given_a_file_when_read_then_its_templates_replace_the_built_in_ones() {
        let p = Pathways::from_json(FILE).unwrap();
        let hf = p.of(["I50.9"]);
        assert_eq!(hf.steps.len(), 2);
        assert_eq!(hf.steps[0].within, Within::Days(2));
        assert_eq!(
            hf.steps[1].roles,
            [Role::Specialist as i32, Role::HospitalPhysician as i32]
        );
        assert_eq!(hf.steps[1].within, Within::WorkingDays(10));
        // No COPD template in the file: the default, with its own step.
        let other = p.of(["J44.1"]);
        assert_eq!(other.name, "usual");
        assert_eq!(other.steps[0].within, Within::Months(1));
        assert!(p.named("copd").is_none());
    }

    #[test]
    fn other_templates_another_fingerprint() {
        let builtin = Pathways::builtin().fingerprint();
        assert_eq!(builtin, Pathways::builtin().fingerprint());
        assert_ne!(builtin, Pathways::from_json(FILE).unwrap().fingerprint());
        let later = FILE.replace("\"within_days\": 2", "\"within_days\": 3");
        assert_ne!(
            Pathways::from_json(FILE).unwrap().fingerprint(),
            Pathways::from_json(&later).unwrap().fingerprint()
        );
    }

    #[test]
    fn given_a_bad_file_when_read_then_refused_with_the_reason() {
        let bad = |from: &str, to: &str| {
            assert!(FILE.contains(from), "{from}");
            Pathways::from_json(&FILE.replacen(from, to, 1)).unwrap_err()
        };
        assert!(bad("\"home_nurse\"]", "\"surgeon\"]").contains("unknown role \"surgeon\""));
        assert!(bad(
            "\"within_days\": 2",
            "\"within_days\": 2, \"within_months\": 1"
        )
        .contains("exactly one of"));
        assert!(bad("\"roles\": [\"home_nurse\"]", "\"roles\": []").contains("no role"));
        assert!(bad("\"codes\": [\"I50\"]", "\"codes\": []").contains("no diagnosis code"));
        assert!(bad(
            "\"codes\": [\"I50\"],",
            "\"codes\": [\"I50\"], \"colour\": 1,"
        )
        .contains("unknown field"));
        assert!(
            bad("\"name\": \"cardiologist\"", "\"name\": \"home_nurse\"")
                .contains("a name of its own")
        );
        assert!(bad("\"name\": \"usual\"", "\"name\": \"heart_failure\"").contains("two pathways"));
        assert!(Pathways::from_json("[]")
            .unwrap_err()
            .contains("not a pathways file"));
    }
}
