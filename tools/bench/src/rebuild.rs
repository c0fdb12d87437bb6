//! `journey bench rebuild`: how fast the readmission read model is rebuilt from the log, into
//! SQLite and PostgreSQL, against the baseline of scanning and decoding the same log (the part of
//! a rebuild that is not the fold), measured in the same run.
//!
//! The log is filled in this process with simulated journeys; the rebuild is the real one
//! ([`Runner::rebuild`], as `journey rebuild readmission` runs it inside `journey up`): fresh
//! tables, the fold in batches, then the swap.
use super::common::{
    count_rows, dir_bytes, fill_log, machine, open_log, print_table, rate, rate_row, step, FreshPg,
    Row, Ticker, Until, Window,
};
use crate::args::BenchRebuildArgs;
use anyhow::Context;
use journey_event_log::EventLog;
use journey_log_access::{EventSource, InProcess};
use journey_projections::{
    db,
    readmission::Readmission,
    runtime::{Progress, Projection, Runner},
};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// The batch the projection runner reads the log with.
pub(crate) const READ_BATCH: usize = 2000;

/// Reads and decodes every event as the runner's source does; returns events/s.
pub(crate) async fn scan(log: &Arc<EventLog>, head: u64) -> anyhow::Result<f64> {
    let mut source = InProcess::new(log.clone());
    let started = Instant::now();
    let mut from = 1;
    let mut count = 0u64;
    let mut with_payload = 0u64;
    while from <= head {
        let events = source.range(from, head, READ_BATCH).await?;
        anyhow::ensure!(!events.is_empty(), "the log ended at {from} before {head}");
        count += events.len() as u64;
        with_payload += events.iter().filter(|e| e.payload.is_some()).count() as u64;
        from = events.last().map_or(head + 1, |e| e.position + 1);
    }
    anyhow::ensure!(
        count == head && with_payload == count,
        "scan read {count} events ({with_payload} with a payload), expected {head}"
    );
    Ok(rate(count, started.elapsed()))
}

/// The baseline's row in the tables: scanning the log at `scan_rate` events/s.
pub(crate) fn scan_row(name: &str, scan_rate: f64) -> Row {
    Row {
        name: name.into(),
        figure: format!("{scan_rate:.0}"),
        ratio: "1.00".into(),
        note: format!("batches of {READ_BATCH}, as the projection reads"),
    }
}

/// What a rebuild took, and the rows of the table counted after it.
pub(crate) struct Rebuilt {
    pub per_sec: f64,
    pub seconds: f64,
    pub table_rows: i64,
}

impl Rebuilt {
    /// Its row against the scan at `scan_rate`: its time and whether it met `goal` events/s.
    pub fn row(&self, name: &str, scan_rate: f64, goal: u32) -> Row {
        let met = if self.per_sec >= f64::from(goal) {
            "met"
        } else {
            "NOT met"
        };
        let note = format!("{:.1} s; goal ≥ {goal}/s: {met}", self.seconds);
        rate_row(name, self.per_sec, scan_rate, note)
    }
}

/// The real rebuild of `projection` into `url` ([`Runner::rebuild`]), with a progress line
/// headed `label` every few seconds; then counts the rows of its `table`.
pub(crate) async fn rebuild_into<P: Projection>(
    url: &str,
    projection: P,
    table: &str,
    log: &Arc<EventLog>,
    label: &str,
) -> anyhow::Result<Rebuilt> {
    let db = db::connect(url).await?;
    let (runner, _) = Runner::open(db, projection).await?;
    let ticker = Ticker::new(Duration::from_secs(3));
    let started = Instant::now();
    let applied = runner
        .rebuild(&mut InProcess::new(log.clone()), |p: Progress| {
            ticker.tick(p.done, || {
                format!(
                    "{label}: {}/{} events ({:.0}%), {:.0} events/s",
                    p.applied,
                    p.target,
                    100.0 * p.applied as f64 / p.target.max(1) as f64,
                    p.events_per_sec
                )
            })
        })
        .await
        .with_context(|| format!("rebuild into {label}"))?;
    let elapsed = started.elapsed();
    let table_rows = count_rows(&runner, table).await?;
    runner.db.pool.close().await;
    Ok(Rebuilt {
        per_sec: rate(applied, elapsed),
        seconds: elapsed.as_secs_f64(),
        table_rows,
    })
}

pub async fn run(args: BenchRebuildArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let dir = tempfile::tempdir()?;
    let window = Window::last_days(args.sim.seed, args.days);
    step(&format!(
        "filling a fresh log with ≥ {} simulated events ({} days, seed {})",
        args.events, args.days, args.sim.seed
    ));
    let log = open_log(&dir.path().join("log")).await?;
    let filled = fill_log(&log, window, 0, Until::Events(args.events)).await?;
    let head = filled.head;
    let log_bytes = dir_bytes(&dir.path().join("log"));

    step("(a) baseline: scan and decode the whole log (best of 2)");
    let scan_rate = scan(&log, head).await?.max(scan(&log, head).await?);

    step("(b) rebuild of the readmission read model into SQLite");
    let sqlite_url = format!("sqlite://{}/readmission.sqlite", dir.path().display());
    let sqlite = rebuild_into(&sqlite_url, Readmission, "index_stays", &log, "SQLite").await?;

    let postgres = if args.no_postgres {
        None
    } else {
        step("(c) rebuild of the readmission read model into PostgreSQL (fresh database)");
        let fresh = FreshPg::create(&args.database_url, "rebuild").await?;
        let result = rebuild_into(&fresh.url, Readmission, "index_stays", &log, "PostgreSQL").await;
        fresh.drop_database().await?;
        Some(result?)
    };
    log.close().await?;

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {head} events from {} simulated patients over {} days ({:.0} bytes/event on disk); read model: {} index stays",
        filled.next_patient,
        args.days,
        log_bytes as f64 / head as f64,
        sqlite.table_rows
    );
    println!();
    let mut rows = vec![
        scan_row("(a) scan + decode the log (baseline)", scan_rate),
        sqlite.row("(b) rebuild readmission → SQLite", scan_rate, 150_000),
    ];
    if let Some(pg) = &postgres {
        let mut row = pg.row("(c) rebuild readmission → PostgreSQL", scan_rate, 75_000);
        row.note += &format!(
            "; {} index stays{}",
            pg.table_rows,
            if pg.table_rows == sqlite.table_rows {
                " (= SQLite)"
            } else {
                " (≠ SQLite!)"
            }
        );
        rows.push(row);
    }
    print_table(["measurement", "events/s", "ratio to (a)", "notes"], &rows);
    if let Some(pg) = &postgres {
        anyhow::ensure!(
            pg.table_rows == sqlite.table_rows,
            "SQLite and PostgreSQL disagree on the number of index stays ({} vs {}): a fold bug",
            sqlite.table_rows,
            pg.table_rows
        );
    }
    Ok(())
}
