//! The readmission projection's tables and fold. Facts (encounters as they stand, ED visits,
//! diagnoses, deaths) are kept per event; then each patient the batch touched has its index stays
//! recomputed from its facts by [`model::index_stays`].
use super::model::{self, Diagnosis, EdVisit, Encounter};
use crate::runtime::Projection;
use journey_proto::v1::{event::Payload, Event};
use sqlx::{AnyConnection, Row};
use std::collections::BTreeSet;

pub struct Readmission;

const TABLES: &[&str] = &[
    "encounters",
    "transfers",
    "ed_visits",
    "diagnoses",
    "deaths",
    "index_stays",
];

fn secs(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds)
}

impl Projection for Readmission {
    fn name(&self) -> &'static str {
        "readmission"
    }

    fn schema_version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn ddl(&self, p: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE {p}encounters (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, facility_id TEXT NOT NULL,
                 territory TEXT NOT NULL, unit TEXT NOT NULL, setting BIGINT NOT NULL, admit_type BIGINT NOT NULL,
                 admitted_at BIGINT NOT NULL, discharged_at BIGINT, disposition BIGINT NOT NULL, dx_system TEXT, dx_code TEXT,
                 admit_event_id TEXT NOT NULL, discharge_event_id TEXT, PRIMARY KEY (patient_id, encounter_id))"
            ),
            format!("CREATE TABLE {p}transfers (event_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, from_unit TEXT NOT NULL)"),
            format!("CREATE TABLE {p}ed_visits (event_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, facility_id TEXT NOT NULL, at BIGINT NOT NULL, outcome BIGINT NOT NULL)"),
            format!("CREATE INDEX {p}ed_visits_patient ON {p}ed_visits (patient_id)"),
            format!(
                "CREATE TABLE {p}diagnoses (event_id TEXT NOT NULL, idx BIGINT NOT NULL, patient_id TEXT NOT NULL, code_system TEXT NOT NULL,
                 code TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (event_id, idx))"
            ),
            format!("CREATE INDEX {p}diagnoses_patient ON {p}diagnoses (patient_id)"),
            format!("CREATE TABLE {p}deaths (patient_id TEXT PRIMARY KEY, died_at BIGINT NOT NULL, event_id TEXT NOT NULL)"),
            format!(
                "CREATE TABLE {p}index_stays (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, first_encounter_id TEXT NOT NULL,
                 facility_id TEXT NOT NULL, territory TEXT NOT NULL, unit TEXT NOT NULL, disposition BIGINT NOT NULL,
                 admit_day BIGINT NOT NULL, discharge_day BIGINT NOT NULL, discharge_month TEXT NOT NULL, discharged_at BIGINT NOT NULL,
                 length_of_stay BIGINT NOT NULL, emergency BIGINT NOT NULL, charlson BIGINT NOT NULL, ed_visits_182 BIGINT NOT NULL,
                 lace BIGINT NOT NULL, diagnosis_chapter TEXT NOT NULL, readmitted BIGINT NOT NULL, readmit_encounter_id TEXT,
                 readmit_day BIGINT, days_to_readmission BIGINT, unplanned BIGINT NOT NULL, ed_revisit BIGINT NOT NULL,
                 PRIMARY KEY (patient_id, encounter_id))"
            ),
            format!("CREATE INDEX {p}index_stays_discharge ON {p}index_stays (discharge_day)"),
        ]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        p: &str,
        events: &[Event],
    ) -> anyhow::Result<()> {
        let mut touched = BTreeSet::new();
        for e in events {
            if apply_fact(conn, p, e).await? {
                touched.insert(e.patient_id.as_str());
            }
        }
        for patient in touched {
            recompute(conn, p, patient).await?;
        }
        Ok(())
    }
}

