//! `journey`: the command line. Parses the verb, starts telemetry, runs it: a server verb runs a
//! node (`journey_node`), a client verb calls a running one, a tool verb runs the tool.
mod args;
mod audit;
mod backup;
mod fhir;
mod hl7;
mod verbs;

use args::{Cli, Command, ImportWhat, ServeWhat};
use clap::Parser;
use journey_node::{self as node, Spec};
use journey_services::{sched, telemetry};
use std::process::ExitCode;

/// mimalloc rather than the system allocator: the servers allocate many small, short-lived buffers
/// from several threads; built without transparent huge pages (see Cargo.toml and BENCHMARKS.md,
/// append).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server verb's node, built before the runtime: its threads' scheduling policy is set on
    // this thread first, and every thread the runtime and the log start inherits it.
    let spec = match server_spec(&cli.command) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let refused = match (&spec, cli.command.front()) {
        (Some(spec), Some(front)) if front.cpu_policy.batch(spec.writes_only()) => {
            sched::batch_this_thread().err()
        }
        _ => None,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        telemetry::init();
        if let Some(e) = refused {
            tracing::warn!(error = %e, "cannot run under SCHED_BATCH; running under the policy the server was started with (--cpu-policy normal silences this)");
        }
        let result = match spec {
            Some(spec) => serve(spec).await,
            None => run(cli.command).await,
        };
        telemetry::shutdown();
        match result {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    })
}

/// The node a server verb runs; `None` for the other verbs.
fn server_spec(command: &Command) -> anyhow::Result<Option<Spec>> {
    Ok(Some(match command {
        Command::Up { config } => Spec::up(config.clone()),
        Command::Serve { what } => match what {
            ServeWhat::EventLog { config } => Spec::event_log(config.clone()),
            ServeWhat::Readmission(c) => Spec::read_side(c.clone(), false)?,
            ServeWhat::Coordination(c) => Spec::read_side(c.clone(), true)?,
            ServeWhat::Fhir(c) => Spec::fhir(c.clone())?,
            ServeWhat::Reactor(c) => Spec::reactor(c.clone())?,
            ServeWhat::Audit(c) => Spec::audit(c.clone())?,
            ServeWhat::Hl7(c) => Spec::hl7(c.clone())?,
        },
        _ => return Ok(None),
    }))
}

/// Runs a node until SIGINT or SIGTERM; prints `ready grpc=… http=…` once it listens.
async fn serve(spec: Spec) -> anyhow::Result<bool> {
    node::run(spec, shutdown_signal(), |ready| {
        println!("ready grpc={} http={}", ready.grpc, ready.http);
    })
    .await
    .map(|_| true)
}

/// A client or tool verb; `Ok(false)` means "ran, and the answer is no" (exit code 1).
async fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Up { .. } | Command::Serve { .. } => unreachable!("server verbs run a node"),
        Command::Audit { what } => audit::run(what).await,
        Command::Health { client } => verbs::health(client).await,
        Command::Append { file, client } => verbs::append(file, client).await.map(|_| true),
        Command::Replay {
            patient,
            json,
            client,
        } => verbs::replay(patient, json, client).await.map(|_| true),
        Command::Verify { range, client } => verbs::verify(range.from, range.to, client).await,
        Command::Rebuild { projection, client } => {
            verbs::rebuild(projection, client).await.map(|_| true)
        }
        Command::Import { what } => {
            let (path, format, strict, client) = match what {
                ImportWhat::Synthea {
                    dir,
                    strict,
                    client,
                } => (dir, journey_import::Format::SyntheaCsv, strict, client),
                ImportWhat::Fhir {
                    path,
                    strict,
                    client,
                } => (path, journey_import::Format::Fhir, strict, client),
            };
            journey_import::run(journey_import::Options {
                path,
                format,
                strict,
                remote: client.remote()?,
            })
            .await
        }
        Command::Simulate { args, client } => journey_simulate::run(args, &client.remote()?).await,
        Command::Hl7 { what } => hl7::run(what).await,
        Command::Fhir(verb) => {
            let local = |url: &str| {
                args::is_loopback(url)
                    .then(args::local_admin_token)
                    .flatten()
            };
            fhir::run(verb, local).await
        }
        Command::Backup { to, since, client } => {
            backup::backup(&client.remote()?, &to, since.as_deref()).await
        }
        Command::Restore {
            backups,
            from_nats,
            stream,
            data_dir,
            anchor,
        } => {
            backup::restore(
                &backups,
                from_nats.as_deref(),
                &stream,
                &data_dir,
                anchor.as_deref(),
            )
            .await
        }
        Command::Bench { what } => journey_bench::run(what).await.map(|_| true),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
