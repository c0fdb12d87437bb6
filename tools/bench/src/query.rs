//! `journey bench query`: latency of the readmission queries (Rates over a year with each
//! breakdown, AtRisk) through gRPC against `journey up`, on a read model of at least N index
//! stays, beside a do-nothing gRPC call (health check) measured in the same run on the same
//! connection.
//!
//! The read model is the real one: simulated journeys are appended to a fresh log, and the
//! projection's own runner folds them (catch-up, as `journey up` does at start) into the SQLite
//! file `journey up` uses; the server under test is then started on that folder.
use super::common::{
    answer_and_time, baseline_row, count_rows, fill_log, latency_row, machine, open_log,
    print_table, read_models_url, start_server, status, step, time_noop, Ticker, Until, Window,
};
use crate::args::BenchQueryArgs;
use anyhow::Context;
use hdrhistogram::Histogram;
use journey_log_access::InProcess;
use journey_projections::{db, readmission::Readmission, runtime::Runner};
use journey_proto::v1::{
    projections_client::ProjectionsClient, readmission_client::ReadmissionClient, AtRiskRequest,
    GroupBy, Period, ProjectionStatusRequest, RatesRequest,
};
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// `YYYY-MM-DD` of a day number (days since 1970-01-01), as the readmission queries take dates.
fn date_of(day: i64) -> String {
    (chrono::NaiveDate::default() + chrono::Duration::days(day))
        .format("%Y-%m-%d")
        .to_string()
}

/// Folds the whole log into the read model of `dir` with the projection runner; returns the
/// number of index stays.
async fn catch_up(
    dir: &Path,
    log_head: u64,
    log: &std::sync::Arc<journey_event_log::EventLog>,
) -> anyhow::Result<i64> {
    let db = db::connect(&read_models_url(dir)).await?;
    let (runner, _) = Runner::open(db, Readmission).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(runner.clone().run(InProcess::new(log.clone()), stop_rx));
    let mut state = runner.watch();
    let ticker = Ticker::new(Duration::from_secs(3));
    let started = Instant::now();
    let from = state.borrow().checkpoint;
    loop {
        let checkpoint = state.borrow_and_update().checkpoint;
        ticker.tick(false, || {
            format!(
                "projection at {checkpoint}/{log_head} ({:.0} events/s)",
                (checkpoint - from) as f64 / started.elapsed().as_secs_f64()
            )
        });
        if checkpoint >= log_head {
            break;
        }
        if task.is_finished() {
            task.await??;
            anyhow::bail!("the projection stopped at {checkpoint} before {log_head}");
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), state.changed()).await;
    }
    let _ = stop_tx.send(true);
    task.await??;
    let stays = count_rows(&runner, "index_stays").await?;
    runner.db.pool.close().await;
    Ok(stays)
}

