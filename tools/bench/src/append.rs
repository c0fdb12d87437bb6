//! `journey bench append`: the log's append paths against baselines measured in the same run
//! (docs/design.md §7): raw sled, a plain PostgreSQL table, and a do-nothing gRPC call.
//!
//! The server under test is this binary's own `journey up`, started as a child process on a
//! temporary folder, so that its peak memory and disk use can be read.
use super::common::{
    context_switches, cpu_seconds, dir_bytes, on_client_thread, peak_rss_mib, rate, sample_event,
    start_server, step, ServerChild,
};
use crate::{
    args::BenchArgs,
    common::{channel, log_client},
};
use anyhow::Context;
use hdrhistogram::Histogram;
use journey_log_access::LogClient;
use journey_proto::{prost::Message, v1::AppendRequest};
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

mod failover;
mod replicated;

struct Figure {
    name: &'static str,
    per_sec: f64,
    note: String,
}

/// (a) raw sled: insert + flush per event, and per 1000 events.
fn sled_baseline(n: u64) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let value = vec![7u8; 300];
    let per_event = n.min(20_000);
    let t = Instant::now();
    for i in 0..per_event {
        db.insert(i.to_be_bytes(), value.as_slice())?;
        db.flush()?;
    }
    let one = rate(per_event, t.elapsed());
    let t = Instant::now();
    for chunk in 0..(n / 1000).max(1) {
        for i in 0..1000u64 {
            db.insert(
                (1_000_000 + chunk * 1000 + i).to_be_bytes(),
                value.as_slice(),
            )?;
        }
        db.flush()?;
    }
    let thousand = rate((n / 1000).max(1) * 1000, t.elapsed());
    Ok((one, thousand))
}

/// (b)'s requests: `callers` lists of one-event appends, `n` in all (built before the clock
/// starts: (f) builds nothing either).
fn single_event_requests(n: u64, callers: usize) -> Vec<Vec<AppendRequest>> {
    let per = n / callers as u64;
    (0..callers)
        .map(|w| {
            (0..per)
                .map(|i| AppendRequest {
                    events: vec![sample_event(&format!("bench-{w}"), i)],
                    expected_versions: Default::default(),
                })
                .collect()
        })
        .collect()
}

/// (b) the callers on one connection, one event per call: the rate and the latencies in µs.
async fn single_event_appends(
    grpc: String,
    requests: Vec<Vec<AppendRequest>>,
) -> anyhow::Result<(f64, Histogram<u64>)> {
    let c = log_client(&grpc).await?;
    let calls = requests.iter().map(Vec::len).sum::<usize>() as u64;
    let (elapsed, latencies) = run_callers(&c, requests).await?;
    Ok((rate(calls, elapsed), latencies))
}

/// Runs each caller's requests in order, the callers concurrently on one connection: the time it
/// took and every call's latency in µs.
async fn run_callers(
    c: &LogClient,
    requests: Vec<Vec<AppendRequest>>,
) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let t = Instant::now();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|requests| {
            let mut c = c.clone();
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                for req in requests {
                    let s = Instant::now();
                    c.append(req).await?;
                    h.record(s.elapsed().as_micros() as u64)?;
                }
                anyhow::Ok(h)
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3)?;
    for task in tasks {
        all.add(task.await??)?;
    }
    Ok((t.elapsed(), all))
}

/// (c)'s requests: batches of 500 for four callers, about `n` events in all (built before the
/// clock starts).
fn batch_requests(n: u64, patient: &str) -> Vec<Vec<AppendRequest>> {
    let batches = (n / 500).max(4);
    (0..4u64)
        .map(|w| {
            let patient = format!("{patient}-{w}");
            (0..batches / 4)
                .map(|b| AppendRequest {
                    events: (0..500)
                        .map(|i| sample_event(&patient, b * 500 + i))
                        .collect(),
                    expected_versions: Default::default(),
                })
                .collect()
        })
        .collect()
}

/// How many events the callers' requests hold.
fn event_count(requests: &[Vec<AppendRequest>]) -> u64 {
    requests
        .iter()
        .flatten()
        .map(|r| r.events.len())
        .sum::<usize>() as u64
}

/// A run of appends: its rate, and when its first call went out and its last was acknowledged.
struct Appends {
    per_sec: f64,
    started: Instant,
    finished: Instant,
}

