//! Read models: folds of the journey log into SQL tables (SQLite embedded, PostgreSQL in production).
//!
//! Projections never append events; they read the log through one event-source abstraction
//! ([`journey_log_access::EventSource`], in process, over gRPC or from NATS) and keep their checkpoint in the same transaction as their rows.
//! This crate knows nothing of gRPC servers: the services crate exposes the read models.

pub mod access_log;
pub mod coordination;
pub mod db;
pub mod movements;
pub mod planning;
pub mod readmission;
pub mod runtime;
pub mod scope;
pub mod sql;
pub mod sqlite_file;
