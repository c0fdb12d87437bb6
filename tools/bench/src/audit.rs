//! `journey bench audit` (issue 5): on a log of simulated journeys plus one patient with many
//! events, over gRPC against `journey up`, in the same run:
//!
//! - Audit.Timeline of that patient (the whole stream drained), beside a do-nothing gRPC call;
//! - full-log verification (EventLog.Verify and Audit.Verify) in events/s, beside scanning and
//!   decoding the same log in process (and draining it over gRPC with EventLog.ReadAll);
//! - the cost of authentication and access control on a read: the same Coordination.FollowUp and
//!   Readmission.PatientStays calls against a server started with API keys (a bearer token on
//!   each call, the role and territory checks) and against the same server started `--insecure`.
//!   Both record each read of patient data in the access log (the insecure one as "anonymous").
use super::{
    common::{
        append_patient_events, baseline_row, fill_log, fmt_us, latency_row, machine, open_log,
        print_table, rate, rate_row, start_server, start_server_with, status, step, time_calls,
        time_noop, ServerChild, Until, Window,
    },
    coordination::wait_caught_up,
    rebuild::{scan, scan_row},
};
use crate::args::BenchAuditArgs;
use anyhow::Context;
use futures::StreamExt;
use hdrhistogram::Histogram;
use journey_event_log::EventLog;
use journey_log_access::MAX_MESSAGE;
use journey_proto::v1::{
    audit_client::AuditClient, coordination_client::CoordinationClient,
    event_log_client::EventLogClient, readmission_client::ReadmissionClient, AuditVerifyRequest,
    FollowUpRequest, PatientStaysRequest, ReadAllRequest, TimelineRequest, VerifyRequest,
    WorklistRequest,
};
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};
use tonic::transport::Channel;

const HEAVY_PATIENT: &str = "bench-audit-heavy-patient";

/// `journey up` on `dir` as in production: no `--insecure`, API keys from `keys`.
fn start_secure(dir: &Path, keys: &Path) -> anyhow::Result<ServerChild> {
    let keys = keys.to_str().context("API-key file path is not UTF-8")?;
    start_server_with(dir, &["--api-keys-file", keys])
}

/// A request with a declared purpose and, when given, a bearer token.
fn req<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("x-journey-purpose", "treatment".parse().expect("ascii"));
    if let Some(t) = token {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("ascii token"),
        );
    }
    r
}

/// The read calls compared with and without authentication.
struct Reads {
    noop: Histogram<u64>,
    follow_up: Histogram<u64>,
    stays: Histogram<u64>,
}

async fn reads(
    channel: &tonic::transport::Channel,
    patient: &str,
    coordinator: Option<&str>,
    quality: Option<&str>,
    calls: u64,
    budget: Duration,
) -> anyhow::Result<Reads> {
    let coordination = CoordinationClient::new(channel.clone());
    let readmission = ReadmissionClient::new(channel.clone());
    let noop = time_noop(channel, calls, budget).await?;
    let follow_up = time_calls(calls, budget, || {
        let mut c = coordination.clone();
        let r = req(
            FollowUpRequest {
                patient_id: patient.to_string(),
                as_of: None,
            },
            coordinator,
        );
        async move {
            c.follow_up(r).await.map_err(status).context("FollowUp")?;
            Ok(())
        }
    })
    .await?;
    let stays = time_calls(calls, budget, || {
        let mut c = readmission.clone();
        let r = req(
            PatientStaysRequest {
                patient_id: patient.to_string(),
            },
            quality,
        );
        async move {
            c.patient_stays(r)
                .await
                .map_err(status)
                .context("PatientStays")?;
            Ok(())
        }
    })
    .await?;
    Ok(Reads {
        noop,
        follow_up,
        stays,
    })
}

