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

/// The W3C `traceparent` of an event at `position` (the NATS header). Runs once per published
/// event: written digit by digit, without the formatting machinery.
pub fn traceparent(event_id: &str, position: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(55);
    out.push_str("00-");
    let mut digits = 0;
    for c in event_id.chars().filter(|c| *c != '-') {
        if !c.is_ascii_hexdigit() || digits == 32 {
            digits = 0;
            break;
        }
        out.push(c.to_ascii_lowercase());
        digits += 1;
    }
    if digits != 32 {
        // Not a UUID (never so for a stored event): the trace id its parse gives.
        let id = u128::from_be_bytes(trace_id(event_id).to_bytes());
        return format!("00-{id:032x}-{:016x}-01", position.max(1));
    }
    out.push('-');
    let span = position.max(1);
    for shift in (0..16).rev() {
        out.push(DIGITS[((span >> (shift * 4)) & 0xf) as usize] as char);
    }
    out.push_str("-01");
    out
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
    fn traceparent_matches_the_parsed_trace_id() {
        for (id, position) in [
            ("0192F0C4-7B1E-7CC0-9A55-3F2D8E4B1A01", 7u64),
            ("0192f0c47b1e7cc09a553f2d8e4b1a01", u64::MAX),
            ("00000000-0000-0000-0000-000000000000", 0),
            ("not-a-uuid", 3),
            ("0192f0c4-7b1e-7cc0-9a55-3f2d8e4b1a01ff", 3),
        ] {
            let id128 = u128::from_be_bytes(trace_id(id).to_bytes());
            assert_eq!(
                traceparent(id, position),
                format!("00-{id128:032x}-{:016x}-01", position.max(1)),
                "{id}"
            );
        }
    }

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
