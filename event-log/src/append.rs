//! What an append asks and what it answers, and the head it moves.
use journey_proto::v1::Event;
use std::collections::HashMap;

/// An atomic batch of new events, for one or more patients.
#[derive(Debug, Clone, Default)]
pub struct AppendRequest {
    pub events: Vec<Event>,
    /// patient id → version the patient must be at before the batch (0 = no event yet).
    pub expected_versions: HashMap<String, u64>,
    /// Who writes the batch, for the gate: an organisation whose write rights the gate holds the
    /// batch to, or `None` for a trusted writer. The log only passes it on.
    pub writer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub event_id: String,
    pub position: u64,
    pub stream_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// One entry per event, in request order.
    pub appended: Vec<Appended>,
    /// Every event was already stored: this was a retry and nothing was written.
    pub deduplicated: bool,
}

/// The last durable event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub position: u64,
    pub hash: [u8; 32],
}
