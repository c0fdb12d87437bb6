//! The backbone as separate processes, as deployed: `journey serve event-log`, `serve readmission`
//! and `serve coordination` on PostgreSQL, and `serve reactor`, all on a private NATS JetStream.
//! Under a simulated load the event log and a projection service are killed and restarted and NATS
//! is stopped for a while; at the end every read model equals a fresh rebuild from the log.
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        coordination_client::CoordinationClient, HeadRequest, IndexStay, WorklistItem,
        WorklistRequest,
    },
};
use journey_tests::*;
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

fn simulate(log_grpc: &str, seed: &str, patients: &str) -> Child {
    Command::new(journey_bin())
        .args([
            "simulate",
            "--patients",
            patients,
            "--days",
            "60",
            "--seed",
            seed,
            "--server",
            log_grpc,
        ])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn finish(mut c: Child) {
    assert!(c.wait().unwrap().success(), "simulate failed");
}

async fn stays(grpc: &str) -> Vec<IndexStay> {
    all_stays_paged(grpc, 1000).await
}

async fn worklist(grpc: &str, as_of: i64) -> Vec<WorklistItem> {
    let mut c = CoordinationClient::new(journey_tests::client::channel(grpc).await.unwrap());
    c.worklist(WorklistRequest {
        page_size: 1000,
        window_days: 3650,
        as_of: Some(Timestamp {
            seconds: as_of,
            nanos: 0,
        }),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .items
}

fn read_side(kind: &str, log: &str, nats: &str, db: &str) -> Server {
    spawn_ready(&[
        "serve",
        kind,
        "--log-url",
        log,
        "--nats-url",
        nats,
        "--nats-stream",
        "DEPLOY",
        "--database-url",
        db,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ])
}

#[tokio::test]
async fn separate_services_survive_kills_and_a_nats_outage() {
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let log_port = free_port();
    let log_addr = format!("127.0.0.1:{log_port}");
    let log_url = format!("http://{log_addr}");
    let data = dir.path().join("log");
    let log_args = |data: &std::path::Path| {
        vec![
            "serve".to_string(),
            "event-log".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--grpc-addr".into(),
            log_addr.clone(),
            "--http-addr".into(),
            "127.0.0.1:0".into(),
            "--nats-url".into(),
            nats.url(),
            "--nats-stream".into(),
            "DEPLOY".into(),
        ]
    };
    let args: Vec<String> = log_args(&data);
    let mut log = spawn_ready(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let pg_r = PgDb::create();
    let pg_c = PgDb::create();
    let mut readmission = read_side("readmission", &log_url, &nats.url(), &pg_r.url);
    let coordination = read_side("coordination", &log_url, &nats.url(), &pg_c.url);
    let reactor = spawn_ready(&[
        "serve",
        "reactor",
        "--log-url",
        &log_url,
        "--nats-url",
        &nats.url(),
        "--nats-stream",
        "DEPLOY",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);

    // Load 1, with the readmission service killed (SIGKILL) and restarted in the middle.
    let load = simulate(&log_url, "21", "300");
    tokio::time::sleep(Duration::from_millis(300)).await;
    readmission.kill9();
    readmission = read_side("readmission", &log_url, &nats.url(), &pg_r.url);
    finish(load);

    // The event log killed and restarted on the same address and data.
    log.kill9();
    log = spawn_ready(&args.iter().map(String::as_str).collect::<Vec<_>>());

    // Load 2 while NATS is down for a while: appends go on, publication and projections resume.
    nats.stop();
    let load = simulate(&log_url, "22", "300");
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.restart();
    finish(load);

    let mut c = log.client().await;
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    assert!(head > 10_000, "a real load: {head} events");
    // The reactor may still append alerts: wait until it has folded the whole log with nothing
    // left to append (on a loaded machine it may lag by seconds), then for the read sides.
    let mut head = head;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let status: serde_json::Value =
            serde_json::from_str(&http_get(&reactor.http, "/status").await).unwrap();
        let r = &status["reactor"];
        let now = c.head(HeadRequest {}).await.unwrap().into_inner().position;
        let settled =
            r["caught_up"] == true && r["pending"] == 0 && r["position"].as_u64() == Some(now);
        if settled && now == head {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the reactor did not settle: {r}, log head {now}"
        );
        head = now;
    }
    wait_projected(&readmission.grpc, head).await;
    wait_projected(&coordination.grpc, head).await;

    // Fresh rebuilds from the log, on SQLite, to compare with.
    let fresh_r = spawn_ready(&[
        "serve",
        "readmission",
        "--log-url",
        &log_url,
        "--database-url",
        &format!("sqlite://{}/r.sqlite", dir.path().display()),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let fresh_c = spawn_ready(&[
        "serve",
        "coordination",
        "--log-url",
        &log_url,
        "--database-url",
        &format!("sqlite://{}/c.sqlite", dir.path().display()),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    wait_projected(&fresh_r.grpc, head).await;
    wait_projected(&fresh_c.grpc, head).await;
    let expected = stays(&fresh_r.grpc).await;
    assert!(expected.len() > 100, "{} index stays", expected.len());
    assert_eq!(
        stays(&readmission.grpc).await,
        expected,
        "readmission service after a SIGKILL"
    );
    let as_of = chrono::Utc::now().timestamp();
    let expected = worklist(&fresh_c.grpc, as_of).await;
    assert!(!expected.is_empty());
    assert_eq!(
        worklist(&coordination.grpc, as_of).await,
        expected,
        "coordination service"
    );
}

async fn writers(grpc: &str) -> Vec<bool> {
    use journey_proto::v1::{projections_client::ProjectionsClient, ProjectionStatusRequest};
    let mut p = ProjectionsClient::new(journey_tests::client::channel(grpc).await.unwrap());
    let s = p
        .status(ProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    s.projections.iter().map(|p| p.writer).collect()
}

/// Two processes serve one PostgreSQL read model: one writes, the other answers queries; when the
/// writer dies the standby takes over and nothing is lost or counted twice.
#[tokio::test]
async fn a_standby_takes_over_when_the_writer_dies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("log").display().to_string();
    let log = spawn_ready(&[
        "serve",
        "event-log",
        "--data-dir",
        &d,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let pg = PgDb::create();
    let serve = || {
        spawn_ready(&[
            "serve",
            "readmission",
            "--log-url",
            &log.grpc,
            "--database-url",
            &pg.url,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
    };
    let mut active = serve();
    // The first one takes the lock as it starts running.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while writers(&active.grpc).await != [true] {
        assert!(
            std::time::Instant::now() < deadline,
            "the first process never became the writer"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let standby = serve();
    finish(simulate(&log.grpc, "31", "200"));
    let mut c = log.client().await;
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    // The standby answers from the tables the writer keeps.
    wait_projected(&standby.grpc, head).await;
    assert_eq!(writers(&standby.grpc).await, [false]);
    assert_eq!(stays(&standby.grpc).await, stays(&active.grpc).await);

    active.kill9();
    finish(simulate(&log.grpc, "32", "200"));
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&standby.grpc, head).await;
    assert_eq!(
        writers(&standby.grpc).await,
        [true],
        "the standby took over"
    );

    let fresh = spawn_ready(&[
        "serve",
        "readmission",
        "--log-url",
        &log.grpc,
        "--database-url",
        &format!("sqlite://{}/fresh.sqlite", dir.path().display()),
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    wait_projected(&fresh.grpc, head).await;
    assert_eq!(stays(&standby.grpc).await, stays(&fresh.grpc).await);
}
