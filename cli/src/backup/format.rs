//! A backup folder on disk: `events.log`, the stored events in position order, and
//! `manifest.json`, written last and atomically, which says what the events file must hold.
//!
//! Each record of `events.log`: position (u64, big-endian), chain hash (32 bytes), length of the
//! stored encoding (u32, big-endian), the stored encoding itself (the bytes the hash covers).
use anyhow::{bail, Context};
use journey_event_log::{Head, StoredEvent};
use journey_proto::hex::{hex, unhex};
use serde_json::{json, Value};
use std::{
    fs::{File, OpenOptions},
    io::{BufReader, BufWriter, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

pub const EVENTS: &str = "events.log";
pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "journey-backup/1";
/// Position, hash and length before each event's bytes.
const RECORD_HEAD: usize = 8 + 32 + 4;

/// What a backup holds: events `from_position..=head.position`, the first linking to `prev`.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub from_position: u64,
    /// The chain head before the first event (position 0 and zeros for a full backup).
    pub prev: Head,
    pub head: Head,
    pub events: u64,
    pub events_bytes: u64,
    /// RFC 3339, UTC.
    pub taken_at: String,
    pub program: String,
}

impl Manifest {
    fn to_json(&self) -> Value {
        json!({
            "format": FORMAT,
            "from_position": self.from_position,
            "prev_position": self.prev.position,
            "prev_hash": hex(&self.prev.hash),
            "head_position": self.head.position,
            "head_hash": hex(&self.head.hash),
            "events": self.events,
            "events_file": EVENTS,
            "events_bytes": self.events_bytes,
            "taken_at": self.taken_at,
            "program": self.program,
        })
    }

    /// Reads `dir/manifest.json`, saying which field is wrong.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{} has no readable {MANIFEST}: it is not a finished backup (a backup writes its manifest last)",
                dir.display()
            )
        })?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if v["format"] != FORMAT {
            bail!("{}: format {} is not {FORMAT}", path.display(), v["format"]);
        }
        let number = |k: &str| {
            v[k].as_u64()
                .with_context(|| format!("{}: \"{k}\" is missing or not a number", path.display()))
        };
        let hash = |k: &str| -> anyhow::Result<[u8; 32]> {
            v[k].as_str()
                .and_then(unhex)
                .and_then(|h| h.as_slice().try_into().ok())
                .with_context(|| format!("{}: \"{k}\" is not 64 hex digits", path.display()))
        };
        Ok(Manifest {
            from_position: number("from_position")?,
            prev: Head {
                position: number("prev_position")?,
                hash: hash("prev_hash")?,
            },
            head: Head {
                position: number("head_position")?,
                hash: hash("head_hash")?,
            },
            events: number("events")?,
            events_bytes: number("events_bytes")?,
            taken_at: v["taken_at"].as_str().unwrap_or_default().to_string(),
            program: v["program"].as_str().unwrap_or_default().to_string(),
        })
    }

    /// Writes `dir/manifest.json` atomically: a temporary file, fsync, rename, fsync of the folder.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        let mut file = private_file(&tmp)?;
        let text = serde_json::to_string_pretty(&self.to_json())?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, dir.join(MANIFEST))
            .with_context(|| format!("cannot rename {}", tmp.display()))?;
        File::open(dir)?.sync_all()?;
        Ok(())
    }
}

fn private_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// Appends records to a new `events.log`.
pub struct EventsWriter {
    file: BufWriter<File>,
    pub bytes: u64,
}

impl EventsWriter {
    pub fn create(dir: &Path) -> anyhow::Result<EventsWriter> {
        Ok(EventsWriter {
            file: BufWriter::with_capacity(1 << 20, private_file(&dir.join(EVENTS))?),
            bytes: 0,
        })
    }

    pub fn write(&mut self, e: &StoredEvent) -> anyhow::Result<()> {
        let len = u32::try_from(e.bytes.len()).context("an event over 4 GiB")?;
        self.file.write_all(&e.position.to_be_bytes())?;
        self.file.write_all(&e.hash)?;
        self.file.write_all(&len.to_be_bytes())?;
        self.file.write_all(&e.bytes)?;
        self.bytes += (RECORD_HEAD + e.bytes.len()) as u64;
        Ok(())
    }

    /// Flushes and fsyncs the file.
    pub fn finish(self) -> anyhow::Result<()> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    }
}

/// Reads the records of a backup's `events.log`, checking first that it has the manifest's length.
pub struct EventsReader {
    file: BufReader<File>,
    path: PathBuf,
    offset: u64,
}

impl EventsReader {
    pub fn open(dir: &Path, manifest: &Manifest) -> anyhow::Result<EventsReader> {
        let path = dir.join(EVENTS);
        let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file.metadata()?.len();
        if len < manifest.events_bytes {
            bail!(
                "{} is truncated: it holds {len} bytes, its manifest says {}",
                path.display(),
                manifest.events_bytes
            );
        }
        if len > manifest.events_bytes {
            bail!(
                "{} holds {len} bytes, more than the {} its manifest says: it is not the file the backup wrote",
                path.display(),
                manifest.events_bytes
            );
        }
        Ok(EventsReader {
            file: BufReader::with_capacity(1 << 20, file),
            path,
            offset: 0,
        })
    }

    /// The next record; `None` at the end of the file.
    pub fn next_event(&mut self) -> anyhow::Result<Option<StoredEvent>> {
        let mut head = [0u8; RECORD_HEAD];
        let got = read_full(&mut self.file, &mut head)?;
        if got == 0 {
            return Ok(None);
        }
        if got < RECORD_HEAD {
            return Err(self.cut());
        }
        let position = u64::from_be_bytes(head[..8].try_into().expect("8 bytes"));
        let hash: [u8; 32] = head[8..40].try_into().expect("32 bytes");
        let len = u32::from_be_bytes(head[40..].try_into().expect("4 bytes")) as usize;
        let mut bytes = vec![0u8; len];
        if read_full(&mut self.file, &mut bytes)? < len {
            return Err(self.cut());
        }
        self.offset += (RECORD_HEAD + len) as u64;
        Ok(Some(StoredEvent {
            position,
            hash,
            bytes,
        }))
    }

    fn cut(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "{} ends in the middle of the record at byte {}: the file is damaged",
            self.path.display(),
            self.offset
        )
    }
}

/// Reads until `buf` is full or the file ends; how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}
