//! The hook through which journey rules decide, inside the single writer, whether a batch may be
//! written. The log itself knows no rules.
use journey_proto::v1::Event;

/// Why a gate refused a batch: the index of the event at fault, the rule it broke and a human
/// message. `rule` is an opaque stable code chosen by the gate (e.g. `no_open_admission`): the log
/// only carries it through to [`AppendError::Rejected`](crate::AppendError::Rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: usize,
    pub rule: String,
    pub message: String,
}

pub trait Gate: Send + 'static {
    /// Checks new events (envelopes complete: version, position and recorded time assigned) against
    /// the current state and, only if every one passes, applies them. On `Err` nothing changed.
    /// `writer` is what the append request said of who writes it ([`AppendRequest::writer`](crate::AppendRequest::writer)).
    fn admit(&mut self, events: &[Event], writer: Option<&str>) -> Result<(), Rejection>;
    /// Applies an event already in the log (state rebuilt at start). Never refuses.
    fn restore(&mut self, event: &Event);
    /// The gate's state, saved with the log's checkpoint at an orderly stop; `None`: not saved
    /// (the next open restores every event).
    fn save(&self) -> Option<Vec<u8>> {
        None
    }
    /// Takes back a state [`save`](Gate::save) made; `false` if it cannot (the open then restores
    /// every event into a fresh gate).
    fn load(&mut self, _state: &[u8]) -> bool {
        false
    }
}

/// A gate that admits everything (raw log benchmarks, storage tests).
#[derive(Debug, Default)]
pub struct NoRules;

impl Gate for NoRules {
    fn admit(&mut self, _: &[Event], _: Option<&str>) -> Result<(), Rejection> {
        Ok(())
    }
    fn restore(&mut self, _: &Event) {}
}
