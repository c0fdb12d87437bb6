//! The territory's weekly indicators over the coordination tables of the live generation
//! (docs/design.md §5), counted by week in SQL; the QLS of the discharge letters is scored in
//! SQL too (`letters.rs`).
use super::{
    calendar::{paris_midnight, week_start, week_start_secs},
    fold::APPT_MISSED,
    queries::{FOLLOWED, FOLLOWED_SETTINGS},
};
use crate::scope::Scope;
use chrono::NaiveDate;
use sqlx::{any::AnyRow, AnyPool, Row};
use std::collections::BTreeMap;

/// The index in `starts` (the first instants of consecutive weeks) of the week holding `col`, an
/// SQL expression at or after `starts[0]` and before the end of the last week.
fn week_sql(col: &str, starts: &[i64]) -> String {
    let mut sql = String::from("CAST(CASE");
    for (i, start) in starts.iter().enumerate().skip(1) {
        sql += &format!(" WHEN {col} < {start} THEN {}", i - 1);
    }
    sql + &format!(" ELSE {} END AS BIGINT)", starts.len().saturating_sub(1))
}

/// Runs `sql` with `$1 = from`, `$2 = to` and the place filters after them.
async fn in_period(
    pool: &AnyPool,
    sql: &str,
    from: i64,
    to: i64,
    binds: &[String],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut q = sqlx::query(sql).bind(from).bind(to);
    for b in binds {
        q = q.bind(b.clone());
    }
    q.fetch_all(pool).await
}

/// One week's indicators (see `coordination.proto` WeekIndicators for each figure).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Week {
    pub week: NaiveDate,
    pub discharges: u64,
    pub index_stays: u64,
    pub readmissions_30d: u64,
    pub ed_revisits_30d: u64,
    pub first_contact_delays_h: Vec<i64>,
    pub letters: u64,
    pub letters_same_day: u64,
    pub letter_items_sum: u64,
    pub appointments_due: u64,
    pub appointments_missed: u64,
    pub alerts_raised: u64,
    pub alerts_open: u64,
    /// When each open alert was raised (their ages are the time's: [`Week::open_alert_ages_h`]).
    pub open_alerts_raised_at: Vec<i64>,
    /// HAD stays active during the week: [palliative, acute/chronic, nursing-home support].
    pub had: [u64; 3],
}

impl Week {
    /// The open alerts' ages at `now`, in whole hours (0 for one raised after `now`).
    pub fn open_alert_ages_h(&self, now: i64) -> Vec<i64> {
        self.open_alerts_raised_at
            .iter()
            .map(|raised| (now - raised).max(0) / 3600)
            .collect()
    }
}

