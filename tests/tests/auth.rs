//! Authentication and roles on a secure `journey up` (the default): the local admin token, API
//! keys and JWTs, every role against every service call, a partner's own organisation, a
//! coordinator's own territory, and the CLI reading the local admin token.
use journey_proto::v1::{
    self, coordination_client::CoordinationClient, event_log_client::EventLogClient,
    projections_client::ProjectionsClient, readmission_client::ReadmissionClient, HeadRequest,
    ProjectionStatusRequest, RatesRequest, VerifyRequest, WorklistRequest,
};
use journey_tests::client::{channel, token, Token};
use journey_tests::*;
use std::{os::unix::fs::PermissionsExt, path::Path, process::Command};
use tonic::{service::interceptor::InterceptedService, transport::Channel, Code};

const KEYS: &str = "\
# key role subject organisation [territory]
key-0123456789-partner partner hospital-a chu-a
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-coord-nowhere coordinator nurse-2 cpts-2
key-0123456789-coord-other coordinator nurse-3 cpts-9 T1
key-0123456789-quality quality analyst dim
key-0123456789-auditor auditor auditor-1 cnil
key-0123456789-service service projector backbone
key-0123456789-liaison liaison_nurse nurse-l F1
";

type Ch = InterceptedService<Channel, Token>;

async fn ch(server: &Server, key: Option<&str>) -> (Channel, Token) {
    (channel(&server.grpc).await.unwrap(), token(key).unwrap())
}

fn event_for(org: &str, patient: &str) -> v1::Event {
    let mut e = admitted(patient, &format!("E-{patient}"), 3600);
    e.actor.as_mut().unwrap().organisation = org.into();
    e
}

/// The code a call ends with: Ok, or the refusal.
async fn call(server: &Server, key: Option<&str>, what: &str) -> Code {
    let (c, t) = ch(server, key).await;
    let code = |r: Result<(), tonic::Status>| r.map_or_else(|s| s.code(), |_| Code::Ok);
    match what {
        "EventLog/Append" => {
            let mut l: EventLogClient<Ch> = EventLogClient::with_interceptor(c, t);
            let patient = format!("p-{}", uuid::Uuid::new_v4());
            code(
                l.append(batch(vec![event_for("chu-a", &patient)]))
                    .await
                    .map(|_| ()),
            )
        }
        "EventLog/Head" => {
            let mut l: EventLogClient<Ch> = EventLogClient::with_interceptor(c, t);
            code(l.head(HeadRequest {}).await.map(|_| ()))
        }
        "EventLog/Verify" => {
            let mut l: EventLogClient<Ch> = EventLogClient::with_interceptor(c, t);
            code(l.verify(VerifyRequest::default()).await.map(|_| ()))
        }
        "Readmission/Rates" => {
            let mut r = ReadmissionClient::with_interceptor(c, t);
            code(r.rates(RatesRequest::default()).await.map(|_| ()))
        }
        "Coordination/Worklist" => {
            let mut r = CoordinationClient::with_interceptor(c, t);
            code(r.worklist(WorklistRequest::default()).await.map(|_| ()))
        }
        "Projections/Status" => {
            let mut r = ProjectionsClient::with_interceptor(c, t);
            code(r.status(ProjectionStatusRequest {}).await.map(|_| ()))
        }
        other => panic!("no such call in the table: {other}"),
    }
}

