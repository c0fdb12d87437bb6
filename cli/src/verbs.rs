//! The client verbs on the log: append, replay, verify, rebuild, health.
use crate::args::ClientArgs;
use anyhow::{bail, Context};
use futures::StreamExt;
use journey_proto::{
    hex::hex,
    json,
    v1::{AppendRequest, ReadStreamRequest, VerifyRequest},
};
use std::path::PathBuf;
use tonic::Status;

/// A refusal as the user reads it: the verb, the gRPC code and the server's words.
pub fn refused(what: &str) -> impl Fn(Status) -> anyhow::Error + '_ {
    move |s| anyhow::anyhow!("{what} refused ({:?}): {}", s.code(), s.message())
}

pub async fn append(file: PathBuf, args: ClientArgs) -> anyhow::Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let events = json::events_from_text(&text).with_context(|| format!("in {}", file.display()))?;
    if events.is_empty() {
        bail!("{} holds no events", file.display());
    }
    let mut client = args.remote()?.client().await?;
    let response = client
        .append(AppendRequest {
            events,
            expected_versions: Default::default(),
        })
        .await
        .map_err(refused("append"))?
        .into_inner();
    for a in &response.appended {
        println!(
            "position {:>8}  version {:>4}  {}",
            a.position, a.stream_version, a.event_id
        );
    }
    if response.deduplicated {
        println!("(already stored: nothing written)");
    }
    Ok(())
}

pub async fn replay(patient: String, as_json: bool, args: ClientArgs) -> anyhow::Result<()> {
    let mut client = args.remote()?.client().await?;
    let mut stream = client
        .read_stream(ReadStreamRequest {
            patient_id: patient.clone(),
            from_version: 1,
            batch_size: 0,
        })
        .await
        .map_err(refused("replay"))?
        .into_inner();
    let mut count = 0;
    while let Some(batch) = stream.next().await {
        for event in batch?.events {
            count += 1;
            if as_json {
                println!("{}", json::event_to_json(&event));
                continue;
            }
            let e = journey_services::timeline::entry(&event);
            println!(
                "v{:<3} #{:<7} {}  {:<22} by {} via {} (recorded {})\n      {}",
                e.version,
                e.position,
                e.occurred_at,
                e.kind,
                e.actor,
                e.source,
                e.recorded_at,
                e.detail
            );
        }
    }
    if count == 0 {
        println!("no events for patient {patient}");
    }
    Ok(())
}

pub async fn verify(from: u64, to: u64, args: ClientArgs) -> anyhow::Result<bool> {
    let mut client = args.remote()?.client().await?;
    let r = client
        .verify(VerifyRequest {
            from_position: from,
            to_position: to,
            ..Default::default()
        })
        .await
        .map_err(refused("verify"))?
        .into_inner();
    if r.ok {
        println!(
            "ok: {} events verified; head position {} hash {}",
            r.checked,
            r.head_position,
            hex(&r.head_hash)
        );
    } else {
        println!(
            "FAILED at position {}: {} ({} events verified before it)",
            r.first_bad_position, r.problem, r.checked
        );
    }
    Ok(r.ok)
}

/// `journey rebuild`: streams the server's progress as a progress line (events/s, ETA).
pub async fn rebuild(projection: String, args: ClientArgs) -> anyhow::Result<()> {
    use journey_proto::v1::{projections_client::ProjectionsClient, RebuildRequest};
    use std::io::Write;
    let remote = args.remote()?;
    let mut c = ProjectionsClient::with_interceptor(remote.channel().await?, remote.token());
    let mut stream = c
        .rebuild(RebuildRequest {
            projection: projection.clone(),
        })
        .await
        .map_err(refused("rebuild"))?
        .into_inner();
    let mut last = None;
    while let Some(p) = stream.next().await {
        let p = p.map_err(refused("rebuild"))?;
        let eta = if p.events_per_sec > 0.0 {
            p.target.saturating_sub(p.applied) as f64 / p.events_per_sec
        } else {
            0.0
        };
        let pct = if p.target > 0 {
            100.0 * p.applied as f64 / p.target as f64
        } else {
            100.0
        };
        eprint!(
            "\r{projection}: {:>10}/{} events ({pct:5.1}%), {:.0} events/s, ETA {eta:.0}s   ",
            p.applied, p.target, p.events_per_sec
        );
        let _ = std::io::stderr().flush();
        last = Some(p);
    }
    eprintln!();
    match last {
        Some(p) if p.done => {
            println!(
                "{projection} rebuilt: {} events at {:.0} events/s, swapped in",
                p.applied, p.events_per_sec
            );
            Ok(())
        }
        _ => anyhow::bail!("the rebuild stream ended before the swap; see the server log"),
    }
}

/// `journey health`: the gRPC health check of the whole server ("" service).
pub async fn health(args: ClientArgs) -> anyhow::Result<bool> {
    use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
    let mut c = HealthClient::new(args.remote()?.channel().await?);
    let status = c
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(refused("health check"))?
        .into_inner()
        .status;
    let serving = status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32;
    println!("{}", if serving { "serving" } else { "not serving" });
    Ok(serving)
}
