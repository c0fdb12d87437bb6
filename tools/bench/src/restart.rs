//! `journey bench restart`: how long a log of N events takes to open after an orderly stop, from
//! the checkpoint that stop saved, against the baseline of opening the same log by reading every
//! event back (no checkpoint), measured in the same run; best of three of each.
use super::common::{fill_log, machine, open_log_with, print_table, step, Row, Until, Window};
use crate::args::BenchRestartArgs;
use std::{path::Path, time::Instant};

/// Seconds to open the log in `dir` (and close it again), from `checkpoint` when given.
async fn open_time(dir: &Path, checkpoint: Option<std::path::PathBuf>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let log = open_log_with(dir, checkpoint).await?;
    let seconds = started.elapsed().as_secs_f64();
    log.close().await?;
    Ok(seconds)
}

pub async fn run(args: BenchRestartArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let dir = tempfile::tempdir()?;
    let log_dir = dir.path().join("log");
    let checkpoint = journey_event_log::checkpoint_in(&log_dir);
    step(&format!(
        "filling a fresh log with ≥ {} simulated events ({} days, seed {})",
        args.events, args.days, args.sim.seed
    ));
    let log = open_log_with(&log_dir, Some(checkpoint.clone())).await?;
    let window = Window::last_days(args.sim.seed, args.days);
    let filled = fill_log(&log, window, 0, Until::Events(args.events)).await?;
    step("an orderly stop, saving the checkpoint");
    let stopped = Instant::now();
    log.close().await?;
    drop(log);
    let stop_seconds = stopped.elapsed().as_secs_f64();
    let saved = std::fs::read(&checkpoint)?;

    let mut full = f64::MAX;
    let mut fast = f64::MAX;
    for round in 1..=3 {
        step(&format!(
            "(a) open reading every event back, round {round} of 3"
        ));
        full = full.min(open_time(&log_dir, None).await?);
        step(&format!("(b) open from the checkpoint, round {round} of 3"));
        std::fs::write(&checkpoint, &saved)?;
        fast = fast.min(open_time(&log_dir, Some(checkpoint.clone())).await?);
    }

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {} events from {} simulated patients; checkpoint {:.1} MB, saved at the stop in {stop_seconds:.2} s",
        filled.head,
        filled.next_patient,
        saved.len() as f64 / 1e6
    );
    println!();
    let rows = [
        Row {
            name: "(a) open, every event read back (baseline)".into(),
            figure: format!("{full:.2}"),
            ratio: "1.00".into(),
            note: "best of 3".into(),
        },
        Row {
            name: "(b) open from the checkpoint".into(),
            figure: format!("{fast:.2}"),
            ratio: format!("{:.3}", fast / full),
            note: "best of 3".into(),
        },
    ];
    print_table(["measurement", "seconds", "ratio to (a)", "notes"], &rows);
    Ok(())
}
