//! `journey bench append --ack replicated --nats-url URL,URL,URL`: appends acknowledged once a
//! three-server JetStream cluster holds them, beside the same appends in local mode and beside
//! JetStream alone (the same messages published to a stream of the same kind — 3 replicas, file
//! storage — every message's ack awaited before the caller goes on), in one run.
use super::{
    batch_appends, batch_requests, delete_stream, event_count, single_event_appends,
    single_event_requests, LOG_ONLY,
};
use crate::{
    args::BenchArgs,
    common::{cpu_seconds, on_client_thread, rate, sample_event, start_server, step},
};
use async_nats::{header, jetstream, HeaderMap};
use hdrhistogram::Histogram;
use journey_proto::prost::Message;
use std::time::{Duration, Instant};

/// CPU seconds used so far by the processes of a run: the journey server (none for JetStream
/// alone), this client, and the NATS servers when they run on this machine.
#[derive(Clone, Copy, Default)]
struct Cpu {
    server: f64,
    client: f64,
    nats: f64,
}

impl Cpu {
    fn now(server: Option<&str>, nats: &[u32]) -> Cpu {
        Cpu {
            server: server.map_or(0.0, cpu_seconds),
            client: cpu_seconds("self"),
            nats: nats.iter().map(|p| cpu_seconds(&p.to_string())).sum(),
        }
    }

    /// What was used since `before`, in µs per event.
    fn per_event_since(self, before: Cpu, events: f64) -> Cpu {
        let per = |now: f64, then: f64| (now - then) / events * 1e6;
        Cpu {
            server: per(self.server, before.server),
            client: per(self.client, before.client),
            nats: per(self.nats, before.nats),
        }
    }

    fn total(&self) -> f64 {
        self.server + self.client + self.nats
    }
}

/// A single-event run: its rate, its latencies in µs, and the CPU time it cost per event (µs).
struct Single {
    per_sec: f64,
    latencies: Histogram<u64>,
    cpu: Cpu,
}

impl Single {
    fn note(&self, nats_local: bool) -> String {
        let c = &self.cpu;
        let nats = if nats_local {
            format!(", NATS servers {:.0} µs", c.nats)
        } else {
            String::new()
        };
        // JetStream alone has no journey server.
        let server = if c.server > 0.0 {
            format!("journey server {:.0} µs, ", c.server)
        } else {
            String::new()
        };
        format!(
            "p50 {} µs, p99 {} µs; CPU per event: {server}client {:.0} µs{nats}",
            self.latencies.value_at_quantile(0.5),
            self.latencies.value_at_quantile(0.99),
            c.client
        )
    }

    fn p99(&self) -> f64 {
        self.latencies.value_at_quantile(0.99) as f64
    }
}

async fn connect(urls: &str) -> anyhow::Result<jetstream::Context> {
    let servers = urls
        .split(',')
        .map(|u| u.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jetstream::new(async_nats::connect(servers).await?))
}

/// The log's single-event and batched appends with these extra flags.
async fn log_appends(
    args: &BenchArgs,
    extra: &[&str],
    nats: &[u32],
) -> anyhow::Result<(Single, f64)> {
    let dir = tempfile::tempdir()?;
    let mut server = start_server(dir.path(), &[LOG_ONLY, extra].concat())?;
    let requests = single_event_requests(args.events, args.callers);
    let calls = requests.iter().map(Vec::len).sum::<usize>() as f64;
    let grpc = server.grpc.clone();
    let pid = server.pid().to_string();
    let before = Cpu::now(Some(&pid), nats);
    let (per_sec, latencies) =
        on_client_thread(move || single_event_appends(grpc, requests)).await?;
    let cpu = Cpu::now(Some(&pid), nats).per_event_since(before, calls);
    let requests = batch_requests(args.events * 4, "batch");
    let grpc = server.grpc.clone();
    let batched = on_client_thread(move || batch_appends(grpc, requests))
        .await?
        .per_sec;
    server.stop();
    let single = Single {
        per_sec,
        latencies,
        cpu,
    };
    Ok((single, batched))
}