#[tokio::test]
async fn every_role_against_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let admin_file = dir.path().join("data/admin.token");
    let mode = std::fs::metadata(&admin_file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "admin.token readable by its owner only"
    );
    let admin = std::fs::read_to_string(&admin_file).unwrap();

    let allowed: &[(&str, &[&str])] = &[
        // The service key may call Append, but writes AlertRaised only: this admission is
        // refused by the write table (tests/tests/write_rights.rs has every row of it).
        ("EventLog/Append", &["key-0123456789-partner", "admin"]),
        (
            "EventLog/Head",
            &["key-0123456789-service", "key-0123456789-auditor", "admin"],
        ),
        ("EventLog/Verify", &["key-0123456789-auditor", "admin"]),
        ("Readmission/Rates", &["key-0123456789-quality", "admin"]),
        ("Coordination/Worklist", &["key-0123456789-coord", "admin"]),
        (
            "Projections/Status",
            &[
                "key-0123456789-partner",
                "key-0123456789-coord",
                "key-0123456789-quality",
                "key-0123456789-auditor",
                "key-0123456789-service",
                // A liaison nurse reads on the dashboard only: this is her one gRPC call.
                "key-0123456789-liaison",
                "admin",
            ],
        ),
    ];
    let keys = [
        "key-0123456789-partner",
        "key-0123456789-coord",
        "key-0123456789-quality",
        "key-0123456789-auditor",
        "key-0123456789-service",
        "key-0123456789-liaison",
        "admin",
    ];
    for (what, who) in allowed {
        for key in keys {
            let token = if key == "admin" { admin.as_str() } else { key };
            let got = call(&server, Some(token), what).await;
            if who.contains(&key) {
                assert_eq!(got, Code::Ok, "{key} on {what}");
            } else {
                assert_eq!(got, Code::PermissionDenied, "{key} on {what}");
            }
        }
        assert_eq!(
            call(&server, None, what).await,
            Code::Unauthenticated,
            "no token on {what}"
        );
        assert_eq!(
            call(&server, Some("forged"), what).await,
            Code::Unauthenticated,
            "bad token on {what}"
        );
    }
    // Health needs no token (probes).
    let out = Command::new(journey_bin())
        .args(["health", "--server", &server.grpc])
        .env("JOURNEY_DATA_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[tokio::test]
async fn jwts_partners_and_coordinators_are_held_to_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let jwt = |claims: serde_json::Value, secret: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap()
    };
    // Within the default 24 h maximum lifetime.
    let far = jsonwebtoken::get_current_timestamp() + 3600;
    let quality = jwt(
        serde_json::json!({"sub": "a", "role": "quality", "org": "dim", "exp": far}),
        HS256_SECRET,
    );
    assert_eq!(
        call(&server, Some(&quality), "Readmission/Rates").await,
        Code::Ok
    );
    assert_eq!(
        call(&server, Some(&quality), "Coordination/Worklist").await,
        Code::PermissionDenied
    );
    let expired = jwt(
        serde_json::json!({"sub": "a", "role": "quality", "org": "dim", "exp": 1_000_000_000u64}),
        HS256_SECRET,
    );
    assert_eq!(
        call(&server, Some(&expired), "Readmission/Rates").await,
        Code::Unauthenticated
    );
    let forged = jwt(
        serde_json::json!({"sub": "a", "role": "admin", "org": "dim", "exp": far}),
        b"guessed",
    );
    assert_eq!(
        call(&server, Some(&forged), "Projections/Status").await,
        Code::Unauthenticated
    );

    // A partner appends for its own organisation only; a refused batch writes nothing.
    let (c, t) = ch(&server, Some("key-0123456789-partner")).await;
    let mut l: EventLogClient<Ch> = EventLogClient::with_interceptor(c, t);
    let (c, t) = ch(&server, Some("key-0123456789-service")).await;
    let mut svc: EventLogClient<Ch> = EventLogClient::with_interceptor(c, t);
    let before = svc
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position;
    let e = l
        .append(batch(vec![
            event_for("chu-a", "x1"),
            event_for("chu-b", "x2"),
        ]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message().contains("events[1].actor.organisation"),
        "{}",
        e.message()
    );
    assert_eq!(
        svc.head(HeadRequest {})
            .await
            .unwrap()
            .into_inner()
            .position,
        before
    );

    // A coordinator sees its territory only.
    let (c, t) = ch(&server, Some("key-0123456789-coord")).await;
    let mut co = CoordinationClient::with_interceptor(c, t);
    let e = co
        .worklist(WorklistRequest {
            territory: "T2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    co.worklist(WorklistRequest {
        territory: "T1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let (c, t) = ch(&server, Some("key-0123456789-coord-nowhere")).await;
    let e = CoordinationClient::with_interceptor(c, t)
        .worklist(WorklistRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("no territory"), "{}", e.message());
}

#[tokio::test]
async fn the_cli_reads_the_local_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let data = dir.path().join("data");
    let run = |data_dir: &Path| {
        Command::new(journey_bin())
            .args(["verify", "--server", &server.grpc])
            .env("JOURNEY_DATA_DIR", data_dir)
            .env_remove("JOURNEY_TOKEN")
            .output()
            .unwrap()
    };
    let ok = run(&data);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = run(Path::new("/nonexistent"));
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Unauthenticated"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

async fn http(base: &str, method: &str, path: &str, headers: &str, body: &str) -> String {
    http_exchange(base, method, path, headers, body).await
}

#[tokio::test]
async fn the_dashboard_asks_for_a_token_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let base = &server.http;
    let r = http(base, "GET", "/", "", "").await;
    assert!(
        r.starts_with("HTTP/1.1 303") && r.contains("location: /login"),
        "{r}"
    );
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let r = http(base, "POST", "/login", form, "token=forged").await;
    assert!(r.starts_with("HTTP/1.1 401"), "{r}");
    let r = http(base, "POST", "/login", form, "token=key-0123456789-quality").await;
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let (r, cookie) = dashboard_sign_in(base, "key-0123456789-coord").await;
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    assert!(r.to_lowercase().contains("httponly"));
    let with = cookie.expect("a session cookie");
    let r = http(base, "GET", "/", &with, "").await;
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains("id=\"summary\""),
        "{r}"
    );
    // A coordinator's dashboard is held to its territory too.
    let r = http(base, "GET", "/?territory=T2", &with, "").await;
    assert!(r.starts_with("HTTP/1.1 403"), "{r}");
    let r = http(base, "GET", "/indicators", &with, "").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
}

