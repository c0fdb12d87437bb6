//! A Synthea population as both readers produce it (`synthea_csv.rs`, `fhir_bulk.rs`),
//! before the one mapping of `mapping.rs` turns it into events: the fields the mapping
//! uses, named after Synthea's CSV columns, each record with the place it was read from.
//!
//! The readers check what their form requires (a date is a date, a required field is there) and
//! report the rest as problems; what the mapping decides (references, codes, the clinical rules)
//! is checked once, in the mapping, whichever form the population came in.
use crate::{Origin, Problem};
use journey_proto::{
    prost_types::Timestamp,
    v1::{Code, Role, Sex},
};
use std::{collections::BTreeMap, collections::HashMap, sync::Arc};

/// The code system names the events carry.
pub const SNOMED: &str = "SNOMED-CT";
pub const RXNORM: &str = "RXNORM";
pub const LOINC: &str = "LOINC";
pub const ICD10: &str = "ICD-10";

/// One person (`patients.csv`, FHIR `Patient`).
#[derive(Debug, Clone)]
pub struct PatientRec {
    pub origin: Origin,
    pub id: String,
    pub birth: Timestamp,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The first second (UTC) of the day of death: Synthea's CSV gives the day only, so a FHIR
    /// `deceasedDateTime` is reduced to its UTC day too (one rule for both forms).
    pub death_day: Option<i64>,
    pub sex: Sex,
    pub family: String,
    pub given: String,
    /// The INSEE code of the birth place (FHIR: FR Core's `birthPlace` extension), else empty.
    pub birth_place: String,
    /// The list of birth given names (FHIR: FR Core's `birth-list-given-name` on the official
    /// name), else empty.
    pub birth_given_names: String,
}

/// Synthea's encounter classes (`ENCOUNTERCLASS`; FHIR `Encounter.class` and, where FHIR
/// merges classes, the encounter type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    Inpatient,
    Emergency,
    UrgentCare,
    /// `home`, `hospice` (FHIR `HH`).
    Home,
    Virtual,
    /// A skilled nursing facility stay: not an acute inpatient stay (FHIR: `IMP` with the SNF
    /// admission type).
    Snf,
    /// `ambulatory`, `outpatient`, `wellness` and anything else (FHIR `AMB` and others).
    Ambulatory,
}

impl Class {
    /// An `ENCOUNTERCLASS` value.
    pub fn of_csv(class: &str) -> Class {
        match class.to_ascii_lowercase().as_str() {
            "inpatient" => Class::Inpatient,
            "emergency" => Class::Emergency,
            "urgentcare" => Class::UrgentCare,
            "home" | "hospice" => Class::Home,
            "virtual" => Class::Virtual,
            "snf" => Class::Snf,
            _ => Class::Ambulatory,
        }
    }

    pub fn is_ed(self) -> bool {
        matches!(self, Class::Emergency | Class::UrgentCare)
    }
}

/// One encounter (`encounters.csv`, FHIR `Encounter`).
#[derive(Debug, Clone)]
pub struct EncounterRec {
    pub origin: Origin,
    pub id: String,
    pub start: Timestamp,
    pub stop: Option<Timestamp>,
    pub patient: String,
    /// The organisation (facility) id.
    pub org: String,
    /// The professional's id.
    pub provider: String,
    pub class: Class,
    /// The encounter type (SNOMED CT) and its description.
    pub code: String,
    pub desc: String,
    /// The reasons for the encounter, as read (checked by the mapping).
    pub reasons: Vec<Code>,
}

impl EncounterRec {
    pub fn end(&self) -> i64 {
        self.stop.map_or(self.start.seconds, |s| s.seconds)
    }
}

/// What a clinical record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClinicalKind {
    Condition,
    Medication,
    CarePlan,
}

