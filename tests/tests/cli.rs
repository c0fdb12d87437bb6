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

/// A non-loopback address of this machine, for a server the CLI must treat as remote.
fn this_machine_not_loopback() -> String {
    let out = Command::new("hostname").arg("-I").output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    all.split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .unwrap_or_else(|| {
            panic!("this test needs a non-loopback IPv4 address (hostname -I: {all:?})")
        })
        .to_string()
}

#[test]
fn the_local_admin_token_goes_only_to_a_server_on_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let anchor = dir.path().join("anchor.json");
    let server = spawn_ready_with_env(
        &[
            "up",
            "--grpc-addr",
            "0.0.0.0:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--anchor-file",
            anchor.to_str().unwrap(),
        ],
        &[("JOURNEY_INSECURE", "false")],
    );
    let port = server.grpc.rsplit(':').next().unwrap().to_string();
    let as_user = |server: &str, token: Option<&str>| {
        let mut cmd = Command::new(journey_bin());
        cmd.args(["verify", "--server", server])
            .env("JOURNEY_DATA_DIR", &data)
            .env_remove("JOURNEY_TOKEN")
            .env("RUST_LOG", "error");
        if let Some(t) = token {
            cmd.args(["--token", t]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // On this machine: the token from the data folder.
    for local in ["127.0.0.1", "localhost"] {
        let (code, out, err) = as_user(&format!("http://{local}:{port}"), None);
        assert_eq!(code, 0, "{local}: {out}{err}");
    }
    // The same server under another of its addresses is "elsewhere": nothing is sent, and the
    // user is told how to send a token.
    let elsewhere = format!("http://{}:{port}", this_machine_not_loopback());
    let (code, _, err) = as_user(&elsewhere, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("Unauthenticated"), "{err}");
    assert!(
        err.contains("sent only to a server on this machine")
            && err.contains("--token or set JOURNEY_TOKEN"),
        "{err}"
    );
    // Asked for explicitly, it goes.
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let (code, out, err) = as_user(&elsewhere, Some(admin.trim()));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn append_refuses_a_key_given_twice_and_a_birth_date_that_is_no_date() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let file = dir.path().join("p.json");
    let registered = |birth: &str, extra: &str| {
        format!(
            r#"{{"event_id":"6a0c9a53-1b9e-4b8e-9d7a-5f0c1e2d3a4c","patient_id":"p","occurred_at":"2026-01-01T10:00:00Z",
               "actor":{{"id":"a"}},"source":"s","patient_registered":{{"birth_date":"{birth}"{extra}}}}}"#
        )
    };
    std::fs::write(
        &file,
        registered("1950-02-03", r#","birth_date":"1960-01-01""#),
    )
    .unwrap();
    let (code, _, err) = journey(&server, &["append", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("event 1 (line 1): the key \"birth_date\" appears twice in one object"),
        "{err}"
    );
    std::fs::write(&file, registered("not-a-date", "")).unwrap();
    let (code, _, err) = journey(&server, &["append", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("InvalidArgument")
            && err.contains("patient_registered.birth_date")
            && err.contains("is not a date (expected YYYY-MM-DD)"),
        "{err}"
    );
    std::fs::write(&file, registered("1950-02-03", "")).unwrap();
    let (code, out, err) = journey(&server, &["append", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
