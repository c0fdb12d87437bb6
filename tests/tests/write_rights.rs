//! Who may write what (docs/design.md §6), through a secure `journey up`: every row of the write
//! table with the key it names, each refusal writing nothing and recorded in the access log with
//! the patient it was about.
use journey_proto::v1::{
    self, audit_client::AuditClient, event::Payload, event_log_client::EventLogClient,
    AccessesRequest, HeadRequest,
};
use journey_tests::client::{channel, token, Token};
use journey_tests::*;
use std::path::Path;
use tonic::{service::interceptor::InterceptedService, transport::Channel, Code};
use tonic_types::StatusExt;

const KEYS: &str = "\
key-0123456789-chu-a partner adt-a chu-a
key-0123456789-chu-b partner adt-b chu-b
key-0123456789-gp partner dr-house cab-gp
key-0123456789-consent consent portal consent-registry
key-0123456789-reactor service reactor backbone
key-0123456789-auditor auditor auditor-1 cnil
key-0123456789-coord coordinator nurse-1 cpts-1 T1
";

fn secure(dir: &Path) -> Server {
    secure_up(dir, KEYS, &[])
}

type Log = EventLogClient<InterceptedService<Channel, Token>>;

async fn log_as(server: &Server, key: &str) -> Log {
    EventLogClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some(key)).unwrap(),
    )
}

/// `e` as written by organisation `org`.
fn by(org: &str, mut e: v1::Event) -> v1::Event {
    e.actor.as_mut().unwrap().organisation = org.into();
    e
}

fn at_facility(mut e: v1::Event, facility: &str) -> v1::Event {
    if let Some(Payload::Admitted(a)) = &mut e.payload {
        a.facility.as_mut().unwrap().id = facility.into();
    }
    e
}

fn of(patient: &str, payload: Payload) -> v1::Event {
    event(patient, ts(600), payload)
}

fn visit(patient: &str) -> v1::Event {
    of(
        patient,
        Payload::HomeVisitRecorded(v1::HomeVisitRecorded::default()),
    )
}

