//! The HL7 v2 listener over MLLP as a part (`journey-hl7` serves it): its messages' events are
//! appended through the log's own `Append` path as a partner of the configured organisation, so
//! the write rights of docs/design.md §6 hold exactly as for a gRPC partner. In a node holding
//! the log, through the `EventLog` service in process (the organisation given by
//! `--mllp-organisation`); in `journey serve hl7`, over gRPC with `--log-token`, the partner key.
use super::{spec::LogSpec, Part, Running, Shared, Spec};
use anyhow::Context;
use journey_hl7::{listener::connection, Config, Settings, Sink};
use journey_proto::v1::{event_log_server::EventLog as _, AppendRequest};
use journey_services::{
    config::Hl7Config,
    connections::HANDSHAKE,
    log_handle::LogHandle,
    log_service::{AppendLimits, LogService},
    principal::{Principal, Role},
    tls::{Alpn, TlsAcceptor},
};
use serde_json::{json, Map, Value};
use std::{future::Future, pin::Pin, sync::Arc};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinHandle};
use tonic::{Request, Status};

pub struct Hl7Part {
    addr: String,
    config: Arc<Config>,
    sink: Arc<dyn Sink>,
    listener: Option<TcpListener>,
    /// TLS on the MLLP port too when the node has a certificate (`--tls-cert`).
    tls: Option<TlsAcceptor>,
    /// One permit per open connection (`--mllp-max-connections`).
    slots: Arc<Semaphore>,
}

impl Hl7Part {
    /// Reads the settings and binds the port: a bad setting or a port in use refuses the start.
    pub async fn open(h: &Hl7Config, spec: &Spec, shared: &Shared) -> anyhow::Result<Hl7Part> {
        let addr = h.mllp_addr.clone().unwrap_or_default();
        let tls = spec.front.tls.acceptor(Alpn::Mllp)?;
        let organisation = h
            .mllp_organisation
            .clone()
            .filter(|o| !o.trim().is_empty())
            .context(
                "--mllp-addr needs --mllp-organisation: the organisation HL7 messages are written as \
                 (the sending hospital's; with serve hl7, the organisation of --log-token)",
            )?;
        let time_zone = h.hl7_time_zone.parse::<journey_hl7::Tz>().map_err(|_| {
            anyhow::anyhow!(
                "--hl7-time-zone {:?} is not an IANA time zone name (for instance Europe/Paris)",
                h.hl7_time_zone
            )
        })?;
        let config = Config {
            settings: Settings {
                organisation: organisation.clone(),
                patient_id_authority: h.hl7_patient_id_authority.clone(),
                time_zone,
            },
            max_message_bytes: h.mllp_max_bytes,
            idle_timeout: h.mllp_idle_timeout,
        };
        let sink: Arc<dyn Sink> = match (&shared.log, &spec.log) {
            (LogHandle::InProcess { log, .. }, LogSpec::Local(c)) => Arc::new(InProcess {
                service: LogService::new(log.clone(), AppendLimits::of(c), shared.access.clone()),
                partner: Principal {
                    subject: format!("hl7:{organisation}"),
                    role: Role::Partner,
                    organisation,
                    territory: None,
                },
            }),
            (LogHandle::Remote { client, .. }, _) => Arc::new(Remote(client.clone())),
            (LogHandle::InProcess { .. }, LogSpec::Remote(_)) => {
                unreachable!("a log in process comes from a local log spec")
            }
        };
        let listener = TcpListener::bind(&addr).await.with_context(|| {
            format!("cannot listen for MLLP on {addr} (--mllp-addr): in use, or not an address")
        })?;
        let bound = listener.local_addr()?.to_string();
        tracing::info!(addr = %bound, tls = tls.is_some(), "HL7 MLLP listener");
        Ok(Hl7Part {
            addr: bound,
            config: Arc::new(config),
            sink,
            listener: Some(listener),
            tls,
            slots: Arc::new(Semaphore::new(h.mllp_max_connections.max(1))),
        })
    }
}

impl Part for Hl7Part {
    fn status(&self, out: &mut Map<String, Value>) {
        out.insert(
            "hl7".into(),
            json!({
                "mllp_addr": self.addr,
                "tls": self.tls.is_some(),
                "organisation": self.config.settings.organisation,
            }),
        );
    }

    fn start(&mut self, running: &Running) -> Vec<JoinHandle<()>> {
        let Some(listener) = self.listener.take() else {
            return Vec::new();
        };
        let (config, sink, tls, slots, mut stop) = (
            self.config.clone(),
            self.sink.clone(),
            self.tls.clone(),
            self.slots.clone(),
            running.stop.clone(),
        );
        vec![tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stop.wait_for(|s| *s) => return,
                };
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, most likely: let connections close first.
                        tracing::warn!(error = %e, "cannot accept an MLLP connection");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "MLLP connection closed: --mllp-max-connections are open");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let (config, sink, tls, stop) =
                    (config.clone(), sink.clone(), tls.clone(), stop.clone());
                tokio::spawn(async move {
                    let _slot = slot; // given back when the connection ends
                    let Some(tls) = tls else {
                        return connection(tcp, peer, config, sink, stop).await;
                    };
                    // The handshake beside the accept loop, bounded in time as on the other ports.
                    match tokio::time::timeout(HANDSHAKE, tls.accept(tcp)).await {
                        Ok(Ok(stream)) => connection(stream, peer, config, sink, stop).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "MLLP TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "MLLP TLS handshake too slow"),
                    }
                });
            }
        })]
    }
}

/// The log of this node, through its `EventLog` service as the partner.
struct InProcess {
    service: LogService,
    partner: Principal,
}

impl Sink for InProcess {
    fn append(
        &self,
        request: AppendRequest,
    ) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send + '_>> {
        Box::pin(async move {
            let mut request = Request::new(request);
            request.extensions_mut().insert(self.partner.clone());
            self.service.append(request).await.map(|_| ())
        })
    }
}

/// A remote log, with the node's `--log-token` (the partner key).
struct Remote(journey_log_access::LogClient);

impl Sink for Remote {
    fn append(
        &self,
        request: AppendRequest,
    ) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send + '_>> {
        let mut client = self.0.clone();
        Box::pin(async move { client.append(request).await.map(|_| ()) })
    }
}
