//! `journey bench e2e`: the sustained append rate with every read model live, and how far the
//! read models lag behind under that load, for the two deployments, in the same run:
//!
//! - (a) embedded: one `journey up` process (SQLite read models folded in process);
//! - (b) services: `journey serve event-log` publishing to NATS JetStream, `serve readmission` and
//!   `serve coordination` following NATS into one PostgreSQL database (catching up over gRPC),
//!   `serve reactor` and `serve audit` running beside them, each its own process.
//!
//! The load is closed-loop: each caller appends one simulated event per `Append` call and sends
//! the next as soon as the last one is acknowledged, so the append rate is what the deployment
//! takes while its projections keep up (or not: the lag figures say).
use super::common::{
    fmt_us, machine, print_table, spawn_ready, start_server, step, FreshPg, Row, ServerChild,
    Window,
};
use super::load::{self, Load, LoadResult, Watched};
use crate::{args::BenchE2eArgs, common::log_client};
use hdrhistogram::Histogram;
use std::time::Duration;

/// One deployment's figures.
struct Measured {
    load: LoadResult,
    watched: Vec<Watched>,
    drain: Duration,
}

const READ_MODELS: [&str; 2] = ["readmission", "coordination"];

async fn measure(
    args: &BenchE2eArgs,
    log_url: &str,
    read_sides: &[(&str, &str)],
) -> anyhow::Result<Measured> {
    let log = log_client(log_url).await?;
    let mut watched = Vec::new();
    for (grpc, name) in read_sides {
        watched.push(Watched::connect(grpc, name).await?);
    }
    let mut running = load::start(
        &log,
        Load {
            callers: args.callers,
            rate: None,
            seconds: args.seconds,
            window: Window::last_days(args.sim.seed, 365),
        },
    );
    let drain = load::watch(
        &mut running,
        &mut watched,
        Duration::from_millis(args.poll_ms),
        Duration::from_secs(300),
    )
    .await?;
    let load = running.finish().await?;
    eprintln!(
        "bench:   {} events in {:.1} s: {:.0} events/s; read models caught up {} ms after the load stopped",
        load.sent,
        load.elapsed.as_secs_f64(),
        load.events_per_sec(),
        drain.as_millis()
    );
    Ok(Measured {
        load,
        watched,
        drain,
    })
}

/// The separate services on the machine's NATS and a fresh PostgreSQL database.
struct Services {
    children: Vec<ServerChild>,
}

impl Services {
    fn start(data: &str, nats: &str, stream: &str, db: &str) -> anyhow::Result<Services> {
        let any = ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"];
        let nats_flags = ["--nats-url", nats, "--nats-stream", stream];
        let log = spawn_ready(
            &[
                &["serve", "event-log", "--data-dir", data, "--insecure"][..],
                &nats_flags,
                &any,
            ]
            .concat(),
        )?;
        let log_url = log.grpc.clone();
        let mut children = vec![log];
        for kind in READ_MODELS {
            children.push(spawn_ready(
                &[
                    &["serve", kind, "--log-url", &log_url, "--database-url", db][..],
                    &["--insecure"],
                    &nats_flags,
                    &any,
                ]
                .concat(),
            )?);
        }
        children.push(spawn_ready(
            &[
                &["serve", "reactor", "--log-url", &log_url][..],
                &nats_flags,
                &any,
            ]
            .concat(),
        )?);
        children.push(spawn_ready(
            &[
                &["serve", "audit", "--log-url", &log_url, "--insecure"][..],
                &any,
            ]
            .concat(),
        )?);
        Ok(Services { children })
    }
}

