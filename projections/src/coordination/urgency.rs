//! The worklist's filter and order in SQL. The fold stores, with each encounter, what of its
//! follow-up does not depend on the time of the query ([`Standing`]: due times, letter
//! completeness, missed appointments, the earliest scheduled one, the patient's open alerts, the
//! earliest deadline of a care pathway step not done); the
//! expressions here add what depends on `now` (a bound parameter) with the weights and conditions
//! of `followup::rank`, so that SQL filters and orders exactly as [`follow_up`] would, and pages
//! before anything else is loaded.
use super::followup::{follow_up, weight::*, Facts, DAY};

/// What the fold stores for one encounter so that SQL can rank it at any `now`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Due times, when discharged.
    pub letter_due_at: Option<i64>,
    pub first_contact_due_at: Option<i64>,
    pub reconciliation_due_at: Option<i64>,
    pub letter_complete: bool,
    pub appointments_missed: u32,
    /// The earliest appointment still scheduled (neither completed nor missed), whatever its date.
    pub earliest_scheduled_at: Option<i64>,
    /// Open alerts: critical, high, low or moderate.
    pub alerts_critical: u32,
    pub alerts_high: u32,
    pub alerts_other: u32,
    pub alerts_unacknowledged: u32,
    pub alert_max_severity: i32,
    /// The earliest deadline of a care pathway step not done yet (`pathways.rs`).
    pub pathway_due_at: Option<i64>,
}

impl Standing {
    /// From the follow-up derived by [`follow_up`] at the beginning of time: then nothing is past
    /// due, so every scheduled appointment counts as upcoming and the next one is the earliest.
    pub fn of(f: &Facts, discharged: bool) -> Standing {
        let fu = follow_up(f, i64::MIN);
        let due = |t: i64| discharged.then_some(t);
        Standing {
            letter_due_at: due(fu.letter_due_at),
            first_contact_due_at: due(fu.first_contact_due_at),
            reconciliation_due_at: due(fu.reconciliation_due_at),
            letter_complete: fu.letter_complete,
            appointments_missed: fu.appointments_missed,
            earliest_scheduled_at: fu.next_appointment_due_at,
            alerts_critical: fu.open_alerts[3],
            alerts_high: fu.open_alerts[2],
            alerts_other: fu.open_alerts[0] + fu.open_alerts[1],
            alerts_unacknowledged: fu.unacknowledged_alerts,
            alert_max_severity: fu.max_open_severity,
            pathway_due_at: fu.pathway_due_at.filter(|_| discharged),
        }
    }
}

impl Standing {
    /// Reads the [`COLUMNS`] of `r` from column `at` on.
    pub fn from_row(r: &sqlx::any::AnyRow, at: usize) -> Result<Standing, sqlx::Error> {
        use sqlx::Row;
        let count = |i: usize| r.try_get::<i64, _>(at + i).map(|v| v as u32);
        Ok(Standing {
            letter_due_at: r.try_get(at)?,
            first_contact_due_at: r.try_get(at + 1)?,
            reconciliation_due_at: r.try_get(at + 2)?,
            letter_complete: r.try_get::<i64, _>(at + 3)? != 0,
            appointments_missed: count(4)?,
            earliest_scheduled_at: r.try_get(at + 5)?,
            alerts_critical: count(6)?,
            alerts_high: count(7)?,
            alerts_other: count(8)?,
            alerts_unacknowledged: count(9)?,
            alert_max_severity: r.try_get::<i64, _>(at + 10)? as i32,
            pathway_due_at: r.try_get(at + 11)?,
        })
    }
}

/// The stored columns of [`Standing`], in its field order.
pub const COLUMNS: &str =
    "letter_due_at, first_contact_due_at, reconciliation_due_at, letter_complete, \
     appointments_missed, earliest_scheduled_at, alerts_critical, alerts_high, alerts_other, \
     alerts_unacknowledged, alert_max_severity, pathway_due_at";

/// Their DDL.
pub const COLUMNS_DDL: &str = "letter_due_at BIGINT, first_contact_due_at BIGINT, reconciliation_due_at BIGINT, \
     letter_complete BIGINT NOT NULL, appointments_missed BIGINT NOT NULL, earliest_scheduled_at BIGINT, \
     alerts_critical BIGINT NOT NULL, alerts_high BIGINT NOT NULL, alerts_other BIGINT NOT NULL, \
     alerts_unacknowledged BIGINT NOT NULL, alert_max_severity BIGINT NOT NULL, pathway_due_at BIGINT";

/// `PER_DAY_LATE ×` whole days from `due` to `now`, at most `MAX_DAYS_LATE` (only used when
/// `now >= due`, where SQL's integer division truncates as Rust's does).
fn days_late(now: &str, due: &str) -> String {
    format!(
        "{PER_DAY_LATE} * CASE WHEN ({now} - {due}) / {DAY} > {MAX_DAYS_LATE} THEN {MAX_DAYS_LATE} \
         ELSE ({now} - {due}) / {DAY} END"
    )
}

