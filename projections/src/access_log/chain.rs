//! The access records as a hash chain, like the event log's: each record has a position (`seq`,
//! from 1), carries the previous record's hash (`prev_hash`, zeros for the first) and its own
//! (`hash`: BLAKE3 of the previous hash and the record's fields, each length-prefixed). A record
//! altered, removed or slipped in without its place in the chain breaks it; the head (position,
//! hash) is anchored outside the database (`anchor.rs`), so that a cut tail is seen too.
//!
//! Writers take the head and add after it in one transaction: in one process one at a time (the
//! caller's lock), across processes on PostgreSQL under an advisory transaction lock; on SQLite
//! the one writer of the file, and a position taken twice is refused by the unique index on
//! `seq`, then retried.
use super::record::{self, Record};
use journey_proto::hex::{hex, unhex};
use sqlx::{AnyPool, Row as _};
use std::time::Duration;

/// A chain hash (BLAKE3).
pub type Hash = [u8; 32];

/// The advisory lock of the access log's head on PostgreSQL.
const HEAD_LOCK: i64 = 4_242_424_243;
/// Records checked per query while verifying.
const PAGE: i64 = 1_000;

const GENESIS: Hash = [0; 32];

fn put(h: &mut blake3::Hasher, field: &[u8]) {
    h.update(&(field.len() as u64).to_le_bytes());
    h.update(field);
}

/// The hash of `r` placed at `seq` after a record whose hash is `prev`.
fn hash_of(r: &Record, seq: i64, prev: &Hash) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(prev);
    h.update(&seq.to_le_bytes());
    h.update(&r.at_micros.to_le_bytes());
    h.update(&r.calls.to_le_bytes());
    for field in [
        &r.id,
        &r.subject,
        &r.role,
        &r.organisation,
        &r.call,
        &r.patient_id,
        &r.purpose,
        &r.outcome,
        &r.detail,
        &r.peer,
        &r.patients_text(),
    ] {
        put(&mut h, field.as_bytes());
    }
    *h.finalize().as_bytes()
}

fn to_hash(text: &str) -> Option<Hash> {
    unhex(text).and_then(|b| b.as_slice().try_into().ok())
}

/// Adds `rows` after the chain's head, in one transaction.
pub async fn append(pool: &AnyPool, mut rows: Vec<Record>) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        match try_append(pool, &mut rows).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 && taken(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Another process took the position (SQLite files shared by processes) or holds the writer.
fn taken(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            d.is_unique_violation()
                || d.message().contains("locked")
                || d.message().contains("busy")
        }
        _ => false,
    }
}

async fn try_append(pool: &AnyPool, rows: &mut [Record]) -> Result<(), sqlx::Error> {
    let mut tx = crate::db::begin_write(pool).await?;
    if tx.backend_name().eq_ignore_ascii_case("postgresql") {
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({HEAD_LOCK})"))
            .execute(&mut *tx)
            .await?;
    }
    let head = sqlx::query(
        "SELECT seq, hash FROM journey_access_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (mut seq, mut prev) = match head {
        Some(r) => (
            r.try_get::<i64, _>(0)?,
            to_hash(&r.try_get::<String, _>(1)?).unwrap_or(GENESIS),
        ),
        None => (0, GENESIS),
    };
    for r in rows.iter_mut() {
        seq += 1;
        let hash = hash_of(r, seq, &prev);
        r.seq = Some(seq);
        r.prev_hash = hex(&prev);
        r.hash = hex(&hash);
        prev = hash;
        sqlx::query(
            "INSERT INTO journey_access_log (id, seq, at_micros, subject, role, organisation, call, patient_id, purpose, outcome, detail, peer, calls, patients, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&r.id)
        .bind(seq)
        .bind(r.at_micros)
        .bind(&r.subject)
        .bind(&r.role)
        .bind(&r.organisation)
        .bind(&r.call)
        .bind(&r.patient_id)
        .bind(&r.purpose)
        .bind(&r.outcome)
        .bind(&r.detail)
        .bind(&r.peer)
        .bind(r.calls)
        .bind(r.patients_text())
        .bind(&r.prev_hash)
        .bind(&r.hash)
        .execute(&mut *tx)
        .await?;
        for chunk in r.patients.chunks(200) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO journey_access_patients (patient_id, seq) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for p in chunk {
                q = q.bind(p).bind(seq);
            }
            q.execute(&mut *tx).await?;
        }
    }
    tx.commit().await
}