/// The weeks' figures, each part's query run at once with the others (they read different
/// tables and indexes); nothing depends on the time of the call but the open alerts' ages.
pub async fn indicators(
    pool: &AnyPool,
    p: &str,
    scope: Scope<'_>,
) -> Result<Vec<Week>, sqlx::Error> {
    let Scope {
        readmission_prefix,
        from,
        to,
        ..
    } = scope;
    let from = week_start_secs(from);
    let mut weeks: BTreeMap<NaiveDate, Week> = BTreeMap::new();
    let mut d = week_start(from);
    while paris_midnight(d) < to {
        weeks.insert(
            d,
            Week {
                week: d,
                ..Default::default()
            },
        );
        d = d + chrono::Days::new(7);
    }
    // Each row's week in SQL (its index in `weeks`); every instant of `[from, to)` falls in one.
    let starts: Vec<i64> = weeks.keys().map(|d| paris_midnight(*d)).collect();
    let index: Vec<NaiveDate> = weeks.keys().copied().collect();
    let week_of = |col: &str| week_sql(col, &starts);
    let week = |r: &AnyRow| -> Result<NaiveDate, sqlx::Error> {
        let i = r.try_get::<i64, _>(0)?;
        Ok(index[(i.max(0) as usize).min(index.len() - 1)])
    };

    // Discharges: letters and first contacts, counted by week, first contact delay (hours) and
    // the letter's items.
    let (wh, binds) = scope.place_sql("e", None, 2);
    let discharges_sql = format!(
        "SELECT {} AS wk, CASE WHEN e.first_contact_at IS NULL THEN NULL
                ELSE (e.first_contact_at - e.discharged_at) / 3600 END AS delay,
           COUNT(*), COUNT(e.letter_sent_at),
           CAST(SUM(CASE WHEN e.letter_sent_at < e.letter_due_at THEN 1 ELSE 0 END) AS BIGINT),
           e.letter_items
         FROM {p}encounters e
         WHERE e.discharged_at >= $1 AND e.discharged_at < $2 AND e.{} AND e.{}{wh}
         GROUP BY 1, 2, 6",
        week_of("e.discharged_at"),
        FOLLOWED,
        FOLLOWED_SETTINGS,
    );
    // 30-day readmissions and ED revisits, by week of the index discharge.
    // The readmission view's index stays have no unit: their encounter's, in the coordination view.
    let (stays_wh, stays_binds) = scope.place_sql("s", Some(&format!("{p}encounters")), 2);
    let readmissions_sql = readmission_prefix.map(|rp| {
        format!(
            "SELECT {} AS wk, COUNT(*), CAST(SUM(CASE WHEN s.readmitted <> 0 THEN 1 ELSE 0 END) AS BIGINT),
               CAST(SUM(CASE WHEN s.ed_revisit <> 0 THEN 1 ELSE 0 END) AS BIGINT)
             FROM {rp}index_stays s
             WHERE s.discharged_at >= $1 AND s.discharged_at < $2{stays_wh} GROUP BY 1",
            week_of("s.discharged_at")
        )
    });
    // Appointments by week due.
    let appointments_sql = format!(
        "SELECT {} AS wk, COUNT(*), CAST(SUM(CASE WHEN a.state = {APPT_MISSED} THEN 1 ELSE 0 END) AS BIGINT)
         FROM {p}appointments a JOIN {p}encounters e
           ON e.patient_id = a.patient_id AND e.encounter_id = a.encounter_id
         WHERE a.due_at >= $1 AND a.due_at < $2{wh} GROUP BY 1",
        week_of("a.due_at")
    );
    // Alerts by week raised (of patients with a stay at the facility / in the territory), the
    // open ones by when they were raised.
    let of_place = if wh.is_empty() {
        String::new()
    } else {
        format!(
            " AND EXISTS (SELECT 1 FROM {p}encounters e WHERE e.patient_id = al.patient_id{wh})"
        )
    };
    let alerts_sql = format!(
        "SELECT {} AS wk, CASE WHEN al.resolved_at IS NOT NULL THEN NULL ELSE al.raised_at END AS open_raised,
           COUNT(*)
         FROM {p}alerts al WHERE al.raised_at >= $1 AND al.raised_at < $2{of_place} GROUP BY 1, 2",
        week_of("al.raised_at")
    );
    // HAD census: HAD stays active at some point of the week, by group.
    let had_sql = format!(
        "SELECT e.admitted_at, e.discharged_at, e.had_group FROM {p}encounters e
         WHERE e.setting = 3 AND e.admitted_at < $2 AND (e.discharged_at IS NULL OR e.discharged_at >= $1){wh}"
    );
    let (discharges, readmissions, appointments, alerts, had) = tokio::try_join!(
        in_period(pool, &discharges_sql, from, to, &binds),
        async {
            match &readmissions_sql {
                Some(sql) => in_period(pool, sql, from, to, &stays_binds).await,
                None => Ok(Vec::new()),
            }
        },
        in_period(pool, &appointments_sql, from, to, &binds),
        in_period(pool, &alerts_sql, from, to, &binds),
        in_period(pool, &had_sql, from, to, &binds),
    )?;

    for r in discharges {
        let Some(w) = weeks.get_mut(&week(&r)?) else {
            continue;
        };
        let n = r.try_get::<i64, _>(2)? as u64;
        w.discharges += n;
        let letters = r.try_get::<i64, _>(3)? as u64;
        w.letters += letters;
        w.letters_same_day += r.try_get::<Option<i64>, _>(4)?.unwrap_or(0) as u64;
        w.letter_items_sum += u64::from((r.try_get::<i64, _>(5)? as u32).count_ones()) * letters;
        if let Some(delay) = r.try_get::<Option<i64>, _>(1)? {
            w.first_contact_delays_h
                .extend(std::iter::repeat_n(delay, n as usize));
        }
    }
    for r in readmissions {
        let Some(w) = weeks.get_mut(&week(&r)?) else {
            continue;
        };
        w.index_stays += r.try_get::<i64, _>(1)? as u64;
        w.readmissions_30d += r.try_get::<i64, _>(2)? as u64;
        w.ed_revisits_30d += r.try_get::<i64, _>(3)? as u64;
    }
    for r in appointments {
        let Some(w) = weeks.get_mut(&week(&r)?) else {
            continue;
        };
        w.appointments_due += r.try_get::<i64, _>(1)? as u64;
        w.appointments_missed += r.try_get::<i64, _>(2)? as u64;
    }
    for r in alerts {
        let Some(w) = weeks.get_mut(&week(&r)?) else {
            continue;
        };
        let n = r.try_get::<i64, _>(2)? as u64;
        w.alerts_raised += n;
        if let Some(raised) = r.try_get::<Option<i64>, _>(1)? {
            w.alerts_open += n;
            w.open_alerts_raised_at
                .extend(std::iter::repeat_n(raised, n as usize));
        }
    }
    for (monday, w) in weeks.iter_mut() {
        let start = paris_midnight(*monday);
        let end = paris_midnight(*monday + chrono::Days::new(7));
        for r in &had {
            let admitted: i64 = r.try_get(0)?;
            let discharged: Option<i64> = r.try_get(1)?;
            let group: i64 = r.try_get(2)?;
            if admitted < end && discharged.is_none_or(|d| d >= start) && (1..=3).contains(&group) {
                w.had[(group - 1) as usize] += 1;
            }
        }
    }
    Ok(weeks.into_values().collect())
}

