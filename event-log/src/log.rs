//! The public face of the log: append (through the single writer), and reads that never pass the
//! durable watermark — or, in replicated mode (`--ack replicated`), the replicated one: the last
//! event a replicator (the outbox publishing to a JetStream cluster) says the cluster holds.
pub use crate::append::{AppendOutcome, AppendRequest, Appended, Head};
use crate::shared::Shared;
use crate::{
    chain::{self, VerifyReport, ZERO_HASH},
    checkpoint,
    error::{AppendError, StorageError},
    gate::Gate,
    index::Index,
    storage::{Storage, StoredEvent},
    writer::{Pending, Work, Writer},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    thread::JoinHandle,
};
use tokio::sync::{mpsc, oneshot, watch};

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Most events committed by one fsync.
    pub max_group_events: usize,
    /// Append requests waiting for the writer before callers wait to enqueue.
    pub queue_depth: usize,
    /// Where the writer saves its state at an orderly stop, and the next open reads it back
    /// (`checkpoint_in(data_dir)`); `None`: every open reads every event.
    pub checkpoint: Option<std::path::PathBuf>,
    /// `Some(wait)`: replicated mode. Readers stop at the replicated watermark, which only
    /// [`EventLog::mark_replicated`] moves, and an append (or a retry of one) is answered once
    /// its events are replicated, or `Unavailable` after `wait`. `None`: the durable watermark.
    pub replication: Option<std::time::Duration>,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_group_events: 16_384,
            queue_depth: 4096,
            checkpoint: None,
            replication: None,
        }
    }
}

pub struct EventLog {
    shared: Arc<Shared>,
    tx: RwLock<Option<mpsc::Sender<Pending>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// How long an append waits for its events to be replicated (replicated mode).
    replication: Option<std::time::Duration>,
    /// Why client appends are refused for now (a standby: only copies are written).
    refusal: RwLock<Option<String>>,
}

