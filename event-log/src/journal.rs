//! The commit journal: what makes a written group durable with one `fdatasync`.
//!
//! sled's own `flush` costs a round of its flusher threads and a `sync_file_range` per call, and
//! still is not durable on its own (sled issue #1452). So each group's records are also appended
//! to this plain file, and a group is durable once the file is `fdatasync`'d. sled is flushed and
//! `fdatasync`'d only at a checkpoint, when the journal is full; the journal then starts again from
//! offset 0, overwriting records that sled now holds durably.
//!
//! A record: `len` (u32 LE, of the event bytes) · `position` (u64 LE) · `hash` (32 bytes) · bytes.
//! At open, the records after sled's last position are replayed into sled. Replay stops at the
//! first record that is torn (its hash is not BLAKE3 of its bytes, or it runs past the end) or
//! that does not follow the previous one: records of an earlier cycle behind the current tail
//! carry lower positions, so they never pass for new ones. Nothing past that point was acknowledged,
//! because acknowledgement waits for the `fdatasync` covering the whole write.
use crate::{chain::hash_of, error::StorageError, storage::StoredEvent};
use std::{
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::Path,
    sync::Mutex,
};

const HEADER: usize = 4 + 8 + 32;

/// Journal bytes written between two checkpoints (a single larger write still goes in whole).
pub(crate) const CAPACITY: u64 = 8 * 1024 * 1024;

pub(crate) struct Journal {
    file: File,
    /// Where the next record goes.
    offset: Mutex<u64>,
}

impl Journal {
    /// Opens (or creates, durably) the journal file at `path`.
    pub fn open(path: &Path) -> Result<Journal, StorageError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StorageError(format!("cannot open {}: {e}", path.display())))?;
        // Written out in full once: overwriting allocated blocks makes each `fdatasync` a data
        // flush only, where extending the file would also commit its size (twice the latency,
        // and a tail of milliseconds).
        let len = file.metadata()?.len();
        if len < CAPACITY {
            let zeros = vec![0u8; 1024 * 1024];
            let mut at = len;
            while at < CAPACITY {
                let n = zeros.len().min((CAPACITY - at) as usize);
                file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            file.sync_all()?;
        }
        if !existed {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(Journal {
            file,
            offset: Mutex::new(0),
        })
    }

    /// The records after `last` (sled's last position), in order, up to the first torn or
    /// out-of-sequence record. Fails if the journal starts past `last + 1`: acknowledged events
    /// would be missing from both sled and the journal.
    pub fn recover(&self, last: u64) -> Result<Vec<StoredEvent>, StorageError> {
        let len = self.file.metadata()?.len() as usize;
        let mut data = vec![0u8; len];
        self.file.read_exact_at(&mut data, 0)?;
        let mut found = Vec::new();
        let mut previous: Option<u64> = None;
        let mut at = 0;
        while let Some((record, next)) = parse(&data, at) {
            match previous {
                None if record.position > last + 1 => {
                    return Err(StorageError(format!(
                        "the journal starts at position {} but the log ends at {last}: \
                         events are missing; restore the data folder from a backup",
                        record.position
                    )))
                }
                Some(p) if record.position != p + 1 => break,
                _ => {}
            }
            previous = Some(record.position);
            if record.position > last {
                found.push(record);
            }
            at = next;
        }
        Ok(found)
    }

    /// Appends the records; `checkpoint` runs first when the journal is full (it must make
    /// everything written to sled durable, so that the journal may start again from offset 0).
    pub fn append<'r>(
        &self,
        records: impl Iterator<Item = (u64, &'r [u8; 32], &'r [u8])>,
        checkpoint: impl FnOnce() -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let mut buf = Vec::new();
        for (position, hash, bytes) in records {
            let len = u32::try_from(bytes.len())
                .map_err(|_| StorageError(format!("position {position}: event too large")))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(&position.to_le_bytes());
            buf.extend_from_slice(hash);
            buf.extend_from_slice(bytes);
        }
        let mut offset = self.offset.lock().expect("journal offset lock");
        if *offset > 0 && *offset + buf.len() as u64 > CAPACITY {
            checkpoint()?;
            *offset = 0;
        }
        self.file.write_all_at(&buf, *offset)?;
        *offset += buf.len() as u64;
        Ok(())
    }

    /// Makes every appended record durable.
    pub fn sync(&self) -> Result<(), StorageError> {
        Ok(self.file.sync_data()?)
    }

    /// Empties the journal (durably); only once sled holds everything durably.
    pub fn reset(&self) -> Result<(), StorageError> {
        let mut offset = self.offset.lock().expect("journal offset lock");
        self.file.write_all_at(&[0u8; HEADER], 0)?;
        self.file.sync_data()?;
        *offset = 0;
        Ok(())
    }

    /// Bytes the journal file takes.
    pub fn size(&self) -> Result<u64, StorageError> {
        Ok(self.file.metadata()?.len())
    }
}

