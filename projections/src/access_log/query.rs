//! `Audit.Accesses`: the records that match the filters, newest first, a page at a time. The
//! patient filter finds the reads of that patient and the list reads that returned them.
use super::record::{self, Record};
use sqlx::AnyPool;

/// What to select (empty fields: no filter).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub patient_id: String,
    pub subject: String,
    pub outcome: String,
    /// From this time (inclusive, Unix microseconds).
    pub from_micros: Option<i64>,
    /// Up to this time (exclusive).
    pub to_micros: Option<i64>,
    /// Where the previous page ended: (time, id) of its last record ([`parse_token`]).
    pub after: Option<(i64, String)>,
    pub limit: i64,
}

pub struct Page {
    pub records: Vec<Record>,
    /// The next page's token ("" when this is the last page).
    pub next_page_token: String,
}

enum Param {
    Text(String),
    Int(i64),
}

/// The token of the page after `r`: its time and id.
fn token_of(r: &Record) -> String {
    format!("{}.{}", r.at_micros, r.id)
}

/// The (time, id) a page token names; `None` when it is not one of ours.
pub fn parse_token(token: &str) -> Option<(i64, String)> {
    let (at, id) = token.split_once('.')?;
    let at = at.parse::<i64>().ok()?;
    uuid::Uuid::parse_str(id).ok()?;
    Some((at, id.to_string()))
}

pub async fn run(pool: &AnyPool, q: &Query) -> Result<Page, sqlx::Error> {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    let next = |p: Param, params: &mut Vec<Param>| {
        params.push(p);
        format!("${}", params.len())
    };
    if !q.patient_id.is_empty() {
        let a = next(Param::Text(q.patient_id.clone()), &mut params);
        let b = next(Param::Text(q.patient_id.clone()), &mut params);
        clauses.push(format!(
            "(patient_id = {a} OR seq IN (SELECT seq FROM journey_access_patients WHERE patient_id = {b}))"
        ));
    }
    if !q.subject.is_empty() {
        let a = next(Param::Text(q.subject.clone()), &mut params);
        clauses.push(format!("subject = {a}"));
    }
    if !q.outcome.is_empty() {
        let a = next(Param::Text(q.outcome.clone()), &mut params);
        clauses.push(format!("outcome = {a}"));
    }
    if let Some(from) = q.from_micros {
        let a = next(Param::Int(from), &mut params);
        clauses.push(format!("at_micros >= {a}"));
    }
    if let Some(to) = q.to_micros {
        let a = next(Param::Int(to), &mut params);
        clauses.push(format!("at_micros < {a}"));
    }
    if let Some((at, id)) = q.after.clone() {
        let a = next(Param::Int(at), &mut params);
        let b = next(Param::Int(at), &mut params);
        let c = next(Param::Text(id), &mut params);
        clauses.push(format!(
            "(at_micros < {a} OR (at_micros = {b} AND id < {c}))"
        ));
    }
    let filter = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "SELECT {} FROM journey_access_log {filter} ORDER BY at_micros DESC, id DESC LIMIT {}",
        record::COLUMNS,
        q.limit + 1
    );
    let mut query = sqlx::query(&sql);
    for p in params {
        query = match p {
            Param::Text(t) => query.bind(t),
            Param::Int(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(pool).await?;
    let mut records = rows
        .iter()
        .map(record::decode)
        .collect::<Result<Vec<_>, _>>()?;
    let more = records.len() as i64 > q.limit;
    records.truncate(q.limit as usize);
    let next_page_token = match (more, records.last()) {
        (true, Some(r)) => token_of(r),
        _ => String::new(),
    };
    Ok(Page {
        records,
        next_page_token,
    })
}
