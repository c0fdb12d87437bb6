//! The log a node holds: the folder opened with the journey rules as its gate, the `EventLog`
//! gRPC service partners call, the NATS outbox, and the chain head anchored outside the folder.
use super::{spec::Spec, Part, Running};
use journey_event_log::{EventLog, LogOptions, SledStorage};
use journey_failover::{lease::Holder, Failover, Role, RoleStatus};
use journey_log_access::MAX_MESSAGE;
use journey_proto::{hex::hex, v1::event_log_server::EventLogServer};
use journey_services::{
    access_log::AccessLog,
    anchor::AnchorKeeper,
    config::{AckMode, LogConfig},
    log_handle::LogHandle,
    log_service::{AppendLimits, LogService},
    outbox::{self, OutboxConfig, OutboxStatus},
};
use serde_json::{json, Map, Value};
use std::{
    path::PathBuf,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};
use tokio::{sync::watch, task::JoinHandle};
use tonic::{server::NamedService, service::RoutesBuilder};

pub struct LocalLog {
    log: Arc<EventLog>,
    data_dir: PathBuf,
    keeper: Arc<AnchorKeeper>,
    anchor_interval: Duration,
    handle: LogHandle,
    /// Replicated mode: the node's role, handed to the log's part when it starts.
    failover: std::sync::Mutex<Option<Failover>>,
}

impl LocalLog {
    /// Opens the folder (replaying the journal, rebuilding the rules' state) and checks the log
    /// against its anchor: a log behind its anchor is reported loudly, and the anchor is then kept
    /// as evidence, never overwritten.
    pub async fn open(config: &LogConfig, grpc_addr: &str) -> anyhow::Result<LocalLog> {
        let replicated = config.ack == AckMode::Replicated;
        if replicated && config.nats_url.is_none() {
            anyhow::bail!(
                "--ack replicated needs --nats-url: the NATS JetStream cluster (three servers) \
                 that must hold every event before it is acknowledged"
            );
        }
        if config.standby && !replicated {
            anyhow::bail!(
                "--standby follows a replicated log: it needs --ack replicated and --nats-url \
                 (the writer's cluster)"
            );
        }
        let replication = replicated.then(|| Duration::from_millis(config.ack_timeout_ms));
        let dir = config.data_dir.clone();
        let storage = tokio::task::spawn_blocking(move || -> anyhow::Result<SledStorage> {
            journey_services::files::private_data_dir(&dir)?;
            tracing::info!(dir = %dir.display(), "opening the event log's storage (sled, and its journal after a crash)");
            let storage = SledStorage::open(&dir).map_err(|e| open_failure(&dir, e.into()))?;
            journey_services::files::restrict_tree(&dir)?;
            Ok(storage)
        })
        .await??;
        let outbox = outbox_config(config);
        // Replicated: who writes is decided before the log opens (a standby first drops what the
        // stream does not hold).
        let failover = match outbox.as_ref().filter(|o| o.replicated) {
            Some(o) => {
                let me = Holder {
                    node: journey_failover::node_id(&config.data_dir)?,
                    grpc: grpc_addr.to_string(),
                };
                Some(journey_failover::prepare(&storage, o, me, config.standby).await?)
            }
            None => None,
        };
        let dir = config.data_dir.clone();
        let log = tokio::task::spawn_blocking(move || -> anyhow::Result<EventLog> {
            let options = LogOptions {
                checkpoint: Some(journey_event_log::checkpoint_in(&dir)),
                replication,
                ..LogOptions::default()
            };
            EventLog::open(
                Arc::new(storage),
                journey_services::gate::journey_rules(),
                options,
            )
            .map_err(|e| open_failure(&dir, e.into()))
        })
        .await??;
        let log = Arc::new(log);
        match (&failover, &outbox) {
            (Some(f), _) if f.role() == Role::Standby => {
                // Everything a standby holds is in the stream.
                log.mark_replicated(log.durable_head());
                log.set_refusal(f.refusal());
            }
            // Readers (and the anchor check below) see only what the cluster holds.
            (_, Some(o)) if o.replicated => outbox::check_replicated_at_start(&log, o).await?,
            _ => {}
        }
        tracing::info!(head = log.head().position, dir = %config.data_dir.display(), role = failover.as_ref().map(|f| f.role().name()), "event log open");
        let handle = LogHandle::local(log.clone());
        let keeper = Arc::new(AnchorKeeper::new(
            config.anchor.path_for(&config.data_dir),
            config.data_dir.display().to_string(),
        ));
        keeper.check_at_start(&handle).await;
        Ok(LocalLog {
            log,
            data_dir: config.data_dir.clone(),
            keeper,
            anchor_interval: Duration::from_millis(config.anchor.anchor_interval_ms),
            handle,
            failover: std::sync::Mutex::new(failover),
        })
    }

