//! The gRPC `Audit` service (docs/design.md §5 "Audit trail"): a patient's timeline, the bi-temporal
//! state "as of", chain verification against an anchored head (`anchor.rs`), and a FHIR R4 export
//! (`fhir_audit.rs`).
//!
//! It reads the log through a [`LogHandle`]: in `journey up` the in-process log (through the very
//! `EventLog` service implementation partners call), in `journey serve audit` a remote log over
//! gRPC. The state fold is pure and lives in `journey_domain::as_of`.
use crate::{
    anchor::{AnchorKeeper, Anchored},
    errors,
    fhir_audit::{fhir_audit_event, fhir_provenance},
    log_handle::{BoxStream, Hash, LogHandle},
};
use futures::StreamExt;
use journey_projections::access_log::add_problem;
use journey_proto::{
    hex::hex,
    prost_types::Timestamp,
    v1::{
        audit_server::Audit, AccessRecord, AccessesRequest, AccessesResponse, AsOfRequest,
        AsOfResponse, AuditAnchor, AuditVerifyRequest, AuditVerifyResponse, Event, EventBatch,
        ExportLine, ExportRequest, TimelineEntry, TimelineRequest, VerifyAccessesRequest,
        VerifyAccessesResponse, VerifyRequest,
    },
    EventType,
};
use std::{sync::Arc, time::SystemTime};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct AuditService {
    pub log: LogHandle,
    pub anchor: Option<Arc<AnchorKeeper>>,
    /// Where reads are recorded, and where `Accesses` reads them from (`None`: no database here,
    /// and every read is refused: no record, no data).
    pub access: Option<crate::access_log::AccessLog>,
    /// The access log's head anchored outside its database (`None`: not anchored by this node).
    pub access_anchor: Option<Arc<AnchorKeeper>>,
}

/// Who reads: the caller, the purpose declared, the address the call came from.
struct Who {
    caller: Option<crate::principal::Principal>,
    purpose: String,
    peer: Option<std::net::SocketAddr>,
}

fn who<T>(request: &Request<T>) -> Who {
    Who {
        caller: crate::principal::of(request).cloned(),
        purpose: crate::access_log::purpose(request),
        peer: request.remote_addr(),
    }
}

fn micros(t: &Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos / 1000))
}

fn now() -> Timestamp {
    Timestamp::from(SystemTime::now())
}

/// 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59Z, as the protobuf Timestamp spec says.
fn check_time(field: &str, t: &Timestamp) -> Result<(), Status> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(errors::invalid(field, "nanos must be in 0..1000000000"));
    }
    if !(-62_135_596_800..=253_402_300_799).contains(&t.seconds) {
        return Err(errors::invalid(
            field,
            "out of range (years 0001 to 9999 only)",
        ));
    }
    Ok(())
}

fn check_patient(patient_id: &str) -> Result<(), Status> {
    if patient_id.trim().is_empty() {
        return Err(errors::invalid("patient_id", "required"));
    }
    Ok(())
}

/// Who is reading (reads of patient data are audited): the authenticated caller, if any.
fn reader<T>(request: &Request<T>) -> String {
    crate::principal::of(request).map_or_else(
        || "unauthenticated".into(),
        |p| format!("{} ({:?}, {})", p.subject, p.role, p.organisation),
    )
}

/// The timeline entry of one stored event.
pub fn timeline_entry(event: Event) -> TimelineEntry {
    let json = journey_proto::json::event_to_json(&event);
    let kind = event.payload.as_ref().map(EventType::of);
    let actor = event.actor.clone().unwrap_or_default();
    let delay = match (&event.occurred_at, &event.recorded_at) {
        (Some(o), Some(r)) => r.seconds - o.seconds,
        _ => 0,
    };
    TimelineEntry {
        event_type: kind.map_or("?", |k| k.name()).to_owned(),
        position: event.position,
        stream_version: event.stream_version,
        actor_id: actor.id,
        actor_role: actor.role,
        actor_organisation: actor.organisation,
        source: event.source.clone(),
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        recording_delay_seconds: delay,
        correlation_id: event.correlation_id.clone(),
        causation_id: event.causation_id.clone(),
        hash_hex: hex(&event.hash),
        prev_hash_hex: hex(&event.prev_hash),
        payload_json: kind
            .and_then(|k| json.get(k.snake()))
            .map(|p| p.to_string())
            .unwrap_or_default(),
        event: Some(event),
    }
}