impl EventLog {
    /// Opens the log on `storage`, rebuilding the writer's state (versions, chain tip) and the
    /// gate's state: from the checkpoint of the last orderly stop when there is one that matches
    /// the log, and from every stored event after it.
    pub fn open(
        storage: Arc<dyn Storage>,
        mut gate: Box<dyn Gate>,
        options: LogOptions,
    ) -> Result<EventLog, StorageError> {
        let last = storage.last_position()?;
        let mut versions: HashMap<String, u64> = HashMap::new();
        let mut index = Index::default();
        let mut head = Head {
            position: 0,
            hash: ZERO_HASH,
        };
        let from = match options.checkpoint.as_deref().and_then(checkpoint::load) {
            Some(c) if matches(storage.as_ref(), &c.head(), last)? && gate.load(&c.gate) => {
                head = c.head();
                versions = c.versions;
                index = c.index;
                Some(head.position)
            }
            _ => None,
        };
        let mut next = head.position + 1;
        let progress = Progress::start(last, from);
        while next <= last {
            let batch = storage.read(next, last, 8192)?;
            if batch.is_empty() {
                break;
            }
            for stored in &batch {
                // A range read skips missing keys: check contiguity, not just the last position.
                if stored.position != head.position + 1 {
                    return Err(StorageError(format!(
                        "the log has a hole: position {} is missing, last stored is {last}; run `journey verify`",
                        head.position + 1
                    )));
                }
                let event = stored.decode()?;
                let id = uuid::Uuid::parse_str(&event.event_id).map_err(|_| {
                    StorageError(format!(
                        "position {}: stored event_id is not a UUID",
                        stored.position
                    ))
                })?;
                index.insert(id, &event.patient_id, stored.position);
                versions.insert(event.patient_id.clone(), event.stream_version);
                gate.restore(&event);
                head = Head {
                    position: stored.position,
                    hash: stored.hash,
                };
            }
            next = head.position + 1;
            progress.tick(head.position);
        }
        if head.position != last {
            return Err(StorageError(format!(
                "the log has a hole: scanned up to position {}, last stored is {last}; run `journey verify`",
                head.position
            )));
        }
        progress.done(head.position);
        let (durable, _) = watch::channel(head);
        let (written, _) = watch::channel(head);
        // Nothing is known replicated at open: the caller marks what it knows (the outbox cursor).
        let zero = Head {
            position: 0,
            hash: ZERO_HASH,
        };
        let replicated = options.replication.map(|_| crate::shared::Replicated {
            cluster: watch::channel(zero).0,
            visible: watch::channel(zero).0,
        });
        let shared = Arc::new(Shared {
            storage,
            index: RwLock::new(index),
            durable,
            written,
            replicated,
            failure: Mutex::new(None),
        });
        let (tx, rx) = mpsc::channel(options.queue_depth);
        let writer = Writer::new(
            shared.clone(),
            gate,
            head,
            versions,
            options.max_group_events,
            options.checkpoint,
        );
        let handle = std::thread::Builder::new()
            .name("journey-log-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StorageError(format!("cannot start the writer thread: {e}")))?;
        Ok(EventLog {
            shared,
            tx: RwLock::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            replication: options.replication,
            refusal: RwLock::new(None),
        })
    }

    /// Appends a batch atomically; returns once it is fsync'd and, in replicated mode, once it is
    /// replicated (a retry of events stored but not yet replicated waits the same way).
    pub async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, AppendError> {
        if request.events.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        if let Some(why) = self.refusal.read().expect("refusal lock").clone() {
            return Err(AppendError::Unavailable(why));
        }
        let outcome = self.submit(Work::Append(request)).await?;
        match (self.replication, &self.shared.replicated) {
            (Some(wait), Some(replicated)) => {
                let last = outcome
                    .appended
                    .iter()
                    .map(|a| a.position)
                    .max()
                    .unwrap_or(0);
                let mut rx = replicated.cluster.subscribe();
                let replicated = tokio::time::timeout(wait, async {
                    rx.wait_for(|h| h.position >= last).await.is_ok()
                })
                .await;
                match replicated {
                    Ok(true) => Ok(outcome),
                    _ => Err(AppendError::Unavailable(format!(
                        "not acknowledged: the NATS cluster did not confirm position {last} within {} s \
                         (quorum lost or unreachable?); retry with the same event ids",
                        wait.as_secs_f64()
                    ))),
                }
            }
            _ => Ok(outcome),
        }
    }

    /// Writes copies of another log's stored events (a standby following the writer): atomically,
    /// with their bytes and positions, once they continue this log's chain (else
    /// [`AppendError::Diverged`], nothing written); returns once they are fsync'd. Copies of
    /// events already held are skipped. Taken even while client appends are refused.
    pub async fn append_copies(
        &self,
        copies: Vec<StoredEvent>,
    ) -> Result<AppendOutcome, AppendError> {
        if copies.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        self.submit(Work::Copy(copies)).await
    }

    /// Refuses client appends with `why` (`Unavailable`: a standby, a writer that lost its role),
    /// or, with `None`, takes them again.
    pub fn set_refusal(&self, why: Option<String>) {
        *self.refusal.write().expect("refusal lock") = why;
    }

    /// Why client appends are refused, if they are.
    pub fn refusal(&self) -> Option<String> {
        self.refusal.read().expect("refusal lock").clone()
    }

    /// Hands work to the writer; returns once it is fsync'd (or refused).
    async fn submit(&self, work: Work) -> Result<AppendOutcome, AppendError> {
        let tx = self
            .tx
            .read()
            .expect("sender lock")
            .clone()
            .ok_or_else(|| AppendError::Unavailable("the log is shutting down".into()))?;
        let (reply, done) = oneshot::channel();
        tx.send(Pending { work, reply })
            .await
            .map_err(|_| AppendError::Unavailable("the log writer has stopped".into()))?;
        drop(tx);
        done.await
            .map_err(|_| AppendError::Unavailable("the log writer has stopped".into()))?
    }

    /// The durable position of a stored event id.
    pub fn position_of(&self, id: &uuid::Uuid) -> Option<u64> {
        let pos = self
            .shared
            .index
            .read()
            .expect("index lock")
            .position_of(id)?;
        (pos <= self.head().position).then_some(pos)
    }

    /// The last event readers see: the last durable one, or in replicated mode the last
    /// replicated one.
    pub fn head(&self) -> Head {
        *self.shared.visible().borrow()
    }

    /// Follows the watermark readers see (live-tail notification for in-process readers).
    pub fn watch(&self) -> watch::Receiver<Head> {
        self.shared.visible().subscribe()
    }

    /// Whether readers stop at the replicated watermark.
    pub fn is_replicated(&self) -> bool {
        self.shared.replicated.is_some()
    }

    /// The last durable event, replicated or not (what a replicator publishes up to).
    pub fn durable_head(&self) -> Head {
        *self.shared.durable.borrow()
    }

    /// Follows the durable watermark (for a replicator).
    pub fn watch_durable(&self) -> watch::Receiver<Head> {
        self.shared.durable.subscribe()
    }

    /// Durable events from `from` (inclusive), at most `limit`, replicated or not (for a
    /// replicator).
    pub fn read_durable(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, StorageError> {
        let to = self.durable_head().position;
        self.shared.storage.read(from.max(1), to, limit)
    }

    /// What a replicator publishes up to: in replicated mode the last event written, durable or
    /// not yet (an append is answered only once it is both durable and replicated, so the two
    /// run side by side); else the last durable event.
    pub fn publishable_head(&self) -> Head {
        match self.shared.replicated {
            Some(_) => *self.shared.written.borrow(),
            None => self.durable_head(),
        }
    }

    /// Follows [`EventLog::publishable_head`].
    pub fn watch_publishable(&self) -> watch::Receiver<Head> {
        match self.shared.replicated {
            Some(_) => self.shared.written.subscribe(),
            None => self.shared.durable.subscribe(),
        }
    }

    /// Events from `from` (inclusive) up to [`EventLog::publishable_head`], at most `limit`.
    pub fn read_publishable(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let to = self.publishable_head().position;
        self.shared.storage.read(from.max(1), to, limit)
    }

    /// Says the cluster holds every event up to `head` (replicated mode; nothing otherwise):
    /// appends waiting for them are answered once durable here too, and readers see them once
    /// they are. Never moves back, never past what was written.
    pub fn mark_replicated(&self, head: Head) {
        let Some(replicated) = &self.shared.replicated else {
            return;
        };
        debug_assert!(head.position <= self.shared.written.borrow().position);
        replicated.cluster.send_if_modified(|h| {
            let forward = head.position > h.position;
            if forward {
                *h = head;
            }
            forward
        });
        self.shared.advance_visible();
    }

    /// Durable events from `from` (inclusive), at most `limit`.
    pub fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, StorageError> {
        self.read_range(from, u64::MAX, limit)
    }

    /// Durable events with `from <= position <= to`, at most `limit`.
    pub fn read_range(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let to = to.min(self.head().position);
        self.shared.storage.read(from.max(1), to, limit)
    }

    /// One patient's durable events from `from_version` (inclusive), at most `limit`.
    pub fn read_stream(
        &self,
        patient_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let durable = self.head().position;
        let mut out = Vec::new();
        let positions = self
            .shared
            .index
            .read()
            .expect("index lock")
            .patient_positions(patient_id, from_version, limit);
        for pos in positions {
            if pos > durable {
                break;
            }
            match self.shared.storage.read(pos, pos, 1)?.pop() {
                Some(e) => out.push(e),
                None => return Err(StorageError(format!("index names missing position {pos}"))),
            }
        }
        Ok(out)
    }

    /// Verifies the chain over `from..=to` (0 = head), optionally against an external anchor.
    pub fn verify(
        &self,
        from: u64,
        to: u64,
        anchor: Option<(u64, [u8; 32])>,
    ) -> Result<VerifyReport, StorageError> {
        let head = self.head().position;
        let to = if to == 0 { head } else { to.min(head) };
        chain::verify(self.shared.storage.as_ref(), from, to, anchor)
    }

    /// The storage underneath, for small side values (outbox cursors) and sizes.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.shared.storage
    }

    /// Why the log stopped accepting appends, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure()
    }

