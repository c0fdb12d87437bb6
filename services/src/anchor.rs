//! The chain head anchored outside the log (docs/design.md §5 "Audit trail").
//!
//! The chain proves that no stored event was altered, removed or reordered, but a log cut at its
//! tail still looks whole. The [`AnchorKeeper`] therefore writes the chain head (position, hash)
//! to a file outside the log folder (default `<data_dir>.anchor.json`), every
//! `--anchor-interval-ms` and at shutdown, atomically (temporary file, fsync, rename, fsync of the
//! folder). The anchor only moves forward, and only after the previous anchor was found again in
//! the log. At startup, and before every move, the log is checked against it: a log that ends
//! before the anchored position, or holds another event there, is reported loudly, the anchor is
//! frozen (never overwritten by the shorter log) and `Verify` reports the first missing position.
use crate::log_handle::{Hash, LogHandle};
use anyhow::Context;
use journey_proto::{
    hex::{hex, unhex},
    json::rfc3339,
    prost_types::Timestamp,
    v1::VerifyRequest,
};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tokio::sync::watch;

/// An anchored chain head, as kept in the anchor file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    pub position: u64,
    pub hash: Hash,
    /// When it was written (Unix seconds).
    pub anchored_at: i64,
}

impl Anchored {
    pub fn to_json(&self, log: &str) -> Value {
        json!({
            "position": self.position,
            "hash": hex(&self.hash),
            "anchored_at": rfc3339(&Timestamp { seconds: self.anchored_at, nanos: 0 }),
            "anchored_at_unix": self.anchored_at,
            "log": log,
        })
    }

    fn from_json(v: &Value) -> anyhow::Result<Anchored> {
        let position = v["position"].as_u64().context("no \"position\"")?;
        let hash = v["hash"]
            .as_str()
            .and_then(unhex)
            .and_then(|h| h.as_slice().try_into().ok())
            .context("\"hash\" is not 64 hex digits")?;
        Ok(Anchored {
            position,
            hash,
            anchored_at: v["anchored_at_unix"].as_i64().unwrap_or(0),
        })
    }
}

/// A hash chain whose head can be anchored: the event log, the access log.
#[tonic::async_trait]
pub trait Chain: Send + Sync {
    /// The head: (position, hash); (0, _) when empty.
    async fn head(&self) -> anyhow::Result<(u64, Hash)>;
    /// Whether the chain still holds `anchor` (its position with its hash); what is wrong if not.
    async fn holds(&self, anchor: &Anchored) -> Result<(), String>;
}

#[tonic::async_trait]
impl Chain for LogHandle {
    async fn head(&self) -> anyhow::Result<(u64, Hash)> {
        Ok(LogHandle::head(self).await?)
    }

    async fn holds(&self, anchor: &Anchored) -> Result<(), String> {
        let (head, _) = LogHandle::head(self)
            .await
            .map_err(|s| format!("cannot read the log head: {}", s.message()))?;
        if anchor.position > head {
            return Err(format!(
                "the log ends at position {head} but its head was anchored at position {} (hash {}): the tail from position {} is missing (truncated, or restored from an older copy)",
                anchor.position,
                hex(&anchor.hash),
                head + 1
            ));
        }
        let r = self
            .verify(VerifyRequest {
                from_position: anchor.position,
                to_position: anchor.position,
                anchor_position: anchor.position,
                anchor_hash: anchor.hash.to_vec(),
            })
            .await
            .map_err(|s| format!("cannot verify the anchor: {}", s.message()))?;
        if r.ok {
            Ok(())
        } else {
            Err(format!(
                "the anchored head (position {}, hash {}) is not in the log: {}",
                anchor.position,
                hex(&anchor.hash),
                r.problem
            ))
        }
    }
}

#[tonic::async_trait]
impl Chain for crate::access_log::AccessLog {
    async fn head(&self) -> anyhow::Result<(u64, Hash)> {
        Ok(crate::access_log::AccessLog::head(self).await?)
    }

    async fn holds(&self, anchor: &Anchored) -> Result<(), String> {
        crate::access_log::AccessLog::holds(self, (anchor.position, anchor.hash)).await
    }
}

/// A chain as its warnings name it: what it is, and the command that verifies it.
pub struct Named {
    pub what: &'static str,
    pub verify: &'static str,
}

const EVENT_LOG: &Named = &Named {
    what: "the event log",
    verify: "journey audit verify",
};

/// The access log, as the warnings of its anchor's keeper name it.
pub const ACCESS_LOG: &Named = &Named {
    what: "the access log",
    verify: "journey audit verify-accesses",
};

/// Keeps the chain head anchored in a file outside the log.
pub struct AnchorKeeper {
    path: PathBuf,
    /// What the file says the log is (data folder or URL), for people reading it.
    log: String,
    /// Which chain it anchors, for the warnings.
    chain: &'static Named,
    state: Mutex<KeeperState>,
}

