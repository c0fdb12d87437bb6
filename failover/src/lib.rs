//! Who writes a replicated journey log (`--ack replicated`), and what the others do.
//!
//! One node holds the writer's lease ([`lease`]): it takes appends, publishes them to the stream
//! (the outbox) and renews the lease every second. A standby (`--standby`, or a node that finds
//! the lease held by another) follows the stream into its own log ([`follow`]), checking the chain
//! of every event, and serves reads. When the lease lapses ([`lease::TERM`] without a renewal: the
//! writer died, or is cut off) the standby takes it, catches up with the stream and becomes the
//! writer: clients retry their appends against it with the same event ids. A writer that finds
//! its lease taken stops; started again it comes back as a standby, dropping first the events the
//! stream does not hold ([`tail`]: never acknowledged).
//!
//! What keeps two writers from both storing is not the lease but the stream's fence: each message
//! is stored only behind the position before it (`journey-services`' replication).
pub mod lease;

mod follow;
mod tail;

use anyhow::Context;
use async_nats::jetstream::kv;
use journey_event_log::{EventLog, SledStorage, Storage};
use journey_services::outbox::{self, OutboxConfig, OutboxStatus};
use lease::{Claim, Holder, Lease};
use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::{mpsc, watch};

/// What a node does with its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Writer,
    Standby,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Writer => "writer",
            Role::Standby => "standby",
        }
    }
}

/// The node's role as it changes (for `/status`).
#[derive(Debug)]
pub struct RoleStatus(Mutex<Role>);

impl RoleStatus {
    pub fn role(&self) -> Role {
        *self.0.lock().expect("role lock")
    }

    fn set(&self, role: Role) {
        *self.0.lock().expect("role lock") = role;
    }
}

/// How long a standby that took the lease waits to hold everything the stream holds.
const CATCH_UP: Duration = Duration::from_secs(30);

/// The node's id, kept in its data folder (`node-id`, made at the first start).
pub fn node_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            std::fs::write(&path, &id)
                .with_context(|| format!("cannot write the node's id to {}", path.display()))?;
            Ok(id)
        }
    }
}

/// A node's role, decided before its log opens.
pub struct Failover {
    store: kv::Store,
    me: Holder,
    start: Start,
    status: Arc<RoleStatus>,
}

enum Start {
    Writer(Box<Lease>),
    Standby(Option<Holder>),
}

/// Decides the role before the log in `storage` opens: the writer's lease is claimed unless
/// `standby`; a node that does not hold it drops the events the stream does not hold.
pub async fn prepare(
    storage: &SledStorage,
    config: &OutboxConfig,
    me: Holder,
    standby: bool,
) -> anyhow::Result<Failover> {
    let (broker, stream) = outbox::connect_stream(config).await?;
    let store = lease::bucket(broker.jetstream(), &config.stream).await?;
    let start = if standby {
        Start::Standby(lease::holder(&store).await?)
    } else {
        match lease::claim(&store, &me).await? {
            Claim::Held(lease) => Start::Writer(lease),
            Claim::Other(holder) => {
                tracing::warn!(%holder, "the writer's lease is held by {holder}: this node starts as a standby");
                Start::Standby(Some(holder))
            }
        }
    };
    if let Start::Standby(_) = start {
        let published = match storage.meta(&outbox::cursor_key(&config.stream))? {
            Some(v) if v.len() == 8 => u64::from_be_bytes(v.try_into().expect("8 bytes")),
            _ => 0,
        };
        tail::drop_unreplicated(storage, &stream, published).await?;
    }
    let role = match start {
        Start::Writer(_) => Role::Writer,
        Start::Standby(_) => Role::Standby,
    };
    Ok(Failover {
        store,
        me,
        start,
        status: Arc::new(RoleStatus(Mutex::new(role))),
    })
}

impl Failover {
    pub fn role(&self) -> Role {
        self.status.role()
    }

    pub fn status(&self) -> Arc<RoleStatus> {
        self.status.clone()
    }

    /// What a client appending to a standby is told.
    pub fn refusal(&self) -> Option<String> {
        match &self.start {
            Start::Writer(_) => None,
            Start::Standby(holder) => Some(standby_refusal(holder.as_ref())),
        }
    }

