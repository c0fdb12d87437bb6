//! `journey bench coordination` (issue 4): on a log of at least N followed patients (discharged
//! alive to a followed disposition in the last 30 days), in the same run:
//!
//! - (a) the baseline: scan and decode the whole log, as the projection runner reads it;
//! - (b) the rebuild of the coordination read model into SQLite ([`Runner::rebuild`], as
//!   `journey rebuild coordination` runs it), as a ratio to (a);
//! - then `journey up --insecure` on that folder: Coordination.Worklist latency over gRPC
//!   (default filters, overdue only, one territory; page of 50, 30-day window) beside a
//!   do-nothing gRPC call (health check) on the same connection;
//!   and with the other filters (alert severity, part of a facility's name, a referent);
//! - the dashboard pages over HTTP (the worklist, filtered, a patient search, `/indicators` with
//!   the QLS indicator) beside a do-nothing HTTP request (the style sheet), each on a new
//!   connection;
//! - an action's round trip (`round_trip.rs`): a contact appended, then the worklist page read
//!   until it shows it;
//! - `/indicators` read every 50 ms while first contacts are appended (`live.rs`): the figures'
//!   read models move on under the reader.
//!
//! The log holds simulated journeys (the simulator of `journey simulate`) over the last 30 days,
//! appended in this process through the log's single writer and the journey rules.
use super::common::{
    answer_and_time, baseline_row, dir_bytes, fill_log, latency_row, machine, open_log,
    print_table, read_models_url, start_server, status, step, time_calls, time_noop, Until, Window,
};
use super::rebuild::{rebuild_into, scan, scan_row};

