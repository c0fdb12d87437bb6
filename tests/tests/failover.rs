//! A standby event log and failover (issue 16, point 2) on a private three-server NATS JetStream
//! cluster, loopback only: `journey serve event-log --ack replicated` as the writer and another
//! with `--standby`. The standby follows the stream, serves reads and refuses appends; when the
//! writer is killed it takes the lapsed lease and becomes the writer, clients retrying their
//! appends against it with the same event ids; the old writer, started again, rejoins as a
//! standby, dropping the events the stream never held. A stream event that does not continue the
//! chain stops a standby.
use async_nats::header;
use journey_proto::{hex::hex, prost::Message, v1::Event};
use journey_tests::{nats_cluster::NatsCluster, replicated::*, *};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// The tests of this file run one at a time: each stops and restarts servers on ports it chose
/// free, which a parallel test picking ports meanwhile could take.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `journey serve event-log --ack replicated` on `dir` (its log in `dir.log`).
fn log_node(dir: &Path, cluster: &NatsCluster, stream: &str, extra: &[&str]) -> Server {
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let (data, urls) = (dir.to_str().unwrap().to_string(), cluster.urls());
    let anchor = format!("{data}.anchor.json");
    let mut args = vec![
        "serve",
        "event-log",
        "--data-dir",
        &data,
        "--anchor-file",
        &anchor,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--nats-url",
        &urls,
        "--nats-stream",
        stream,
        "--ack",
        "replicated",
    ];
    args.extend_from_slice(extra);
    spawn_ready_logging(&args, &log_of(dir))
}

fn log_of(dir: &Path) -> PathBuf {
    dir.with_extension("log")
}

fn read_log_file(dir: &Path) -> String {
    std::fs::read_to_string(log_of(dir)).unwrap_or_default()
}

