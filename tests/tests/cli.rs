//! The `journey` verbs as a user runs them: append a JSON file, replay, verify, and their errors.
use journey_tests::*;
use std::process::Command;

fn journey(server: &Server, args: &[&str]) -> (i32, String, String) {
    journey_at(&server.grpc, args)
}

fn journey_at(server: &str, args: &[&str]) -> (i32, String, String) {
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

#[test]
fn tour_append_replay_verify() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tour.ndjson");
    let (code, out, err) = journey(&server, &["append", tour]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("position        1"), "{out}");
    assert!(out.contains("position        2"), "{out}");

    let (code, out, _) = journey(&server, &["append", tour]);
    assert_eq!(code, 0);
    assert!(
        out.contains("already stored"),
        "a retry writes nothing: {out}"
    );

    let (code, out, err) = journey(&server, &["replay", "--patient", "demo-patient-1"]);
    assert_eq!(code, 0, "{err}");
    let admitted = out.find("Admitted").expect("admission in the timeline");
    let discharged = out.find("Discharged").expect("discharge in the timeline");
    assert!(admitted < discharged, "{out}");
    assert!(out.contains("DISPOSITION_HOME"), "{out}");

    let (code, out, _) = journey(&server, &["verify"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ok: 2 events verified"), "{out}");
}

#[test]
fn errors_say_what_is_wrong_and_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"patient_id": "x", "admitted": {"setting": "NOT_A_SETTING"}}"#,
    )
    .unwrap();
    let (code, _, err) = journey(&server, &["append", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("event 1 (line 1): admitted.setting"), "{err}");

    // The error names the event, its line and the field; a byte-order mark is no error.
    std::fs::write(
        &bad,
        "\u{feff}{\"patient_id\": \"x\"}\n\n{\"patient_id\": \"x\", \"observation_recorded\": {\"value\": \"abc\"}}\n",
    )
    .unwrap();
    let (code, _, err) = journey(&server, &["append", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("event 2 (line 3): observation_recorded.value: invalid float literal"),
        "{err}"
    );

    let rule = dir.path().join("rule.json");
    std::fs::write(
        &rule,
        r#"{"event_id":"6a0c9a53-1b9e-4b8e-9d7a-5f0c1e2d3a4b","patient_id":"p","occurred_at":"2026-01-01T10:00:00Z",
           "actor":{"id":"a"},"source":"s","discharged":{"encounter_id":"E","disposition":"DISPOSITION_HOME"}}"#,
    )
    .unwrap();
    let (code, _, err) = journey(&server, &["append", rule.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("FailedPrecondition") && err.contains("open admission"),
        "{err}"
    );

    let (code, _, err) = journey_at("http://127.0.0.1:1", &["replay", "--patient", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("journey up"), "{err}");
}

#[test]
fn a_server_that_only_writes_runs_under_sched_batch_and_the_flag_overrides() {
    use journey_services::sched::{thread_policies, SCHED_BATCH as BATCH, SCHED_OTHER as OTHER};
    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tour.ndjson");
    for (flags, policy) in [
        // `auto`: the log alone is batched; read models in the process keep the default policy.
        (&["--no-read-models"][..], BATCH),
        (&[][..], OTHER),
        (&["--cpu-policy", "batch"][..], BATCH),
        (&["--no-read-models", "--cpu-policy", "normal"][..], OTHER),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(dir.path(), flags);
        // An append, so that the log's and the storage's threads have all started.
        let (code, out, err) = journey(&server, &["append", tour]);
        assert_eq!(code, 0, "{out}{err}");
        let threads = thread_policies(&server.child.id().to_string()).unwrap();
        assert!(
            threads
                .iter()
                .any(|(name, _)| name.starts_with("journey-log")),
            "{threads:?}"
        );
        assert!(
            threads.iter().all(|(_, p)| *p == policy),
            "{flags:?}: every thread under policy {policy}: {threads:?}"
        );
    }
    let out = Command::new(journey_bin())
        .args(["up", "--cpu-policy", "fast"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("fast") && err.contains("batch") && err.contains("normal"),
        "{err}"
    );
}
