//! Reading a Synthea CSV export (Synthea's `output/csv`) into a [`Population`].
//!
//! | file | columns used |
//! |---|---|
//! | `patients.csv` (required) | Id, BIRTHDATE, DEATHDATE, GENDER; FIRST, LAST |
//! | `encounters.csv` | Id, START, STOP, PATIENT, ORGANIZATION, PROVIDER, ENCOUNTERCLASS, CODE, DESCRIPTION; REASONCODE, REASONDESCRIPTION |
//! | `conditions.csv`, `medications.csv` | START, PATIENT, ENCOUNTER, CODE, DESCRIPTION; STOP |
//! | `careplans.csv` (optional) | Id, START, PATIENT, ENCOUNTER, CODE, DESCRIPTION; STOP, REASONDESCRIPTION |
//! | `observations.csv` | DATE, PATIENT, ENCOUNTER, CODE, DESCRIPTION, VALUE, UNITS; TYPE |
//! | `organizations.csv`, `providers.csv` (optional) | Id, NAME; SPECIALITY |
//!
//! Columns are found by name; a missing required column makes its file unusable (reported). A
//! row whose dates do not parse, or whose required fields are empty, is reported and left out.
use crate::{
    csv_table::{get, get_opt, Col, Table},
    parse_time,
    records::{
        Class, ClinicalKind, ClinicalRec, EncounterRec, ObservationRec, PatientRec, Population,
        RXNORM, SNOMED,
    },
    Origin, Problem,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{Code, Role, Sex},
};
use std::path::Path;

const DAY: i64 = 86_400;

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

/// Reads the export folder `dir`.
pub fn read(dir: &Path) -> anyhow::Result<Population> {
    let mut r = Reader {
        dir,
        pop: Population::default(),
    };
    r.directory()?;
    r.patients()?;
    r.encounters()?;
    r.clinical()?;
    r.observations()?;
    Ok(r.pop)
}

struct Reader<'a> {
    dir: &'a Path,
    pop: Population,
}

