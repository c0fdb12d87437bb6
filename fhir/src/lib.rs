//! FHIR R4 out of the journey (crate `journey-fhir`): a patient's events (the event catalogue,
//! `journey-proto`) as FHIR resources, French core profiles (`hl7.fhir.fr.core`) where they
//! exist, and the few resources a FHIR server answers with around them (searchset [`bundle`],
//! [`outcome`], [`capability`]), and what a request asks of it ([`query`]). docs/fhir.md is the mapping table.
//!
//! Pure: no IO, no clock, no log, no services. The HTTP API that authenticates, checks territory
//! and consent, records the read and reads the log is `journey-fhir-api` (`fhir-api/`).
//!
//! The resources are hand-written, as FHIR servers in the field write their mappings (a
//! generated model of the whole specification would be most of the crate for the dozen elements
//! each resource uses): `serde_json` values, or, for the resources a patient has by the thousand
//! (Observation, Condition, MedicationRequest, the Encounters of stays, movements and contacts, Task, Provenance), serde structs written straight to the
//! answer or the export file ([`resource::Body`], [`bundle::Entry`]). An independent validator checks them in the tests
//! (`tests/tests/fhir.rs`, Python `fhir.resources`).
//!
//! Ids are stable across rebuilds (the journey's own ids, or UUID v5 of them when they are not
//! FHIR ids); `meta.versionId` is the patient's stream version of the last event a resource was
//! built from, `meta.lastUpdated` that event's recorded time.
mod appointment;
pub mod bulk;
pub mod bundle;
pub mod capability;
mod care_plan;
mod care_team;
pub mod codes;
mod condition;
mod consent;
mod contact;
mod encounter;
mod flag;
mod identity;
pub mod journey;
mod letter;
mod medication;
mod observation;
pub mod outcome;
mod patient;
mod procedure;
pub mod provenance;
pub mod query;
pub mod resource;
pub mod task;
mod type_filter;

pub use journey::{resources, Kind};
pub use resource::Resource;
