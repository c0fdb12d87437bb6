//! The journey rules as the log's gate.
//!
//! `journey-domain` does no IO and does not know the log, and `journey-event-log` knows no rules:
//! the adapter between them lives here, on the server side that wires the two together. It maps a
//! [`Refusal`](journey_domain::Refusal) to a [`Rejection`] carrying the rule's stable code, which
//! the log passes through to `AppendError::Rejected` and `errors::append_error` puts in the gRPC
//! error details.
use journey_domain::JourneyRules;
use journey_event_log::{Gate, Rejection};
use journey_proto::v1::Event;

/// [`JourneyRules`] consulted by the log's single writer.
#[derive(Debug, Default, Clone)]
pub struct JourneyGate(pub JourneyRules);

impl Gate for JourneyGate {
    fn admit(&mut self, events: &[Event], writer: Option<&str>) -> Result<(), Rejection> {
        self.0
            .admit_as(events, writer)
            .map_err(|(index, refusal)| Rejection {
                index,
                rule: refusal.rule.code().into(),
                message: refusal.message,
            })
    }

    fn restore(&mut self, event: &Event) {
        self.0.restore(event);
    }

    fn save(&self) -> Option<Vec<u8>> {
        Some(self.0.save())
    }

    fn load(&mut self, state: &[u8]) -> bool {
        match JourneyRules::load(state) {
            Some(rules) => {
                self.0 = rules;
                true
            }
            None => false,
        }
    }
}

/// A fresh journey gate, for `EventLog::open`.
pub fn journey_rules() -> Box<dyn Gate> {
    Box::new(JourneyGate::default())
}
