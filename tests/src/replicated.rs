//! What the tests of a replicated log share (`--ack replicated` on a private three-server
//! cluster): nodes started on it, a load of clients recording every acknowledged event id, and
//! checks of the stream against the log.
use crate::{batch, client, nats_cluster::NatsCluster, observation, Server};
use async_nats::{header, jetstream};
use journey_proto::v1::HeadRequest;
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
pub fn replicated_node(dir: &Path, cluster: &NatsCluster, stream: &str, extra: &[&str]) -> Server {
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

/// A JetStream client of the cluster (any of its servers).
pub async fn jetstream_of(cluster: &NatsCluster) -> jetstream::Context {
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

/// The head (position, hash) the node at `grpc` serves.
pub async fn head(grpc: &str) -> (u64, Vec<u8>) {
    let h = client::connect(grpc, None)
        .await
        .unwrap()
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner();
    (h.position, h.hash)
}

/// An acknowledged append: its event id, and when the acknowledgement came.
pub type Acked = (String, Instant);

/// Clients appending one observation at a time until `stop`, each recording the ids of every
/// acknowledged append. An append refused UNAVAILABLE (the cluster electing a leader, a standby,
/// a writer gone) is retried with the same event ids, against the next of the endpoints.
pub struct Load {
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<Acked>>>,
    /// The gRPC addresses the clients try in turn; a test may change them (a node restarted).
    pub endpoints: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(grpc: &str, clients: usize) -> Load {
        Load::over(&[grpc.to_string()], clients)
    }

    pub fn over(endpoints: &[String], clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let endpoints = Arc::new(Mutex::new(endpoints.to_vec()));
        let tasks = (0..clients)
            .map(|k| {
                let (stop, acked, endpoints) =
                    (stop.clone(), acknowledged.clone(), endpoints.clone());
                tokio::spawn(async move {
                    let mut at = 0usize;
                    let mut c = None;
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let request = batch(vec![observation(&format!("R-{k}"), (i % 400) as f64)]);
                        let id = request.events[0].event_id.clone();
                        loop {
                            if c.is_none() {
                                let url = {
                                    let e = endpoints.lock().unwrap();
                                    e[at % e.len()].clone()
                                };
                                c = client::connect(&url, None).await.ok();
                            }
                            let answer = match c.as_mut() {
                                Some(client) => Some(client.append(request.clone()).await),
                                None => None,
                            };
                            match answer {
                                Some(Ok(_)) => break,
                                Some(Err(s)) if !unreachable(&s) => {
                                    panic!("append refused: {s:?}")
                                }
                                // Unreachable (the node killed) or UNAVAILABLE: the same
                                // request, to the next node.
                                _ => {
                                    c = None;
                                    at += 1;
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                }
                            }
                        }
                        acked.lock().unwrap().push((id, Instant::now()));
                        i += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Load {
            stop,
            acknowledged,
            endpoints,
            tasks,
        }
    }

    pub fn count(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    /// When the last append so far was acknowledged.
    pub fn last_ack(&self) -> Option<Instant> {
        self.acknowledged.lock().unwrap().last().map(|a| a.1)
    }

    /// Waits until `more` appends beyond the current count are acknowledged.
    pub async fn wait_progress(&self, more: usize, within: Duration, what: &str) {
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

    /// Stops the clients; every acknowledged append, in the order acknowledged.
    pub async fn stop(self) -> Vec<Acked> {
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

/// Whether a call failed for want of a node to answer it (refused UNAVAILABLE, or the connection
/// lost: the node killed meanwhile), so the same request may go to another.
fn unreachable(s: &tonic::Status) -> bool {
    use std::error::Error;
    s.code() == tonic::Code::Unavailable
        || s.source()
            .is_some_and(|e| e.is::<tonic::transport::Error>())
}

/// The ids of acknowledged appends.
pub fn ids(acked: &[Acked]) -> Vec<String> {
    acked.iter().map(|a| a.0.clone()).collect()
}

/// The stream's leader's index in the cluster.
pub async fn stream_leader(js: &jetstream::Context, cluster: &NatsCluster, stream: &str) -> usize {
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
/// online. A scenario takes one failure at a time; a second one while a replica still catches up
/// would be the loss of the quorum.
pub async fn wait_whole(js: &jetstream::Context, stream: &str) {
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
pub async fn assert_stream_holds(
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
