//! `journey bench …`: speed figures reported beside baselines measured in the same run
//! (docs/design.md §7), so that a noisy machine still gives meaningful ratios.
//!
//! - `append`: the log's append paths (issue 2).
//! - `rebuild`, `query`, `visible`: the read side (issue 3): rebuild speed of the readmission read
//!   model, query latency over gRPC, and the delay from append to visibility in the read model.
//! - `coordination`: rebuild of the coordination read model, worklist and dashboard latency (issue 4).
//! - `audit`: timeline, full-log verification, cost of authentication and access control (issue 5).
//! - `e2e`: sustained appends with every read model live, embedded vs separate services on NATS
//!   and PostgreSQL (issue 6).
//! - `restart`: opening a log from its checkpoint against reading every event back (issue 19).
//! - `hl7`: ADT messages over MLLP against gRPC Append of the same events, and parse rate (issue 15).
//! - `fhir`: Bulk Data export against a scan of the log, `$everything` against the timeline (issue 17).
//! - `import`: `journey import fhir` beside `journey import synthea` of the same population (issue 17).
//!
//! The server under test is this binary's own `journey up`, started as a child process on a
//! temporary folder ([`common::start_server`]).
pub mod append;
pub mod args;
pub mod audit;
pub mod common;
pub mod coordination;
pub mod e2e;
pub mod fhir;
pub mod hl7;
pub mod import;
pub mod load;
pub mod query;
pub mod rebuild;
pub mod restart;
pub mod visible;

pub use append::append;
pub use common::sample_event;

use args::BenchWhat;

/// Runs the benchmark `what` names; the server under test is `std::env::current_exe()`, so this
/// must be called from the `journey` binary.
pub async fn run(what: BenchWhat) -> anyhow::Result<()> {
    match what {
        BenchWhat::Append(args) => append::append(args).await,
        BenchWhat::Rebuild(args) => rebuild::run(args).await,
        BenchWhat::Query(args) => query::run(args).await,
        BenchWhat::Visible(args) => visible::run(args).await,
        BenchWhat::Coordination(args) => coordination::run(args).await,
        BenchWhat::Audit(args) => audit::run(args).await,
        BenchWhat::E2e(args) => e2e::run(args).await,
        BenchWhat::Restart(args) => restart::run(args).await,
        BenchWhat::Hl7(args) => hl7::run(args).await,
        BenchWhat::Fhir(args) => fhir::run(args).await,
        BenchWhat::Import(args) => import::run(args).await,
    }
}
