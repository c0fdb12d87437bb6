//! The commit journal: what makes a written group durable with one `fdatasync`.
//!
//! sled's own `flush` costs a round of its I/O threads and a `sync_file_range` per call, and still
//! is not durable on its own (sled issue #1452). So each written group is also appended to this
//! plain file as one frame, and the group is durable once the file is `fdatasync`'d. sled is
//! flushed and `fdatasync`'d only at a checkpoint, when the journal is full; the journal then
//! starts again from offset 0, overwriting frames that sled now holds durably.
//!
//! Each sync writes the frames appended since the previous one in a single write, padded to whole
//! 4 KiB blocks by a padding frame, with `O_DIRECT | O_DSYNC`: the write returns once the blocks are
//! on stable storage, about half the latency of a buffered write followed by `fdatasync` (and a
//! much shorter tail). Filesystems without `O_DIRECT` get the buffered write and `fdatasync`.
//!
//! A frame: `payload length` (u32 LE) · `first position` (u64 LE) · `count` (u32 LE) · BLAKE3 of
//! the payload (32 bytes) · payload; the payload is `count` records, each `length` (u32 LE) ·
//! `hash` (32 bytes) · the event bytes, at consecutive positions. At open, the chain of frames
//! from offset 0 is read up to the first frame that is torn (its payload does not match its hash,
//! or runs past the end) or that does not follow the previous one: frames of an earlier cycle
//! behind the current tail carry lower positions, so they never pass for new ones. A frame is
//! whole or ignored, so a group (and every request in it) is restored whole or not at all; nothing
//! past the chain was acknowledged, because acknowledgement waits for the `fdatasync` covering it.
use crate::{error::StorageError, hash_of, storage::StoredEvent};
use std::{
    fs::{File, OpenOptions},
    os::unix::fs::{FileExt, OpenOptionsExt},
    path::Path,
    sync::Mutex,
};

const FRAME_HEADER: usize = 4 + 8 + 4 + 32;
const RECORD_HEADER: usize = 4 + 32;

/// Journal bytes written between two checkpoints (a single larger write still goes in whole).
pub(crate) const CAPACITY: u64 = 8 * 1024 * 1024;
/// Writes start and end on block boundaries (what `O_DIRECT` requires).
const BLOCK: usize = 4096;

