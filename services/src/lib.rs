//! The long-running services of the journey backbone (a node, `journey-node`, runs any set of
//! them): the gRPC `EventLog` over the log (`log_service.rs`) with its NATS outbox
//! (`outbox.rs`) and anchor (`anchor.rs`), the read models' services (`readmission_service.rs`,
//! `coordination_service.rs`, `projections_service.rs`), the dashboard (`dashboard.rs`), the alert reactor (`reactor.rs`), the
//! audit service (`audit_service.rs`, `fhir_audit.rs`), and what they share: settings (`config.rs`), authentication (`auth.rs`, `session.rs`), who may write
//! what (`write_policy.rs`, with the write rights of `journey-domain`), the access log
//! (`access_log/`), the one mapping of errors to gRPC statuses (`errors.rs`), the one way to
//! the log (`log_handle.rs`), TLS, telemetry and scheduling.
//!
//! Owns wiring and IO only: the journey rules live in `journey-domain` (reaching the log through
//! `gate.rs`), storage in `journey-event-log`, read models in `journey-projections`. Knows nothing
//! of how services are composed into a process (`node/`), nor of the command line's client verbs,
//! importers, the simulator or benchmarks (`cli/`, `tools/`).

pub mod access_log;
pub mod anchor;
pub mod audit_service;
pub mod auth;
pub mod config;
pub mod connections;
pub mod consent;
pub mod coordination_service;
pub mod dashboard;
pub mod errors;
pub mod fhir_audit;
pub mod files;
pub mod gate;
pub mod grpc_metrics;
pub mod html;
pub mod http_server;
pub mod log_handle;
pub mod log_service;
pub mod outbox;
pub mod pathway_steps;
pub mod principal;
pub mod projections_service;
pub mod reactor;
pub mod readmission_service;
pub mod replication;
pub mod request_decoding;
pub mod request_patient;
pub mod sched;
pub mod secret_files;
pub mod session;
pub mod telemetry;
pub mod timeline;
pub mod tls;
pub mod write_policy;