/// (c) the four callers' batches, four calls in flight.
async fn batch_appends(grpc: String, requests: Vec<Vec<AppendRequest>>) -> anyhow::Result<Appends> {
    let c = log_client(&grpc).await?;
    let events = event_count(&requests);
    let started = Instant::now();
    let (elapsed, _) = run_callers(&c, requests).await?;
    Ok(Appends {
        per_sec: rate(events, elapsed),
        started,
        finished: started + elapsed,
    })
}

/// CPU seconds of the server under test and of this process (the client).
#[derive(Default)]
struct Cpu {
    server: f64,
    client: f64,
    /// Context switches of the server's and of this client's threads.
    server_switches: f64,
    client_switches: f64,
}

impl Cpu {
    fn now(server_pid: &str) -> Cpu {
        Cpu {
            server: cpu_seconds(server_pid),
            client: cpu_seconds("self"),
            server_switches: context_switches(server_pid) as f64,
            client_switches: context_switches("self") as f64,
        }
    }

    /// Adds what was used since `started`.
    fn add_since(&mut self, started: &Cpu, server_pid: &str) {
        let now = Cpu::now(server_pid);
        self.server += now.server - started.server;
        self.client += now.client - started.client;
        self.server_switches += now.server_switches - started.server_switches;
        self.client_switches += now.client_switches - started.client_switches;
    }
}

/// The median of some figures (the upper one of the middle two for an even count).
pub(crate) fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// (f) a do-nothing unary call (health check) with the same client setup as (b).
async fn noop_calls(grpc: String, n: u64, callers: usize) -> anyhow::Result<f64> {
    let channel = channel(&grpc).await?;
    let c = tonic_health::pb::health_client::HealthClient::new(channel);
    let per = n / callers as u64;
    let t = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut c = c.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    c.check(tonic_health::pb::HealthCheckRequest {
                        service: String::new(),
                    })
                    .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(rate(per * callers as u64, t.elapsed()))
}

