//! Every service's `/metrics` (Prometheus text) carries the series operators watch: append
//! latency, group-commit size, outbox backlog and rejected appends by reason on the event-log
//! service; checkpoint and lag (positions and seconds) and query latency on a read side.
use journey_proto::v1::{readmission_client::ReadmissionClient, HeadRequest, RatesRequest};
use journey_tests::*;
use std::time::{Duration, Instant};

/// The value of the series `name{labels}` (exact text before the value), if present.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .filter(|rest| rest.starts_with(' '))
            .and_then(|rest| rest.trim().parse().ok())
    })
}

fn has(metrics: &str, name: &str) -> bool {
    metrics
        .lines()
        .any(|l| !l.starts_with('#') && l.starts_with(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_export_the_operational_metrics() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("log");
    let log = spawn_ready(&[
        "serve",
        "event-log",
        "--data-dir",
        data.to_str().unwrap(),
        "--nats-url",
        &nats.url(),
        "--nats-stream",
        "METRICS",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let db = format!("sqlite://{}/r.sqlite", dir.path().display());
    let readmission = serve_over_nats("readmission", &log.grpc, &nats.url(), "METRICS", &db);
    let mut c = log.client().await;
    c.append(batch(vec![
        admitted("M1", "E1", 7200),
        discharged("M1", "E1", 3600),
    ]))
    .await
    .unwrap();
    // A discharge of a stay never opened: refused by the journey rules.
    let refused = c
        .append(batch(vec![discharged("M2", "NOPE", 60)]))
        .await
        .unwrap_err();
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&readmission.grpc, head).await;
    ReadmissionClient::new(
        journey_tests::client::channel(&readmission.grpc)
            .await
            .unwrap(),
    )
    .rates(RatesRequest::default())
    .await
    .unwrap();

    // The event-log service. The outbox publishes asynchronously: wait until its backlog is 0.
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = http_get(&log.http, "/metrics").await;
        if value(&m, "journey_outbox_backlog") == Some(0.0) {
            break m;
        }
        assert!(Instant::now() < deadline, "outbox backlog never 0:\n{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(value(&m, "journey_log_head"), Some(head as f64), "{m}");
    assert!(has(&m, "journey_append_seconds"), "append latency:\n{m}");
    assert!(
        has(&m, "journey_group_commit_events"),
        "group commit size:\n{m}"
    );
    assert!(has(&m, "journey_log_sync_seconds"), "sync latency:\n{m}");
    let reason = format!("{:?}", refused.code()).to_lowercase();
    assert_eq!(
        value(
            &m,
            &format!("journey_append_rejected_total{{reason=\"{reason}\"}}")
        ),
        Some(1.0),
        "rejected appends by reason:\n{m}"
    );

    // The read side: checkpoint at the head, no lag, and the query's latency.
    let m = http_get(&readmission.http, "/metrics").await;
    assert_eq!(
        value(
            &m,
            "journey_projection_checkpoint{projection=\"readmission\"}"
        ),
        Some(head as f64),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "journey_projection_lag_positions{projection=\"readmission\"}"
        ),
        Some(0.0),
        "{m}"
    );
    assert!(
        has(
            &m,
            "journey_projection_lag_seconds{projection=\"readmission\"}"
        ),
        "{m}"
    );
    assert!(
        m.lines()
            .any(|l| l.starts_with("journey_grpc_request_seconds")
                && l.contains("Readmission/Rates")),
        "query latency:\n{m}"
    );
}

/// Calls to paths no service has are counted under one `unknown` label: a caller choosing paths
/// cannot grow `/metrics` (issue 19, resource exhaustion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_do_not_grow_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = server.client().await;
    log.head(HeadRequest {}).await.unwrap();
    let before = http_get(&server.http, "/metrics").await.len();
    for i in 0..200 {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "--http2-prior-knowledge",
                "-X",
                "POST",
                "-H",
                "content-type: application/grpc",
                &format!("{}/random{i}.Service/Method{i}", server.grpc),
            ])
            .status()
            .expect("curl (apt-get install curl)");
        assert!(out.success());
    }
    let metrics = http_get(&server.http, "/metrics").await;
    assert!(!metrics.contains("random1"), "{metrics}");
    assert!(
        metrics.contains(r#"method="unknown""#),
        "the calls are counted: {metrics}"
    );
    assert!(
        metrics.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        metrics.len()
    );
}
