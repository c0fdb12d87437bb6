//! `--ack replicated` (issue 16, point 1) against a private three-server NATS JetStream cluster
//! (nats-server ≥ 2.12, `sync_interval: always`), loopback only. Under a load of clients that
//! record every acknowledged event id: the stream leader killed, a server frozen for 10 s, a
//! server's store wiped — appends go on after a pause, and every acknowledged id is in the stream
//! exactly once, at the stream sequence of its position, the chain verifies and a log rebuilt from
//! the stream alone ends at the live head. Two servers down: appends are refused UNAVAILABLE,
//! nothing refused is visible, and the same request succeeds once they are back. A start without
//! NATS, or on a stream of one replica, is refused.
use async_nats::jetstream;
use journey_proto::hex::hex;
use journey_tests::{nats_cluster::NatsCluster, replicated::*, *};
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// The tests of this file run one at a time: each stops and restarts servers on ports it chose
/// free, which a parallel test picking ports meanwhile could take.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `journey up --ack replicated` on `dir`, publishing to `stream` on the cluster.
fn writer(dir: &Path, cluster: &NatsCluster, stream: &str, extra: &[&str]) -> Server {
    replicated_node(dir, cluster, stream, extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_leader_a_frozen_server_and_a_wiped_one_lose_no_acknowledged_event() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = NatsCluster::start();
    // The servers run with `sync_interval: always`, as their monitoring page reports.
    for i in 0..3 {
        let varz = cluster.monitor(i, "/varz").expect("varz");
        assert_eq!(
            varz["jetstream"]["config"]["sync_always"],
            serde_json::json!(true),
            "{}",
            varz["jetstream"]
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let live = writer(&dir.path().join("live"), &cluster, "REPL", &[]);
    let js = jetstream_of(&cluster).await;
    let load = Load::start(&live.grpc, 4);
    load.wait_progress(100, Duration::from_secs(30), "the start")
        .await;

    // kill -9 of the stream's leader: another is elected, appends go on.
    let leader = stream_leader(&js, &cluster, "REPL").await;
    cluster.kill9(leader);
    load.wait_progress(100, Duration::from_secs(30), "the leader's kill -9")
        .await;
    cluster.restart(leader);
    wait_whole(&js, "REPL").await;

    // The stream's leader frozen for 10 s (SIGSTOP), then thawed.
    let frozen = stream_leader(&js, &cluster, "REPL").await;
    cluster.freeze(frozen);
    load.wait_progress(50, Duration::from_secs(30), "a server's SIGSTOP")
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    cluster.thaw(frozen);
    load.wait_progress(50, Duration::from_secs(30), "the SIGCONT")
        .await;

    // A server's store wiped: it comes back empty and catches up from the two others.
    wait_whole(&js, "REPL").await;
    let wiped = (frozen + 1) % 3;
    cluster.wipe(wiped);
    cluster.restart(wiped);
    load.wait_progress(100, Duration::from_secs(30), "a wiped server's restart")
        .await;

    let acknowledged = ids(&load.stop().await);
    let (p, hash) = head(&live.grpc).await;
    assert!(p as usize >= acknowledged.len());
    assert_stream_holds(&js, "REPL", p, &acknowledged).await;
    let (code, out, err) = journey(&["verify", "--server", &live.grpc]);
    assert_eq!(code, 0, "{out}{err}");

    // The wiped server holds the whole stream again; a log rebuilt from the stream alone ends at
    // the live head.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jsz = cluster.monitor(wiped, "/jsz").unwrap_or_default();
        // The stream's messages, and the writer's lease (one key, one revision kept).
        if jsz["messages"].as_u64() == Some(p + 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wiped server did not catch up: {jsz}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let rebuilt = dir.path().join("from-nats");
    let url = cluster.url((wiped + 1) % 3);
    let (code, out, err) = journey(&[
        "restore",
        "--from-nats",
        &url,
        "--stream",
        "REPL",
        "--data-dir",
        rebuilt.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("head position {p} hash {}", hex(&hash))),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_down_refuse_appends_unavailable_and_the_same_request_succeeds_once_back() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = NatsCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let live = writer(
        &dir.path().join("live"),
        &cluster,
        "QUORUM",
        &["--ack-timeout-ms", "2000"],
    );
    let mut c = live.client().await;
    for i in 0..20 {
        append_batch(&mut c, vec![observation("Q-1", i as f64)]).await;
    }
    let before = head(&live.grpc).await;
    assert_eq!(before.0, 20);

    // Quorum lost: the append is refused UNAVAILABLE, and neither it nor its id is visible.
    let js = jetstream_of(&cluster).await;
    let leader = stream_leader(&js, &cluster, "QUORUM").await;
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    cluster.kill9(a);
    cluster.kill9(b);
    let request = batch(vec![observation("Q-1", 100.0), observation("Q-2", 1.0)]);
    let refused = c.append(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        refused.message().contains("not acknowledged"),
        "{refused:?}"
    );
    assert_eq!(head(&live.grpc).await, before, "nothing refused is visible");
    let q2 = patient_events(&mut c, "Q-2").await;
    assert!(q2.is_empty(), "a refused event is readable: {q2:?}");
    // A retry while the quorum is still lost is refused the same way.
    let again = c.append(request.clone()).await.unwrap_err();
    assert_eq!(again.code(), tonic::Code::Unavailable, "{again:?}");

    // Quorum back: the same request (same event ids) is acknowledged, once.
    cluster.restart(a);
    cluster.restart(b);
    let deadline = Instant::now() + Duration::from_secs(60);
    let appended = loop {
        match c.append(request.clone()).await {
            Ok(r) => break r.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable => {
                assert!(Instant::now() < deadline, "appends did not resume: {s:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    };
    let positions: Vec<u64> = appended.appended.iter().map(|a| a.position).collect();
    assert_eq!(positions, vec![21, 22]);
    append_batch(&mut c, vec![observation("Q-1", 200.0)]).await;
    let (p, _) = head(&live.grpc).await;
    assert_eq!(p, 23);
    let ids: Vec<String> = request.events.iter().map(|e| e.event_id.clone()).collect();
    assert_stream_holds(&js, "QUORUM", p, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicated_start_without_nats_or_on_a_stream_of_one_replica_is_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let out = log_only_up(&dir.path().join("a"))
        .args(["--ack", "replicated"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--ack replicated needs --nats-url"), "{err}");

    let cluster = NatsCluster::start();
    let js = jetstream_of(&cluster).await;
    js.create_stream(jetstream::stream::Config {
        name: "ONE".into(),
        subjects: vec!["journey.v1.>".into()],
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .unwrap();
    let out = log_only_up(&dir.path().join("b"))
        .args(["--ack", "replicated", "--nats-stream", "ONE", "--nats-url"])
        .arg(cluster.urls())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("needs the JetStream stream ONE with 3 replicas; it has 1"),
        "{err}"
    );
    // A replicated writer makes its stream with three replicas on file storage.
    js.delete_stream("ONE").await.unwrap();
    let live = writer(&dir.path().join("c"), &cluster, "THREE", &[]);
    let mut c = live.client().await;
    let p = append_batch(&mut c, vec![observation("T-1", 1.0)]).await;
    let info = js
        .get_stream("THREE")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.config.storage, jetstream::stream::StorageType::File);
    assert_eq!(info.state.last_sequence, p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_log_lost_its_last_events_copies_them_back_from_the_stream() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = NatsCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let live_dir = dir.path().join("live");
    let mut live = writer(&live_dir, &cluster, "BEHIND", &[]);
    let mut c = live.client().await;
    for i in 0..10 {
        append_batch(&mut c, vec![observation("K-1", i as f64)]).await;
    }
    let backup = dir.path().join("backup");
    let (code, out, err) = journey(&[
        "backup",
        "--to",
        backup.to_str().unwrap(),
        "--server",
        &live.grpc,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for i in 10..15 {
        append_batch(&mut c, vec![observation("K-1", i as f64)]).await;
    }
    let fifteen = head(&live.grpc).await;
    assert_eq!(fifteen.0, 15);
    live.terminate();

    // The same node (its id) on its folder as the backup left it, 5 events short of the stream
    // (as a crash can leave a writer whose events were published before their local fsync): it
    // copies them back, checked against its chain, and goes on.
    let restored = dir.path().join("restored");
    let (code, out, err) = journey(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    std::fs::copy(live_dir.join("node-id"), restored.join("node-id")).unwrap();
    let back = writer(&restored, &cluster, "BEHIND", &[]);
    assert_eq!(head(&back.grpc).await, fifteen);
    let mut c = back.client().await;
    let p = append_batch(&mut c, vec![observation("K-1", 15.0)]).await;
    assert_eq!(p, 16);
    let js = jetstream_of(&cluster).await;
    assert_stream_holds(&js, "BEHIND", 16, &[]).await;
    let (code, out, err) = journey(&["verify", "--server", &back.grpc]);
    assert_eq!(code, 0, "{out}{err}");
}
