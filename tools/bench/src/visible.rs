//! `journey bench visible`: under a steady append load of R events/s (one simulated event per
//! Append call, paced on a fixed schedule), how long after its acknowledgement an event is in the
//! readmission read model, beside the append latency itself, measured in the same run.
//!
//! Visibility is read from the projection checkpoint (`Projections.Status`), polled at a fixed
//! interval: an event is visible once the checkpoint reaches its position, and its delay is
//! counted up to the end of the first poll that shows it, so figures are rounded up by at most
//! one poll interval plus one call.
use super::common::{
    fmt_us, machine, p50_p99, p50_p99_ratio, print_table, start_server, step, Row, Window,
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
            window: Window::last_days(args.seed, 365),
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
        Row {
            name: "(a) append: send → acknowledgement (baseline)".into(),
            figure: p50_p99(&append),
            ratio: "1 / 1".into(),
            note: format!("max {}", fmt_us(append.max())),
        },
        Row {
            name: "(b) acknowledgement → visible in the read model".into(),
            figure: p50_p99(&visible),
            ratio: p50_p99_ratio(&visible, &append, 2),
            note: format!(
                "max {}; rounded up by ≤ {} µs poll + one Status call",
                fmt_us(visible.max()),
                args.poll_us
            ),
        },
        Row {
            name: "Status call (the poll; resolution of (b))".into(),
            figure: p50_p99(&poll),
            ratio: p50_p99_ratio(&poll, &append, 2),
            note: format!("{} polls", poll.len()),
        },
    ];
    print_table(["measurement", "p50 / p99", "ratio to (a)", "notes"], &rows);
    Ok(())
}
