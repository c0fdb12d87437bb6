//! [`Storage`] on sled 0.34, with real durability.
//!
//! One tree, prefixed keys:
//! - `c` + first position (BE) → a chunk: consecutive events of one written group (`chunk.rs`)
//! - `m` + name → meta value
//! - `e` + position (BE) → hash + encoded event: the layout before chunks, moved into chunks at open
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
    chunk::{self, Entry},
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

const CHUNK: u8 = b'c';
/// One event per key: the layout of logs written before chunks.
const LEGACY_EVENT: u8 = b'e';
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
        remove_abandoned_snapshots(dir)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(256 * 1024 * 1024)
            .flush_every_ms(None);
        let db = open_when_unlocked(|| config.open())
            .map_err(|e| StorageError(format!("cannot open the log in {}: {e}", dir.display())))?;
        let db_file = File::open(dir.join("db"))?;
        let storage = SledStorage {
            db,
            db_file,
            blobs_dir: dir.join("blobs"),
            synced_blobs: Mutex::new(HashSet::new()),
            journal: Journal::open(&dir.join("journal"))?,
        };
        storage.migrate_legacy_events()?;
        storage.reconcile()?;
        // Whatever a previous process left in the page cache is made durable before we serve it.
        storage.checkpoint()?;
        storage.journal.reset()?;
        File::open(dir)?.sync_all()?;
        Ok(storage)
    }

    /// Moves events stored one per key (logs written before chunks) into one-event chunks.
    fn migrate_legacy_events(&self) -> Result<(), StorageError> {
        let mut moved = 0u64;
        for kv in self.db.scan_prefix([LEGACY_EVENT]) {
            let (key, value) = kv?;
            let position = u64_of(&key[1..])?;
            if value.len() < 32 {
                return Err(StorageError(format!(
                    "position {position}: truncated record"
                )));
            }
            let hash: &[u8; 32] = value[..32].try_into().expect("32 bytes");
            self.insert_chunks([Entry {
                position,
                hash,
                bytes: &value[32..],
            }])?;
            self.db.remove(key)?;
            moved += 1;
        }
        if moved > 0 {
            tracing::info!(events = moved, "moved the log's events into chunks");
        }
        Ok(())
    }

    /// After a crash, brings sled to exactly the acknowledged events: everything past the last
    /// checkpoint is replaced by the journal's whole frames. That puts back what sled lost, and
    /// drops what it kept but no journal `fdatasync` covered (never acknowledged; a group must
    /// not survive in part).
    fn reconcile(&self) -> Result<(), StorageError> {
        let last = self.last_position()?;
        // Before the journal existed, sled was made durable at every sync.
        let checkpoint = match self.meta(CHECKPOINT)? {
            Some(v) => u64_of(&v)?,
            None => last,
        };
        let frames: Vec<Vec<StoredEvent>> = self
            .journal
            .recover()?
            .into_iter()
            .filter(|f| f.last().is_some_and(|r| r.position > checkpoint))
            .collect();
        if let Some(first) = frames.first().and_then(|f| f.first()) {
            if first.position > checkpoint + 1 {
                return Err(StorageError(format!(
                    "the commit journal starts at position {} but sled was checkpointed at {checkpoint}: \
                     events are missing; restore the data folder from a backup",
                    first.position
                )));
            }
        }
        let journal_end = frames.last().and_then(|f| f.last()).map(|r| r.position);
        if last.max(journal_end.unwrap_or(0)) < checkpoint {
            tracing::error!(
                last,
                checkpoint,
                "the log ends before its last checkpoint: events were removed; run `journey verify` with an anchor"
            );
        }
        if last == checkpoint && frames.is_empty() {
            return Ok(());
        }
        // Chunks never span two groups, and a checkpoint falls between groups.
        self.remove_chunks_from(checkpoint + 1)?;
        tracing::info!(
            checkpoint,
            sled_last = last,
            journal_end,
            "after a crash: the log past its checkpoint is the commit journal's whole groups"
        );
        for frame in &frames {
            let entries = frame
                .iter()
                .filter(|r| r.position > checkpoint)
                .map(|r| Entry {
                    position: r.position,
                    hash: &r.hash,
                    bytes: &r.bytes,
                });
            self.insert_chunks(entries)?;
        }
        Ok(())
    }

    /// Drops every event after position `keep` and makes that durable; returns how many were
    /// dropped. Only for a log no writer holds open: a writer that lost its role drops the tail
    /// its successor's stream does not hold (events never acknowledged) before it follows it.
    pub fn truncate_after(&self, keep: u64) -> Result<u64, StorageError> {
        let last = self.last_position()?;
        if keep >= last {
            return Ok(0);
        }
        // The chunk holding `keep + 1` may begin at or before `keep`: it keeps its head.
        let holding = self
            .db
            .range(chunk_key(0)..=chunk_key(keep + 1))
            .next_back()
            .transpose()?;
        if let Some((key, value)) = holding {
            let entries = chunk::entries(&value)?;
            if entries.first().is_some_and(|e| e.position <= keep) {
                self.db.remove(&key)?;
                self.insert_chunks(entries.into_iter().filter(|e| e.position <= keep))?;
            }
        }
        self.remove_chunks_from(keep + 1)?;
        self.checkpoint()?;
        self.journal.reset()?;
        Ok(last - keep)
    }

    /// Removes the chunks that begin at `first` or after.
    fn remove_chunks_from(&self, first: u64) -> Result<(), StorageError> {
        let past: Vec<_> = self
            .db
            .range(chunk_key(first)..=chunk_key(u64::MAX))
            .keys()
            .collect::<Result<_, _>>()?;
        for key in past {
            self.db.remove(key)?;
        }
        Ok(())
    }

    fn insert_chunks<'a>(
        &self,
        entries: impl IntoIterator<Item = Entry<'a>>,
    ) -> Result<(), StorageError> {
        for (first, value) in chunk::chunks(entries) {
            self.db.insert(chunk_key(first), value)?;
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

/// How old an empty snapshot must be to count as abandoned: a running sled writes its snapshot in
/// far less, so one in the making is never touched.
const ABANDONED_SNAPSHOT_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the empty snapshot files (`snap.<lsn>.generating`) sled leaves when it cannot write one
/// (a start on a full disk). sled refuses to open beside one ("Read corrupted data"), although
/// the log is intact, and a snapshot is only an index sled rebuilds from its own log.
fn remove_abandoned_snapshots(dir: &Path) -> Result<(), StorageError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with("snap.") && name.ends_with(".generating")) {
            continue;
        }
        let meta = entry.metadata()?;
        let age = meta.modified()?.elapsed().unwrap_or_default();
        if meta.len() == 0 && age >= ABANDONED_SNAPSHOT_AGE {
            tracing::warn!(file = %entry.path().display(), "removing an empty snapshot sled abandoned (a full disk?)");
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Opens sled, waiting up to 2 s for its file lock: a log closed in this process a moment ago
/// releases it only once sled's I/O threads let go of it.
fn open_when_unlocked(open: impl Fn() -> sled::Result<sled::Db>) -> sled::Result<sled::Db> {
    let mut tries = 0;
    loop {
        match open() {
            Err(sled::Error::Io(e)) if e.to_string().contains("lock") && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

fn chunk_key(first: u64) -> [u8; 9] {
    let mut k = [CHUNK; 9];
    k[1..].copy_from_slice(&first.to_be_bytes());
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

impl Storage for SledStorage {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        // The journal frame, not a sled batch, keeps the group whole across a crash
        // (`reconcile`): a sled batch would cost two extra log-buffer writes.
        self.insert_chunks(batch.records.iter().map(|r| Entry {
            position: r.position,
            hash: &r.hash,
            bytes: &r.bytes,
        }))?;
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
        match self.db.scan_prefix([CHUNK]).next_back() {
            Some(kv) => {
                let (_, value) = kv?;
                Ok(chunk::entries(&value)?.last().map_or(0, |e| e.position))
            }
            None => Ok(0),
        }
    }

    fn read(&self, from: u64, to: u64, limit: usize) -> Result<Vec<StoredEvent>, StorageError> {
        if from > to || limit == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(limit.min((to - from + 1) as usize).min(4096));
        // Start at the chunk holding `from`, which may begin before it.
        let start = match self
            .db
            .range(chunk_key(0)..=chunk_key(from))
            .keys()
            .next_back()
        {
            Some(key) => key?,
            None => chunk_key(from).as_slice().into(),
        };
        for kv in self.db.range(start..=chunk_key(to).as_slice().into()) {
            let (_, value) = kv?;
            for e in chunk::entries(&value)? {
                if e.position < from {
                    continue;
                }
                if e.position > to || out.len() == limit {
                    return Ok(out);
                }
                out.push(e.stored());
            }
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
        open_when_unlocked(|| sled::open(dir)).expect("open sled")
    }

    /// An event taken out of its chunk: (position, hash, bytes).
    type Owned = (u64, [u8; 32], Vec<u8>);

    /// The chunk holding `position`: its key and its events.
    fn holding(db: &sled::Db, position: u64) -> (sled::IVec, Vec<Owned>) {
        let (key, value) = db
            .range(chunk_key(0)..=chunk_key(position))
            .next_back()
            .expect("a chunk")
            .unwrap();
        let events = chunk::entries(&value)
            .unwrap()
            .iter()
            .map(|e| (e.position, *e.hash, e.bytes.to_vec()))
            .collect();
        (key, events)
    }

    fn rewrite(db: &sled::Db, key: sled::IVec, events: &[Owned]) {
        db.remove(key).unwrap();
        for (first, value) in chunk::chunks(events.iter().map(|(position, hash, bytes)| Entry {
            position: *position,
            hash,
            bytes,
        })) {
            db.insert(chunk_key(first), value).unwrap();
        }
        db.flush().unwrap();
    }

    pub fn flip_byte(db: &sled::Db, position: u64, offset: usize) {
        let (key, mut events) = holding(db, position);
        let e = events.iter_mut().find(|e| e.0 == position).unwrap();
        let at = offset.min(e.2.len() - 1);
        e.2[at] ^= 0x01;
        rewrite(db, key, &events);
    }

    pub fn put(db: &sled::Db, position: u64, hash: &[u8; 32], bytes: &[u8]) {
        rewrite(
            db,
            chunk_key(position).as_slice().into(),
            &[(position, *hash, bytes.to_vec())],
        );
    }

    pub fn remove(db: &sled::Db, position: u64) {
        let (key, mut events) = holding(db, position);
        events.retain(|e| e.0 != position);
        rewrite(db, key, &events);
    }

    /// Exchanges the stored hash and bytes of two positions.
    pub fn swap(db: &sled::Db, a: u64, b: u64) {
        let (key_a, mut events_a) = holding(db, a);
        let ia = events_a.iter().position(|e| e.0 == a).unwrap();
        let taken_a = (events_a[ia].1, events_a[ia].2.clone());
        let (key_b, mut events_b) = holding(db, b);
        let ib = events_b.iter().position(|e| e.0 == b).unwrap();
        let taken_b = (events_b[ib].1, std::mem::take(&mut events_b[ib].2));
        (events_b[ib].1, events_b[ib].2) = taken_a;
        if key_a == key_b {
            (events_b[ia].1, events_b[ia].2) = taken_b;
            rewrite(db, key_b, &events_b);
        } else {
            (events_a[ia].1, events_a[ia].2) = taken_b;
            rewrite(db, key_a, &events_a);
            rewrite(db, key_b, &events_b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_of;

    #[test]
    fn a_log_stored_one_event_per_key_is_moved_into_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<Vec<u8>> = (1..=3u8).map(|i| vec![i; 50]).collect();
        {
            let db = sled::open(dir.path()).unwrap();
            for (i, bytes) in events.iter().enumerate() {
                let mut key = vec![LEGACY_EVENT];
                key.extend_from_slice(&(i as u64 + 1).to_be_bytes());
                let mut value = hash_of(bytes).to_vec();
                value.extend_from_slice(bytes);
                db.insert(key, value).unwrap();
            }
            db.flush().unwrap();
        }
        let storage = SledStorage::open(dir.path()).unwrap();
        let read = storage.read(1, 10, 10).unwrap();
        assert_eq!(
            read.iter().map(|e| e.position).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        for (e, bytes) in read.iter().zip(&events) {
            assert_eq!((&e.bytes, e.hash), (bytes, hash_of(bytes)));
        }
        assert_eq!(storage.last_position().unwrap(), 3);
        assert_eq!(storage.db.scan_prefix([LEGACY_EVENT]).count(), 0);
    }

    #[test]
    fn reads_start_inside_a_chunk_and_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(dir.path()).unwrap();
        let bytes: Vec<Vec<u8>> = (0..200u64).map(|i| vec![i as u8; 20]).collect();
        let hashes: Vec<[u8; 32]> = bytes.iter().map(|b| hash_of(b)).collect();
        storage
            .insert_chunks((0..200).map(|i| Entry {
                position: i as u64 + 1,
                hash: &hashes[i],
                bytes: &bytes[i],
            }))
            .unwrap();
        let positions = |from, to, limit| -> Vec<u64> {
            storage
                .read(from, to, limit)
                .unwrap()
                .iter()
                .map(|e| e.position)
                .collect()
        };
        assert_eq!(positions(70, 72, 10), [70, 71, 72]);
        assert_eq!(positions(60, 200, 10), (60..70).collect::<Vec<_>>());
        assert_eq!(positions(128, 129, 5), [128, 129]);
        assert_eq!(positions(200, 300, 5), [200]);
        assert!(positions(201, 300, 5).is_empty());
        assert_eq!(storage.last_position().unwrap(), 200);
    }
}