pub(crate) struct Journal {
    /// Buffered: reading at open, and writing where `O_DIRECT` is refused.
    file: File,
    /// The same file opened `O_DIRECT | O_DSYNC`, when the filesystem allows it.
    direct: Option<File>,
    state: Mutex<State>,
    /// Held during a write: a checkpoint waits for the write in progress before the journal
    /// starts again from offset 0.
    io: Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Frames appended since the last sync.
    pending: Vec<u8>,
    /// Where the next sync writes (a block boundary).
    offset: u64,
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
            .mode(0o600) // patient data: the owner's only, whatever the umask
            .open(path)
            .map_err(|e| StorageError(format!("cannot open {}: {e}", path.display())))?;
        // Written out in full once: overwriting allocated blocks makes each sync a data flush
        // only, where extending the file would also commit its size.
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
        let direct = open_direct(path, &file);
        Ok(Journal {
            file,
            direct,
            state: Mutex::new(State::default()),
            io: Mutex::new(()),
        })
    }

    /// The chain of whole, consecutive frames from offset 0, in order: each frame is one written
    /// group's records.
    pub fn recover(&self) -> Result<Vec<Vec<StoredEvent>>, StorageError> {
        let len = self.file.metadata()?.len() as usize;
        let mut data = vec![0u8; len];
        self.file.read_exact_at(&mut data, 0)?;
        let mut found: Vec<Vec<StoredEvent>> = Vec::new();
        let mut at = 0;
        while let Some((records, next)) = frame(&data, at) {
            at = next;
            if records.is_empty() {
                continue; // padding to the end of a block
            }
            let follows = match found.last().and_then(|f| f.last()) {
                None => true,
                Some(last) => records[0].position == last.position + 1,
            };
            if !follows {
                break;
            }
            found.push(records);
        }
        Ok(found)
    }

    /// Appends the records, consecutive positions, as one frame; `checkpoint` runs first when the
    /// journal is full (it must make everything written to sled durable, so that the journal may
    /// start again from offset 0).
    pub fn append<'r>(
        &self,
        records: impl ExactSizeIterator<Item = (u64, &'r [u8; 32], &'r [u8])>,
        checkpoint: impl FnOnce() -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        let count = records.len();
        if count == 0 {
            return Ok(());
        }
        let mut buf = vec![0u8; FRAME_HEADER];
        let mut first = None;
        for (position, hash, bytes) in records {
            first.get_or_insert(position);
            let len = u32::try_from(bytes.len())
                .map_err(|_| StorageError(format!("position {position}: event too large")))?;
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(hash);
            buf.extend_from_slice(bytes);
        }
        let payload_len = u32::try_from(buf.len() - FRAME_HEADER)
            .map_err(|_| StorageError("a written group over 4 GiB".into()))?;
        let payload_hash = hash_of(&buf[FRAME_HEADER..]);
        buf[..4].copy_from_slice(&payload_len.to_le_bytes());
        buf[4..12].copy_from_slice(&first.unwrap_or_default().to_le_bytes());
        buf[12..16].copy_from_slice(&(count as u32).to_le_bytes());
        buf[16..FRAME_HEADER].copy_from_slice(&payload_hash);

        let mut state = self.state.lock().expect("journal state lock");
        let end = state.offset + (state.pending.len() + buf.len() + 2 * BLOCK) as u64;
        if end > CAPACITY && (state.offset > 0 || !state.pending.is_empty()) {
            let _io = self.io.lock().expect("journal io lock");
            // sled now holds every group durably, those still pending included.
            checkpoint()?;
            *state = State::default();
        }
        state.pending.extend_from_slice(&buf);
        Ok(())
    }

    /// Makes every appended frame durable: one write of whole blocks.
    pub fn sync(&self) -> Result<(), StorageError> {
        let (mut buf, at) = {
            let mut state = self.state.lock().expect("journal state lock");
            if state.pending.is_empty() {
                return Ok(());
            }
            let mut buf = std::mem::take(&mut state.pending);
            pad(&mut buf);
            let at = state.offset;
            state.offset += buf.len() as u64;
            (buf, at)
        };
        let _io = self.io.lock().expect("journal io lock");
        self.write_durably(&mut buf, at)
    }

    fn write_durably(&self, buf: &mut Vec<u8>, at: u64) -> Result<(), StorageError> {
        match &self.direct {
            Some(direct) => {
                // O_DIRECT wants the memory aligned too: copy into an aligned window.
                let len = buf.len();
                buf.resize(2 * len + BLOCK, 0);
                let start = len + buf[len..].as_ptr().align_offset(BLOCK);
                buf.copy_within(..len, start);
                direct.write_all_at(&buf[start..start + len], at)?;
            }
            None => {
                self.file.write_all_at(buf, at)?;
                self.file.sync_data()?;
            }
        }
        Ok(())
    }

    /// Empties the journal (durably); only once sled holds everything durably.
    pub fn reset(&self) -> Result<(), StorageError> {
        let mut state = self.state.lock().expect("journal state lock");
        let _io = self.io.lock().expect("journal io lock");
        *state = State::default();
        self.write_durably(&mut vec![0u8; BLOCK], 0)
    }

    /// Bytes the journal file takes.
    pub fn size(&self) -> Result<u64, StorageError> {
        Ok(self.file.metadata()?.len())
    }
}

