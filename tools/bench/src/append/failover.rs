//! The failover gap of `journey bench append --ack replicated`: a writer and a standby
//! (`journey serve event-log --ack replicated [--standby]`) on a new stream of the cluster,
//! callers appending one event at a time to whichever takes it; the writer killed (SIGKILL); the
//! gap is the time from the last acknowledgement by the old writer to the first by the new one.
//! Its baseline is the lease's term (`journey_failover::lease::TERM`), which a standby must see
//! pass without a renewal before it takes over: most of the gap by design.
use crate::common::{log_client, sample_event, spawn_ready, step, ServerChild};
use journey_proto::v1::AppendRequest;
use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// What one failover measured.
pub struct Gap {
    /// Last acknowledgement by the old writer → first by the new one.
    pub gap: Duration,
    /// Appends acknowledged in all, and those retried against the other node.
    pub acknowledged: usize,
    pub retried: usize,
}

fn event_log(
    dir: &std::path::Path,
    urls: &str,
    stream: &str,
    standby: bool,
) -> anyhow::Result<ServerChild> {
    let data = dir.display().to_string();
    // Inside the run's temporary folder, removed with it.
    let anchor = dir.join("anchor.json").display().to_string();
    let mut args = vec![
        "serve",
        "event-log",
        "--insecure",
        "--data-dir",
        &data,
        "--anchor-file",
        &anchor,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--ack",
        "replicated",
        "--nats-url",
        urls,
        "--nats-stream",
        stream,
    ];
    if standby {
        args.push("--standby");
    }
    spawn_ready(&args)
}

/// Callers appending one event at a time until stopped, each to the node that last took one; an
/// append refused or lost goes, the same request, to the other. Every acknowledgement: when, and
/// by which node (0: the first writer).
struct Callers {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<(Instant, usize)>>>,
    retried: Arc<Mutex<usize>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Callers {
    fn start(nodes: [String; 2], callers: usize) -> Callers {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let retried = Arc::new(Mutex::new(0));
        let tasks = (0..callers)
            .map(|w| {
                let (stop, acks, retried, nodes) =
                    (stop.clone(), acks.clone(), retried.clone(), nodes.clone());
                tokio::spawn(async move {
                    let mut at = 0usize;
                    let mut client = None;
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let request = AppendRequest {
                            events: vec![sample_event(&format!("failover-{w}"), i)],
                            expected_versions: Default::default(),
                        };
                        loop {
                            if client.is_none() {
                                client = log_client(&nodes[at % 2]).await.ok();
                            }
                            let answered = match client.as_mut() {
                                Some(c) => c.append(request.clone()).await.is_ok(),
                                None => false,
                            };
                            if answered {
                                acks.lock().expect("acks").push((Instant::now(), at % 2));
                                break;
                            }
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            client = None;
                            at += 1;
                            *retried.lock().expect("retried") += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        Callers {
            stop,
            acks,
            retried,
            tasks,
        }
    }

    fn count(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    async fn wait_for(&self, count: usize, within: Duration, what: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.count() < count {
            anyhow::ensure!(
                Instant::now() < deadline,
                "{what}: only {} appends acknowledged after {within:?}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn stop(self) -> (Vec<(Instant, usize)>, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        let retried = *self.retried.lock().expect("retried");
        let acks = std::mem::take(&mut *self.acks.lock().expect("acks"));
        (acks, retried)
    }
}

/// Runs one failover on a new stream `stream` of the cluster at `urls`.
pub async fn measure(urls: &str, stream: &str, callers: usize) -> anyhow::Result<Gap> {
    step("failover: a writer and a standby, the writer killed under load");
    let dir = tempfile::tempdir()?;
    let mut writer = event_log(&dir.path().join("writer"), urls, stream, false)?;
    // The writer holds the lease before the standby starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let standby = event_log(&dir.path().join("standby"), urls, stream, true)?;
    let load = Callers::start([writer.grpc.clone(), standby.grpc.clone()], callers);
    load.wait_for(2000, Duration::from_secs(60), "before the kill")
        .await?;
    let killed = load.count();
    writer.child.kill()?;
    let _ = writer.child.wait();
    load.wait_for(killed + 2000, Duration::from_secs(60), "after the kill")
        .await?;
    let (acks, retried) = load.stop().await;
    drop(standby);
    let last_old = acks
        .iter()
        .filter(|(_, node)| *node == 0)
        .map(|(t, _)| *t)
        .max()
        .ok_or_else(|| anyhow::anyhow!("the writer acknowledged nothing"))?;
    let first_new = acks
        .iter()
        .filter(|(t, node)| *node == 1 && *t > last_old)
        .map(|(t, _)| *t)
        .min()
        .ok_or_else(|| {
            anyhow::anyhow!("the standby acknowledged nothing after the writer's kill")
        })?;
    Ok(Gap {
        gap: first_new - last_old,
        acknowledged: acks.len(),
        retried,
    })
}
