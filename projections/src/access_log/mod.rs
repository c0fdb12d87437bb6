//! The access log's storage (`journey_access_log`, append-only, and `journey_access_patients`):
//! records with bounded fields (`record.rs`), chained and verified (`chain.rs`), selected a page
//! at a time (`query.rs`), refused calls counted per source and minute (`refusals.rs`). What
//! is recorded, when, and what a failure means to a caller is the
//! services' (`journey_services::access_log`).
mod chain;
mod query;
mod record;
mod refusals;

pub use chain::{add_problem, append, head, holds, verify, Hash, Verified};
pub use query::{parse_token, run as query, Page, Query};
pub use record::{bounded, Record, DETAIL, PATIENTS, SHORT};
pub use refusals::{Caller, Refusals, Refused, ALONE_PER_MINUTE};
