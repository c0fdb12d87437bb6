//! Unit tests of a standby's side of the log: copies of another log's events written with their
//! bytes once they continue the chain, client appends refused while following, and the tail a
//! writer that lost its role drops.
use crate::{
    tests::{event, request},
    AppendError, EventLog, LogOptions, NoRules, SledStorage, Storage,
};
use std::{path::Path, sync::Arc};

fn open(dir: &Path) -> (Arc<SledStorage>, EventLog) {
    let storage = Arc::new(SledStorage::open(dir).unwrap());
    let log = EventLog::open(storage.clone(), Box::new(NoRules), LogOptions::default()).unwrap();
    (storage, log)
}

/// A writer's log of 12 events in 4 groups, two patients.
async fn writer_log(dir: &Path) -> EventLog {
    let (_, log) = open(dir);
    for b in 0..4 {
        let events = (0..3)
            .map(|i| event(&format!("p-{}", (b + i) % 2)))
            .collect();
        log.append(request(events)).await.unwrap();
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_make_the_same_log_and_a_promoted_standby_continues_it() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let writer = writer_log(a.path()).await;
    let events = writer.read(1, 100).unwrap();
    let (_, standby) = open(b.path());
    standby.set_refusal(Some("a standby".into()));
    let refused = standby.append(request(vec![event("p-0")])).await;
    assert!(matches!(refused, Err(AppendError::Unavailable(w)) if w == "a standby"));
    let copied = standby.append_copies(events[..5].to_vec()).await.unwrap();
    assert_eq!(copied.appended.len(), 5);
    // A message delivered twice: what is already held is skipped.
    let again = standby.append_copies(events[3..].to_vec()).await.unwrap();
    let positions: Vec<u64> = again.appended.iter().map(|a| a.position).collect();
    assert_eq!(positions, (6..=12).collect::<Vec<_>>());
    assert_eq!(standby.head(), writer.head());
    assert_eq!(standby.read(1, 100).unwrap(), events);

    // Promoted: a client's retry of a copied event is answered with its position; new events
    // continue the chain and the patients' versions.
    standby.set_refusal(None);
    let first = events[0].decode().unwrap();
    let mut retry = first.clone();
    retry.position = 0;
    retry.stream_version = 0;
    retry.recorded_at = None;
    retry.prev_hash.clear();
    retry.hash.clear();
    retry.schema_version = 0;
    let answered = standby.append(request(vec![retry])).await.unwrap();
    assert!(answered.deduplicated);
    assert_eq!(answered.appended[0].position, 1);
    let next = standby.append(request(vec![event("p-0")])).await.unwrap();
    assert_eq!(next.appended[0].position, 13);
    assert_eq!(next.appended[0].stream_version, 7);
    assert!(standby.verify(1, 0, None).unwrap().first_bad.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_that_does_not_continue_the_chain_is_refused_and_nothing_is_written() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let events = writer_log(a.path()).await.read(1, 100).unwrap();
    let other = writer_log(b.path()).await.read(1, 100).unwrap();
    let (_, standby) = open(c.path());
    standby.append_copies(events[..4].to_vec()).await.unwrap();
    let mut altered = events[4..8].to_vec();
    *altered[2].bytes.last_mut().unwrap() ^= 1;
    let why = |r: Result<_, AppendError>| match r {
        Err(AppendError::Diverged(why)) => why,
        other => panic!("not refused as diverged: {other:?}"),
    };
    assert_eq!(
        why(standby.append_copies(altered).await),
        "position 7: the event's bytes do not match its hash (altered or damaged)"
    );
    // Another log's event at the next position: it links to another chain.
    assert_eq!(
        why(standby.append_copies(other[4..5].to_vec()).await),
        "position 5: prev_hash does not link to the event before it"
    );
    assert_eq!(
        why(standby.append_copies(events[6..].to_vec()).await),
        "position 5 is missing: the next event found is at position 7"
    );
    assert_eq!(
        standby.head().position,
        4,
        "nothing of a refused copy is written"
    );
    standby.append_copies(events[4..].to_vec()).await.unwrap();
    assert_eq!(standby.read(1, 100).unwrap(), events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_tail_is_gone_after_a_reopen_and_the_log_goes_on_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let log = writer_log(dir.path()).await;
    let events = log.read(1, 100).unwrap();
    log.close().await.unwrap();
    drop(log);
    let storage = SledStorage::open(dir.path()).unwrap();
    assert_eq!(storage.truncate_after(12).unwrap(), 0);
    // Position 5 is in the middle of the second group's chunk.
    assert_eq!(storage.truncate_after(5).unwrap(), 7);
    assert_eq!(storage.last_position().unwrap(), 5);
    drop(storage);
    let (_, log) = open(dir.path());
    assert_eq!(log.head().position, 5);
    assert_eq!(log.head().hash, events[4].hash);
    assert_eq!(log.read(1, 100).unwrap(), events[..5]);
    log.append_copies(events[5..].to_vec()).await.unwrap();
    assert_eq!(log.read(1, 100).unwrap(), events);
}
