//! [`Storage`] on sled 0.34, with real durability.
//!
//! One tree, prefixed keys:
//! - `e` + position (BE) → hash (32 bytes) + encoded event
//! - `m` + name → meta value
//!
//! (The id and patient indexes live in memory, rebuilt from the log at open: see `index.rs`.)
//!
//! Durability: each batch is also appended to the commit journal (`journal.rs`), and
//! [`SledStorage::sync`] is one `fdatasync` of it. sled is made durable at checkpoints, when the
//! journal is full, at open and at close: sled 0.34 `flush` writes its log with `sync_file_range`,
//! which neither flushes the drive cache nor file metadata (sled issue #1452), and it never syncs
//! blob files (values too large for a log segment), so a checkpoint flushes sled, then
//! `fdatasync`s the `db` file and every blob file not yet synced. At open, the journal's records
//! past sled's last position (a crash before the checkpoint) are put back into sled first, and
//! events sled kept past the journal (written, never acknowledged) are dropped.
use crate::{
    error::StorageError,
    journal::Journal,
    storage::{Storage, StoredEvent, WriteBatch},
};
use std::{
    collections::HashSet,
    fs::File,
    path::{Path, PathBuf},
    sync::Mutex,
};

const EVENT: u8 = b'e';
const META: u8 = b'm';
/// Meta key: the last position sled held durably at its last checkpoint.
const CHECKPOINT: &str = "journal-checkpoint";

pub struct SledStorage {
    db: sled::Db,
    db_file: File,
    blobs_dir: PathBuf,
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
    journal: Journal,
}

impl SledStorage {
    /// Opens (or creates) the log in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StorageError(format!("cannot create {}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(|e| StorageError(format!("cannot open the log in {}: {e}", dir.display())))?;
        let db_file = File::open(dir.join("db"))?;
        let storage = SledStorage {
            db,
            db_file,
            blobs_dir: dir.join("blobs"),
            synced_blobs: Mutex::new(HashSet::new()),
            journal: Journal::open(&dir.join("journal"))?,
        };
        storage.reconcile()?;
        // Whatever a previous process left in the page cache is made durable before we serve it.
        storage.checkpoint()?;
        storage.journal.reset()?;
        File::open(dir)?.sync_all()?;
        Ok(storage)
    }

    /// After a crash, brings sled to exactly the acknowledged events: puts back those it lost
    /// from the journal, and drops those it kept but that no journal `fdatasync` covered (they
    /// were never acknowledged, and a group must not survive in part).
    fn reconcile(&self) -> Result<(), StorageError> {
        let last = self.last_position()?;
        // Before the journal existed, sled was made durable at every sync.
        let checkpoint = match self.meta(CHECKPOINT)? {
            Some(v) => u64_of(&v)?,
            None => last,
        };
        let chain = self.journal.recover()?;
        let journal_end = chain
            .last()
            .map(|r| r.position)
            .filter(|end| *end > checkpoint);
        if journal_end.is_some() && chain[0].position > checkpoint + 1 {
            return Err(StorageError(format!(
                "the commit journal starts at position {} but sled was checkpointed at {checkpoint}: \
                 events are missing; restore the data folder from a backup",
                chain[0].position
            )));
        }
        let durable_end = journal_end.unwrap_or(checkpoint);
        if last.max(durable_end) < checkpoint {
            tracing::error!(
                last,
                checkpoint,
                "the log ends before its last checkpoint: events were removed; run `journey verify` with an anchor"
            );
        }
        // Everything the journal holds past the checkpoint, even what sled seems to have: the
        // journal is what was acknowledged.
        let restored: Vec<_> = chain.iter().filter(|r| r.position > checkpoint).collect();
        if let (Some(first), Some(end)) = (restored.first(), restored.last()) {
            tracing::info!(
                from = first.position,
                to = end.position,
                "writing acknowledged events back from the commit journal"
            );
        }
        for r in restored {
            self.db
                .insert(event_key(r.position), stored_value(&r.hash, &r.bytes))?;
        }
        if last > durable_end {
            tracing::info!(
                from = durable_end + 1,
                to = last,
                "dropping events written but never acknowledged before the crash"
            );
            for position in durable_end + 1..=last {
                self.db.remove(event_key(position))?;
            }
        }
        Ok(())
    }

    /// Makes everything written to sled durable in sled itself, and records through which
    /// position it is.
    fn checkpoint(&self) -> Result<(), StorageError> {
        let last = self.last_position()?;
        self.db.insert(meta_key(CHECKPOINT), &last.to_be_bytes())?;
        self.db.flush()?;
        self.db_file.sync_data()?;
        self.sync_new_blobs()
    }

    fn sync_new_blobs(&self) -> Result<(), StorageError> {
        let Ok(entries) = std::fs::read_dir(&self.blobs_dir) else {
            return Ok(());
        };
        let mut synced = self.synced_blobs.lock().expect("blob set lock");
        let mut any = false;
        for entry in entries {
            let entry = entry?;
            if synced.contains(&entry.file_name()) {
                continue;
            }
            match File::open(entry.path()) {
                Ok(file) => file.sync_data()?,
                // sled removed it meanwhile (its value was replaced): nothing left to sync.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            }
            synced.insert(entry.file_name());
            any = true;
        }
        if any {
            File::open(&self.blobs_dir)?.sync_all()?;
        }
        Ok(())
    }
}