/// A condition, a medication or a care plan (`conditions.csv`, `medications.csv`,
/// `careplans.csv`; FHIR `Condition`, `MedicationRequest`, `CarePlan`).
#[derive(Debug, Clone)]
pub struct ClinicalRec {
    pub origin: Origin,
    pub kind: ClinicalKind,
    pub patient: String,
    /// The encounter it was recorded in ("" when none).
    pub encounter: String,
    pub start: Timestamp,
    pub stop: Option<Timestamp>,
    /// The code's system ([`SNOMED`] for conditions and care plans from CSV, [`RXNORM`] for
    /// medications) and the code as read.
    pub system: String,
    pub code: String,
    pub desc: String,
    /// A care plan's id.
    pub care_plan_id: String,
    /// A care plan's reason (the condition it addresses), in words.
    pub reason: String,
}

/// An observation (`observations.csv`, FHIR `Observation`).
#[derive(Debug, Clone)]
pub struct ObservationRec {
    pub origin: Origin,
    pub patient: String,
    pub encounter: String,
    pub at: Timestamp,
    /// LOINC, as read.
    pub code: String,
    pub desc: String,
    /// `None` for a non-numeric observation (counted, not imported).
    pub value: Option<f64>,
    pub unit: String,
}

/// A whole population, with what its reader counted and found wrong.
#[derive(Debug, Default)]
pub struct Population {
    /// Records read per file, for the report.
    pub rows: BTreeMap<Arc<str>, u64>,
    pub problems: Vec<Problem>,
    /// What was read but is not imported, counted by what it is (resource types the mapping
    /// does not use, non-numeric observations).
    pub skipped: BTreeMap<String, u64>,
    /// Facility names by organisation id.
    pub org_names: HashMap<String, String>,
    /// Professionals by id: name and role.
    pub providers: HashMap<String, (String, Role)>,
    pub patients: Vec<PatientRec>,
    pub encounters: Vec<EncounterRec>,
    pub clinical: Vec<ClinicalRec>,
    pub observations: Vec<ObservationRec>,
}

impl Population {
    pub fn skip(&mut self, what: impl Into<String>) {
        *self.skipped.entry(what.into()).or_default() += 1;
    }
}

/// Why `code` is not a well-formed code of `system` (`None` when it is). A number in scientific
/// notation (`4.4054E+14`: a code that went through a spreadsheet, its digits lost) is never a
/// code; SNOMED CT identifiers are 6 to 18 digits without a leading zero, RxNorm codes digits.
/// Other systems' codes are taken as they are (Synthea's observations include its own codes,
/// `QALY`, `DALY`, beside LOINC).
pub fn malformed_code(system: &str, code: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let scientific = code.split_once(['e', 'E']).is_some_and(|(m, e)| {
        let m = m.replacen('.', "", 1);
        digits(&m) && digits(e.trim_start_matches(['+', '-']))
    });
    if scientific {
        return Some(format!(
            "{code:?} is a number in scientific notation, not a {system} code (its digits were lost, e.g. by a spreadsheet)"
        ));
    }
    let ok = match system {
        SNOMED => (6..=18).contains(&code.len()) && digits(code) && !code.starts_with('0'),
        RXNORM => code.len() <= 10 && digits(code),
        _ => !code.is_empty(),
    };
    (!ok).then(|| format!("{code:?} is not a {system} code"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_checked_by_their_form() {
        assert_eq!(malformed_code(SNOMED, "44054006"), None);
        for bad in ["4.4054E+14", "", "12345", "0123456", "4405400a"] {
            assert!(malformed_code(SNOMED, bad).is_some(), "{bad}");
        }
        assert_eq!(malformed_code(RXNORM, "314076"), None);
        assert!(malformed_code(RXNORM, "3.1E+5").is_some());
        assert_eq!(malformed_code(LOINC, "29463-7"), None);
        assert_eq!(malformed_code(LOINC, "QALY"), None);
        assert!(malformed_code(LOINC, "2.9463E+4").is_some());
        assert!(malformed_code(SNOMED, "4.4054E+14")
            .unwrap()
            .contains("scientific notation"));
        assert_eq!(malformed_code("ICD-10", "I50.9"), None);
    }
}
