//! `kill -9` of `journey up` under concurrent load: every acknowledged event survives, batches are
//! whole or absent, the chain verifies and no position is reused.
use futures::StreamExt;
use journey_proto::v1::{AppendRequest, HeadRequest, ReadAllRequest, VerifyRequest};
use journey_tests::*;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// Acknowledged batches with the positions the server returned.
type Acked = Arc<Mutex<Vec<(AppendRequest, Vec<u64>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_load_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let acked: Acked = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let grpc = server.grpc.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = journey_tests::client::connect(&grpc, None).await.unwrap();
            for i in 0.. {
                let corr = uuid::Uuid::new_v4().to_string();
                let events = (0..3)
                    .map(|k| {
                        let mut e = observation(&format!("C-{w}-{}", (i + k) % 5), k as f64);
                        e.correlation_id = corr.clone();
                        e
                    })
                    .collect();
                let req = batch(events);
                match c.append(req.clone()).await {
                    Ok(r) => {
                        let pos = r.into_inner().appended.iter().map(|a| a.position).collect();
                        acked.lock().unwrap().push((req, pos));
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 600 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill9();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();

    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    let mut read = c
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut by_position = HashMap::new();
    let mut corr_count: HashMap<String, usize> = HashMap::new();
    let mut expect = 1;
    while let Some(b) = read.next().await {
        for e in b.unwrap().events {
            assert_eq!(e.position, expect, "positions are contiguous");
            expect += 1;
            *corr_count.entry(e.correlation_id.clone()).or_default() += 1;
            by_position.insert(e.position, e.event_id);
        }
    }
    assert_eq!(expect - 1, head);
    for (req, positions) in &acked {
        for (e, p) in req.events.iter().zip(positions) {
            assert_eq!(
                by_position.get(p),
                Some(&e.event_id),
                "acknowledged event at {p} lost"
            );
        }
    }
    assert!(
        corr_count.values().all(|&n| n == 3),
        "a batch was half-written"
    );
    let v = c
        .verify(VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");

    // No position is reused, and a retry of an acknowledged batch returns its original positions.
    let r = c
        .append(batch(vec![observation("after", 1.0)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.appended[0].position, head + 1);
    let (req, positions) = acked.last().unwrap();
    let r = c.append(req.clone()).await.unwrap().into_inner();
    assert!(r.deduplicated);
    assert_eq!(
        &r.appended.iter().map(|a| a.position).collect::<Vec<_>>(),
        positions
    );
}
