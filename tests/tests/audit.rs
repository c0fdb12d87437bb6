//! The Audit service and `journey audit …` on a real `journey up`: the timeline equals what was
//! appended, the bi-temporal "as of" on pinned cases, an event altered below the chain and a
//! truncated tail caught (the latter through the anchored head), the FHIR R4 export, the errors,
//! and `journey serve audit` over a remote log.
use futures::StreamExt;
use journey_proto::v1::{
    self, audit_client::AuditClient, event::Payload, AsOfRequest, AsOfResponse, AuditAnchor,
    AuditVerifyRequest, AuditVerifyResponse, Event, ExportRequest, ReadAllRequest, TimelineEntry,
    TimelineRequest,
};
use journey_tests::*;
use prost_types::Timestamp;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, SystemTime},
};
use tonic::{transport::Channel, Code};

async fn audit(grpc: &str) -> AuditClient<Channel> {
    AuditClient::new(journey_tests::client::channel(grpc).await.unwrap())
}

fn journey(server: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(journey_bin())
        .args(args)
        .args(["--server", server])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// `journey up` with its standard error kept in `stderr_file` (to read warnings).
fn start_logged(data_dir: &Path, anchor: &Path, stderr_file: &Path) -> Server {
    let mut child = Command::new(journey_bin())
        .args([
            "up",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--anchor-file")
        .arg(anchor)
        .args(["--anchor-interval-ms", "50"])
        .env("RUST_LOG", "warn")
        .env("JOURNEY_INSECURE", "true")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr_file).unwrap())
        .spawn()
        .expect("spawn journey");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("ready line");
    let grpc = line
        .split(' ')
        .find_map(|p| p.strip_prefix("grpc="))
        .map(|a| format!("http://{a}"))
        .unwrap_or_else(|| panic!("no ready line: {line:?}"));
    let http = line
        .trim()
        .split(' ')
        .find_map(|p| p.strip_prefix("http="))
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    Server { child, grpc, http }
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

fn with_links(mut e: Event, corr: &str, cause: &str) -> Event {
    e.correlation_id = corr.into();
    e.causation_id = cause.into();
    e.actor.as_mut().unwrap().organisation = "CHU-1".into();
    e
}

async fn timeline(grpc: &str, patient: &str) -> Vec<TimelineEntry> {
    let mut c = audit(grpc).await;
    let mut s = c
        .timeline(TimelineRequest {
            patient_id: patient.into(),
            from_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(e) = s.next().await {
        out.push(e.unwrap());
    }
    out
}

async fn as_of(
    grpc: &str,
    patient: &str,
    clinical: Option<Timestamp>,
    recorded: Option<Timestamp>,
) -> AsOfResponse {
    audit(grpc)
        .await
        .as_of(AsOfRequest {
            patient_id: patient.into(),
            clinical_time: clinical,
            recorded_time: recorded,
        })
        .await
        .unwrap()
        .into_inner()
}

async fn verify(grpc: &str, anchor: Option<AuditAnchor>) -> AuditVerifyResponse {
    audit(grpc)
        .await
        .verify(AuditVerifyRequest {
            from_position: 0,
            to_position: 0,
            anchor,
        })
        .await
        .unwrap()
        .into_inner()
}

fn read_anchor(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("anchor file")).unwrap()
}

/// A journey with links between events (correlation, causation) and another patient interleaved.
fn journey_events() -> Vec<Vec<Event>> {
    let admit = with_links(admitted("AUD-1", "E1", 5 * 86_400), "E1", "");
    let admit_id = admit.event_id.clone();
    vec![
        vec![admit, observation("AUD-OTHER", 1.0)],
        vec![with_links(
            event(
                "AUD-1",
                ts(4 * 86_400),
                Payload::Transferred(v1::Transferred {
                    encounter_id: "E1".into(),
                    from_unit: "cardio".into(),
                    to_unit: "icu".into(),
                    ..Default::default()
                }),
            ),
            "E1",
            &admit_id,
        )],
        vec![
            with_links(discharged("AUD-1", "E1", 3 * 86_400), "E1", &admit_id),
            observation("AUD-1", 2.0),
            observation("AUD-OTHER", 3.0),
        ],
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_equals_what_was_appended() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = server.client().await;
    let mut sent = Vec::new();
    for b in journey_events() {
        let r = log.append(batch(b.clone())).await.unwrap().into_inner();
        for (e, a) in b.into_iter().zip(r.appended) {
            if e.patient_id == "AUD-1" {
                sent.push((e, a.position, a.stream_version));
            }
        }
    }
    let got = timeline(&server.grpc, "AUD-1").await;
    assert_eq!(got.len(), sent.len());
    // The chain hash of every position (other patients' events sit between).
    let mut hash_at = std::collections::HashMap::from([(0u64, vec![0u8; 32])]);
    let mut all = log
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    while let Some(b) = all.next().await {
        for e in b.unwrap().events {
            hash_at.insert(e.position, e.hash);
        }
    }
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for (entry, (e, position, version)) in got.iter().zip(&sent) {
        let stored = entry.event.as_ref().unwrap();
        assert_eq!(stored.event_id, e.event_id);
        assert_eq!(stored.payload, e.payload);
        assert_eq!(stored.occurred_at, e.occurred_at);
        assert_eq!(stored.actor, e.actor);
        assert_eq!(
            (entry.position, entry.stream_version),
            (*position, *version)
        );
        assert_eq!(entry.actor_id, "nurse-1");
        assert_eq!(entry.actor_role, v1::Role::HomeNurse as i32);
        assert_eq!(
            entry.actor_organisation,
            e.actor.as_ref().unwrap().organisation
        );
        assert_eq!(entry.source, "e2e-test");
        assert_eq!(entry.occurred_at, e.occurred_at);
        assert_eq!(entry.recorded_at, stored.recorded_at);
        assert!(entry.recorded_at.is_some());
        let delay = entry.recorded_at.unwrap().seconds - e.occurred_at.unwrap().seconds;
        assert_eq!(entry.recording_delay_seconds, delay);
        assert_eq!(entry.correlation_id, e.correlation_id);
        assert_eq!(entry.causation_id, e.causation_id);
        assert_eq!(entry.hash_hex.len(), 64);
        assert_eq!(
            entry.event_type,
            journey_proto::EventType::of(e.payload.as_ref().unwrap()).name()
        );
        assert_eq!(entry.hash_hex, hex(&hash_at[&entry.position]));
        assert_eq!(entry.prev_hash_hex, hex(&hash_at[&(entry.position - 1)]));
    }
    // The discharge names the admission as its cause.
    assert_eq!(got[2].causation_id, got[0].event.as_ref().unwrap().event_id);

    // from_version is inclusive.
    let mut c = audit(&server.grpc).await;
    let mut s = c
        .timeline(TimelineRequest {
            patient_id: "AUD-1".into(),
            from_version: 3,
        })
        .await
        .unwrap()
        .into_inner();
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first.stream_version, 3);

    // The CLI prints one readable entry per event.
    let (code, out, err) = journey(&server.grpc, &["audit", "timeline", "--patient", "AUD-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Admitted") && out.contains("Transferred"),
        "{out}"
    );
    assert!(
        out.contains("by nurse-1 (ROLE_HOME_NURSE, CHU-1) via e2e-test"),
        "{out}"
    );
    assert!(out.contains(&format!(
        "causation {}",
        got[0].event.as_ref().unwrap().event_id
    )));
    let (code, out, _) = journey(
        &server.grpc,
        &["audit", "timeline", "--patient", "AUD-1", "--json"],
    );
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), sent.len());
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["hash_hex"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_of_simulated_patients_equals_their_stored_events() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let seeded = ["--patients", "4", "--days", "60", "--seed", "7"];
    simulate_into(&server.grpc, None, &seeded);

    // Everything appended, read back from the log, grouped by patient.
    let by_patient = by_patient(read_log(&server.grpc, None).await);
    let mut log = server.client().await;
    assert!(by_patient.len() >= 4, "{:?}", by_patient.keys());
    for (patient, events) in &by_patient {
        let got = timeline(&server.grpc, patient).await;
        let got: Vec<Event> = got.into_iter().map(|e| e.event.unwrap()).collect();
        assert_eq!(&got, events, "timeline of {patient}");
        // And ReadStream agrees.
        let stream = patient_events(&mut log, patient).await;
        assert_eq!(&stream, events);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_is_bi_temporal_and_undoes_cancellations() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = server.client().await;
    let p = "ASOF-1";
    let day = 86_400;
    let admit = admitted(p, "E1", 10 * day);
    let plan = event(
        p,
        ts(9 * day),
        Payload::CarePlanEstablished(v1::CarePlanEstablished {
            care_plan_id: "CP1".into(),
            goals: vec!["walk daily".into()],
            thresholds: vec![v1::AlertThreshold {
                measure: "weight".into(),
                low: 50.0,
                high: 90.0,
                severity: v1::Severity::High as i32,
            }],
            referents: vec![v1::Professional {
                id: "gp-1".into(),
                role: v1::Role::Gp as i32,
                ..Default::default()
            }],
            ..Default::default()
        }),
    );
    let alert = event(
        p,
        ts(8 * day),
        Payload::AlertRaised(v1::AlertRaised {
            alert_id: "AL1".into(),
            severity: v1::Severity::High as i32,
            rule: "weight-gain".into(),
            reason: "+2 kg".into(),
        }),
    );
    let referent = event(
        p,
        ts(9 * day),
        Payload::ReferentAssigned(v1::ReferentAssigned {
            role: v1::Role::HomeNurse as i32,
            professional: Some(v1::Professional {
                id: "nurse-9".into(),
                role: v1::Role::HomeNurse as i32,
                ..Default::default()
            }),
        }),
    );
    let consent = event(
        p,
        ts(9 * day),
        Payload::ConsentGiven(v1::ConsentGiven {
            scope: "share".into(),
            organisations: vec!["HAD-1".into()],
        }),
    );
    log.append(batch(vec![
        admit.clone(),
        plan.clone(),
        alert.clone(),
        referent.clone(),
        consent.clone(),
    ]))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r1 = now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Recorded after R1, but it happened 2 days ago: a late event.
    let discharge = discharged(p, "E1", 2 * day);
    let resolve = event(
        p,
        ts(2 * day),
        Payload::AlertResolved(v1::AlertResolved {
            alert_id: "AL1".into(),
            resolution: "diuretic adjusted".into(),
        }),
    );
    log.append(batch(vec![discharge.clone(), resolve.clone()]))
        .await
        .unwrap();
    let readmit = admitted(p, "E2", day);
    log.append(batch(vec![readmit.clone()])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r2 = now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cancel = event(
        p,
        ts(0),
        Payload::AdmissionCancelled(v1::AdmissionCancelled {
            cancelled_event_id: readmit.event_id.clone(),
            ..Default::default()
        }),
    );
    log.append(batch(vec![cancel.clone()])).await.unwrap();

    // As known at R1: admitted, care plan, alert open; the discharge was not known yet.
    let a = as_of(&server.grpc, p, None, Some(r1)).await;
    assert_eq!(a.open_stays.len(), 1);
    assert_eq!(a.open_stays[0].encounter_id, "E1");
    assert_eq!(a.open_stays[0].unit, "cardio");
    assert_eq!(a.open_stays[0].admitted_at, admit.occurred_at);
    assert_eq!(a.open_stays[0].facility.as_ref().unwrap().id, "CHU-1");
    assert!(a.discharged_stays.is_empty());
    let cp = a.care_plan.as_ref().unwrap();
    assert_eq!(cp.plan.as_ref().unwrap().goals, vec!["walk daily"]);
    assert_eq!(cp.plan.as_ref().unwrap().thresholds.len(), 1);
    assert_eq!(a.open_alerts.len(), 1);
    assert_eq!(a.open_alerts[0].alert_id, "AL1");
    assert_eq!(a.referents.len(), 1);
    assert_eq!(a.consents.len(), 1);
    assert!(a.consents[0].given);
    assert!(!a.deceased);
    assert_eq!(a.recorded_time, Some(r1));
    assert_eq!(
        a.event_ids,
        vec![
            admit.event_id.clone(),
            plan.event_id.clone(),
            alert.event_id.clone(),
            referent.event_id.clone(),
            consent.event_id.clone()
        ]
    );
    // The discharge and the resolution happened before now but were recorded after R1.
    // (The cancellation is known later too: the admission it undoes happened by now.)
    assert_eq!(
        a.known_later_event_ids,
        vec![
            discharge.event_id.clone(),
            resolve.event_id.clone(),
            readmit.event_id.clone(),
            cancel.event_id.clone()
        ]
    );

    // As known now: the discharge is known, the readmission was cancelled.
    let b = as_of(&server.grpc, p, None, None).await;
    assert!(b.open_stays.is_empty(), "{:?}", b.open_stays);
    assert_eq!(b.discharged_stays.len(), 1);
    assert_eq!(b.discharged_stays[0].discharged_at, discharge.occurred_at);
    assert_eq!(
        b.discharged_stays[0].disposition,
        v1::Disposition::Home as i32
    );
    assert!(b.open_alerts.is_empty());
    assert_eq!(b.cancelled_event_ids, vec![readmit.event_id.clone()]);
    assert!(b.event_ids.contains(&cancel.event_id));
    assert!(b.known_later_event_ids.is_empty());

    // As known at R2 (after the readmission, before its cancellation): readmitted.
    let c = as_of(&server.grpc, p, None, Some(r2)).await;
    assert_eq!(c.open_stays.len(), 1);
    assert_eq!(c.open_stays[0].encounter_id, "E2");
    assert_eq!(c.known_later_event_ids, vec![cancel.event_id.clone()]);

    // Clinical time 5 days ago, as known now: still in the first stay, alert open.
    let d = as_of(&server.grpc, p, Some(ts(5 * day)), None).await;
    assert_eq!(d.open_stays.len(), 1);
    assert_eq!(d.open_stays[0].encounter_id, "E1");
    assert_eq!(d.open_alerts.len(), 1);
    // Clinical time before anything happened: nothing yet.
    let e = as_of(&server.grpc, p, Some(ts(20 * day)), None).await;
    assert!(e.open_stays.is_empty() && e.care_plan.is_none() && e.event_ids.is_empty());

    // The CLI summary and JSON.
    let (code, out, err) = journey(
        &server.grpc,
        &[
            "audit",
            "as-of",
            "--patient",
            p,
            "--recorded-time",
            &chrono::DateTime::from_timestamp(r1.seconds, r1.nanos as u32)
                .unwrap()
                .to_rfc3339(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("open stays:") && out.contains("E1  CHU-1 / cardio"),
        "{out}"
    );
    assert!(out.contains("AL1 SEVERITY_HIGH"), "{out}");
    assert!(out.contains("recorded after that time"), "{out}");
    let (code, out, _) = journey(&server.grpc, &["audit", "as-of", "--patient", p, "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["discharged_stays"][0]["encounter_id"], "E1");
    assert_eq!(v["cancelled_event_ids"][0], readmit.event_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_patients_and_bad_times_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = server.client().await;
    log.append(batch(vec![admitted("ERR-1", "E1", 3600)]))
        .await
        .unwrap();
    let mut c = audit(&server.grpc).await;

    let code = |r: Result<tonic::Response<AsOfResponse>, tonic::Status>| r.unwrap_err().code();
    let req =
        |patient: &str, clinical: Option<Timestamp>, recorded: Option<Timestamp>| AsOfRequest {
            patient_id: patient.into(),
            clinical_time: clinical,
            recorded_time: recorded,
        };
    assert_eq!(
        code(c.as_of(req("NOBODY", None, None)).await),
        Code::NotFound
    );
    assert_eq!(
        code(c.as_of(req("", None, None)).await),
        Code::InvalidArgument
    );
    let bad_nanos = Timestamp {
        seconds: 1_700_000_000,
        nanos: 2_000_000_000,
    };
    let err = c
        .as_of(req("ERR-1", Some(bad_nanos), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("clinical_time"), "{}", err.message());
    let year_10000 = Timestamp {
        seconds: 253_402_300_800,
        nanos: 0,
    };
    assert_eq!(
        code(c.as_of(req("ERR-1", None, Some(year_10000))).await),
        Code::InvalidArgument
    );
    let tomorrow = Timestamp {
        seconds: now().seconds + 86_400,
        nanos: 0,
    };
    let err = c
        .as_of(req("ERR-1", None, Some(tomorrow)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("recorded_time"), "{}", err.message());
    // A clinical time in the future is a fair question ("as planned, as known now").
    assert!(c.as_of(req("ERR-1", Some(tomorrow), None)).await.is_ok());

    let err = c
        .timeline(TimelineRequest {
            patient_id: "NOBODY".into(),
            from_version: 0,
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::NotFound);
    let err = c
        .export(ExportRequest {
            patient_id: "NOBODY".into(),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::NotFound);
    // Past the end of an existing patient's stream: empty, not NOT_FOUND.
    let mut s = c
        .timeline(TimelineRequest {
            patient_id: "ERR-1".into(),
            from_version: 9,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(s.next().await.is_none());

    let err = c
        .verify(AuditVerifyRequest {
            from_position: 0,
            to_position: 0,
            anchor: Some(AuditAnchor {
                position: 1,
                hash: vec![1, 2, 3],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // The CLI says so too.
    let (code, _, err) = journey(&server.grpc, &["audit", "timeline", "--patient", "NOBODY"]);
    assert_eq!(code, 2);
    assert!(err.contains("NotFound"), "{err}");
    let (code, _, err) = journey(
        &server.grpc,
        &[
            "audit",
            "as-of",
            "--patient",
            "ERR-1",
            "--clinical-time",
            "yesterday",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("RFC 3339"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_an_event_altered_below_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = server.client().await;
    for i in 0..20 {
        log.append(batch(vec![observation("TAMPER-1", i as f64)]))
            .await
            .unwrap();
    }
    let v = verify(&server.grpc, None).await;
    assert!(v.ok, "{v:?}");
    assert_eq!(v.checked, 20);
    assert!(server.terminate().success());
    // The anchor was written at shutdown, next to the data.
    assert_eq!(read_anchor(&dir.path().join("anchor.json"))["position"], 20);

    journey_tests::tamper(dir.path(), 7, " (tampered)").unwrap();

    let server = Server::start(dir.path(), &["--no-reactor"]);
    let v = verify(&server.grpc, None).await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_position, 7, "{v:?}");
    assert!(v.problem.contains("altered"), "{}", v.problem);
    assert_eq!(v.checked, 6);
    assert!(!v.truncated);
    // The anchor itself (position 20, its hash untouched) still matches.
    assert_eq!(v.anchor_position, 20);

    // A range that ends before the altered event verifies.
    let mut c = audit(&server.grpc).await;
    let r = c
        .verify(AuditVerifyRequest {
            from_position: 1,
            to_position: 6,
            anchor: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(r.ok, "{r:?}");

    let (code, out, _) = journey(&server.grpc, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FAILED at position 7"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tail_is_caught_through_the_anchored_head() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let backup = dir.path().join("backup");
    let anchor = dir.path().join("head.anchor.json");
    let stderr = dir.path().join("up.err");

    // Positions 1..=5, then a copy of the folder as it was.
    let mut server = start_logged(&data, &anchor, &stderr);
    let mut log = server.client().await;
    let mut hashes = Vec::new();
    for i in 0..5 {
        log.append(batch(vec![observation("TRUNC-1", i as f64)]))
            .await
            .unwrap();
    }
    let mut all = log
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    while let Some(b) = all.next().await {
        hashes.extend(b.unwrap().events.into_iter().map(|e| e.hash));
    }
    assert!(server.terminate().success());
    assert_eq!(read_anchor(&anchor)["position"], 5);
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&backup)
        .status()
        .unwrap();
    assert!(cp.success());

    // Positions 6..=10 are appended and anchored...
    let mut server = start_logged(&data, &anchor, &stderr);
    let mut log = server.client().await;
    for i in 5..10 {
        log.append(batch(vec![observation("TRUNC-1", i as f64)]))
            .await
            .unwrap();
    }
    // (anchored while running, not only at shutdown)
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read_anchor(&anchor)["position"] != 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "anchor never moved to 10"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(verify(&server.grpc, None).await.ok);
    assert!(server.terminate().success());
    let anchored = read_anchor(&anchor);
    assert_eq!(anchored["position"], 10);

    // ...then the folder is replaced by the older copy: the tail 6..=10 is gone.
    std::fs::remove_dir_all(&data).unwrap();
    std::fs::rename(&backup, &data).unwrap();
    let server = start_logged(&data, &anchor, &stderr);
    // The chain alone cannot tell: 1..=5 link perfectly.
    let mut log = server.client().await;
    let plain = log
        .verify(v1::VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(plain.ok);
    // The anchored head can.
    let v = verify(&server.grpc, None).await;
    assert!(!v.ok, "{v:?}");
    assert!(v.truncated);
    assert_eq!(v.head_position, 5);
    assert_eq!(v.anchor_position, 10);
    assert_eq!(v.first_missing_position, 6);
    assert_eq!(v.first_bad_position, 6);
    assert!(v.problem.contains("truncated"), "{}", v.problem);
    assert!(
        v.anchor_source.contains("head.anchor.json"),
        "{}",
        v.anchor_source
    );
    assert!(v.anchored_at.is_some());
    // And `journey up` said so loudly.
    let warned = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        warned.contains("WARNING: the event log does not match its anchored head"),
        "{warned}"
    );
    assert!(warned.contains("head.anchor.json"), "{warned}");
    assert!(warned.contains("position 6"), "{warned}");

    // The anchor is evidence: new appends reuse positions 6.. but never move it.
    log.append(batch(vec![observation("TRUNC-1", 99.0)]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read_anchor(&anchor), anchored);
    let v = verify(&server.grpc, None).await;
    assert!(
        !v.ok && v.truncated && v.first_missing_position == 7,
        "{v:?}"
    );

    // An anchor the auditor kept from before is checked instead when given.
    let v = verify(
        &server.grpc,
        Some(AuditAnchor {
            position: 3,
            hash: hashes[2].clone(),
        }),
    )
    .await;
    assert!(v.ok, "{v:?}");
    assert_eq!(v.anchor_source, "request");
    let v = verify(
        &server.grpc,
        Some(AuditAnchor {
            position: 3,
            hash: hashes[3].clone(),
        }),
    )
    .await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_position, 3);

    let (code, out, _) = journey(&server.grpc, &["audit", "verify"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("first missing position 7"), "{out}");
    let (code, out, _) = journey(
        &server.grpc,
        &[
            "audit",
            "verify",
            "--anchor-position",
            "3",
            "--anchor-hash",
            &hashes[2]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ],
    );
    assert_eq!(code, 0, "{out}");
}

fn required_fhir_fields(resource: &serde_json::Value) {
    let kind = resource["resourceType"].as_str().unwrap();
    let recorded = resource["recorded"].as_str().expect("recorded");
    assert!(
        chrono::DateTime::parse_from_rfc3339(recorded).is_ok(),
        "{recorded}"
    );
    let agents = resource["agent"].as_array().expect("agent");
    assert!(!agents.is_empty());
    match kind {
        "AuditEvent" => {
            assert!(resource["type"]["code"].is_string(), "{resource}");
            assert!(resource["type"]["system"].is_string(), "{resource}");
            assert_eq!(resource["action"], "C");
            for a in agents {
                assert!(a["requestor"].is_boolean(), "{resource}");
            }
            assert!(agents.iter().any(|a| a["requestor"] == true));
            assert!(resource["source"]["observer"].is_object(), "{resource}");
            let entities = resource["entity"].as_array().unwrap();
            assert!(entities.iter().any(|e| e["what"]["reference"]
                .as_str()
                .is_some_and(|r| r.starts_with("Patient/"))));
        }
        "Provenance" => {
            let targets = resource["target"].as_array().expect("target");
            assert!(!targets.is_empty());
            for t in targets {
                assert!(
                    t["reference"].is_string() || t["identifier"].is_object(),
                    "{resource}"
                );
            }
            for a in agents {
                assert!(a["who"].is_object(), "{resource}");
            }
        }
        other => panic!("unexpected resource {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_export_has_an_audit_event_and_a_provenance_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = server.client().await;
    let mut appended = Vec::new();
    for b in journey_events() {
        log.append(batch(b.clone())).await.unwrap();
        appended.extend(b.into_iter().filter(|e| e.patient_id == "AUD-1"));
    }
    let stored = timeline(&server.grpc, "AUD-1").await;

    let mut c = audit(&server.grpc).await;
    let mut s = c
        .export(ExportRequest {
            patient_id: "AUD-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut lines = Vec::new();
    while let Some(l) = s.next().await {
        lines.push(l.unwrap());
    }
    assert_eq!(lines.len(), 2 * appended.len());
    for (pair, entry) in lines.chunks(2).zip(&stored) {
        let event = entry.event.as_ref().unwrap();
        let a: serde_json::Value = serde_json::from_str(&pair[0].json).unwrap();
        let p: serde_json::Value = serde_json::from_str(&pair[1].json).unwrap();
        assert_eq!(a["resourceType"], "AuditEvent");
        assert_eq!(p["resourceType"], "Provenance");
        assert_eq!(pair[0].position, event.position);
        required_fhir_fields(&a);
        required_fhir_fields(&p);
        assert_eq!(a["id"], event.event_id.as_str());
        // recorded is the log time, to the millisecond.
        let rec = event.recorded_at.unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(a["recorded"].as_str().unwrap()).unwrap();
        assert_eq!(parsed.timestamp(), rec.seconds);
        assert_eq!(
            parsed.timestamp_subsec_millis(),
            rec.nanos as u32 / 1_000_000
        );
        assert_eq!(a["agent"][0]["who"]["identifier"]["value"], "nurse-1");
        assert_eq!(a["source"]["observer"]["display"], "e2e-test");
        assert_eq!(p["agent"][0]["who"]["identifier"]["value"], "nurse-1");
        assert!(
            a.to_string().contains(&entry.hash_hex),
            "the hash is in the record"
        );
    }
    // The admission's Provenance targets the Encounter.
    let p: serde_json::Value = serde_json::from_str(&lines[1].json).unwrap();
    assert_eq!(p["target"][0]["reference"], "Encounter/E1");
    assert_eq!(p["agent"][0]["onBehalfOf"]["display"], "CHU-1");

    // `journey audit export --out FILE`: the same lines as NDJSON.
    let file = dir.path().join("export.ndjson");
    let (code, _, err) = journey(
        &server.grpc,
        &[
            "audit",
            "export",
            "--patient",
            "AUD-1",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    let from_file: Vec<&str> = text.lines().collect();
    assert_eq!(from_file.len(), lines.len());
    for (l, want) in from_file.iter().zip(&lines) {
        assert_eq!(*l, want.json);
        required_fhir_fields(&serde_json::from_str(l).unwrap());
    }
    // To standard output by default.
    let (code, out, _) = journey(&server.grpc, &["audit", "export", "--patient", "AUD-1"]);
    assert_eq!(code, 0);
    assert_eq!(out, text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_audit_reads_a_remote_log_and_anchors_its_head() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--no-reactor"]);
    let mut log = server.client().await;
    for b in journey_events() {
        log.append(batch(b)).await.unwrap();
    }
    let remote_anchor = dir.path().join("remote.anchor.json");
    let access_log = format!("sqlite://{}/access-log.sqlite", dir.path().display());
    let remote = spawn_ready_with_env(
        &[
            "serve",
            "audit",
            "--log-url",
            &server.grpc,
            "--anchor-file",
            remote_anchor.to_str().unwrap(),
            "--anchor-interval-ms",
            "50",
            "--access-log-url",
            &access_log,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &[("JOURNEY_INSECURE", "true")],
    );
    let here = timeline(&server.grpc, "AUD-1").await;
    let there = timeline(&remote.grpc, "AUD-1").await;
    assert_eq!(here, there);
    // The audit service alone records its reads too, in its access log.
    let reads = accesses(&remote.grpc, "AUD-1").await;
    assert_eq!(reads, ["Audit/Timeline"], "the remote timeline read");
    assert_append_only(&access_log).await;
    assert_eq!(
        accesses(&remote.grpc, "AUD-1").await,
        ["Audit/Timeline", "Audit/Accesses"],
        "unchanged, and reading who read AUD-1 is itself recorded"
    );
    assert_eq!(
        as_of(&remote.grpc, "AUD-1", None, Some(now()))
            .await
            .discharged_stays,
        as_of(&server.grpc, "AUD-1", None, Some(now()))
            .await
            .discharged_stays
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !remote_anchor.exists() {
        assert!(std::time::Instant::now() < deadline, "no remote anchor");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let v = verify(&remote.grpc, None).await;
    assert!(v.ok, "{v:?}");
    assert_eq!(v.anchor_position, 6);
    assert!(v.anchor_source.contains("remote.anchor.json"));
    let err = audit(&remote.grpc)
        .await
        .as_of(AsOfRequest {
            patient_id: "NOBODY".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Health: the Audit service is served in both processes.
    for grpc in [&server.grpc, &remote.grpc] {
        let mut h = tonic_health::pb::health_client::HealthClient::new(
            journey_tests::client::channel(grpc).await.unwrap(),
        );
        let s = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: "journey.v1.Audit".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            s.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }
    let status = http_get(&remote.http, "/status").await;
    assert!(status.contains("remote.anchor.json"), "{status}");

    // Secure (the default): only auditors (and admins) read the audit trail.
    let keys = private_file(
        &dir.path().join("keys"),
        "auditor-key-0123456789 auditor alice CNIL\npartner-key-0123456789 partner adt CHU-1\n",
    );
    let secure_access_log = format!(
        "sqlite://{}",
        dir.path().join("secure-access.sqlite").display()
    );
    let secure = secure_serve(
        &[
            "serve",
            "audit",
            "--log-url",
            &server.grpc,
            "--access-log-url",
            &secure_access_log,
        ],
        &keys,
    );
    let call = |token: Option<&'static str>| {
        let grpc = secure.grpc.clone();
        async move {
            let mut request = tonic::Request::new(TimelineRequest {
                patient_id: "AUD-1".into(),
                from_version: 0,
            });
            if let Some(t) = token {
                request
                    .metadata_mut()
                    .insert("authorization", format!("Bearer {t}").parse().unwrap());
            }
            audit(&grpc).await.timeline(request).await.map(|_| ())
        }
    };
    assert!(call(Some("auditor-key-0123456789")).await.is_ok());
    assert_eq!(
        call(Some("partner-key-0123456789"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(call(None).await.unwrap_err().code(), Code::Unauthenticated);
    let (code, out, err) = journey(
        &secure.grpc,
        &[
            "audit",
            "timeline",
            "--patient",
            "AUD-1",
            "--token",
            "auditor-key-0123456789",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Admitted"), "{out}");
}

/// The calls recorded in the access log for `patient`, oldest first.
async fn accesses(grpc: &str, patient: &str) -> Vec<String> {
    let mut r: Vec<String> = access_records(grpc, None, of_patient(patient))
        .await
        .into_iter()
        .map(|r| r.call)
        .collect();
    r.reverse();
    r
}

/// The database refuses to change or remove an access record, whoever asks.
async fn assert_append_only(url: &str) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM journey_access_log")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = count().await;
    assert!(before > 0, "nothing recorded in {url}");
    for sql in [
        "UPDATE journey_access_log SET outcome = 'ok', subject = 'someone else'",
        "DELETE FROM journey_access_log",
    ] {
        let err = sqlx::query(sql).execute(&pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(count().await, before);
    pool.close().await;
}

/// Every read side and the audit service can share one access log in PostgreSQL
/// (`--access-log-url`), append-only there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_access_log_in_postgres_for_every_service() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--no-reactor"]);
    let mut log = server.client().await;
    let mut head = 0;
    for b in journey_events() {
        head = append_batch(&mut log, b).await;
    }
    let pg = PgDb::create();
    let shared = PgDb::create();
    let flags = |kind: &'static str| {
        vec![
            "serve",
            kind,
            "--log-url",
            &server.grpc,
            "--access-log-url",
            &shared.url,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]
    };
    let remote_audit = spawn_ready_with_env(&flags("audit"), &[("JOURNEY_INSECURE", "true")]);
    let mut readmission_flags = flags("readmission");
    readmission_flags.extend(["--database-url", &pg.url]);
    let readmission = spawn_ready_with_env(&readmission_flags, &[("JOURNEY_INSECURE", "true")]);
    wait_projected(&readmission.grpc, head).await;

    timeline(&remote_audit.grpc, "AUD-1").await;
    journey_proto::v1::readmission_client::ReadmissionClient::new(
        journey_tests::client::channel(&readmission.grpc)
            .await
            .unwrap(),
    )
    .patient_stays(v1::PatientStaysRequest {
        patient_id: "AUD-1".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        accesses(&remote_audit.grpc, "AUD-1").await,
        ["Audit/Timeline", "Readmission/PatientStays"],
        "both services' reads, in the one access log"
    );
    assert_append_only(&shared.url).await;
}
