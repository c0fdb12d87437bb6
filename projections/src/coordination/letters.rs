//! Every discharge letter the coordination view has seen (`letters` table: one row per
//! `DischargeLetterSent`, never changed), and the QLS indicator of the discharges of a period
//! computed from them (`qls.rs`). The encounters table keeps only the first letter's time and the
//! last letter's items; the indicator scores each letter against its stay's discharge as it
//! stands at the time of the query, so a discharge corrected after its letter is scored right.
use super::{
    calendar::{paris_date, paris_midnight},
    qls::{self, Criterion, Summary},
    queries::{FOLLOWED, FOLLOWED_SETTINGS},
};
use crate::scope::Scope;
use crate::sql::{insert_rows, SqlRow, Q};
use chrono::Days;
use journey_proto::v1::{event::Payload, Event};
use sqlx::{AnyConnection, AnyPool, Row};

pub const TABLE: &str = "letters";

pub fn ddl(p: &str) -> String {
    format!(
        "CREATE TABLE {p}letters (patient_id TEXT NOT NULL, event_id TEXT NOT NULL, encounter_id TEXT NOT NULL,
         at BIGINT NOT NULL, items BIGINT NOT NULL, handed_to_patient BIGINT NOT NULL,
         PRIMARY KEY (patient_id, event_id))"
    )
}

struct LetterRow<'e> {
    patient_id: &'e str,
    event_id: &'e str,
    encounter_id: &'e str,
    at: i64,
    items: i64,
    handed_to_patient: bool,
}

impl SqlRow for LetterRow<'_> {
    const COLS: usize = 6;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.patient_id)
            .bind(self.event_id)
            .bind(self.encounter_id)
            .bind(self.at)
            .bind(self.items)
            .bind(i64::from(self.handed_to_patient))
    }
}

/// The `LetterItem` values of a letter as bits (`1 << item`, items 1..=62; others ignored).
pub fn item_bits(items: &[i32]) -> i64 {
    items
        .iter()
        .filter(|i| (1..=62).contains(*i))
        .fold(0i64, |m, i| m | 1 << i)
}

/// Records the batch's letters (a letter seen again is left as it is).
pub async fn write(conn: &mut AnyConnection, p: &str, events: &[Event]) -> anyhow::Result<()> {
    let rows: Vec<LetterRow> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Some(Payload::DischargeLetterSent(l)) => Some(LetterRow {
                patient_id: &e.patient_id,
                event_id: &e.event_id,
                encounter_id: &l.encounter_id,
                at: e.occurred_at.as_ref().map_or(0, |t| t.seconds),
                items: item_bits(&l.items_present),
                handed_to_patient: l.handed_to_patient,
            }),
            _ => None,
        })
        .collect();
    insert_rows(
        conn,
        &format!("{p}letters"),
        "patient_id, event_id, encounter_id, at, items, handed_to_patient",
        "ON CONFLICT (patient_id, event_id) DO NOTHING",
        &rows,
    )
    .await?;
    Ok(())
}

/// The QLS indicator of the discharges of `scope`: each scored by its best letter, in SQL (a row
/// back per score): a letter dated the day of discharge is one sent from the first instant of that
/// Paris day (`day_start_sql`) to the stay's letter deadline, which is the end of that day
/// (`urgency::Standing::letter_due_at`); its score counts the criteria as [`qls::score`] does
/// (`met_sql`).
pub async fn qls_summary(
    pool: &AnyPool,
    p: &str,
    scope: Scope<'_>,
) -> Result<Summary, sqlx::Error> {
    let mut sql = format!(
        "SELECT s.best, COUNT(*)
         FROM (SELECT (SELECT MAX({}) FROM {p}letters l
                        WHERE l.patient_id = e.patient_id AND l.encounter_id = e.encounter_id
                          AND l.at >= {} AND l.at < e.letter_due_at) AS best
               FROM {p}encounters e
               WHERE e.discharged_at >= $1 AND e.discharged_at < $2 AND e.{FOLLOWED} AND e.{FOLLOWED_SETTINGS}",
        met_sql("l"),
        day_start_sql("e.letter_due_at", scope.from, scope.to),
    );
    let (place, binds) = scope.place_sql("e", None, 2);
    sql += &place;
    // By score, so that the score is read once a stay (SQLite would run the subquery once an
    // aggregate reading it).
    sql += ") s GROUP BY s.best";
    let mut q = sqlx::query(&sql).bind(scope.from).bind(scope.to);
    for b in binds {
        q = q.bind(b);
    }
    let mut summary = Summary::default();
    for r in q.fetch_all(pool).await? {
        // No letter dated the day of discharge: 0.
        let met = r.try_get::<Option<i64>, _>(0)?.unwrap_or(0) as u32;
        for _ in 0..r.try_get::<i64, _>(1)? {
            summary.add(qls::Score { met });
        }
    }
    Ok(summary)
}

/// The criteria a letter in row `l` meets, given that it is dated the day of discharge (an SQL
/// expression), as [`qls::meets`] counts them.
fn met_sql(l: &str) -> String {
    let terms: Vec<String> = qls::CRITERIA
        .iter()
        .map(|c| match c {
            Criterion::Found | Criterion::DatedDayOfDischarge => "1".to_string(),
            Criterion::Item(item) => {
                let bit = *item as i32;
                if (1..=62).contains(&bit) {
                    format!("(({l}.items >> {bit}) & 1)")
                } else {
                    "0".to_string()
                }
            }
            Criterion::HandedToPatient => format!("{l}.handed_to_patient"),
        })
        .collect();
    format!("({})", terms.join(" + "))
}

/// The first instant of the Paris day whose end is `end` (an SQL expression), for the days
/// ending from `from` to a day after `to`: a day lasts 24 hours but on a change of clock.
fn day_start_sql(end: &str, from: i64, to: i64) -> String {
    let mut changes = String::new();
    let mut day = paris_date(from);
    let last = paris_date(to) + Days::new(1);
    while day <= last {
        let (start, next) = (paris_midnight(day), paris_midnight(day + Days::new(1)));
        if next - start != 86_400 {
            changes += &format!(" WHEN {next} THEN {}", next - start);
        }
        day = day + Days::new(1);
    }
    if changes.is_empty() {
        format!("{end} - 86400")
    } else {
        format!("{end} - CASE {end}{changes} ELSE 86400 END")
    }
}