/// Waits until the node's `/status` says `role`; a node that stopped meanwhile fails the test
/// with its log.
async fn wait_role(node: &mut Server, dir: &Path, role: &str, within: Duration) -> Instant {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(exit)) = node.child.try_wait() {
            panic!("the node stopped ({exit}): {}", read_log_file(dir));
        }
        let s = status(node).await;
        if s["role"] == role {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "the node did not become {role} within {within:?}: {s}\n{}",
            read_log_file(dir)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the node at `grpc` serves the head `expected`.
async fn wait_head(grpc: &str, expected: &(u64, Vec<u8>), within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let h = head(grpc).await;
        if &h == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node's head {} did not reach {} ({}) within {within:?}",
            h.0,
            expected.0,
            hex(&expected.1)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A writer (`a`) and a standby (`b`) on the stream `stream`, each in its folder of `dir`, both
/// started by `start` (`log_node`, or `replicated_node` for `journey up`).
struct Pair {
    _dir: tempfile::TempDir,
    a_dir: PathBuf,
    b_dir: PathBuf,
    a: Server,
    b: Server,
}

type Start = fn(&Path, &NatsCluster, &str, &[&str]) -> Server;

async fn pair(cluster: &NatsCluster, stream: &str, start: Start, a_extra: &[&str]) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = start(&a_dir, cluster, stream, a_extra);
    wait_role(&mut a, &a_dir, "writer", Duration::from_secs(10)).await;
    let mut b = start(&b_dir, cluster, stream, &["--standby"]);
    wait_role(&mut b, &b_dir, "standby", Duration::from_secs(10)).await;
    Pair {
        _dir: dir,
        a_dir,
        b_dir,
        a,
        b,
    }
}

/// Every event the node at `grpc` serves.
async fn all_events(grpc: &str) -> Vec<Event> {
    read_log(grpc, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_standby_takes_over_a_killed_writer_and_the_old_writer_rejoins_as_a_standby() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = NatsCluster::start();
    let Pair {
        _dir,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = pair(&cluster, "FAIL", log_node, &[]).await;

    let load = Load::over(&[a.grpc.clone(), b.grpc.clone()], 4);
    load.wait_progress(100, Duration::from_secs(30), "the start")
        .await;
    // The standby serves reads of what it followed, and refuses appends, naming the writer.
    let following = head(&b.grpc).await;
    assert!(following.0 > 0, "the standby follows the stream");
    // (It learns the writer's address from the lease, which the writer renews every second.)
    let mut c = b.client().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let refused = c
            .append(batch(vec![observation("S-1", 1.0)]))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
        assert!(refused.message().contains("is a standby"), "{refused:?}");
        if refused.message().contains(&a.grpc[7..]) {
            break;
        }
        assert!(Instant::now() < deadline, "{refused:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // kill -9 of the writer: the standby takes the lapsed lease and the load goes on against it.
    let before = load.count();
    a.kill9();
    let killed = Instant::now();
    let last_by_a = load.last_ack().unwrap();
    let promoted = wait_role(&mut b, &b_dir, "writer", Duration::from_secs(30)).await;
    load.wait_progress(100, Duration::from_secs(30), "the writer's kill -9")
        .await;
    println!(
        "failover: last ack by the old writer → promotion {:.2} s (kill → promotion {:.2} s)",
        (promoted - last_by_a).as_secs_f64(),
        (promoted - killed).as_secs_f64()
    );
    assert!(load.count() >= before + 100);

    // The old writer comes back on its folder: the lease is the standby's now, so it follows.
    let mut a = log_node(&a_dir, &cluster, "FAIL", &[]);
    wait_role(&mut a, &a_dir, "standby", Duration::from_secs(10)).await;
    assert!(
        read_log_file(&a_dir).contains("held by"),
        "{}",
        read_log_file(&a_dir)
    );
    load.endpoints.lock().unwrap()[0] = a.grpc.clone();
    load.wait_progress(50, Duration::from_secs(30), "the old writer's return")
        .await;

    let acked = load.stop().await;
    let live = head(&b.grpc).await;
    assert!(live.0 as usize >= acked.len());
    let js = jetstream_of(&cluster).await;
    assert_stream_holds(&js, "FAIL", live.0, &ids(&acked)).await;
    let (code, out, err) = journey(&["verify", "--server", &b.grpc]);
    assert_eq!(code, 0, "{out}{err}");
    // Both logs hold the same events, with the same hashes.
    wait_head(&a.grpc, &live, Duration::from_secs(30)).await;
    let (on_a, on_b) = (all_events(&a.grpc).await, all_events(&b.grpc).await);
    assert_eq!(on_a.len() as u64, live.0);
    assert_eq!(on_a, on_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_writer_drops_its_unacknowledged_tail_and_follows_its_successor() {
    let _one = ONE_AT_A_TIME.lock().await;
    let mut cluster = NatsCluster::start();
    let Pair {
        _dir,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = pair(&cluster, "TAIL", log_node, &["--ack-timeout-ms", "2000"]).await;
    let mut ca = a.client().await;
    for i in 0..10 {
        append_batch(&mut ca, vec![observation("T-1", i as f64)]).await;
    }
    let ten = head(&a.grpc).await;
    wait_head(&b.grpc, &ten, Duration::from_secs(10)).await;

    // The whole cluster down: the writer stores the request but cannot have it replicated (no
    // server even saw it), so it is refused UNAVAILABLE; then the writer dies, and the cluster
    // comes back.
    let js = jetstream_of(&cluster).await;
    for i in 0..3 {
        cluster.kill9(i);
    }
    let request = batch(vec![observation("T-1", 100.0), observation("T-2", 1.0)]);
    let refused = ca.append(request.clone()).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    a.kill9();
    for i in 0..3 {
        cluster.restart(i);
    }

    // The standby takes over once the lease lapsed; the client retries the same request there.
    wait_role(&mut b, &b_dir, "writer", Duration::from_secs(60)).await;
    let mut cb = b.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let appended = loop {
        match cb.append(request.clone()).await {
            Ok(r) => break r.into_inner(),
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    };
    let positions: Vec<u64> = appended.appended.iter().map(|a| a.position).collect();
    assert_eq!(positions, vec![11, 12]);
    append_batch(&mut cb, vec![observation("T-3", 1.0)]).await;
    let live = head(&b.grpc).await;
    assert_eq!(live.0, 13);

    // The old writer's log held its own events 11 and 12, never acknowledged: started again, it
    // drops them and follows its successor to the same head.
    let mut a = log_node(&a_dir, &cluster, "TAIL", &[]);
    wait_role(&mut a, &a_dir, "standby", Duration::from_secs(10)).await;
    let said = read_log_file(&a_dir);
    assert!(
        said.contains("dropped the 2 events after position 10"),
        "{said}"
    );
    wait_head(&a.grpc, &live, Duration::from_secs(30)).await;
    assert_eq!(all_events(&a.grpc).await, all_events(&b.grpc).await);
    let ids: Vec<String> = request.events.iter().map(|e| e.event_id.clone()).collect();
    assert_stream_holds(&js, "TAIL", 13, &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_event_that_does_not_continue_the_chain_stops_the_standby() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = NatsCluster::start();
    let Pair {
        _dir,
        b_dir,
        a,
        mut b,
        ..
    } = pair(&cluster, "FORGED", log_node, &[]).await;
    let mut ca = a.client().await;
    for i in 0..5 {
        append_batch(&mut ca, vec![observation("F-1", i as f64)]).await;
    }
    let five = head(&a.grpc).await;
    wait_head(&b.grpc, &five, Duration::from_secs(10)).await;

    // Someone stores an event at position 6 that does not link to event 5 (a forged or damaged
    // message), behind the stream's last sequence as the writer would.
    let mut forged = all_events(&a.grpc).await.pop().unwrap();
    forged.position = 6;
    forged.event_id = uuid::Uuid::new_v4().to_string();
    forged.hash.clear();
    let js = jetstream_of(&cluster).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(header::NATS_EXPECTED_LAST_SEQUENCE, "5");
    js.publish_with_headers(
        "journey.v1.observation_recorded",
        headers,
        forged.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();

    let status = tokio::task::spawn_blocking(move || b.child.wait().unwrap())
        .await
        .unwrap();
    assert!(!status.success());
    let said = read_log_file(&b_dir);
    assert!(
        said.contains("does not continue this log at sequences 6..6")
            && said.contains("prev_hash does not link")
            && said.contains("This standby stopped"),
        "{said}"
    );
    // Nothing of it was written: the standby's folder, opened alone, ends at event 5.
    let data = b_dir.to_str().unwrap();
    let anchor = format!("{data}.anchor.json");
    let alone = spawn_ready(&[
        "serve",
        "event-log",
        "--data-dir",
        data,
        "--anchor-file",
        &anchor,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    assert_eq!(head(&alone.grpc).await, five);
    let (code, out, err) = journey(&["verify", "--server", &alone.grpc]);
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_writer_coming_back_acknowledges_nothing_and_stops() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = NatsCluster::start();
    let Pair {
        _dir,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = pair(&cluster, "STALE", log_node, &[]).await;
    let mut ca = a.client().await;
    for i in 0..5 {
        append_batch(&mut ca, vec![observation("W-1", i as f64)]).await;
    }

    // The writer frozen (SIGSTOP) past its lease: the standby takes over and takes appends.
    let pid = a.child.id().to_string();
    let signal = |s: &str| {
        let ok = std::process::Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {s}");
    };
    signal("-STOP");
    // An append sent to the frozen writer waits in its socket.
    let stale_request = batch(vec![observation("W-2", 1.0)]);
    let pending = tokio::spawn({
        let mut ca = ca.clone();
        let r = stale_request.clone();
        async move { ca.append(r).await }
    });
    wait_role(&mut b, &b_dir, "writer", Duration::from_secs(30)).await;
    let mut cb = b.client().await;
    for i in 0..5 {
        append_batch(&mut cb, vec![observation("W-1", 10.0 + i as f64)]).await;
    }

    // Thawed, the old writer finds the stream ahead of it and its lease taken: it acknowledges
    // nothing and stops, saying to start it again (as a standby).
    signal("-CONT");
    let answer = pending.await.unwrap();
    assert!(answer.is_err(), "the stale writer acknowledged: {answer:?}");
    let exit = tokio::task::spawn_blocking(move || a.child.wait().unwrap())
        .await
        .unwrap();
    assert!(!exit.success());
    let said = read_log_file(&a_dir);
    assert!(
        (said.contains("lost the writer's lease") || said.contains("another writer appended"))
            && said.contains("start this node again"),
        "{said}"
    );
    // The client retries against the writer: acknowledged once, after the writer's own events.
    let appended = cb.append(stale_request.clone()).await.unwrap().into_inner();
    assert_eq!(appended.appended[0].position, 11);
    let live = head(&b.grpc).await;
    let js = jetstream_of(&cluster).await;
    assert_stream_holds(
        &js,
        "STALE",
        live.0,
        &[stale_request.events[0].event_id.clone()],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standbys_read_models_follow_the_stream_and_equal_a_rebuild_after_it_took_over() {
    let _one = ONE_AT_A_TIME.lock().await;
    let cluster = NatsCluster::start();
    // `journey up`: the log with its read models, as writer and as standby.
    let Pair {
        _dir,
        b_dir,
        mut a,
        mut b,
        ..
    } = pair(&cluster, "MODELS", replicated_node, &[]).await;
    load_stays(&a, "M", 0..12).await;
    let followed = head(&a.grpc).await;
    wait_head(&b.grpc, &followed, Duration::from_secs(10)).await;
    wait_projected(&b.grpc, followed.0).await;
    assert_eq!(
        all_stays_paged(&b.grpc, 7).await.len(),
        16,
        "12 stays and 4 readmissions projected on the standby"
    );

    a.kill9();
    wait_role(&mut b, &b_dir, "writer", Duration::from_secs(30)).await;
    load_stays(&b, "M", 12..24).await;
    let live = head(&b.grpc).await;
    wait_projected(&b.grpc, live.0).await;
    let projected = all_stays_paged(&b.grpc, 7).await;
    assert_eq!(projected.len(), 32);
    let (code, out, err) = journey(&["rebuild", "readmission", "--server", &b.grpc]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        all_stays_paged(&b.grpc, 7).await,
        projected,
        "rebuild = projected"
    );
}
