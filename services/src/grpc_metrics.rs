//! A tower layer timing every gRPC call: `journey_grpc_request_seconds{method}` (until the
//! response headers, so for server-streaming calls the time to the first answer).
use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};
use tower::{Layer, Service};

#[derive(Debug, Clone, Default)]
pub struct GrpcMetrics;

impl<S> Layer<S> for GrpcMetrics {
    type Service = Timed<S>;
    fn layer(&self, inner: S) -> Timed<S> {
        Timed { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Timed<S> {
    inner: S,
}

impl<S, B> Service<tonic::codegen::http::Request<B>> for Timed<S>
where
    S: Service<tonic::codegen::http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        // "/journey.v1.Coordination/Worklist" → "Coordination/Worklist"
        let method = request
            .uri()
            .path()
            .trim_start_matches('/')
            .trim_start_matches("journey.v1.")
            .to_string();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            metrics::histogram!("journey_grpc_request_seconds", "method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}
