//! The trace context of an event. Its trace id is the event id, so one trace follows an event
//! across processes (append, NATS publication, every projection) even where no header carried it;
//! the span id of a committed event's context is its position.
use opentelemetry::{
    trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
    Context,
};
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once spans are exported: per-event spans are only made then.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn trace_id(event_id: &str) -> TraceId {
    let hex: String = event_id.chars().filter(|c| *c != '-').collect();
    u128::from_str_radix(&hex, 16).map_or(TraceId::INVALID, TraceId::from)
}

/// The W3C `traceparent` of an event at `position` (the NATS header).
pub fn traceparent(event_id: &str, position: u64) -> String {
    // Integer formatting: one pass, not one formatting call per byte.
    let id = u128::from_be_bytes(trace_id(event_id).to_bytes());
    format!("00-{id:032x}-{:016x}-01", position.max(1))
}

/// The remote parent of an event's spans (position 0 = not yet committed).
pub fn event_context(event_id: &str, position: u64) -> Context {
    Context::new().with_remote_span_context(SpanContext::new(
        trace_id(event_id),
        SpanId::from(position.max(1)),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_is_the_event_id() {
        let id = "0192f0c4-7b1e-7cc0-9a55-3f2d8e4b1a01";
        assert_eq!(
            traceparent(id, 42),
            "00-0192f0c47b1e7cc09a553f2d8e4b1a01-000000000000002a-01"
        );
        let cx = event_context(id, 42);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "0192f0c47b1e7cc09a553f2d8e4b1a01"
        );
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(
            event_context("not a uuid", 1)
                .span()
                .span_context()
                .trace_id(),
            TraceId::INVALID
        );
    }
}
