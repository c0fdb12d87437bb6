//! One patient's follow-up over the coordination tables of the live generation: every discharge
//! with its state at the time of the query, appointments, alerts (resolved too) and referents;
//! what the FHIR Tasks show of the discharges of many patients at once ([`task_discharges_of`], what
//! a Bulk Data export asks per batch of patients); and which of many patients are of a
//! territory's group ([`members_of`], a group export's batches).
use super::{
    followup::{self, Alert, Appointment},
    queries::{
        alert, appointment, attach, discharge, newest_first, referent, referents_of, Discharge,
        Item, Referent, DISCHARGE_COLUMNS,
    },
};
use crate::sql::{bytewise, select_in};
use sqlx::{any::AnyRow, AnyConnection, AnyPool, Row};
use std::collections::HashMap;

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

/// The follow-up of `patient_id` at `now`; `None` when the view knows nothing of them.
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
    let discharges = read_discharges(&mut conn, p, &[patient_id], now)
        .await?
        .remove(patient_id)
        .unwrap_or_default();
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

/// What the FHIR Tasks show of a discharge: where it was, its three follow-up items at the time
/// of the query, and the referent its first home contact falls to.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDischarge {
    pub encounter_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub territory: String,
    pub discharged_at: i64,
    pub items: followup::Items,
    /// The patient's first referent (by role), on the patient's last discharge only, as
    /// [`patient`] gives them.
    pub referent: Option<Referent>,
}

impl From<&Item> for TaskDischarge {
    fn from(i: &Item) -> TaskDischarge {
        let (d, fu) = (&i.discharge, &i.follow_up);
        let due = |due_at, done_at, state| followup::Due {
            due_at,
            done_at,
            state,
        };
        TaskDischarge {
            encounter_id: d.encounter_id.clone(),
            facility_id: d.facility_id.clone(),
            facility_name: d.facility_name.clone(),
            territory: d.territory.clone(),
            discharged_at: d.facts.discharged_at,
            items: followup::Items {
                letter: due(fu.letter_due_at, d.facts.letter_sent_at, fu.letter),
                reconciliation: due(
                    fu.reconciliation_due_at,
                    d.facts.reconciled_at,
                    fu.reconciliation,
                ),
                first_contact: due(
                    fu.first_contact_due_at,
                    d.facts.first_contact_at,
                    fu.first_contact,
                ),
            },
            referent: d.referents.first().cloned(),
        }
    }
}

/// The discharges of each of `patients` that has any, as [`patient`] gives them (newest first)
/// and [`TaskDischarge`] keeps of them, their items derived at `now`: two statements per `IN`
/// list (a Bulk Data export's batch of patients), which leave out what the Tasks do not show
/// (names, appointments, alerts, care pathways). A patient without a discharge is absent.
pub async fn task_discharges_of(
    pool: &AnyPool,
    p: &str,
    patients: &[&str],
    now: i64,
) -> Result<HashMap<String, Vec<TaskDischarge>>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let mut keys = patients.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut out: HashMap<String, Vec<TaskDischarge>> = HashMap::new();
    for r in select_in(&mut conn, &keys, |ph| {
        format!(
            "SELECT patient_id, encounter_id, facility_id, facility_name, territory, discharged_at,
                    letter_sent_at, reconciled_at, first_contact_at
             FROM {p}encounters WHERE discharged_at IS NOT NULL AND patient_id IN ({ph})"
        )
    })
    .await?
    {
        let discharged_at: i64 = r.try_get(5)?;
        out.entry(r.try_get(0)?).or_default().push(TaskDischarge {
            encounter_id: r.try_get(1)?,
            facility_id: r.try_get(2)?,
            facility_name: r.try_get(3)?,
            territory: r.try_get(4)?,
            discharged_at,
            items: followup::items(
                discharged_at,
                r.try_get(6)?,
                r.try_get(7)?,
                r.try_get(8)?,
                now,
            ),
            referent: None,
        });
    }
    if out.is_empty() {
        return Ok(out);
    }
    let discharged: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| out.contains_key(*k))
        .collect();
    for items in out.values_mut() {
        items.sort_by(|a, b| {
            newest_first(
                (a.discharged_at, &a.encounter_id),
                (b.discharged_at, &b.encounter_id),
            )
        });
    }
    // The first referent by role goes to the patient's last discharge by time then encounter,
    // where `attach` puts them.
    for (patient, r) in referents_of(&mut conn, p, &discharged).await? {
        let last = out.get_mut(&patient).and_then(|items| {
            items.iter_mut().max_by(|a, b| {
                (a.discharged_at, &a.encounter_id).cmp(&(b.discharged_at, &b.encounter_id))
            })
        });
        if let Some(last) = last.filter(|d| d.referent.is_none()) {
            last.referent = Some(r);
        }
    }
    Ok(out)
}

