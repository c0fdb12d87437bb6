//! Every discharge letter the coordination view has seen (`letters` table: one row per
//! `DischargeLetterSent`, never changed), and the QLS indicator of the discharges of a period
//! computed from them (`qls.rs`). The encounters table keeps only the first letter's time and the
//! last letter's items; the indicator scores each letter against its stay's discharge as it
//! stands at the time of the query, so a discharge corrected after its letter is scored right.
use super::{
    qls::{self, Letter, Summary},
    queries::{FOLLOWED, FOLLOWED_SETTINGS},
};
use crate::sql::{insert_rows, SqlRow, Q};
use journey_proto::v1::{event::Payload, Event};
use sqlx::{AnyConnection, AnyPool, Row};
use std::collections::HashMap;

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

/// The followed discharges (as the weekly indicators count them) in `[from, to)`, optionally of
/// one facility or territory (empty: all).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub from: i64,
    pub to: i64,
    pub facility_id: &'a str,
    pub territory: &'a str,
}

/// The QLS indicator of the discharges of `scope`: each scored by its best letter.
pub async fn qls_summary(
    pool: &AnyPool,
    p: &str,
    scope: Scope<'_>,
) -> Result<Summary, sqlx::Error> {
    let mut sql = format!(
        "SELECT e.patient_id, e.encounter_id, e.discharged_at, l.at, l.items, l.handed_to_patient
         FROM {p}encounters e LEFT JOIN {p}letters l
           ON l.patient_id = e.patient_id AND l.encounter_id = e.encounter_id
         WHERE e.discharged_at >= $1 AND e.discharged_at < $2 AND e.{FOLLOWED} AND e.{FOLLOWED_SETTINGS}"
    );
    let mut binds = Vec::new();
    if !scope.facility_id.is_empty() {
        binds.push(scope.facility_id);
        sql += &format!(" AND e.facility_id = ${}", binds.len() + 2);
    }
    if !scope.territory.is_empty() {
        binds.push(scope.territory);
        sql += &format!(" AND e.territory = ${}", binds.len() + 2);
    }
    let mut q = sqlx::query(&sql).bind(scope.from).bind(scope.to);
    for b in binds {
        q = q.bind(b);
    }
    let mut stays: HashMap<(String, String), (i64, Vec<Letter>)> = HashMap::new();
    for r in q.fetch_all(pool).await? {
        let stay = stays
            .entry((r.try_get(0)?, r.try_get(1)?))
            .or_insert_with(|| (0, Vec::new()));
        stay.0 = r.try_get(2)?;
        if let Some(at) = r.try_get::<Option<i64>, _>(3)? {
            stay.1.push(Letter {
                at,
                items: r.try_get(4)?,
                handed_to_patient: r.try_get::<i64, _>(5)? != 0,
            });
        }
    }
    let mut summary = Summary::default();
    for (discharged_at, letters) in stays.values() {
        summary.add(qls::stay_score(*discharged_at, letters));
    }
    Ok(summary)
}
