//! Telemonitoring alerts end to end: the reactor inside `journey up` and alone
//! (`journey serve reactor`, over gRPC or NATS) appends exactly one `AlertRaised` per threshold
//! crossing, caused by the observation, and never again after restarts; impossible observation
//! values are refused at ingest.
//!
//! Absence of alerts is never waited for with a timer: the reactor folds the log in order, so once
//! the alert of a later "marker" observation is in the log, every decision about earlier
//! observations has been made and appended.
use journey_proto::v1::{
    self, event::Payload, AlertThreshold, CarePlanEstablished, Code, ConditionRecorded, Event,
    HeadRequest, ObservationRecorded, Severity,
};
use journey_tests::*;
use std::time::{Duration, Instant};

const HOUR: i64 = 3600;

fn reading(patient: &str, measure: &str, value: f64, unit: &str, secs_ago: i64) -> Event {
    event(
        patient,
        ts(secs_ago),
        Payload::ObservationRecorded(ObservationRecorded {
            measure: measure.into(),
            value,
            unit: unit.into(),
            ..Default::default()
        }),
    )
}

fn spo2(patient: &str, value: f64, secs_ago: i64) -> Event {
    reading(patient, "spo2", value, "%", secs_ago)
}

fn heart_failure(patient: &str) -> Event {
    event(
        patient,
        ts(10 * 24 * HOUR),
        Payload::ConditionRecorded(ConditionRecorded {
            diagnosis: Some(Code {
                system: "ICD-10".into(),
                code: "I50.9".into(),
                display: "Heart failure, unspecified".into(),
            }),
            ..Default::default()
        }),
    )
}

fn care_plan(patient: &str, measure: &str, low: f64, high: f64, severity: Severity) -> Event {
    event(
        patient,
        ts(5 * 24 * HOUR),
        Payload::CarePlanEstablished(CarePlanEstablished {
            care_plan_id: format!("CP-{patient}"),
            thresholds: vec![AlertThreshold {
                measure: measure.into(),
                low,
                high,
                severity: severity as i32,
            }],
            ..Default::default()
        }),
    )
}

async fn append(server: &Server, events: Vec<Event>) {
    let mut c = server.client().await;
    for e in events {
        c.append(batch(vec![e])).await.expect("append");
    }
}

async fn head(server: &Server) -> u64 {
    server
        .client()
        .await
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position
}

/// The patient's `AlertRaised` events, in log order.
async fn alerts(server: &Server, patient: &str) -> Vec<Event> {
    let events = patient_events(&mut server.client().await, patient).await;
    events
        .into_iter()
        .filter(|e| matches!(e.payload, Some(Payload::AlertRaised(_))))
        .collect()
}

