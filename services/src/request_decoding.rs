//! Statuses for requests tonic could not decode, said as what they are. tonic answers a body that
//! is not the method's protobuf message (a string field that is not UTF-8, a truncated field)
//! `INTERNAL`, as if the server had failed, and a message over the decoding limit `OUT_OF_RANGE`;
//! both are the caller's request: `INVALID_ARGUMENT` and `RESOURCE_EXHAUSTED` (`errors.rs`). One
//! tower layer in front of every gRPC service rewrites those two statuses of a trailers-only
//! answer (the only shape they come in: decoding fails before the method runs), nothing else.
use crate::errors;
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};
use tonic::{
    codegen::http::{HeaderMap, Request, Response},
    Code, Status,
};
use tower::{Layer, Service};

/// What tonic's protobuf decoder says before the decoder's own words.
const UNDECODABLE: &str = "failed to decode Protobuf message: ";
/// What tonic says of a message over the decoding limit.
const TOO_LARGE: &str = "Error, decoded message length too large: ";

#[derive(Debug, Clone, Default)]
pub struct RequestDecoding;

impl<S> Layer<S> for RequestDecoding {
    type Service = Restated<S>;
    fn layer(&self, inner: S) -> Restated<S> {
        Restated { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Restated<S> {
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for Restated<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<RB>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            restate(response.headers_mut());
            Ok(response)
        })
    }
}

/// Rewrites a trailers-only status tonic gave to an undecodable or oversized request.
fn restate(headers: &mut HeaderMap) {
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let better = match (status.code(), status.message()) {
        (Code::Internal, m) if m.starts_with(UNDECODABLE) => {
            errors::undecodable_request(&m[UNDECODABLE.len()..])
        }
        (Code::OutOfRange, m) if m.starts_with(TOO_LARGE) => {
            let (found, limit) = sizes(&m[TOO_LARGE.len()..]);
            errors::request_too_large(found, limit)
        }
        _ => return,
    };
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        headers.remove(name);
    }
    if better.add_header(headers).is_err() {
        tracing::warn!(status = ?better, "cannot write a restated status");
    }
}

/// "found 123 bytes, the limit is: 45 bytes" → (123, 45); 0 for what is not there.
fn sizes(text: &str) -> (usize, usize) {
    let mut numbers = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trailers-only headers of a status as tonic writes it, after `restate`.
    fn answered(code: Code, message: &str) -> Status {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-status", (code as i32).to_string().parse().unwrap());
        headers.insert("grpc-message", message.parse().unwrap());
        restate(&mut headers);
        Status::from_header_map(&headers).unwrap()
    }

    #[test]
    fn a_string_that_is_not_utf8_is_the_callers_fault() {
        let s = answered(
            Code::Internal,
            "failed to decode Protobuf message: Event.patient_id: AppendRequest.events: invalid string value: data is not UTF-8 encoded",
        );
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("not valid UTF-8"), "{}", s.message());
        assert!(s.message().contains("Event.patient_id"), "{}", s.message());
    }

    #[test]
    fn a_message_over_the_limit_is_resource_exhausted() {
        let s = answered(
            Code::OutOfRange,
            "Error, decoded message length too large: found 33554432 bytes, the limit is: 409600 bytes",
        );
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(
            s.message().contains("33554432 bytes") && s.message().contains("409600 bytes"),
            "{}",
            s.message()
        );
    }

    #[test]
    fn every_other_status_is_left_alone() {
        for (code, message) in [
            (Code::Internal, "event log storage failed"),
            (Code::OutOfRange, "position 9 is past the head"),
            (
                Code::InvalidArgument,
                "failed to decode Protobuf message: but said by a service",
            ),
            (Code::Ok, ""),
        ] {
            let s = answered(code, message);
            assert_eq!((s.code(), s.message()), (code, message));
        }
    }
}
