//! Publication to a real, private nats-server: every event exactly once in the stream, in position
//! order, with the headers and the stored bytes; and nothing lost or doubled across a NATS outage.
use async_nats::jetstream;
use futures::StreamExt;
use journey_proto::{prost::Message, v1::ReadAllRequest};
use journey_tests::*;
use std::time::{Duration, Instant};

async fn append_many(server: &Server, patients: usize, per_patient: usize) {
    let tasks: Vec<_> = (0..patients)
        .map(|p| {
            let grpc = server.grpc.clone();
            tokio::spawn(async move {
                let mut c = journey_tests::client::connect(&grpc, None).await.unwrap();
                for i in 0..per_patient {
                    c.append(batch(vec![observation(&format!("N-{p}"), i as f64)]))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn wait_published(server: &Server, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(server).await;
        if s["nats_published"].as_u64() == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "outbox stuck: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `journey_outbox_chain_breaks_total` from the server's `/metrics` (0 before the first break).
async fn chain_breaks(server: &Server) -> f64 {
    let m = http_get(&server.http, "/metrics").await;
    m.lines()
        .find_map(|l| l.strip_prefix("journey_outbox_chain_breaks_total "))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

/// Checks the stream holds exactly the log, in order, besides the `foreign` messages (stream
/// sequences) that others published there.
async fn assert_stream_is_log(server: &Server, nats: &Nats, stream: &str, n: u64, foreign: &[u64]) {
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let mut s = js.get_stream(stream).await.unwrap();
    assert_eq!(
        s.info().await.unwrap().state.messages,
        n + foreign.len() as u64,
        "messages in stream"
    );
    let mut client = server.client().await;
    let mut read = client
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut seq = 0;
    while let Some(b) = read.next().await {
        for mut event in b.unwrap().events {
            seq += 1;
            while foreign.contains(&seq) {
                seq += 1;
            }
            let msg = s.get_raw_message(seq).await.unwrap();
            let headers = msg.headers;
            assert_eq!(
                headers
                    .get(async_nats::header::NATS_MESSAGE_ID)
                    .unwrap()
                    .as_str(),
                event.event_id
            );
            assert_eq!(
                headers.get("Journey-Position").unwrap().as_str(),
                event.position.to_string()
            );
            assert_eq!(
                event.position,
                seq - foreign.iter().filter(|f| **f < seq).count() as u64
            );
            let tp = headers.get("traceparent").unwrap().as_str().to_string();
            assert!(tp.starts_with("00-") && tp.len() == 55, "traceparent {tp}");
            assert_eq!(msg.subject.as_str(), "journey.v1.observation_recorded");
            let hash = std::mem::take(&mut event.hash);
            assert_eq!(
                msg.payload.as_ref(),
                event.encode_to_vec().as_slice(),
                "body = stored bytes"
            );
            assert_eq!(
                blake3::hash(&msg.payload).as_bytes().as_slice(),
                hash.as_slice()
            );
        }
    }
    assert_eq!(seq, n + foreign.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_is_published_once_in_order() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::publishing(dir.path(), &nats, "E2E_ONCE");
    append_many(&server, 6, 40).await;
    wait_published(&server, 240).await;
    assert_stream_is_log(&server, &nats, "E2E_ONCE", 240, &[]).await;
    assert_eq!(chain_breaks(&server).await, 0.0, "no chain broke");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_outage_loses_nothing_and_doubles_nothing() {
    let mut nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::publishing(dir.path(), &nats, "E2E_OUTAGE");
    append_many(&server, 4, 25).await;
    // Stop NATS while appends go on: appends still succeed.
    let appends = {
        let grpc = server.grpc.clone();
        tokio::spawn(async move {
            let mut c = journey_tests::client::connect(&grpc, None).await.unwrap();
            for i in 0..300 {
                c.append(batch(vec![observation("N-outage", i as f64)]))
                    .await
                    .unwrap();
                if i % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    nats.stop();
    appends.await.unwrap();
    assert_eq!(status(&server).await["head_position"].as_u64(), Some(400));
    nats.restart();
    wait_published(&server, 400).await;
    assert_stream_is_log(&server, &nats, "E2E_OUTAGE", 400, &[]).await;

    // The cursor survives a restart of the server too: nothing is published twice.
    assert!(server.terminate().success());
    let server = Server::publishing(dir.path(), &nats, "E2E_OUTAGE");
    append_many(&server, 1, 5).await;
    wait_published(&server, 405).await;
    assert_stream_is_log(&server, &nats, "E2E_OUTAGE", 405, &[]).await;
}

/// The outbox asks JetStream for one ack per batch, each message chained to the one before it
/// (`Nats-Expected-Last-Msg-Id`). A message someone else publishes into the stream breaks that
/// chain: the rest is refused and sent again from the cursor behind a new chain, and nothing is
/// lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_message_breaks_the_chain_and_nothing_is_lost() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::publishing(dir.path(), &nats, "E2E_FOREIGN");
    append_many(&server, 2, 20).await;
    wait_published(&server, 40).await;
    let js = jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let ack = js
        .publish("journey.v1.foreign", "not ours".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 41);
    append_many(&server, 2, 20).await;
    wait_published(&server, 80).await;
    assert_stream_is_log(&server, &nats, "E2E_FOREIGN", 80, &[41]).await;
    assert!(
        chain_breaks(&server).await >= 1.0,
        "the foreign message broke the chain"
    );
}

/// A log whose events JetStream already holds (the cursor lagging behind the stream, as after a
/// crash between publishing and saving the cursor) is published again: JetStream drops the
/// duplicates, the chain passes over them, and the events after them follow in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_already_in_the_stream_pass_the_chain_as_duplicates() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let (first, copy) = (dir.path().join("first"), dir.path().join("copy"));
    let mut server = Server::start(&first, &[]);
    append_many(&server, 2, 20).await;
    assert!(server.terminate().success());
    // The same 40 events, with no cursor yet.
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(&first)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    let mut server = Server::publishing(&first, &nats, "E2E_DUPS");
    wait_published(&server, 40).await;
    assert!(server.terminate().success());

    let server = Server::publishing(&copy, &nats, "E2E_DUPS");
    append_many(&server, 2, 10).await;
    wait_published(&server, 60).await;
    assert_stream_is_log(&server, &nats, "E2E_DUPS", 60, &[]).await;
    assert_eq!(
        chain_breaks(&server).await,
        0.0,
        "duplicates broke no chain"
    );
}
