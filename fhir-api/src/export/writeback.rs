//! Export files whose pages go to the disk while they are written: every [`KICK`] bytes handed to
//! the kernel, a thread of the worker's own makes the file's data durable so far (`fdatasync`)
//! while the worker writes on, so that the `fsync` that ends a file waits for its tail only, not
//! for the whole file (an export writes hundreds of megabytes, far below what makes the kernel
//! start writing back on its own).
use std::{
    fs::File,
    io::Write,
    sync::{mpsc, Arc},
    thread::JoinHandle,
};

/// Bytes written between two early syncs of a file.
const KICK: u64 = 8 << 20;

/// The thread that syncs a worker's files as they grow.
pub(super) struct Flusher {
    tx: mpsc::SyncSender<Arc<File>>,
    thread: JoinHandle<()>,
}

impl Flusher {
    pub(super) fn start() -> Flusher {
        // One file waits at most: a kick that finds the thread busy is skipped, the next one or
        // the final sync covering its bytes.
        let (tx, rx) = mpsc::sync_channel::<Arc<File>>(1);
        let thread = std::thread::spawn(move || {
            for file in rx {
                // An error here comes back at the file's final sync, which reports it.
                let _ = file.sync_data();
            }
        });
        Flusher { tx, thread }
    }

    /// `file`, written through this thread's early syncs.
    pub(super) fn file(&self, file: File) -> Writeback {
        Writeback {
            file: Arc::new(file),
            tx: self.tx.clone(),
            written: 0,
            kicked: 0,
        }
    }

    /// Waits for the sync under way, if any.
    pub(super) fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

/// A file being written, synced early by a [`Flusher`].
pub(super) struct Writeback {
    file: Arc<File>,
    tx: mpsc::SyncSender<Arc<File>>,
    /// Bytes handed to the kernel.
    written: u64,
    /// Bytes when the last early sync was asked.
    kicked: u64,
}

impl Writeback {
    /// The file made durable: its data and what it takes to read it back.
    pub(super) fn sync(self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = (&*self.file).write(buf)?;
        self.written += n as u64;
        if self.written >= self.kicked + KICK {
            let _ = self.tx.try_send(self.file.clone());
            self.kicked = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.file).flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let flusher = Flusher::start();
        let paths: Vec<_> = (0..2)
            .map(|i| dir.path().join(format!("{i}.ndjson")))
            .collect();
        let mut files: Vec<_> = paths
            .iter()
            .map(|p| std::io::BufWriter::new(flusher.file(File::create(p).unwrap())))
            .collect();
        let line = vec![b'x'; 1000];
        for _ in 0..20_000 {
            for f in &mut files {
                f.write_all(&line).unwrap();
                f.write_all(b"\n").unwrap();
            }
        }
        for f in files {
            let inner = f.into_inner().map_err(|e| e.into_error()).unwrap();
            assert!(
                inner.kicked >= 2 * KICK,
                "early syncs asked: {}",
                inner.kicked
            );
            inner.sync().unwrap();
        }
        flusher.stop();
        for p in &paths {
            assert_eq!(std::fs::metadata(p).unwrap().len(), 20_000 * 1001);
        }
    }
}
