//! The log as every service of a node reads it: the very `EventLog` API partners call, served by
//! this process ([`LogService`] over the open log) or by a remote log over gRPC (with the node's
//! `--log-token` and TLS trust, set once in [`Remote`]).
//!
//! The audit service, the dashboard's timeline, rebuilds and the anchor all read through it, so a
//! read side in a split deployment reaches a secured log exactly as `journey up` reaches its own.
use crate::log_service::{AppendLimits, LogService};
use futures::StreamExt;
use journey_event_log::EventLog;
use journey_log_access::{Grpc, InProcess, LogClient, Remote};
use journey_proto::v1::{
    event_log_server::EventLog as LogApi, Event, EventBatch, HeadRequest, ReadStreamRequest,
    VerifyRequest, VerifyResponse,
};
use std::{pin::Pin, sync::Arc};
use tokio_stream::Stream;
use tonic::{Request, Status};

pub type Hash = [u8; 32];
pub type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

// A few per node, made at start: the size of the remote variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum LogHandle {
    InProcess {
        log: Arc<EventLog>,
        service: Arc<LogService>,
    },
    Remote {
        remote: Remote,
        client: LogClient,
    },
}

impl LogHandle {
    /// The log open in this process.
    pub fn local(log: Arc<EventLog>) -> LogHandle {
        let service = Arc::new(LogService::new(log.clone(), AppendLimits::NONE, None));
        LogHandle::InProcess { log, service }
    }

    /// A remote log; connects on first use (a read side may start before its log).
    pub fn remote(remote: &Remote) -> anyhow::Result<LogHandle> {
        Ok(LogHandle::Remote {
            client: remote.client_on(remote.lazy_channel()?),
            remote: remote.clone(),
        })
    }

    /// A name for the log in reports: its folder-less "in process", or its address.
    pub fn describe(&self) -> String {
        match self {
            LogHandle::InProcess { .. } => "in process".into(),
            LogHandle::Remote { remote, .. } => remote.url.clone(),
        }
    }

    pub async fn head(&self) -> Result<(u64, Hash), Status> {
        let r = match self {
            LogHandle::InProcess { service, .. } => {
                service.head(Request::new(HeadRequest {})).await?
            }
            LogHandle::Remote { client, .. } => client.clone().head(HeadRequest {}).await?,
        }
        .into_inner();
        Ok((r.position, r.hash.as_slice().try_into().unwrap_or([0; 32])))
    }

    pub async fn verify(&self, req: VerifyRequest) -> Result<VerifyResponse, Status> {
        Ok(match self {
            LogHandle::InProcess { service, .. } => service.verify(Request::new(req)).await?,
            LogHandle::Remote { client, .. } => client.clone().verify(req).await?,
        }
        .into_inner())
    }

    /// One patient's events from `from_version`, in batches.
    pub async fn read_stream(
        &self,
        patient_id: &str,
        from_version: u64,
    ) -> Result<BoxStream<EventBatch>, Status> {
        let req = ReadStreamRequest {
            patient_id: patient_id.to_owned(),
            from_version,
            batch_size: 0,
        };
        Ok(match self {
            LogHandle::InProcess { service, .. } => {
                service.read_stream(Request::new(req)).await?.into_inner()
            }
            LogHandle::Remote { client, .. } => {
                Box::pin(client.clone().read_stream(req).await?.into_inner())
            }
        })
    }

    /// Every event of one patient, oldest first.
    pub async fn patient(&self, patient_id: &str) -> Result<Vec<Event>, Status> {
        let mut stream = self.read_stream(patient_id, 1).await?;
        let mut out = Vec::new();
        while let Some(batch) = stream.next().await {
            out.extend(batch?.events);
        }
        Ok(out)
    }

    /// Whether the log holds any event of the patient.
    pub async fn exists(&self, patient_id: &str) -> Result<bool, Status> {
        let mut stream = self.read_stream(patient_id, 1).await?;
        match stream.next().await {
            Some(batch) => Ok(!batch?.events.is_empty()),
            None => Ok(false),
        }
    }

    /// An event source over the whole log (rebuilds, the reactor's catch-up).
    pub async fn source(&self) -> anyhow::Result<Source> {
        Ok(match self {
            LogHandle::InProcess { log, .. } => Source::InProcess(InProcess::new(log.clone())),
            LogHandle::Remote { remote, .. } => Source::Grpc(Grpc::connect(remote).await?),
        })
    }
}

/// The event source a [`LogHandle`] gives (one per follower, made at start).
#[allow(clippy::large_enum_variant)]
pub enum Source {
    InProcess(InProcess),
    Grpc(Grpc),
}

impl journey_log_access::EventSource for Source {
    async fn head(&mut self) -> anyhow::Result<u64> {
        match self {
            Source::InProcess(s) => s.head().await,
            Source::Grpc(s) => s.head().await,
        }
    }
    async fn range(&mut self, from: u64, to: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        match self {
            Source::InProcess(s) => s.range(from, to, max).await,
            Source::Grpc(s) => s.range(from, to, max).await,
        }
    }
    async fn next(&mut self, from: u64, max: usize) -> anyhow::Result<Vec<Event>> {
        match self {
            Source::InProcess(s) => s.next(from, max).await,
            Source::Grpc(s) => s.next(from, max).await,
        }
    }
}
