//! `journey bench rebuild`: how fast the readmission read model is rebuilt from the log, into
//! SQLite and PostgreSQL, against the baseline of scanning and decoding the same log (the part of
//! a rebuild that is not the fold), measured in the same run.
//!
//! The log is filled in this process with simulated journeys; the rebuild is the real one
//! ([`Runner::rebuild`], as `journey rebuild readmission` runs it inside `journey up`): fresh
//! tables, the fold in batches, then the swap.
use super::common::{
    dir_bytes, fill_log, machine, open_log, print_table, rate, step, FreshPg, Row, Ticker, Until,
    Window,
};
use crate::args::BenchRebuildArgs;
use anyhow::Context;
use journey_event_log::EventLog;
use journey_log_access::{EventSource, InProcess};
use journey_projections::{
    db,
    readmission::Readmission,
    runtime::{Progress, Runner},
};
use sqlx::Row as _;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// The batch the projection runner reads the log with.
const READ_BATCH: usize = 2000;

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

struct Rebuilt {
    per_sec: f64,
    stays: i64,
    seconds: f64,
}

/// The real rebuild into `url`, with a progress line every few seconds.
async fn rebuild_into(url: &str, log: &Arc<EventLog>, label: &str) -> anyhow::Result<Rebuilt> {
    let db = db::connect(url).await?;
    let (runner, _) = Runner::open(db, Readmission).await?;
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
    let stays: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) FROM {}index_stays",
        runner.live_prefix()
    ))
    .fetch_one(&runner.db.pool)
    .await?
    .try_get(0)?;
    runner.db.pool.close().await;
    Ok(Rebuilt {
        per_sec: rate(applied, elapsed),
        stays,
        seconds: elapsed.as_secs_f64(),
    })
}

pub async fn run(args: BenchRebuildArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let dir = tempfile::tempdir()?;
    let window = Window::last_days(args.seed, args.days);
    step(&format!(
        "filling a fresh log with ≥ {} simulated events ({} days, seed {})",
        args.events, args.days, args.seed
    ));
    let log = open_log(&dir.path().join("log")).await?;
    let filled = fill_log(&log, window, 0, Until::Events(args.events)).await?;
    let head = filled.head;
    let log_bytes = dir_bytes(&dir.path().join("log"));

    step("(a) baseline: scan and decode the whole log (best of 2)");
    let scan_rate = scan(&log, head).await?.max(scan(&log, head).await?);

    step("(b) rebuild of the readmission read model into SQLite");
    let sqlite_url = format!("sqlite://{}/readmission.sqlite", dir.path().display());
    let sqlite = rebuild_into(&sqlite_url, &log, "SQLite").await?;

    let postgres = if args.no_postgres {
        None
    } else {
        step("(c) rebuild of the readmission read model into PostgreSQL (fresh database)");
        let fresh = FreshPg::create(&args.database_url, "rebuild").await?;
        let result = rebuild_into(&fresh.url, &log, "PostgreSQL").await;
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
        sqlite.stays
    );
    println!();
    let mut rows = vec![
        Row {
            name: "(a) scan + decode the log (baseline)".into(),
            figure: format!("{scan_rate:.0}"),
            ratio: "1.00".into(),
            note: format!("batches of {READ_BATCH}, as the projection reads"),
        },
        Row {
            name: "(b) rebuild readmission → SQLite".into(),
            figure: format!("{:.0}", sqlite.per_sec),
            ratio: format!("{:.3}", sqlite.per_sec / scan_rate),
            note: format!(
                "{:.1} s; goal ≥ 150000/s: {}",
                sqlite.seconds,
                if sqlite.per_sec >= 150_000.0 {
                    "met"
                } else {
                    "NOT met"
                }
            ),
        },
    ];
    if let Some(pg) = &postgres {
        rows.push(Row {
            name: "(c) rebuild readmission → PostgreSQL".into(),
            figure: format!("{:.0}", pg.per_sec),
            ratio: format!("{:.3}", pg.per_sec / scan_rate),
            note: format!(
                "{:.1} s; goal ≥ 75000/s: {}; {} index stays{}",
                pg.seconds,
                if pg.per_sec >= 75_000.0 {
                    "met"
                } else {
                    "NOT met"
                },
                pg.stays,
                if pg.stays == sqlite.stays {
                    " (= SQLite)"
                } else {
                    " (≠ SQLite!)"
                }
            ),
        });
    }
    print_table(["measurement", "events/s", "ratio to (a)", "notes"], &rows);
    if let Some(pg) = &postgres {
        anyhow::ensure!(
            pg.stays == sqlite.stays,
            "SQLite and PostgreSQL disagree on the number of index stays ({} vs {}): a fold bug",
            sqlite.stays,
            pg.stays
        );
    }
    Ok(())
}