/// JetStream alone: the log's messages (subject, `Nats-Msg-Id`, position and trace headers, the
/// stored event's bytes) published to a new three-replica stream by `callers` callers, `per_call`
/// messages per call, each call waiting for every message's ack before the next.
async fn jetstream_alone(
    urls: &str,
    purpose: &str,
    (events, callers, per_call): (u64, usize, usize),
    nats: &[u32],
) -> anyhow::Result<Single> {
    let js = connect(urls).await?;
    let id = format!("{}_{purpose}", std::process::id());
    let stream = format!("BENCH_JS_{id}");
    let prefix = format!("benchjs{id}");
    js.get_or_create_stream(jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        duplicate_window: Duration::from_secs(24 * 3600),
        storage: jetstream::stream::StorageType::File,
        num_replicas: 3,
        ..Default::default()
    })
    .await?;
    let per_caller = (events / callers as u64) as usize / per_call * per_call;
    let calls: Vec<Vec<Vec<(HeaderMap, bytes::Bytes)>>> = (0..callers)
        .map(|w| {
            (0..per_caller)
                .map(|i| {
                    let e = sample_event(&format!("js-{w}"), i as u64);
                    let mut h = HeaderMap::new();
                    h.insert(header::NATS_MESSAGE_ID, e.event_id.as_str());
                    h.insert("Journey-Position", (i + 1).to_string().as_str());
                    h.insert(
                        "traceparent",
                        "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
                    );
                    (h, bytes::Bytes::from(e.encode_to_vec()))
                })
                .collect::<Vec<_>>()
                .chunks(per_call)
                .map(<[_]>::to_vec)
                .collect()
        })
        .collect();
    let subject = format!("{prefix}.observation_recorded");
    let before = Cpu::now(None, nats);
    let started = Instant::now();
    let tasks: Vec<_> = calls
        .into_iter()
        .map(|calls| {
            let (js, subject) = (js.clone(), subject.clone());
            tokio::spawn(async move {
                let mut h = Histogram::<u64>::new(3).expect("histogram");
                for call in calls {
                    let s = Instant::now();
                    let mut acks = Vec::with_capacity(call.len());
                    for (headers, body) in call {
                        acks.push(
                            js.publish_with_headers(subject.clone(), headers, body)
                                .await?,
                        );
                    }
                    for ack in acks {
                        ack.await?;
                    }
                    h.record(s.elapsed().as_micros() as u64)?;
                }
                anyhow::Ok(h)
            })
        })
        .collect();
    let mut latencies = Histogram::<u64>::new(3)?;
    for t in tasks {
        latencies.add(t.await??)?;
    }
    let sent = (per_caller * callers) as u64;
    let per_sec = rate(sent, started.elapsed());
    let cpu = Cpu::now(None, nats).per_event_since(before, sent as f64);
    delete_stream(urls.split(',').next().unwrap_or(urls), &stream).await;
    Ok(Single {
        per_sec,
        latencies,
        cpu,
    })
}

