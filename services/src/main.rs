//! `journey`: parse, start telemetry, run the verb.
use clap::Parser;
use journey_services::serve::ReadSide;
use journey_services::{
    cli::{self, Cli, Command},
    telemetry,
};
use std::process::ExitCode;

/// mimalloc rather than the system allocator: the servers allocate many small, short-lived buffers
/// from several threads; built without transparent huge pages (see Cargo.toml and BENCHMARKS.md,
/// append).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn serve_read_side(
    side: ReadSide,
    config: journey_services::config::ReadSideConfig,
) -> anyhow::Result<bool> {
    journey_services::serve::read_side(side, config, shutdown_signal(), |ready| {
        println!("ready grpc={} http={}", ready.grpc, ready.http);
    })
    .await
    .map(|_| true)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before the runtime starts: its threads, and every thread the server starts, inherit it.
    // Otherwise the policy stays the one the process was started with.
    let batch = cli
        .command
        .server_writes_only()
        .is_some_and(|writes_only| cli.cpu_policy.batch(writes_only));
    let refused = batch
        .then(|| journey_services::sched::batch_this_thread().err())
        .flatten();
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
        run(cli).await
    })
}

async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Up { config, anchor } => {
            journey_services::server::run_with_anchor(config, anchor, shutdown_signal(), |ready| {
                println!("ready grpc={} http={}", ready.grpc, ready.http);
            })
            .await
            .map(|_| true)
        }
        Command::Serve {
            what: cli::ServeWhat::Audit(config),
        } => journey_services::audit_service::serve(config, shutdown_signal(), |ready| {
            println!("ready grpc={} http={}", ready.grpc, ready.http);
        })
        .await
        .map(|_| true),
        Command::Audit { what } => journey_services::audit_service::cli(what).await,
        Command::Debug { what } => journey_services::audit_service::debug(what),
        Command::Serve {
            what: cli::ServeWhat::EventLog { mut config, anchor },
        } => {
            config.no_read_models = true;
            config.no_reactor = true;
            journey_services::server::run_with_anchor(config, anchor, shutdown_signal(), |ready| {
                println!("ready grpc={} http={}", ready.grpc, ready.http);
            })
            .await
            .map(|_| true)
        }
        Command::Serve {
            what: cli::ServeWhat::Readmission(config),
        } => serve_read_side(ReadSide::Readmission, config).await,
        Command::Serve {
            what: cli::ServeWhat::Coordination(config),
        } => serve_read_side(ReadSide::Coordination, config).await,
        Command::Serve {
            what: cli::ServeWhat::Reactor(config),
        } => journey_services::reactor::serve(config, shutdown_signal(), |ready| {
            println!("ready grpc={} http={}", ready.grpc, ready.http);
        })
        .await
        .map(|_| true),
        Command::Rebuild { projection, client } => {
            cli::rebuild(projection, client).await.map(|_| true)
        }
        Command::Health { client } => cli::health(client).await,
        Command::Append { file, client } => cli::append(file, client).await.map(|_| true),
        Command::Replay {
            patient,
            json,
            client,
        } => cli::replay(patient, json, client).await.map(|_| true),
        Command::Verify { from, to, client } => cli::verify(from, to, client).await,
        Command::Bench { what } => journey_services::bench::run(what).await.map(|_| true),
        Command::Import {
            what:
                cli::ImportWhat::Synthea {
                    dir,
                    strict,
                    client,
                },
        } => {
            journey_services::import::synthea::run(journey_services::import::synthea::Options {
                dir,
                strict,
                server: client.server,
                token: client.token,
            })
            .await
        }
        Command::Simulate { args, client } => journey_services::simulate::run(args, client).await,
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