fn event_key(position: u64) -> [u8; 9] {
    let mut k = [EVENT; 9];
    k[1..].copy_from_slice(&position.to_be_bytes());
    k
}

fn meta_key(name: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(name.as_bytes());
    k
}

fn u64_of(bytes: &[u8]) -> Result<u64, StorageError> {
    let arr: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StorageError(format!("corrupt index entry of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

fn stored_value(hash: &[u8; 32], bytes: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(32 + bytes.len());
    value.extend_from_slice(hash);
    value.extend_from_slice(bytes);
    value
}

fn stored_event(key: &[u8], value: &[u8]) -> Result<StoredEvent, StorageError> {
    let position = u64_of(&key[1..])?;
    if value.len() < 32 {
        return Err(StorageError(format!(
            "position {position}: truncated record"
        )));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&value[..32]);
    Ok(StoredEvent {
        position,
        hash,
        bytes: value[32..].to_vec(),
    })
}

impl Storage for SledStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        // One insert per event: the journal frame, not a sled batch, keeps the group whole
        // across a crash (`reconcile`). A sled batch would cost two extra log-buffer writes.
        for r in &batch.records {
            self.db
                .insert(event_key(r.position), stored_value(&r.hash, &r.bytes))?;
        }
        let records = batch
            .records
            .iter()
            .map(|r| (r.position, &r.hash, r.bytes.as_slice()));
        self.journal.append(records, || self.checkpoint())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.journal.sync()
    }

    fn last_position(&self) -> Result<u64, StorageError> {
        let start = event_key(0);
        let end = event_key(u64::MAX);
        match self.db.range(start..=end).next_back() {
            Some(kv) => u64_of(&kv?.0[1..]),
            None => Ok(0),
        }
    }

    fn read(&self, from: u64, to: u64, limit: usize) -> Result<Vec<StoredEvent>, StorageError> {
        if from > to || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(limit.min((to - from + 1) as usize).min(4096));
        for kv in self.db.range(event_key(from)..=event_key(to)).take(limit) {
            let (k, v) = kv?;
            out.push(stored_event(&k, &v)?);
        }
        Ok(out)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(meta_key(key))?.map(|v| v.to_vec()))
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.db.insert(meta_key(key), value)?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(self.db.size_on_disk()? + self.journal.size()?)
    }
}

impl Drop for SledStorage {
    /// A clean close leaves sled durable and the journal empty.
    fn drop(&mut self) {
        if let Err(e) = self.checkpoint().and_then(|()| self.journal.reset()) {
            tracing::error!(error = %e, "closing the event log: checkpoint failed; the journal is kept");
        }
    }
}

#[cfg(test)]
pub(crate) mod tamper {
    //! Direct edits of the stored bytes, for tests that prove `verify` catches them.
    use super::*;

    pub fn raw(dir: &Path) -> sled::Db {
        sled::open(dir).expect("open sled")
    }

    pub fn flip_byte(db: &sled::Db, position: u64, offset: usize) {
        let mut v = db.get(event_key(position)).unwrap().unwrap().to_vec();
        let at = 32 + offset.min(v.len() - 33);
        v[at] ^= 0x01;
        db.insert(event_key(position), v).unwrap();
        db.flush().unwrap();
    }

    pub fn put(db: &sled::Db, position: u64, hash: &[u8; 32], bytes: &[u8]) {
        db.insert(event_key(position), stored_value(hash, bytes))
            .unwrap();
        db.flush().unwrap();
    }

    pub fn remove(db: &sled::Db, position: u64) {
        db.remove(event_key(position)).unwrap();
        db.flush().unwrap();
    }

    pub fn swap(db: &sled::Db, a: u64, b: u64) {
        let va = db.get(event_key(a)).unwrap().unwrap();
        let vb = db.get(event_key(b)).unwrap().unwrap();
        db.insert(event_key(a), vb).unwrap();
        db.insert(event_key(b), va).unwrap();
        db.flush().unwrap();
    }
}
