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
use crate::{
    access_log::{audited, bounded, Access, AccessLog},
    auth::Authenticator,
    coordination_service::CoordinationService,
    errors,
    log_handle::LogHandle,
    principal::{Principal, Role},
    tls::ServedOverTls,
};
use axum::{
    extract::{ConnectInfo, Path, State},
    http::{header, Extensions, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use journey_fhir::{
    bundle, capability,
    outcome::{outcome, Issue},
    Kind, Resource,
};
use journey_proto::v1::{Event, FollowUpRequest};
use serde_json::Value;
use std::{net::SocketAddr, sync::Arc};
use tonic::{Code, Status};

/// When the CapabilityStatement last changed (its `date`).
const CAPABILITIES_DATE: &str = "2026-12-04";

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
}

pub fn router(api: FhirApi) -> Router {
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .route("/fhir/Patient/{id}", get(read_patient))
        .route("/fhir/Patient/{id}/$everything", get(everything))
        .route("/fhir/{kind}", get(search))
        .with_state(api)
}

/// What a request asks, once its address and query are understood.
enum Select {
    Patient,
    /// With `_since`: only the resources changed from then on (`meta.lastUpdated`, RFC 3339 UTC
    /// with milliseconds, as the resources carry it).
    Everything {
        since: Option<String>,
    },
    Kind(Kind),
}

/// What every handler needs of the request.
struct Asked {
    call: String,
    headers: HeaderMap,
    extensions: Extensions,
    uri: Uri,
}

impl Asked {
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
        &capability::statement(env!("CARGO_PKG_VERSION"), CAPABILITIES_DATE),
    )
}

async fn read_patient(
    State(api): State<FhirApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    uri: Uri,
) -> Response {
    let asked = Asked {
        call: "fhir/Patient".into(),
        headers,
        extensions,
        uri,
    };
    let parsed = no_parameters(&asked.uri).map(|()| Select::Patient);
    api.answer(asked, id, parsed).await
}

async fn everything(
    State(api): State<FhirApi>,
    Path(id): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    uri: Uri,
) -> Response {
    let asked = Asked {
        call: "fhir/Patient/$everything".into(),
        headers,
        extensions,
        uri,
    };
    let parsed = everything_request(asked.uri.query());
    api.answer(asked, id, parsed).await
}

async fn search(
    State(api): State<FhirApi>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    extensions: Extensions,
    uri: Uri,
) -> Response {
    let asked = Asked {
        call: format!("fhir/{}", bounded(&kind, 64)),
        headers,
        extensions,
        uri,
    };
    let (patient, parsed) = search_request(&kind, asked.uri.query());
    api.answer(asked, patient, parsed).await
}

/// A read or `$everything` takes no parameter.
fn no_parameters(uri: &Uri) -> Result<(), Status> {
    match uri.query().and_then(|q| q.split('&').find(|kv| !kv.is_empty())) {
        Some(kv) => Err(errors::invalid(
            kv.split('=').next().unwrap_or(kv),
            "unsupported parameter: this server reads a patient and its $everything without parameters",
        )),
        None => Ok(()),
    }
}

/// `$everything` takes `_since` (an instant) only.
fn everything_request(query: Option<&str>) -> Result<Select, Status> {
    let mut since = None;
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        if k != "_since" || since.is_some() {
            return Err(errors::invalid(
                &percent_decoded(k).unwrap_or_else(|_| k.to_string()),
                "unsupported parameter: $everything takes _since (an instant, e.g. 2026-12-04T10:00:00Z), once",
            ));
        }
        let at = chrono::DateTime::parse_from_rfc3339(&percent_decoded(v)?).map_err(|e| {
            errors::invalid(
                "_since",
                &format!("{e}: give an instant with its time zone, e.g. 2026-12-04T10:00:00Z"),
            )
        })?;
        since = Some(
            at.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
    }
    Ok(Select::Everything { since })
}

/// `GET /fhir/{Type}?patient={id}`: a mapped type, searched by patient only. The patient named
/// (for the access log, even when the request is refused), and what is asked.
fn search_request(kind: &str, query: Option<&str>) -> (String, Result<Select, Status>) {
    let params: Vec<(&str, &str)> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .collect();
    let patient = params
        .iter()
        .find(|(k, _)| *k == "patient")
        .map(|(_, v)| percent_decoded(v));
    let id = match &patient {
        Some(Ok(p)) => p.strip_prefix("Patient/").unwrap_or(p).to_string(),
        _ => String::new(),
    };
    let select = || {
        let kind = searchable(kind)?;
        if let Some((k, _)) = params.iter().find(|(k, _)| *k != "patient") {
            return Err(errors::invalid(
                &percent_decoded(k).unwrap_or_else(|_| k.to_string()),
                "unsupported search parameter: this server searches by patient only (?patient=<id>)",
            ));
        }
        if params.iter().filter(|(k, _)| *k == "patient").count() > 1 {
            return Err(errors::invalid("patient", "give it once"));
        }
        if let Some(Err(e)) = patient {
            return Err(e);
        }
        if id.is_empty() {
            return Err(errors::invalid(
                "patient",
                "required: this server searches by patient only (?patient=<id>)",
            ));
        }
        Ok(Select::Kind(kind))
    };
    let select = select();
    (id, select)
}

