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
