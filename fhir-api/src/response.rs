//! The answers: the resources a request asked for, in `application/fhir+json`, or a refusal as
//! an OperationOutcome with its HTTP status.
use super::request::{Select, PROVENANCE};
use axum::{
    http::{header, Extensions, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use journey_fhir::{
    bundle::{self, Entry},
    outcome::{outcome, Issue},
    Resource,
};
use journey_proto::v1::Event;
use journey_services::{errors, tls::ServedOverTls};
use serde_json::Value;
use tonic::{Code, Status};

/// The answer a request asked for, from the patient's events it may read and the Tasks of the
/// coordination view: the resources written straight into the answer's bytes.
pub(super) fn render(
    patient: &str,
    select: Select,
    events: &[Event],
    tasks: Vec<Resource>,
    base: &str,
    self_url: &str,
) -> Response {
    let body = match select {
        Select::Patient => {
            let all = journey_fhir::resources(patient, events);
            match all.into_iter().find(|r| r.kind == "Patient") {
                Some(p) => {
                    let mut out = Vec::with_capacity(2048);
                    p.write(&mut out).expect("writing to memory");
                    out
                }
                None => return refusal(&errors::patient_not_visible(patient)),
            }
        }
        Select::Everything { since } => {
            let mut all: Vec<Entry> = journey_fhir::resources(patient, events)
                .into_iter()
                .chain(tasks)
                .map(Entry::Resource)
                .chain(events.iter().map(Entry::Provenance))
                .collect();
            if let Some(since) = since {
                all.retain(|r| r.since(&since));
            }
            bundle::searchset(base, self_url, &all)
        }
        Select::Type(PROVENANCE) => {
            let all: Vec<Entry> = events.iter().map(Entry::Provenance).collect();
            bundle::searchset(base, self_url, &all)
        }
        Select::Type("Task") => {
            let all: Vec<Entry> = tasks.into_iter().map(Entry::Resource).collect();
            bundle::searchset(base, self_url, &all)
        }
        Select::Type(kind) => {
            let of_kind: Vec<Entry> = journey_fhir::resources(patient, events)
                .into_iter()
                .filter(|r| r.kind == kind)
                .map(Entry::Resource)
                .collect();
            bundle::searchset(base, self_url, &of_kind)
        }
    };
    fhir_bytes(StatusCode::OK, body)
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
    fhir_bytes(status, body.to_string().into_bytes())
}

/// An answer already written as JSON.
fn fhir_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json; charset=utf-8")],
        body,
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
