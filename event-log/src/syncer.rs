//! The syncer: makes written groups durable and answers them. It runs beside the writer, so the
//! writer checks and writes the next group while this one fsyncs; groups that wait meanwhile share
//! the next fsync. Nothing is acknowledged, and the durable watermark does not move, before the
//! fsync covering the group returns.
use crate::{
    append::{AppendOutcome, Head},
    error::AppendError,
    shared::Shared,
    storage::WriteBatch,
};
use std::{
    sync::{mpsc, Arc},
    thread::JoinHandle,
};
use tokio::sync::oneshot;

pub(crate) type Reply = (
    oneshot::Sender<Result<AppendOutcome, AppendError>>,
    Result<AppendOutcome, AppendError>,
);

/// Groups written ahead of the fsync: a bound keeps the writer from running far ahead of the disk.
const GROUPS_AHEAD: usize = 64;

/// A group written to storage, not yet durable.
pub(crate) struct Written {
    /// The chain tip after this group.
    pub tip: Head,
    pub batch: WriteBatch,
    pub replies: Vec<Reply>,
}

impl Written {
    /// Answers every request of the group with `why` (the group may not be durable).
    pub fn fail(self, why: &str) {
        for (reply, _) in self.replies {
            let _ = reply.send(Err(AppendError::Unavailable(why.to_string())));
        }
    }
}

pub(crate) struct Syncer {
    shared: Arc<Shared>,
}

impl Syncer {
    /// Starts the syncer thread; it stops when the sender is dropped, after the last group.
    pub fn start(shared: Arc<Shared>) -> (mpsc::SyncSender<Written>, JoinHandle<()>) {
        let (tx, rx) = mpsc::sync_channel(GROUPS_AHEAD);
        let syncer = Syncer { shared };
        let handle = std::thread::Builder::new()
            .name("journey-log-sync".into())
            .spawn(move || syncer.run(rx))
            .expect("cannot start the log syncer thread");
        (tx, handle)
    }

    fn run(self, rx: mpsc::Receiver<Written>) {
        while let Ok(first) = rx.recv() {
            let mut groups = vec![first];
            groups.extend(rx.try_iter());
            self.complete(groups);
        }
    }

    /// One fsync for every group written so far, then the index, the watermark and the replies.
    fn complete(&self, groups: Vec<Written>) {
        if let Some(why) = self.shared.failure() {
            groups.into_iter().for_each(|g| g.fail(&why));
            return;
        }
        let events: usize = groups.iter().map(|g| g.batch.records.len()).sum();
        if events > 0 {
            let started = std::time::Instant::now();
            let synced = self.shared.storage.sync();
            metrics::histogram!("journey_log_sync_seconds").record(started.elapsed().as_secs_f64());
            if let Err(e) = synced {
                // The state in memory may now be ahead of the disk: stop taking appends.
                let why = format!("storage failure, restart the server: {e}");
                tracing::error!(error = %e, "event log sync failed; refusing further appends");
                *self.shared.failure.lock().expect("failure lock") = Some(why.clone());
                groups.into_iter().for_each(|g| g.fail(&why));
                return;
            }
            // Index first, then the watermark: a reader that sees the new head finds its events.
            let mut index = self.shared.index.write().expect("index lock");
            for r in groups.iter().flat_map(|g| &g.batch.records) {
                index.insert(r.event_id, &r.patient_id, r.position);
            }
            drop(index);
            let tip = groups.last().expect("at least one group").tip;
            self.shared.durable.send_replace(tip);
            self.shared.advance_visible();
            metrics::histogram!("journey_group_commit_events").record(events as f64);
            metrics::gauge!("journey_log_head").set(tip.position as f64);
        }
        for (reply, outcome) in groups.into_iter().flat_map(|g| g.replies) {
            let _ = reply.send(outcome);
        }
    }
}
