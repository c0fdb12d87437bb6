//! One patient's follow-up over the coordination tables of the live generation: every discharge
//! with its state at the time of the query, appointments, alerts (resolved too) and referents.
use super::{
    followup::{self, Alert, Appointment},
    queries::{
        alert, appointment, attach, discharge, referent, Discharge, Item, Referent,
        DISCHARGE_COLUMNS,
    },
};
use crate::sql::bytewise;
use sqlx::{any::AnyRow, AnyPool, Row};

/// One patient's discharges (newest first), with all appointments and alerts (resolved too).
pub struct PatientFollowUp {
    pub display_name: String,
    pub deceased: bool,
    pub discharges: Vec<Item>,
    /// (encounter id, appointment, with)
    pub appointments: Vec<(String, Appointment, String)>,
    /// (alert, rule)
    pub alerts: Vec<(Alert, String)>,
    pub referents: Vec<Referent>,
}

pub async fn patient(
    pool: &AnyPool,
    p: &str,
    patient_id: &str,
    now: i64,
) -> Result<Option<PatientFollowUp>, sqlx::Error> {
    let head = sqlx::query(&format!(
        "SELECT display_name, died_at FROM {p}patients WHERE patient_id = $1"
    ))
    .bind(patient_id)
    .fetch_optional(pool)
    .await?;
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    let mut discharges: Vec<Discharge> = sqlx::query(&format!(
        "SELECT {DISCHARGE_COLUMNS} FROM {p}encounters e WHERE e.discharged_at IS NOT NULL AND e.patient_id = $1
         ORDER BY e.discharged_at, e.encounter_id{c}"
    ))
    .bind(patient_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(discharge)
    .collect::<Result<_, _>>()?;
    attach(&mut conn, p, &mut discharges).await?;
    drop(conn);
    if head.is_none() && discharges.is_empty() {
        let any: Option<AnyRow> = sqlx::query(&format!(
            "SELECT 1 FROM {p}encounters WHERE patient_id = $1 LIMIT 1"
        ))
        .bind(patient_id)
        .fetch_optional(pool)
        .await?;
        if any.is_none() {
            return Ok(None);
        }
    }
    let (display_name, deceased) = match &head {
        Some(r) => (r.try_get(0)?, r.try_get::<Option<i64>, _>(1)?.is_some()),
        None => (String::new(), false),
    };
    let mut discharges: Vec<Item> = discharges
        .into_iter()
        .map(|d| Item {
            follow_up: followup::follow_up(&d.facts, now),
            discharge: d,
        })
        .collect();
    // Newest first; discharges at the same second by encounter, whatever order SQL gave.
    discharges.sort_by(|a, b| {
        (b.discharge.facts.discharged_at, &a.discharge.encounter_id)
            .cmp(&(a.discharge.facts.discharged_at, &b.discharge.encounter_id))
    });
    let appointments = sqlx::query(&format!(
        "SELECT patient_id, encounter_id, appointment_id, kind, due_at, state, with_name FROM {p}appointments
         WHERE patient_id = $1 ORDER BY due_at, appointment_id{c}"
    ))
    .bind(patient_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| appointment(r).map(|(_, enc, a, with)| (enc, a, with)))
    .collect::<Result<_, _>>()?;
    let alerts = sqlx::query(&format!(
        "SELECT patient_id, alert_id, severity, rule, reason, raised_at, acknowledged_at, resolved_at FROM {p}alerts
         WHERE patient_id = $1 ORDER BY raised_at DESC, alert_id{c}"
    ))
    .bind(patient_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| alert(r).map(|(_, a, rule)| (a, rule)))
    .collect::<Result<_, _>>()?;
    let referents = sqlx::query(&format!(
        "SELECT role, professional_id, name, phone FROM {p}referents WHERE patient_id = $1 ORDER BY role"
    ))
    .bind(patient_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| referent(r, 0))
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(PatientFollowUp {
        display_name,
        deceased,
        discharges,
        appointments,
        alerts,
        referents,
    }))
}
