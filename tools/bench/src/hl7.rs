//! `journey bench hl7`: HL7 v2 ADT messages over MLLP, each answered `AA` once its event is on
//! disk, over one connection (one message in flight) and over many, beside the baseline of the
//! same events appended over gRPC by as many single-event callers, in the same run against the
//! same `journey up`; ACK latency p50/p99 beside the Append latency. `--parse-only`: the
//! single-thread rate of reading and mapping an ADT message, beside splitting the same bytes into
//! segments and fields.
use super::{
    append::median,
    common::{
        histogram, latency_row, machine, print_table, rate, rate_row, record, start_server, step,
        Row, ServerChild,
    },
};
use crate::{args::BenchHl7Args, common::log_client};
use anyhow::Context;
use hdrhistogram::Histogram;
use journey_hl7::{listener::events_of, mllp, Settings};
use journey_proto::v1::AppendRequest;
use std::{
    hint::black_box,
    time::{Duration, Instant},
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

/// The organisation the listener writes as.
const ORGANISATION: &str = "bench-hospital";

/// An ADT^A28 (add person: one `PatientRegistered`) of patient `patient`, control id `control`.
fn a28(patient: &str, control: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|GAM|CHU-B|JOURNEY|BACKBONE|20260301101500||ADT^A28^ADT_A05|{control}|P|2.5|||||FRA|UNICODE UTF-8\r\
EVN||20260301101500\r\
PID|1||{patient}^^^CHU-B^PI||DUPONT^JEANNE||19600101|F\r"
    )
    .into_bytes()
}

/// A PAM-FR ADT^A01 as a hospital sends it: MSH, EVN, PID (IPP and a validated INS), PD1 (GP),
/// PV1, ZBE, ZFM and two DG1 (an admission and a registration).
fn a01(i: u64) -> Vec<u8> {
    format!(
        "MSH|^~\\&|GAM|CHU-B|JOURNEY|BACKBONE|20260301101500+0100||ADT^A01^ADT_A01|MSG-{i}|P|2.5|||||FRA|UNICODE UTF-8|||2.11.2\r\
EVN||20260301101500|||OP12^MARTIN^Luc|20260301101000\r\
PID|1||IPP{i}^^^CHU-B&1.2.250.1.71.4.2.7&ISO^PI~1850712345678^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||DUPONT^JEANNE^^^^^L~DUPONT^Jeanne^^^^^S||19850712|F|||12 rue de la Paix^^PARIS^^75002^FRA||^PRN^PH^^^^^^^^^0102030405|||||||||||||||||VALI\r\
PD1||||10003456789^LEGRAND^Paul\r\
PV1|1|I|UF-CARDIO^12^B^CHU-B||||||||||||||||SEJ-{i}^^^CHU-B^AN|||||||||||||||||||||||||20260301101000\r\
ZBE|MVT-{i}^CHU-B|20260301101000||INSERT|N||UF-CARDIO^^^^^CHU-B^UF^^^4501||HMS\r\
ZFM|8||||\r\
DG1|1|I10|I50.9^Insuffisance cardiaque^I10||20260301|A\r\
DG1|2|I10|E11.9^Diabète de type 2^I10||20260301|S\r"
    )
    .into_bytes()
}

fn settings() -> Settings {
    Settings {
        organisation: ORGANISATION.into(),
        patient_id_authority: None,
        time_zone: "Europe/Paris".parse().expect("a time zone"),
    }
}

/// A free local port for the listener.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends `messages` in order over one connection, each after the ACK of the one before: every
/// ACK's latency, in µs. Anything but `AA` stops the run, with the ACK.
async fn send_in_order(addr: String, messages: Vec<Vec<u8>>) -> anyhow::Result<Histogram<u64>> {
    let tcp = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("cannot reach the MLLP listener at {addr}"))?;
    tcp.set_nodelay(true)?;
    let (read, mut write) = tcp.into_split();
    let mut reader = mllp::Reader::new(read, 1 << 20);
    let mut h = histogram();
    for m in messages {
        let sent = Instant::now();
        write.write_all(&mllp::frame(&m)).await?;
        let mllp::Frame::Message(ack) = reader.next().await? else {
            anyhow::bail!("the listener closed the connection without an ACK");
        };
        record(&mut h, sent.elapsed());
        anyhow::ensure!(
            ack.windows(4).any(|w| w == b"|AA|"),
            "a message was not accepted: {}",
            String::from_utf8_lossy(&ack)
        );
    }
    Ok(h)
}

