//! Appending each patient's events through the gRPC Append API, and counting what happened.
//!
//! Patients are appended concurrently ([`CONCURRENCY`] at a time), each patient's events in order,
//! in batches of up to [`CHUNK`]. A batch is atomic: when the journey rules refuse one event
//! (FAILED_PRECONDITION, or INVALID_ARGUMENT for a field), that event's record is reported (file,
//! line, id, reason), the event is dropped (a refused `Admitted` also drops the transfers and
//! the discharge that need it) and the rest is sent again. When a batch mixes stored and new
//! events (ALREADY_EXISTS: a re-run after refusals), the patient goes on one event at a time.
//! With `strict`, appending stops at the first refused record.
use crate::mapping::Item;
use futures::StreamExt;
use journey_log_access::LogClient;
use journey_proto::v1::{event::Payload, AppendRequest};
use std::{
    collections::{BTreeMap, BTreeSet, HashSet, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

/// Patients appended at the same time.
pub const CONCURRENCY: usize = 8;
/// Most events in one Append call.
pub const CHUNK: usize = 500;

/// What happened to the events of one file.
#[derive(Default, Clone, Copy)]
pub struct FileCount {
    pub appended: u64,
    pub present: u64,
    /// Records with a refused event.
    pub refused: u64,
}

/// What the appending tasks share.
struct Shared {
    strict: bool,
    abort: AtomicBool,
    done: AtomicU64,
    stats: Mutex<Stats>,
}

/// What the append counted.
#[derive(Default)]
pub struct Stats {
    pub appended: u64,
    pub present: u64,
    pub refused_events: u64,
    /// Events skipped because the admission they need was refused.
    pub skipped_dependent: u64,
    pub by_reason: BTreeMap<String, u64>,
    pub refused_rows: BTreeSet<(Arc<str>, u64)>,
    pub files: BTreeMap<Arc<str>, FileCount>,
}

impl Shared {
    fn stored(&self, batch: &[Item], deduplicated: bool) {
        let mut s = self.stats.lock().expect("stats");
        for i in batch {
            let f = s.files.entry(i.origin.file.clone()).or_default();
            if deduplicated {
                f.present += 1;
            } else {
                f.appended += 1;
            }
        }
        if deduplicated {
            s.present += batch.len() as u64;
        } else {
            s.appended += batch.len() as u64;
        }
        drop(s);
        self.done.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }

    fn refused(&self, item: &Item, reason: &str, detail: &str) {
        eprintln!("refused {} {}: {detail}", item.origin, item.kind());
        let mut s = self.stats.lock().expect("stats");
        s.refused_events += 1;
        *s.by_reason.entry(reason.to_owned()).or_default() += 1;
        if s.refused_rows
            .insert((item.origin.file.clone(), item.origin.line))
        {
            s.files.entry(item.origin.file.clone()).or_default().refused += 1;
        }
        drop(s);
        self.done.fetch_add(1, Ordering::Relaxed);
        if self.strict {
            self.abort.store(true, Ordering::SeqCst);
        }
    }

    fn skipped(&self) {
        self.stats.lock().expect("stats").skipped_dependent += 1;
        self.done.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a refusal says of one event of the batch, read from the status's structured details
/// (never from its message): the event's index, the reason it is counted under (the journey
/// rule, or the invalid field), and the server's words.
#[derive(Debug, PartialEq)]
struct Refusal {
    index: usize,
    reason: String,
    detail: String,
}

fn refusal(status: &tonic::Status) -> Option<Refusal> {
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    if let Some(v) = details
        .precondition_failure()
        .and_then(|p| p.violations.first())
    {
        return Some(Refusal {
            index: event_index(&v.subject)?.0,
            reason: v.r#type.replace('_', " "),
            detail: v.description.clone(),
        });
    }
    let v = details.bad_request()?.field_violations.first()?;
    let (index, field) = event_index(&v.field)?;
    let field = if field.is_empty() { "event" } else { field };
    Some(Refusal {
        index,
        reason: format!("invalid {field}"),
        detail: format!("{field}: {}", v.description),
    })
}

/// `events[3].occurred_at` → (3, "occurred_at"); `events[3]` → (3, "").
fn event_index(subject: &str) -> Option<(usize, &str)> {
    let (n, rest) = subject.strip_prefix("events[")?.split_once(']')?;
    Some((n.parse().ok()?, rest.trim_start_matches('.')))
}

/// Remembers a refused admission: the events that need it (transfers, discharge) are skipped.
fn refused_admission(refused_ids: &mut HashSet<String>, item: &Item) {
    if matches!(item.event.payload, Some(Payload::Admitted(_))) {
        refused_ids.insert(item.event.event_id.clone());
    }
}

async fn append_patient(
    mut client: LogClient,
    items: Vec<Item>,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut queue: VecDeque<Item> = items.into();
    let mut refused_ids: HashSet<String> = HashSet::new();
    let mut one_by_one = false;
    while !queue.is_empty() {
        if shared.abort.load(Ordering::SeqCst) {
            return Ok(());
        }
        let limit = if one_by_one { 1 } else { CHUNK };
        let mut batch = Vec::new();
        while batch.len() < limit {
            let Some(item) = queue.pop_front() else { break };
            if item.after.as_ref().is_some_and(|a| refused_ids.contains(a)) {
                shared.skipped();
                continue;
            }
            batch.push(item);
        }
        if batch.is_empty() {
            continue;
        }
        let request = AppendRequest {
            events: batch.iter().map(|i| i.event.clone()).collect(),
            expected_versions: Default::default(),
        };
        let status = match client.append(request).await {
            Ok(r) => {
                shared.stored(&batch, r.into_inner().deduplicated);
                continue;
            }
            Err(status) => status,
        };
        use tonic::Code as C;
        match (status.code(), refusal(&status)) {
            (C::FailedPrecondition | C::InvalidArgument | C::ResourceExhausted, Some(r))
                if r.index < batch.len() =>
            {
                let mut rest = batch.split_off(r.index);
                let bad = rest.remove(0);
                shared.refused(&bad, &r.reason, &r.detail);
                refused_admission(&mut refused_ids, &bad);
                for item in batch.into_iter().chain(rest).rev() {
                    queue.push_front(item);
                }
            }
            (C::AlreadyExists, _) if !one_by_one => {
                one_by_one = true;
                for item in batch.into_iter().rev() {
                    queue.push_front(item);
                }
            }
            (C::AlreadyExists, _) => {
                let bad = &batch[0];
                shared.refused(
                    bad,
                    "event id already used by another patient",
                    status.message(),
                );
                refused_admission(&mut refused_ids, bad);
            }
            (code, _) => {
                anyhow::bail!("append failed ({code:?}): {}", status.message());
            }
        }
    }
    Ok(())
}

/// Appends every patient's events ([`CONCURRENCY`] patients at a time) with a progress line
/// every second; returns what was counted and whether `--strict` stopped at a refused row.
pub async fn append_all(
    client: LogClient,
    patients: BTreeMap<String, Vec<Item>>,
    strict: bool,
    total: u64,
) -> anyhow::Result<(Stats, bool)> {
    let shared = Arc::new(Shared {
        strict,
        abort: AtomicBool::new(false),
        done: AtomicU64::new(0),
        stats: Mutex::new(Stats::default()),
    });
    let started = Instant::now();
    let progress = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = shared.done.load(Ordering::Relaxed);
                eprintln!(
                    "progress: {done}/{total} events, {:.0} events/s",
                    rate(done, started.elapsed())
                );
            }
        })
    };
    let shared_ref = &shared;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(patients)
        .map(|(_, items)| {
            let client = client.clone();
            async move { append_patient(client, items, shared_ref).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    progress.abort();
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e);
    }
    let stats = std::mem::take(&mut *shared.stats.lock().expect("stats"));
    Ok((stats, shared.abort.load(Ordering::SeqCst)))
}

pub fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_read_from_the_details() {
        use tonic_types::{ErrorDetails, StatusExt};
        let rule = tonic::Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "events[3] (abc): whatever the message says",
            ErrorDetails::with_precondition_failure_violation(
                "nothing_after_death",
                "events[3]",
                "nothing after death: event occurred",
            ),
        );
        assert_eq!(
            refusal(&rule),
            Some(Refusal {
                index: 3,
                reason: "nothing after death".into(),
                detail: "nothing after death: event occurred".into(),
            })
        );
        let field = tonic::Status::with_error_details(
            tonic::Code::InvalidArgument,
            "unrelated text",
            ErrorDetails::with_bad_request_violation("events[0].occurred_at", "is before 1900"),
        );
        assert_eq!(
            refusal(&field),
            Some(Refusal {
                index: 0,
                reason: "invalid occurred_at".into(),
                detail: "occurred_at: is before 1900".into(),
            })
        );
        let batch = tonic::Status::with_error_details(
            tonic::Code::ResourceExhausted,
            "events: too many",
            ErrorDetails::with_bad_request_violation("events", "too many"),
        );
        assert_eq!(refusal(&batch), None, "not about one event");
        assert_eq!(
            refusal(&tonic::Status::aborted("events[1] (x): version conflict")),
            None
        );
    }
}
