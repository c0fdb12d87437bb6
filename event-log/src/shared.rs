//! What the log, its writer thread and its syncer thread share: the storage, the id index, the
//! durable watermark, the replicated one (`--ack replicated`) and the first failure.
use crate::{append::Head, index::Index, storage::Storage};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub index: RwLock<Index>,
    pub durable: watch::Sender<Head>,
    /// In replicated mode, the last event a replicator said the cluster holds (never past
    /// `durable`): what readers see and what appends wait for. `None`: readers see `durable`.
    pub replicated: Option<watch::Sender<Head>>,
    pub failure: Mutex<Option<String>>,
}

impl Shared {
    /// The watermark readers never pass: the replicated one in replicated mode, else the durable.
    pub fn visible(&self) -> &watch::Sender<Head> {
        self.replicated.as_ref().unwrap_or(&self.durable)
    }

    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }
}
