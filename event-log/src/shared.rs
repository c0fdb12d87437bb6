//! What the log, its writer thread and its syncer thread share: the storage, the id index, the
//! durable watermark and the first failure.
use crate::{append::Head, index::Index, storage::Storage};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::watch;

pub(crate) struct Shared {
    pub storage: Arc<dyn Storage>,
    pub index: RwLock<Index>,
    pub durable: watch::Sender<Head>,
    pub failure: Mutex<Option<String>>,
}

impl Shared {
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }
}
