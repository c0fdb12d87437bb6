//! The FHIR R4 read API (docs/fhir.md), served beside the dashboard: `GET /fhir/metadata` (open),
//! `GET /fhir/Patient/{id}`, `GET /fhir/Patient/{id}/$everything` and
//! `GET /fhir/{Type}?patient={id}`, in `application/fhir+json`, every refusal an
//! OperationOutcome.
//!
//! The same tokens as gRPC (`Authorization: Bearer`, [`Authenticator::authenticate`]); the
//! coordinator's territory and consent decided by the coordination view as for `FollowUp`
//! ([`CoordinationService::follow_up_of`]), auditors and admins reading every patient; every
//! read, and every refusal, recorded in the access log before anything of the patient goes out.
//! A patient nobody knows and a patient the caller may not read get the same 404. The resources
//! are read from the patient's stream in the log and mapped by `journey-fhir`; no read model of
//! their own.
mod export;
mod request;
mod response;
mod tasks;

pub use export::Exports;

use axum::{
    extract::{ConnectInfo, Path, State},
    http::{header, request::Parts, Extensions, HeaderMap, StatusCode, Uri},
    response::Response,
    routing::get,
    Router,
};
use journey_fhir::{capability, Kind};
use journey_proto::v1::{Event, FollowUpRequest};
use journey_services::{
    access_log::{audited, bounded, Access, AccessLog},
    auth::Authenticator,
    coordination_service::CoordinationService,
    errors,
    log_handle::LogHandle,
    principal::{Principal, Role},
};
use request::{everything_request, no_parameters, search_request, Select};
use response::{base_url, fhir_json, refusal, render};
use std::{net::SocketAddr, sync::Arc};
use tonic::{Code, Status};

/// When the CapabilityStatement last changed (its `date`).
const CAPABILITIES_DATE: &str = "2026-12-05";

#[derive(Clone)]
pub struct FhirApi {
    pub log: LogHandle,
    /// The coordination view: a coordinator's territory and the patients' consents. Without it
    /// coordinators are refused.
    pub coordination: Option<CoordinationService>,
    /// Where reads are recorded; without it every patient read is refused (no record, no data).
    pub access: Option<AccessLog>,
    /// `None` when the server runs `--insecure` (every caller reads everything, unrecorded
    /// identity).
    pub auth: Option<Arc<Authenticator>>,
    /// Where Bulk Data exports are written (`None`: exports are refused).
    pub exports: Option<Arc<Exports>>,
}

/// The API's routes; any other method gets an OperationOutcome saying what the server answers.
/// (An address deeper than these, `/fhir/Patient/{id}/_history`, gets the server's plain 404: a
/// catch-all under `/fhir/` would collide with `/fhir/{Type}` in the router.)
pub fn router(api: FhirApi) -> Router {
    use response::method_refused as refused;
    Router::new()
        .route("/fhir/metadata", get(metadata).fallback(refused))
        .route("/fhir/Patient/{id}", get(read_patient).fallback(refused))
        .route(
            "/fhir/Patient/{id}/$everything",
            get(everything).fallback(refused),
        )
        .route("/fhir/$export", get(export::system).fallback(refused))
        .route(
            "/fhir/Patient/$export",
            get(export::patients).fallback(refused),
        )
        .route(
            "/fhir/Group/{territory}/$export",
            get(export::group).fallback(refused),
        )
        .route(
            "/fhir/_export/{job}",
            get(export::status).delete(export::cancel),
        )
        .route("/fhir/_export/{job}/{file}", get(export::file))
        .route("/fhir/{kind}", get(search).fallback(refused))
        .with_state(api)
}

/// What every handler needs of the request.
struct Asked {
    call: String,
    headers: HeaderMap,
    extensions: Extensions,
    uri: Uri,
}

impl Asked {
    /// The request's parts a handler keeps, under the name the access log gives the call.
    fn new(call: String, parts: Parts) -> Self {
        Asked {
            call,
            headers: parts.headers,
            extensions: parts.extensions,
            uri: parts.uri,
        }
    }

    /// The access-log record of this request by `caller` about `patient`; `detail`: a refusal's
    /// message, or empty.
    fn access<'a>(
        &'a self,
        caller: Option<&'a Principal>,
        patient: &'a str,
        detail: &str,
    ) -> Access<'a> {
        Access {
            caller,
            call: &self.call,
            patient_id: patient,
            purpose: self
                .headers
                .get("x-journey-purpose")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            detail: detail.to_string(),
            peer: self.peer(),
            ..Default::default()
        }
    }

    /// The address the request came from.
    fn peer(&self) -> Option<SocketAddr> {
        self.extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
    }
}

async fn metadata() -> Response {
    fhir_json(
        StatusCode::OK,
        &capability::statement(
            env!("CARGO_PKG_VERSION"),
            CAPABILITIES_DATE,
            &[request::PROVENANCE],
        ),
    )
}

async fn read_patient(
    State(api): State<FhirApi>,
    Path(id): Path<String>,
    parts: Parts,
) -> Response {
    let asked = Asked::new("fhir/Patient".into(), parts);
    let parsed = no_parameters(&asked.uri).map(|()| Select::Patient);
    api.answer(asked, id, parsed).await
}

