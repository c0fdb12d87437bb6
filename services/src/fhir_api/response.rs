//! The answers: the resources a request asked for, in `application/fhir+json`, or a refusal as
//! an OperationOutcome with its HTTP status.
use super::request::{Select, PROVENANCE};
use crate::{errors, fhir_audit, tls::ServedOverTls};
use axum::{
    http::{header, Extensions, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use journey_fhir::{
    bundle,
    outcome::{outcome, Issue},
    Resource,
};
use journey_proto::v1::Event;
use serde_json::Value;
use tonic::{Code, Status};

/// The answer a request asked for, from the patient's events it may read.
pub(super) fn render(
    patient: &str,
    select: Select,
    events: &[Event],
    base: &str,
    self_url: &str,
) -> Response {
    let all = journey_fhir::resources(patient, events);
    let body = match select {
        Select::Patient => match all.into_iter().find(|r| r.kind == "Patient") {
            Some(p) => p.body,
            None => return refusal(&errors::patient_not_visible(patient)),
        },
        Select::Everything { since } => {
            let mut all = all;
            all.extend(events.iter().map(provenance));
            // Same format on both sides (UTC, milliseconds): the text order is the time order.
            if let Some(since) = since {
                all.retain(|r| r.body["meta"]["lastUpdated"].as_str() >= Some(since.as_str()));
            }
            bundle::searchset(base, self_url, all)
        }
        Select::Type(PROVENANCE) => {
            bundle::searchset(base, self_url, events.iter().map(provenance).collect())
        }
        Select::Type(kind) => {
            let of_kind: Vec<Resource> = all.into_iter().filter(|r| r.kind == kind).collect();
            bundle::searchset(base, self_url, of_kind)
        }
    };
    fhir_json(StatusCode::OK, &body)
}

/// The Provenance of one event (as the audit export writes it: author, assembler, the resource it
/// is about and the stored event), with the `meta` of the resources it sits beside.
pub(super) fn provenance(e: &Event) -> Resource {
    let mut body = fhir_audit::fhir_provenance(e);
    body["meta"] = journey_fhir::resource::meta(e, None);
    let id = journey_fhir::resource::fhir_id("Provenance", &e.event_id);
    body["id"] = Value::from(id.clone());
    Resource {
        kind: "Provenance",
        id,
        body,
    }
}

/// The server's FHIR base URL, as the client reached it.
pub(super) fn base_url(headers: &HeaderMap, extensions: &Extensions) -> String {
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

pub(super) fn fhir_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

/// A refusal as an OperationOutcome with its HTTP status.
pub(super) fn refusal(s: &Status) -> Response {
    let (status, issue) = match s.code() {
        Code::Unauthenticated => (StatusCode::UNAUTHORIZED, Issue::Login),
        Code::PermissionDenied => (StatusCode::FORBIDDEN, Issue::Forbidden),
        Code::FailedPrecondition => (StatusCode::FORBIDDEN, Issue::Forbidden),
        Code::NotFound => (StatusCode::NOT_FOUND, Issue::NotFound),
        Code::InvalidArgument => (StatusCode::BAD_REQUEST, Issue::NotSupported),
        Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, Issue::Transient),
        Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, Issue::Throttled),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Issue::Exception),
    };
    let mut response = fhir_json(status, &outcome(issue, s.message()));
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
    }
    response
}

/// What the server answers, for a request it does not.
const ANSWERS: &str = "this server answers GET /fhir/metadata, GET /fhir/Patient/{id}, GET /fhir/Patient/{id}/$everything, GET /fhir/{Type}?patient={id}, and the Bulk Data GET /fhir/$export, /fhir/Patient/$export, /fhir/Group/{territory}/$export";

/// A method other than GET on a FHIR address: 405.
pub(super) async fn method_refused() -> Response {
    let body = outcome(Issue::NotSupported, &format!("read-only: {ANSWERS}"));
    let mut response = fhir_json(StatusCode::METHOD_NOT_ALLOWED, &body);
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    response
}
