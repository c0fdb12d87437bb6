//! The gRPC `Projections` service: the state of every read model this process runs, and
//! rebuilds by name (fresh tables beside the live ones, progress streamed, then a swap).
use crate::{errors, log_handle::LogHandle};
use journey_log_access::EventSource;
use journey_projections::{
    coordination::Coordination,
    planning::Planning,
    readmission::Readmission,
    runtime::{Progress, Projection, Runner},
};
use journey_proto::v1::{
    projections_server::Projections, ProjectionState, ProjectionStatusRequest,
    ProjectionStatusResponse, RebuildProgress, RebuildRequest,
};
use std::{pin::Pin, sync::Arc};
use tokio::sync::mpsc;
use tokio_stream::{wrappers::ReceiverStream, Stream};
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct ProjectionsService {
    pub readmission: Option<Arc<Runner<Readmission>>>,
    pub coordination: Option<Arc<Runner<Coordination>>>,
    /// The discharge-planning view, beside the coordination one.
    pub planning: Option<Arc<Runner<Planning>>>,
    pub log: LogHandle,
}

type Progressed = mpsc::Sender<Result<RebuildProgress, Status>>;

fn state<P: Projection>(r: &Runner<P>) -> ProjectionState {
    let s = *r.watch().borrow();
    ProjectionState {
        name: r.projection.name().into(),
        checkpoint: s.checkpoint,
        generation: s.generation,
        writer: r.is_writer(),
    }
}

/// Rebuilds one read model from `log`, sending progress to `tx`; errors end the stream.
async fn rebuild<P: Projection>(runner: Arc<Runner<P>>, log: LogHandle, tx: Progressed) {
    let report = {
        let tx = tx.clone();
        move |p: Progress| {
            let _ = tx.try_send(Ok(RebuildProgress {
                applied: p.applied,
                target: p.target,
                events_per_sec: p.events_per_sec,
                done: p.done,
            }));
        }
    };
    async fn with<P: Projection, S: EventSource>(
        runner: &Runner<P>,
        mut source: S,
        report: impl Fn(Progress),
    ) -> anyhow::Result<()> {
        runner.rebuild(&mut source, report).await.map(|_| ())
    }
    let result = match log.source().await {
        Ok(source) => with(&runner, source, report).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let _ = tx
            .send(Err(errors::rebuild_failed(runner.projection.name(), &e)))
            .await;
    }
}

impl ProjectionsService {
    fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if let Some(r) = &self.readmission {
            v.push(r.projection.name());
        }
        if let Some(r) = &self.coordination {
            v.push(r.projection.name());
        }
        if let Some(r) = &self.planning {
            v.push(r.projection.name());
        }
        v
    }
}

#[tonic::async_trait]
impl Projections for ProjectionsService {
    async fn status(
        &self,
        _: Request<ProjectionStatusRequest>,
    ) -> Result<Response<ProjectionStatusResponse>, Status> {
        let mut projections = Vec::new();
        if let Some(r) = &self.readmission {
            projections.push(state(r));
        }
        if let Some(r) = &self.coordination {
            projections.push(state(r));
        }
        if let Some(r) = &self.planning {
            projections.push(state(r));
        }
        let (log_head, _) = self.log.head().await?;
        Ok(Response::new(ProjectionStatusResponse {
            projections,
            log_head,
        }))
    }

    type RebuildStream = Pin<Box<dyn Stream<Item = Result<RebuildProgress, Status>> + Send>>;

    async fn rebuild(
        &self,
        request: Request<RebuildRequest>,
    ) -> Result<Response<Self::RebuildStream>, Status> {
        let name = request.into_inner().projection;
        let (tx, rx) = mpsc::channel(16);
        let log = self.log.clone();
        match (name.as_str(), &self.readmission, &self.coordination) {
            ("readmission", Some(r), _) => {
                tokio::spawn(rebuild(r.clone(), log, tx));
            }
            ("coordination", _, Some(r)) => {
                tokio::spawn(rebuild(r.clone(), log, tx));
            }
            ("planning", _, _) if self.planning.is_some() => {
                let r = self.planning.clone().expect("checked");
                tokio::spawn(rebuild(r, log, tx));
            }
            _ => return Err(errors::unknown_projection(&name, &self.names())),
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