/// The record at `at` if it is whole and intact, with the offset of the next one.
fn parse(data: &[u8], at: usize) -> Option<(StoredEvent, usize)> {
    let header = data.get(at..at + HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let position = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let hash: [u8; 32] = header[12..].try_into().ok()?;
    let bytes = data.get(at + HEADER..at + HEADER + len)?;
    if position == 0 || hash_of(bytes) != hash {
        return None;
    }
    Some((
        StoredEvent {
            position,
            hash,
            bytes: bytes.to_vec(),
        },
        at + HEADER + len,
    ))
}

#[cfg(test)]
mod tests {
    //! What a power loss leaves: the data folder copied while the log runs, after a sync. sled has
    //! not written its buffers yet (no checkpoint), so only the journal holds those events.
    use crate::{hash_of, Record, SledStorage, Storage, WriteBatch};
    use std::path::Path;

    fn batch(from: u64, n: u64, size: usize) -> WriteBatch {
        let records = (from..from + n)
            .map(|position| {
                let bytes = vec![(position % 251) as u8; size];
                Record {
                    position,
                    event_id: uuid::Uuid::new_v4(),
                    patient_id: format!("p{position}"),
                    stream_version: 1,
                    hash: hash_of(&bytes),
                    bytes,
                }
            })
            .collect();
        WriteBatch { records }
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }

    fn positions(storage: &SledStorage) -> Vec<u64> {
        let all = storage.read(1, u64::MAX, usize::MAX).unwrap();
        for e in &all {
            assert_eq!(e.hash, hash_of(&e.bytes), "position {}", e.position);
        }
        all.iter().map(|e| e.position).collect()
    }

    #[test]
    fn synced_events_missing_from_sled_come_back_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStorage::open(&dir.path().join("live")).unwrap();
        live.write(&batch(1, 10, 300)).unwrap();
        live.write(&batch(11, 5, 300)).unwrap();
        live.sync().unwrap();
        let crashed = dir.path().join("crashed");
        copy_dir(&dir.path().join("live"), &crashed);

        // Without the journal, sled alone has lost them: the journal is what makes them durable.
        let no_journal = dir.path().join("no-journal");
        copy_dir(&crashed, &no_journal);
        std::fs::remove_file(no_journal.join("journal")).unwrap();
        assert!(positions(&SledStorage::open(&no_journal).unwrap()).len() < 15);

        let restored = SledStorage::open(&crashed).unwrap();
        assert_eq!(positions(&restored), (1..=15).collect::<Vec<_>>());
        drop(restored);
        // The restore was checkpointed: the events stay after a clean reopen.
        assert_eq!(
            positions(&SledStorage::open(&crashed).unwrap()),
            (1..=15).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_the_rest_restored() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStorage::open(&dir.path().join("live")).unwrap();
        live.write(&batch(1, 4, 300)).unwrap();
        live.sync().unwrap();
        let crashed = dir.path().join("crashed");
        copy_dir(&dir.path().join("live"), &crashed);
        // The fourth record half written: its last bytes never reached the disk.
        let journal = crashed.join("journal");
        let mut data = std::fs::read(&journal).unwrap();
        let record = super::HEADER + 300;
        for b in &mut data[3 * record + record / 2..4 * record] {
            *b = 0;
        }
        std::fs::write(&journal, &data).unwrap();
        assert_eq!(
            positions(&SledStorage::open(&crashed).unwrap()),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn records_of_an_earlier_cycle_are_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStorage::open(&dir.path().join("live")).unwrap();
        // 60 KiB events: the journal fills and starts again from offset 0 several times.
        let per_batch = 20;
        let batches = 2 * super::CAPACITY / (per_batch * 60 * 1024) + 3;
        for b in 0..batches {
            live.write(&batch(1 + b * per_batch, per_batch, 60 * 1024))
                .unwrap();
            live.sync().unwrap();
        }
        let last = batches * per_batch;
        let crashed = dir.path().join("crashed");
        copy_dir(&dir.path().join("live"), &crashed);
        // Behind the current cycle's records lie older ones, with lower positions.
        let journal = std::fs::read(crashed.join("journal")).unwrap();
        let first = u64::from_le_bytes(journal[4..12].try_into().unwrap());
        assert!(first > 1, "the journal has not started again: {first}");
        let restored = SledStorage::open(&crashed).unwrap();
        assert_eq!(positions(&restored), (1..=last).collect::<Vec<_>>());
    }

    #[test]
    fn a_journal_ahead_of_sled_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let live = SledStorage::open(&dir.path().join("live")).unwrap();
        live.write(&batch(1, 3, 300)).unwrap();
        live.sync().unwrap();
        let crashed = dir.path().join("crashed");
        copy_dir(&dir.path().join("live"), &crashed);
        // The first record claims position 2: position 1 would be missing everywhere.
        let journal = crashed.join("journal");
        let mut data = std::fs::read(&journal).unwrap();
        data[4..12].copy_from_slice(&2u64.to_le_bytes());
        std::fs::write(&journal, &data).unwrap();
        let err = SledStorage::open(&crashed).err().expect("refused");
        assert!(err.0.contains("events are missing"), "{err}");
    }
}
