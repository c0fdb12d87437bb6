//! The coordination read model (docs/design.md §5): per discharged patient, the follow-up state
//! (letter, reconciliation, first home contact, appointments, alerts, referents) and the
//! territory indicators per week.

pub mod calendar;
pub mod directory;
pub mod fold;
pub mod followup;
pub mod indicators;
pub mod letters;
pub mod pathway_facts;
pub mod pathways;
pub mod patient;
pub mod qls;
pub mod queries;
pub mod rosters;
mod rows;
pub mod urgency;

pub use fold::Coordination;
