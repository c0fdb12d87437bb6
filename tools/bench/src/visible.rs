//! `journey bench visible`: under a steady append load of R events/s (one simulated event per
//! Append call, paced on a fixed schedule), how long after its acknowledgement an event is in the
//! readmission read model, beside the append latency itself, measured in the same run.
//!
//! Visibility is read from the projection checkpoint (`Projections.Status`), polled at a fixed
//! interval: an event is visible once the checkpoint reaches its position, and its delay is
//! counted up to the end of the first poll that shows it, so figures are rounded up by at most
//! one poll interval plus one call.
use super::common::{
    baseline_row, fmt_us, latency_row, machine, print_table, start_server, step, Window,
};
use super::load::{self, Load, Watched};
use crate::args::BenchVisibleArgs;
use std::time::Duration;

pub async fn run(args: BenchVisibleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0 && args.callers > 0,
        "--rate, --seconds and --callers must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let server = start_server(dir.path(), &[])?;
    let log = server.log_client().await?;
    let callers = args.callers;

    step(&format!(
        "{} events/s for {} s, one event per Append call, {callers} appenders; checkpoint polled every {} µs",
        args.rate, args.seconds, args.poll_us
    ));
    let mut running = load::start(
        &log,
        Load {
            callers,
            rate: Some(args.rate as f64),
            seconds: args.seconds,
            window: Window::last_days(args.sim.seed, 365),
        },
    );
    let mut watched = [Watched::connect(&server.grpc, "readmission").await?];
    load::watch(
        &mut running,
        &mut watched,
        Duration::from_micros(args.poll_us),
        Duration::from_secs(60),
    )
    .await?;
    let result = running.finish().await?;
    let [Watched { visible, poll, .. }] = watched;
    let (append, sent, late, elapsed) = (result.append, result.sent, result.late, result.elapsed);
    drop(server);

    println!();
    println!("machine: {}", machine());
    println!(
        "load: {sent} events in {:.1} s ({:.0} events/s asked {}), {callers} appenders, one event per call; {late} sends more than 10 ms behind schedule",
        elapsed.as_secs_f64(),
        sent as f64 / elapsed.as_secs_f64(),
        args.rate
    );
    println!();
    let rows = vec![
        baseline_row(
            "(a) append: send → acknowledgement (baseline)",
            &append,
            format!("max {}", fmt_us(append.max())),
        ),
        latency_row(
            "(b) acknowledgement → visible in the read model",
            &visible,
            &append,
            2,
            format!(
                "max {}; rounded up by ≤ {} µs poll + one Status call",
                fmt_us(visible.max()),
                args.poll_us
            ),
        ),
        latency_row(
            "Status call (the poll; resolution of (b))",
            &poll,
            &append,
            2,
            format!("{} polls", poll.len()),
        ),
    ];
    print_table(["measurement", "p50 / p99", "ratio to (a)", "notes"], &rows);
    Ok(())
}