async fn visible(server: &Server, key: &str, patient: &str) -> (bool, Code) {
    let (c, t) = ch(server, Some(key)).await;
    let mut co = CoordinationClient::with_interceptor(c, t);
    let listed = co
        .worklist(WorklistRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .iter()
        .any(|i| i.patient_id == patient);
    let follow = co
        .follow_up(v1::FollowUpRequest {
            patient_id: patient.into(),
            as_of: None,
        })
        .await
        .map_or_else(|s| s.code(), |_| Code::Ok);
    (listed, follow)
}

/// A revoked consent hides the patient from that organisation only, from that moment; auditors
/// and admins still see everything; a new consent shows the patient again.
#[tokio::test]
async fn consent_revocation_hides_the_patient_from_that_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let admin = admin_token(&dir.path().join("data"));
    let (c, t) = ch(&server, Some(&admin)).await;
    let l: EventLogClient<Ch> = EventLogClient::with_interceptor(c, t);
    let append = |events: Vec<v1::Event>| {
        let mut l = l.clone();
        async move {
            let r = l.append(batch(events)).await.unwrap().into_inner();
            let head = r.appended.last().unwrap().position;
            head
        }
    };
    let head = append(vec![
        admitted("C1", "EC1", 5 * 86_400),
        discharged("C1", "EC1", 3 * 86_400),
    ])
    .await;
    wait_projected_as(&server.grpc, head, Some(&admin)).await;
    assert_eq!(
        visible(&server, "key-0123456789-coord", "C1").await,
        (true, Code::Ok)
    );

    let consent = |given: bool| {
        let orgs = vec!["cpts-1".to_string()];
        event(
            "C1",
            ts(60),
            if given {
                v1::event::Payload::ConsentGiven(v1::ConsentGiven {
                    scope: "coordination".into(),
                    organisations: orgs,
                })
            } else {
                v1::event::Payload::ConsentRevoked(v1::ConsentRevoked {
                    scope: "coordination".into(),
                    organisations: orgs,
                })
            },
        )
    };
    let head = append(vec![consent(false)]).await;
    wait_projected_as(&server.grpc, head, Some(&admin)).await;
    // Withheld, the patient looks unknown (no enumeration); the access log says why (below).
    assert_eq!(
        visible(&server, "key-0123456789-coord", "C1").await,
        (false, Code::NotFound)
    );
    assert_eq!(
        visible(&server, "key-0123456789-coord", "NOBODY").await,
        (false, Code::NotFound)
    );

    assert_eq!(
        visible(&server, "key-0123456789-coord-other", "C1").await,
        (true, Code::Ok),
        "another organisation"
    );
    assert_eq!(
        visible(&server, &admin, "C1").await,
        (true, Code::Ok),
        "admins see everything"
    );

    let head = append(vec![consent(true)]).await;
    wait_projected_as(&server.grpc, head, Some(&admin)).await;
    assert_eq!(
        visible(&server, "key-0123456789-coord", "C1").await,
        (true, Code::Ok),
        "consent given again"
    );

    // Every read of C1 was recorded, the refused ones too; auditors can ask who looked.
    const AUDITOR: Option<&str> = Some("key-0123456789-auditor");
    let records = access_records(&server.grpc, AUDITOR, of_patient("C1")).await;
    let seen = who_called(records.iter().rev());
    assert_eq!(
        seen,
        // The worklists that listed C1 too (not nurse-1's while C1 revoked its consent).
        [
            ["nurse-1", "Coordination/Worklist", "ok"],
            ["nurse-1", "Coordination/FollowUp", "ok"],
            ["nurse-1", "Coordination/FollowUp", "permissiondenied"],
            ["nurse-3", "Coordination/Worklist", "ok"],
            ["nurse-3", "Coordination/FollowUp", "ok"],
            ["local-admin", "Coordination/Worklist", "ok"],
            ["local-admin", "Coordination/FollowUp", "ok"],
            ["nurse-1", "Coordination/Worklist", "ok"],
            ["nurse-1", "Coordination/FollowUp", "ok"],
        ]
    );
    assert!(records
        .iter()
        .all(|r| (r.patient_id == "C1" || r.patients.iter().any(|p| p == "C1")) && r.at.is_some()));
    let (c, t) = ch(&server, Some("key-0123456789-coord")).await;
    let e = v1::audit_client::AuditClient::with_interceptor(c, t)
        .accesses(v1::AccessesRequest {
            patient_id: "C1".into(),
            limit: 0,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::PermissionDenied,
        "only auditors read the access log"
    );

    // Refused calls are recorded too: no token, and a wrong role.
    assert_eq!(
        call(&server, None, "Coordination/Worklist").await,
        Code::Unauthenticated
    );
    assert_eq!(
        call(
            &server,
            Some("key-0123456789-quality"),
            "Coordination/Worklist"
        )
        .await,
        Code::PermissionDenied
    );
    let refused: Vec<[String; 3]> =
        access_records(&server.grpc, AUDITOR, v1::AccessesRequest::default())
            .await
            .iter()
            .filter(|r| r.call == "Coordination/Worklist" && r.outcome != "ok")
            .map(|r| [r.subject.clone(), r.role.clone(), r.outcome.clone()])
            .collect();
    assert_eq!(
        refused,
        [
            ["analyst", "quality", "permissiondenied"],
            ["(no identity)", "", "unauthenticated"],
        ]
    );

    // A refused call about one patient is recorded under that patient, with its purpose.
    let (c, t) = ch(&server, Some("key-0123456789-quality")).await;
    let mut asked = tonic::Request::new(v1::FollowUpRequest {
        patient_id: "C1".into(),
        as_of: None,
    });
    asked
        .metadata_mut()
        .insert("x-journey-purpose", "quality-review".parse().unwrap());
    let e = CoordinationClient::with_interceptor(c, t)
        .follow_up(asked)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let last = access_records(
        &server.grpc,
        AUDITOR,
        v1::AccessesRequest {
            limit: 1,
            ..of_patient("C1")
        },
    )
    .await;
    assert_eq!(
        last.iter()
            .map(|r| (
                r.subject.as_str(),
                r.call.as_str(),
                r.purpose.as_str(),
                r.outcome.as_str()
            ))
            .collect::<Vec<_>>(),
        [(
            "analyst",
            "Coordination/FollowUp",
            "quality-review",
            "permissiondenied"
        )]
    );
    // A patient of another territory looks unknown too.
    let in_an_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let elsewhere = hs256_jwt(
        &serde_json::json!({"sub": "nurse-t2", "role": "coordinator",
        "org": "cpts-2", "territory": "T2", "exp": in_an_hour}),
    );
    assert_eq!(
        visible(&server, &elsewhere, "C1").await,
        (false, Code::NotFound)
    );
}

/// The dashboard's patient page decides before it renders: a patient the coordination view does
/// not place in the coordinator's territory (here: observations only, no stay) is "not found" for
/// a coordinator, and no byte of the patient's record is served; an admin sees the timeline.
#[tokio::test]
async fn the_patient_page_serves_nothing_without_an_allow_decision() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let admin = admin_token(&dir.path().join("data"));
    let admin = admin.as_str();
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let mut obs = observation("UNPLACED-1", 97.0);
    obs.source = "telemonitoring-unplaced".into();
    let head = append_batch(&mut log, vec![obs]).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;

    let (_, cookie) = dashboard_sign_in(&server.http, "key-0123456789-coord").await;
    let coordinator = cookie.expect("a coordinator session");
    let page = http_exchange(
        &server.http,
        "GET",
        "/patients/UNPLACED-1",
        &coordinator,
        "",
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 404"), "{page}");
    assert!(
        !page.contains("telemonitoring-unplaced") && !page.contains("data-kind"),
        "nothing of the patient's record is served: {page}"
    );

    let (_, cookie) = dashboard_sign_in(&server.http, admin).await;
    let page = http_exchange(
        &server.http,
        "GET",
        "/patients/UNPLACED-1",
        &cookie.expect("an admin session"),
        "",
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("telemonitoring-unplaced"), "{page}");
}
