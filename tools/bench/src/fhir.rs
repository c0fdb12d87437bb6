//! `journey bench fhir` (issue 17): on a log of simulated journeys plus one patient with many
//! events, against `journey up --insecure`, in the same run:
//!
//! - the Bulk Data export of every patient (`GET /fhir/$export`, kick-off to manifest), in
//!   resources/s and in log events/s, beside scanning and decoding the same log in process; and
//!   the same export without the Tasks (the coordination view's queries);
//! - `GET /fhir/Patient/{id}/$everything` of that patient, p50/p99, beside Audit.Timeline of the
//!   same patient over gRPC (the whole stream drained);
//! - where an export's time goes, in process on one thread: reading each patient's stream,
//!   mapping it, writing the mapped resources and the Provenances (resources/s of each stage).
use super::{
    audit::time_timeline,
    common::append_patient_events,
    common::{
        fill_log, latency_row, machine, open_log, print_table, rate, rate_row, start_server, step,
        time_calls, Until, Window,
    },
    coordination::wait_caught_up,
    rebuild::{scan, scan_row},
};
use anyhow::Context;
use clap::Args;
use journey_event_log::EventLog;
use journey_fhir::bundle::Entry;
use std::{
    collections::HashSet,
    time::{Duration, Instant},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HEAVY_PATIENT: &str = "bench-fhir-heavy-patient";

#[derive(Debug, Args, Clone)]
pub struct BenchFhirArgs {
    /// Simulated events in the log (whole journeys: a few more), besides the one patient's.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Events of the one patient whose `$everything` and timeline are timed.
    #[arg(long, default_value_t = 1_000)]
    pub patient_events: u64,
    /// Timed calls of each (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 100)]
    pub calls: u64,
    /// Stop timing a call after this many seconds (at least 10 calls).
    #[arg(long, default_value_t = 60)]
    pub budget_secs: u64,
    /// Simulator seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One HTTP/1.1 exchange on a fresh connection: status, header block, body.
async fn exchange(addr: &str, path: &str, headers: &str) -> anyhow::Result<(u16, String, Vec<u8>)> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot reach {addr}"))?;
    s.set_nodelay(true)?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\r\n");
    s.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut buf).await?;
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no HTTP header in the answer")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status")?;
    Ok((code, head, buf[end + 4..].to_vec()))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Every type an export writes but the Tasks (`_type`), for the export without the coordination
/// view's queries.
const ALL_BUT_TASKS: &str = "Patient,Encounter,Observation,Condition,MedicationRequest,Procedure,CarePlan,CareTeam,Appointment,DocumentReference,Communication,Flag,Consent,Provenance";

/// An export at `path`: kick-off, status polled every 20 ms, manifest. (resources, time).
async fn export(addr: &str, path: &str) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let (code, head, body) = exchange(addr, path, "Prefer: respond-async\r\n").await?;
    anyhow::ensure!(
        code == 202,
        "kick-off: {code} {}",
        String::from_utf8_lossy(&body)
    );
    let location = header(&head, "content-location").context("no Content-Location")?;
    let rest = location.split_once("://").map_or(location, |(_, r)| r);
    let path = &rest[rest.find('/').context("a status address without path")?..];
    loop {
        let (code, _, body) = exchange(addr, path, "").await?;
        match code {
            202 => tokio::time::sleep(Duration::from_millis(20)).await,
            200 => {
                let took = started.elapsed();
                let manifest: serde_json::Value = serde_json::from_slice(&body)?;
                let n = manifest["output"]
                    .as_array()
                    .context("a manifest without output")?
                    .iter()
                    .filter_map(|o| o["count"].as_u64())
                    .sum();
                return Ok((n, took));
            }
            c => anyhow::bail!("export status {c}: {}", String::from_utf8_lossy(&body)),
        }
    }
}

