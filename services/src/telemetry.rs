//! Logs, traces and metrics.
//!
//! - Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`); coloured only when
//!   stderr is a terminal and `NO_COLOR` is unset or empty (no escape codes in log files).
//! - Traces: exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (service name from
//!   `OTEL_SERVICE_NAME`, default `journey`). The trace of an event has the event id as its trace id
//!   (see `journey_proto::trace`), so the spans of its append, its publication on NATS and each
//!   projection land in one trace across processes, with or without propagation of headers.
//! - Metrics: a Prometheus registry rendered at `/metrics` by every process's HTTP server.
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::{io::IsTerminal, sync::OnceLock};
use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer};

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();
static TRACES: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Latency buckets (seconds) for every `*_seconds` histogram.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets for the group-commit size (events per fsync).
const EVENTS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 20000.0,
];

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_filter(filter);
    let otel = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .and_then(|endpoint| match tracer_provider() {
            Ok(p) => {
                let tracer = p.tracer("journey");
                let _ = TRACES.set(p);
                journey_proto::trace::enable();
                eprintln!("traces: exporting over OTLP/HTTP to {endpoint}");
                Some(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(EnvFilter::new(
                            "journey=info,journey_services=info,journey_projections=info",
                        )),
                )
            }
            Err(e) => {
                eprintln!(
                    "traces: OTLP exporter not started ({e}); check OTEL_EXPORTER_OTLP_ENDPOINT"
                );
                None
            }
        });
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init();
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full("journey_group_commit_events".into()), EVENTS)
        })
        .map(|b| b.build_recorder());
    if let Ok(recorder) = recorder {
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_ok() {
            let _ = METRICS.set(handle);
        }
    }
}

/// Whether the logs may carry ANSI colour codes: only on a terminal, and not when `NO_COLOR` is
/// set to a non-empty value (https://no-color.org).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

fn tracer_provider() -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "journey".into());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build())
}

/// Flushes the traces still buffered (call before the process exits).
pub fn shutdown() {
    if let Some(p) = TRACES.get() {
        let _ = p.force_flush();
        let _ = p.shutdown();
    }
}

/// The Prometheus text of every metric of this process.
pub fn render_metrics() -> String {
    METRICS.get().map(|h| h.render()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
        assert!(!colour(false, Some("1".into())));
    }
}