/// Pads `buf` to whole blocks with a padding frame (no records; its payload is zeros).
fn pad(buf: &mut Vec<u8>) {
    let mut pad = (BLOCK - buf.len() % BLOCK) % BLOCK;
    if pad == 0 {
        return;
    }
    if pad < FRAME_HEADER {
        pad += BLOCK;
    }
    let len = pad - FRAME_HEADER;
    let zeros = vec![0u8; len];
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&[0u8; 12]); // first position 0, count 0
    buf.extend_from_slice(&hash_of(&zeros));
    buf.extend_from_slice(&zeros);
}

/// The journal opened for durable direct writes, if the filesystem supports them. Probed by
/// writing the file's last block back as it is (it may hold frames still to recover).
fn open_direct(path: &Path, buffered: &File) -> Option<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
        .open(path)
        .ok()?;
    let mut block = vec![0u8; 2 * BLOCK];
    let start = block.as_ptr().align_offset(BLOCK);
    let probe = &mut block[start..start + BLOCK];
    let at = CAPACITY - BLOCK as u64;
    buffered.read_exact_at(probe, at).ok()?;
    match file.write_all_at(probe, at) {
        Ok(()) => Some(file),
        Err(e) => {
            tracing::info!(error = %e, "the journal's filesystem refuses O_DIRECT: writes are buffered, then fdatasync'd");
            None
        }
    }
}

/// The records of the frame at `at` if it is whole and intact, with the offset of the next frame.
fn frame(data: &[u8], at: usize) -> Option<(Vec<StoredEvent>, usize)> {
    let header = data.get(at..at + FRAME_HEADER)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let first = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let count = u32::from_le_bytes(header[12..16].try_into().ok()?) as u64;
    let payload = data.get(at + FRAME_HEADER..at + FRAME_HEADER + len)?;
    if hash_of(payload) != header[16..FRAME_HEADER] {
        return None;
    }
    if first == 0 && count == 0 {
        return Some((Vec::new(), at + FRAME_HEADER + len));
    }
    if first == 0 || count == 0 {
        return None;
    }
    let mut records = Vec::with_capacity(count as usize);
    let mut rest = payload;
    for position in first..first + count {
        let head = rest.get(..RECORD_HEADER)?;
        let n = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
        let bytes = rest.get(RECORD_HEADER..RECORD_HEADER + n)?;
        records.push(StoredEvent {
            position,
            hash: head[4..].try_into().ok()?,
            bytes: bytes.to_vec(),
        });
        rest = &rest[RECORD_HEADER + n..];
    }
    rest.is_empty()
        .then_some((records, at + FRAME_HEADER + len))
}

