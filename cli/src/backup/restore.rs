//! `journey restore`: a log folder rebuilt from backups or from the NATS stream, with the stored
//! bytes exactly (the same hashes, the same head).
//!
//! From backups, everything is checked before anything is written: each manifest, the chain across
//! the folders, each folder's head against its manifest, and the anchor when one is given. From
//! NATS, the chain is checked as the stream is read. Either way the log is written into a
//! temporary folder beside the target and renamed into place only once whole and fsync'd, so a
//! refused restore leaves nothing behind.
use super::{
    copy::{ensure_new, new_private_dir},
    format::{EventsReader, Manifest},
    progress::Progress,
};
use anyhow::{bail, Context};
use futures::StreamExt;
use journey_event_log::{hash_of, ChainCheck, Head, Restore, SledStorage, StoredEvent};
use journey_proto::{
    hex::{hex, unhex},
    prost::Message,
    v1::Event,
};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// Restores the backups `dirs` (a full one, then incremental ones in order) into `data_dir`.
pub fn from_backups(
    dirs: &[PathBuf],
    data_dir: &Path,
    anchor: Option<&Path>,
) -> anyhow::Result<()> {
    ensure_new(data_dir)?;
    let anchor = Anchor::read(anchor)?;
    let manifests = dirs
        .iter()
        .map(|d| Manifest::read(d))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let head = verify(dirs, &manifests, anchor)?;
    let total = head.position;
    let written = write_log(data_dir, |restore| {
        let mut progress = Progress::new("restore", total);
        for (dir, manifest) in dirs.iter().zip(&manifests) {
            let mut events = EventsReader::open(dir, manifest)?;
            while let Some(stored) = events.next_event()? {
                restore.push(&stored)?;
                progress.tick(stored.position);
            }
        }
        progress.done();
        Ok(())
    })?;
    if written != head {
        bail!("internal: the restored head differs from the verified one");
    }
    report(data_dir, written, "the backup's manifest");
    Ok(())
}

/// Checks every folder against its manifest and the chain across them; the head they end at.
fn verify(dirs: &[PathBuf], manifests: &[Manifest], mut anchor: Anchor) -> anyhow::Result<Head> {
    let mut chain = ChainCheck::default();
    for (dir, manifest) in dirs.iter().zip(manifests) {
        let at = chain.head();
        if manifest.prev != at {
            if at.position == 0 {
                bail!(
                    "{} is an incremental backup (from position {}): give the full backup it continues first",
                    dir.display(),
                    manifest.from_position
                );
            }
            bail!(
                "{} does not continue the backup before it: it starts after position {} (hash {}), the one before ends at position {} (hash {})",
                dir.display(),
                manifest.prev.position,
                hex(&manifest.prev.hash),
                at.position,
                hex(&at.hash)
            );
        }
        let mut events = EventsReader::open(dir, manifest)?;
        let mut count = 0u64;
        while let Some(stored) = events.next_event()? {
            chain.accept(&stored).map_err(|why| {
                anyhow::anyhow!(
                    "{} does not verify: {why}; nothing was written",
                    dir.display()
                )
            })?;
            anchor.see(&stored, "backup")?;
            count += 1;
        }
        let end = chain.head();
        if end != manifest.head || count != manifest.events {
            bail!(
                "{}: the events end at position {} (hash {}, {count} events) but the manifest says position {} (hash {}, {} events): the backup does not match its manifest; nothing was written",
                dir.display(),
                end.position,
                hex(&end.hash),
                manifest.head.position,
                hex(&manifest.head.hash),
                manifest.events
            );
        }
    }
    let head = chain.head();
    anchor.end(head, "backup")?;
    Ok(head)
}

/// Rebuilds `data_dir` from the JetStream stream `stream` alone.
pub async fn from_nats(
    url: &str,
    stream: &str,
    data_dir: &Path,
    anchor: Option<&Path>,
) -> anyhow::Result<()> {
    use async_nats::jetstream::{
        self, consumer::pull, consumer::AckPolicy, consumer::DeliverPolicy,
    };
    ensure_new(data_dir)?;
    let mut anchor = Anchor::read(anchor)?;
    let shown = journey_log_access::broker::redact(url);
    let client = journey_log_access::broker::connect(url).await?;
    let js = jetstream::new(client);
    let mut s = js
        .get_stream(stream)
        .await
        .with_context(|| format!("no JetStream stream {stream} at {shown}"))?;
    let last_seq = s.info().await?.state.last_sequence;
    if s.cached_info().state.messages == 0 {
        bail!("the stream {stream} at {shown} holds no message: nothing to restore");
    }
    let consumer = s
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .context("cannot create a NATS consumer")?;
    let mut messages = consumer
        .messages()
        .await
        .context("cannot pull from the NATS consumer")?;
    let last = |seq: u64| seq >= last_seq;
    let handle = tokio::runtime::Handle::current();
    // Each message's body is an event's stored bytes, written as it is read once it continues the
    // chain (sled and fsync on this thread: `block_in_place`).
    let written = tokio::task::block_in_place(|| {
        write_log(data_dir, |restore| {
            let mut progress = Progress::new("restore from NATS", last_seq);
            let mut hashes: Vec<[u8; 32]> = Vec::new();
            let (mut duplicates, mut foreign) = (0u64, 0u64);
            loop {
                let m = handle
                    .block_on(tokio::time::timeout(
                        Duration::from_secs(10),
                        messages.next(),
                    ))
                    .context("NATS sent nothing for 10 s before the end of the stream")?
                    .context("the NATS consumer ended before the end of the stream")?
                    .map_err(|e| anyhow::anyhow!("reading the stream: {e}"))?;
                let seq = m
                    .info()
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .stream_sequence;
                let hash = hash_of(&m.payload);
                match Event::decode(m.payload.as_ref()) {
                    Err(_) => {
                        tracing::warn!(sequence = seq, subject = %m.subject, "a message that is not an event: skipped");
                        foreign += 1;
                    }
                    Ok(e) if e.position >= 1 && e.position <= restore.head().position => {
                        if hashes[(e.position - 1) as usize] != hash {
                            bail!(
                                "the stream holds two different events at position {} (stream sequence {seq}): it cannot be trusted; restore a backup; nothing was written",
                                e.position
                            );
                        }
                        duplicates += 1;
                    }
                    Ok(e) => {
                        let stored = StoredEvent {
                            position: e.position,
                            hash,
                            bytes: m.payload.to_vec(),
                        };
                        restore.push(&stored).map_err(|why| {
                            anyhow::anyhow!(
                                "the stream does not verify at sequence {seq}: {}; nothing was written (if the stream's limits dropped old messages, restore a backup)",
                                why.0
                            )
                        })?;
                        hashes.push(hash);
                        anchor.see(&stored, "stream")?;
                    }
                }
                progress.tick(seq);
                if last(seq) {
                    break;
                }
            }
            progress.done();
            anchor.end(restore.head(), "stream")?;
            if duplicates + foreign > 0 {
                eprintln!(
                    "note: {duplicates} duplicate messages and {foreign} messages that are not events were skipped"
                );
            }
            Ok(())
        })
    })?;
    report(data_dir, written, "the stream");
    Ok(())
}

