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
        fill_log, fmt_us, machine, open_log, print_table, rate, sample_event, start_server, step,
        Row, ServerChild, Until, Window,
    },
    common::{start_server_with, status, time_calls, time_noop},
    coordination::wait_caught_up,
    rebuild::scan,
};
use crate::args::BenchAuditArgs;
use anyhow::Context;
use futures::StreamExt;
use hdrhistogram::Histogram;
use journey_event_log::AppendRequest;
use journey_proto::v1::{
    audit_client::AuditClient, coordination_client::CoordinationClient,
    event_log_client::EventLogClient, readmission_client::ReadmissionClient, AuditVerifyRequest,
    FollowUpRequest, PatientStaysRequest, ReadAllRequest, TimelineRequest, VerifyRequest,
    WorklistRequest,
};
use std::{
    path::Path,
    time::{Duration, Instant},
};

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

pub async fn run(args: BenchAuditArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events > args.patient_events && args.patient_events > 0 && args.calls > 0,
        "--events must exceed --patient-events, and both and --calls must be at least 1"
    );
    let dir = tempfile::tempdir()?;
    let keys_dir = tempfile::tempdir()?;
    let window = Window::last_days(args.seed, 365);
    step(&format!(
        "filling a fresh log: ≥ {} simulated events (365 days, seed {}) and {} events of one patient",
        args.events - args.patient_events,
        args.seed,
        args.patient_events
    ));
    let log = open_log(dir.path()).await?;
    let half = (args.events - args.patient_events) / 2;
    // The patient's events are spread across the log: half before, half after the middle.
    let mut heavy = (0..args.patient_events).map(|i| sample_event(HEAVY_PATIENT, i));
    let mut appended = 0;
    let first = fill_log(&log, window, 0, Until::Events(half)).await?;
    for round in 0..2 {
        let n = if round == 0 {
            args.patient_events / 2
        } else {
            args.patient_events - args.patient_events / 2
        };
        let mut left = n;
        while left > 0 {
            let batch: Vec<_> = heavy.by_ref().take(left.min(100) as usize).collect();
            left -= batch.len() as u64;
            appended += batch.len() as u64;
            log.append(AppendRequest {
                events: batch,
                expected_versions: Default::default(),
            })
            .await
            .context("appending the heavy patient's events")?;
        }
        if round == 0 {
            fill_log(
                &log,
                window,
                first.next_patient,
                Until::Events(args.events - args.patient_events - first.events),
            )
            .await?;
        }
    }
    anyhow::ensure!(appended == args.patient_events);
    let head = log.head().position;

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
    let audit = AuditClient::new(channel.clone()).max_decoding_message_size(64 * 1024 * 1024);
    let timeline = || {
        let mut c = audit.clone();
        async move {
            let mut stream = c
                .timeline(TimelineRequest {
                    patient_id: HEAVY_PATIENT.into(),
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
    let entries = timeline().await?;
    anyhow::ensure!(
        entries == args.patient_events,
        "the timeline has {entries} entries, expected {}",
        args.patient_events
    );
    let timeline_h = time_calls(calls, budget, || async {
        timeline().await?;
        Ok(())
    })
    .await?;

    step("(d) full-log verification: EventLog.Verify and Audit.Verify (best of 3 each)");
    let log_client =
        EventLogClient::new(channel.clone()).max_decoding_message_size(64 * 1024 * 1024);
    let mut verify_rate = 0f64;
    let mut audit_verify_rate = 0f64;
    let mut read_all_rate = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        let v = log_client
            .clone()
            .verify(VerifyRequest::default())
            .await
            .map_err(status)?
            .into_inner();
        let d = t.elapsed();
        anyhow::ensure!(
            v.ok && v.checked == head,
            "EventLog.Verify: ok {} checked {} of {head}",
            v.ok,
            v.checked
        );
        verify_rate = verify_rate.max(rate(v.checked, d));

        let t = Instant::now();
        let v = audit
            .clone()
            .verify(AuditVerifyRequest::default())
            .await
            .map_err(status)?
            .into_inner();
        let d = t.elapsed();
        anyhow::ensure!(
            v.ok && v.checked == head,
            "Audit.Verify: ok {} checked {} of {head} ({})",
            v.ok,
            v.checked,
            v.problem
        );
        audit_verify_rate = audit_verify_rate.max(rate(v.checked, d));

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
        read_all_rate = read_all_rate.max(rate(n, t.elapsed()));
    }

    // A followed patient (with a territory) for the reads compared with and without authentication.
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
    let (patient, territory) = (item.patient_id, item.territory);

    step(&format!(
        "(e) reads of patient {patient} without authentication (--insecure), up to {calls} calls each"
    ));
    let insecure = reads(&channel, &patient, None, None, calls, budget).await?;
    drop(channel);
    server.stop();
    drop(server);

    let keys = keys_dir.path().join("api-keys");
    std::fs::write(
        &keys,
        format!(
            "# journey bench audit\nbench-coordinator-key coordinator bench-coordinator bench-org {territory}\nbench-quality-key quality bench-quality bench-org\n"
        ),
    )?;
    step(&format!(
        "(f) the same reads against a secure server (API keys: coordinator of {territory}, quality)"
    ));
    let mut server = start_secure(dir.path(), &keys)?;
    let channel = server.channel().await?;
    let refused = CoordinationClient::new(channel.clone())
        .follow_up(req(
            FollowUpRequest {
                patient_id: patient.clone(),
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
        &patient,
        Some("bench-coordinator-key"),
        Some("bench-quality-key"),
        calls,
        budget,
    )
    .await?;
    drop(channel);
    server.stop();
    drop(server);

    println!();
    println!("machine: {}", machine());
    println!(
        "log: {head} events: simulated journeys over 365 days and {} events of one patient (spread in two halves); SQLite read models and access log; one caller, sequential calls",
        args.patient_events
    );
    println!();
    let p50 = |h: &Histogram<u64>| h.value_at_quantile(0.5);
    let p99 = |h: &Histogram<u64>| h.value_at_quantile(0.99);
    let lat = |h: &Histogram<u64>| format!("{} / {}", fmt_us(p50(h)), fmt_us(p99(h)));
    let ratio = |h: &Histogram<u64>, base: &Histogram<u64>| {
        format!(
            "{:.1} / {:.1}",
            p50(h) as f64 / p50(base) as f64,
            p99(h) as f64 / p99(base) as f64
        )
    };
    print_table(
        ["call", "p50 / p99", "ratio to (a)", "notes"],
        &[
            Row {
                name: "(a) do-nothing gRPC call (baseline, --insecure)".into(),
                figure: lat(&insecure.noop),
                ratio: "1 / 1".into(),
                note: format!("{} calls", insecure.noop.len()),
            },
            Row {
                name: format!(
                    "(c) Audit.Timeline, {} events, stream drained",
                    args.patient_events
                ),
                figure: lat(&timeline_h),
                ratio: ratio(&timeline_h, &insecure.noop),
                note: format!(
                    "{} calls; {:.0} entries/s at p50",
                    timeline_h.len(),
                    args.patient_events as f64 / (p50(&timeline_h) as f64 / 1e6)
                ),
            },
        ],
    );
    println!();
    print_table(
        ["verification", "events/s", "ratio to (b)", "notes"],
        &[
            Row {
                name: "(b) scan + decode the log in process (baseline)".into(),
                figure: format!("{scan_rate:.0}"),
                ratio: "1.00".into(),
                note: "batches of 2000, as the projection reads".into(),
            },
            Row {
                name: "EventLog.ReadAll over gRPC, drained".into(),
                figure: format!("{read_all_rate:.0}"),
                ratio: format!("{:.3}", read_all_rate / scan_rate),
                note: "best of 3".into(),
            },
            Row {
                name: "(d) EventLog.Verify, whole log".into(),
                figure: format!("{verify_rate:.0}"),
                ratio: format!("{:.3}", verify_rate / scan_rate),
                note: "best of 3; hash chain recomputed".into(),
            },
            Row {
                name: "(d) Audit.Verify, whole log".into(),
                figure: format!("{audit_verify_rate:.0}"),
                ratio: format!("{:.3}", audit_verify_rate / scan_rate),
                note: "best of 3; with the anchor check".into(),
            },
        ],
    );
    println!();
    let cmp = |name: &str, i: &Histogram<u64>, s: &Histogram<u64>| {
        [
            Row {
                name: format!("{name}, --insecure"),
                figure: lat(i),
                ratio: "1 / 1".into(),
                note: format!("{} calls", i.len()),
            },
            Row {
                name: format!("{name}, API key + access control"),
                figure: lat(s),
                ratio: ratio(s, i),
                note: format!(
                    "{} calls; +{} at p50",
                    s.len(),
                    fmt_us(p50(s).saturating_sub(p50(i)))
                ),
            },
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
    Ok(())
}
