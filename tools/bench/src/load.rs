//! A steady append load and a watcher of read models, shared by `bench visible` and `bench e2e`.
//!
//! Appenders send one simulated event per `Append` call, either paced on a fixed schedule or as
//! fast as acknowledgements come back, and report each acknowledged position. The watcher polls
//! the read models' checkpoints (`Projections.Status`) and measures, per projection, the delay
//! from an event's acknowledgement to the first poll that shows it applied, and the lag in
//! positions behind the highest acknowledged position.
use super::common::channel;
use super::common::{fmt_us, histogram, record, shard, status, Window};
use hdrhistogram::Histogram;
use journey_log_access::LogClient;
use journey_proto::v1::{
    projections_client::ProjectionsClient, AppendRequest, ProjectionStatusRequest,
};
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use tokio::{sync::mpsc, task::JoinHandle};
use tonic::transport::Channel;

/// What the appenders do.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub callers: usize,
    /// Events per second over all callers; `None`: each caller sends as soon as its last
    /// append is acknowledged (the sustained rate is then what the system takes).
    pub rate: Option<f64>,
    pub seconds: u64,
    pub window: Window,
}

/// One appender's figures.
pub struct Appended {
    /// Ack latency, from the send to the acknowledgement.
    pub append: Histogram<u64>,
    pub sent: u64,
    /// Paced sends more than 10 ms behind their schedule (the load was not sustained).
    pub late: u64,
    /// The last acknowledgement.
    pub finished: Instant,
}

/// The appenders' figures, merged.
pub struct LoadResult {
    pub append: Histogram<u64>,
    pub sent: u64,
    pub late: u64,
    /// From the start of the load to the last acknowledgement.
    pub elapsed: Duration,
}

