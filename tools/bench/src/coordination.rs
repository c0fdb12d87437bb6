//! `journey bench coordination` (issue 4): on a log of at least N followed patients (discharged
//! alive to a followed disposition in the last 30 days), in the same run:
//!
//! - (a) the baseline: scan and decode the whole log, as the projection runner reads it;
//! - (b) the rebuild of the coordination read model into SQLite ([`Runner::rebuild`], as
//!   `journey rebuild coordination` runs it), as a ratio to (a);
//! - then `journey up --insecure` on that folder: Coordination.Worklist latency over gRPC
//!   (default filters, overdue only, one territory; page of 50, 30-day window) beside a
//!   do-nothing gRPC call (health check) on the same connection;
//! - the dashboard pages (`/`, `/indicators`) over HTTP, beside the same baseline.
//!
//! The log holds simulated journeys (the simulator of `journey simulate`) over the last 30 days,
//! appended in this process through the log's single writer and the journey rules.
use super::common::{
    dir_bytes, fill_log, machine, open_log, p50_p99, p50_p99_ratio, print_table, rate,
    start_server, status, step, time_calls, time_noop, Row, Ticker, Until, Window,
};
use super::rebuild::scan;
use crate::args::BenchCoordinationArgs;
use anyhow::Context;
use hdrhistogram::Histogram;
use journey_event_log::EventLog;
use journey_log_access::InProcess;
use journey_projections::{
    coordination::{queries, Coordination},
    db,
    runtime::{Progress, Runner},
};
use journey_proto::v1::{
    coordination_client::CoordinationClient, projections_client::ProjectionsClient,
    ProjectionStatusRequest, WorklistRequest,
};
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The batch the projection runner reads the log with.
const READ_BATCH: usize = 2000;
/// The follow-up window of the worklist, in days.
const WINDOW_DAYS: u32 = 30;

/// One `GET path` on a fresh HTTP/1.1 connection; returns the body length.
async fn http_get(addr: &str, path: &str) -> anyhow::Result<usize> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach the status page at {addr}"))?;
    s.set_nodelay(true)?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut buf).await?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header in the answer")?;
    let status_line = String::from_utf8_lossy(&buf[..buf.len().min(16)]).to_string();
    anyhow::ensure!(
        status_line.starts_with("HTTP/1.1 200"),
        "GET {path}: {}",
        String::from_utf8_lossy(&buf[..head_end.min(200)])
    );
    Ok(buf.len() - head_end - 4)
}