/// (e) a plain PostgreSQL events table, 8 writers, one event per commit.
async fn postgres_baseline(url: &str, n: u64) -> anyhow::Result<f64> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .with_context(|| format!("cannot reach PostgreSQL at {url}; set --database-url"))?;
    let table = format!("bench_events_{}", std::process::id());
    sqlx::query(&format!(
        "create table {table} (position bigserial primary key, event_id uuid not null unique, patient_id text not null, \
         version bigint not null, body bytea not null, unique (patient_id, version))"
    ))
    .execute(&pool)
    .await?;
    let per = n.min(40_000) / 8;
    let t = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let pool = pool.clone();
            let table = table.clone();
            tokio::spawn(async move {
                let sql = format!("insert into {table} (event_id, patient_id, version, body) values ($1::uuid, $2, $3, $4)");
                for i in 0..per {
                    let e = sample_event(&format!("pg-{w}"), i);
                    let id = uuid::Uuid::parse_str(&e.event_id)?;
                    sqlx::query(&sql)
                        .bind(id.to_string())
                        .bind(&e.patient_id)
                        .bind(i as i64 + 1)
                        .bind(e.encode_to_vec())
                        .execute(&pool)
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let r = rate(per * 8, t.elapsed());
    sqlx::query(&format!("drop table {table}"))
        .execute(&pool)
        .await?;
    Ok(r)
}

/// The server's durable head and the last position it published to NATS (`/status`).
async fn progress(http: &str) -> anyhow::Result<(u64, u64)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await?;
    s.write_all(b"GET /status HTTP/1.0\r\n\r\n").await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(body)?;
    Ok((
        v["head_position"].as_u64().unwrap_or(0),
        v["nats_published"].as_u64().unwrap_or(0),
    ))
}

/// Samples the server's publication backlog (head − published) every 10 ms until aborted; the
/// largest sample so far is in the returned cell.
fn watch_backlog(http: String) -> (tokio::task::JoinHandle<()>, std::sync::Arc<AtomicU64>) {
    let largest = std::sync::Arc::new(AtomicU64::new(0));
    let seen = largest.clone();
    let task = tokio::spawn(async move {
        loop {
            if let Ok((head, published)) = progress(&http).await {
                seen.fetch_max(head.saturating_sub(published), Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (task, largest)
}

/// Starts the log on `dir` publishing to a new stream named after `purpose`; returns its name.
fn start_publishing(
    dir: &std::path::Path,
    nats_url: &str,
    purpose: &str,
) -> anyhow::Result<(ServerChild, String)> {
    let id = format!("{}_{purpose}", std::process::id());
    let stream = format!("BENCH_{id}");
    let prefix = format!("bench{id}.v1");
    let flags = [
        "--nats-url",
        nats_url,
        "--nats-stream",
        &stream,
        "--nats-subject-prefix",
        &prefix,
    ];
    Ok((start_server(dir, &[LOG_ONLY, &flags].concat())?, stream))
}

/// Waits until the server has published `total` events; returns when it saw them all (polled every
/// 2 ms).
async fn wait_published(
    server: &ServerChild,
    total: u64,
    nats_url: &str,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while progress(&server.http).await?.1 < total {
        anyhow::ensure!(
            Instant::now() < deadline,
            "publication did not finish; is NATS at {nats_url} up?"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(Instant::now())
}

async fn delete_stream(nats_url: &str, stream: &str) {
    if let Ok(c) = async_nats::connect(nats_url).await {
        let _ = async_nats::jetstream::new(c).delete_stream(stream).await;
    }
}

/// `journey up` flags for the write path alone.
const LOG_ONLY: &[&str] = &["--no-read-models", "--no-reactor"];

pub async fn append(args: BenchArgs) -> anyhow::Result<()> {
    if args.ack == journey_services::config::AckMode::Replicated {
        return replicated::run(&args).await;
    }
    let n = args.events;
    let callers = args.callers;
    let mut figures = Vec::new();

    step("(a) raw sled insert+flush");
    let (sled_one, sled_1000) = tokio::task::spawn_blocking(move || sled_baseline(n)).await??;
    figures.push(Figure {
        name: "(a) sled insert+flush, per event",
        per_sec: sled_one,
        note: String::new(),
    });
    figures.push(Figure {
        name: "(a) sled insert+flush, per 1000",
        per_sec: sled_1000,
        note: String::new(),
    });

    let dir = tempfile::tempdir()?;
    // The log alone: read models and the reactor have their own benchmarks (`rebuild`,
    // `visible`, `e2e`); folding them here would measure them, not the write path.
    let mut server = start_server(dir.path(), LOG_ONLY)?;
    // (f) and (b) alternate in rounds: the machine's drift (other tenants, the host) hits both
    // alike, and the ratio is the median of the rounds' ratios.
    let rounds = args.rounds.max(1);
    let per_round = (n / rounds).max(callers as u64);
    let mut pairs = Vec::new();
    let mut hist = Histogram::<u64>::new(3)?;
    // CPU seconds used by the server and by this client during (f) and during (b).
    let (mut cpu_f, mut cpu_b) = (Cpu::default(), Cpu::default());
    let server_pid = server.pid().to_string();
    for round in 1..=rounds {
        step(&format!(
            "(f) do-nothing gRPC call, (b) single-event appends: round {round}/{rounds}"
        ));
        let grpc = server.grpc.clone();
        let started = Cpu::now(&server_pid);
        let noop = on_client_thread(move || noop_calls(grpc, per_round, callers)).await?;
        cpu_f.add_since(&started, &server_pid);
        let grpc = server.grpc.clone();
        let requests = single_event_requests(per_round, callers);
        let started = Cpu::now(&server_pid);
        let (single, h) = on_client_thread(move || single_event_appends(grpc, requests)).await?;
        cpu_b.add_since(&started, &server_pid);
        hist.add(h)?;
        pairs.push((noop, single));
    }
    // Each of (f) and (b): every round's calls (whole calls per caller).
    let calls = rounds * (per_round / callers as u64 * callers as u64);
    let noop = median(pairs.iter().map(|p| p.0));
    let single = median(pairs.iter().map(|p| p.1));
    let single_vs_noop = median(pairs.iter().map(|(f, b)| b / f));
    figures.push(Figure {
        name: "(f) do-nothing unary gRPC call",
        per_sec: noop,
        note: format!("{callers} callers, 1 connection; median of {rounds} rounds"),
    });
    figures.push(Figure {
        name: "(b) our log, single-event appends",
        per_sec: single,
        note: format!(
            "{callers} callers; p50 {} µs, p99 {} µs; median of {rounds} rounds",
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99)
        ),
    });
    let rounds_line = pairs
        .iter()
        .map(|(f, b)| format!("{:.0}/{:.0} = {:.2}", b, f, b / f))
        .collect::<Vec<_>>()
        .join(", ");
    step("(c) batches of 500");
    let requests = batch_requests(n * 4, "batch");
    let batched = on_client_thread({
        let grpc = server.grpc.clone();
        move || batch_appends(grpc, requests)
    })
    .await?
    .per_sec;
    figures.push(Figure {
        name: "(c) our log, batches of 500",
        per_sec: batched,
        note: "4 calls in flight".into(),
    });
    let rss = peak_rss_mib(server.pid());
    server.stop();
    let stored = calls + (n * 4 / 500).max(4) / 4 * 4 * 500;
    let encoded = sample_event("bench-00", 0).encoded_len() as f64 + 110.0;
    let per_event_disk = dir_bytes(dir.path()) as f64 / stored as f64;

    step("(d) append → NATS publication");
    let nats_dir = tempfile::tempdir()?;
    // Built before the clock starts, as for (c): the window is the appends' own, from the first
    // call out to the last event published.
    let requests = batch_requests(n * 2, "nats");
    let total = event_count(&requests);
    let (live, appends, lag, backlog) = {
        let (server, stream) = start_publishing(nats_dir.path(), &args.nats_url, "live")?;
        let (watcher, backlog) = watch_backlog(server.http.clone());
        let appends = on_client_thread({
            let grpc = server.grpc.clone();
            move || batch_appends(grpc, requests)
        })
        .await?;
        let done = wait_published(&server, total, &args.nats_url).await?;
        watcher.abort();
        let live = rate(total, done - appends.started);
        let lag = done.saturating_duration_since(appends.finished);
        drop(server);
        delete_stream(&args.nats_url, &stream).await;
        (live, appends.per_sec, lag, backlog.load(Ordering::Relaxed))
    };
    let lag_ms = lag.as_secs_f64() * 1e3;
    figures.push(Figure {
        name: "(d) append → NATS published",
        per_sec: live,
        note: format!(
            "from the first append to the last event published; appends ran at {appends:.0}/s; \
             all published {lag_ms:.0} ms after the last append's ack; backlog at most {backlog} events"
        ),
    });
    // The same log published again to a new stream: the outbox alone, catching up a backlog.
    let catch_up = {
        let (server, stream) = start_publishing(nats_dir.path(), &args.nats_url, "backlog")?;
        let t = Instant::now();
        let done = wait_published(&server, total, &args.nats_url).await?;
        let r = rate(total, done - t);
        drop(server);
        delete_stream(&args.nats_url, &stream).await;
        r
    };
    figures.push(Figure {
        name: "(d) NATS publication of a backlog",
        per_sec: catch_up,
        note: "no appends meanwhile".into(),
    });

    step("(g) JetStream alone");
    let mut broker = 0.0;
    for (acks, name) in [
        (Acks::Each, "(g) JetStream publish, ack each"),
        (Acks::PerBatch, "(g) JetStream publish, ack per 1024"),
        (
            Acks::Chained,
            "(g) JetStream publish, chained, ack per 1024",
        ),
    ] {
        broker = broker_baseline(&args.nats_url, n * 2, acks).await?;
        figures.push(Figure {
            name,
            per_sec: broker,
            note: "same messages, no log".into(),
        });
    }

    step("(e) PostgreSQL table, 8 writers");
    let url = args.database_url.clone();
    let pg = on_client_thread(move || async move { postgres_baseline(&url, n).await }).await?;
    figures.push(Figure {
        name: "(e) PostgreSQL table, 8 writers, 1/commit",
        per_sec: pg,
        note: String::new(),
    });

    println!("| measurement | events/s | notes |\n|---|---:|---|");
    for f in &figures {
        println!("| {} | {:.0} | {} |", f.name, f.per_sec, f.note);
    }
    println!();
    println!(
        "ratios: (b)/(f) = {:.2}  (b)/(a per event) = {:.2}  (b)/(e) = {:.2}  (c) = {:.0}/s",
        single_vs_noop,
        single / sled_one,
        single / pg,
        batched
    );
    println!("(b)/(f) by round: {rounds_line}");
    println!(
        "CPU per call, server + client: (f) {:.1} + {:.1} µs, (b) {:.1} + {:.1} µs",
        cpu_f.server / calls as f64 * 1e6,
        cpu_f.client / calls as f64 * 1e6,
        cpu_b.server / calls as f64 * 1e6,
        cpu_b.client / calls as f64 * 1e6
    );
    println!(
        "context switches per call, server + client: (f) {:.2} + {:.2}, (b) {:.2} + {:.2}",
        cpu_f.server_switches / calls as f64,
        cpu_f.client_switches / calls as f64,
        cpu_b.server_switches / calls as f64,
        cpu_b.client_switches / calls as f64
    );
    println!("publication: (d) live / appends meanwhile = {:.2}, all published {lag_ms:.0} ms after the last ack \
        (backlog at most {backlog} events = {:.0} ms of appends)  (d) backlog / (c) = {:.2}  (d) backlog / (g chained) = {:.2}",
        live / appends, backlog as f64 / appends * 1e3, catch_up / batched, catch_up / broker);
    println!("server peak RSS: {rss:.0} MiB; disk per event: {per_event_disk:.0} bytes for ≈{encoded:.0} encoded ({:.2}×)", per_event_disk / encoded);
    Ok(())
}

/// How (g) asks JetStream for acknowledgements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acks {
    /// One per message.
    Each,
    /// One per batch of 1024, on its last message.
    PerBatch,
    /// One per batch, every message but the first carrying `Nats-Expected-Last-Msg-Id` = the id
    /// of the one before it: exactly the outbox's messages.
    Chained,
}

/// (g) the broker alone: the same messages (subject, headers, body) published straight to a fresh
/// JetStream stream, 1024 per batch, four batches in flight, with no log behind them.
async fn broker_baseline(url: &str, n: u64, acks: Acks) -> anyhow::Result<f64> {
    use async_nats::{header, jetstream, HeaderMap};
    let client = async_nats::connect(url).await?;
    let js = jetstream::new(client.clone());
    let id = format!("{}_{}", std::process::id(), acks as u8);
    let stream = format!("BENCH_BROKER_{id}");
    let prefix = format!("benchbroker{id}");
    js.get_or_create_stream(jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(24 * 3600),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let mut previous: Option<String> = None;
    let messages: Vec<(String, HeaderMap, bytes::Bytes)> = (0..n)
        .map(|i| {
            let e = sample_event("broker", i);
            let mut h = HeaderMap::new();
            h.insert(header::NATS_MESSAGE_ID, e.event_id.as_str());
            let before = previous.replace(e.event_id.clone());
            if let (Acks::Chained, Some(before)) = (acks, before) {
                h.insert(header::NATS_EXPECTED_LAST_MESSAGE_ID, before.as_str());
            }
            h.insert("Journey-Position", (i + 1).to_string().as_str());
            h.insert(
                "traceparent",
                "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
            );
            (
                format!("{prefix}.observation_recorded"),
                h,
                e.encode_to_vec().into(),
            )
        })
        .collect();
    let t = Instant::now();
    let mut in_flight = std::collections::VecDeque::new();
    for batch in messages.chunks(1024) {
        let mut pending = Vec::with_capacity(batch.len());
        for (k, (subject, h, body)) in batch.iter().enumerate() {
            if acks == Acks::Each || k + 1 == batch.len() {
                pending.push(
                    js.publish_with_headers(subject.clone(), h.clone(), body.clone())
                        .await?,
                );
            } else {
                client
                    .publish_with_headers(subject.clone(), h.clone(), body.clone())
                    .await?;
            }
        }
        in_flight.push_back(pending);
        if in_flight.len() >= 4 {
            for a in in_flight.pop_front().expect("in flight") {
                a.await?;
            }
        }
    }
    for pending in in_flight {
        for a in pending {
            a.await?;
        }
    }
    let r = rate(n, t.elapsed());
    let stored = js.get_stream(&stream).await?.info().await?.state.messages;
    delete_stream(url, &stream).await;
    anyhow::ensure!(
        stored == n,
        "broker baseline stored {stored} of {n} messages"
    );
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::{median, Cpu};

    #[test]
    fn the_median_is_the_middle_figure_whatever_the_order() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([0.7, 0.5].into_iter()), 0.7);
        assert_eq!(median(std::iter::empty()), 0.0);
    }

    #[test]
    fn cpu_time_of_this_process_grows_with_work_and_an_unknown_process_reads_zero() {
        let started = Cpu::now("self");
        let t = std::time::Instant::now();
        let mut used = Cpu::default();
        let mut x = 0u64;
        // Work until 50 ms of CPU are counted (10 s at most: a loaded machine gives less per second).
        while used.client < 0.05 && t.elapsed() < std::time::Duration::from_secs(10) {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            used = Cpu::default();
            used.add_since(&started, "self");
        }
        assert!(used.client >= 0.05, "work counted as {} s", used.client);
        assert!(used.server >= 0.05, "the same process read as the server");
        assert_eq!(super::cpu_seconds("no-such-process"), 0.0);
    }
}