pub async fn run(args: BenchQueryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.stays > 0 && args.calls > 0,
        "--stays and --calls must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let window = Window::last_days(args.sim.seed, args.days);
    // A first guess (about one index stay per simulated patient over a year); corrected from
    // what the fold produced if short.
    let mut goal = args.stays.max(100);
    let mut next_patient = 0;
    let (stays, events) = loop {
        step(&format!(
            "appending simulated patients {next_patient}..{goal} ({} days, seed {})",
            args.days, args.sim.seed
        ));
        let log = open_log(dir.path()).await?;
        let filled = fill_log(&log, window, next_patient, Until::Patients(goal)).await?;
        next_patient = filled.next_patient;
        step("folding them into the readmission read model (the projection runner)");
        let stays = catch_up(dir.path(), filled.head, &log).await?;
        log.close().await?;
        drop(log);
        eprintln!("bench:   {stays} index stays from {next_patient} patients");
        if stays as u64 >= args.stays {
            break (stays, filled.head);
        }
        let per_patient = (stays as f64 / next_patient as f64).max(0.01);
        goal = next_patient + ((args.stays - stays as u64) as f64 / per_patient * 1.05) as u64 + 10;
    };

    step("starting the server under test on that folder (without the alert reactor)");
    let server = start_server(dir.path(), &["--no-reactor"])?;
    let channel = server.channel().await?;
    let mut projections = ProjectionsClient::new(channel.clone());
    // Its other read models catch up from the log first: measure on a quiet server.
    let ticker = Ticker::new(Duration::from_secs(3));
    loop {
        let s = projections
            .status(ProjectionStatusRequest {})
            .await
            .map_err(status)?
            .into_inner();
        let behind: Vec<String> = s
            .projections
            .iter()
            .filter(|p| p.checkpoint < s.log_head)
            .map(|p| format!("{} at {}", p.name, p.checkpoint))
            .collect();
        anyhow::ensure!(
            s.log_head == events,
            "the server's log head is {}, expected {events}: something else appends",
            s.log_head
        );
        if behind.is_empty() {
            break;
        }
        ticker.tick(false, || {
            format!(
                "waiting for the server's read models to reach {}: {}",
                s.log_head,
                behind.join(", ")
            )
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let today = chrono::Utc::now().timestamp().div_euclid(86_400);
    let year = Period {
        from_date: date_of(today - 364),
        to_date: date_of(today),
    };
    let readmission = ReadmissionClient::new(channel.clone());
    let calls = args.calls;

    step(&format!(
        "(a) baseline: do-nothing gRPC call (health check), {calls} calls"
    ));
    let noop = time_noop(&channel, calls, Duration::MAX).await?;

    let mut year_total = 0;
    let mut series: Vec<(String, Histogram<u64>, String)> = Vec::new();
    for (g, label) in [
        (GroupBy::None, "total"),
        (GroupBy::Facility, "by facility"),
        (GroupBy::Unit, "by unit"),
        (GroupBy::Disposition, "by disposition"),
        (GroupBy::Month, "by month"),
        (GroupBy::DiagnosisChapter, "by diagnosis chapter"),
        (GroupBy::Territory, "by territory"),
    ] {
        step(&format!("Rates over a year, {label}, {calls} calls"));
        let request = RatesRequest {
            period: Some(year.clone()),
            group_by: g as i32,
        };
        let (r, h) = answer_and_time(calls, Duration::MAX, || {
            let mut c = readmission.clone();
            let request = request.clone();
            async move { Ok(c.rates(request).await.map_err(status)?.into_inner()) }
        })
        .await?;
        year_total = r.total.as_ref().map_or(0, |t| t.index_stays);
        let note = format!(
            "{} rows; {} index stays, {:.1}% readmitted",
            r.rows.len(),
            year_total,
            100.0 * r.total.as_ref().map_or(0.0, |t| t.rate)
        );
        series.push((format!("Rates, 1 year, {label}"), h, note));
    }

    step(&format!("AtRisk as of today, 100 patients, {calls} calls"));
    let request = AtRiskRequest {
        as_of_date: date_of(today),
        limit: 100,
    };
    let (r, h) = answer_and_time(calls, Duration::MAX, || {
        let mut c = readmission.clone();
        let request = request.clone();
        async move { Ok(c.at_risk(request).await.map_err(status)?.into_inner()) }
    })
    .await
    .context("AtRisk")?;
    let note = format!(
        "{} stays returned, top LACE {}",
        r.stays.len(),
        r.stays.first().map_or(0, |s| s.lace)
    );
    series.push(("AtRisk, as of today, limit 100".into(), h, note));
    drop(server);

    println!();
    println!("machine: {}", machine());
    println!(
        "read model: {stays} index stays ({year_total} discharged in the last year) from {events} events of {next_patient} simulated patients; SQLite; one caller, {calls} sequential calls per query"
    );
    println!();
    let mut rows = vec![baseline_row(
        "(a) do-nothing gRPC call (baseline)",
        &noop,
        "",
    )];
    for (name, h, note) in &series {
        rows.push(latency_row(name, h, &noop, 0, note));
    }
    print_table(["query", "p50 / p99", "ratio to (a)", "notes"], &rows);
    Ok(())
}
