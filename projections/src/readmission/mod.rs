//! The readmission read model (docs/design.md §5): index stays, 30-day readmissions, ED revisits, LACE.

pub mod charlson;
pub mod fold;
pub mod lace;
pub mod model;
pub mod queries;

pub use fold::Readmission;