/// `journey bench audit`: fills a log, measures (b) in process, then (a), (c), (d), (e) against
/// `journey up --insecure` and (f) against the same log served with API keys; prints three tables.
pub async fn run(args: BenchAuditArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events > args.patient_events && args.patient_events > 0 && args.calls > 0,
        "--events must exceed --patient-events, and both and --calls must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let keys_dir = tempfile::tempdir()?;
    let (log, head) = fill(dir.path(), &args).await?;

    step("(b) baseline: scan and decode the whole log in process (best of 2)");
    let scan_rate = scan(&log, head).await?.max(scan(&log, head).await?);
    log.close().await?;
    drop(log);

    step("starting the server under test (journey up --insecure)");
    let mut server = start_server(dir.path(), &[])?;
    let channel = server.channel().await?;
    wait_caught_up(&channel, head).await?;
    let calls = args.calls;
    let budget = Duration::from_secs(args.budget_secs);

    step(&format!(
        "(c) Audit.Timeline of a patient with {} events, up to {calls} calls",
        args.patient_events
    ));
    let timeline =
        time_timeline(&channel, HEAVY_PATIENT, args.patient_events, calls, budget).await?;

    step("(d) full-log verification: EventLog.Verify and Audit.Verify (best of 3 each)");
    let verification = verification_rates(&channel, head).await?;

    let (patient, territory) = followed_patient(&channel).await?;
    step(&format!(
        "(e) reads of patient {patient} without authentication (--insecure), up to {calls} calls each"
    ));
    let insecure = reads(&channel, &patient, None, None, calls, budget).await?;
    drop(channel);
    server.stop();
    drop(server);

    let secure = secure_reads(
        dir.path(),
        keys_dir.path(),
        &patient,
        &territory,
        calls,
        budget,
    )
    .await?;

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {head} events: simulated journeys over 365 days and {} events of one patient (spread in two halves); SQLite read models and access log; one caller, sequential calls",
        args.patient_events
    );
    println!();
    print_timeline(args.patient_events, &timeline, &insecure.noop);
    println!();
    print_verification(scan_rate, &verification);
    println!();
    print_reads(&insecure, &secure);
    Ok(())
}

/// Opens a fresh log in `dir`, in process, and fills it with at least `--events` events:
/// simulated journeys (365 days), and the heavy patient's `--patient-events` spread across the
/// log, half before and half after the middle. Returns the log and its head.
async fn fill(dir: &Path, args: &BenchAuditArgs) -> anyhow::Result<(Arc<EventLog>, u64)> {
    let window = Window::last_days(args.sim.seed, 365);
    step(&format!(
        "filling a fresh log: ≥ {} simulated events (365 days, seed {}) and {} events of one patient",
        args.events - args.patient_events,
        args.sim.seed,
        args.patient_events
    ));
    let log = open_log(dir).await?;
    let half = (args.events - args.patient_events) / 2;
    let mut appended = 0;
    let first = fill_log(&log, window, 0, Until::Events(half)).await?;
    for round in 0..2 {
        let n = if round == 0 {
            args.patient_events / 2
        } else {
            args.patient_events - args.patient_events / 2
        };
        append_patient_events(&log, HEAVY_PATIENT, appended..appended + n).await?;
        appended += n;
        if round == 0 {
            // The first half may overshoot (whole journeys, batches of 1000): the rest may be 0.
            let rest = (args.events - args.patient_events).saturating_sub(first.events);
            fill_log(&log, window, first.next_patient, Until::Events(rest)).await?;
        }
    }
    anyhow::ensure!(appended == args.patient_events);
    let head = log.head().position;
    Ok((log, head))
}

/// (c) Audit.Timeline of `patient`, the whole stream drained each call; checks first that it has
/// all of the patient's `entries`.
pub(crate) async fn time_timeline(
    channel: &Channel,
    patient: &str,
    entries: u64,
    calls: u64,
    budget: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let audit = AuditClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE);
    let timeline = || {
        let mut c = audit.clone();
        async move {
            let mut stream = c
                .timeline(TimelineRequest {
                    patient_id: patient.into(),
                    from_version: 0,
                })
                .await
                .map_err(status)?
                .into_inner();
            let mut n = 0u64;
            while let Some(entry) = stream.next().await {
                entry.map_err(status)?;
                n += 1;
            }
            anyhow::Ok(n)
        }
    };
    let drained = timeline().await?;
    anyhow::ensure!(
        drained == entries,
        "the timeline has {drained} entries, expected {entries}"
    );
    time_calls(calls, budget, || async {
        timeline().await?;
        Ok(())
    })
    .await
}

