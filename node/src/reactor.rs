//! The telemonitoring alert reactor as a part: it follows the node's log and appends the
//! `AlertRaised` events the rules decide, to the log of this process or to a remote one.
use super::{connect_with_retry, logged, spec::ReactorSpec, Part, Running, Shared};
use journey_log_access::Nats;
use journey_services::{
    log_handle::LogHandle,
    reactor::{self, ReactorStatus, Sink},
};
use serde_json::{json, Map, Value};
use tokio::{sync::watch, task::JoinHandle};

pub struct Reactor {
    log: LogHandle,
    nats: Option<super::spec::Nats>,
    status: watch::Receiver<ReactorStatus>,
    status_tx: Option<watch::Sender<ReactorStatus>>,
}

impl Reactor {
    pub fn new(spec: &ReactorSpec, shared: &Shared) -> Reactor {
        let (status_tx, status) = watch::channel(ReactorStatus::default());
        Reactor {
            log: shared.log.clone(),
            nats: spec.nats.clone(),
            status,
            status_tx: Some(status_tx),
        }
    }
}

/// Reads and appends through `log`; live events from NATS when given (a node without the log).
async fn run(
    log: LogHandle,
    nats: Option<super::spec::Nats>,
    status: watch::Sender<ReactorStatus>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let what = "the alert reactor's feed";
    match &log {
        LogHandle::InProcess { log: local, .. } => {
            let sink = Sink::Local(local.clone());
            reactor::run(log.source().await?, sink, status, stop).await
        }
        LogHandle::Remote { remote, client } => {
            let sink = Sink::Remote(client.clone());
            match nats {
                Some(n) => {
                    let connect = || Nats::connect(remote, &n.url, &n.stream);
                    match connect_with_retry(what, stop.clone(), connect).await {
                        Some(source) => reactor::run(source, sink, status, stop).await,
                        None => Ok(()),
                    }
                }
                None => match connect_with_retry(what, stop.clone(), || log.source()).await {
                    Some(source) => reactor::run(source, sink, status, stop).await,
                    None => Ok(()),
                },
            }
        }
    }
}

impl Part for Reactor {
    fn status(&self, out: &mut Map<String, Value>) {
        out.insert("reactor".into(), json!(*self.status.borrow()));
    }

    fn start(&mut self, running: &Running) -> Vec<JoinHandle<()>> {
        let stop = &running.stop;
        let Some(status) = self.status_tx.take() else {
            return Vec::new();
        };
        vec![logged(
            "the alert reactor",
            run(self.log.clone(), self.nats.clone(), status, stop.clone()),
        )]
    }
}
