//! The writer's lease: one key of a JetStream key-value bucket (`<stream>_WRITER`, 3 replicas,
//! file storage), written only by compare-and-set on its revision. The writer renews it every
//! second; a standby that sees no new revision for [`TERM`] takes it by writing over the revision
//! it saw, which fails if the writer renewed meanwhile. A writer whose renewal fails on the
//! revision has lost it and stops.
//!
//! The lease decides who *should* write; what makes a second writer harmless is the stream's own
//! fence (`Nats-Expected-Last-Sequence`, `journey-services`' replication): a writer that lost the
//! lease cannot store anything behind its successor, lease or no lease.
use anyhow::Context;
use async_nats::jetstream::{
    self,
    kv::{self, CreateErrorKind, Operation, UpdateErrorKind},
    stream::StorageType,
};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a lease lasts without a renewal before a standby may take it.
pub const TERM: Duration = Duration::from_secs(5);
/// How often the writer renews.
const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How often a standby looks at the lease.
const LOOK_EVERY: Duration = Duration::from_millis(200);
const KEY: &str = "writer";

/// Who holds (or claims) the lease: a node's id (kept in its data folder) and where it serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub node: String,
    pub grpc: String,
}

impl Holder {
    fn bytes(&self) -> Bytes {
        serde_json::to_vec(self).expect("a holder encodes").into()
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} (gRPC {})", self.node, self.grpc)
    }
}

/// The lease bucket of `stream`, created (3 replicas, file storage, one revision kept) when
/// missing.
pub async fn bucket(js: &jetstream::Context, stream: &str) -> anyhow::Result<kv::Store> {
    let name = format!("{stream}_WRITER");
    if let Ok(store) = js.get_key_value(&name).await {
        return Ok(store);
    }
    let config = kv::Config {
        bucket: name.clone(),
        description: format!("who writes the journey log published to the stream {stream}"),
        history: 1,
        num_replicas: 3,
        storage: StorageType::File,
        ..Default::default()
    };
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Another node created it meanwhile.
        Err(e) => js
            .get_key_value(&name)
            .await
            .with_context(|| format!("cannot create the writer's lease bucket {name}: {e}")),
    }
}

/// What [`claim`] found.
pub enum Claim {
    /// This node holds the lease (it was free, or already this node's).
    Held(Box<Lease>),
    /// Another node holds it.
    Other(Holder),
}

/// A lease this node holds, at `revision`.
pub struct Lease {
    store: kv::Store,
    me: Holder,
    revision: u64,
}

fn holder_of(entry: &kv::Entry) -> Option<Holder> {
    match entry.operation {
        Operation::Put => serde_json::from_slice(&entry.value).ok(),
        Operation::Delete | Operation::Purge => None,
    }
}

/// Takes the lease if nobody holds it or this node already does (a writer restarted within its
/// term); else says who holds it, to follow as a standby.
pub async fn claim(store: &kv::Store, me: &Holder) -> anyhow::Result<Claim> {
    loop {
        let entry = store
            .entry(KEY)
            .await
            .context("reading the writer's lease")?;
        let revision = match &entry {
            None => match store.create(KEY, me.bytes()).await {
                Ok(revision) => revision,
                Err(e) if e.kind() == CreateErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).context("taking the writer's lease"),
            },
            Some(e) => match holder_of(e) {
                Some(other) if other.node != me.node => return Ok(Claim::Other(other)),
                _ => match store.update(KEY, me.bytes(), e.revision).await {
                    Ok(revision) => revision,
                    Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
                    Err(e) => return Err(e).context("taking the writer's lease back"),
                },
            },
        };
        return Ok(Claim::Held(Box::new(Lease {
            store: store.clone(),
            me: me.clone(),
            revision,
        })));
    }
}

/// The current holder, if any.
pub async fn holder(store: &kv::Store) -> anyhow::Result<Option<Holder>> {
    Ok(store
        .entry(KEY)
        .await
        .context("reading the writer's lease")?
        .as_ref()
        .and_then(holder_of))
}

