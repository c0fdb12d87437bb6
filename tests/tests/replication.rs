//! `--ack replicated` (issue 16, point 1) against a private three-server NATS JetStream cluster
//! (nats-server ≥ 2.12, `sync_interval: always`), loopback only. Under a load of clients that
//! record every acknowledged event id: the stream leader killed, a server frozen for 10 s, a
//! server's store wiped — appends go on after a pause, and every acknowledged id is in the stream
//! exactly once, at the stream sequence of its position, the chain verifies and a log rebuilt from
//! the stream alone ends at the live head. Two servers down: appends are refused UNAVAILABLE,
//! nothing refused is visible, and the same request succeeds once they are back. A start without
//! NATS, or on a stream of one replica, is refused.
use async_nats::{header, jetstream};
use journey_proto::{hex::hex, v1::HeadRequest};
use journey_tests::{nats_cluster::NatsCluster, *};
use std::{
    collections::HashSet,
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// `journey up --ack replicated` on `dir`, publishing to `stream` on the cluster.
/// The tests of this file run one at a time: each stops and restarts servers on ports it chose
/// free, which a parallel test picking ports meanwhile could take.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn writer(dir: &Path, cluster: &NatsCluster, stream: &str, extra: &[&str]) -> Server {
    let urls = cluster.urls();
    let mut args = vec![
        "--nats-url",
        &urls,
        "--nats-stream",
        stream,
        "--ack",
        "replicated",
        "--no-reactor",
    ];
    args.extend_from_slice(extra);
    Server::start(dir, &args)
}

async fn jetstream_of(cluster: &NatsCluster) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .connect(
            (0..3)
                .map(|i| cluster.url(i).parse::<async_nats::ServerAddr>().unwrap())
                .collect::<Vec<_>>(),
        )
        .await
        .unwrap();
    jetstream::new(client)
}

async fn head(grpc: &str) -> (u64, Vec<u8>) {
    let h = client::connect(grpc, None)
        .await
        .unwrap()
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner();
    (h.position, h.hash)
}

/// Clients appending one observation at a time until `stop`, each recording the ids of every
/// acknowledged append; a refused append (UNAVAILABLE while the cluster elects a leader) is
/// retried with the same event ids.
struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(grpc: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|k| {
                let (grpc, stop, acked) = (grpc.to_string(), stop.clone(), acknowledged.clone());
                tokio::spawn(async move {
                    let mut c = client::connect(&grpc, None).await.unwrap();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let request = batch(vec![observation(&format!("R-{k}"), (i % 400) as f64)]);
                        let id = request.events[0].event_id.clone();
                        loop {
                            match c.append(request.clone()).await {
                                Ok(_) => break,
                                Err(s) if s.code() == tonic::Code::Unavailable => {
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                                Err(s) => panic!("append refused: {s:?}"),
                            }
                        }
                        acked.lock().unwrap().push(id);
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            acknowledged,
            tasks,
        }
    }

    fn count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    /// Waits until `more` appends beyond the current count are acknowledged.
    async fn wait_progress(&self, more: usize, within: Duration, what: &str) {
        let target = self.count() + more;
        let deadline = Instant::now() + within;
        while self.count() < target {
            assert!(
                Instant::now() < deadline,
                "appends did not resume within {within:?} after {what}: {} acknowledged",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.acknowledged)
            .unwrap()
            .into_inner()
            .unwrap()
    }
}

/// The stream's leader's index in the cluster.
async fn stream_leader(js: &jetstream::Context, cluster: &NatsCluster, stream: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = js.get_stream(stream).await {
            if let Ok(info) = s.get_info().await {
                if let Some(leader) = info.cluster.and_then(|c| c.leader) {
                    return cluster.index_of(&leader);
                }
            }
        }
        assert!(Instant::now() < deadline, "the stream has no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the stream's group is whole again: a leader and both other replicas current and
/// online. The scenario takes one failure at a time; a second one while a replica still catches
/// up would be the loss of the quorum, which `two_servers_down_…` tests on purpose.
async fn wait_whole(js: &jetstream::Context, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = js.get_stream(stream).await {
            if let Ok(info) = s.info().await {
                let whole = info.cluster.as_ref().is_some_and(|c| {
                    c.leader.is_some()
                        && c.replicas.len() == 2
                        && c.replicas.iter().all(|r| r.current && !r.offline)
                });
                if whole {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the stream's replicas did not catch up within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the stream: its messages 1..=last each at the sequence of its `Journey-Position`, every
/// event id once, the last sequence the log's head, and every acknowledged id among them.
async fn assert_stream_holds(
    js: &jetstream::Context,
    stream: &str,
    log_head: u64,
    acknowledged: &[String],
) {
    let s = js.get_stream(stream).await.unwrap();
    let info = s.get_info().await.unwrap();
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(info.state.last_sequence, log_head, "stream sequence = head");
    assert_eq!(info.state.messages, log_head, "no message dropped or added");
    let mut ids = HashSet::new();
    for seq in 1..=info.state.last_sequence {
        let m = s.get_raw_message(seq).await.unwrap();
        let position = m.headers.get("Journey-Position").map(|v| v.to_string());
        assert_eq!(
            position,
            Some(seq.to_string()),
            "stream sequence = position"
        );
        let id = m.headers.get(header::NATS_MESSAGE_ID).unwrap().to_string();
        assert!(ids.insert(id.clone()), "event {id} twice in the stream");
    }
    let missing: Vec<_> = acknowledged
        .iter()
        .filter(|id| !ids.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged, not in the stream: {missing:?}"
    );
    let unique: HashSet<_> = acknowledged.iter().collect();
    assert_eq!(unique.len(), acknowledged.len(), "an id acknowledged twice");
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

    let acknowledged = load.stop().await;
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
        if jsz["messages"].as_u64() == Some(p) {
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
