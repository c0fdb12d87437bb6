//! `journey bench visible`: under a steady append load of R events/s (one simulated event per
//! Append call, paced on a fixed schedule), how long after its acknowledgement an event is in the
//! readmission read model, beside the append latency itself, measured in the same run.
//!
//! Visibility is read from the projection checkpoint (`Projections.Status`), polled at a fixed
//! interval: an event is visible once the checkpoint reaches its position, and its delay is
//! counted up to the end of the first poll that shows it, so figures are rounded up by at most
//! one poll interval plus one call.
use super::common::{
    fmt_us, histogram, machine, print_table, record, shard, start_server, step, Row, Window,
};
use crate::{cli::BenchVisibleArgs, client};
use hdrhistogram::Histogram;
use journey_proto::v1::{
    projections_client::ProjectionsClient, AppendRequest, ProjectionStatusRequest,
};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use tokio::sync::mpsc;

struct Appender {
    /// Ack latency, from the send to the acknowledgement.
    append: Histogram<u64>,
    sent: u64,
    /// Sends more than 10 ms behind their schedule (the load was not sustained).
    late: u64,
}

fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("call refused ({:?}): {}", s.code(), s.message())
}

pub async fn run(args: BenchVisibleArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rate > 0 && args.seconds > 0 && args.callers > 0,
        "--rate, --seconds and --callers must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let server = start_server(dir.path(), &[])?;
    let log = server.log_client().await?;
    let mut projections = ProjectionsClient::new(client::channel(&server.grpc).await?);
    let window = Window::last_days(args.seed, 365);
    let total = args.rate * args.seconds;
    let callers = args.callers;
    let rate = args.rate as f64;

    step(&format!(
        "{} events/s for {} s, one event per Append call, {callers} appenders; checkpoint polled every {} µs",
        args.rate, args.seconds, args.poll_us
    ));
    let (acked_tx, mut acked_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let t0 = Instant::now() + Duration::from_millis(100);
    let appenders: Vec<_> = (0..callers)
        .map(|w| {
            let mut c = log.clone();
            let acked = acked_tx.clone();
            tokio::spawn(async move {
                let mut a = Appender {
                    append: histogram(),
                    sent: 0,
                    late: 0,
                };
                let mut events = shard(w, callers, 0).flat_map(|p| window.patient(p));
                let mut k = w as u64;
                while k < total {
                    let due = t0 + Duration::from_secs_f64(k as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    let e = events.next().expect("endless patients");
                    let sent = Instant::now();
                    if sent.duration_since(due) > Duration::from_millis(10) {
                        a.late += 1;
                    }
                    let r = c
                        .append(AppendRequest {
                            events: vec![e],
                            expected_versions: Default::default(),
                        })
                        .await
                        .map_err(status)?
                        .into_inner();
                    let ack = Instant::now();
                    record(&mut a.append, ack - sent);
                    let position = r.appended.first().map_or(0, |x| x.position);
                    let _ = acked.send((position, ack));
                    a.sent += 1;
                    k += callers as u64;
                }
                anyhow::Ok(a)
            })
        })
        .collect();
    drop(acked_tx);

    // The watcher: positions acknowledged and not yet seen in the read model.
    let mut pending: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut visible = histogram();
    let mut poll = histogram();
    let mut senders_done = false;
    let mut last_report = Instant::now();
    let mut deadline = None;
    let poll_every = Duration::from_micros(args.poll_us);
    loop {
        // Take the acknowledgements received so far, then ask: only those acked before the poll.
        loop {
            match acked_rx.try_recv() {
                Ok((p, at)) => {
                    pending.insert(p, at);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    senders_done = true;
                    break;
                }
            }
        }
        let asked = Instant::now();
        let s = projections
            .status(ProjectionStatusRequest {})
            .await
            .map_err(status)?
            .into_inner();
        let answered = Instant::now();
        record(&mut poll, answered - asked);
        let checkpoint = s
            .projections
            .iter()
            .find(|p| p.name == "readmission")
            .map(|p| p.checkpoint)
            .ok_or_else(|| anyhow::anyhow!("the server runs no readmission read model"))?;
        while let Some(entry) = pending.first_entry() {
            if *entry.key() > checkpoint {
                break;
            }
            record(
                &mut visible,
                answered.saturating_duration_since(*entry.get()),
            );
            entry.remove();
        }
        if last_report.elapsed() >= Duration::from_secs(3) {
            last_report = Instant::now();
            eprintln!(
                "bench:   log head {}, read model at {checkpoint}, {} acked events not yet visible; visible p50 {} p99 {}",
                s.log_head,
                pending.len(),
                fmt_us(visible.value_at_quantile(0.5)),
                fmt_us(visible.value_at_quantile(0.99))
            );
        }
        if senders_done {
            if pending.is_empty() {
                break;
            }
            let d = *deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(60));
            anyhow::ensure!(
                Instant::now() < d,
                "{} acknowledged events were still not in the read model 60 s after the load stopped (checkpoint {checkpoint}); see the server log",
                pending.len()
            );
        }
        tokio::time::sleep(poll_every.saturating_sub(answered.elapsed())).await;
    }
    let mut append = histogram();
    let (mut sent, mut late) = (0, 0);
    for a in appenders {
        let a = a.await??;
        append.add(&a.append)?;
        sent += a.sent;
        late += a.late;
    }
    let elapsed = t0.elapsed();
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
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5);
    let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99);
    let ratio = |h: &Histogram<u64>| {
        format!(
            "{:.2} / {:.2}",
            p50(h) as f64 / p50(&append) as f64,
            p99(h) as f64 / p99(&append) as f64
        )
    };
    let rows = vec![
        Row {
            name: "(a) append: send → acknowledgement (baseline)".into(),
            figure: format!("{} / {}", fmt_us(p50(&append)), fmt_us(p99(&append))),
            ratio: "1 / 1".into(),
            note: format!("max {}", fmt_us(append.max())),
        },
        Row {
            name: "(b) acknowledgement → visible in the read model".into(),
            figure: format!("{} / {}", fmt_us(p50(&visible)), fmt_us(p99(&visible))),
            ratio: ratio(&visible),
            note: format!(
                "max {}; rounded up by ≤ {} µs poll + one Status call",
                fmt_us(visible.max()),
                args.poll_us
            ),
        },
        Row {
            name: "Status call (the poll; resolution of (b))".into(),
            figure: format!("{} / {}", fmt_us(p50(&poll)), fmt_us(p99(&poll))),
            ratio: ratio(&poll),
            note: format!("{} polls", poll.len()),
        },
    ];
    print_table(["measurement", "p50 / p99", "ratio to (a)", "notes"], &rows);
    Ok(())
}
