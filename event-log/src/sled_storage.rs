//! [`Storage`] on sled 0.34, with real durability.
//!
//! One tree, prefixed keys, so that a batch of events and all their index entries is one
//! `apply_batch` (atomic across crashes):
//! - `e` + position (BE) → hash (32 bytes) + encoded event
//! - `i` + event id (16 bytes) → position (BE)
//! - `p` + patient id length (u16 BE) + patient id + stream version (BE) → position (BE)
//! - `m` + name → meta value
//!
//! Why the extra fsync: sled 0.34 `flush` writes its log with `sync_file_range`, which neither
//! flushes the drive cache nor file metadata (sled issue #1452), and it never syncs blob files
//! (values too large for a log segment). [`SledStorage::sync`] therefore flushes sled, then
//! `fdatasync`s the `db` file and every blob file not yet synced.
use crate::{
    error::StorageError,
    storage::{Storage, StoredEvent, WriteBatch},
};
use std::{
    collections::HashSet,
    fs::File,
    path::{Path, PathBuf},
    sync::Mutex,
};
use uuid::Uuid;

const EVENT: u8 = b'e';
const BY_ID: u8 = b'i';
const BY_PATIENT: u8 = b'p';
const META: u8 = b'm';

pub struct SledStorage {
    db: sled::Db,
    db_file: File,
    blobs_dir: PathBuf,
    synced_blobs: Mutex<HashSet<std::ffi::OsString>>,
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
        };
        // Whatever a previous process left in the page cache is made durable before we serve it.
        storage.sync()?;
        File::open(dir)?.sync_all()?;
        Ok(storage)
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
            File::open(entry.path())?.sync_data()?;
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

fn id_key(id: &Uuid) -> [u8; 17] {
    let mut k = [BY_ID; 17];
    k[1..].copy_from_slice(id.as_bytes());
    k
}

fn patient_prefix(patient_id: &str) -> Vec<u8> {
    let len = u16::try_from(patient_id.len()).unwrap_or(u16::MAX);
    let mut k = Vec::with_capacity(3 + patient_id.len() + 8);
    k.push(BY_PATIENT);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(patient_id.as_bytes());
    k
}

fn patient_key(patient_id: &str, version: u64) -> Vec<u8> {
    let mut k = patient_prefix(patient_id);
    k.extend_from_slice(&version.to_be_bytes());
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
        let mut b = sled::Batch::default();
        let mut value = Vec::new();
        for r in &batch.records {
            let pos = r.position.to_be_bytes();
            value.clear();
            value.extend_from_slice(&r.hash);
            value.extend_from_slice(&r.bytes);
            b.insert(&event_key(r.position)[..], value.as_slice());
            b.insert(&id_key(&r.event_id)[..], &pos[..]);
            b.insert(patient_key(&r.patient_id, r.stream_version), &pos[..]);
        }
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        self.db_file.sync_data()?;
        self.sync_new_blobs()
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

    fn position_of(&self, event_id: &Uuid) -> Result<Option<u64>, StorageError> {
        self.db
            .get(id_key(event_id))?
            .map(|v| u64_of(&v))
            .transpose()
    }

    fn patient_positions(
        &self,
        patient_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError> {
        let start = patient_key(patient_id, from_version);
        let end = patient_key(patient_id, u64::MAX);
        self.db
            .range(start..=end)
            .take(limit)
            .map(|kv| u64_of(&kv?.1))
            .collect()
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(meta_key(key))?.map(|v| v.to_vec()))
    }

    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.db.insert(meta_key(key), value)?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StorageError> {
        Ok(self.db.size_on_disk()?)
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
