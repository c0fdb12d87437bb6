//! Journey rules of the care-pathway backbone, as pure synchronous code with no IO.
//!
//! - [`validate`] checks the fields of one incoming event (shape, identifiers, enum values, clock
//!   sanity) before it reaches the log.
//! - [`JourneyRules`] is the [`journey_event_log::Gate`] the single writer consults: admissions,
//!   transfers, discharges, cancellations, death and merges (DESIGN.md §3). A batch is admitted
//!   whole or not at all.
//! - [`alert_rules`] decides which telemonitoring observations raise an alert (the reactor in
//!   `journey-services` appends them), and which observation values are impossible.
//! - [`as_of`] folds a patient's events into the state at a clinical time as known at a
//!   recording time (the audit trail's bi-temporal view).

pub mod alert_rules;
pub mod as_of;
mod rules;
mod validate;

pub use alert_rules::{AlertDecision, AlertRules};
pub use rules::JourneyRules;
pub use validate::{validate, FieldError};
