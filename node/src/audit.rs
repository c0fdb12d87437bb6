//! The `Audit` service as a part: over the log of this process (anchored by the log itself) or
//! over a remote log, keeping its own anchor of that log's head when given a file (an anchor on
//! another machine than the log is the stronger one). It keeps the access log's head anchored
//! too, beside the log's anchor (`<anchor>.access-log.json`), so that `VerifyAccesses` sees a
//! cut tail.
use super::{spec::AuditSpec, Part, Running, Shared};
use journey_proto::v1::audit_server::AuditServer;
use journey_services::{
    access_log::AccessLog,
    anchor::{self, AnchorKeeper},
    audit_service::AuditService,
    log_handle::LogHandle,
};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::{sync::Arc, time::Duration};
use tokio::task::JoinHandle;
use tonic::{server::NamedService, service::RoutesBuilder};

pub struct AuditPart {
    service: AuditService,
    /// The anchor this part keeps (a remote log's); a local log keeps its own.
    kept: Option<(Arc<AnchorKeeper>, Duration)>,
    /// The access log's anchor, kept by this part.
    access_kept: Option<(Arc<AnchorKeeper>, AccessLog, Duration)>,
}

/// Where the access log's head is anchored: beside the log's anchor file.
fn access_anchor_path(log_anchor: &Path) -> PathBuf {
    log_anchor.with_extension("access-log.json")
}

impl AuditPart {
    /// `local_keeper`: the anchor of the log this node holds, if it holds one.
    pub async fn new(
        spec: &AuditSpec,
        local_keeper: Option<Arc<AnchorKeeper>>,
        shared: &Shared,
    ) -> AuditPart {
        let kept = match (&local_keeper, &spec.anchor_file) {
            (None, Some(file)) => {
                let keeper = Arc::new(AnchorKeeper::new(file.clone(), shared.log.describe()));
                keeper.check_at_start(&shared.log).await;
                Some((keeper, spec.anchor_interval))
            }
            _ => None,
        };
        let anchor = local_keeper.or_else(|| kept.as_ref().map(|(k, _)| k.clone()));
        let mut access_kept = None;
        if let (Some(a), Some(access)) = (&anchor, &shared.access) {
            let keeper = Arc::new(AnchorKeeper::of(
                anchor::ACCESS_LOG,
                access_anchor_path(a.path()),
                "the access log".into(),
            ));
            keeper.check_at_start(access).await;
            let every = match spec.anchor_interval {
                Duration::ZERO => Duration::from_secs(1),
                d => d,
            };
            access_kept = Some((keeper, access.clone(), every));
        }
        AuditPart {
            service: AuditService {
                log: shared.log.clone(),
                anchor,
                access: shared.access.clone(),
                access_anchor: access_kept.as_ref().map(|(k, _, _)| k.clone()),
            },
            kept,
            access_kept,
        }
    }

    fn log(&self) -> &LogHandle {
        &self.service.log
    }
}

impl Part for AuditPart {
    fn grpc(&self, routes: &mut RoutesBuilder) -> Vec<&'static str> {
        routes.add_service(AuditServer::new(self.service.clone()));
        vec![<AuditServer<AuditService> as NamedService>::NAME]
    }

    fn status(&self, out: &mut Map<String, Value>) {
        let Some((keeper, _)) = &self.kept else {
            return;
        };
        let log = self.log().describe();
        out.insert(
            "audit".into(),
            json!({
                "log_url": log,
                "anchor": {
                    "file": keeper.path().display().to_string(),
                    "anchored": keeper.read().ok().flatten().map(|a| a.to_json(&log)),
                    "problem": keeper.problem(),
                },
            }),
        );
    }

    fn start(&mut self, run: &Running) -> Vec<JoinHandle<()>> {
        let stop = &run.stop;
        let mut tasks = Vec::new();
        if let Some((keeper, interval)) = &self.kept {
            tasks.push(tokio::spawn(keeper.clone().keep(
                self.log().clone(),
                *interval,
                stop.clone(),
            )));
        }
        if let Some((keeper, access, interval)) = &self.access_kept {
            let (keeper, access, interval, stop) =
                (keeper.clone(), access.clone(), *interval, stop.clone());
            tasks.push(tokio::spawn(async move {
                keeper.clone().keep(access.clone(), interval, stop).await;
                // The refusals counted since the last minute, then the final head.
                access.flush_refusals(true).await;
                if let Err(e) = keeper.tick(&access).await {
                    tracing::warn!(error = %format!("{e:#}"), "anchoring the access log's head failed");
                }
            }));
        }
        tasks
    }
}