/// Waits until every read model of the server on `channel` has folded its log, which must be at
/// `head`.
pub(crate) async fn wait_caught_up(
    channel: &tonic::transport::Channel,
    head: u64,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let s = ProjectionsClient::new(channel.clone())
            .status(ProjectionStatusRequest {})
            .await
            .map_err(status)?
            .into_inner();
        if !s.projections.is_empty() && s.projections.iter().all(|p| p.checkpoint >= s.log_head) {
            // The server may append a few events of its own at start (the alert reactor).
            anyhow::ensure!(
                s.log_head >= head,
                "the server's log head is {}, expected at least {head}",
                s.log_head
            );
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "the server's read models did not catch up with the log in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "bench:   server read models at the log head after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Rebuilt {
    per_sec: f64,
    seconds: f64,
    encounters: i64,
}

/// The real rebuild of the coordination read model into the SQLite file `journey up` uses.
async fn rebuild(dir: &Path, log: &Arc<EventLog>) -> anyhow::Result<Rebuilt> {
    let url = format!("sqlite://{}/read-models.sqlite", dir.display());
    let db = db::connect(&url).await?;
    let (runner, _) = Runner::open(db, Coordination).await?;
    let ticker = Ticker::new(Duration::from_secs(3));
    let started = Instant::now();
    let applied = runner
        .rebuild(&mut InProcess::new(log.clone()), |p: Progress| {
            ticker.tick(p.done, || {
                format!(
                    "coordination → SQLite: {}/{} events ({:.0}%), {:.0} events/s",
                    p.applied,
                    p.target,
                    100.0 * p.applied as f64 / p.target.max(1) as f64,
                    p.events_per_sec
                )
            })
        })
        .await
        .context("rebuild of the coordination read model")?;
    let elapsed = started.elapsed();
    let encounters: i64 = sqlx::Row::try_get(
        &sqlx::query(&format!(
            "SELECT COUNT(*) FROM {}encounters",
            runner.live_prefix()
        ))
        .fetch_one(&runner.db.pool)
        .await?,
        0,
    )?;
    runner.db.pool.close().await;
    Ok(Rebuilt {
        per_sec: rate(applied, elapsed),
        seconds: elapsed.as_secs_f64(),
        encounters,
    })
}

/// How many followed patients the read model in `dir` holds now (the worklist's own count, in
/// process, with its first page of 50), and how long that query took.
async fn followed(dir: &Path) -> anyhow::Result<(usize, Duration)> {
    let url = format!("sqlite://{}/read-models.sqlite", dir.display());
    let db = db::connect(&url).await?;
    let (runner, _) = Runner::open(db, Coordination).await?;
    let filter = queries::Filter {
        window_days: WINDOW_DAYS as i64,
        ..Default::default()
    };
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let page =
        queries::worklist(&runner.db.pool, &runner.live_prefix(), &filter, now, 0, 50).await?;
    let took = started.elapsed();
    runner.db.pool.close().await;
    Ok((page.total as usize, took))
}

pub async fn run(args: BenchCoordinationArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.patients > 0 && args.calls > 0,
        "--patients and --calls must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let window = Window::last_days(args.seed, WINDOW_DAYS);
    // A first guess of simulated patients per followed patient; corrected from the read model.
    let mut goal = args.patients + args.patients / 2 + 50;
    let mut next_patient = 0;
    let (head, scan_rate, rebuilt, followed_n, inproc) = loop {
        step(&format!(
            "appending simulated patients {next_patient}..{goal} ({WINDOW_DAYS} days, seed {})",
            args.seed
        ));
        let log = open_log(dir.path()).await?;
        let filled = fill_log(&log, window, next_patient, Until::Patients(goal)).await?;
        next_patient = filled.next_patient;
        let head = filled.head;
        step("(a) baseline: scan and decode the whole log (best of 2)");
        let scan_rate = scan(&log, head).await?.max(scan(&log, head).await?);
        step("(b) rebuild of the coordination read model into SQLite");
        let rebuilt = rebuild(dir.path(), &log).await?;
        log.close().await?;
        drop(log);
        let (n, took) = followed(dir.path()).await?;
        eprintln!(
            "bench:   {n} followed patients (last {WINDOW_DAYS} days) from {next_patient} simulated patients"
        );
        if n as u64 >= args.patients {
            break (head, scan_rate, rebuilt, n, took);
        }
        let per_patient = (n as f64 / next_patient as f64).max(0.05);
        goal = next_patient + ((args.patients - n as u64) as f64 / per_patient * 1.05) as u64 + 10;
    };
    let log_bytes = dir_bytes(dir.path());

    step("starting the server under test (journey up --insecure) on that folder");
    let server = start_server(dir.path(), &[])?;
    let channel = server.channel().await?;
    // The readmission read model (for the dashboard's indicators) is folded by the server itself.
    wait_caught_up(&channel, head).await?;

    let calls = args.calls;
    let budget = Duration::from_secs(args.budget_secs);
    let coordination = CoordinationClient::new(channel.clone());

    step(&format!(
        "(c) baseline: do-nothing gRPC call (health check), {calls} calls"
    ));
    let noop = time_noop(&channel, calls, budget).await?;

    let base = WorklistRequest {
        page_size: 50,
        window_days: WINDOW_DAYS,
        ..Default::default()
    };
    let first = coordination
        .clone()
        .worklist(base.clone())
        .await
        .map_err(status)?
        .into_inner();
    let territory = first
        .items
        .first()
        .map(|i| i.territory.clone())
        .unwrap_or_else(|| "CPTS-NORD".into());
    let mut series: Vec<(String, Histogram<u64>, String)> = Vec::new();
    for (label, request) in [
        ("Worklist, default filters".to_string(), base.clone()),
        (
            "Worklist, overdue only".to_string(),
            WorklistRequest {
                overdue_only: true,
                ..base.clone()
            },
        ),
        (
            format!("Worklist, territory {territory}"),
            WorklistRequest {
                territory: territory.clone(),
                ..base.clone()
            },
        ),
    ] {
        step(&format!("(d) {label}, up to {calls} calls"));
        let r = coordination
            .clone()
            .worklist(request.clone())
            .await
            .map_err(status)?
            .into_inner();
        let note = format!("{} items of {} matching", r.items.len(), r.total);
        let h = time_calls(calls, budget, || {
            let mut c = coordination.clone();
            let request = request.clone();
            async move {
                c.worklist(request).await.map_err(status)?;
                Ok(())
            }
        })
        .await?;
        series.push((label, h, note));
    }

    let mut pages: Vec<(String, Histogram<u64>, String)> = Vec::new();
    for path in ["/", "/indicators"] {
        step(&format!("(e) dashboard GET {path}, up to {calls} requests"));
        let bytes = http_get(&server.http, path).await?;
        let http = server.http.clone();
        let h = time_calls(calls, budget, || {
            let http = http.clone();
            async move {
                http_get(&http, path).await?;
                Ok(())
            }
        })
        .await?;
        pages.push((
            format!("dashboard GET {path}"),
            h,
            format!("{bytes} bytes of HTML; new connection per request"),
        ));
    }
    drop(server);

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {head} events from {next_patient} simulated patients over the last {WINDOW_DAYS} days ({:.0} bytes/event on disk, log + read models); read model: {} encounters, {followed_n} followed patients (discharged in the last {WINDOW_DAYS} days; the worklist query in process, count and first page: {:.0} ms)",
        log_bytes as f64 / head as f64,
        rebuilt.encounters,
        inproc.as_secs_f64() * 1000.0
    );
    println!();
    let rows = vec![
        Row {
            name: "(a) scan + decode the log (baseline)".into(),
            figure: format!("{scan_rate:.0}"),
            ratio: "1.00".into(),
            note: format!("batches of {READ_BATCH}, as the projection reads"),
        },
        Row {
            name: "(b) rebuild coordination → SQLite".into(),
            figure: format!("{:.0}", rebuilt.per_sec),
            ratio: format!("{:.3}", rebuilt.per_sec / scan_rate),
            note: format!(
                "{:.1} s; goal ≥ 100000/s: {}",
                rebuilt.seconds,
                if rebuilt.per_sec >= 100_000.0 {
                    "met"
                } else {
                    "NOT met"
                }
            ),
        },
    ];
    print_table(["rebuild", "events/s", "ratio to (a)", "notes"], &rows);
    println!();
    let mut rows = vec![Row {
        name: "(c) do-nothing gRPC call (baseline)".into(),
        figure: p50_p99(&noop),
        ratio: "1 / 1".into(),
        note: format!("{} calls", noop.len()),
    }];
    for (name, h, note) in series.iter().chain(pages.iter()) {
        rows.push(Row {
            name: name.clone(),
            figure: p50_p99(h),
            ratio: p50_p99_ratio(h, &noop, 0),
            note: format!("{note}; {} calls", h.len()),
        });
    }
    print_table(["query", "p50 / p99", "ratio to (c)", "notes"], &rows);
    Ok(())
}