    /// Stops accepting appends, lets the writer commit what is queued, then syncs.
    pub async fn close(&self) -> Result<(), StorageError> {
        self.tx.write().expect("sender lock").take();
        let handle = self.writer.lock().expect("writer lock").take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.join())
                .await
                .map_err(|e| StorageError(format!("writer join: {e}")))?
                .map_err(|_| StorageError("the writer thread panicked".into()))?;
        }
        self.shared.storage.sync()
    }
}

/// Whether the log holds the checkpoint's tip: the same event at its position (the chain vouches
/// for every event before it), no later than the last stored.
fn matches(storage: &dyn Storage, tip: &Head, last: u64) -> Result<bool, StorageError> {
    if tip.position == 0 || tip.position > last {
        tracing::info!(
            checkpoint = tip.position,
            last,
            "checkpoint ahead of the log: every event is read back"
        );
        return Ok(false);
    }
    let stored = storage.read(tip.position, tip.position, 1)?;
    let same = stored.first().is_some_and(|s| s.hash == tip.hash);
    if !same {
        tracing::warn!(
            position = tip.position,
            "checkpoint does not match the event the log holds there: every event is read back"
        );
    }
    Ok(same)
}

/// What opening a log says while it reads every stored event back (the writer's versions and
/// index, the rules' state): that it started, how far it is every few seconds, and when it is done,
/// so that a long start of a large log is never silent.
struct Progress {
    last: u64,
    /// Where the checkpoint it started from was taken.
    checkpoint: Option<u64>,
    started: std::time::Instant,
    said: std::cell::Cell<std::time::Instant>,
}