/// Waits until the lease lapses (no new revision seen for [`TERM`]) and takes it; returns it with
/// the holder it lapsed from. `None` when `stop` turns true first. Unreachable NATS only delays:
/// a lease is taken by a compare-and-set the cluster must accept. `heard` hears of each holder
/// met meanwhile.
pub async fn take_when_lapsed(
    store: &kv::Store,
    me: &Holder,
    stop: &mut watch::Receiver<bool>,
    heard: impl Fn(Option<&Holder>),
) -> Option<(Lease, Option<Holder>)> {
    let mut seen: Option<(u64, Instant)> = None;
    let mut last_holder: Option<Holder> = None;
    let mut complained = Instant::now() - TERM;
    loop {
        if *stop.borrow() {
            return None;
        }
        match store.entry(KEY).await {
            Ok(None) => {
                if let Ok(revision) = store.create(KEY, me.bytes()).await {
                    let lease = Lease {
                        store: store.clone(),
                        me: me.clone(),
                        revision,
                    };
                    return Some((lease, None));
                }
            }
            Ok(Some(entry)) => match seen {
                _ if holder_of(&entry) != last_holder => {
                    last_holder = holder_of(&entry);
                    heard(last_holder.as_ref());
                    seen = Some((entry.revision, Instant::now()));
                }
                Some((revision, since)) if revision == entry.revision => {
                    if since.elapsed() >= TERM {
                        match store.update(KEY, me.bytes(), revision).await {
                            Ok(revision) => {
                                let lease = Lease {
                                    store: store.clone(),
                                    me: me.clone(),
                                    revision,
                                };
                                return Some((lease, holder_of(&entry)));
                            }
                            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => seen = None,
                            Err(e) => tracing::debug!(error = %e, "taking the lapsed lease failed"),
                        }
                    }
                }
                _ => seen = Some((entry.revision, Instant::now())),
            },
            Err(e) if complained.elapsed() >= TERM => {
                complained = Instant::now();
                tracing::warn!(error = %e, "cannot read the writer's lease; still following");
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(LOOK_EVERY) => {}
            _ = stop.changed() => {}
        }
    }
}

impl Lease {
    /// The same lease, said at its next renewal to be held by `me` (this node, its address now
    /// known).
    pub fn held_by(self, me: Holder) -> Lease {
        Lease { me, ..self }
    }

    /// Renews the lease every second until `stop` (`None`) or until it is lost: then why, naming
    /// who holds it now. A renewal that fails otherwise (NATS unreachable) is tried again.
    pub async fn keep(mut self, mut stop: watch::Receiver<bool>) -> Option<String> {
        let mut renewed = Instant::now();
        // The first renewal at once: it says where this node serves (known only once bound).
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                tokio::select! {
                    _ = tokio::time::sleep(RENEW_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
            match self.store.update(KEY, self.me.bytes(), self.revision).await {
                Ok(revision) => {
                    self.revision = revision;
                    renewed = Instant::now();
                }
                Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    // A renewal whose answer was lost (a server frozen or cut off meanwhile) may
                    // have been stored: then the lease is still this node's, at a newer revision.
                    let entry = match self.store.entry(KEY).await {
                        Ok(entry) => entry,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read the writer's lease");
                            continue;
                        }
                    };
                    let now = entry.as_ref().and_then(holder_of);
                    if let (Some(entry), Some(h)) = (&entry, &now) {
                        if h.node == self.me.node {
                            self.revision = entry.revision;
                            continue;
                        }
                    }
                    let now = now.map_or("another node".into(), |h| h.to_string());
                    return Some(format!(
                        "this node lost the writer's lease to {now}: it was not renewed for {:.1} s \
                         (this process was stopped or cut off from NATS) and a standby took over",
                        renewed.elapsed().as_secs_f64()
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, since_s = renewed.elapsed().as_secs_f64(), "cannot renew the writer's lease")
                }
            }
        }
    }
}