/// A type the API searches: every mapped type but Patient (read by id).
fn searchable(kind: &str) -> Result<Kind, Status> {
    match Kind::parse(kind) {
        Some(Kind::Patient) => Err(errors::invalid(
            "Patient",
            "this server does not search patients: read one with GET /fhir/Patient/{id}",
        )),
        Some(k) => Ok(k),
        None => {
            let served: Vec<&str> = Kind::ALL[1..].iter().map(|k| k.name()).collect();
            Err(errors::invalid(
                "type",
                &format!(
                    "{kind:?} is not a type this server serves; it serves Patient and {}",
                    served.join(", ")
                ),
            ))
        }
    }
}

/// A query value, percent-decoded (`+` is a space) and UTF-8.
fn percent_decoded(v: &str) -> Result<String, Status> {
    let bad = || errors::invalid("query", "not a percent-encoded UTF-8 value");
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = v.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
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
            Ok(select) => self
                .visible(caller.as_ref(), &patient)
                .await
                .map(|events| (select, events)),
        };
        let detail = result.as_ref().err().map_or("", |s| s.message());
        let access = asked.access(caller.as_ref(), &patient, detail);
        let result = match &self.access {
            Some(log) => audited(Some(log), access, result).await,
            None => Err(errors::read_unrecorded(&asked.call)),
        };
        match result {
            Ok((select, events)) => {
                let base = base_url(&asked.headers, &asked.extensions);
                let self_url = format!("{}{}", base.trim_end_matches("/fhir"), asked.uri);
                render(&patient, select, &events, &base, &self_url)
            }
            // Unknown, outside the territory, consent revoked: the same "not found".
            Err(s) if matches!(s.code(), Code::NotFound | Code::PermissionDenied) => {
                refusal(&errors::patient_not_visible(&patient))
            }
            Err(s) => refusal(&s),
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
                    return Err(errors::consent_unknown(&p.organisation));
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

/// The answer a request asked for, from the patient's events it may read.
fn render(patient: &str, select: Select, events: &[Event], base: &str, self_url: &str) -> Response {
    let all = journey_fhir::resources(patient, events);
    let body = match select {
        Select::Patient => match all.into_iter().find(|r| r.kind == "Patient") {
            Some(p) => p.body,
            None => return refusal(&errors::patient_not_visible(patient)),
        },
        Select::Everything { since: None } => bundle::searchset(base, self_url, &all),
        Select::Everything { since: Some(since) } => {
            // Same format on both sides (UTC, milliseconds): the text order is the time order.
            let changed: Vec<Resource> = all
                .into_iter()
                .filter(|r| r.body["meta"]["lastUpdated"].as_str() >= Some(since.as_str()))
                .collect();
            bundle::searchset(base, self_url, &changed)
        }
        Select::Kind(k) => {
            let of_kind: Vec<Resource> = all.into_iter().filter(|r| r.kind == k.name()).collect();
            bundle::searchset(base, self_url, &of_kind)
        }
    };
    fhir_json(StatusCode::OK, &body)
}

/// The server's FHIR base URL, as the client reached it.
fn base_url(headers: &HeaderMap, extensions: &Extensions) -> String {
    let scheme = match extensions.get::<ServedOverTls>() {
        Some(_) => "https",
        None => "http",
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{scheme}://{host}/fhir")
}

fn fhir_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// A refusal as an OperationOutcome with its HTTP status.
fn refusal(s: &Status) -> Response {
    let (status, issue) = match s.code() {
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, Issue::Login),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, Issue::Forbidden),
        Code::FailedPrecondition => (StatusCode::FORBIDDEN, Issue::Forbidden),
        Code::NotFound => (StatusCode::NOT_FOUND, Issue::NotFound),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, Issue::NotSupported),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Issue::Transient),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Issue::Exception),
    };
    let mut response = fhir_json(status, &outcome(issue, s.message()));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_takes_since_only() {
        let since = |q| match everything_request(Some(q)) {
            Ok(Select::Everything { since }) => Ok(since),
            Ok(_) => unreachable!(),
            Err(s) => Err(s.message().to_string()),
        };
        assert_eq!(
            since("_since=2026-12-04T11:00:00%2B01:00"),
            Ok(Some("2026-12-04T10:00:00.000Z".to_string()))
        );
        assert!(since("_since=yesterday")
            .unwrap_err()
            .starts_with("_since:"));
        assert!(since("_count=10")
            .unwrap_err()
            .starts_with("_count: unsupported"));
        assert!(since("_since=2026-12-04T10:00:00Z&_since=2026-12-04T10:00:00Z").is_err());
        assert!(matches!(
            everything_request(None),
            Ok(Select::Everything { since: None })
        ));
    }

    #[test]
    fn a_search_takes_a_mapped_type_and_the_patient_only() {
        let (p, s) = search_request("Observation", Some("patient=Patient%2FP%201"));
        assert_eq!(p, "P 1");
        assert!(matches!(s, Ok(Select::Kind(Kind::Observation))));
        let (p, s) = search_request("Observation", Some("patient=P1&code=29463-7"));
        assert_eq!(p, "P1", "the patient is recorded with the refusal");
        assert!(s.is_err());
        let refused = |kind: &str, q: Option<&str>| search_request(kind, q).1.err().unwrap();
        assert_eq!(
            refused("Observation", Some("patient=P1&code=29463-7")).code(),
            Code::InvalidArgument
        );
        assert!(refused("Observation", Some("code=1"))
            .message()
            .starts_with("code: unsupported search parameter"));
        assert!(refused("Observation", None).message().contains("required"));
        assert!(refused("Practitioner", Some("patient=P1"))
            .message()
            .contains("not a type this server serves"));
        assert!(refused("Patient", Some("patient=P1"))
            .message()
            .contains("GET /fhir/Patient/{id}"));
        assert!(refused("Flag", Some("patient=%zz"))
            .message()
            .contains("percent"));
    }
}
