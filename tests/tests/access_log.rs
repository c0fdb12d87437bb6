//! The access log (issue 19, defects 2, 5, 15, 19): refused calls without an identity counted per
//! source and minute, so that a flood leaves the database small and a genuine access findable;
//! a known caller's refusals recorded up to a rate; list reads found under every patient they
//! returned; paging and filters; every audit read recorded even with no read model; the quality
//! role kept from patients who revoked its organisation; the chain that names a forged, altered
//! or removed record, on SQLite and PostgreSQL.
use journey_proto::v1::{
    self, audit_client::AuditClient, coordination_client::CoordinationClient,
    readmission_client::ReadmissionClient, AccessRecord, AccessesRequest, VerifyAccessesRequest,
};
use journey_tests::client::{channel, token, Token};
use journey_tests::*;
use std::{
    path::Path,
    time::{Duration, Instant},
};
use tonic::{service::interceptor::InterceptedService, transport::Channel, Code, Request};

const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-quality quality analyst dim
key-0123456789-auditor auditor auditor-1 cnil
key-0123456789-admin admin ops local
";
const AUDITOR: &str = "key-0123456789-auditor";
const COORDINATOR: &str = "key-0123456789-coord";
const QUALITY: &str = "key-0123456789-quality";

/// A secure `journey up` in `dir` (with the keys above), and its admin token.
fn secure(dir: &Path, extra: &[&str]) -> (Server, String) {
    let flags = [&["--no-reactor"], extra].concat();
    let server = secure_up(dir, KEYS, &flags);
    (server, admin_token(&dir.join("data")))
}

type Ch = InterceptedService<Channel, Token>;

async fn audit_as(grpc: &str, key: Option<&str>) -> AuditClient<Ch> {
    AuditClient::with_interceptor(channel(grpc).await.unwrap(), token(key).unwrap())
}

async fn readmission_as(grpc: &str, key: &str) -> ReadmissionClient<Ch> {
    ReadmissionClient::with_interceptor(channel(grpc).await.unwrap(), token(Some(key)).unwrap())
}