/// `FollowUp::urgency` of the discharge in row `e` at `now` (an SQL expression, e.g. `$2`).
pub fn urgency_sql(now: &str) -> String {
    format!(
        "(CASE WHEN e.alerts_critical > 0 THEN {CRITICAL_ALERT} ELSE 0 END
          + CASE WHEN e.alerts_high > 0 THEN {HIGH_ALERT} ELSE 0 END
          + CASE WHEN e.alerts_other > 0
                 THEN {OTHER_ALERT} + CASE WHEN e.alerts_unacknowledged > 0 THEN {UNACKNOWLEDGED_ALERT} ELSE 0 END
                 ELSE 0 END
          + CASE WHEN e.first_contact_at IS NOT NULL THEN 0
                 WHEN {now} >= e.first_contact_due_at THEN {FIRST_CONTACT_OVERDUE} + {fc_late}
                 ELSE {FIRST_CONTACT_DUE} END
          + CASE WHEN e.appointments_missed > 0 THEN {APPOINTMENT_MISSED} ELSE 0 END
          + CASE WHEN e.earliest_scheduled_at < {now} THEN {APPOINTMENT_UNCONFIRMED} ELSE 0 END
          + CASE WHEN {now} >= e.pathway_due_at THEN {PATHWAY_STEP_OVERDUE} + {pathway_late} ELSE 0 END
          + CASE WHEN e.letter_sent_at IS NULL AND {now} >= e.letter_due_at
                 THEN {LETTER_OVERDUE} + {letter_late} ELSE 0 END
          + CASE WHEN e.reconciled_at IS NULL AND {now} >= e.reconciliation_due_at
                 THEN {RECONCILIATION_OVERDUE} ELSE 0 END
          + CASE WHEN e.letter_sent_at IS NOT NULL AND e.letter_complete = 0 THEN {LETTER_INCOMPLETE} ELSE 0 END)",
        fc_late = days_late(now, "e.first_contact_due_at"),
        letter_late = days_late(now, "e.letter_due_at"),
        pathway_late = days_late(now, "e.pathway_due_at"),
    )
}

/// `FollowUp::overdue` of the discharge in row `e` at `now` (an SQL condition).
pub fn overdue_sql(now: &str) -> String {
    format!(
        "(e.alerts_critical + e.alerts_high + e.alerts_other > 0 OR e.appointments_missed > 0
          OR e.earliest_scheduled_at < {now} OR {now} >= e.pathway_due_at
          OR (e.first_contact_at IS NULL AND {now} >= e.first_contact_due_at)
          OR (e.letter_sent_at IS NULL AND {now} >= e.letter_due_at)
          OR (e.reconciled_at IS NULL AND {now} >= e.reconciliation_due_at))"
    )
}

/// Whether the discharge in row `e` has an open task at `now` whatever its date (an SQL
/// condition, as [`super::followup::open_task`]): an alert not resolved, an appointment past due
/// and not confirmed, a care pathway step overdue, or no first contact yet. The worklist lists such a patient even when the
/// discharge is older than its window.
pub fn open_task_sql(now: &str) -> String {
    format!(
        "(e.alerts_critical + e.alerts_high + e.alerts_other > 0
          OR e.earliest_scheduled_at < {now} OR {now} >= e.pathway_due_at
          OR e.first_contact_at IS NULL)"
    )
}

/// What the fold cannot store because it depends on the time: each encounter's urgency at
/// `urgency_since`, still the same at every instant before `urgency_until`. The fold writes an
/// encounter with `urgency_until = 0` (to be worked out again); [`maintain`] works it out.
/// Kept with it: whether the encounter has an open task ([`open_task_sql`]) and is overdue
/// ([`overdue_sql`]) then, 1 or 0.
pub const KEPT_DDL: &str =
    "urgency BIGINT NOT NULL DEFAULT 0, urgency_since BIGINT NOT NULL DEFAULT 0, \
     urgency_until BIGINT NOT NULL DEFAULT 0, kept_open_task BIGINT NOT NULL DEFAULT 0, \
     kept_overdue BIGINT NOT NULL DEFAULT 0";

/// Which of the followed encounters a query reads.
#[derive(Debug, Clone, Copy)]
pub enum Rows {
    /// Those whose urgency is kept at the time of the query ([`kept_sql`]).
    Kept,
    /// The others ([`not_kept_sql`]).
    NotKept { any_later: bool },
}

/// The table holding the instant of the last [`maintain`]: no encounter's urgency is kept from a
/// later instant.
pub const KEPT_TABLE: &str = "urgency_kept";