/// Streams the items `f` makes of each event of `stream`, from a task.
fn flat_map_events<T: Send + 'static>(
    mut stream: BoxStream<EventBatch>,
    first: Option<EventBatch>,
    f: impl Fn(Event) -> Vec<T> + Send + 'static,
) -> BoxStream<T> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut pending = first.map(Ok);
        loop {
            let batch = match pending.take() {
                Some(b) => b,
                None => match stream.next().await {
                    Some(b) => b,
                    None => return,
                },
            };
            match batch {
                Ok(b) => {
                    for event in b.events {
                        for item in f(event) {
                            if tx.send(Ok(item)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(s) => {
                    let _ = tx.send(Err(s)).await;
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

impl AuditService {
    /// Records an auditor's read of a patient (`""`: of no one patient) before the data goes out;
    /// refuses the read when there is nowhere to record it.
    async fn record(&self, who: &Who, call: &str, patient_id: &str) -> Result<(), Status> {
        let Some(log) = &self.access else {
            return Err(errors::read_unrecorded(call));
        };
        log.record(crate::access_log::Access {
            caller: who.caller.as_ref(),
            call,
            patient_id,
            purpose: &who.purpose,
            outcome: "ok",
            peer: who.peer,
            ..Default::default()
        })
        .await
    }

    /// Opens a patient's stream; NOT_FOUND when the log has no event of them.
    async fn open_patient(
        &self,
        patient_id: &str,
        from_version: u64,
    ) -> Result<(BoxStream<EventBatch>, Option<EventBatch>), Status> {
        check_patient(patient_id)?;
        let mut stream = self
            .log
            .read_stream(patient_id, from_version.max(1))
            .await?;
        let first = stream.next().await.transpose()?;
        let empty = first.as_ref().is_none_or(|b| b.events.is_empty());
        if empty && (from_version <= 1 || !self.log.exists(patient_id).await?) {
            return Err(errors::unknown_patient(patient_id));
        }
        Ok((stream, first))
    }

    /// The anchor to check: the caller's, else the anchor file's.
    fn anchor_for(&self, given: Option<AuditAnchor>) -> Result<(Option<Anchored>, String), Status> {
        if let Some(a) = given {
            return Ok((Some(anchor_of(a)?), "request".into()));
        }
        match &self.anchor {
            None => Ok((None, "none".into())),
            Some(keeper) => {
                let source = format!("anchor file {}", keeper.path().display());
                match keeper.read() {
                    Ok(a) => Ok((a, source)),
                    Err(e) => Err(errors::anchor_unreadable(keeper.path(), &e)),
                }
            }
        }
    }
}

#[tonic::async_trait]
impl Audit for AuditService {
    type TimelineStream = BoxStream<TimelineEntry>;

    #[tracing::instrument(skip_all, fields(patient = %request.get_ref().patient_id))]
    async fn timeline(
        &self,
        request: Request<TimelineRequest>,
    ) -> Result<Response<Self::TimelineStream>, Status> {
        let reader = reader(&request);
        let who = who(&request);
        let req = request.into_inner();
        let (stream, first) = self.open_patient(&req.patient_id, req.from_version).await?;
        tracing::info!(patient = %req.patient_id, reader = %reader, "audit read: timeline");
        self.record(&who, "Audit/Timeline", &req.patient_id).await?;
        Ok(Response::new(flat_map_events(stream, first, |e| {
            vec![timeline_entry(e)]
        })))
    }

    #[tracing::instrument(skip_all, fields(patient = %request.get_ref().patient_id))]
    async fn as_of(&self, request: Request<AsOfRequest>) -> Result<Response<AsOfResponse>, Status> {
        let reader = reader(&request);
        let who = who(&request);
        let req = request.into_inner();
        check_patient(&req.patient_id)?;
        let now = now();
        let clinical = req.clinical_time.unwrap_or(now);
        let recorded = req.recorded_time.unwrap_or(now);
        check_time("clinical_time", &clinical)?;
        check_time("recorded_time", &recorded)?;
        // The log cannot know the future: an answer "as known" at a later time could still change.
        if recorded.seconds > now.seconds + 5 {
            return Err(errors::invalid(
                "recorded_time",
                "is in the future; the log only knows what is recorded by now (omit it for now)",
            ));
        }
        let events = self.log.patient(&req.patient_id).await?;
        if events.is_empty() {
            return Err(errors::unknown_patient(&req.patient_id));
        }
        tracing::info!(patient = %req.patient_id, reader = %reader, "audit read: as of");
        self.record(&who, "Audit/AsOf", &req.patient_id).await?;
        let state = journey_domain::as_of::as_of(&events, clinical, recorded);
        Ok(Response::new(state.into_response(
            &req.patient_id,
            clinical,
            recorded,
        )))
    }

    #[tracing::instrument(skip_all)]
    async fn verify(
        &self,
        request: Request<AuditVerifyRequest>,
    ) -> Result<Response<AuditVerifyResponse>, Status> {
        self.record(&who(&request), "Audit/Verify", "").await?;
        let req = request.into_inner();
        if req.to_position != 0 && req.from_position > req.to_position {
            return Err(errors::invalid(
                "to_position",
                "must be 0 (the head) or at least from_position",
            ));
        }
        let (anchor, anchor_source) = self.anchor_for(req.anchor)?;
        // The chain first: an altered event below the head is the first thing wrong.
        let chain = self
            .log
            .verify(VerifyRequest {
                from_position: req.from_position,
                to_position: req.to_position,
                ..Default::default()
            })
            .await?;
        let mut out = AuditVerifyResponse {
            ok: chain.ok,
            checked: chain.checked,
            first_bad_position: chain.first_bad_position,
            problem: chain.problem.clone(),
            head_position: chain.head_position,
            head_hash_hex: hex(&chain.head_hash),
            anchor_source,
            ..Default::default()
        };
        let Some(anchor) = anchor else {
            return Ok(Response::new(out));
        };
        out.anchor_position = anchor.position;
        out.anchor_hash_hex = hex(&anchor.hash);
        out.anchored_at = (anchor.anchored_at > 0).then_some(Timestamp {
            seconds: anchor.anchored_at,
            nanos: 0,
        });
        let head = chain.head_position;
        let anchor_problem = if anchor.position > head {
            out.truncated = true;
            out.first_missing_position = head + 1;
            Some((
                head + 1,
                format!(
                    "the log is truncated: its head was anchored at position {} but the log ends at position {head}; position {} onwards is missing",
                    anchor.position,
                    head + 1
                ),
            ))
        } else {
            let r = self
                .log
                .verify(VerifyRequest {
                    from_position: anchor.position,
                    to_position: anchor.position,
                    anchor_position: anchor.position,
                    anchor_hash: anchor.hash.to_vec(),
                })
                .await?;
            (!r.ok).then(|| {
                (
                    r.first_bad_position,
                    format!("the anchored head is not in the log: {}", r.problem),
                )
            })
        };
        if let Some((pos, problem)) = anchor_problem {
            add_problem(
                (&mut out.ok, &mut out.first_bad_position, &mut out.problem),
                pos,
                problem,
            );
        }
        Ok(Response::new(out))
    }

    type ExportStream = BoxStream<ExportLine>;

    #[tracing::instrument(skip_all, fields(patient = %request.get_ref().patient_id))]
    async fn export(
        &self,
        request: Request<ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let reader = reader(&request);
        let who = who(&request);
        let req = request.into_inner();
        let (stream, first) = self.open_patient(&req.patient_id, 1).await?;
        tracing::info!(patient = %req.patient_id, reader = %reader, "audit read: FHIR export");
        self.record(&who, "Audit/Export", &req.patient_id).await?;
        Ok(Response::new(flat_map_events(stream, first, |e| {
            let position = e.position;
            vec![
                ExportLine {
                    json: fhir_audit_event(&e).to_string(),
                    resource_type: "AuditEvent".into(),
                    position,
                },
                ExportLine {
                    json: fhir_provenance(&e).to_string(),
                    resource_type: "Provenance".into(),
                    position,
                },
            ]
        })))
    }

    async fn accesses(
        &self,
        request: Request<AccessesRequest>,
    ) -> Result<Response<AccessesResponse>, Status> {
        let Some(log) = &self.access else {
            return Err(errors::no_access_log());
        };
        let who = who(&request);
        let req = request.into_inner();
        for (field, t) in [("from", &req.from), ("to", &req.to)] {
            if let Some(t) = t {
                check_time(field, t)?;
            }
        }
        let query = crate::access_log::Query {
            patient_id: req.patient_id.clone(),
            subject: req.subject,
            outcome: req.outcome,
            from_micros: req.from.as_ref().map(micros),
            to_micros: req.to.as_ref().map(micros),
            after: None,
            limit: match req.limit {
                0 => 100,
                n => n.min(10_000),
            } as i64,
        };
        let page = log.query(query, &req.page_token).await?;
        // Reading who read a patient is itself a read of that patient, recorded before the
        // answer goes out (after the query: a page never shows its own reading).
        self.record(&who, "Audit/Accesses", &req.patient_id).await?;
        let records = page
            .records
            .into_iter()
            .map(|r| AccessRecord {
                at: Some(Timestamp {
                    seconds: r.at_micros.div_euclid(1_000_000),
                    nanos: (r.at_micros.rem_euclid(1_000_000) * 1000) as i32,
                }),
                subject: r.subject,
                role: r.role,
                organisation: r.organisation,
                call: r.call,
                patient_id: r.patient_id,
                purpose: r.purpose,
                outcome: r.outcome,
                detail: r.detail,
                peer: r.peer,
                calls: r.calls.max(0) as u64,
                patients: r.patients,
                seq: r.seq.unwrap_or_default().max(0) as u64,
            })
            .collect();
        Ok(Response::new(AccessesResponse {
            records,
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn verify_accesses(
        &self,
        request: Request<VerifyAccessesRequest>,
    ) -> Result<Response<VerifyAccessesResponse>, Status> {
        let Some(log) = &self.access else {
            return Err(errors::no_access_log());
        };
        self.record(&who(&request), "Audit/VerifyAccesses", "")
            .await?;
        let req = request.into_inner();
        let (anchor, anchor_source) = match req.anchor {
            Some(a) => (Some(anchor_of(a)?), "request".to_string()),
            None => match &self.access_anchor {
                None => (None, "none".to_string()),
                Some(keeper) => match keeper.read() {
                    Ok(a) => (a, format!("anchor file {}", keeper.path().display())),
                    Err(e) => return Err(errors::anchor_unreadable(keeper.path(), &e)),
                },
            },
        };
        let v = log.verify(anchor.map(|a| (a.position, a.hash))).await?;
        Ok(Response::new(VerifyAccessesResponse {
            ok: v.ok,
            checked: v.checked,
            head_seq: v.head_seq,
            head_hash_hex: v.head_hash_hex,
            first_bad_seq: v.first_bad_seq,
            problem: v.problem,
            unchained: v.unchained,
            anchor_seq: v.anchor_seq,
            anchor_hash_hex: v.anchor_hash_hex,
            anchor_source,
            truncated: v.truncated,
        }))
    }
}

/// An anchor a caller sent: a position > 0 and a 32-byte hash.
fn anchor_of(a: AuditAnchor) -> Result<Anchored, Status> {
    let hash = <Hash>::try_from(a.hash.as_slice())
        .ok()
        .filter(|_| a.position > 0)
        .ok_or_else(|| {
            errors::invalid(
                "anchor",
                "an anchor needs a position > 0 and a 32-byte hash",
            )
        })?;
    Ok(Anchored {
        position: a.position,
        hash,
        anchored_at: 0,
    })
}
