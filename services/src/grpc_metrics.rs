//! A tower layer timing every gRPC call: `journey_grpc_request_seconds{method}` (until the
//! response headers, so for server-streaming calls the time to the first answer). The label is
//! one of the methods the node serves, `reflection`, or `unknown`: a caller choosing paths cannot
//! grow the metrics without bound.
use prost_reflect::DescriptorPool;
use std::{
    collections::HashSet,
    future::Future,
    pin::Pin,
    sync::LazyLock,
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
        let method = label(request.uri().path());
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

/// Every `package.Service/Method` of the journey and health services.
static KNOWN: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut known = HashSet::new();
    for set in [
        journey_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
    ] {
        let pool = DescriptorPool::decode(set).expect("embedded descriptors");
        for service in pool.services() {
            for method in service.methods() {
                known.insert(format!("{}/{}", service.full_name(), method.name()));
            }
        }
    }
    known
});

/// "/journey.v1.Coordination/Worklist" → "Coordination/Worklist"; a path no service has →
/// "unknown".
fn label(path: &str) -> &'static str {
    let path = path.trim_start_matches('/');
    if path.starts_with("grpc.reflection.") {
        return "reflection";
    }
    match KNOWN.get(path) {
        Some(known) => {
            let known: &'static str = known.as_str();
            known.trim_start_matches("journey.v1.")
        }
        None => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::label;

    #[test]
    fn labels_are_the_methods_served_or_unknown() {
        assert_eq!(
            label("/journey.v1.Coordination/Worklist"),
            "Coordination/Worklist"
        );
        assert_eq!(label("/journey.v1.EventLog/Append"), "EventLog/Append");
        assert_eq!(
            label("/grpc.health.v1.Health/Check"),
            "grpc.health.v1.Health/Check"
        );
        assert_eq!(
            label("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "reflection"
        );
        assert_eq!(label("/journey.v1.EventLog/Nope"), "unknown");
        assert_eq!(label("/x4b2/y"), "unknown");
    }
}
