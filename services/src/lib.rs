//! The journey services and the `journey` command: the gRPC `EventLog` service over the log,
//! the NATS outbox, the HTTP status page, and the client verbs.
//!
//! Everything here is wiring and IO; the journey rules live in `journey-domain`, storage in
//! `journey-event-log`.

pub mod access_log;
pub mod audit_service;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod coordination_service;
pub mod dashboard;
pub mod errors;
pub mod grpc_metrics;
pub mod hex;
pub mod http;
pub mod import;
pub mod json;
pub mod log_service;
pub mod outbox;
pub mod projections_service;
pub mod reactor;
pub mod readmission_service;
pub mod request_patient;
pub mod sched;
pub mod serve;
pub mod server;
pub mod session;
pub mod simulate;
pub mod telemetry;
pub mod timeline;
pub mod tls;

pub use server::{run, Ready};