#[cfg(test)]
mod tests {
    //! What a power loss leaves: the data folder copied while the log runs, after a sync. sled has
    //! not written its buffers yet (no checkpoint), so only the journal holds those events.
    use crate::{hash_of, sled_storage::tamper, Record, SledStorage, Storage, WriteBatch};
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
                // sled may remove a blob file it no longer needs while we copy.
                match std::fs::copy(entry.path(), to.join(entry.file_name())) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => {
                        other.unwrap();
                    }
                }
            }
        }
    }

    /// Runs `work` on a live log in `dir`, then copies its folder as a power loss would leave it
    /// (the log still open, sled's buffers unwritten); returns the copy.
    fn crashed_copy(dir: &Path, work: impl FnOnce(&SledStorage)) -> std::path::PathBuf {
        let live = SledStorage::open(&dir.join("live")).unwrap();
        work(&live);
        let crashed = dir.join("crashed");
        copy_dir(&dir.join("live"), &crashed);
        crashed
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
        synced_events_come_back(tempfile::tempdir().unwrap());
    }

    /// Where the filesystem refuses `O_DIRECT`: buffered writes, then `fdatasync`.
    #[test]
    fn frames_written_without_o_direct_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = super::Journal::open(&dir.path().join("journal")).unwrap();
        journal.direct = None;
        let events = batch(1, 3, 300);
        for (i, r) in events.records.iter().enumerate() {
            let one = std::iter::once((r.position, &r.hash, r.bytes.as_slice()));
            journal.append(one, || unreachable!("not full")).unwrap();
            if i != 1 {
                journal.sync().unwrap();
            }
        }
        drop(journal);
        let reopened = super::Journal::open(&dir.path().join("journal")).unwrap();
        let frames = reopened.recover().unwrap();
        let positions: Vec<Vec<u64>> = frames
            .iter()
            .map(|f| f.iter().map(|r| r.position).collect())
            .collect();
        assert_eq!(positions, [vec![1], vec![2], vec![3]]);
        assert_eq!(frames[2][0].bytes, events.records[2].bytes);
    }

    fn synced_events_come_back(dir: tempfile::TempDir) {
        let crashed = crashed_copy(dir.path(), |live| {
            live.write(&batch(1, 10, 300)).unwrap();
            live.write(&batch(11, 5, 300)).unwrap();
            live.sync().unwrap();
        });

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
    fn a_torn_frame_is_dropped_whole_and_the_frames_before_it_restored() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = crashed_copy(dir.path(), |live| {
            live.write(&batch(1, 2, 300)).unwrap();
            live.write(&batch(3, 2, 300)).unwrap();
            live.write(&batch(5, 3, 300)).unwrap();
            live.sync().unwrap();
        });
        // The third frame half written: its last bytes never reached the disk.
        let journal = crashed.join("journal");
        let mut data = std::fs::read(&journal).unwrap();
        let frame = |events: usize| super::FRAME_HEADER + events * (super::RECORD_HEADER + 300);
        let third = 2 * frame(2);
        for b in &mut data[third + frame(3) / 2..third + frame(3)] {
            *b = 0;
        }
        std::fs::write(&journal, &data).unwrap();
        // None of the torn group's events come back, not even those wholly written.
        assert_eq!(
            positions(&SledStorage::open(&crashed).unwrap()),
            vec![1, 2, 3, 4]
        );
    }

    #[test]
    fn events_sled_kept_but_no_sync_covered_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let crashed = crashed_copy(dir.path(), |live| {
            live.write(&batch(1, 3, 300)).unwrap();
            live.sync().unwrap();
        });
        // sled wrote a later group to its files on its own, but the crash came before the
        // journal's fdatasync: that group was never acknowledged.
        {
            let db = tamper::raw(&crashed);
            let (synced, later) = (batch(1, 3, 300), batch(4, 2, 300));
            for r in synced.records.iter().chain(&later.records) {
                tamper::put(&db, r.position, &r.hash, &r.bytes);
            }
        }
        assert_eq!(
            positions(&SledStorage::open(&crashed).unwrap()),
            vec![1, 2, 3]
        );
    }

    #[test]
    fn records_of_an_earlier_cycle_are_never_replayed() {
        let dir = tempfile::tempdir().unwrap();
        // 60 KiB events: the journal fills and starts again from offset 0 several times.
        let per_batch = 20;
        let batches = 2 * super::CAPACITY / (per_batch * 60 * 1024) + 3;
        let crashed = crashed_copy(dir.path(), |live| {
            for b in 0..batches {
                live.write(&batch(1 + b * per_batch, per_batch, 60 * 1024))
                    .unwrap();
                live.sync().unwrap();
            }
        });
        let last = batches * per_batch;
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
        let crashed = crashed_copy(dir.path(), |live| {
            live.write(&batch(1, 3, 300)).unwrap();
            live.sync().unwrap();
        });
        // The first record claims position 2: position 1 would be missing everywhere.
        let journal = crashed.join("journal");
        let mut data = std::fs::read(&journal).unwrap();
        data[4..12].copy_from_slice(&2u64.to_le_bytes());
        std::fs::write(&journal, &data).unwrap();
        let err = SledStorage::open(&crashed).err().expect("refused");
        assert!(err.0.contains("events are missing"), "{err}");
    }
}
