//! The checkpoint of an orderly stop: the writer's state (chain tip, stream versions, id index)
//! and the gate's, saved in one file so that the next open reads back only the events after it.
//! Without it (a first start, a crash, another version of the program, a checkpoint that does
//! not match the log) the open reads every event, as before: a checkpoint only ever saves time.
//!
//! The checkpoint names the position and hash it was taken at; it is used only when the log still
//! holds that very event (the chain makes every event before it the same too). A log appended
//! after the checkpoint, then stopped by a crash, is still opened from it: the events after it are
//! read back.
use crate::{append::Head, error::StorageError, index::Index};
use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
};

/// What a checkpoint file starts with: the format, and the program that wrote it (the gate's
/// state is only read back by the same program).
fn header() -> String {
    format!(
        "journey-log-checkpoint 1 {}\n",
        option_env!("CARGO_PKG_VERSION").unwrap_or("?")
    )
}

/// A checkpoint read back.
#[derive(serde::Deserialize)]
pub(crate) struct Checkpoint {
    pub tip: (u64, [u8; 32]),
    pub versions: HashMap<String, u64>,
    pub index: Index,
    /// The gate's own state ([`Gate::save`](crate::Gate::save)).
    pub gate: Vec<u8>,
}

/// A checkpoint to write, borrowing the writer's state (the same fields, in the same order).
#[derive(serde::Serialize)]
pub(crate) struct Saving<'a> {
    pub tip: (u64, [u8; 32]),
    pub versions: &'a HashMap<String, u64>,
    pub index: &'a Index,
    pub gate: &'a [u8],
}

impl Checkpoint {
    pub fn head(&self) -> Head {
        Head {
            position: self.tip.0,
            hash: self.tip.1,
        }
    }
}

/// Writes `checkpoint` at `path` (readable by its owner only), atomically: a crash leaves the
/// previous file or the new one.
pub(crate) fn save(path: &Path, checkpoint: &Saving<'_>) -> Result<(), StorageError> {
    let fail = |e: &dyn std::fmt::Display| {
        StorageError(format!(
            "cannot write the checkpoint {}: {e}",
            path.display()
        ))
    };
    let body = postcard::to_stdvec(checkpoint).map_err(|e| fail(&e))?;
    let tmp = path.with_extension("tmp");
    let written = write_new(&tmp, &body).map_err(|e| fail(&e));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    std::fs::rename(&tmp, path).map_err(|e| fail(&e))?;
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Writes the header and `body` into a new file at `tmp`, synced.
fn write_new(tmp: &Path, body: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)?;
    f.write_all(header().as_bytes())?;
    f.write_all(body)?;
    f.sync_all()
}

/// The checkpoint at `path`, when there is one this program wrote; `None` (and why, in the log)
/// otherwise.
pub(crate) fn load(path: &Path) -> Option<Checkpoint> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "checkpoint unreadable: every event is read back");
            return None;
        }
    };
    let header = header();
    let Some(body) = bytes.strip_prefix(header.as_bytes()) else {
        tracing::info!(path = %path.display(), "checkpoint of another version of the program: every event is read back");
        return None;
    };
    match postcard::from_bytes(body) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "checkpoint damaged: every event is read back");
            None
        }
    }
}

/// Where the checkpoint of a log kept in `data_dir` lives.
pub fn path_in(data_dir: &Path) -> PathBuf {
    data_dir.join("state.checkpoint")
}

#[cfg(test)]
mod tests {
    use crate::tests::{event, request};
    use crate::{EventLog, Gate, LogOptions, Rejection, SledStorage};
    use journey_proto::v1::Event;
    use std::{
        path::Path,
        sync::{Arc, Mutex},
    };

    /// A gate that remembers the ids of the events it saw, and counts those it restored one by
    /// one at open (`restored`).
    #[derive(Default)]
    struct Remembering {
        seen: Vec<String>,
        restored: Arc<Mutex<usize>>,
    }