pub async fn run(args: BenchE2eArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.seconds > 0 && args.callers > 0 && args.poll_ms > 0,
        "--seconds, --callers and --poll-ms must be at least 1"
    );
    step(&format!(
        "(a) embedded: `journey up` (SQLite read models in process); {} callers, one event per Append, {} s",
        args.callers, args.seconds
    ));
    let dir = tempfile::tempdir()?;
    let embedded = {
        let server = start_server(dir.path(), &[])?;
        let sides: Vec<(&str, &str)> = READ_MODELS.iter().map(|n| (&server.grpc[..], *n)).collect();
        measure(&args, &server.grpc, &sides).await?
    };

    step(&format!(
        "(b) services: event-log → NATS {} → readmission, coordination (PostgreSQL), reactor, audit; same load",
        args.nats_url
    ));
    let pg = FreshPg::create(&args.database_url, "e2e").await?;
    let stream = format!("JOURNEY_BENCH_E2E_{}", std::process::id());
    let data = dir.path().join("services");
    let services = Services::start(
        &data.display().to_string(),
        &args.nats_url,
        &stream,
        &pg.url,
    );
    let distributed = match services {
        Ok(s) => {
            let log_url = s.children[0].grpc.clone();
            let sides: Vec<(&str, &str)> = READ_MODELS
                .iter()
                .enumerate()
                .map(|(i, n)| (&s.children[i + 1].grpc[..], *n))
                .collect();
            let m = measure(&args, &log_url, &sides).await;
            // Readers first, the log last: nobody logs a lost peer.
            s.children.into_iter().rev().for_each(drop);
            m
        }
        Err(e) => Err(e),
    };
    delete_stream(&args.nats_url, &stream).await;
    pg.drop_database().await?;
    let distributed = distributed?;

    report(&args, &embedded, &distributed);
    Ok(())
}

/// Removes the run's JetStream stream (best effort: a leftover stream only costs disk).
async fn delete_stream(nats_url: &str, stream: &str) {
    if let Ok(c) = async_nats::connect(nats_url).await {
        let _ = async_nats::jetstream::new(c).delete_stream(stream).await;
    }
}

fn report(args: &BenchE2eArgs, a: &Measured, b: &Measured) {
    let p = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q);
    let us = |h: &Histogram<u64>| format!("{} / {}", fmt_us(p(h, 0.5)), fmt_us(p(h, 0.99)));
    let positions = |h: &Histogram<u64>| format!("{} / {}", p(h, 0.5), p(h, 0.99));
    let ratio = |x: &Histogram<u64>, y: &Histogram<u64>| {
        format!(
            "{:.2} / {:.2}",
            p(y, 0.5) as f64 / p(x, 0.5).max(1) as f64,
            p(y, 0.99) as f64 / p(x, 0.99).max(1) as f64
        )
    };
    println!();
    println!("machine: {}", machine());
    println!(
        "load: {} callers, one simulated event per Append call, closed loop, {} s per deployment; checkpoints polled every {} ms",
        args.callers, args.seconds, args.poll_ms
    );
    println!();
    let mut rows = vec![
        Row {
            name: "sustained append rate, events/s".into(),
            figure: format!(
                "{:.0} ‖ {:.0}",
                a.load.events_per_sec(),
                b.load.events_per_sec()
            ),
            ratio: format!("{:.2}", b.load.events_per_sec() / a.load.events_per_sec()),
            note: format!("{} ‖ {} events", a.load.sent, b.load.sent),
        },
        Row {
            name: "append latency p50 / p99".into(),
            figure: format!("{} ‖ {}", us(&a.load.append), us(&b.load.append)),
            ratio: ratio(&a.load.append, &b.load.append),
            note: String::new(),
        },
    ];
    for (wa, wb) in a.watched.iter().zip(&b.watched) {
        rows.push(Row {
            name: format!("{}: acknowledged → visible p50 / p99", wa.name),
            figure: format!("{} ‖ {}", us(&wa.visible), us(&wb.visible)),
            ratio: ratio(&wa.visible, &wb.visible),
            note: format!(
                "Status call p50 {} ‖ {}",
                fmt_us(p(&wa.poll, 0.5)),
                fmt_us(p(&wb.poll, 0.5))
            ),
        });
        rows.push(Row {
            name: format!("{}: lag in positions p50 / p99", wa.name),
            figure: format!(
                "{} ‖ {}",
                positions(&wa.lag_positions),
                positions(&wb.lag_positions)
            ),
            ratio: ratio(&wa.lag_positions, &wb.lag_positions),
            note: format!(
                "{} ‖ {} polls",
                wa.lag_positions.len(),
                wb.lag_positions.len()
            ),
        });
    }
    rows.push(Row {
        name: "catch-up after the load stopped".into(),
        figure: format!("{} ms ‖ {} ms", a.drain.as_millis(), b.drain.as_millis()),
        ratio: format!(
            "{:.2}",
            b.drain.as_secs_f64() / a.drain.as_secs_f64().max(1e-3)
        ),
        note: "every acknowledged event in every read model".into(),
    });
    print_table(
        [
            "measurement",
            "(a) embedded ‖ (b) services",
            "ratio (b)/(a)",
            "notes",
        ],
        &rows,
    );
}