/// Records what one event changes in the facts; returns whether the patient's stays may change.
async fn apply_fact(conn: &mut AnyConnection, p: &str, e: &Event) -> anyhow::Result<bool> {
    let Some(payload) = &e.payload else {
        return Ok(false);
    };
    let at = secs(e.occurred_at.as_ref());
    let pid = e.patient_id.as_str();
    match payload {
        Payload::Admitted(a) => {
            let facility = a.facility.clone().unwrap_or_default();
            let dx = a.diagnoses.first();
            sqlx::query(&format!(
                "INSERT INTO {p}encounters (patient_id, encounter_id, facility_id, territory, unit, setting, admit_type, admitted_at,
                 discharged_at, disposition, dx_system, dx_code, admit_event_id, discharge_event_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, 0, $9, $10, $11, NULL)
                 ON CONFLICT (patient_id, encounter_id) DO NOTHING"
            ))
            .bind(pid)
            .bind(&a.encounter_id)
            .bind(&facility.id)
            .bind(&facility.territory)
            .bind(&a.unit)
            .bind(a.setting as i64)
            .bind(a.admit_type as i64)
            .bind(at)
            .bind(dx.map(|d| d.system.clone()))
            .bind(dx.map(|d| d.code.clone()))
            .bind(&e.event_id)
            .execute(&mut *conn)
            .await?;
            diagnoses(
                conn,
                p,
                e,
                a.diagnoses.iter().map(|d| (&d.system, &d.code)),
                at,
            )
            .await?;
        }
        Payload::Transferred(t) => {
            let from: Option<String> = sqlx::query(&format!(
                "SELECT unit FROM {p}encounters WHERE patient_id = $1 AND encounter_id = $2"
            ))
            .bind(pid)
            .bind(&t.encounter_id)
            .fetch_optional(&mut *conn)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
            sqlx::query(&format!(
                "INSERT INTO {p}transfers (event_id, patient_id, encounter_id, from_unit) VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING"
            ))
            .bind(&e.event_id)
            .bind(pid)
            .bind(&t.encounter_id)
            .bind(from.unwrap_or_default())
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "UPDATE {p}encounters SET unit = $1 WHERE patient_id = $2 AND encounter_id = $3"
            ))
            .bind(&t.to_unit)
            .bind(pid)
            .bind(&t.encounter_id)
            .execute(&mut *conn)
            .await?;
        }
        Payload::Discharged(d) => {
            sqlx::query(&format!(
                "UPDATE {p}encounters SET discharged_at = $1, disposition = $2, discharge_event_id = $3 WHERE patient_id = $4 AND encounter_id = $5"
            ))
            .bind(at)
            .bind(d.disposition as i64)
            .bind(&e.event_id)
            .bind(pid)
            .bind(&d.encounter_id)
            .execute(&mut *conn)
            .await?;
            diagnoses(
                conn,
                p,
                e,
                d.diagnoses.iter().map(|d| (&d.system, &d.code)),
                at,
            )
            .await?;
            if d.disposition == model::DISP_DECEASED {
                death(conn, p, pid, at, &e.event_id).await?;
            }
        }
        Payload::AdmissionCancelled(c) => {
            sqlx::query(&format!(
                "DELETE FROM {p}encounters WHERE patient_id = $1 AND admit_event_id = $2"
            ))
            .bind(pid)
            .bind(&c.cancelled_event_id)
            .execute(&mut *conn)
            .await?;
        }
        Payload::DischargeCancelled(c) => {
            sqlx::query(&format!(
                "UPDATE {p}encounters SET discharged_at = NULL, disposition = 0, discharge_event_id = NULL WHERE patient_id = $1 AND discharge_event_id = $2"
            ))
            .bind(pid)
            .bind(&c.cancelled_event_id)
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!(
                "DELETE FROM {p}deaths WHERE patient_id = $1 AND event_id = $2"
            ))
            .bind(pid)
            .bind(&c.cancelled_event_id)
            .execute(&mut *conn)
            .await?;
        }
        Payload::TransferCancelled(c) => {
            let row = sqlx::query(&format!(
                "SELECT encounter_id, from_unit FROM {p}transfers WHERE event_id = $1"
            ))
            .bind(&c.cancelled_event_id)
            .fetch_optional(&mut *conn)
            .await?;
            if let Some(r) = row {
                let (enc, unit): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                sqlx::query(&format!("UPDATE {p}encounters SET unit = $1 WHERE patient_id = $2 AND encounter_id = $3"))
                    .bind(unit)
                    .bind(pid)
                    .bind(enc)
                    .execute(&mut *conn)
                    .await?;
            }
            return Ok(false);
        }
        Payload::EmergencyVisit(v) => {
            sqlx::query(&format!(
                "INSERT INTO {p}ed_visits (event_id, patient_id, facility_id, at, outcome) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING"
            ))
            .bind(&e.event_id)
            .bind(pid)
            .bind(v.facility.as_ref().map(|f| f.id.clone()).unwrap_or_default())
            .bind(at)
            .bind(v.outcome as i64)
            .execute(&mut *conn)
            .await?;
        }
        Payload::ConditionRecorded(c) => {
            let Some(code) = &c.diagnosis else {
                return Ok(false);
            };
            diagnoses(conn, p, e, std::iter::once((&code.system, &code.code)), at).await?;
        }
        Payload::PatientDeceased(d) => {
            let died = d.died_at.as_ref().map_or(at, |t| t.seconds);
            death(conn, p, pid, died, &e.event_id).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

async fn diagnoses<'a>(
    conn: &mut AnyConnection,
    p: &str,
    e: &Event,
    codes: impl Iterator<Item = (&'a String, &'a String)>,
    at: i64,
) -> anyhow::Result<()> {
    for (i, (system, code)) in codes.enumerate() {
        sqlx::query(&format!(
            "INSERT INTO {p}diagnoses (event_id, idx, patient_id, code_system, code, at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (event_id, idx) DO NOTHING"
        ))
        .bind(&e.event_id)
        .bind(i as i64)
        .bind(&e.patient_id)
        .bind(system)
        .bind(code)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn death(
    conn: &mut AnyConnection,
    p: &str,
    patient: &str,
    at: i64,
    event_id: &str,
) -> anyhow::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {p}deaths (patient_id, died_at, event_id) VALUES ($1, $2, $3) ON CONFLICT (patient_id) DO NOTHING"
    ))
    .bind(patient)
    .bind(at)
    .bind(event_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn month_of(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map_or_else(String::new, |d| d.format("%Y-%m").to_string())
}

async fn recompute(conn: &mut AnyConnection, p: &str, patient: &str) -> anyhow::Result<()> {
    let encounters = sqlx::query(&format!(
        "SELECT encounter_id, facility_id, territory, unit, setting, admit_type, admitted_at, discharged_at, disposition, dx_system, dx_code
         FROM {p}encounters WHERE patient_id = $1"
    ))
    .bind(patient)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| -> Result<Encounter, sqlx::Error> {
        let system: Option<String> = r.try_get(9)?;
        let code: Option<String> = r.try_get(10)?;
        Ok(Encounter {
            encounter_id: r.try_get(0)?,
            facility_id: r.try_get(1)?,
            territory: r.try_get(2)?,
            unit: r.try_get(3)?,
            setting: r.try_get::<i64, _>(4)? as i32,
            admit_type: r.try_get::<i64, _>(5)? as i32,
            admitted_at: r.try_get(6)?,
            discharged_at: r.try_get(7)?,
            disposition: r.try_get::<i64, _>(8)? as i32,
            primary_diagnosis: system.zip(code),
        })
    })
    .collect::<Result<Vec<_>, _>>()?;
    let ed = sqlx::query(&format!(
        "SELECT at, outcome FROM {p}ed_visits WHERE patient_id = $1"
    ))
    .bind(patient)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(EdVisit {
            at: r.try_get(0)?,
            outcome: r.try_get::<i64, _>(1)? as i32,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let dx = sqlx::query(&format!(
        "SELECT code_system, code, at FROM {p}diagnoses WHERE patient_id = $1"
    ))
    .bind(patient)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Diagnosis {
            system: r.try_get(0)?,
            code: r.try_get(1)?,
            at: r.try_get(2)?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let death: Option<i64> = sqlx::query(&format!(
        "SELECT died_at FROM {p}deaths WHERE patient_id = $1"
    ))
    .bind(patient)
    .fetch_optional(&mut *conn)
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    sqlx::query(&format!("DELETE FROM {p}index_stays WHERE patient_id = $1"))
        .bind(patient)
        .execute(&mut *conn)
        .await?;
    for s in model::index_stays(&encounters, &ed, &dx, death) {
        let r = s.readmission.as_ref();
        sqlx::query(&format!(
            "INSERT INTO {p}index_stays (patient_id, encounter_id, first_encounter_id, facility_id, territory, unit, disposition,
             admit_day, discharge_day, discharge_month, discharged_at, length_of_stay, emergency, charlson, ed_visits_182, lace,
             diagnosis_chapter, readmitted, readmit_encounter_id, readmit_day, days_to_readmission, unplanned, ed_revisit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)"
        ))
        .bind(patient)
        .bind(&s.encounter_id)
        .bind(&s.first_encounter_id)
        .bind(&s.facility_id)
        .bind(&s.territory)
        .bind(&s.unit)
        .bind(s.disposition as i64)
        .bind(s.admit_day)
        .bind(s.discharge_day)
        .bind(month_of(s.discharge_day))
        .bind(s.discharged_at)
        .bind(s.length_of_stay)
        .bind(s.emergency as i64)
        .bind(s.charlson as i64)
        .bind(s.ed_visits_182 as i64)
        .bind(s.lace as i64)
        .bind(&s.diagnosis_chapter)
        .bind(r.is_some() as i64)
        .bind(r.map(|r| r.encounter_id.clone()))
        .bind(r.map(|r| r.admit_day))
        .bind(r.map(|r| r.days))
        .bind(r.is_some_and(|r| r.unplanned) as i64)
        .bind(s.ed_revisit as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