/// `connections` senders, each with its own share of `messages` in order: the time it took and
/// the ACK latencies.
async fn mllp_run(
    addr: &str,
    messages: Vec<Vec<u8>>,
    connections: usize,
) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let mut shares = vec![Vec::new(); connections];
    for (i, m) in messages.into_iter().enumerate() {
        shares[i % connections].push(m);
    }
    let started = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| tokio::spawn(send_in_order(addr.to_string(), share)))
        .collect();
    let mut all = histogram();
    for t in tasks {
        all.add(t.await??)?;
    }
    Ok((started.elapsed(), all))
}

/// The baseline: the events `messages` map to, appended over gRPC by `callers` callers, one
/// event per call, on one connection (as `journey bench append` does): the time and latencies.
async fn grpc_run(
    server: &ServerChild,
    messages: &[Vec<u8>],
    callers: usize,
) -> anyhow::Result<(Duration, Histogram<u64>)> {
    let settings = settings();
    let mut shares: Vec<Vec<AppendRequest>> = vec![Vec::new(); callers];
    for (i, m) in messages.iter().enumerate() {
        let (_, events) = events_of(m, &settings).map_err(|ack| {
            anyhow::anyhow!("unmapped message: {}", String::from_utf8_lossy(&ack))
        })?;
        shares[i % callers].push(AppendRequest {
            events,
            expected_versions: Default::default(),
        });
    }
    let client = log_client(&server.grpc).await?;
    let started = Instant::now();
    let tasks: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let mut c = client.clone();
            tokio::spawn(async move {
                let mut h = histogram();
                for req in share {
                    let sent = Instant::now();
                    c.append(req).await?;
                    record(&mut h, sent.elapsed());
                }
                anyhow::Ok(h)
            })
        })
        .collect();
    let mut all = histogram();
    for t in tasks {
        all.add(t.await??)?;
    }
    Ok((started.elapsed(), all))
}

/// `n` A28 messages of fresh patients whose ids start with `prefix`.
fn registrations(prefix: &str, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| a28(&format!("{prefix}-{i}"), &format!("{prefix}-{i}")))
        .collect()
}

/// One round's figures: the three rates.
struct Round {
    grpc: f64,
    many: f64,
    one: f64,
}

pub async fn run(args: BenchHl7Args) -> anyhow::Result<()> {
    if args.parse_only {
        return parse_only(args.parse_messages);
    }
    let (c, rounds) = (args.connections, args.rounds.max(1));
    let n = args.messages / rounds;
    let single = (args.single_messages / rounds).max(1);
    anyhow::ensure!(
        c > 0 && n >= c as u64,
        "--connections must be at least 1 and --messages at least --connections × --rounds"
    );
    let dir = tempfile::tempdir()?;
    let mllp_addr = format!("127.0.0.1:{}", free_port()?);
    step(&format!(
        "starting journey up (log only) with an MLLP listener on {mllp_addr}"
    ));
    let server = start_server(
        &dir.path().join("data"),
        &[
            "--no-read-models",
            "--no-reactor",
            "--mllp-addr",
            &mllp_addr,
            "--mllp-organisation",
            ORGANISATION,
        ],
    )?;
    step("warm-up: 500 messages over MLLP, 500 appends over gRPC");
    mllp_run(&mllp_addr, registrations("warm-m", 500), c).await?;
    grpc_run(&server, &registrations("warm-g", 500), c).await?;

    // Rounds of (a), (b), (c) back to back, so that a disk shared with other work slows all
    // three alike; each ratio is the rounds' median.
    let mut figures = Vec::new();
    let (mut grpc_lat, mut many_lat, mut one_lat) = (histogram(), histogram(), histogram());
    for r in 1..=rounds {
        step(&format!(
            "round {r} of {rounds}: (a) gRPC Append, {c} callers, {n} events; (b) MLLP, {c} connections, {n} messages; (c) MLLP, 1 connection, {single} messages"
        ));
        let (t, h) = grpc_run(&server, &registrations(&format!("grpc-{r}"), n), c).await?;
        grpc_lat.add(h)?;
        let grpc = rate(n, t);
        let (t, h) = mllp_run(&mllp_addr, registrations(&format!("many-{r}"), n), c).await?;
        many_lat.add(h)?;
        let many = rate(n, t);
        let (t, h) = mllp_run(&mllp_addr, registrations(&format!("one-{r}"), single), 1).await?;
        one_lat.add(h)?;
        figures.push(Round {
            grpc,
            many,
            one: rate(single, t),
        });
    }
    drop(server);

    let grpc = median(figures.iter().map(|f| f.grpc));
    let ratio = |f: fn(&Round) -> f64| median(figures.iter().map(|r| f(r) / r.grpc));
    let spread = |f: fn(&Round) -> f64| {
        let v: Vec<String> = figures.iter().map(|r| format!("{:.0}", f(r))).collect();
        v.join(", ")
    };
    println!();
    println!("machine: {}", machine());
    println!(
        "journey up --no-read-models --no-reactor --insecure; each message an ADT^A28 of a new patient (one PatientRegistered), answered AA after the fsync; {rounds} rounds of (a), (b), (c); rates and ratios are the rounds' medians"
    );
    println!();
    let row = |name: String, per_sec: f64, ratio: f64, note: String| Row {
        name,
        figure: format!("{per_sec:.0}"),
        ratio: format!("{ratio:.3}"),
        note,
    };
    let rows = [
        row(
            format!("(a) gRPC Append, {c} single-event callers (baseline)"),
            grpc,
            1.0,
            format!("{n} events a round: {}", spread(|r| r.grpc)),
        ),
        row(
            format!("(b) MLLP, {c} connections, one message in flight each"),
            median(figures.iter().map(|f| f.many)),
            ratio(|r| r.many),
            format!("{n} messages a round: {}", spread(|r| r.many)),
        ),
        row(
            "(c) MLLP, 1 connection, one message in flight".into(),
            median(figures.iter().map(|f| f.one)),
            ratio(|r| r.one),
            format!("{single} messages a round: {}", spread(|r| r.one)),
        ),
    ];
    print_table(["path", "events/s", "ratio to (a)", "notes"], &rows);
    println!();
    let rows = [
        latency_row(
            format!("(a) gRPC Append latency, {c} callers (baseline)"),
            &grpc_lat,
            &grpc_lat,
            1,
            "all rounds",
        ),
        latency_row(
            format!("(b) ACK latency, {c} connections"),
            &many_lat,
            &grpc_lat,
            2,
            "frame written → ACK read, all rounds",
        ),
        latency_row(
            "(c) ACK latency, 1 connection",
            &one_lat,
            &grpc_lat,
            2,
            "frame written → ACK read, all rounds",
        ),
    ];
    print_table(["latency", "p50 / p99", "ratio to (a)", "notes"], &rows);
    Ok(())
}