mod live;
mod round_trip;
use crate::args::BenchCoordinationArgs;
use anyhow::Context;
use hdrhistogram::Histogram;
use journey_projections::{
    coordination::{queries, Coordination},
    db,
    runtime::Runner,
};
use journey_proto::v1::{
    coordination_client::CoordinationClient, projections_client::ProjectionsClient,
    ProjectionStatusRequest, Severity, WorklistRequest,
};
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// How many followed patients the read model in `dir` holds now (the worklist's own count, in
/// process, with its first page of 50), and how long that query took.
async fn followed(dir: &Path) -> anyhow::Result<(usize, Duration)> {
    let db = db::connect(&read_models_url(dir)).await?;
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
    let window = Window::last_days(args.sim.seed, WINDOW_DAYS);
    // A first guess of simulated patients per followed patient; corrected from the read model.
    let mut goal = args.patients + args.patients / 2 + 50;
    let mut next_patient = 0;
    let (head, scan_rate, rebuilt, followed_n, inproc) = loop {
        step(&format!(
            "appending simulated patients {next_patient}..{goal} ({WINDOW_DAYS} days, seed {})",
            args.sim.seed
        ));
        let log = open_log(dir.path()).await?;
        let filled = fill_log(&log, window, next_patient, Until::Patients(goal)).await?;
        next_patient = filled.next_patient;
        let head = filled.head;
        step("(a) baseline: scan and decode the whole log (best of 2)");
        let scan_rate = scan(&log, head).await?.max(scan(&log, head).await?);
        step("(b) rebuild of the coordination read model into SQLite");
        let url = read_models_url(dir.path());
        let label = "coordination → SQLite";
        let rebuilt = rebuild_into(&url, Coordination, "encounters", &log, label).await?;
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
    let top = first.items.first();
    let territory = top
        .map(|i| i.territory.clone())
        .unwrap_or_else(|| "CPTS-NORD".into());
    // A part of a facility's name, as a reader types it in the filter.
    let facility_part: String = top
        .map(|i| i.facility_name.chars().skip(2).take(6).collect())
        .unwrap_or_default();
    let referent = first
        .items
        .iter()
        .flat_map(|i| i.referents.iter())
        .next()
        .map(|r| r.professional_id.clone())
        .unwrap_or_default();
    // A family name of the list, as a coordinator types it in the search box.
    let family: String = top
        .and_then(|i| i.display_name.split(' ').next())
        .unwrap_or("MARTIN")
        .to_lowercase();
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
        (
            "Worklist, alerts high or worse".to_string(),
            WorklistRequest {
                min_alert_severity: Severity::High as i32,
                ..base.clone()
            },
        ),
        (
            format!("Worklist, facility \"{facility_part}\""),
            WorklistRequest {
                facility_id: facility_part.clone(),
                ..base.clone()
            },
        ),
        (
            format!("Worklist, referent {referent}"),
            WorklistRequest {
                referent_id: referent.clone(),
                ..base.clone()
            },
        ),
        (
            "Worklist, overdue, territory, page 3".to_string(),
            WorklistRequest {
                overdue_only: true,
                territory: territory.clone(),
                page_token: "100".into(),
                ..base.clone()
            },
        ),
    ] {
        step(&format!("(d) {label}, up to {calls} calls"));
        let (r, h) = answer_and_time(calls, budget, || {
            let mut c = coordination.clone();
            let request = request.clone();
            async move { Ok(c.worklist(request).await.map_err(status)?.into_inner()) }
        })
        .await?;
        let note = format!("{} items of {} matching", r.items.len(), r.total);
        series.push((label, h, note));
    }

    step(&format!(
        "(e) baseline: do-nothing HTTP request (GET /style.css), {calls} requests"
    ));
    let http = server.http.clone();
    let http_noop = time_calls(calls, budget, || {
        let http = http.clone();
        async move { http_get(&http, "/style.css").await.map(drop) }
    })
    .await?;
    let mut pages: Vec<(String, Histogram<u64>, String)> = Vec::new();
    for path in [
        "/".to_string(),
        format!("/?overdue=1&territory={territory}"),
        format!("/search?q={family}"),
        "/indicators".to_string(),
    ] {
        let path = path.as_str();
        step(&format!("(f) dashboard GET {path}, up to {calls} requests"));
        let http = server.http.clone();
        let (bytes, h) = answer_and_time(calls, budget, || {
            let http = http.clone();
            async move { http_get(&http, path).await }
        })
        .await?;
        pages.push((
            format!("dashboard GET {path}"),
            h,
            format!("{bytes} bytes of HTML; new connection per request"),
        ));
    }

    let log = server.log_client().await?;
    step(&format!(
        "(g) an action's round trip: a contact appended, then the worklist page read until it shows it, up to {calls} times"
    ));
    let (round_trips, polls) =
        round_trip::measure(&coordination, &log, &base, calls, budget).await?;
    step(&format!(
        "(h) dashboard GET /indicators while first contacts are appended, up to {calls} requests"
    ));
    let patients: Vec<String> = first.items.iter().map(|i| i.patient_id.clone()).collect();
    let (live_indicators, appended) = live::measure(&log, &patients, calls, budget, || {
        let http = server.http.clone();
        async move { http_get(&http, "/indicators").await }
    })
    .await?;
    pages.push((
        "dashboard GET /indicators, while the log grows".to_string(),
        live_indicators,
        format!("a request every 50 ms; {appended} contacts appended meanwhile (20/s)"),
    ));

    drop(server);

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {head} events from {next_patient} simulated patients over the last {WINDOW_DAYS} days ({:.0} bytes/event on disk, log + read models); read model: {} encounters, {followed_n} followed patients (discharged in the last {WINDOW_DAYS} days; the worklist query in process, count and first page: {:.0} ms)",
        log_bytes as f64 / head as f64,
        rebuilt.table_rows,
        inproc.as_secs_f64() * 1000.0
    );
    println!();
    let rows = [
        scan_row("(a) scan + decode the log (baseline)", scan_rate),
        rebuilt.row("(b) rebuild coordination → SQLite", scan_rate, 100_000),
    ];
    print_table(["rebuild", "events/s", "ratio to (a)", "notes"], &rows);
    println!();
    let mut rows = vec![baseline_row(
        "(c) do-nothing gRPC call (baseline)",
        &noop,
        format!("{} calls", noop.len()),
    )];
    for (name, h, note) in &series {
        rows.push(latency_row(
            name,
            h,
            &noop,
            0,
            format!("{note}; {} calls", h.len()),
        ));
    }
    rows.push(latency_row(
        "(g) action round trip: contact appended → shown by the worklist page",
        &round_trips,
        &noop,
        0,
        format!(
            "{} round trips; {polls} page reads in all (the wait is read by reading the page)",
            round_trips.len()
        ),
    ));
    print_table(["query", "p50 / p99", "ratio to (c)", "notes"], &rows);
    println!();
    let mut rows = vec![baseline_row(
        "(e) do-nothing HTTP request: GET /style.css (baseline)",
        &http_noop,
        format!("{} requests; new connection per request", http_noop.len()),
    )];
    for (name, h, note) in &pages {
        rows.push(latency_row(
            name,
            h,
            &http_noop,
            0,
            format!("{note}; {} calls", h.len()),
        ));
    }
    print_table(["page", "p50 / p99", "ratio to (e)", "notes"], &rows);
    if args.keep {
        eprintln!(
            "bench: the folder is kept: {} (read models: {})",
            dir.path().display(),
            read_models_url(dir.path())
        );
        let _ = dir.keep();
    }
    Ok(())
}
