//! Hardening of the log's answers (issue 19), end to end through gRPC on a real `journey up`:
//! an event id reused with another body is refused (`ALREADY_EXISTS`, naming the id), not taken
//! for a retry; and a patient who died in hospital can still have the stay closed by a discharge
//! with disposition deceased, in either order, while anything else after death stays refused.
use journey_proto::v1::{self, event::Payload, Event, HeadRequest};
use journey_tests::client::LogClient;
use journey_tests::*;
use tonic::Code;

async fn head(c: &mut LogClient) -> v1::HeadResponse {
    c.head(HeadRequest {}).await.unwrap().into_inner()
}

async fn stream_of(c: &mut LogClient, patient: &str) -> Vec<Event> {
    patient_events(c, patient).await
}

/// The rule code and subject of a refusal by a journey rule: "code:events[i]".
fn rule_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_precondition_failure()
        .and_then(|p| {
            p.violations
                .first()
                .map(|v| format!("{}:{}", v.r#type, v.subject))
        })
        .unwrap_or_default()
}

/// `e` with another observed value: the same id and patient, another body.
fn altered(e: &Event) -> Event {
    let mut other = e.clone();
    match &mut other.payload {
        Some(Payload::ObservationRecorded(o)) => o.value += 1.0,
        _ => panic!("not an observation"),
    }
    other
}

fn deceased(patient: &str, secs_ago: i64, died_secs_ago: i64) -> Event {
    event(
        patient,
        ts(secs_ago),
        Payload::PatientDeceased(v1::PatientDeceased {
            died_at: Some(ts(died_secs_ago)),
        }),
    )
}

fn discharged_as(
    patient: &str,
    encounter: &str,
    secs_ago: i64,
    disposition: v1::Disposition,
) -> Event {
    let mut e = discharged(patient, encounter, secs_ago);
    match &mut e.payload {
        Some(Payload::Discharged(d)) => d.disposition = disposition as i32,
        _ => unreachable!(),
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_id_reused_with_another_body_is_already_exists_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut c = server.client().await;
    let events = vec![
        observation("H-1", 1.0),
        observation("H-2", 2.0),
        observation("H-1", 3.0),
    ];
    let first = c.append(batch(events.clone())).await.unwrap().into_inner();
    assert!(!first.deduplicated);
    let before = head(&mut c).await;
    assert_eq!(before.position, 3);

    // The same id with another body, alone, in the batch retried whole, or with another
    // envelope field: refused, naming the id.
    let mut retried = events.clone();
    retried[2] = altered(&events[2]);
    let mut resent = events[0].clone();
    resent.source = "another-system".into();
    let cases = [
        ("alone", batch(vec![altered(&events[1])]), &events[1]),
        ("batch retried whole", batch(retried), &events[2]),
        ("another source", batch(vec![resent]), &events[0]),
    ];
    for (name, request, reused) in cases {
        let status = c.append(request).await.expect_err(name);
        assert_eq!(
            status.code(),
            Code::AlreadyExists,
            "{name}: {}",
            status.message()
        );
        assert!(
            status.message().contains(&reused.event_id),
            "{name}: {}",
            status.message()
        );
        assert!(
            status.message().contains("another body"),
            "{name}: {}",
            status.message()
        );
        assert_eq!(head(&mut c).await, before, "{name} wrote something");
    }

    // What is stored is the first body.
    let stored = stream_of(&mut c, "H-2").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].payload, events[1].payload);

    // A true retry of the batch is still answered as before: deduplicated, nothing written.
    let again = c.append(batch(events.clone())).await.unwrap().into_inner();
    assert!(again.deduplicated);
    assert_eq!(again.appended, first.appended);
    let again = c
        .append(batch(vec![events[1].clone()]))
        .await
        .unwrap()
        .into_inner();
    assert!(again.deduplicated);
    assert_eq!(again.appended[0], first.appended[1]);
    assert_eq!(head(&mut c).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn death_then_discharge_deceased_closes_the_stay() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut c = server.client().await;
    // Given a patient admitted, who died in hospital, the death sent first.
    c.append(batch(vec![
        admitted("D-1", "E-1", 7200),
        deceased("D-1", 3600, 3600),
    ]))
    .await
    .unwrap();
    let before = head(&mut c).await;

    // A discharge home after death is refused, and writes nothing.
    let home = c
        .append(batch(vec![discharged_as(
            "D-1",
            "E-1",
            1800,
            v1::Disposition::Home,
        )]))
        .await
        .expect_err("discharge home after death");
    assert_eq!(home.code(), Code::FailedPrecondition, "{}", home.message());
    assert_eq!(rule_of(&home), "nothing_after_death:events[0]");
    assert_eq!(head(&mut c).await, before);

    // The discharge with disposition deceased closes the stay.
    let closed = c
        .append(batch(vec![discharged_as(
            "D-1",
            "E-1",
            1800,
            v1::Disposition::Deceased,
        )]))
        .await
        .unwrap()
        .into_inner();
    assert!(!closed.deduplicated);
    assert_eq!(closed.appended[0].position, before.position + 1);
    let after = head(&mut c).await;

    // Anything else after death is still refused: a second discharge, a new stay, a reading.
    let refusals = [
        (
            "second discharge",
            discharged_as("D-1", "E-1", 900, v1::Disposition::Deceased),
            "no_open_admission:events[0]",
        ),
        (
            "new admission",
            admitted("D-1", "E-2", 900),
            "nothing_after_death:events[0]",
        ),
        (
            "observation",
            observation("D-1", 1.0),
            "nothing_after_death:events[0]",
        ),
    ];
    for (name, e, rule) in refusals {
        let status = c.append(batch(vec![e])).await.expect_err(name);
        assert_eq!(
            status.code(),
            Code::FailedPrecondition,
            "{name}: {}",
            status.message()
        );
        assert_eq!(rule_of(&status), rule, "{name}: {}", status.message());
        assert_eq!(head(&mut c).await, after, "{name} wrote something");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discharge_deceased_then_death_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut c = server.client().await;
    // Given a stay closed by a discharge with disposition deceased...
    c.append(batch(vec![
        admitted("D-2", "E-1", 7200),
        discharged_as("D-2", "E-1", 3600, v1::Disposition::Deceased),
    ]))
    .await
    .unwrap();
    // ...the PatientDeceased the feed sends afterwards (recorded later, death at the discharge)
    // is accepted.
    let r = c
        .append(batch(vec![deceased("D-2", 1800, 3600)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.appended[0].position, 3);
    let after = head(&mut c).await;
    // Nothing else follows.
    let status = c
        .append(batch(vec![observation("D-2", 1.0)]))
        .await
        .expect_err("observation after death");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(rule_of(&status), "nothing_after_death:events[0]");
    assert_eq!(head(&mut c).await, after);
}
