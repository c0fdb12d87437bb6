//! Journey rules of the care-pathway backbone, as pure synchronous code with no IO.
//!
//! - [`validate`] checks the fields of one incoming event (shape, identifiers, enum values, clock
//!   sanity) before it reaches the log.
//! - [`JourneyRules`] holds the per-patient journey state and checks the journey rules of
//!   docs/design.md §3 (admissions, transfers, discharges, cancellations, death and merges): a batch is
//!   admitted whole or not at all, and a refusal names the broken [`Rule`] by a stable code beside
//!   its human message ([`Refusal`]). The crate does not know the log: the server adapts
//!   `JourneyRules` to the log's gate, which the single writer consults.
//! - [`alert_rules`] decides which telemonitoring observations raise an alert (the reactor in
//!   `journey-services` appends them), and which observation values are impossible.
//! - [`as_of`] folds a patient's events into the state at a clinical time as known at a
//!   recording time (the audit trail's bi-temporal view).

pub mod alert_rules;
pub mod as_of;
mod rules;
mod validate;

pub use alert_rules::{AlertDecision, AlertRules};
pub use rules::{JourneyRules, Refusal, Rule};
pub use validate::{validate, FieldError};
