//! `journey backup`: a consistent copy of a running log, read through its public `ReadAll`.
//!
//! The head is read first; the copy is the log's prefix up to that head, whatever is appended
//! meanwhile, each event checked against the chain as it comes and the last one against the head.
//! The events file is fsync'd before the manifest, which is written last and atomically: a folder
//! without a manifest is an unfinished backup that `journey restore` refuses.
use super::{
    format::{EventsWriter, Manifest, EVENTS, MANIFEST},
    progress::Progress,
};
use anyhow::{bail, Context};
use futures::StreamExt;
use journey_event_log::{ChainCheck, Head, StoredEvent};
use journey_log_access::Remote;
use journey_proto::{
    hex::hex,
    prost::Message,
    v1::{HeadRequest, ReadAllRequest},
};
use std::path::Path;

/// Copies the log at `remote` into the new folder `dir`: the whole log, or with `since` (a
/// previous backup's folder) only the events after that backup's head.
pub async fn backup(remote: &Remote, dir: &Path, since: Option<&Path>) -> anyhow::Result<()> {
    let prev = match since {
        Some(before) => Manifest::read(before)?.head,
        None => Head {
            position: 0,
            hash: journey_event_log::ZERO_HASH,
        },
    };
    let existed = dir.exists();
    new_private_dir(dir)?;
    let copied = copy_into(remote, dir, prev).await;
    if copied.is_err() {
        // An unfinished backup is not left behind (restore would refuse it anyway).
        for file in [EVENTS, &format!("{MANIFEST}.tmp")] {
            let _ = std::fs::remove_file(dir.join(file));
        }
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
    }
    copied
}

/// The copy itself, into the new folder `dir`, after `prev`.
async fn copy_into(remote: &Remote, dir: &Path, prev: Head) -> anyhow::Result<()> {
    let mut client = remote.client().await?;
    let head = client
        .head(HeadRequest {})
        .await
        .map_err(crate::verbs::refused("head"))?
        .into_inner();
    let target = Head {
        position: head.position,
        hash: head
            .hash
            .as_slice()
            .try_into()
            .context("the log's head hash is not 32 bytes")?,
    };
    if target.position < prev.position {
        bail!(
            "the log's head is at position {}, before the previous backup's head ({}): this is not the log that backup was taken of",
            target.position,
            prev.position
        );
    }
    let mut chain = ChainCheck::after(prev);
    let mut out = EventsWriter::create(dir)?;
    let mut progress = Progress::new("backup", target.position - prev.position);
    if target.position > prev.position {
        let mut stream = client
            .read_all(ReadAllRequest {
                from_position: prev.position + 1,
                to_position: target.position,
                batch_size: 0,
            })
            .await
            .map_err(crate::verbs::refused("read"))?
            .into_inner();
        while let Some(batch) = stream.next().await {
            for mut event in batch.map_err(crate::verbs::refused("read"))?.events {
                let hash: [u8; 32] = std::mem::take(&mut event.hash)
                    .as_slice()
                    .try_into()
                    .with_context(|| format!("position {}: no 32-byte hash", event.position))?;
                // The stored bytes are the event without its hash; re-encoding gives them back
                // exactly, which the chain check proves (the hash covers them).
                let stored = StoredEvent {
                    position: event.position,
                    hash,
                    bytes: event.encode_to_vec(),
                };
                chain.accept(&stored).map_err(|why| {
                    anyhow::anyhow!(
                        "the log sent an event that does not continue its chain: {why} (a journey \
                         older than the server drops the fields it does not know: back up with the \
                         server's version)"
                    )
                })?;
                out.write(&stored)?;
                progress.tick(stored.position - prev.position);
            }
        }
    }
    progress.done();
    if chain.head() != target {
        bail!(
            "the copy ends at position {} but the log's head was position {} when it started: the read stream ended early; run the backup again into a new folder",
            chain.head().position,
            target.position
        );
    }
    let events_bytes = out.bytes;
    out.finish()?;
    let manifest = Manifest {
        from_position: prev.position + 1,
        prev,
        head: target,
        events: target.position - prev.position,
        events_bytes,
        taken_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        program: format!("journey {}", env!("CARGO_PKG_VERSION")),
    };
    manifest.write(dir)?;
    println!(
        "backup written to {}: positions {} to {} ({} events, {} bytes), head hash {}, taken {}",
        dir.display(),
        manifest.from_position,
        target.position,
        manifest.events,
        events_bytes,
        hex(&target.hash),
        chrono::Local::now().format("%Y-%m-%d %H:%M:%S %:z")
    );
    Ok(())
}

/// Creates `dir` (mode 0700), or takes it when it is an empty folder; refuses anything else.
pub fn new_private_dir(dir: &Path) -> anyhow::Result<()> {
    ensure_new(dir)?;
    journey_services::files::private_data_dir(dir)
}

/// Refuses a folder that holds anything, or a file in its place: nothing is ever written over.
pub fn ensure_new(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            Some(_) => bail!(
                "{} is not empty: choose a new or empty folder (nothing is ever written over)",
                dir.display()
            ),
            None => Ok(()),
        },
        Err(_) if dir.exists() => bail!("{} exists and is not a folder", dir.display()),
        Err(_) => Ok(()),
    }
}