    /// Runs the role on the open log until `stop`: a standby follows the stream until the lease
    /// lapses, then becomes the writer; a writer publishes (the outbox) and keeps its lease. What
    /// ends a role for good (the lease lost, a stream that does not continue the log) goes to
    /// `fatal`, and the node stops: started again, it comes back as a standby.
    pub async fn run(
        self,
        log: Arc<EventLog>,
        grpc: String,
        config: OutboxConfig,
        published: Arc<OutboxStatus>,
        mut stop: watch::Receiver<bool>,
        fatal: mpsc::UnboundedSender<String>,
    ) {
        let Failover {
            store,
            mut me,
            start,
            status,
        } = self;
        // The address bound (the lease said the one asked for, which may be port 0).
        me.grpc = grpc;
        let (lease, follower) = match start {
            Start::Writer(lease) => (lease.held_by(me), None),
            Start::Standby(_) => match stand_by(&log, &config, &store, &me, &mut stop).await {
                Ok(Some((lease, follower))) => (lease, Some(follower)),
                Ok(None) => return,
                Err(why) => {
                    let _ = fatal.send(why);
                    return;
                }
            },
        };
        // Kept from the moment it is held, also while a standby catches up.
        let mut keeper = tokio::spawn(lease.keep(stop.clone()));
        let lost = |why: String| {
            format!(
                "{why}. Nothing acknowledged is lost; start this node again: it comes back as a \
                 standby, dropping the events the stream does not hold (never acknowledged)"
            )
        };
        if let Some(follower) = follower {
            tokio::select! {
                promoted = promote(&log, &config, follower) => if let Err(why) = promoted {
                    let _ = fatal.send(why);
                    return;
                },
                kept = &mut keeper => {
                    if let Ok(Some(why)) = kept {
                        let _ = fatal.send(lost(why));
                    }
                    return;
                }
            }
        }
        status.set(Role::Writer);
        let outbox = tokio::spawn(outbox::run(log.clone(), config, published, stop.clone()));
        let why = tokio::select! {
            kept = keeper => kept.ok().flatten(),
            ended = outbox => match ended {
                Ok(Err(stale)) => Some(stale.to_string()),
                _ => None,
            },
        };
        if let Some(why) = why {
            log.set_refusal(Some(why.clone()));
            let _ = fatal.send(lost(why));
        }
    }
}

/// What a client appending to a standby following `holder` is told.
fn standby_refusal(holder: Option<&Holder>) -> String {
    format!(
        "this event log is a standby: it follows the writer{} and takes no appends; append to \
         the writer (a retry with the same event ids is safe)",
        holder.map(|h| format!(", {h}")).unwrap_or_default()
    )
}

/// A standby's follower, still running, and how to stop it.
struct Following {
    task: tokio::task::JoinHandle<Result<(), String>>,
    stop: watch::Sender<bool>,
}

/// Why a standby stops: the stream holds an event that does not continue its log.
fn stopped(why: String) -> String {
    format!(
        "{why}. This standby stopped: JetStream holds a damaged or foreign event. Check the \
         writer's log with `journey verify`; rebuild this node with `journey restore --from-nats` \
         once the stream is repaired"
    )
}

/// Follows the stream until the lease lapses and this node takes it: the lease and the follower
/// (still running), `None` on `stop`, or why the standby stopped.
async fn stand_by(
    log: &Arc<EventLog>,
    config: &OutboxConfig,
    store: &kv::Store,
    me: &Holder,
    stop: &mut watch::Receiver<bool>,
) -> Result<Option<(Lease, Following)>, String> {
    let (stop_following, following) = watch::channel(false);
    let mut task = tokio::spawn(follow::follow(log.clone(), config.clone(), following));
    let heard = |h: Option<&Holder>| log.set_refusal(Some(standby_refusal(h)));
    let taken = tokio::select! {
        taken = lease::take_when_lapsed(store, me, stop, heard) => taken,
        ended = &mut task => return match ended {
            Ok(Err(why)) => Err(stopped(why)),
            _ => Ok(None),
        },
    };
    let Some((lease, previous)) = taken else {
        let _ = stop_following.send(true);
        let _ = task.await;
        return Ok(None);
    };
    let from = previous.map_or("nobody".to_string(), |h| h.to_string());
    tracing::warn!(previous = %from, head = log.durable_head().position, "the writer's lease lapsed: this standby took it and becomes the writer once it holds the whole stream");
    Ok(Some((
        lease,
        Following {
            task,
            stop: stop_following,
        },
    )))
}

/// Makes a standby that holds the lease the writer: once its log holds every message the stream
/// holds (the follower still running), the follower stops, the replicated watermark is brought
/// to the stream, and appends are taken. NATS trouble meanwhile (a cluster recovering) is waited
/// out; only a stream that does not continue the log ends it.
async fn promote(
    log: &Arc<EventLog>,
    config: &OutboxConfig,
    following: Following,
) -> Result<(), String> {
    let mut tries = 0u32;
    while let Err(e) = catch_up(log, config).await {
        if following.task.is_finished() {
            break;
        }
        tries += 1;
        if tries % 10 == 1 {
            tracing::warn!(error = %format!("{e:#}"), "becoming the writer: catching up with the stream");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = following.stop.send(true);
    match following.task.await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return Err(stopped(why)),
        Err(e) => return Err(format!("the standby's follower failed: {e}")),
    }
    let mut tries = 0u32;
    while let Err(e) = outbox::check_replicated_at_start(log, config).await {
        if e.is::<journey_services::replication::Stale>() {
            return Err(format!(
                "this standby took the lease but cannot become the writer: {e}"
            ));
        }
        tries += 1;
        if tries % 10 == 1 {
            tracing::warn!(error = %format!("{e:#}"), "becoming the writer: checking the stream");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    log.set_refusal(None);
    tracing::warn!(
        position = log.head().position,
        "this node is now the writer: appends are taken from position {}",
        log.head().position + 1
    );
    Ok(())
}

/// Whether the log holds every message the stream holds, waiting up to [`CATCH_UP`] for it.
async fn catch_up(log: &EventLog, config: &OutboxConfig) -> anyhow::Result<()> {
    let (_, mut stream) = outbox::connect_stream(config).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut durable = log.watch_durable();
    tokio::time::timeout(CATCH_UP, durable.wait_for(|h| h.position >= last))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "it did not reach the stream's last message {last} within {CATCH_UP:?} (at {})",
                log.durable_head().position
            )
        })??;
    Ok(())
}