#[derive(Default)]
struct KeeperState {
    /// Why the anchor stopped moving: the log no longer holds the anchored head.
    frozen: Option<String>,
    last: Option<Anchored>,
}

impl AnchorKeeper {
    pub fn new(path: PathBuf, log: String) -> AnchorKeeper {
        AnchorKeeper {
            path,
            log,
            chain: EVENT_LOG,
            state: Mutex::default(),
        }
    }

    /// The keeper of another chain than the event log's (named in its warnings).
    pub fn of(chain: &'static Named, path: PathBuf, log: String) -> AnchorKeeper {
        AnchorKeeper {
            chain,
            ..AnchorKeeper::new(path, log)
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The anchor on disk (`None` when there is none yet).
    pub fn read(&self) -> anyhow::Result<Option<Anchored>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", self.path.display()))
            }
        };
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", self.path.display()))?;
        Anchored::from_json(&v)
            .map(Some)
            .with_context(|| format!("{} is not an anchor", self.path.display()))
    }

    /// Why the anchor is frozen, if it is.
    pub fn problem(&self) -> Option<String> {
        self.state.lock().expect("anchor lock").frozen.clone()
    }

    fn freeze(&self, problem: String) {
        let mut st = self.state.lock().expect("anchor lock");
        if st.frozen.is_none() {
            tracing::error!(anchor_file = %self.path.display(), problem = %problem, "THE LOG IS BEHIND ITS ANCHOR OR DIFFERS FROM IT");
            eprintln!(
                "\n*** WARNING: {} does not match its anchored head ***\n*** {problem}\n*** anchor file: {} (kept as evidence; `{}` reports it)\n*** move that file aside only to accept the log as it is now\n",
                self.chain.what,
                self.path.display(),
                self.chain.verify
            );
            st.frozen = Some(problem);
        }
    }

    /// Checks that the chain still holds `anchor`; what is wrong when it does not.
    async fn check_against<C: Chain>(&self, source: &C, anchor: &Anchored) -> Result<(), String> {
        source.holds(anchor).await
    }

    /// At startup: compares the log with the anchor file; a mismatch is reported loudly and
    /// freezes the anchor. Returns the problem, if any.
    pub async fn check_at_start<C: Chain>(&self, source: &C) -> Option<String> {
        let anchor = match self.read() {
            Ok(Some(a)) => a,
            Ok(None) => {
                tracing::info!(anchor_file = %self.path.display(), "no anchor yet: anchoring from now on");
                return None;
            }
            Err(e) => {
                self.freeze(format!("the anchor file is unreadable: {e:#}"));
                return self.problem();
            }
        };
        match self.check_against(source, &anchor).await {
            Ok(()) => {
                tracing::info!(position = anchor.position, anchor_file = %self.path.display(), "the log holds its anchored head");
                self.state.lock().expect("anchor lock").last = Some(anchor);
                None
            }
            Err(problem) => {
                self.freeze(problem);
                self.problem()
            }
        }
    }

    /// Anchors the current head if it moved (and the previous anchor is still in the log).
    pub async fn tick<C: Chain>(&self, source: &C) -> anyhow::Result<()> {
        let last = {
            let st = self.state.lock().expect("anchor lock");
            if st.frozen.is_some() {
                return Ok(());
            }
            st.last.clone()
        };
        let (position, hash) = source.head().await?;
        if position == 0 || last.as_ref().is_some_and(|a| a.position >= position) {
            return Ok(());
        }
        if let Some(prev) = &last {
            if let Err(problem) = self.check_against(source, prev).await {
                self.freeze(problem);
                return Ok(());
            }
        }
        let anchor = Anchored {
            position,
            hash,
            anchored_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        };
        let (path, body) = (self.path.clone(), anchor.to_json(&self.log).to_string());
        tokio::task::spawn_blocking(move || write_atomically(&path, body.as_bytes()))
            .await?
            .with_context(|| format!("cannot write the anchor file {}", self.path.display()))?;
        self.state.lock().expect("anchor lock").last = Some(anchor);
        Ok(())
    }

    /// Anchors the head every `interval` until `stop`.
    pub async fn keep<C: Chain>(
        self: Arc<Self>,
        source: C,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(e) = self.tick(&source).await {
                tracing::warn!(error = %format!("{e:#}"), anchor_file = %self.path.display(), "anchoring the head failed");
            }
        }
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    crate::files::create_dirs(&dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = crate::files::private_file_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.set_permissions(crate::files::file_permissions())?;
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_round_trips_through_json() {
        let a = Anchored {
            position: 42,
            hash: [7; 32],
            anchored_at: 1_780_000_000,
        };
        assert_eq!(Anchored::from_json(&a.to_json("./data")).unwrap(), a);
        assert!(Anchored::from_json(&json!({"position": 1, "hash": "zz"})).is_err());
    }
}
