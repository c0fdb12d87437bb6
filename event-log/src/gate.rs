//! The hook through which journey rules decide, inside the single writer, whether a batch may be
//! written. The log itself knows no rules.
use journey_proto::v1::Event;

/// Why a gate refused a batch: the index of the event at fault and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: usize,
    pub message: String,
}

pub trait Gate: Send + 'static {
    /// Checks new events (envelopes complete: version, position and recorded time assigned) against
    /// the current state and, only if every one passes, applies them. On `Err` nothing changed.
    fn admit(&mut self, events: &[Event]) -> Result<(), Rejection>;
    /// Applies an event already in the log (state rebuilt at start). Never refuses.
    fn restore(&mut self, event: &Event);
}

/// A gate that admits everything (raw log benchmarks, storage tests).
#[derive(Debug, Default)]
pub struct NoRules;

impl Gate for NoRules {
    fn admit(&mut self, _: &[Event]) -> Result<(), Rejection> {
        Ok(())
    }
    fn restore(&mut self, _: &Event) {}
}