    pub fn handle(&self) -> LogHandle {
        self.handle.clone()
    }

    pub fn anchor_keeper(&self) -> Arc<AnchorKeeper> {
        self.keeper.clone()
    }

    /// The local admin token (created on first start; the CLI verbs read it from the folder).
    pub fn admin_token(&self) -> anyhow::Result<String> {
        let token = journey_services::auth::admin_token(&self.data_dir)?;
        eprintln!(
            "admin token in {} (the CLI verbs read it from there)",
            self.data_dir.join("admin.token").display()
        );
        Ok(token)
    }

    /// The part serving this log: `EventLog` over gRPC (its reads recorded in `access`), the
    /// outbox, the anchor, `/status`.
    pub fn part(&self, spec: &Spec, access: Option<AccessLog>) -> LogPart {
        let super::spec::LogSpec::Local(config) = &spec.log else {
            unreachable!("a local log part comes from a local log spec")
        };
        LogPart {
            log: self.log.clone(),
            service: Arc::new(LogService::new(
                self.log.clone(),
                AppendLimits::of(config),
                access,
            )),
            max_request: AppendLimits::of(config).decoding_limit(),
            outbox: outbox_config(config),
            published: Arc::new(OutboxStatus::default()),
            role: None,
            failover: self.failover.lock().expect("failover lock").take(),
            keeper: self.keeper.clone(),
            anchor_interval: self.anchor_interval,
            handle: self.handle.clone(),
        }
    }

    /// Leaves a log that failed to write without closing it. sled cannot be closed or even dropped
    /// after an IO failure (its flush on drop waits forever for a write that failed), and nothing
    /// needs it: every acknowledged group is in the journal, which the next start reconciles.
    pub fn abandon(self) {
        tracing::warn!(
            head = self.log.head().position,
            "event log left unclosed after its storage failure; the next start recovers it from the journal"
        );
        std::mem::forget(self.log);
    }

    /// Flushes and closes the log, then anchors its last head, once nothing can move it any more.
    pub async fn close(self) -> anyhow::Result<()> {
        self.log.close().await?;
        // sled's files made since the log opened (blobs) follow the umask; the folder is private.
        if let Err(e) = journey_services::files::restrict_tree(&self.data_dir) {
            tracing::warn!(error = %format!("{e:#}"), "cannot make the log's files private");
        }
        if let Err(e) = self.keeper.tick(&self.handle).await {
            tracing::warn!(error = %format!("{e:#}"), "anchoring the final head failed");
        }
        tracing::info!(
            head = self.log.head().position,
            "event log flushed and closed"
        );
        Ok(())
    }
}

/// Where the log publishes, if anywhere.
fn outbox_config(config: &LogConfig) -> Option<OutboxConfig> {
    config.nats_url.clone().map(|url| OutboxConfig {
        url,
        stream: config.nats_stream.clone(),
        subject_prefix: config.nats_subject_prefix.clone(),
        replicated: config.ack == AckMode::Replicated,
    })
}

pub struct LogPart {
    log: Arc<EventLog>,
    service: Arc<LogService>,
    /// The largest request message the `EventLog` service decodes.
    max_request: usize,
    outbox: Option<OutboxConfig>,
    published: Arc<OutboxStatus>,
    /// Replicated mode: the role, which runs the outbox (as the writer).
    failover: Option<Failover>,
    role: Option<Arc<RoleStatus>>,
    keeper: Arc<AnchorKeeper>,
    anchor_interval: Duration,
    handle: LogHandle,
}

