//! A page read while the log grows: `GET /indicators` every [`PACE`] while first contacts are
//! appended at [`APPENDS_PER_SECOND`] (the read models fold each one, so the figures a reader
//! gets are never at the read models' current stand for long), as a territory's dashboard is
//! read in a working day.
use super::{super::common::histogram, super::common::record, round_trip};
use hdrhistogram::Histogram;
use journey_log_access::LogClient;
use journey_proto::v1::AppendRequest;
use std::{
    future::Future,
    time::{Duration, Instant},
};

/// Time between two reads of the page.
const PACE: Duration = Duration::from_millis(50);
/// Appends beside the reads.
const APPENDS_PER_SECOND: u64 = 20;

/// `read` timed every [`PACE`], `calls` times (at least 10, none after `budget`), while contacts
/// for `patients` (in turn) are appended; the latencies in µs and how many events were appended
/// meanwhile.
pub async fn measure<F, Fut>(
    log: &LogClient,
    patients: &[String],
    calls: u64,
    budget: Duration,
    mut read: F,
) -> anyhow::Result<(Histogram<u64>, u64)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    anyhow::ensure!(!patients.is_empty(), "no patient to record contacts for");
    let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
    let (log, who) = (log.clone(), patients.to_vec());
    let appender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / APPENDS_PER_SECOND));
        let mut n = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return Ok::<u64, anyhow::Error>(n),
            }
            let patient = &who[n as usize % who.len()];
            log.clone()
                .append(AppendRequest {
                    events: vec![round_trip::contact(patient, 1_000_000 + n)],
                    expected_versions: Default::default(),
                })
                .await
                .map_err(super::super::common::status)?;
            n += 1;
        }
    });
    let mut h = histogram();
    let started = Instant::now();
    let mut pace = tokio::time::interval(PACE);
    for i in 0..calls {
        if i >= 10 && started.elapsed() > budget {
            break;
        }
        pace.tick().await;
        let t = Instant::now();
        read().await?;
        record(&mut h, t.elapsed());
    }
    let _ = stop_tx.send(true);
    let appended = appender.await??;
    Ok((h, appended))
}