/// Where an export's time goes, in process on one thread (what each of the export's workers
/// does for a patient): the patients found, their resources, and the time of each stage.
struct Stages {
    patients: u64,
    mapped: u64,
    provenances: u64,
    bytes: u64,
    read: Duration,
    map: Duration,
    write_mapped: Duration,
    write_provenances: Duration,
}

/// Reads the patient ids from the log, then each patient's stream, maps it and writes its
/// resources (the mapped ones, then the Provenances) to memory, timing each stage.
fn stages(log: &EventLog, head: u64) -> anyhow::Result<Stages> {
    let mut patients = Vec::new();
    let mut seen = HashSet::new();
    let mut from = 1;
    while from <= head {
        let batch = log
            .read_range(from, head, 2000)
            .map_err(|e| anyhow::anyhow!(e.0))?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        for stored in batch {
            let e = stored.decode().map_err(|e| anyhow::anyhow!(e.0))?;
            if seen.insert(e.patient_id.clone()) {
                patients.push(e.patient_id);
            }
        }
    }
    let mut s = Stages {
        patients: patients.len() as u64,
        mapped: 0,
        provenances: 0,
        bytes: 0,
        read: Duration::ZERO,
        map: Duration::ZERO,
        write_mapped: Duration::ZERO,
        write_provenances: Duration::ZERO,
    };
    let mut out = Vec::with_capacity(4 << 20);
    for patient in &patients {
        let started = Instant::now();
        let events = log
            .read_stream(patient, 1, usize::MAX)
            .and_then(|stored| {
                stored
                    .iter()
                    .map(|e| e.decode())
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| anyhow::anyhow!(e.0))?;
        s.read += started.elapsed();
        let started = Instant::now();
        let resources = journey_fhir::resources(patient, &events);
        s.map += started.elapsed();
        let started = Instant::now();
        for r in &resources {
            r.write(&mut out)?;
            out.push(b'\n');
        }
        s.mapped += resources.len() as u64;
        s.write_mapped += started.elapsed();
        let started = Instant::now();
        for e in &events {
            Entry::Provenance(e).write(&mut out)?;
            out.push(b'\n');
        }
        s.provenances += events.len() as u64;
        s.write_provenances += started.elapsed();
        s.bytes += out.len() as u64;
        out.clear();
    }
    Ok(s)
}

pub async fn run(args: BenchFhirArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events > 0 && args.patient_events > 0 && args.calls > 0,
        "--events, --patient-events and --calls must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    step(&format!(
        "filling a fresh log: ≥ {} simulated events (365 days, seed {}) and {} events of one patient",
        args.events, args.seed, args.patient_events
    ));
    let log = open_log(dir.path()).await?;
    fill_log(
        &log,
        Window::last_days(args.seed, 365),
        0,
        Until::Events(args.events),
    )
    .await?;
    append_patient_events(&log, HEAVY_PATIENT, 0..args.patient_events).await?;
    let head = log.head().position;

    step("baseline: scan and decode the whole log in process (best of 2)");
    let scan_rate = scan(&log, head).await?.max(scan(&log, head).await?);

    step(
        "where an export's time goes: each patient read, mapped and written in process, one thread",
    );
    let in_process = {
        let log = log.clone();
        tokio::task::spawn_blocking(move || stages(&log, head)).await??
    };
    log.close().await?;
    drop(log);

    step("starting the server under test (journey up --insecure)");
    let mut server = start_server(dir.path(), &[])?;
    let channel = server.channel().await?;
    wait_caught_up(&channel, head).await?;
    let http = server.http.trim_start_matches("http://").to_string();

    step("Bulk Data export of every patient, then without the Tasks (best of 2 each)");
    let (resources, first) = export(&http, "/fhir/$export").await?;
    let (_, second) = export(&http, "/fhir/$export").await?;
    let took = first.min(second);
    let untasked = format!("/fhir/$export?_type={ALL_BUT_TASKS}");
    let (without_tasks, first) = export(&http, &untasked).await?;
    let (_, second) = export(&http, &untasked).await?;
    let took_without_tasks = first.min(second);

    let budget = Duration::from_secs(args.budget_secs);
    step(&format!(
        "$everything and Audit.Timeline of a patient with {} events, up to {} calls each",
        args.patient_events, args.calls
    ));
    let path = format!("/fhir/Patient/{HEAVY_PATIENT}/$everything");
    let everything = time_calls(args.calls, budget, || async {
        let (code, _, body) = exchange(&http, &path, "").await?;
        anyhow::ensure!(code == 200, "$everything: {code}");
        anyhow::ensure!(!body.is_empty());
        Ok(())
    })
    .await?;
    let timeline = time_timeline(
        &channel,
        HEAVY_PATIENT,
        args.patient_events,
        args.calls,
        budget,
    )
    .await?;
    drop(channel);
    server.stop();

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {head} events: simulated journeys over 365 days and {} events of one patient; SQLite read models and access log; one caller",
        args.patient_events
    );
    println!();
    print_table(
        ["measure", "rate (/s)", "× scan", "note"],
        &[
            scan_row("scan and decode the log in process (events)", scan_rate),
            rate_row(
                "Bulk Data export (resources)",
                rate(resources, took),
                scan_rate,
                format!(
                    "{resources} resources in {:.2} s, kick-off to manifest, status polled every 20 ms",
                    took.as_secs_f64()
                ),
            ),
            rate_row(
                "Bulk Data export (log events)",
                rate(head, took),
                scan_rate,
                "the same export, counted in the log's events",
            ),
            rate_row(
                "Bulk Data export without the Tasks (resources)",
                rate(without_tasks, took_without_tasks),
                scan_rate,
                format!(
                    "{without_tasks} resources in {:.2} s: _type every type but Task (no query of the coordination view)",
                    took_without_tasks.as_secs_f64()
                ),
            ),
        ],
    );
    println!();
    let s = &in_process;
    let all = s.read + s.map + s.write_mapped + s.write_provenances;
    let resources = s.mapped + s.provenances;
    let stage = |name: &str, n: u64, took: Duration, note: String| {
        rate_row(
            name,
            rate(n, took),
            scan_rate,
            format!(
                "{:.2} s, {:.0} % of the in-process total; {note}",
                took.as_secs_f64(),
                100.0 * took.as_secs_f64() / all.as_secs_f64().max(1e-9)
            ),
        )
    };
    print_table(
        [
            "in process, one thread (resources)",
            "rate (/s)",
            "× scan",
            "note",
        ],
        &[
            stage(
                "whole: read, map, write",
                resources,
                all,
                format!(
                    "{} patients, {resources} resources, {} MB",
                    s.patients,
                    s.bytes >> 20
                ),
            ),
            stage(
                "reading each patient's stream (counted in its resources)",
                resources,
                s.read,
                "the log's patient index, events decoded".into(),
            ),
            stage(
                "mapping (journey_fhir::resources, JSON trees and Observations written)",
                s.mapped,
                s.map,
                format!("{} resources", s.mapped),
            ),
            stage(
                "writing the mapped resources",
                s.mapped,
                s.write_mapped,
                "trees serialised, written ones copied".into(),
            ),
            stage(
                "writing the Provenances (straight from the events)",
                s.provenances,
                s.write_provenances,
                format!("{} resources", s.provenances),
            ),
        ],
    );
    println!();
    print_table(
        ["call", "p50 / p99", "× timeline", "note"],
        &[
            latency_row(
                "Audit.Timeline (gRPC, stream drained)",
                &timeline,
                &timeline,
                2,
                "the baseline",
            ),
            latency_row(
                "FHIR $everything (HTTP, whole Bundle)",
                &everything,
                &timeline,
                2,
                format!("{} events of one patient", args.patient_events),
            ),
        ],
    );
    Ok(())
}