impl Reader<'_> {
    /// Reads a file ([`Table::read`]: `None` when missing or unusable) and counts its rows;
    /// an `expected` file is reported when missing.
    fn table(
        &mut self,
        file: &'static str,
        required: &[&str],
        expected: bool,
    ) -> anyhow::Result<Option<Table>> {
        let table = Table::read(self.dir, file, required, &mut self.pop.problems)?;
        match &table {
            Some(t) => {
                self.pop.rows.insert(t.file.clone(), t.rows.len() as u64);
            }
            None if expected => self.pop.problems.push(Problem::malformed(
                Origin::line(&file.into(), 0, ""),
                "file missing or unusable",
            )),
            None => {}
        }
        Ok(table)
    }

    fn malformed(&mut self, t: &Table, line: u64, id: &str, reason: impl Into<String>) {
        self.pop
            .problems
            .push(Problem::malformed(Origin::line(&t.file, line, id), reason));
    }

    /// `organizations.csv` and `providers.csv`.
    fn directory(&mut self) -> anyhow::Result<()> {
        if let Some(t) = self.table("organizations.csv", &["Id", "NAME"], false)? {
            let (id, name) = (t.col("Id"), t.col("NAME"));
            for (_, r) in &t.rows {
                self.pop
                    .org_names
                    .insert(get(r, id).to_owned(), get(r, name).to_owned());
            }
        }
        if let Some(t) = self.table("providers.csv", &["Id", "NAME"], false)? {
            let (id, name, spec) = (t.col("Id"), t.col("NAME"), t.opt_col("SPECIALITY"));
            for (_, r) in &t.rows {
                let role = match get_opt(r, spec) {
                    "" => Role::Unspecified,
                    "GENERAL PRACTICE" => Role::Gp,
                    _ => Role::Specialist,
                };
                self.pop
                    .providers
                    .insert(get(r, id).to_owned(), (get(r, name).to_owned(), role));
            }
        }
        Ok(())
    }

    fn patients(&mut self) -> anyhow::Result<()> {
        let Some(t) = self.table(
            "patients.csv",
            &["Id", "BIRTHDATE", "DEATHDATE", "GENDER"],
            false,
        )?
        else {
            anyhow::bail!("{} has no usable patients.csv", self.dir.display());
        };
        let (c_id, c_birth, c_death, c_gender) = (
            t.col("Id"),
            t.col("BIRTHDATE"),
            t.col("DEATHDATE"),
            t.col("GENDER"),
        );
        let (c_first, c_last) = (t.opt_col("FIRST"), t.opt_col("LAST"));
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
                    self.malformed(&t, *line, id, reason);
                    continue;
                }
            };
            let sex = match get(r, c_gender) {
                "M" => Sex::Male,
                "F" => Sex::Female,
                "" => Sex::Unspecified,
                _ => Sex::Other,
            };
            self.pop.patients.push(PatientRec {
                origin: Origin::line(&t.file, *line, id),
                id: id.to_owned(),
                birth,
                birth_date: get(r, c_birth).chars().take(10).collect(),
                death_day: death.map(|d| d.seconds.div_euclid(DAY) * DAY),
                sex,
                family: get_opt(r, c_last).to_owned(),
                given: get_opt(r, c_first).to_owned(),
                birth_place: String::new(),
                birth_given_names: String::new(),
            });
        }
        Ok(())
    }

    fn encounters(&mut self) -> anyhow::Result<()> {
        const COLUMNS: [&str; 9] = [
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
        let Some(t) = self.table("encounters.csv", &COLUMNS, true)? else {
            return Ok(());
        };
        let [c_id, c_start, c_stop, c_patient, c_org, c_provider, c_class, c_code, c_desc] =
            COLUMNS.map(|c| t.col(c));
        let (c_reason, c_reason_desc) = (t.opt_col("REASONCODE"), t.opt_col("REASONDESCRIPTION"));
        for (line, r) in &t.rows {
            let id = get(r, c_id);
            let times = (|| {
                if id.is_empty() {
                    return Err("Id is empty".to_string());
                }
                Ok((
                    time_col(r, c_start, "START")?,
                    opt_time_col(r, c_stop, "STOP")?,
                ))
            })();
            let (start, stop) = match times {
                Ok(t) => t,
                Err(reason) => {
                    self.malformed(&t, *line, id, reason);
                    continue;
                }
            };
            let reason = get_opt(r, c_reason);
            self.pop.encounters.push(EncounterRec {
                origin: Origin::line(&t.file, *line, id),
                id: id.to_owned(),
                start,
                stop,
                patient: get(r, c_patient).to_owned(),
                org: get(r, c_org).to_owned(),
                provider: get(r, c_provider).to_owned(),
                class: Class::of_csv(get(r, c_class)),
                code: get(r, c_code).to_owned(),
                desc: get(r, c_desc).to_owned(),
                reasons: if reason.is_empty() {
                    Vec::new()
                } else {
                    vec![Code {
                        system: SNOMED.into(),
                        code: reason.to_owned(),
                        display: get_opt(r, c_reason_desc).to_owned(),
                    }]
                },
            });
        }
        Ok(())
    }

    /// `conditions.csv`, `medications.csv` and the optional `careplans.csv`.
    fn clinical(&mut self) -> anyhow::Result<()> {
        const COLUMNS: [&str; 5] = ["START", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"];
        for (file, kind) in [
            ("conditions.csv", ClinicalKind::Condition),
            ("medications.csv", ClinicalKind::Medication),
            ("careplans.csv", ClinicalKind::CarePlan),
        ] {
            let mut required = COLUMNS.to_vec();
            if kind == ClinicalKind::CarePlan {
                required.push("Id");
            }
            let Some(t) = self.table(file, &required, kind != ClinicalKind::CarePlan)? else {
                continue;
            };
            let [c_start, c_patient, c_enc, c_code, c_desc] = COLUMNS.map(|c| t.col(c));
            let (c_stop, c_id, c_reason) = (
                t.opt_col("STOP"),
                t.opt_col("Id"),
                t.opt_col("REASONDESCRIPTION"),
            );
            for (line, r) in &t.rows {
                let (pid, code) = (get(r, c_patient), get(r, c_code));
                let row_id = match get_opt(r, c_id) {
                    "" => format!("patient {pid}, code {code}"),
                    id => id.to_owned(),
                };
                let times = (|| {
                    let start = time_col(r, c_start, "START")?;
                    let stop = match c_stop {
                        Some(c) if kind == ClinicalKind::Medication => opt_time_col(r, c, "STOP")?,
                        _ => None,
                    };
                    if pid.is_empty() || code.is_empty() {
                        return Err("PATIENT or CODE is empty".to_string());
                    }
                    Ok((start, stop))
                })();
                let (start, stop) = match times {
                    Ok(t) => t,
                    Err(reason) => {
                        self.malformed(&t, *line, &row_id, reason);
                        continue;
                    }
                };
                self.pop.clinical.push(ClinicalRec {
                    origin: Origin::line(&t.file, *line, row_id),
                    kind,
                    patient: pid.to_owned(),
                    encounter: get(r, c_enc).to_owned(),
                    start,
                    stop,
                    system: match kind {
                        ClinicalKind::Medication => RXNORM,
                        _ => SNOMED,
                    }
                    .to_owned(),
                    code: code.to_owned(),
                    desc: get(r, c_desc).to_owned(),
                    care_plan_id: get_opt(r, c_id).to_owned(),
                    reason: get_opt(r, c_reason).to_owned(),
                });
            }
        }
        Ok(())
    }

    fn observations(&mut self) -> anyhow::Result<()> {
        const COLUMNS: [&str; 7] = [
            "DATE",
            "PATIENT",
            "ENCOUNTER",
            "CODE",
            "DESCRIPTION",
            "VALUE",
            "UNITS",
        ];
        let Some(t) = self.table("observations.csv", &COLUMNS, true)? else {
            return Ok(());
        };
        let [c_date, c_pat, c_enc, c_code, c_desc, c_value, c_units] = COLUMNS.map(|c| t.col(c));
        let c_type = t.opt_col("TYPE");
        for (line, r) in &t.rows {
            let (pid, code) = (get(r, c_pat), get(r, c_code));
            let row_id = format!("patient {pid}, code {code}");
            let at = match time_col(r, c_date, "DATE") {
                Ok(t) => t,
                Err(e) => {
                    self.malformed(&t, *line, &row_id, e);
                    continue;
                }
            };
            if pid.is_empty() || code.is_empty() {
                self.malformed(&t, *line, &row_id, "PATIENT or CODE is empty");
                continue;
            }
            let kind = get_opt(r, c_type);
            let value = match get(r, c_value).parse::<f64>() {
                Ok(v) if v.is_finite() && (kind.is_empty() || kind == "numeric") => Some(v),
                _ => None,
            };
            self.pop.observations.push(ObservationRec {
                origin: Origin::line(&t.file, *line, row_id),
                patient: pid.to_owned(),
                encounter: get(r, c_enc).to_owned(),
                at,
                code: code.to_owned(),
                desc: get(r, c_desc).to_owned(),
                value,
                unit: get(r, c_units).to_owned(),
            });
        }
        Ok(())
    }
}