/// Polls until the patient has at least `n` alerts (generous deadline), then returns them all.
async fn wait_alerts(server: &Server, patient: &str, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = alerts(server, patient).await;
        if a.len() >= n {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "{patient}: {} alerts, expected {n}",
            a.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn raised(e: &Event) -> &v1::AlertRaised {
    match &e.payload {
        Some(Payload::AlertRaised(a)) => a,
        other => panic!("not an alert: {other:?}"),
    }
}

/// Appends an SpO2 crossing for `patient` and waits for its alert: every observation appended
/// before it has been judged once that alert is in the log.
async fn marker(server: &Server, patient: &str) -> Event {
    let before = alerts(server, patient).await.len();
    let low = spo2(patient, 80.0, 60);
    append(server, vec![spo2(patient, 97.0, 120), low.clone()]).await;
    let a = wait_alerts(server, patient, before + 1).await;
    let last = a.last().unwrap().clone();
    assert_eq!(last.causation_id, low.event_id);
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_alert_per_crossing_caused_by_the_observation() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);

    // SpO2: a run of low readings (87 high, then 87.5 high, 89 moderate) raises one alert; a new
    // one only after a return inside (here critical).
    let mut first_low = spo2("AL-1", 87.0, 5 * HOUR);
    first_low.correlation_id = "telemonitoring-session-1".into();
    let run = vec![
        spo2("AL-1", 95.0, 6 * HOUR),
        first_low.clone(),
        spo2("AL-1", 87.5, 4 * HOUR),
        spo2("AL-1", 89.0, 3 * HOUR),
        spo2("AL-1", 96.0, 2 * HOUR),
    ];
    let second_low = spo2("AL-1", 84.0, HOUR);
    append(&server, run).await;
    append(&server, vec![second_low.clone()]).await;
    let a = wait_alerts(&server, "AL-1", 2).await;
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(a[0].causation_id, first_low.event_id);
    assert_eq!(a[0].correlation_id, "telemonitoring-session-1");
    assert_eq!(a[1].causation_id, second_low.event_id);
    let (r0, r1) = (raised(&a[0]), raised(&a[1]));
    assert_eq!(r0.rule, "spo2.low");
    assert_eq!(r0.severity, Severity::High as i32, "{r0:?}");
    assert_eq!(r1.severity, Severity::Critical as i32, "{r1:?}");
    assert!(r0.reason.contains("87"), "{}", r0.reason);
    for e in &a {
        let r = raised(e);
        assert_eq!(r.alert_id, e.event_id, "the alert is named by its event id");
        assert_eq!(e.actor.as_ref().unwrap().role, v1::Role::System as i32);
        assert!(e.position > 0 && e.hash.len() == 32);
    }
    assert_eq!(a[0].occurred_at, first_low.occurred_at);

    // Heart failure: +2 kg within 3 days (moderate).
    let gain = reading("AL-HF", "weight", 72.4, "kg", HOUR);
    append(
        &server,
        vec![
            heart_failure("AL-HF"),
            reading("AL-HF", "weight", 70.1, "kg", 50 * HOUR),
            reading("AL-HF", "weight", 71.0, "kg", 26 * HOUR),
            gain.clone(),
        ],
    )
    .await;
    let a = wait_alerts(&server, "AL-HF", 1).await;
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].causation_id, gain.event_id);
    assert_eq!(raised(&a[0]).rule, "heart_failure.weight_gain_3d");
    assert_eq!(raised(&a[0]).severity, Severity::Moderate as i32);

    // A care plan's threshold, with the plan's severity.
    let fast = reading("AL-CP", "heart_rate", 128.0, "/min", HOUR);
    append(
        &server,
        vec![
            care_plan("AL-CP", "heart_rate", 45.0, 110.0, Severity::High),
            reading("AL-CP", "heart_rate", 80.0, "/min", 2 * HOUR),
            fast.clone(),
            reading("AL-CP", "heart_rate", 125.0, "/min", 30 * 60),
        ],
    )
    .await;
    // Marker after everything: all decisions above are in the log now.
    marker(&server, "AL-M").await;
    let a = alerts(&server, "AL-CP").await;
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(a[0].causation_id, fast.event_id);
    assert_eq!(raised(&a[0]).rule, "care_plan.heart_rate");
    assert_eq!(raised(&a[0]).severity, Severity::High as i32);
    assert_eq!(alerts(&server, "AL-1").await.len(), 2);
    assert_eq!(alerts(&server, "AL-HF").await.len(), 1);

    // Normal readings raise nothing; the log holds exactly the events sent plus 5 alerts.
    assert_eq!(head(&server).await, 6 + 4 + 4 + 2 + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_replays_never_append_an_alert_again() {
    let dir = tempfile::tempdir().unwrap();
    // Observations arrive while no reactor runs.
    let low = spo2("RS-1", 86.0, 3 * HOUR);
    {
        let mut server = Server::start(dir.path(), &["--no-reactor"]);
        append(
            &server,
            vec![
                spo2("RS-1", 94.0, 4 * HOUR),
                low.clone(),
                spo2("RS-1", 85.5, 2 * HOUR),
            ],
        )
        .await;
        assert_eq!(head(&server).await, 3);
        assert!(server.terminate().success());
    }
    // The reactor catches up with the history and raises the one alert.
    let first_head = {
        let mut server = Server::start(dir.path(), &[]);
        let a = wait_alerts(&server, "RS-1", 1).await;
        assert_eq!(a[0].causation_id, low.event_id);
        marker(&server, "RS-M1").await;
        assert_eq!(alerts(&server, "RS-1").await.len(), 1);
        let h = head(&server).await;
        assert_eq!(h, 3 + 1 + 2 + 1);
        assert!(server.terminate().success());
        h
    };
    // Restarts, clean or not, rebuild the state from the log and append nothing again.
    let mut server = Server::start(dir.path(), &[]);
    marker(&server, "RS-M2").await;
    assert_eq!(
        head(&server).await,
        first_head + 3,
        "only the marker and its alert"
    );
    server.kill9();
    let server = Server::start(dir.path(), &[]);
    marker(&server, "RS-M3").await;
    assert_eq!(head(&server).await, first_head + 6);
    assert_eq!(alerts(&server, "RS-1").await.len(), 1);
    assert_eq!(alerts(&server, "RS-M1").await.len(), 1);
    assert_eq!(alerts(&server, "RS-M2").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_observation_values_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let cases = [
        ("weight", -2.0, "kg", "cannot be negative"),
        ("weight", 0.0, "kg", "more than 0"),
        ("weight", 612.0, "kg", "at most 500 kg"),
        ("spo2", 101.0, "%", "between 0 and 100"),
        ("heart_rate", 350.0, "/min", "between 0 and 300"),
        ("bp_systolic", -120.0, "mm[Hg]", "cannot be negative"),
    ];
    for (measure, value, unit, needle) in cases {
        let good = spo2("IV-1", 97.0, 60);
        let bad = reading("IV-1", measure, value, unit, 60);
        let status = c.append(batch(vec![good, bad])).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        assert!(
            status
                .message()
                .starts_with("events[1].observation_recorded.value: "),
            "{}",
            status.message()
        );
        assert!(status.message().contains(needle), "{}", status.message());
    }
    assert_eq!(head(&server).await, 0, "nothing written");
    // Possible extremes and unknown measures pass.
    for e in [
        reading("IV-1", "spo2", 100.0, "%", 60),
        reading("IV-1", "weight", 0.8, "kg", 60),
        reading("IV-1", "pain_score", -1.0, "", 60),
    ] {
        c.append(batch(vec![e])).await.expect("accepted");
    }
    assert_eq!(head(&server).await, 3);
}

/// Appends the same observations (same event ids) to `server`.
async fn same_story(server: &Server, events: &[Event]) {
    append(server, events.to_vec()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_reactor_raises_the_same_alert_and_resends_nothing_after_restart() {
    let story = vec![
        heart_failure("SA-1"),
        reading("SA-1", "weight", 80.0, "kg", 40 * HOUR),
        reading("SA-1", "weight", 83.1, "kg", 2 * HOUR),
        spo2("SA-1", 87.0, HOUR),
    ];
    // Reference: the reactor inside `journey up`.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = Server::start(ref_dir.path(), &[]);
    same_story(&reference, &story).await;
    let expected = wait_alerts(&reference, "SA-1", 2).await;

    // A log without reactor, and the reactor alone against it over gRPC.
    let dir = tempfile::tempdir().unwrap();
    let log = Server::start(dir.path(), &["--no-reactor"]);
    same_story(&log, &story[..2]).await;
    let args = [
        "serve",
        "reactor",
        "--log-url",
        &log.grpc,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ];
    let mut reactor = spawn_ready(&args);
    same_story(&log, &story[2..]).await;
    let got = wait_alerts(&log, "SA-1", 2).await;
    assert_eq!(got.len(), 2);
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(g.event_id, e.event_id, "same deterministic id");
        assert_eq!(g.causation_id, e.causation_id);
        assert_eq!(g.payload, e.payload);
    }
    let status = reactor_status(&reactor, head(&log).await).await;
    assert_eq!(status["alerts_appended"], 2, "{status}");

    // Restarted, it rebuilds its state from the log and sends nothing again.
    reactor.terminate();
    let before = head(&log).await;
    let reactor = spawn_ready(&args);
    let status = reactor_status(&reactor, before).await;
    assert_eq!(status["alerts_appended"], 0, "{status}");
    assert_eq!(status["alerts_already_stored"], 0, "{status}");
    assert_eq!(status["pending"], 0, "{status}");
    assert_eq!(head(&log).await, before);
    // And it still follows the log live.
    marker(&log, "SA-M").await;
}

/// The standalone reactor's `/status`, once it has caught up and folded the log up to `position`.
async fn reactor_status(reactor: &Server, position: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = http_get(&reactor.http, "/status").await;
        let s: serde_json::Value = serde_json::from_str(&body).expect("status json");
        let r = s["reactor"].clone();
        if r["caught_up"] == true && r["position"].as_u64() >= Some(position) {
            return r;
        }
        assert!(Instant::now() < deadline, "reactor stuck: {r}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_reactor_follows_nats() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let log = Server::start(
        dir.path(),
        &[
            "--no-reactor",
            "--nats-url",
            &nats.url(),
            "--nats-stream",
            "E2E_ALERTS",
        ],
    );
    // History before the reactor starts: caught up from the log.
    append(
        &log,
        vec![spo2("NA-1", 96.0, 3 * HOUR), spo2("NA-1", 89.0, 2 * HOUR)],
    )
    .await;
    let _reactor = spawn_ready(&[
        "serve",
        "reactor",
        "--log-url",
        &log.grpc,
        "--nats-url",
        &nats.url(),
        "--nats-stream",
        "E2E_ALERTS",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let a = wait_alerts(&log, "NA-1", 1).await;
    assert_eq!(raised(&a[0]).severity, Severity::Moderate as i32);
    // Live events through NATS.
    append(&log, vec![spo2("NA-1", 88.0, HOUR)]).await;
    marker(&log, "NA-M").await;
    assert_eq!(
        alerts(&log, "NA-1").await.len(),
        1,
        "still the same excursion"
    );
}