fn registered(patient: &str, gp_org: &str) -> v1::Event {
    of(
        patient,
        Payload::PatientRegistered(v1::PatientRegistered {
            local_id: patient.into(),
            birth_date: "1950-02-03".into(),
            gp: Some(v1::Professional {
                id: "gp-1".into(),
                role: v1::Role::Gp as i32,
                organisation: gp_org.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
}

fn consent(patient: &str, given: bool) -> v1::Event {
    let organisations = vec!["chu-a".to_string()];
    let scope = "coordination".to_string();
    of(
        patient,
        if given {
            Payload::ConsentGiven(v1::ConsentGiven {
                scope,
                organisations,
            })
        } else {
            Payload::ConsentRevoked(v1::ConsentRevoked {
                scope,
                organisations,
            })
        },
    )
}

fn alert(patient: &str) -> v1::Event {
    of(
        patient,
        Payload::AlertRaised(v1::AlertRaised {
            alert_id: uuid::Uuid::new_v4().to_string(),
            severity: v1::Severity::High as i32,
            reason: "weight +2 kg in 3 days".into(),
            ..Default::default()
        }),
    )
}

fn deceased(patient: &str) -> v1::Event {
    of(
        patient,
        Payload::PatientDeceased(v1::PatientDeceased {
            died_at: Some(ts(600)),
        }),
    )
}

/// The access-log records of refused appends about `patient`: (subject, detail).
async fn refused_appends(server: &Server, patient: &str) -> Vec<(String, String)> {
    let mut audit = AuditClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some("key-0123456789-auditor")).unwrap(),
    );
    audit
        .accesses(AccessesRequest {
            patient_id: patient.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records
        .into_iter()
        .filter(|r| r.call == "EventLog/Append" && r.outcome == "permission_denied")
        .map(|r| (r.subject, r.detail))
        .collect()
}

#[tokio::test]
async fn every_row_of_the_write_table() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure(dir.path());
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let mut auditor = log_as(&server, "key-0123456789-auditor").await;
    let head = |h: v1::HeadResponse| h.position;

    // Hospital A registers and admits P-A (GP of practice cab-gp) at its facility F-A;
    // hospital B admits P-B at F-B.
    let mut chu_a = log_as(&server, "key-0123456789-chu-a").await;
    chu_a
        .append(batch(vec![
            by("chu-a", registered("P-A", "cab-gp")),
            by("chu-a", at_facility(admitted("P-A", "E-A", 7200), "F-A")),
        ]))
        .await
        .expect("a hospital registers and admits its patient");
    let mut chu_b = log_as(&server, "key-0123456789-chu-b").await;
    chu_b
        .append(batch(vec![by(
            "chu-b",
            at_facility(admitted("P-B", "E-B", 7200), "F-B"),
        )]))
        .await
        .expect("a hospital admits a patient new to the backbone at its facility");

    // (key, event, the refusal's rule code, or None when the row is allowed). In order: later
    // rows rely on earlier ones.
    let discharge_a = || by("chu-b", discharged("P-A", "E-A", 3600));
    let rows: Vec<(&str, v1::Event, Option<&str>)> = vec![
        // A partner: its own encounters only.
        (
            "key-0123456789-chu-b",
            discharge_a(),
            Some("not_your_encounter"),
        ),
        // ... about patients it has a relationship with only.
        (
            "key-0123456789-chu-b",
            by("chu-b", deceased("P-A")),
            Some("not_related"),
        ),
        (
            "key-0123456789-chu-b",
            by("chu-b", visit("P-A")),
            Some("not_related"),
        ),
        (
            "key-0123456789-chu-b",
            by("chu-b", registered("P-A", "")),
            Some("not_related"),
        ),
        // ... opening encounters at its own facilities only.
        (
            "key-0123456789-chu-b",
            by("chu-b", at_facility(admitted("P-A", "E-X", 3000), "F-A")),
            Some("not_your_facility"),
        ),
        // ... never the patient's consent.
        (
            "key-0123456789-chu-b",
            by("chu-b", consent("P-A", true)),
            Some("type"),
        ),
        (
            "key-0123456789-chu-a",
            by("chu-a", consent("P-B", false)),
            Some("type"),
        ),
        (
            "key-0123456789-chu-a",
            by("chu-a", consent("P-A", false)),
            Some("type"),
        ),
        // ... under its own organisation only.
        (
            "key-0123456789-chu-b",
            by("chu-a", visit("P-A")),
            Some("organisation"),
        ),
        // The patient's GP, named at registration, writes about the patient.
        ("key-0123456789-gp", by("cab-gp", visit("P-A")), None),
        // The hospital closes its own stay.
        (
            "key-0123456789-chu-a",
            by("chu-a", discharged("P-A", "E-A", 3600)),
            None,
        ),
        // Once the patient comes to hospital B, B writes about the patient too.
        (
            "key-0123456789-chu-b",
            by("chu-b", at_facility(admitted("P-A", "E-B2", 1800), "F-B")),
            None,
        ),
        ("key-0123456789-chu-b", by("chu-b", visit("P-A")), None),
        // The consent registry records consent, for any patient, and nothing else.
        (
            "key-0123456789-consent",
            by("consent-registry", consent("P-B", false)),
            None,
        ),
        (
            "key-0123456789-consent",
            by("consent-registry", visit("P-B")),
            Some("type"),
        ),
        // The reactor's service key raises alerts, and nothing else.
        ("key-0123456789-reactor", by("backbone", alert("P-B")), None),
        // ... as the backbone itself (no organisation, as the reactor writes them) or under its
        // own organisation, never another's.
        ("key-0123456789-reactor", by("", alert("P-B")), None),
        (
            "key-0123456789-reactor",
            by("chu-b", alert("P-B")),
            Some("organisation"),
        ),
        (
            "key-0123456789-reactor",
            by("backbone", deceased("P-B")),
            Some("type"),
        ),
        // The admin is not held to an organisation's rights.
        (admin.trim(), by("chu-z", visit("P-B")), None),
    ];
    for (n, (key, event, refusal)) in rows.into_iter().enumerate() {
        let patient = event.patient_id.clone();
        let before = head(auditor.head(HeadRequest {}).await.unwrap().into_inner());
        let mut client = log_as(&server, key).await;
        let got = client.append(batch(vec![event])).await;
        let after = head(auditor.head(HeadRequest {}).await.unwrap().into_inner());
        let Some(rule) = refusal else {
            got.unwrap_or_else(|e| panic!("row {n} ({key}) should be allowed: {e:?}"));
            assert_eq!(after, before + 1, "row {n}");
            continue;
        };
        let status = got.expect_err(&format!("row {n} ({key}) should be refused"));
        assert_eq!(status.code(), Code::PermissionDenied, "row {n}: {status:?}");
        assert_eq!(after, before, "row {n}: a refused append writes nothing");
        match rule {
            "type" => assert!(
                status.message().contains("may not write"),
                "row {n}: {}",
                status.message()
            ),
            "organisation" => assert!(
                status.message().contains("is not your organisation"),
                "row {n}: {}",
                status.message()
            ),
            code => {
                let reason = status.get_details_error_info().map(|i| i.reason);
                assert_eq!(
                    reason.as_deref(),
                    Some(code),
                    "row {n}: {}",
                    status.message()
                );
            }
        }
        let recorded = refused_appends(&server, &patient).await;
        let subject = KEYS
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap();
        // The detail is the refusal's message (bounded in length).
        let said = |detail: &str| {
            !detail.is_empty() && status.message().starts_with(detail.trim_end_matches('…'))
        };
        assert!(
            recorded
                .iter()
                .any(|(who, detail)| who == subject && said(detail)),
            "row {n}: the refusal is in the access log of {patient}: {recorded:?}"
        );
    }

    // A coordinator writes its six event types only from the dashboard's patient page, which
    // decides territory and consent first (tests/tests/dashboard_actions.rs): the gRPC Append is
    // not open to the role, even for a contact under its own organisation.
    let before = head(auditor.head(HeadRequest {}).await.unwrap().into_inner());
    let mut coordinator = log_as(&server, "key-0123456789-coord").await;
    let contact = of(
        "P-A",
        Payload::ContactMade(v1::ContactMade {
            channel: v1::ContactChannel::Phone as i32,
            ..Default::default()
        }),
    );
    let status = coordinator
        .append(batch(vec![by("cpts-1", contact)]))
        .await
        .expect_err("a coordinator's gRPC append");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("may not call"), "{status:?}");
    let after = head(auditor.head(HeadRequest {}).await.unwrap().into_inner());
    assert_eq!(after, before, "a refused append writes nothing");
}
