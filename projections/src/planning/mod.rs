//! The discharge-planning read model (docs/design.md §5, "Discharge planning"): per stay, from
//! admission on, the expected discharge, the discharge-readiness checklist (who ticked what,
//! when), the complex-discharge flag and its reasons; the rules of readiness and lateness, pure,
//! in `checklist.rs`.

pub mod checklist;
pub mod fold;
pub mod queries;

pub use fold::Planning;