/// The anchor of the lost log (`<data-dir>.anchor.json`), when given: the restored chain must hold
/// its event, with its hash.
struct Anchor {
    head: Option<Head>,
    seen: bool,
}

impl Anchor {
    fn read(path: Option<&Path>) -> anyhow::Result<Anchor> {
        let head = path.map(read_anchor).transpose()?;
        Ok(Anchor { head, seen: false })
    }

    /// Checks an event of the chain being restored (of the `source`: backup, stream).
    fn see(&mut self, stored: &StoredEvent, source: &str) -> anyhow::Result<()> {
        match self.head {
            Some(a) if a.position == stored.position => {
                if a.hash != stored.hash {
                    bail!(
                        "the anchor's event at position {} has another hash than the {source}'s: this {source} is not of the anchored log; nothing was written",
                        a.position
                    );
                }
                self.seen = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Checks the end of the chain: refused when it ends before the anchor.
    fn end(&self, head: Head, source: &str) -> anyhow::Result<()> {
        match self.head {
            Some(a) if !self.seen && a.position > head.position => bail!(
                "the anchor says the log reached position {}, this {source} ends at position {}: events {} to {} would be lost; restore a newer backup, or from NATS; nothing was written",
                a.position,
                head.position,
                head.position + 1,
                a.position
            ),
            _ => Ok(()),
        }
    }
}

fn read_anchor(path: &Path) -> anyhow::Result<Head> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the anchor {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("the anchor {} is not JSON", path.display()))?;
    Ok(Head {
        position: v["position"]
            .as_u64()
            .with_context(|| format!("the anchor {} has no \"position\"", path.display()))?,
        hash: v["hash"]
            .as_str()
            .and_then(unhex)
            .and_then(|h| h.as_slice().try_into().ok())
            .with_context(|| {
                format!(
                    "the anchor {}: \"hash\" is not 64 hex digits",
                    path.display()
                )
            })?,
    })
}

/// Writes the log into a temporary folder beside `data_dir` through `fill`, makes it durable and
/// private, then renames it into place; on any failure the temporary folder is removed.
fn write_log(
    data_dir: &Path,
    fill: impl FnOnce(&mut Restore<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<Head> {
    let name = data_dir
        .file_name()
        .with_context(|| format!("{} names no folder", data_dir.display()))?;
    let parent = match data_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    journey_services::files::create_dirs(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let tmp = parent.join(format!(".{}.restoring", name.to_string_lossy()));
    if tmp.exists() {
        // Left by a restore that was stopped: never a log anyone served.
        std::fs::remove_dir_all(&tmp)
            .with_context(|| format!("cannot remove the unfinished {}", tmp.display()))?;
    }
    let written = (|| {
        new_private_dir(&tmp)?;
        let storage = SledStorage::open(&tmp)?;
        let mut restore = Restore::begin(&storage)?;
        fill(&mut restore)?;
        let head = restore.finish()?;
        drop(storage);
        journey_services::files::restrict_tree(&tmp)?;
        anyhow::Ok(head)
    })();
    let head = match written {
        Ok(head) => head,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if data_dir.exists() {
        std::fs::remove_dir(data_dir)
            .with_context(|| format!("cannot replace the empty folder {}", data_dir.display()))?;
    }
    std::fs::rename(&tmp, data_dir)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), data_dir.display()))?;
    std::fs::File::open(&parent)?.sync_all()?;
    Ok(head)
}

fn report(data_dir: &Path, head: Head, from: &str) {
    println!(
        "restored {} events into {}: head position {} hash {}, as {from} says; start it with `journey up --data-dir {}`",
        head.position,
        data_dir.display(),
        head.position,
        hex(&head.hash),
        data_dir.display()
    );
}
