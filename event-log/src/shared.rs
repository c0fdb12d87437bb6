//! What the log, its writer thread and its syncer thread share: the storage, the id index, the
//! durable watermark, the replicated one (`--ack replicated`) and the first failure.
use crate::{append::Head, index::Index, storage::Storage};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub index: RwLock<Index>,
    pub durable: watch::Sender<Head>,
    /// The last event written to storage, durable or not yet (a replicator in replicated mode
    /// publishes from here, the cluster's copy and the local fsync then running side by side).
    pub written: watch::Sender<Head>,
    /// In replicated mode: what a replicator said the cluster holds, and what readers see.
    /// `None`: readers see `durable`.
    pub replicated: Option<Replicated>,
    pub failure: Mutex<Option<String>>,
}

/// The watermarks of replicated mode.
pub(crate) struct Replicated {
    /// The last event the cluster holds (what appends wait for, besides their fsync).
    pub cluster: watch::Sender<Head>,
    /// The last event both durable here and held by the cluster: what readers see.
    pub visible: watch::Sender<Head>,
}

impl Shared {
    /// The watermark readers never pass: in replicated mode the last event both durable and
    /// replicated, else the durable one.
    pub fn visible(&self) -> &watch::Sender<Head> {
        self.replicated
            .as_ref()
            .map_or(&self.durable, |r| &r.visible)
    }

    /// Replicated mode: moves what readers see to the lower of the durable and the cluster's
    /// watermarks (both name the same event at a position). Never moves back.
    pub fn advance_visible(&self) {
        let Some(r) = &self.replicated else {
            return;
        };
        let (durable, cluster) = (*self.durable.borrow(), *r.cluster.borrow());
        let lower = if durable.position <= cluster.position {
            durable
        } else {
            cluster
        };
        r.visible.send_if_modified(|h| {
            let forward = lower.position > h.position;
            if forward {
                *h = lower;
            }
            forward
        });
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }
}