/// Asks the server at `grpc`, without a token, for `patient`'s state now (an audit read).
async fn read_as_of(grpc: &str, patient: &str) {
    audit_as(grpc, None)
        .await
        .as_of(v1::AsOfRequest {
            patient_id: patient.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Appends `events` with `key` (None: insecure server) and waits until every read model has them.
async fn append_projected(grpc: &str, key: Option<&str>, events: Vec<v1::Event>) {
    let mut log = journey_tests::client::connect(grpc, key).await.unwrap();
    let head = append_batch(&mut log, events).await;
    wait_projected_as(grpc, head, key).await;
}

fn stay(patient: &str, days_ago: i64) -> Vec<v1::Event> {
    let enc = format!("E-{patient}");
    vec![
        admitted(patient, &enc, (days_ago + 3) * 86_400),
        discharged(patient, &enc, days_ago * 86_400),
    ]
}

/// The bytes of the SQLite database and its write-ahead log.
fn db_size(data: &Path) -> u64 {
    ["read-models.sqlite", "read-models.sqlite-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_flood_leaves_the_database_small_and_genuine_accesses_findable() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = secure(dir.path(), &[]);
    append_projected(&server.grpc, Some(&admin), stay("FLOOD-1", 2)).await;

    // A genuine access, with its purpose.
    let mut read = Request::new(v1::FollowUpRequest {
        patient_id: "FLOOD-1".into(),
        as_of: None,
    });
    read.metadata_mut()
        .insert("x-journey-purpose", "treatment".parse().unwrap());
    CoordinationClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some(COORDINATOR)).unwrap(),
    )
    .follow_up(read)
    .await
    .unwrap();
    let before = db_size(&dir.path().join("data"));

    // Four seconds of refused calls from four clients: no token with a 7 kB purpose, an
    // unknown token, a method nobody serves; every call answered UNAUTHENTICATED.
    let purpose: String = "x".repeat(7_000);
    let deadline = Instant::now() + Duration::from_secs(4);
    let mut clients = Vec::new();
    for n in 0..4 {
        let (grpc, purpose) = (server.grpc.clone(), purpose.clone());
        clients.push(tokio::spawn(async move {
            let key = (n % 2 == 1).then_some("not-a-key-0123456789");
            let mut c = CoordinationClient::with_interceptor(
                channel(&grpc).await.unwrap(),
                token(key).unwrap(),
            );
            let mut sent = 0u64;
            while Instant::now() < deadline {
                let mut r = Request::new(v1::FollowUpRequest {
                    patient_id: "FLOOD-1".into(),
                    as_of: None,
                });
                r.metadata_mut()
                    .insert("x-journey-purpose", purpose.parse().unwrap());
                let e = c.follow_up(r).await.unwrap_err();
                assert_eq!(e.code(), Code::Unauthenticated);
                sent += 1;
            }
            sent
        }));
    }
    let mut sent = 0;
    for c in clients {
        sent += c.await.unwrap();
    }
    assert!(sent > 400, "only {sent} calls sent");

    // Every refused call is counted, in a handful of records (per source, call, reason, minute).
    let refused = access_records(
        &server.grpc,
        Some(AUDITOR),
        AccessesRequest {
            outcome: "unauthenticated".into(),
            limit: 10_000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused.iter().map(|r| r.calls).sum::<u64>(), sent);
    assert!(refused.len() <= 6, "{} records", refused.len());
    for r in &refused {
        assert_eq!(
            (r.subject.as_str(), r.call.as_str(), r.peer.as_str()),
            ("(no identity)", "Coordination/FollowUp", "127.0.0.1")
        );
        assert!(r.purpose.is_empty() && r.detail.len() <= 512, "{r:?}");
        assert!(r.detail.contains("refused from 127.0.0.1"), "{}", r.detail);
    }
    let grown = db_size(&dir.path().join("data")).saturating_sub(before);
    assert!(
        grown < 2_000_000,
        "the flood grew the database by {grown} bytes"
    );

    // The genuine access is the first record of the patient still.
    let of_patient = access_records(&server.grpc, Some(AUDITOR), of_patient("FLOOD-1")).await;
    let genuine: Vec<_> = of_patient.iter().filter(|r| r.outcome == "ok").collect();
    assert_eq!(genuine.len(), 1, "{of_patient:?}");
    assert_eq!(
        (
            genuine[0].subject.as_str(),
            genuine[0].call.as_str(),
            genuine[0].purpose.as_str()
        ),
        ("nurse-1", "Coordination/FollowUp", "treatment")
    );
    assert!(of_patient.len() < 5, "{of_patient:?}");

    // A known caller's refusals: one record each up to 20 a minute, then counted.
    let mut q = readmission_as(&server.grpc, COORDINATOR).await;
    for _ in 0..50 {
        let e = q
            .patient_stays(v1::PatientStaysRequest {
                patient_id: "FLOOD-1".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    let denied = access_records(
        &server.grpc,
        Some(AUDITOR),
        AccessesRequest {
            subject: "nurse-1".into(),
            outcome: "permissiondenied".into(),
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(denied.iter().map(|r| r.calls).sum::<u64>(), 50);
    let alone: Vec<_> = denied.iter().filter(|r| r.calls == 1).collect();
    assert!((20..=40).contains(&alone.len()), "{} alone", alone.len());
    assert!(alone
        .iter()
        .all(|r| r.patient_id == "FLOOD-1" && r.call == "Readmission/PatientStays"));
    let counted: Vec<_> = denied.iter().filter(|r| r.calls > 1).collect();
    assert!(counted.iter().all(|r| r.role == "coordinator"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_reads_are_found_under_every_patient_they_returned_and_pages_hold_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &["--no-reactor"]);
    let mut events = Vec::new();
    for p in ["LIST-1", "LIST-2", "LIST-3"] {
        events.extend(stay(p, 2));
    }
    append_projected(&server.grpc, None, events).await;

    let ch = channel(&server.grpc).await.unwrap();
    let mut coordination = CoordinationClient::new(ch.clone());
    let page = coordination
        .worklist(v1::WorklistRequest {
            territory: "T1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.items.len(), 3);
    let mut readmission = ReadmissionClient::new(ch.clone());
    let stays = readmission
        .index_stays(v1::IndexStaysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(stays.len(), 3);
    readmission
        .at_risk(v1::AtRiskRequest::default())
        .await
        .unwrap();
    let html = http_get(&server.http, "/").await;
    assert!(html.contains("LIST-2"), "{html}");

    // "Who looked at LIST-2": the lists that showed it.
    let calls = |records: &[AccessRecord]| -> Vec<String> {
        records.iter().rev().map(|r| r.call.clone()).collect()
    };
    let seen = access_records(&server.grpc, None, of_patient("LIST-2")).await;
    assert_eq!(
        calls(&seen),
        [
            "Coordination/Worklist",
            "Readmission/IndexStays",
            "Readmission/AtRisk",
            "dashboard/worklist"
        ]
    );
    for r in &seen {
        assert_eq!(r.patients, ["LIST-1", "LIST-2", "LIST-3"], "{r:?}");
        assert!(r.patient_id.is_empty() && r.seq > 0);
    }
    // The CLI prints them, a line each, and JSON with --json.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(journey_bin())
            .args(["audit", "accesses", "--server", &server.grpc])
            .args(args)
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The four lists, and the auditor's reading of LIST-2's accesses above (itself recorded).
    let text = cli(&["--patient", "LIST-2"]);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(
        text.contains("Coordination/Worklist  3 patient(s): LIST-1, LIST-2, LIST-3  ok"),
        "{text}"
    );
    assert!(
        text.contains("Audit/Accesses  patient LIST-2  ok  from 127.0.0.1"),
        "{text}"
    );
    let json = cli(&["--patient", "LIST-2", "--limit", "1", "--json"]);
    assert_eq!(json.lines().count(), 1, "one page unless --all: {json}");
    let newest: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(newest["call"], "Audit/Accesses", "{json}");
    let every = cli(&["--patient", "LIST-2", "--limit", "1", "--all", "--json"]);
    assert_eq!(every.lines().count(), 7, "{every}");

    // Nobody else's reads: a patient no list showed has none.
    assert!(access_records(&server.grpc, None, of_patient("NOBODY"))
        .await
        .is_empty());
    let all = access_records(&server.grpc, None, AccessesRequest::default()).await;

    // Pages of 2 hold every record once, newest first; filters by time and subject.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let r = audit_as(&server.grpc, None)
            .await
            .accesses(AccessesRequest {
                limit: 2,
                page_token: token.clone(),
                to: all.first().and_then(|r| r.at),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.records.len() <= 2);
        paged.extend(r.records);
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    // `to` is exclusive: every record before the newest of `all`.
    let expected: Vec<u64> = all.iter().skip(1).map(|r| r.seq).collect();
    assert_eq!(paged.iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
    let from_newest = access_records(
        &server.grpc,
        None,
        AccessesRequest {
            from: all.first().and_then(|r| r.at),
            subject: "nobody".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(from_newest.is_empty());
    let e = audit_as(&server.grpc, None)
        .await
        .accesses(AccessesRequest {
            page_token: "forged".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("page_token"), "{}", e.message());
}

/// `journey up --no-read-models` has no read-model database: its audit reads are recorded in
/// `<data-dir>/access-log.sqlite`, and the access log can be read and verified there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reads_are_recorded_without_read_models() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--no-read-models", "--no-reactor"]);
    let mut log = server.client().await;
    append_batch(&mut log, stay("NORM-1", 2)).await;
    let mut audit = audit_as(&server.grpc, None).await;
    let mut timeline = audit
        .timeline(v1::TimelineRequest {
            patient_id: "NORM-1".into(),
            from_version: 0,
        })
        .await
        .unwrap()
        .into_inner();
    while timeline.message().await.unwrap().is_some() {}
    read_as_of(&server.grpc, "NORM-1").await;
    assert!(data.join("access-log.sqlite").exists());
    let seen = access_records(&server.grpc, None, of_patient("NORM-1")).await;
    let calls: Vec<&str> = seen.iter().rev().map(|r| r.call.as_str()).collect();
    assert_eq!(calls, ["Audit/Timeline", "Audit/AsOf"]);
    let v = audit
        .verify_accesses(VerifyAccessesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    assert!(v.checked >= 3, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_sees_no_row_of_a_patient_who_revoked_its_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = secure(dir.path(), &[]);
    let mut events = stay("QUAL-1", 3);
    events.extend(stay("QUAL-2", 3));
    events.push(event(
        "QUAL-1",
        ts(60),
        v1::event::Payload::ConsentRevoked(v1::ConsentRevoked {
            scope: "research".into(),
            organisations: vec!["dim".into()],
        }),
    ));
    append_projected(&server.grpc, Some(&admin), events).await;

    let patients = |stays: Vec<v1::IndexStay>| {
        let mut p: Vec<String> = stays.into_iter().map(|s| s.patient_id).collect();
        p.sort();
        p
    };
    let mut quality = readmission_as(&server.grpc, QUALITY).await;
    let listed = quality
        .index_stays(v1::IndexStaysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(patients(listed), ["QUAL-2"]);
    // Withheld, the patient looks unknown (no enumeration); the access log says why.
    let withheld = quality
        .patient_stays(v1::PatientStaysRequest {
            patient_id: "QUAL-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let unknown = quality
        .patient_stays(v1::PatientStaysRequest {
            patient_id: "QUAL-NOBODY".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((withheld.stays.len(), unknown.stays.len()), (0, 0));
    let own = quality
        .patient_stays(v1::PatientStaysRequest {
            patient_id: "QUAL-2".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.stays.len(), 1);
    // An admin still sees every patient.
    let mut admin_client = readmission_as(&server.grpc, &admin).await;
    let all = admin_client
        .index_stays(v1::IndexStaysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(patients(all), ["QUAL-1", "QUAL-2"]);

    // The refusal is in the access log, and the list is not under QUAL-1.
    let seen = access_records(&server.grpc, Some(AUDITOR), of_patient("QUAL-1")).await;
    let by_analyst: Vec<(&str, &str)> = seen
        .iter()
        .filter(|r| r.subject == "analyst")
        .map(|r| (r.call.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        by_analyst,
        [("Readmission/PatientStays", "permissiondenied")]
    );
}

/// `journey serve event-log` records its audit reads in `<data-dir>/access-log.sqlite` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_event_log_records_its_audit_reads() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let anchor = dir.path().join("log.anchor.json");
    let server = spawn_ready(&[
        "serve",
        "event-log",
        "--data-dir",
        data.to_str().unwrap(),
        "--anchor-file",
        anchor.to_str().unwrap(),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let mut log = server.client().await;
    append_batch(&mut log, stay("EL-1", 2)).await;
    read_as_of(&server.grpc, "EL-1").await;
    assert!(data.join("access-log.sqlite").exists());
    let seen = access_records(&server.grpc, None, of_patient("EL-1")).await;
    assert_eq!(
        seen.iter().map(|r| r.call.as_str()).collect::<Vec<_>>(),
        ["Audit/AsOf"]
    );
}

/// A readmission service alone (no coordination read model) does not know the consents: a quality
/// caller gets figures, never patient-level rows; an admin still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_readmission_service_alone_shows_quality_no_patient_row() {
    let dir = tempfile::tempdir().unwrap();
    let (log, admin) = secure(dir.path(), &[]);
    append_projected(&log.grpc, Some(&admin), stay("ALONE-1", 3)).await;
    let keys = dir.path().join("keys.txt").display().to_string();
    let db = format!("sqlite://{}", dir.path().join("r.sqlite").display());
    let side = secure_read_side("readmission", &log.grpc, &admin, &db, &keys);
    let head = journey_tests::client::connect(&log.grpc, Some(&admin))
        .await
        .unwrap()
        .head(v1::HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position;
    let side_admin = "key-0123456789-admin".to_string();
    wait_projected_as(&side.grpc, head, Some(&side_admin)).await;
    let mut quality = readmission_as(&side.grpc, QUALITY).await;
    quality.rates(v1::RatesRequest::default()).await.unwrap();
    let e = quality
        .index_stays(v1::IndexStaysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("consents are not known"),
        "{}",
        e.message()
    );
    let e = quality
        .patient_stays(v1::PatientStaysRequest {
            patient_id: "ALONE-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let stays = readmission_as(&side.grpc, &side_admin)
        .await
        .index_stays(v1::IndexStaysRequest::default())
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(stays.len(), 1);
}

/// Drops the triggers that keep the access log append-only (what whoever holds the database
/// could do), on either backend.
async fn drop_triggers(pool: &sqlx::AnyPool, postgres: bool) {
    let statements: &[&str] = if postgres {
        &["DROP TRIGGER journey_access_log_append_only ON journey_access_log"]
    } else {
        &[
            "DROP TRIGGER journey_access_log_no_update",
            "DROP TRIGGER journey_access_log_no_delete",
        ]
    };
    for s in statements {
        sqlx::query(s).execute(pool).await.unwrap();
    }
}

async fn verify(grpc: &str) -> v1::VerifyAccessesResponse {
    audit_as(grpc, None)
        .await
        .verify_accesses(VerifyAccessesRequest::default())
        .await
        .unwrap()
        .into_inner()
}

/// Verification fails first at record 2, and says `problem`.
async fn record_2_is_named(grpc: &str, problem: &str) {
    let v = verify(grpc).await;
    assert!(!v.ok);
    assert_eq!(v.first_bad_seq, 2);
    assert!(v.problem.contains(problem), "{}", v.problem);
}

/// Forged, altered and removed records, each named by verification; then put back.
async fn tamper_and_verify(grpc: &str, url: &str, postgres: bool) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let v = verify(grpc).await;
    assert!(v.ok, "{v:?}");
    assert!(v.checked >= 3);

    // A forged INSERT (the triggers do not stop inserts).
    sqlx::query(
        "INSERT INTO journey_access_log (id, at_micros, subject, role, organisation, call, patient_id, purpose, outcome, detail)
         VALUES ('forged-1', 1, 'mallory', 'auditor', 'x', 'Audit/Timeline', 'P', '', 'ok', '')",
    )
    .execute(&pool)
    .await
    .unwrap();
    let v = verify(grpc).await;
    assert!(!v.ok);
    assert_eq!(v.unchained, 1);
    assert!(v.problem.contains("forged-1"), "{}", v.problem);

    // DROP TRIGGER, then DELETE and UPDATE.
    drop_triggers(&pool, postgres).await;
    sqlx::query("DELETE FROM journey_access_log WHERE id = 'forged-1'")
        .execute(&pool)
        .await
        .unwrap();
    assert!(verify(grpc).await.ok);
    let (subject,): (String,) =
        sqlx::query_as("SELECT subject FROM journey_access_log WHERE seq = 2")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("UPDATE journey_access_log SET subject = 'someone else' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    record_2_is_named(grpc, "record 2 was altered").await;
    sqlx::query("UPDATE journey_access_log SET subject = $1 WHERE seq = 2")
        .bind(&subject)
        .execute(&pool)
        .await
        .unwrap();
    assert!(verify(grpc).await.ok);

    sqlx::query("DELETE FROM journey_access_log WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    record_2_is_named(grpc, "record 2 is missing").await;
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_names_a_forged_altered_or_removed_record_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--no-reactor"]);
    let mut log = server.client().await;
    append_batch(&mut log, stay("CHAIN-1", 2)).await;
    for _ in 0..3 {
        access_records(&server.grpc, None, of_patient("CHAIN-1")).await;
    }
    // The head is anchored beside the log's anchor, outside the database.
    let anchor = data.join("anchor.access-log.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !anchor.exists() {
        assert!(Instant::now() < deadline, "no access-log anchor");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let v = verify(&server.grpc).await;
    assert!(
        v.anchor_seq > 0 && v.anchor_source.contains("anchor.access-log.json"),
        "{v:?}"
    );
    let url = format!("sqlite://{}/read-models.sqlite", data.display());
    tamper_and_verify(&server.grpc, &url, false).await;

    // A cut tail: the anchored head is missing.
    let (head,): (i64,) = sqlx::query_as("SELECT MAX(seq) FROM journey_access_log")
        .fetch_one(&sqlx::AnyPool::connect(&url).await.unwrap())
        .await
        .unwrap();
    let v = audit_as(&server.grpc, None)
        .await
        .verify_accesses(VerifyAccessesRequest {
            anchor: Some(v1::AuditAnchor {
                position: head as u64 + 100,
                hash: vec![0; 32],
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.truncated && !v.ok, "{v:?}");
    assert!(v.problem.contains("truncated"), "{}", v.problem);

    // The CLI says the same, and exits 1.
    let out = std::process::Command::new(journey_bin())
        .args(["audit", "verify-accesses", "--server", &server.grpc])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("record 2 is missing"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chain_names_a_forged_altered_or_removed_record_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgDb::create();
    let server = Server::start(
        &dir.path().join("data"),
        &["--no-reactor", "--database-url", &pg.url],
    );
    let mut log = server.client().await;
    append_batch(&mut log, stay("CHAIN-1", 2)).await;
    for _ in 0..3 {
        access_records(&server.grpc, None, of_patient("CHAIN-1")).await;
    }
    tamper_and_verify(&server.grpc, &pg.url, true).await;
}
