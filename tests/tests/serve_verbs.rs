//! Every `journey serve` verb is the same node with one part: each answers `/metrics` and gRPC
//! health, and each serves both over TLS when given a certificate. And a secured split deployment
//! (every service secure, the read side presenting its `--log-token` to the log) serves the
//! dashboard's patient page, which reads the patient's timeline from the remote log.
use journey_tests::*;
use std::process::Command;

fn port(url: &str) -> String {
    url.rsplit(':').next().unwrap().to_string()
}

/// `GET https://localhost:<port><path>` trusting `ca`; the body.
fn https_get(http: &str, path: &str, ca: &str) -> String {
    let url = format!("https://localhost:{}{path}", port(http));
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--cacert", ca, &url])
        .output()
        .expect("curl (apt-get install curl)");
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `journey health` against `grpc` over TLS, trusting `ca` (or not).
fn health_over_tls(grpc: &str, ca: Option<&str>) -> bool {
    let mut c = Command::new(journey_bin());
    c.args([
        "health",
        "--server",
        &format!("https://localhost:{}", port(grpc)),
    ])
    .env_remove("JOURNEY_CA_CERT");
    if let Some(ca) = ca {
        c.env("JOURNEY_CA_CERT", ca);
    }
    c.output().unwrap().status.success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_serve_verb_has_metrics_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let log = Server::start(&dir.path().join("log"), &["--no-reactor"]);
    let tls = ["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    let any = ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"];
    let own_data = dir.path().join("event-log").display().to_string();
    let db = |name: &str| format!("sqlite://{}", dir.path().join(name).display());
    let (readmission_db, coordination_db, access_db) =
        (db("r.sqlite"), db("c.sqlite"), db("a.sqlite"));
    let fhir_db = db("f.sqlite");
    let mllp = format!("127.0.0.1:{}", free_port());
    let verbs: Vec<(&str, Vec<&str>)> = vec![
        ("event-log", vec!["--data-dir", &own_data]),
        (
            "readmission",
            vec!["--log-url", &log.grpc, "--database-url", &readmission_db],
        ),
        (
            "coordination",
            vec!["--log-url", &log.grpc, "--database-url", &coordination_db],
        ),
        (
            "fhir",
            vec!["--log-url", &log.grpc, "--database-url", &fhir_db],
        ),
        ("reactor", vec!["--log-url", &log.grpc]),
        (
            "audit",
            vec!["--log-url", &log.grpc, "--access-log-url", &access_db],
        ),
        (
            "hl7",
            vec![
                "--log-url",
                &log.grpc,
                "--mllp-addr",
                &mllp,
                "--mllp-organisation",
                "chu-a",
            ],
        ),
    ];
    for (verb, extra) in verbs {
        let args: Vec<&str> = [&["serve", verb][..], &any, &tls, &extra].concat();
        let server = spawn_ready(&args);
        assert!(
            health_over_tls(&server.grpc, Some(&ca)),
            "serve {verb}: gRPC health over TLS"
        );
        assert!(
            !health_over_tls(&server.grpc, None),
            "serve {verb}: an unknown CA must be refused"
        );
        // The health calls above are counted by the node's gRPC metrics layer.
        let metrics = https_get(&server.http, "/metrics", &ca);
        assert!(
            metrics.contains("journey_grpc"),
            "serve {verb}: /metrics has no gRPC call metrics: {metrics}"
        );
        let status: serde_json::Value =
            serde_json::from_str(&https_get(&server.http, "/status", &ca)).unwrap();
        assert!(status.is_object(), "serve {verb}: {status}");
        let plain = Command::new(journey_bin())
            .args(["health", "--server", &server.grpc])
            .output()
            .unwrap();
        assert!(
            !plain.status.success(),
            "serve {verb}: plain-text gRPC must be refused"
        );
    }
}

const KEYS: &str = "\
# key role subject organisation [territory]
key-0123456789-admin admin root backbone
key-0123456789-service service projector backbone
key-0123456789-coord coordinator nurse-1 cpts-1 T1
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secured_split_deployment_serves_the_patient_page() {
    let dir = tempfile::tempdir().unwrap();
    let keys = private_file(&dir.path().join("keys.txt"), KEYS);
    let data = dir.path().join("data").display().to_string();
    let log = secure_serve(&["serve", "event-log", "--data-dir", &data], &keys);
    let db = format!("sqlite://{}", dir.path().join("c.sqlite").display());
    let coordination = secure_read_side(
        "coordination",
        &log.grpc,
        "key-0123456789-service",
        &db,
        &keys,
    );

    let mut client = client::connect(&log.grpc, Some("key-0123456789-admin"))
        .await
        .unwrap();
    let head = append_batch(
        &mut client,
        vec![
            admitted("SPLIT-1", "E-SPLIT-1", 7200),
            discharged("SPLIT-1", "E-SPLIT-1", 3600),
        ],
    )
    .await;
    wait_projected_as(&coordination.grpc, head, Some("key-0123456789-admin")).await;
    // The read side reports the remote log's head, read with its own token.
    let (channel, token) = (
        client::channel(&coordination.grpc).await.unwrap(),
        client::token(Some("key-0123456789-admin")).unwrap(),
    );
    let status =
        journey_proto::v1::projections_client::ProjectionsClient::with_interceptor(channel, token)
            .status(journey_proto::v1::ProjectionStatusRequest {})
            .await
            .unwrap()
            .into_inner();
    assert_eq!(status.log_head, head);

    // Signed in on the dashboard of the coordination service.
    let (r, cookie) = dashboard_sign_in(&coordination.http, "key-0123456789-admin").await;
    assert!(r.starts_with("HTTP/1.1 303"), "{r}");
    let with = cookie.expect("a session cookie");
    let page = http_exchange(&coordination.http, "GET", "/patients/SPLIT-1", &with, "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    // The timeline comes from the remote, secured log: both events are on the page.
    assert!(page.contains("E-SPLIT-1"), "{page}");
    assert!(
        page.matches("data-kind=").count() >= 2,
        "the timeline lists the patient's events: {page}"
    );

    // Without the service token the log refuses the read side: it does not start serving data.
    let refused = Command::new(journey_bin())
        .args(["verify", "--server", &log.grpc])
        .env_remove("JOURNEY_TOKEN")
        .env("JOURNEY_DATA_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(!refused.status.success(), "the log is secured");
}