/// `--parse-only`: one thread parsing and mapping `n` PAM-FR A01 messages (all distinct), beside
/// the baseline of splitting the same bytes into segments and fields.
fn parse_only(n: u64) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--parse-messages must be at least 1");
    let settings = settings();
    step(&format!("building {n} distinct ADT^A01 messages"));
    let messages: Vec<Vec<u8>> = (0..n).map(a01).collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    events_of(&messages[0], &settings).map_err(|ack| {
        anyhow::anyhow!(
            "the sample A01 is not mapped: {}",
            String::from_utf8_lossy(&ack)
        )
    })?;

    let mut best = [f64::MAX; 3];
    for round in 1..=3 {
        step(&format!("round {round} of 3"));
        let t = Instant::now();
        for m in &messages {
            let fields = m
                .split(|b| *b == b'\r')
                .flat_map(|segment| segment.split(|b| *b == b'|'))
                .count();
            black_box(fields);
        }
        best[0] = best[0].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for m in &messages {
            black_box(journey_hl7::message::Message::parse(m).ok());
        }
        best[1] = best[1].min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        for m in &messages {
            black_box(events_of(m, &settings).is_ok());
        }
        best[2] = best[2].min(t.elapsed().as_secs_f64());
    }
    let per_sec = best.map(|s| n as f64 / s);
    println!();
    println!("machine: {}", machine());
    println!(
        "{n} distinct PAM-FR ADT^A01 messages (UTF-8, MSH EVN PID PD1 PV1 ZBE ZFM DG1×2), {} bytes on average; one thread, best of 3",
        bytes as u64 / n
    );
    println!();
    let rows = [
        rate_row(
            "(a) split into segments and fields, nothing decoded (baseline)",
            per_sec[0],
            per_sec[0],
            "bytes split on CR and |",
        ),
        rate_row(
            "(b) parse: charset, separators, segments",
            per_sec[1],
            per_sec[0],
            "Message::parse",
        ),
        rate_row(
            "(c) parse and map to events (what the listener does before Append)",
            per_sec[2],
            per_sec[0],
            "listener::events_of: Admitted + PatientRegistered, UUID v5 ids",
        ),
    ];
    print_table(["step", "messages/s", "ratio to (a)", "notes"], &rows);
    Ok(())
}
