//! Queries over the readmission tables of the live generation. Written once for SQLite and
//! PostgreSQL (through sqlx `Any`): no constant `GROUP BY` expression, aggregates cast to `BIGINT`
//! (PostgreSQL sums `BIGINT` columns into `NUMERIC`, which the `Any` driver cannot decode), text
//! ordered bytewise ([`bytewise`]), and every order total, so that both answer alike.
use crate::sql::bytewise;
use sqlx::{any::AnyRow, AnyPool, Row};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    None,
    Facility,
    Unit,
    Disposition,
    Month,
    DiagnosisChapter,
    Territory,
}

impl GroupBy {
    /// The expression grouped by; none for the total alone (PostgreSQL refuses a constant in
    /// `GROUP BY`, and a single group needs none).
    fn column(self) -> Option<&'static str> {
        match self {
            GroupBy::None => None,
            GroupBy::Facility => Some("facility_id"),
            GroupBy::Unit => Some("unit"),
            GroupBy::Disposition => Some("CAST(disposition AS TEXT)"),
            GroupBy::Month => Some("discharge_month"),
            GroupBy::DiagnosisChapter => Some("diagnosis_chapter"),
            GroupBy::Territory => Some("territory"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RateRow {
    pub key: String,
    pub index_stays: i64,
    pub readmissions: i64,
    pub unplanned_readmissions: i64,
    pub ed_revisits: i64,
}

impl RateRow {
    /// The total of a breakdown: every index stay falls in exactly one of its rows, so the sum is
    /// the total of the same scan (no second pass, and never a total from another checkpoint).
    pub fn total(rows: &[RateRow]) -> RateRow {
        rows.iter().fold(
            RateRow {
                key: "all".into(),
                index_stays: 0,
                readmissions: 0,
                unplanned_readmissions: 0,
                ed_revisits: 0,
            },
            |t, r| RateRow {
                key: t.key,
                index_stays: t.index_stays + r.index_stays,
                readmissions: t.readmissions + r.readmissions,
                unplanned_readmissions: t.unplanned_readmissions + r.unplanned_readmissions,
                ed_revisits: t.ed_revisits + r.ed_revisits,
            },
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StayRow {
    pub patient_id: String,
    pub encounter_id: String,
    pub first_encounter_id: String,
    pub facility_id: String,
    pub unit: String,
    pub disposition: i64,
    pub admit_day: i64,
    pub discharge_day: i64,
    pub length_of_stay: i64,
    pub lace: i64,
    pub charlson: i64,
    pub readmitted: bool,
    pub readmit_encounter_id: Option<String>,
    pub days_to_readmission: Option<i64>,
    pub unplanned: bool,
    pub ed_revisit: bool,
}

const STAY_COLUMNS: &str = "patient_id, encounter_id, first_encounter_id, facility_id, unit, disposition, admit_day, discharge_day, \
    length_of_stay, lace, charlson, readmitted, readmit_encounter_id, days_to_readmission, unplanned, ed_revisit";

fn stay(r: &AnyRow) -> Result<StayRow, sqlx::Error> {
    Ok(StayRow {
        patient_id: r.try_get(0)?,
        encounter_id: r.try_get(1)?,
        first_encounter_id: r.try_get(2)?,
        facility_id: r.try_get(3)?,
        unit: r.try_get(4)?,
        disposition: r.try_get(5)?,
        admit_day: r.try_get(6)?,
        discharge_day: r.try_get(7)?,
        length_of_stay: r.try_get(8)?,
        lace: r.try_get(9)?,
        charlson: r.try_get(10)?,
        readmitted: r.try_get::<i64, _>(11)? != 0,
        readmit_encounter_id: r.try_get(12)?,
        days_to_readmission: r.try_get(13)?,
        unplanned: r.try_get::<i64, _>(14)? != 0,
        ed_revisit: r.try_get::<i64, _>(15)? != 0,
    })
}

/// Beyond this many days, a rates query scans the table rather than the discharge-day index.
const WIDE_PERIOD_DAYS: i64 = 92;

/// Index stays discharged in `from_day..=to_day`, their readmissions and ED revisits, grouped;
/// rows in byte order of their key (none when no stay matches).
pub async fn rates(
    pool: &AnyPool,
    p: &str,
    from_day: i64,
    to_day: i64,
    group: GroupBy,
) -> Result<Vec<RateRow>, sqlx::Error> {
    // Over a long period most rows match: reading the table in order beats one index lookup per
    // row (3–4× on SQLite over a year). `+column` keeps the planner off the index.
    let day = if to_day.saturating_sub(from_day) > WIDE_PERIOD_DAYS {
        "+discharge_day"
    } else {
        "discharge_day"
    };
    // Integers on both backends: `COUNT` is one; `SUM` of a `BIGINT` column is a `NUMERIC` on
    // PostgreSQL (and NULL over no row), hence the cast.
    let counts = "COUNT(*), CAST(COALESCE(SUM(readmitted), 0) AS BIGINT), \
                  CAST(COALESCE(SUM(unplanned), 0) AS BIGINT), CAST(COALESCE(SUM(ed_revisit), 0) AS BIGINT)";
    let filter = format!("FROM {p}index_stays WHERE {day} >= $1 AND {day} <= $2");
    let sql = match group.column() {
        Some(key) => format!("SELECT {counts}, {key} {filter} GROUP BY {key}"),
        None => format!("SELECT {counts} {filter}"),
    };
    let rows = sqlx::query(&sql)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(pool)
        .await?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(RateRow {
                key: match group.column() {
                    Some(_) => r.try_get(4)?,
                    None => "all".into(),
                },
                index_stays: r.try_get(0)?,
                readmissions: r.try_get(1)?,
                unplanned_readmissions: r.try_get(2)?,
                ed_revisits: r.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // The total alone is one row even over no stay: no stay, no row (as with a breakdown).
    out.retain(|r| r.index_stays > 0);
    // Keys in byte order, whatever the database's locale.
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// Index stays discharged in `from_day..=to_day`, oldest discharge first, paged.
pub async fn index_stays(
    pool: &AnyPool,
    p: &str,
    from_day: i64,
    to_day: i64,
    offset: i64,
    limit: i64,
) -> Result<Vec<StayRow>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    sqlx::query(&format!(
        "SELECT {STAY_COLUMNS} FROM {p}index_stays WHERE discharge_day >= $1 AND discharge_day <= $2
         ORDER BY discharge_day, patient_id{c}, encounter_id{c} LIMIT $3 OFFSET $4"
    ))
    .bind(from_day)
    .bind(to_day)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(stay)
    .collect()
}

/// Patients discharged in the 30 days up to `as_of_day` and not readmitted, highest LACE first
/// (then latest discharge, then by patient and encounter).
pub async fn at_risk(
    pool: &AnyPool,
    p: &str,
    as_of_day: i64,
    limit: i64,
) -> Result<Vec<StayRow>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    sqlx::query(&format!(
        "SELECT {STAY_COLUMNS} FROM {p}index_stays WHERE discharge_day >= $1 AND discharge_day <= $2 AND readmitted = 0
         ORDER BY lace DESC, discharge_day DESC, patient_id{c}, encounter_id{c} LIMIT $3"
    ))
    .bind(as_of_day - 30)
    .bind(as_of_day)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(stay)
    .collect()
}

/// One patient's index stays, oldest discharge first (then by encounter).
pub async fn patient_stays(
    pool: &AnyPool,
    p: &str,
    patient: &str,
) -> Result<Vec<StayRow>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    sqlx::query(&format!(
        "SELECT {STAY_COLUMNS} FROM {p}index_stays WHERE patient_id = $1 ORDER BY discharge_day, encounter_id{c}"
    ))
    .bind(patient)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(stay)
    .collect()
}

/// Day-surgery and HAD stays discharged in `from_day..=to_day` (reported beside the rates: they
/// are neither index stays nor readmissions).
pub async fn other_stays(
    pool: &AnyPool,
    p: &str,
    from_day: i64,
    to_day: i64,
) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT CAST(COALESCE(SUM(CASE WHEN setting = 2 THEN 1 ELSE 0 END), 0) AS BIGINT),
                CAST(COALESCE(SUM(CASE WHEN setting = 3 THEN 1 ELSE 0 END), 0) AS BIGINT)
         FROM {p}encounters WHERE setting IN (2, 3) AND discharged_at >= $1 AND discharged_at < $2"
    ))
    .bind(from_day.saturating_mul(86_400))
    .bind(to_day.saturating_add(1).saturating_mul(86_400))
    .fetch_one(pool)
    .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}
