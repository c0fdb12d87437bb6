//! The journey event log: the system of record.
//!
//! Owns global positions, per-patient stream versions, idempotency by `event_id`, optimistic
//! concurrency, the BLAKE3 hash chain, group commit (concurrent appenders share one fsync, nothing is
//! acknowledged before it) and the durable watermark that readers never pass.
//!
//! It must not know about gRPC, NATS or SQL, and it holds no journey rules: those come in through
//! the [`Gate`] trait, checked by the single writer so that rules and commit order agree.
//! Storage sits behind the small [`Storage`] trait; [`SledStorage`] is the engine used today.

mod append;
mod chain;
mod checkpoint;
mod chunk;
mod error;
mod gate;
mod index;
mod journal;
mod log;
mod restore;
mod shared;
mod sled_storage;
mod storage;
mod syncer;
mod writer;

#[cfg(test)]
mod copy_tests;
#[cfg(test)]
mod tests;

pub use chain::{hash_of, VerifyReport, ZERO_HASH};
pub use checkpoint::path_in as checkpoint_in;
pub use error::{AppendError, StorageError};
pub use gate::{Gate, NoRules, Rejection};
pub use log::{AppendOutcome, AppendRequest, Appended, EventLog, Head, LogOptions};
pub use restore::{ChainCheck, Restore};
pub use sled_storage::SledStorage;
pub use storage::{Record, Storage, StoredEvent, WriteBatch};

/// Version of the event catalogue this log stamps on new events.
pub const SCHEMA_VERSION: u32 = 1;