/// Full-log rates in events/s, each the best of 3.
struct Verification {
    /// (d) EventLog.Verify.
    log_verify: f64,
    /// (d) Audit.Verify (with the anchor check).
    audit_verify: f64,
    /// EventLog.ReadAll, drained.
    read_all: f64,
}

/// The rate of a whole-log verification `what` that took `took`, checked to have found the log
/// sound (`ok`, else `problem` if any) and to have `checked` all its `head` events.
fn verified_rate(
    what: &str,
    ok: bool,
    checked: u64,
    problem: Option<&str>,
    head: u64,
    took: Duration,
) -> anyhow::Result<f64> {
    anyhow::ensure!(
        ok && checked == head,
        "{what}: ok {ok} checked {checked} of {head}{}",
        problem.map(|p| format!(" ({p})")).unwrap_or_default()
    );
    Ok(rate(checked, took))
}

/// (d) EventLog.Verify and Audit.Verify of the whole log, and EventLog.ReadAll drained, each
/// checked to cover the `head` events.
async fn verification_rates(channel: &Channel, head: u64) -> anyhow::Result<Verification> {
    let log_client = EventLogClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE);
    let audit = AuditClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE);
    let mut best = Verification {
        log_verify: 0.0,
        audit_verify: 0.0,
        read_all: 0.0,
    };
    for _ in 0..3 {
        let t = Instant::now();
        let v = log_client.clone().verify(VerifyRequest::default()).await;
        let v = v.map_err(status)?.into_inner();
        let r = verified_rate("EventLog.Verify", v.ok, v.checked, None, head, t.elapsed())?;
        best.log_verify = best.log_verify.max(r);

        let t = Instant::now();
        let v = audit.clone().verify(AuditVerifyRequest::default()).await;
        let v = v.map_err(status)?.into_inner();
        let problem = Some(v.problem.as_str());
        let r = verified_rate("Audit.Verify", v.ok, v.checked, problem, head, t.elapsed())?;
        best.audit_verify = best.audit_verify.max(r);

        let t = Instant::now();
        let mut stream = log_client
            .clone()
            .read_all(ReadAllRequest::default())
            .await
            .map_err(status)?
            .into_inner();
        let mut n = 0u64;
        while let Some(batch) = stream.next().await {
            n += batch.map_err(status)?.events.len() as u64;
        }
        anyhow::ensure!(n == head, "ReadAll drained {n} events of {head}");
        best.read_all = best.read_all.max(rate(n, t.elapsed()));
    }
    Ok(best)
}

/// A followed patient (with a territory), for the reads compared with and without
/// authentication: (patient, territory).
async fn followed_patient(channel: &Channel) -> anyhow::Result<(String, String)> {
    let item = CoordinationClient::new(channel.clone())
        .worklist(WorklistRequest {
            page_size: 1,
            window_days: 365,
            ..Default::default()
        })
        .await
        .map_err(status)?
        .into_inner()
        .items
        .into_iter()
        .next()
        .context("no followed patient in the worklist")?;
    Ok((item.patient_id, item.territory))
}