impl LoadResult {
    pub fn events_per_sec(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
}

/// The appenders, running; `acked` receives (position, acknowledgement instant).
pub struct Running {
    pub acked: mpsc::UnboundedReceiver<(u64, Instant)>,
    tasks: Vec<JoinHandle<anyhow::Result<Appended>>>,
    t0: Instant,
}

/// Starts the load. Each caller appends its own patients' journeys, in order.
pub fn start(log: &LogClient, load: Load) -> Running {
    let (acked_tx, acked) = mpsc::unbounded_channel::<(u64, Instant)>();
    let t0 = Instant::now() + Duration::from_millis(100);
    let stop = t0 + Duration::from_secs(load.seconds);
    let tasks = (0..load.callers)
        .map(|w| {
            let mut c = log.clone();
            let acked = acked_tx.clone();
            let window = load.window;
            tokio::spawn(async move {
                let mut a = Appended {
                    append: histogram(),
                    sent: 0,
                    late: 0,
                    finished: t0,
                };
                let mut events = shard(w, load.callers, 0).flat_map(|p| window.patient(p));
                let mut k = w as u64;
                tokio::time::sleep_until(t0.into()).await;
                loop {
                    let due = match load.rate {
                        Some(rate) => t0 + Duration::from_secs_f64(k as f64 / rate),
                        None => Instant::now(),
                    };
                    if due >= stop {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    let e = events.next().expect("endless patients");
                    let sent = Instant::now();
                    if sent.duration_since(due) > Duration::from_millis(10) {
                        a.late += 1;
                    }
                    let r = c
                        .append(AppendRequest {
                            events: vec![e],
                            expected_versions: Default::default(),
                        })
                        .await
                        .map_err(status)?
                        .into_inner();
                    let ack = Instant::now();
                    record(&mut a.append, ack - sent);
                    let position = r.appended.first().map_or(0, |x| x.position);
                    let _ = acked.send((position, ack));
                    a.sent += 1;
                    a.finished = ack;
                    k += load.callers as u64;
                }
                anyhow::Ok(a)
            })
        })
        .collect();
    Running { acked, tasks, t0 }
}

impl Running {
    /// Waits for the appenders and merges their figures.
    pub async fn finish(self) -> anyhow::Result<LoadResult> {
        let mut r = LoadResult {
            append: histogram(),
            sent: 0,
            late: 0,
            elapsed: Duration::ZERO,
        };
        for t in self.tasks {
            let a = t.await??;
            r.append.add(&a.append)?;
            r.sent += a.sent;
            r.late += a.late;
            r.elapsed = r.elapsed.max(a.finished.saturating_duration_since(self.t0));
        }
        Ok(r)
    }
}

/// A read model to watch: its name in `Projections.Status` on the service at `grpc`.
pub struct Watched {
    pub name: String,
    client: ProjectionsClient<Channel>,
    pending: BTreeMap<u64, Instant>,
    checkpoint: u64,
    /// Acknowledgement → first poll that shows the event applied.
    pub visible: Histogram<u64>,
    /// Highest acknowledged position − checkpoint, at each poll while the load runs.
    pub lag_positions: Histogram<u64>,
    /// Duration of the Status call (the resolution of `visible`).
    pub poll: Histogram<u64>,
}

impl Watched {
    pub async fn connect(grpc: &str, name: &str) -> anyhow::Result<Watched> {
        Ok(Watched {
            name: name.to_string(),
            client: ProjectionsClient::new(channel(grpc).await?),
            pending: BTreeMap::new(),
            checkpoint: 0,
            visible: histogram(),
            lag_positions: histogram(),
            poll: histogram(),
        })
    }

    async fn poll(&mut self, highest_acked: u64, loaded: bool) -> anyhow::Result<()> {
        let asked = Instant::now();
        let s = self
            .client
            .status(ProjectionStatusRequest {})
            .await
            .map_err(status)?
            .into_inner();
        let answered = Instant::now();
        record(&mut self.poll, answered - asked);
        self.checkpoint = s
            .projections
            .iter()
            .find(|p| p.name == self.name)
            .map(|p| p.checkpoint)
            .ok_or_else(|| anyhow::anyhow!("the service runs no {} read model", self.name))?;
        if loaded {
            let _ = self
                .lag_positions
                .record(highest_acked.saturating_sub(self.checkpoint));
        }
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.checkpoint {
                break;
            }
            record(
                &mut self.visible,
                answered.saturating_duration_since(*entry.get()),
            );
            entry.remove();
        }
        Ok(())
    }
}

/// Polls `watched` every `poll_every` until the load is over and every acknowledged event is in
/// every read model (or `drain_limit` after the load stopped), reporting progress every 3 s.
/// Returns how long the read models took to catch up once the load stopped.
pub async fn watch(
    running: &mut Running,
    watched: &mut [Watched],
    poll_every: Duration,
    drain_limit: Duration,
) -> anyhow::Result<Duration> {
    let mut highest = 0;
    let mut loaded = true;
    let mut stopped_at = None;
    let mut last_report = Instant::now();
    loop {
        // Take the acknowledgements received so far: only those acked before the poll count.
        loop {
            match running.acked.try_recv() {
                Ok((p, at)) => {
                    highest = highest.max(p);
                    for w in watched.iter_mut() {
                        w.pending.insert(p, at);
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    loaded = false;
                    break;
                }
            }
        }
        let round = Instant::now();
        for w in watched.iter_mut() {
            w.poll(highest, loaded).await?;
        }
        if last_report.elapsed() >= Duration::from_secs(3) {
            last_report = Instant::now();
            let each: Vec<String> = watched
                .iter()
                .map(|w| {
                    format!(
                        "{} at {} ({} behind; visible p50 {} p99 {})",
                        w.name,
                        w.checkpoint,
                        w.pending.len(),
                        fmt_us(w.visible.value_at_quantile(0.5)),
                        fmt_us(w.visible.value_at_quantile(0.99))
                    )
                })
                .collect();
            eprintln!("bench:   acked up to {highest}; {}", each.join("; "));
        }
        if !loaded {
            let stopped = *stopped_at.get_or_insert_with(Instant::now);
            if watched.iter().all(|w| w.pending.is_empty()) {
                return Ok(stopped.elapsed());
            }
            let behind: Vec<String> = watched
                .iter()
                .filter(|w| !w.pending.is_empty())
                .map(|w| {
                    format!(
                        "{} ({} events, checkpoint {})",
                        w.name,
                        w.pending.len(),
                        w.checkpoint
                    )
                })
                .collect();
            anyhow::ensure!(
                stopped.elapsed() < drain_limit,
                "acknowledged events were still not in {} {} s after the load stopped; see the services' logs",
                behind.join(", "),
                drain_limit.as_secs()
            );
        }
        tokio::time::sleep(poll_every.saturating_sub(round.elapsed())).await;
    }
}
