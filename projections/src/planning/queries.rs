//! Reading the planning view: the stays due to leave (the in-hospital worklist), a patient's
//! stays with their checklists, what was done when given discharges left, and the indicators
//! (discharges with the checklist complete, and 30-day readmissions of complete and incomplete
//! plans, joined with the readmission view's index stays).
use super::checklist::{self, Plan, HORIZON};
use crate::scope::Scope;
use crate::sql;
use chrono::NaiveDate;
use journey_proto::v1::ComplexityReason;
use sqlx::{any::AnyRow, AnyPool, Row};
use std::collections::HashMap;

/// One checklist item as last set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemState {
    pub item: i32,
    pub done: bool,
    pub by: String,
    pub at: i64,
    pub detail: String,
}

/// A stay and its planning.
#[derive(Debug, Clone, Default)]
pub struct Stay {
    pub patient_id: String,
    pub display_name: String,
    pub birth_date: String,
    /// The event catalogue's `Sex` (0: unknown).
    pub sex: i32,
    pub encounter_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub territory: String,
    /// The facility's IANA time zone ("" when it named none).
    pub time_zone: String,
    pub unit: String,
    pub expected_reason: String,
    pub expected_by: String,
    pub complex: Vec<ComplexityReason>,
    pub complex_note: String,
    pub items: Vec<ItemState>,
    /// The items done when the patient left (bits), for an ended stay.
    pub done_at_discharge: Option<i64>,
    /// The end of the patient's latest other stay before this admission.
    pub previous_discharge_at: Option<i64>,
    pub plan: Plan,
}

impl Stay {
    /// The facility's time zone (Europe/Paris when it named none or an unknown one).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::Europe::Paris)
    }

    fn local_date(&self, secs: i64) -> NaiveDate {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .with_timezone(&self.tz())
            .date_naive()
    }

    /// The complex-discharge reasons the view suggests, not flagged yet.
    pub fn suggested(&self) -> Vec<ComplexityReason> {
        checklist::suggested(
            &self.birth_date,
            self.local_date(self.plan.admitted_at),
            self.previous_discharge_at.map(|t| self.local_date(t)),
            &self.complex,
        )
    }
}

const STAY_COLUMNS: &str = "s.patient_id, COALESCE(pt.display_name, ''), COALESCE(pt.birth_date, ''), s.encounter_id,
    s.facility_id, s.facility_name, s.territory, s.time_zone, s.unit, s.admitted_at, s.discharged_at, s.expected_at,
    s.expected_reason, s.expected_by, s.complex, s.complex_note, s.done_at_discharge, COALESCE(pt.sex, 0)";

fn from_clause(p: &str) -> String {
    format!("{p}stays s LEFT JOIN {p}patients pt ON pt.patient_id = s.patient_id")
}

fn stay(r: &AnyRow) -> Result<Stay, sqlx::Error> {
    Ok(Stay {
        patient_id: r.try_get(0)?,
        display_name: r.try_get(1)?,
        birth_date: r.try_get(2)?,
        encounter_id: r.try_get(3)?,
        facility_id: r.try_get(4)?,
        facility_name: r.try_get(5)?,
        territory: r.try_get(6)?,
        time_zone: r.try_get(7)?,
        unit: r.try_get(8)?,
        expected_reason: r.try_get(12)?,
        expected_by: r.try_get(13)?,
        complex: checklist::reasons_of(r.try_get(14)?),
        complex_note: r.try_get(15)?,
        done_at_discharge: r.try_get(16)?,
        sex: r.try_get::<i64, _>(17)? as i32,
        plan: Plan {
            admitted_at: r.try_get(9)?,
            discharged_at: r.try_get(10)?,
            expected_at: r.try_get(11)?,
            done: 0,
        },
        ..Default::default()
    })
}