impl Progress {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(2);

    fn start(last: u64, checkpoint: Option<u64>) -> Progress {
        match checkpoint {
            Some(at) => tracing::info!(
                events = last,
                checkpoint = at,
                "opening the event log from its checkpoint at position {at}: reading back the {} events after it",
                last - at
            ),
            None if last > 0 => tracing::info!(
                events = last,
                "opening the event log: reading its {last} events back to rebuild the journey state"
            ),
            None => {}
        }
        let now = std::time::Instant::now();
        Progress {
            last,
            checkpoint,
            started: now,
            said: std::cell::Cell::new(now),
        }
    }

    fn tick(&self, position: u64) {
        if self.said.get().elapsed() < Self::EVERY {
            return;
        }
        self.said.set(std::time::Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = position as f64 / elapsed.max(1e-3);
        let left = self.last.saturating_sub(position) as f64 / rate.max(1.0);
        tracing::info!(
            position,
            last = self.last,
            "opening the event log: {position} of {} events read ({}%), about {left:.0} s left",
            self.last,
            position * 100 / self.last.max(1)
        );
    }

    fn done(&self, position: u64) {
        if let Some(at) = self.checkpoint {
            tracing::info!(
                events = position,
                seconds = self.started.elapsed().as_secs_f64(),
                "event log state rebuilt from its checkpoint at {at} and the {} events after it in {:.1} s",
                position - at,
                self.started.elapsed().as_secs_f64()
            );
        } else if position > 0 {
            tracing::info!(
                events = position,
                seconds = self.started.elapsed().as_secs_f64(),
                "event log state rebuilt from {position} events in {:.1} s",
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