/// The NATS servers of `urls` that run on this machine (loopback addresses), by their ports.
fn local_nats(urls: &str) -> Vec<u32> {
    let ports: Vec<u16> = urls
        .split(',')
        .filter_map(|u| u.trim().parse::<async_nats::ServerAddr>().ok())
        .filter(|a| ["127.0.0.1", "localhost", "::1", "[::1]"].contains(&a.host()))
        .map(|a| a.port())
        .collect();
    crate::common::listening_pids(&ports)
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let urls = args.nats_url.as_str();
    let callers = args.callers;
    let nats = local_nats(urls);
    step("local mode: single-event appends, batches of 500");
    let (local_single, local_batched) = log_appends(args, &[], &nats).await?;

    step("replicated mode: the same appends, acknowledged by the JetStream cluster");
    let id = std::process::id();
    let (stream, prefix) = (format!("BENCH_REPL_{id}"), format!("benchrepl{id}.v1"));
    let flags = [
        "--ack",
        "replicated",
        "--nats-url",
        urls,
        "--nats-stream",
        &stream,
        "--nats-subject-prefix",
        &prefix,
    ];
    let (repl_single, repl_batched) = log_appends(args, &flags, &nats).await?;
    delete_stream(urls.split(',').next().unwrap_or(urls), &stream).await;

    step("JetStream alone: the same messages, one per call, then 500 per call");
    let js_single = jetstream_alone(urls, "single", (args.events, callers, 1), &nats).await?;
    let js_batched = jetstream_alone(urls, "batch", (args.events * 4, 4, 500), &nats).await?;
    let batched_events = event_count(&batch_requests(args.events * 4, "count"));

    let failover_stream = format!("BENCH_FAILOVER_{id}");
    let gap = super::failover::measure(urls, &failover_stream, 8).await;
    let first = urls.split(',').next().unwrap_or(urls);
    delete_stream(first, &failover_stream).await;
    delete_stream(first, &format!("KV_{failover_stream}_WRITER")).await;
    let gap = gap?;

    println!("| measurement | events/s | notes |\n|---|---:|---|");
    let single = |s: &Single| format!("{callers} callers; {}", s.note(!nats.is_empty()));
    let rows = [
        (
            "local, single-event appends",
            local_single.per_sec,
            single(&local_single),
        ),
        (
            "replicated, single-event appends",
            repl_single.per_sec,
            single(&repl_single),
        ),
        (
            "JetStream alone, one message per call",
            js_single.per_sec,
            single(&js_single),
        ),
        (
            "local, batches of 500",
            local_batched,
            "4 callers".to_string(),
        ),
        (
            "replicated, batches of 500",
            repl_batched,
            "4 callers".to_string(),
        ),
        (
            "JetStream alone, 500 per call",
            js_batched.per_sec,
            "4 callers".to_string(),
        ),
    ];
    for (name, per_sec, note) in rows {
        println!("| {name} | {per_sec:.0} | {note} |");
    }
    println!();
    println!(
        "ratios: batched replicated / JetStream alone = {:.2} (goal ≥ 0.7); single-event p99 \
         replicated / JetStream alone's ack p99 = {:.2} (goal ≤ 1.5); replicated / local: single \
         {:.2}, batched {:.2}; {batched_events} events batched",
        repl_batched / js_batched.per_sec,
        repl_single.p99() / js_single.p99(),
        repl_single.per_sec / local_single.per_sec,
        repl_batched / local_batched
    );
    if !nats.is_empty() {
        // The servers, the node and the client share this machine's cores: under this load a
        // single event's latency follows what every process spends on it.
        let (r, j) = (&repl_single.cpu, &js_single.cpu);
        println!(
            "CPU per single event, every process on this machine ({} NATS servers found here): \
             replicated {:.0} µs (NATS {:.0}, journey server {:.0}, client {:.0}), JetStream alone \
             {:.0} µs (NATS {:.0}, client {:.0}): {:.2}×",
            nats.len(),
            r.total(),
            r.nats,
            r.server,
            r.client,
            j.total(),
            j.nats,
            j.client,
            r.total() / j.total()
        );
    }
    let term = journey_failover::lease::TERM;
    println!(
        "failover gap (last ack by the old writer → first by the new one, 8 callers): {:.2} s = \
         {:.2}× the lease's term ({} s; goal < 10 s); {} appends acknowledged, {} tries sent again \
         to the other node",
        gap.gap.as_secs_f64(),
        gap.gap.as_secs_f64() / term.as_secs_f64(),
        term.as_secs(),
        gap.acknowledged,
        gap.retried
    );
    Ok(())
}