/// The chain's head: (position, hash); (0, zeros) when empty.
pub async fn head(pool: &AnyPool) -> Result<(u64, Hash), sqlx::Error> {
    let r = sqlx::query(
        "SELECT seq, hash FROM journey_access_log WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(match r {
        Some(r) => (
            r.try_get::<i64, _>(0)? as u64,
            to_hash(&r.try_get::<String, _>(1)?).unwrap_or(GENESIS),
        ),
        None => (0, GENESIS),
    })
}

/// Whether the chain still holds `anchor` (a position, with its hash); what is wrong if not.
pub async fn holds(pool: &AnyPool, anchor: (u64, Hash)) -> Result<(), String> {
    let anchor = Anchor {
        position: anchor.0,
        hash: anchor.1,
    };
    let (head, _) = head(pool)
        .await
        .map_err(|e| format!("cannot read the access log: {e}"))?;
    if anchor.position > head {
        return Err(truncated(anchor.position, head));
    }
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT hash FROM journey_access_log WHERE seq = $1")
            .bind(anchor.position as i64)
            .fetch_optional(pool)
            .await
            .map_err(|e| format!("cannot read the access log: {e}"))?;
    match stored.flatten().as_deref().and_then(to_hash) {
        Some(h) if h == anchor.hash => Ok(()),
        Some(h) => Err(format!(
            "record {} has hash {} but {} was anchored: the access log was rewritten",
            anchor.position,
            hex(&h),
            hex(&anchor.hash)
        )),
        None => Err(format!(
            "record {}, whose hash was anchored, is missing from the access log",
            anchor.position
        )),
    }
}

/// An anchored head: a position and its hash.
struct Anchor {
    position: u64,
    hash: Hash,
}

fn truncated(anchored: u64, head: u64) -> String {
    format!(
        "the access log is truncated: its head was anchored at record {anchored} but it ends at record {head}; records {} to {anchored} are missing",
        head + 1
    )
}

/// What verifying the access log found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verified {
    pub ok: bool,
    /// Records whose link and hash were checked.
    pub checked: u64,
    pub head_seq: u64,
    pub head_hash_hex: String,
    /// The first record found wrong or missing (0: none, or a record outside the chain).
    pub first_bad_seq: u64,
    pub problem: String,
    /// Records with no place in the chain (forged, or written before the chain existed).
    pub unchained: u64,
    /// The anchored head checked (0: none).
    pub anchor_seq: u64,
    pub anchor_hash_hex: String,
    pub truncated: bool,
}

impl Verified {
    fn fail(&mut self, seq: u64, problem: String) {
        add_problem(
            (&mut self.ok, &mut self.first_bad_seq, &mut self.problem),
            seq,
            problem,
        );
    }
}

/// A verification's report, as (ok, where the first problem is, what the problems are), told of
/// a problem found `at`: the first one says where; the later ones are added to its text.
pub fn add_problem(report: (&mut bool, &mut u64, &mut String), at: u64, problem: String) {
    let (ok, first_bad, problems) = report;
    if *ok {
        *ok = false;
        *first_bad = at;
        *problems = problem;
    } else {
        *problems = format!("{problems}; also: {problem}");
    }
}