/// The indexes the indicators read instead of the tables' rows (encounters are wide: their
/// movements), created after the tables: the weekly indicators' discharges, HAD stays and
/// appointments, each with every column its query reads; a stay's letters with what the QLS
/// scores (`letters.rs`).
pub fn indexes_ddl(p: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE INDEX {p}encounters_indicators ON {p}encounters (discharged_at, disposition, setting,
             letter_sent_at, letter_due_at, letter_items, first_contact_at, facility_id, territory,
             patient_id, encounter_id)"
        ),
        format!(
            "CREATE INDEX {p}encounters_had ON {p}encounters (admitted_at, discharged_at, had_group,
             facility_id, territory, setting) WHERE setting = 3"
        ),
        format!(
            "CREATE INDEX {p}appointments_week ON {p}appointments (due_at, state, patient_id, encounter_id)"
        ),
        format!(
            "CREATE INDEX {p}letters_stay ON {p}letters (patient_id, encounter_id, at, items, handed_to_patient)"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_alerts_age_with_the_time_of_the_question() {
        // Given a week whose open alerts were raised at 10:00 and at 12:30
        let ten = 1_800_000_000;
        let week = Week {
            open_alerts_raised_at: vec![ten, ten + 9_000],
            ..Default::default()
        };
        // When asked at 12:00, then at 15:00 the same day
        // Then their ages are whole hours at that time, 0 for one not raised yet
        assert_eq!(week.open_alert_ages_h(ten + 7_200), vec![2, 0]);
        assert_eq!(week.open_alert_ages_h(ten + 18_000), vec![5, 2]);
    }
}