impl Part for LogPart {
    fn grpc(&self, routes: &mut RoutesBuilder) -> Vec<&'static str> {
        routes.add_service(
            EventLogServer::from_arc(self.service.clone())
                .max_decoding_message_size(self.max_request)
                .max_encoding_message_size(MAX_MESSAGE),
        );
        vec![<EventLogServer<LogService> as NamedService>::NAME]
    }

    fn status(&self, out: &mut Map<String, Value>) {
        let head = self.log.head();
        out.insert("head_position".into(), json!(head.position));
        out.insert("head_hash".into(), json!(hex(&head.hash)));
        out.insert(
            "nats_published".into(),
            json!(self
                .outbox
                .as_ref()
                .map(|_| self.published.published.load(Ordering::Relaxed))),
        );
        out.insert("failure".into(), json!(self.log.failure()));
        let role = self
            .failover
            .as_ref()
            .map(|f| f.status())
            .or(self.role.clone());
        out.insert("role".into(), json!(role.map(|r| r.role().name())));
    }

    fn start(&mut self, run: &Running) -> Vec<JoinHandle<()>> {
        let stop = &run.stop;
        let mut tasks = vec![tokio::spawn(self.keeper.clone().keep(
            self.handle.clone(),
            self.anchor_interval,
            stop.clone(),
        ))];
        tasks.push(tokio::spawn(watch_failure(
            self.log.clone(),
            stop.clone(),
            run.fatal.clone(),
        )));
        match (self.failover.take(), self.outbox.clone()) {
            (Some(failover), Some(config)) => {
                self.role = Some(failover.status());
                tasks.push(tokio::spawn(failover.run(
                    self.log.clone(),
                    run.grpc.to_string(),
                    config,
                    self.published.clone(),
                    stop.clone(),
                    run.fatal.clone(),
                )));
            }
            (_, Some(config)) => {
                let (log, published, stop) =
                    (self.log.clone(), self.published.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    // Without the lease (`--ack local`) the stream is never fenced: nothing is stale.
                    let _ = outbox::run(log, config, published, stop).await;
                }));
            }
            _ => {}
        }
        tasks
    }
}

/// Ends the node when the log can no longer write (a storage failure: a full disk, an IO error).
/// The log refuses every append from then on; rather than serve reads beside a log that takes no
/// writes, the node stops in order and exits with what to do, for an operator or a supervisor to
/// start it again. A restart is the recovery: opening the log brings sled back to exactly the
/// journal's whole groups, the path every crash takes, where recovering in place would need a
/// second, rarely run one. Nothing acknowledged is lost either way: an append is acknowledged
/// only after the fsync that failed here would have covered it.
async fn watch_failure(
    log: Arc<EventLog>,
    mut stop: watch::Receiver<bool>,
    fatal: tokio::sync::mpsc::UnboundedSender<String>,
) {
    loop {
        if let Some(why) = log.failure() {
            let _ = fatal.send(format!(
                "the event log cannot write any more ({why}); every acknowledged event is safe. \
                 Free disk space (or repair the storage), then start the server again"
            ));
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Free space the log needs to start: its journal (preallocated whole) and room for sled.
const SPACE_TO_START: &str = "16 MiB";

/// Why the log in `dir` could not be opened, and what to do about it.
fn open_failure(dir: &std::path::Path, e: anyhow::Error) -> anyhow::Error {
    let text = format!("{e:#}");
    let hint = if text.contains("os error 28") || text.contains("No space left") {
        format!(
            "the disk holding {} is full: the log needs at least {SPACE_TO_START} free to start \
             (its journal is preallocated); free space, then start again",
            dir.display()
        )
    } else if text.contains("os error 11") || text.to_lowercase().contains("lock") {
        format!(
            "{} is in use by another process (another `journey up` or `journey serve \
             event-log`?): stop it, or give this one another --data-dir",
            dir.display()
        )
    } else {
        format!("cannot open the event log in {}", dir.display())
    };
    e.context(hint)
}