/// Fills each stay's checklist and the patient's previous discharge: two queries per 256
/// patients (`IN` lists), whatever the number of stays.
async fn attach(pool: &AnyPool, p: &str, stays: &mut [Stay]) -> Result<(), sqlx::Error> {
    let mut patients: Vec<&str> = stays.iter().map(|s| s.patient_id.as_str()).collect();
    patients.sort_unstable();
    patients.dedup();
    if patients.is_empty() {
        return Ok(());
    }
    let mut conn = pool.acquire().await?;
    let items = sql::select_in(&mut conn, &patients, |ids| {
        format!(
            "SELECT patient_id, encounter_id, item, done, by_name, at, detail FROM {p}checklist
             WHERE patient_id IN ({ids}) ORDER BY item"
        )
    })
    .await?;
    let ended = sql::select_in(&mut conn, &patients, |ids| {
        format!(
            "SELECT patient_id, encounter_id, discharged_at FROM {p}stays
             WHERE patient_id IN ({ids}) AND discharged_at IS NOT NULL"
        )
    })
    .await?;
    let mut by_stay: HashMap<(String, String), Vec<ItemState>> = HashMap::new();
    for r in &items {
        by_stay
            .entry((r.try_get(0)?, r.try_get(1)?))
            .or_default()
            .push(ItemState {
                item: r.try_get::<i64, _>(2)? as i32,
                done: r.try_get::<i64, _>(3)? == 1,
                by: r.try_get(4)?,
                at: r.try_get(5)?,
                detail: r.try_get(6)?,
            });
    }
    let mut discharges: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for r in &ended {
        discharges
            .entry(r.try_get(0)?)
            .or_default()
            .push((r.try_get(1)?, r.try_get(2)?));
    }
    for s in stays.iter_mut() {
        let items = by_stay
            .remove(&(s.patient_id.clone(), s.encounter_id.clone()))
            .unwrap_or_default();
        for item in &items {
            if item.done && (0..=62).contains(&item.item) {
                s.plan.done |= 1 << item.item;
            }
        }
        s.items = items;
        s.previous_discharge_at = discharges
            .get(&s.patient_id)
            .into_iter()
            .flatten()
            .filter(|(enc, at)| *enc != s.encounter_id && *at <= s.plan.admitted_at)
            .map(|(_, at)| *at)
            .max();
    }
    Ok(())
}

/// What the in-hospital worklist shows: a territory and a facility id (empty: every one), and
/// facility and unit names as people type them (a part of the name, any case; empty: every one).
#[derive(Debug, Clone, Default)]
pub struct DueFilter {
    pub territory: String,
    pub facility_id: String,
    pub facility: String,
    pub unit: String,
}

fn matches(name: &str, wanted: &str) -> bool {
    let wanted = wanted.trim().to_lowercase();
    wanted.is_empty() || name.to_lowercase().contains(&wanted)
}

/// The most stays the worklist lists at once.
pub const DUE_LIMIT: usize = 1000;

/// The open stays expected to leave by `now` + 48 h (or whose expected date passed), by
/// facility, unit and expected time.
pub async fn due(
    pool: &AnyPool,
    p: &str,
    f: &DueFilter,
    now: i64,
) -> Result<Vec<Stay>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {STAY_COLUMNS} FROM {} WHERE s.discharged_at IS NULL AND s.expected_at IS NOT NULL
         AND s.expected_at <= $1 AND ($2 = '' OR s.territory = $2) AND ($3 = '' OR s.facility_id = $3)
         ORDER BY s.facility_name, s.unit, s.expected_at, s.patient_id",
        from_clause(p)
    ))
    .bind(now + HORIZON)
    .bind(&f.territory)
    .bind(&f.facility_id)
    .fetch_all(pool)
    .await?;
    let mut stays: Vec<Stay> = rows
        .iter()
        .map(stay)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|s| matches(&s.facility_name, &f.facility) && matches(&s.unit, &f.unit))
        .take(DUE_LIMIT)
        .collect();
    attach(pool, p, &mut stays).await?;
    Ok(stays)
}