/// Walks the whole chain, then looks for rows outside it and checks the anchor.
pub async fn verify(pool: &AnyPool, anchor: Option<(u64, Hash)>) -> Result<Verified, sqlx::Error> {
    let anchor = anchor.map(|(position, hash)| Anchor { position, hash });
    let anchor = anchor.as_ref();
    let mut out = Verified {
        ok: true,
        ..Default::default()
    };
    let (mut last, mut prev) = (0i64, GENESIS);
    let mut anchored_hash = None;
    'pages: loop {
        let sql = format!(
            "SELECT {} FROM journey_access_log WHERE seq > $1 ORDER BY seq LIMIT {PAGE}",
            record::COLUMNS
        );
        let rows = sqlx::query(&sql).bind(last).fetch_all(pool).await?;
        if rows.is_empty() {
            break;
        }
        let records = rows
            .iter()
            .map(record::decode)
            .collect::<Result<Vec<_>, _>>()?;
        let indexed = patients_indexed(pool, last, records.last().and_then(|r| r.seq)).await?;
        for r in &records {
            let seq = r.seq.unwrap_or_default();
            if seq != last + 1 {
                let missing = if seq == last + 2 {
                    format!("record {} is missing", last + 1)
                } else {
                    format!("records {} to {} are missing", last + 1, seq - 1)
                };
                out.fail(
                    (last + 1) as u64,
                    format!("{missing} (removed from the access log)"),
                );
                break 'pages;
            }
            if to_hash(&r.prev_hash) != Some(prev) {
                out.fail(
                    seq as u64,
                    format!("record {seq} does not follow record {last}: it names another previous record (inserted or replaced)"),
                );
                break 'pages;
            }
            let hash = hash_of(r, seq, &prev);
            if to_hash(&r.hash) != Some(hash) {
                out.fail(
                    seq as u64,
                    format!("record {seq} was altered: its fields no longer match its hash"),
                );
                break 'pages;
            }
            let index = indexed.get(&seq).cloned().unwrap_or_default();
            if index != r.patients {
                out.fail(
                    seq as u64,
                    format!("record {seq}: the patients indexed for it are not the ones it lists (the index was altered)"),
                );
                break 'pages;
            }
            if anchor.is_some_and(|a| a.position == seq as u64) {
                anchored_hash = Some(hash);
            }
            out.checked += 1;
            (last, prev) = (seq, hash);
        }
    }
    let (head, head_hash) = head(pool).await?;
    out.head_seq = head;
    out.head_hash_hex = hex(&head_hash);
    let outside = sqlx::query(
        "SELECT id, at_micros FROM journey_access_log WHERE seq IS NULL ORDER BY at_micros LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    if let Some(first) = outside {
        let unchained: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM journey_access_log WHERE seq IS NULL")
                .fetch_one(pool)
                .await?;
        out.unchained = unchained as u64;
        let id: String = first.try_get(0)?;
        out.fail(
            0,
            format!(
                "{unchained} record(s) have no place in the chain (inserted outside the services, or written before the access log was chained); the first is {id}"
            ),
        );
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM journey_access_patients WHERE seq > $1 OR seq NOT IN (SELECT seq FROM journey_access_log WHERE seq IS NOT NULL)",
    )
    .bind(head as i64)
    .fetch_one(pool)
    .await?;
    if orphans > 0 {
        out.fail(
            0,
            format!(
                "{orphans} patient index row(s) name no record (inserted outside the services)"
            ),
        );
    }
    if let Some(a) = anchor {
        out.anchor_seq = a.position;
        out.anchor_hash_hex = hex(&a.hash);
        if a.position > head {
            out.truncated = true;
            out.fail(head + 1, truncated(a.position, head));
        } else if anchored_hash.is_some_and(|h| h != a.hash) {
            out.fail(
                a.position,
                format!(
                    "record {} is not the one anchored: the access log was rewritten from there",
                    a.position
                ),
            );
        }
    }
    Ok(out)
}

/// The patients indexed for the records after `after` up to `to`, per record, sorted.
async fn patients_indexed(
    pool: &AnyPool,
    after: i64,
    to: Option<i64>,
) -> Result<std::collections::HashMap<i64, Vec<String>>, sqlx::Error> {
    let mut out: std::collections::HashMap<i64, Vec<String>> = Default::default();
    let rows = sqlx::query(
        "SELECT seq, patient_id FROM journey_access_patients WHERE seq > $1 AND seq <= $2",
    )
    .bind(after)
    .bind(to.unwrap_or(after))
    .fetch_all(pool)
    .await?;
    for r in rows {
        out.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}
