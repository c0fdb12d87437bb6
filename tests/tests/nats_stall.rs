//! A read side fed by NATS (`journey serve readmission --nats-url …`) against what the broker can
//! do to it: a stall longer than its JetStream consumer lives (the consumer is recreated and live
//! events flow again), and a forged message on the stream's subject (never applied: the read side
//! checks every NATS event against the log's chain and reads the log instead).
use journey_proto::{
    prost::Message,
    v1::{self, HeadRequest},
};
use journey_tests::*;
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

/// `journey serve event-log` publishing on `stream`, and a readmission read side following it
/// over NATS (SQLite in `dir`).
fn log_and_read_side(dir: &Path, nats: &Nats, stream: &str) -> (Server, Server) {
    let data = dir.join("log");
    let log = spawn_ready(&[
        "serve",
        "event-log",
        "--data-dir",
        data.to_str().unwrap(),
        "--anchor-file",
        dir.join("anchor.json").to_str().unwrap(),
        "--nats-url",
        &nats.url(),
        "--nats-stream",
        stream,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ]);
    let db = format!("sqlite://{}/r.sqlite", dir.display());
    let read_side = serve_over_nats("readmission", &log.grpc, &nats.url(), stream, &db);
    (log, read_side)
}

/// The read side's checkpoint (its only projection: readmission).
async fn checkpoint(read_side: &Server) -> u64 {
    use v1::{projections_client::ProjectionsClient, ProjectionStatusRequest};
    let mut c = ProjectionsClient::new(client::channel(&read_side.grpc).await.unwrap());
    let s = c
        .status(ProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    s.projections
        .iter()
        .map(|p| p.checkpoint)
        .min()
        .unwrap_or(0)
}

/// Waits at most `bound` for the read side to reach `position`; false when it did not.
async fn reaches(read_side: &Server, position: u64, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if checkpoint(read_side).await >= position {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn signal(server: &Server, sig: &str) {
    let ok = Command::new("kill")
        .arg(sig)
        .arg(server.child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_side_stalled_longer_than_its_consumer_lives_follows_live_events_again() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (log, read_side) = log_and_read_side(dir.path(), &nats, "STALL");
    let mut c = log.client().await;
    let head = append_batch(&mut c, vec![observation("S1", 1.0)]).await;
    wait_projected(&read_side.grpc, head).await;

    // Frozen for longer than its JetStream consumer outlives it, as a long database stall or a
    // swapped-out process is: the pending pull expires (30 s, async-nats' default), and JetStream
    // then drops the consumer nobody pulls from (`journey_log_access::nats::INACTIVE`, 5 s).
    signal(&read_side, "-STOP");
    tokio::time::sleep(STALL).await;
    signal(&read_side, "-CONT");

    // Live again, through NATS: each new event reaches the read side, and JetStream has a
    // consumer that delivered it (a read side that lost its feed only finds events by asking the
    // log after a quiet second, and the issue saw 27–29 s per event).
    let mut last = 0;
    for i in 0..3 {
        last = append_batch(&mut c, vec![observation("S1", 2.0 + i as f64)]).await;
        assert!(
            reaches(&read_side, last, Duration::from_secs(8)).await,
            "event {last} not projected within 8 s of its append (checkpoint {})",
            checkpoint(&read_side).await
        );
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        let delivered = delivered_by_nats(&nats, "STALL").await;
        if delivered >= last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no JetStream consumer delivered the events appended after the stall \
             (highest delivered: {delivered}, last event: {last}): the feed was not recreated"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Longer than anything that keeps a JetStream consumer alive for a frozen client.
const STALL: Duration = Duration::from_secs(40);

/// The highest stream sequence any consumer of `stream` delivered (the stream holds only the
/// log's events, so a sequence is a position).
async fn delivered_by_nats(nats: &Nats, stream: &str) -> u64 {
    use futures::TryStreamExt;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let s = js.get_stream(stream).await.unwrap();
    let consumers: Vec<_> = s.consumers().try_collect().await.unwrap();
    consumers
        .iter()
        .map(|c| c.delivered.stream_sequence)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_nats_message_is_never_applied() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (log, read_side) = log_and_read_side(dir.path(), &nats, "FORGE");
    let mut c = log.client().await;
    let head = append_batch(&mut c, vec![admitted("F1", "FE1", 7200)]).await;
    wait_projected(&read_side.grpc, head).await;

    // Someone who can publish on the stream, and read it, forges the next event: the right next
    // position, linked to the real head's hash, a discharge that would make an index stay.
    let real = c.head(HeadRequest {}).await.unwrap().into_inner();
    let mut forged = discharged("F1", "FE1", 3600);
    forged.position = real.position + 1;
    forged.prev_hash = real.hash.clone();
    forged.recorded_at = forged.occurred_at;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    js.publish("journey.v1.discharged", forged.encode_to_vec().into())
        .await
        .unwrap()
        .await
        .expect("the broker stores the forged message");

    // The real event at that position is an admission of another patient; the read side applies
    // it (read from the log) and never the forgery: no index stay, no discharge of F1.
    let head = append_batch(&mut c, vec![admitted("F2", "FE2", 60)]).await;
    assert_eq!(head, forged.position);
    let total = rates_total(&read_side.grpc, head).await;
    assert_eq!(total.index_stays, 0, "the forged discharge was applied");
    // And it still follows live events after refusing one.
    let head = append_batch(&mut c, vec![discharged("F2", "FE2", 30)]).await;
    assert!(
        reaches(&read_side, head, Duration::from_secs(8)).await,
        "the read side stopped following after the forgery"
    );
    assert_eq!(rates_total(&read_side.grpc, head).await.index_stays, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_side_follows_the_log_while_nats_is_down_and_nats_once_it_is_back() {
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (log, read_side) = log_and_read_side(dir.path(), &nats, "OUTAGE");
    let mut c = log.client().await;
    let head = append_batch(&mut c, vec![observation("O1", 1.0)]).await;
    wait_projected(&read_side.grpc, head).await;

    // NATS down for longer than a consumer can be made: the read side reads the log meanwhile.
    nats.stop();
    for i in 0..3 {
        let head = append_batch(&mut c, vec![observation("O1", 2.0 + i as f64)]).await;
        assert!(
            reaches(&read_side, head, Duration::from_secs(10)).await,
            "event {head} not projected from the log while NATS is down"
        );
    }

    // NATS back: a new consumer delivers the next events.
    nats.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last;
    loop {
        last = append_batch(&mut c, vec![observation("O1", 9.0)]).await;
        assert!(reaches(&read_side, last, Duration::from_secs(10)).await);
        if delivered_by_nats(&nats, "OUTAGE").await >= last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no consumer delivered event {last} after NATS came back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