/// A patient's stays, the open ones first, then newest first.
pub async fn of_patient(
    pool: &AnyPool,
    p: &str,
    patient_id: &str,
) -> Result<Vec<Stay>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {STAY_COLUMNS} FROM {} WHERE s.patient_id = $1",
        from_clause(p)
    ))
    .bind(patient_id)
    .fetch_all(pool)
    .await?;
    let mut stays: Vec<Stay> = rows.iter().map(stay).collect::<Result<_, _>>()?;
    stays.sort_by(|a, b| {
        (b.plan.open(), b.plan.admitted_at, &a.encounter_id).cmp(&(
            a.plan.open(),
            a.plan.admitted_at,
            &b.encounter_id,
        ))
    });
    attach(pool, p, &mut stays).await?;
    Ok(stays)
}

/// The items done when each of `stays` (patient, encounter) left; a stay the view does not know
/// or that has not ended is absent. One query per 256 patients.
pub async fn done_at_discharge(
    pool: &AnyPool,
    p: &str,
    stays: &[(String, String)],
) -> Result<HashMap<(String, String), i64>, sqlx::Error> {
    let mut patients: Vec<&str> = stays.iter().map(|(pid, _)| pid.as_str()).collect();
    patients.sort_unstable();
    patients.dedup();
    let mut out = HashMap::new();
    if patients.is_empty() {
        return Ok(out);
    }
    let mut conn = pool.acquire().await?;
    let rows = sql::select_in(&mut conn, &patients, |ids| {
        format!(
            "SELECT patient_id, encounter_id, done_at_discharge FROM {p}stays
             WHERE patient_id IN ({ids}) AND done_at_discharge IS NOT NULL"
        )
    })
    .await?;
    for r in &rows {
        let key = (r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?);
        if stays.contains(&key) {
            out.insert(key, r.try_get(2)?);
        }
    }
    Ok(out)
}

/// The planning indicators of the discharges in `[from, to)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Indicators {
    pub discharges: u64,
    /// Discharges whose checklist was complete when the patient left.
    pub complete: u64,
    /// Index stays (the readmission view's definition) with a complete / incomplete checklist,
    /// and how many of each were readmitted within 30 days.
    pub index_complete: u64,
    pub readmitted_complete: u64,
    pub index_incomplete: u64,
    pub readmitted_incomplete: u64,
}

/// Counted in SQL, one row back per checklist state (complete or not): each discharge of the
/// scope joined with its index stay (the readmission view's, discharged in the same period) when
/// there is one.
pub async fn indicators(pool: &AnyPool, p: &str, s: Scope<'_>) -> Result<Indicators, sqlx::Error> {
    let complete = checklist::complete_sql("s.done_at_discharge");
    let (join, index, readmitted) = match s.readmission_prefix {
        Some(rp) => (
            format!(
                " LEFT JOIN {rp}index_stays i ON i.patient_id = s.patient_id AND i.encounter_id = s.encounter_id
                  AND i.discharged_at >= $1 AND i.discharged_at < $2"
            ),
            "COUNT(i.patient_id)",
            "CAST(COALESCE(SUM(CASE WHEN i.readmitted <> 0 THEN 1 ELSE 0 END), 0) AS BIGINT)",
        ),
        None => (String::new(), "0", "CAST(0 AS BIGINT)"),
    };
    let (place, binds) = s.place_sql("s", None, 2);
    let sql = format!(
        "SELECT CASE WHEN {complete} THEN 1 ELSE 0 END AS complete, COUNT(*),
           CAST({index} AS BIGINT), {readmitted}
         FROM {p}stays s{join}
         WHERE s.discharged_at >= $1 AND s.discharged_at < $2 AND s.done_at_discharge IS NOT NULL{place}
         GROUP BY 1"
    );
    let mut q = sqlx::query(&sql).bind(s.from).bind(s.to);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(pool).await?;
    let mut out = Indicators::default();
    for r in &rows {
        let discharges = r.try_get::<i64, _>(1)? as u64;
        let index = r.try_get::<i64, _>(2)? as u64;
        let readmitted = r.try_get::<i64, _>(3)? as u64;
        out.discharges += discharges;
        if r.try_get::<i64, _>(0)? == 1 {
            out.complete += discharges;
            out.index_complete += index;
            out.readmitted_complete += readmitted;
        } else {
            out.index_incomplete += index;
            out.readmitted_incomplete += readmitted;
        }
    }
    Ok(out)
}