pub fn kept_ddl(p: &str) -> String {
    format!("CREATE TABLE {p}{KEPT_TABLE} (at BIGINT NOT NULL)")
}

/// An instant after every other (in the year 2261): "never".
const NEVER: i64 = 9_200_000_000;

/// The next instant after `now` at which whole days late from `due` grow (`due` itself when
/// `now` is before it), or [`NEVER`] past `MAX_DAYS_LATE` days, when `pending` (an SQL condition)
/// holds and `due` is set.
fn next_day_late(now: &str, due: &str, pending: &str) -> String {
    format!(
        "CASE WHEN NOT ({pending}) OR {due} IS NULL THEN {NEVER}
              WHEN {now} < {due} THEN {due}
              WHEN ({now} - {due}) / {DAY} < {MAX_DAYS_LATE} THEN {due} + (({now} - {due}) / {DAY} + 1) * {DAY}
              ELSE {NEVER} END"
    )
}

/// The first instant after `now` at which [`urgency_sql`], [`overdue_sql`] or [`open_task_sql`]
/// of the encounter in row `e` may change with the time alone (nothing appended): a due time
/// reached, a day more late, the earliest scheduled appointment passed. `least` is the SQL
/// function giving the smallest of its arguments (`MIN` on SQLite, `LEAST` on PostgreSQL).
pub fn next_change_sql(now: &str, least: &str) -> String {
    format!(
        "{least}({first_contact}, {letter}, {pathway},
            CASE WHEN e.reconciled_at IS NULL AND {now} < e.reconciliation_due_at THEN e.reconciliation_due_at ELSE {NEVER} END,
            CASE WHEN e.earliest_scheduled_at >= {now} THEN e.earliest_scheduled_at + 1 ELSE {NEVER} END)",
        first_contact = next_day_late(now, "e.first_contact_due_at", "e.first_contact_at IS NULL"),
        letter = next_day_late(now, "e.letter_due_at", "e.letter_sent_at IS NULL"),
        pathway = next_day_late(now, "e.pathway_due_at", "1 = 1"),
    )
}

/// Works out again, at `now`, the urgency of every followed encounter whose kept urgency is no
/// longer valid (written by the fold since, or a due time passed); returns the next instant one
/// will need it.
pub async fn maintain(
    conn: &mut sqlx::AnyConnection,
    p: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    use sqlx::Row;
    let least = if conn.backend_name() == "PostgreSQL" {
        "LEAST"
    } else {
        "MIN"
    };
    let followed = super::queries::followed_rows();
    sqlx::query(&format!(
        "UPDATE {p}encounters AS e SET urgency = CAST({} AS BIGINT), urgency_since = $1,
            urgency_until = {}, kept_open_task = CASE WHEN {} THEN 1 ELSE 0 END,
            kept_overdue = CASE WHEN {} THEN 1 ELSE 0 END
         WHERE e.urgency_until <= $1 AND {followed}",
        urgency_sql("$1"),
        next_change_sql("$1", least),
        open_task_sql("$1"),
        overdue_sql("$1"),
    ))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    // The latest instant an urgency was kept from, whatever the clock did meanwhile.
    let kept = kept_at(conn, p).await?.map_or(now, |at| at.max(now));
    sqlx::query(&format!("DELETE FROM {p}{KEPT_TABLE}"))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!("INSERT INTO {p}{KEPT_TABLE} (at) VALUES ($1)"))
        .bind(kept)
        .execute(&mut *conn)
        .await?;
    let next: Option<i64> = sqlx::query(&format!(
        "SELECT MIN(e.urgency_until) FROM {p}encounters e WHERE {followed}"
    ))
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    Ok(next.filter(|&at| at < NEVER))
}

/// The latest instant an encounter's urgency was kept from, if any was.
pub async fn kept_at(conn: &mut sqlx::AnyConnection, p: &str) -> Result<Option<i64>, sqlx::Error> {
    use sqlx::Row;
    sqlx::query(&format!("SELECT MAX(at) FROM {p}{KEPT_TABLE}"))
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)
}

/// Whether the urgency kept in row `e` is its urgency at `now` (an SQL condition).
pub fn kept_sql(now: &str) -> String {
    // `+`: not a range of the index of the rows not kept, which would read the table's.
    format!("(e.urgency_since <= {now} AND {now} < +e.urgency_until)")
}

/// Whether it is not: [`kept_sql`] negated, when an urgency may have been kept from after `now`
/// (`any_later`), else only the rows whose kept urgency ended.
pub fn not_kept_sql(now: &str, any_later: bool) -> String {
    if any_later {
        format!("(e.urgency_until <= {now} OR e.urgency_since > {now})")
    } else {
        format!("e.urgency_until <= {now}")
    }
}