    impl Gate for Remembering {
        fn admit(&mut self, events: &[Event], _: Option<&str>) -> Result<(), Rejection> {
            self.seen.extend(events.iter().map(|e| e.event_id.clone()));
            Ok(())
        }
        fn restore(&mut self, event: &Event) {
            *self.restored.lock().unwrap() += 1;
            self.seen.push(event.event_id.clone());
        }
        fn save(&self) -> Option<Vec<u8>> {
            Some(self.seen.join("\n").into_bytes())
        }
        fn load(&mut self, state: &[u8]) -> bool {
            let Ok(text) = std::str::from_utf8(state) else {
                return false;
            };
            self.seen = text.lines().map(str::to_string).collect();
            true
        }
    }

    /// The log in `dir` with its checkpoint; how many events its open restored one by one.
    fn open(dir: &Path) -> (EventLog, Arc<Mutex<usize>>) {
        let gate = Remembering::default();
        let restored = gate.restored.clone();
        let options = LogOptions {
            checkpoint: Some(super::path_in(dir)),
            ..LogOptions::default()
        };
        let storage = SledStorage::open(dir).expect("open storage");
        let log = EventLog::open(Arc::new(storage), Box::new(gate), options).expect("open log");
        (log, restored)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_orderly_stop_spares_the_next_open_every_event_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let (log, restored) = open(dir.path());
        assert_eq!(*restored.lock().unwrap(), 0);
        let first = event("p-a");
        log.append(request(vec![first.clone(), event("p-a"), event("p-b")]))
            .await
            .unwrap();
        log.close().await.unwrap();
        drop(log);
        let saved = std::fs::read(super::path_in(dir.path())).unwrap();

        // Reopened from the checkpoint: nothing restored one by one, and the state is whole
        // (the id index answers a retry, versions go on, the head is the same).
        let (log, restored) = open(dir.path());
        assert_eq!(*restored.lock().unwrap(), 0, "no event read back");
        let retry = log.append(request(vec![first.clone()])).await.unwrap();
        assert!(retry.deduplicated, "the id index came back");
        assert_eq!(retry.appended[0].position, 1);
        let more = log
            .append(request(vec![event("p-a"), event("p-b")]))
            .await
            .unwrap();
        assert_eq!(
            (
                more.appended[0].stream_version,
                more.appended[1].stream_version
            ),
            (3, 2),
            "versions go on"
        );
        log.close().await.unwrap();
        drop(log);

        // A crash after the checkpoint (here: the first checkpoint put back, as if the second
        // stop had never saved): the events after it are read back, and only those.
        std::fs::write(super::path_in(dir.path()), &saved).unwrap();
        let (log, restored) = open(dir.path());
        assert_eq!(*restored.lock().unwrap(), 2, "only the two events after it");
        assert_eq!(log.head().position, 5);
        let next = log.append(request(vec![event("p-a")])).await.unwrap();
        assert_eq!(next.appended[0].stream_version, 4);
        log.close().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_checkpoint_that_does_not_match_the_log_is_not_used() {
        let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [one.path(), other.path()] {
            let (log, _) = open(dir);
            log.append(request(vec![event("p-a"), event("p-b")]))
                .await
                .unwrap();
            log.close().await.unwrap();
        }
        // Another log's checkpoint, at the same position but another hash.
        std::fs::copy(super::path_in(other.path()), super::path_in(one.path())).unwrap();
        let (log, restored) = open(one.path());
        assert_eq!(*restored.lock().unwrap(), 2, "every event read back");
        log.close().await.unwrap();
        drop(log);
        // A damaged one, or one of another program, likewise.
        for damaged in [
            b"journey-log-checkpoint 1 0.0.0-other\n".to_vec(),
            vec![0xff; 64],
        ] {
            std::fs::write(super::path_in(one.path()), damaged).unwrap();
            let (log, restored) = open(one.path());
            assert_eq!(*restored.lock().unwrap(), 2);
            log.close().await.unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(super::path_in(one.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the checkpoint is its owner's only");
    }
}