/// (f) the reads of `patient` against the log of `dir` served securely: API keys (written in
/// `keys_dir`) of a coordinator of `territory` and of a quality user; checks first that a call
/// without a token is refused.
async fn secure_reads(
    dir: &Path,
    keys_dir: &Path,
    patient: &str,
    territory: &str,
    calls: u64,
    budget: Duration,
) -> anyhow::Result<Reads> {
    let keys = keys_dir.join("api-keys");
    std::fs::write(
        &keys,
        format!(
            "# journey bench audit\nbench-coordinator-key coordinator bench-coordinator bench-org {territory}\nbench-quality-key quality bench-quality bench-org\n"
        ),
    )?;
    // A server refuses a key file others may read.
    std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    step(&format!(
        "(f) the same reads against a secure server (API keys: coordinator of {territory}, quality)"
    ));
    let mut server = start_secure(dir, &keys)?;
    let channel = server.channel().await?;
    let refused = CoordinationClient::new(channel.clone())
        .follow_up(req(
            FollowUpRequest {
                patient_id: patient.to_string(),
                as_of: None,
            },
            None,
        ))
        .await;
    anyhow::ensure!(
        refused.as_ref().err().map(|s| s.code()) == Some(tonic::Code::Unauthenticated),
        "the secure server answered a call without a token: {refused:?}"
    );
    let secure = reads(
        &channel,
        patient,
        Some("bench-coordinator-key"),
        Some("bench-quality-key"),
        calls,
        budget,
    )
    .await?;
    drop(channel);
    server.stop();
    drop(server);
    Ok(secure)
}

fn p50(h: &Histogram<u64>) -> u64 {
    h.value_at_quantile(0.5)
}

/// (a) and (c): the timeline against the do-nothing call.
fn print_timeline(entries: u64, timeline: &Histogram<u64>, noop: &Histogram<u64>) {
    print_table(
        ["call", "p50 / p99", "ratio to (a)", "notes"],
        &[
            baseline_row(
                "(a) do-nothing gRPC call (baseline, --insecure)",
                noop,
                format!("{} calls", noop.len()),
            ),
            latency_row(
                format!("(c) Audit.Timeline, {entries} events, stream drained"),
                timeline,
                noop,
                1,
                format!(
                    "{} calls; {:.0} entries/s at p50",
                    timeline.len(),
                    entries as f64 / (p50(timeline) as f64 / 1e6)
                ),
            ),
        ],
    );
}

/// (b) and (d): the verification rates against the scan in process.
fn print_verification(scan_rate: f64, v: &Verification) {
    print_table(
        ["verification", "events/s", "ratio to (b)", "notes"],
        &[
            scan_row("(b) scan + decode the log in process (baseline)", scan_rate),
            rate_row(
                "EventLog.ReadAll over gRPC, drained",
                v.read_all,
                scan_rate,
                "best of 3",
            ),
            rate_row(
                "(d) EventLog.Verify, whole log",
                v.log_verify,
                scan_rate,
                "best of 3; hash chain recomputed",
            ),
            rate_row(
                "(d) Audit.Verify, whole log",
                v.audit_verify,
                scan_rate,
                "best of 3; with the anchor check",
            ),
        ],
    );
}

/// (e/f): each read with and without authentication and access control.
fn print_reads(insecure: &Reads, secure: &Reads) {
    let cmp = |name: &str, i: &Histogram<u64>, s: &Histogram<u64>| {
        [
            baseline_row(
                format!("{name}, --insecure"),
                i,
                format!("{} calls", i.len()),
            ),
            latency_row(
                format!("{name}, API key + access control"),
                s,
                i,
                1,
                format!(
                    "{} calls; +{} at p50",
                    s.len(),
                    fmt_us(p50(s).saturating_sub(p50(i)))
                ),
            ),
        ]
    };
    let mut rows = Vec::new();
    rows.extend(cmp(
        "(a) do-nothing gRPC call",
        &insecure.noop,
        &secure.noop,
    ));
    rows.extend(cmp(
        "(e/f) Coordination.FollowUp (coordinator)",
        &insecure.follow_up,
        &secure.follow_up,
    ));
    rows.extend(cmp(
        "(e/f) Readmission.PatientStays (quality)",
        &insecure.stays,
        &secure.stays,
    ));
    print_table(["read", "p50 / p99", "ratio to --insecure", "notes"], &rows);
}