/// What [`patient`] reads: the patients' discharges with what [`attach`]
/// fills in, each patient's newest first, their follow-up at `now`.
async fn read_discharges(
    conn: &mut AnyConnection,
    p: &str,
    patients: &[&str],
    now: i64,
) -> Result<HashMap<String, Vec<Item>>, sqlx::Error> {
    let mut keys = patients.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let mut discharges: Vec<Discharge> = select_in(conn, &keys, |ph| {
        format!(
            "SELECT {DISCHARGE_COLUMNS} FROM {p}encounters e
             WHERE e.discharged_at IS NOT NULL AND e.patient_id IN ({ph})"
        )
    })
    .await?
    .iter()
    .map(discharge)
    .collect::<Result<_, _>>()?;
    if discharges.is_empty() {
        return Ok(HashMap::new());
    }
    // Each patient's discharges by time then encounter (bytes), whatever order SQL gave:
    // `attach` gives a patient's open alerts and referents to the last of them.
    discharges.sort_by(|a, b| {
        (&a.patient_id, a.facts.discharged_at, &a.encounter_id).cmp(&(
            &b.patient_id,
            b.facts.discharged_at,
            &b.encounter_id,
        ))
    });
    attach(conn, p, &mut discharges).await?;
    let mut out: HashMap<String, Vec<Item>> = HashMap::new();
    for d in discharges {
        let follow_up = followup::follow_up(&d.facts, now);
        out.entry(d.patient_id.clone()).or_default().push(Item {
            follow_up,
            discharge: d,
        });
    }
    for items in out.values_mut() {
        items.sort_by(|a, b| {
            let (a, b) = (&a.discharge, &b.discharge);
            newest_first(
                (a.facts.discharged_at, &a.encounter_id),
                (b.facts.discharged_at, &b.encounter_id),
            )
        });
    }
    Ok(out)
}

/// Which of `patients` are of `territory`'s group, as `Coordination.FollowUp` decides for one
/// patient: a discharge in that territory, and, for a caller whose organisation's consents apply
/// (`organisation`), no consent to share with it (or with every organisation) revoked; read in
/// one statement per `IN` list (what a Bulk Data export of a group asks per batch of patients).
pub async fn members_of(
    pool: &AnyPool,
    p: &str,
    patients: &[&str],
    territory: &str,
    organisation: Option<&str>,
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let anonymous = crate::sql::anonymous(&conn);
    let mut keys = patients.to_vec();
    keys.sort_unstable();
    keys.dedup();
    // The placeholders in the order they are bound: the territory, the organisation, the list.
    let consented = match organisation {
        Some(_) => format!(
            " AND NOT {}",
            super::queries::refused(
                p,
                "e.patient_id",
                &crate::sql::placeholders(anonymous, 2, 1)
            )
        ),
        None => String::new(),
    };
    let from = if organisation.is_some() { 3 } else { 2 };
    let mut out = std::collections::HashSet::new();
    for list in crate::sql::in_lists(&keys) {
        let sql = format!(
            "SELECT DISTINCT e.patient_id FROM {p}encounters e
             WHERE e.discharged_at IS NOT NULL AND e.territory = {}{consented} AND e.patient_id IN ({})",
            crate::sql::placeholders(anonymous, 1, 1),
            crate::sql::placeholders(anonymous, from, list.len())
        );
        let mut q = sqlx::query(&sql).bind(territory);
        if let Some(org) = organisation {
            q = q.bind(org);
        }
        for k in list {
            q = q.bind(k);
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(out)
}