async fn everything(State(api): State<FhirApi>, Path(id): Path<String>, parts: Parts) -> Response {
    let asked = Asked::new("fhir/Patient/$everything".into(), parts);
    let parsed = everything_request(asked.uri.query());
    api.answer(asked, id, parsed).await
}

async fn search(State(api): State<FhirApi>, Path(kind): Path<String>, parts: Parts) -> Response {
    let asked = Asked::new(format!("fhir/{}", bounded(&kind, 64)), parts);
    let (patient, parsed) = search_request(&kind, asked.uri.query());
    api.answer(asked, patient, parsed).await
}

impl FhirApi {
    /// Authenticates, decides, records, then answers.
    async fn answer(
        &self,
        asked: Asked,
        patient: String,
        parsed: Result<Select, Status>,
    ) -> Response {
        // At the door: a token refused, or a role that does not read FHIR.
        let caller = match self.caller(&asked.headers) {
            Ok(c) => c,
            Err(s) => {
                self.refused_at_door(asked.access(None, &patient, s.message()), &s)
                    .await;
                return refusal(&s);
            }
        };
        let role = caller
            .as_ref()
            .filter(|p| !matches!(p.role, Role::Coordinator | Role::Auditor | Role::Admin));
        if let Some(p) = role {
            let s = errors::fhir_role_refused(p);
            self.refused_at_door(asked.access(Some(p), &patient, s.message()), &s)
                .await;
            return refusal(&s);
        }
        // Inside: the request, then the patient; the outcome recorded before anything goes out.
        let result = match parsed {
            Err(s) => Err(s),
            Ok(select) => match self.visible(caller.as_ref(), &patient).await {
                Ok(events) => self
                    .followed(&select, &patient)
                    .await
                    .map(|followed| (select, events, followed)),
                Err(s) => Err(s),
            },
        };
        let detail = result.as_ref().err().map_or("", |s| s.message());
        let access = asked.access(caller.as_ref(), &patient, detail);
        let result = match &self.access {
            Some(log) => audited(Some(log), access, result).await,
            None => Err(errors::read_unrecorded(&asked.call)),
        };
        match result {
            Ok((select, events, followed)) => {
                let base = base_url(&asked.headers, &asked.extensions);
                let self_url = format!("{}{}", base.trim_end_matches("/fhir"), asked.uri);
                let tasks = tasks::tasks(&patient, &followed, &events);
                render(&patient, select, &events, tasks, &base, &self_url)
            }
            // Unknown, outside the territory, consent revoked: the same "not found".
            Err(s) if matches!(s.code(), Code::NotFound | Code::PermissionDenied) => {
                refusal(&errors::patient_not_visible(&patient))
            }
            Err(s) => refusal(&s),
        }
    }

    /// The discharges the coordination view follows for the patient, when the answer holds its
    /// Tasks (`$everything`, the Task search) and the server has that view.
    async fn followed(
        &self,
        select: &Select,
        patient: &str,
    ) -> Result<Vec<journey_projections::coordination::patient::TaskDischarge>, Status> {
        let wanted = match select {
            Select::Everything { .. } => true,
            Select::Type(kind) => *kind == Kind::Task.name(),
            Select::Patient => false,
        };
        match (&self.coordination, wanted) {
            (Some(view), true) => tasks::followed(view, patient).await,
            _ => Ok(Vec::new()),
        }
    }

    /// The caller (`None` on an `--insecure` server), or why the token is refused.
    fn caller(&self, headers: &HeaderMap) -> Result<Option<Principal>, Status> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        auth.authenticate(header).map(Some)
    }

    /// A call refused at the door, as the gRPC layer records one: without an identity, or beyond a
    /// known caller's rate, counted per source and minute; else a record of its own.
    async fn refused_at_door(&self, access: Access<'_>, status: &Status) {
        let Some(log) = &self.access else { return };
        if log.refusal_counted(access.caller, access.peer, access.call, status) {
            return;
        }
        let outcome = format!("{:?}", status.code()).to_lowercase();
        let access = Access {
            outcome: &outcome,
            ..access
        };
        if let Err(e) = log.record(access).await {
            tracing::warn!(error = %e.message(), "a refused FHIR call could not be recorded");
        }
    }

    /// The patient's events the caller may read: a coordinator's as the coordination view decides
    /// (its territory, the patient's consent) and up to what that view has folded; an auditor's
    /// or admin's every event. A patient without events is unknown.
    async fn visible(&self, caller: Option<&Principal>, id: &str) -> Result<Vec<Event>, Status> {
        let coordinator = caller.filter(|p| p.role == Role::Coordinator);
        let decided = match coordinator {
            Some(p) => {
                let Some(view) = &self.coordination else {
                    return Err(errors::fhir_no_coordination_view(p));
                };
                let req = FollowUpRequest {
                    patient_id: id.to_string(),
                    as_of: None,
                };
                view.follow_up_of(&req, caller).await?;
                Some(view.runner.watch().borrow().checkpoint)
            }
            None => None,
        };
        let mut events = self.log.patient(id).await?;
        if let Some(decided) = decided {
            // Fail closed while the view lags: what it has not folded yet was not part of the
            // decision (a transfer to another territory, a consent revoked).
            events.retain(|e| e.position <= decided);
        }
        if events.is_empty() {
            return Err(errors::patient_not_visible(id));
        }
        Ok(events)
    }
}
