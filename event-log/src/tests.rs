//! Unit tests of the event log: idempotency, optimistic concurrency, atomic batches, the hash
//! chain, group commit durability order, concurrency and restart.
use crate::{
    chain, sled_storage::tamper, AppendError, AppendRequest, EventLog, Gate, LogOptions, NoRules,
    Rejection, SledStorage, Storage, StorageError, StoredEvent, WriteBatch,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{event::Payload, Event, ObservationRecorded},
};
use std::{
    collections::HashMap,
    path::Path,
    sync::{mpsc as std_mpsc, Arc, Mutex},
    time::Duration,
};
use uuid::Uuid;

pub(crate) fn event(patient_id: &str) -> Event {
    Event {
        event_id: Uuid::new_v4().to_string(),
        patient_id: patient_id.to_string(),
        occurred_at: Some(Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        }),
        payload: Some(Payload::ObservationRecorded(ObservationRecorded {
            measure: "weight".into(),
            value: 72.5,
            unit: "kg".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub(crate) fn request(events: Vec<Event>) -> AppendRequest {
    AppendRequest {
        events,
        expected_versions: HashMap::new(),
        writer: None,
    }
}

fn open_with(dir: &Path, gate: Box<dyn Gate>) -> EventLog {
    let storage = SledStorage::open(dir).expect("open storage");
    EventLog::open(Arc::new(storage), gate, LogOptions::default()).expect("open log")
}

fn open(dir: &Path) -> EventLog {
    open_with(dir, Box::new(NoRules))
}

/// Appends `n` single-event batches alternating between two patients, closes and drops the log.
async fn fill_and_close(dir: &Path, n: usize) -> Vec<[u8; 32]> {
    let log = open(dir);
    for i in 0..n {
        let patient = if i % 2 == 0 { "p-a" } else { "p-b" };
        log.append(request(vec![event(patient)]))
            .await
            .expect("append");
    }
    let hashes = log.read(1, 1000).unwrap().iter().map(|e| e.hash).collect();
    log.close().await.expect("close");
    drop(log);
    hashes
}

// 1. Idempotent retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_of_a_batch_is_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let batch = vec![event("p1"), event("p2"), event("p1")];
    let first = log.append(request(batch.clone())).await.unwrap();
    assert!(!first.deduplicated);
    let positions: Vec<_> = first
        .appended
        .iter()
        .map(|a| (a.position, a.stream_version))
        .collect();
    assert_eq!(positions, vec![(1, 1), (2, 1), (3, 2)]);
    let head = log.head();
    assert_eq!(head.position, 3);

    let again = log.append(request(batch.clone())).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.appended, first.appended);
    assert_eq!(log.head(), head);
    assert_eq!(log.read(1, 100).unwrap().len(), 3);
    assert_eq!(log.storage().last_position().unwrap(), 3);

    // The retry did not move versions: the next event of p1 is version 3 at position 4.
    let next = log.append(request(vec![event("p1")])).await.unwrap();
    assert_eq!(
        (next.appended[0].position, next.appended[0].stream_version),
        (4, 3)
    );
    log.close().await.unwrap();
}

// 2. Version conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_conflict_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(request(vec![event("p")])).await.unwrap();
    let head = log.head();

    let mut req = request(vec![event("p")]);
    req.expected_versions.insert("p".into(), 5);
    match log.append(req).await {
        Err(AppendError::VersionConflict {
            patient_id,
            expected,
            actual,
        }) => {
            assert_eq!(patient_id, "p");
            assert_eq!(expected, 5);
            assert_eq!(actual, 1);
        }
        other => panic!("expected a version conflict, got {other:?}"),
    }
    assert_eq!(log.head(), head);
    assert_eq!(log.storage().last_position().unwrap(), 1);
    assert_eq!(log.read_stream("p", 1, 100).unwrap().len(), 1);

    // A new patient expects version 0; the right expectation passes.
    let mut req = request(vec![event("p"), event("q")]);
    req.expected_versions.insert("p".into(), 1);
    req.expected_versions.insert("q".into(), 0);
    let ok = log.append(req).await.unwrap();
    assert_eq!(ok.appended[0].stream_version, 2);
    assert_eq!(ok.appended[1].stream_version, 1);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_id_not_a_uuid_is_rejected_with_its_rule() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    let mut bad = event("p");
    bad.event_id = "not-a-uuid".into();
    match log.append(request(vec![event("p"), bad])).await {
        Err(AppendError::Rejected {
            index,
            event_id,
            rule,
            message,
        }) => {
            assert_eq!(index, 1);
            assert_eq!(event_id, "not-a-uuid");
            assert_eq!(rule, "event_id_not_uuid");
            assert_eq!(message, "event_id is not a UUID");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(log.storage().last_position().unwrap(), 0);
    log.close().await.unwrap();
}

/// Refuses any event whose patient is "bad".
struct RejectBad;

impl Gate for RejectBad {
    fn admit(&mut self, events: &[Event], _: Option<&str>) -> Result<(), Rejection> {
        match events.iter().position(|e| e.patient_id == "bad") {
            Some(index) => Err(Rejection {
                index,
                rule: "bad_patient".into(),
                message: "bad patient".into(),
            }),
            None => Ok(()),
        }
    }
    fn restore(&mut self, _: &Event) {}
}

// 3. Atomic batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open_with(dir.path(), Box::new(RejectBad));
    log.append(request(vec![event("other")])).await.unwrap();
    let head = log.head();

    let batch = vec![event("good"), event("good"), event("bad"), event("good")];
    match log.append(request(batch.clone())).await {
        Err(e @ AppendError::Rejected { .. }) => {
            assert_eq!(
                e.to_string(),
                format!("events[2] ({}): bad patient", batch[2].event_id)
            );
            let AppendError::Rejected {
                index,
                event_id,
                rule,
                message,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(index, 2);
            assert_eq!(event_id, batch[2].event_id);
            assert_eq!(rule, "bad_patient");
            assert_eq!(message, "bad patient");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(log.head(), head);
    assert_eq!(log.storage().last_position().unwrap(), 1);
    assert!(log.read_stream("good", 1, 100).unwrap().is_empty());
    for e in &batch {
        let id = Uuid::parse_str(&e.event_id).unwrap();
        assert_eq!(log.position_of(&id), None);
    }

    // The refused batch left no trace in the writer's state either.
    let ok = log.append(request(vec![batch[0].clone()])).await.unwrap();
    assert!(!ok.deduplicated);
    assert_eq!(
        (ok.appended[0].position, ok.appended[0].stream_version),
        (2, 1)
    );
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_reused_event_ids_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());

    let a = event("p1");
    let mut twin = event("p1");
    twin.event_id = a.event_id.clone();
    match log
        .append(request(vec![a.clone(), event("p1"), twin]))
        .await
    {
        Err(AppendError::DuplicateInBatch { index, event_id }) => {
            assert_eq!(index, 2);
            assert_eq!(event_id, a.event_id);
        }
        other => panic!("expected DuplicateInBatch, got {other:?}"),
    }
    assert_eq!(log.head().position, 0);

    log.append(request(vec![a.clone()])).await.unwrap();
    let head = log.head();

    // Same id, another patient.
    let mut stolen = event("p2");
    stolen.event_id = a.event_id.clone();
    match log.append(request(vec![event("p2"), stolen])).await {
        Err(AppendError::EventIdReused { index, event_id }) => {
            assert_eq!(index, 1);
            assert_eq!(event_id, a.event_id);
        }
        other => panic!("expected EventIdReused, got {other:?}"),
    }
    // Same id, same patient, but inside a batch with new events: not a retry.
    match log.append(request(vec![event("p1"), a.clone()])).await {
        Err(AppendError::EventIdReused { index, .. }) => assert_eq!(index, 1),
        other => panic!("expected EventIdReused, got {other:?}"),
    }
    assert_eq!(log.head(), head);
    assert_eq!(log.storage().last_position().unwrap(), 1);
    assert!(log.read_stream("p2", 1, 100).unwrap().is_empty());
    log.close().await.unwrap();
}

// 4. Chain verification.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untampered_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    fill_and_close(dir.path(), 10).await;
    let log = open(dir.path());
    let report = log.verify(1, 0, None).unwrap();
    assert_eq!(report.checked, 10);
    assert_eq!(report.first_bad, None);
    let events = log.read(1, 100).unwrap();
    assert_eq!(events.len(), 10);
    let anchor = (10, events[9].hash);
    let report = log.verify(1, 0, Some(anchor)).unwrap();
    assert_eq!(report.first_bad, None);
    // Verifying a middle range starts from the hash of the event before it.
    let report = log.verify(4, 7, None).unwrap();
    assert_eq!((report.checked, report.first_bad), (4, None));
    log.close().await.unwrap();
}

fn verify_dir(dir: &Path, to: u64, anchor: Option<(u64, [u8; 32])>) -> chain::VerifyReport {
    let storage = SledStorage::open(dir).expect("open storage");
    chain::verify(&storage, 1, to, anchor).expect("verify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipped_byte_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    fill_and_close(dir.path(), 10).await;
    {
        let db = tamper::raw(dir.path());
        tamper::flip_byte(&db, 4, 5);
    }
    let report = verify_dir(dir.path(), 10, None);
    let (pos, why) = report.first_bad.expect("tampering found");
    assert_eq!(pos, 4, "{why}");
    assert_eq!(report.checked, 3);

    // Through the log too (the flipped event may or may not still decode on reopen).
    if let Ok(storage) = SledStorage::open(dir.path()) {
        if let Ok(log) = EventLog::open(Arc::new(storage), Box::new(NoRules), LogOptions::default())
        {
            let report = log.verify(1, 0, None).unwrap();
            assert_eq!(report.first_bad.map(|b| b.0), Some(4));
            log.close().await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_event_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    fill_and_close(dir.path(), 10).await;
    {
        let db = tamper::raw(dir.path());
        tamper::remove(&db, 5);
    }
    // The log refuses to start on a hole.
    {
        let storage = SledStorage::open(dir.path()).unwrap();
        match EventLog::open(Arc::new(storage), Box::new(NoRules), LogOptions::default()) {
            Err(e) => assert!(e.to_string().contains("hole"), "{e}"),
            Ok(_) => panic!("opened a log with a hole"),
        }
    }
    let report = verify_dir(dir.path(), 10, None);
    let (pos, why) = report.first_bad.expect("removal found");
    assert_eq!(pos, 5, "{why}");
    assert_eq!(report.checked, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_events_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    fill_and_close(dir.path(), 10).await;
    {
        let db = tamper::raw(dir.path());
        tamper::swap(&db, 3, 6);
    }
    let report = verify_dir(dir.path(), 10, None);
    let (pos, why) = report.first_bad.expect("swap found");
    assert_eq!(pos, 3, "{why}");
    assert_eq!(report.checked, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_tail_is_caught_by_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let hashes = fill_and_close(dir.path(), 10).await;
    assert_eq!(hashes.len(), 10);
    let anchor = (10, hashes[9]);
    {
        let db = tamper::raw(dir.path());
        tamper::remove(&db, 10);
    }
    // Without the anchor a truncated log looks whole up to its new last position.
    let report = verify_dir(dir.path(), 9, None);
    assert_eq!((report.checked, report.first_bad), (9, None));
    // The anchor catches it.
    let report = verify_dir(dir.path(), 9, Some(anchor));
    let (pos, why) = report.first_bad.expect("truncation found");
    assert_eq!(pos, 10, "{why}");
    // An anchor with the wrong hash is caught too.
    let report = verify_dir(dir.path(), 9, Some((9, hashes[8].map(|b| b ^ 1))));
    assert_eq!(report.first_bad.map(|b| b.0), Some(9));
}

// 5. Power-loss order: nothing is acknowledged before the fsync covering it.

#[derive(Debug, Default)]
struct Recorder {
    /// Highest position written so far (not necessarily durable).
    written: u64,
    /// Highest position covered by a completed sync.
    synced: u64,
    syncs_started: usize,
    /// Every storage call, in order: ("write", max position) / ("sync", position covered).
    ops: Vec<(&'static str, u64)>,
}

struct Recording {
    inner: SledStorage,
    rec: Arc<Mutex<Recorder>>,
    /// When set, each sync waits for a message (or for the sender to be dropped).
    hold: Option<Mutex<std_mpsc::Receiver<()>>>,
}

impl Storage for Recording {
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError> {
        self.inner.write(batch)?;
        let max = batch.records.iter().map(|r| r.position).max().unwrap_or(0);
        let mut rec = self.rec.lock().unwrap();
        rec.written = rec.written.max(max);
        rec.ops.push(("write", max));
        Ok(())
    }
    fn sync(&self) -> Result<(), StorageError> {
        let covers = {
            let mut rec = self.rec.lock().unwrap();
            rec.syncs_started += 1;
            rec.written
        };
        if let Some(hold) = &self.hold {
            let _ = hold.lock().unwrap().recv();
        }
        self.inner.sync()?;
        let mut rec = self.rec.lock().unwrap();
        rec.synced = rec.synced.max(covers);
        rec.ops.push(("sync", covers));
        Ok(())
    }
    fn last_position(&self) -> Result<u64, StorageError> {
        self.inner.last_position()
    }
    fn read(&self, from: u64, to: u64, limit: usize) -> Result<Vec<StoredEvent>, StorageError> {
        self.inner.read(from, to, limit)
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.meta(key)
    }
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.inner.set_meta(key, value)
    }
    fn size_on_disk(&self) -> Result<u64, StorageError> {
        self.inner.size_on_disk()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ack_before_the_covering_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let storage = Recording {
        inner: SledStorage::open(dir.path()).unwrap(),
        rec: rec.clone(),
        hold: None,
    };
    let log = Arc::new(
        EventLog::open(Arc::new(storage), Box::new(NoRules), LogOptions::default()).unwrap(),
    );

    let mut tasks = Vec::new();
    for t in 0..32 {
        let log = log.clone();
        let rec = rec.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let out = log
                    .append(request(vec![event(&format!("p{t}"))]))
                    .await
                    .unwrap();
                let acked = out.appended[0].position;
                let (synced, written) = {
                    let r = rec.lock().unwrap();
                    (r.synced, r.written)
                };
                assert!(
                    written >= acked,
                    "acked {acked} before it was written ({written})"
                );
                assert!(
                    synced >= acked,
                    "acked {acked} but synced only through {synced}"
                );
                // The durable watermark never runs ahead of the syncs either.
                let head = log.head().position;
                assert!(head >= acked);
                assert!(rec.lock().unwrap().synced >= head);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(log.head().position, 640);
    {
        let r = rec.lock().unwrap();
        assert_eq!(r.synced, 640);
        // Concurrent appenders share fsyncs (group commit), and every write is covered by a later
        // sync (the acks above waited for it).
        let syncs = r.ops.iter().filter(|(op, _)| *op == "sync").count();
        assert!(syncs < 640, "one fsync per append: {syncs}");
        let last_write = r.ops.iter().rposition(|(op, _)| *op == "write").unwrap();
        assert!(
            r.ops[last_write..].contains(&("sync", 640)),
            "ops: {:?}",
            r.ops
        );
    }
    log.close().await.unwrap();
}

/// A log whose syncs wait for `release`, and an append of `first` that was written and whose
/// fsync has begun, but is held.
struct HeldFsync {
    log: Arc<EventLog>,
    rec: Arc<Mutex<Recorder>>,
    release: std_mpsc::Sender<()>,
    appender: tokio::task::JoinHandle<Result<crate::AppendOutcome, AppendError>>,
    first: Event,
}

async fn first_append_with_its_fsync_held(dir: &Path) -> HeldFsync {
    let rec = Arc::new(Mutex::new(Recorder::default()));
    let (release, hold) = std_mpsc::channel();
    let storage = Recording {
        inner: SledStorage::open(dir).unwrap(),
        rec: rec.clone(),
        hold: Some(Mutex::new(hold)),
    };
    let log = Arc::new(
        EventLog::open(Arc::new(storage), Box::new(NoRules), LogOptions::default()).unwrap(),
    );
    let first = event("p");
    let appender = {
        let log = log.clone();
        let e = first.clone();
        tokio::spawn(async move { log.append(request(vec![e])).await })
    };
    let started = tokio::time::timeout(Duration::from_secs(10), async {
        while rec.lock().unwrap().syncs_started == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(started.is_ok(), "the sync never began");
    HeldFsync {
        log,
        rec,
        release,
        appender,
        first,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_waits_for_its_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let held = first_append_with_its_fsync_held(dir.path()).await;
    let (log, rec, release, appender, first) =
        (held.log, held.rec, held.release, held.appender, held.first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !appender.is_finished(),
        "append acknowledged while its fsync was still running"
    );
    // A retry of that event while its fsync runs writes nothing, and waits for the same fsync.
    let retry = {
        let log = log.clone();
        tokio::spawn(async move { log.append(request(vec![first])).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !retry.is_finished(),
        "retry acknowledged before the fsync of the original"
    );
    assert_eq!(
        log.head().position,
        0,
        "durable watermark moved before the fsync"
    );
    assert!(
        log.read(1, 10).unwrap().is_empty(),
        "a reader saw an event not yet durable"
    );

    release.send(()).unwrap();
    drop(release); // later syncs (close) no longer wait
    let out = tokio::time::timeout(Duration::from_secs(10), appender)
        .await
        .expect("append completes once the sync is released")
        .unwrap()
        .unwrap();
    assert_eq!(out.appended[0].position, 1);
    let again = tokio::time::timeout(Duration::from_secs(10), retry)
        .await
        .expect("the retry completes once the sync is released")
        .unwrap()
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.appended, out.appended);
    assert_eq!(rec.lock().unwrap().synced, 1);
    assert_eq!(log.head().position, 1);
    log.close().await.unwrap();
}

// 6. Concurrent appends and reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_ordered_positions() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path()));
    let mut watch = log.watch();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let patient = format!("patient-{t}");
            let mut got = Vec::new();
            for _ in 0..100 {
                let out = log.append(request(vec![event(&patient)])).await.unwrap();
                got.push((out.appended[0].position, out.appended[0].stream_version));
            }
            got
        }));
    }
    let mut positions = Vec::new();
    for t in tasks {
        let got = t.await.unwrap();
        // Each patient's versions are 1..=100 in order, with increasing positions.
        let versions: Vec<u64> = got.iter().map(|g| g.1).collect();
        assert_eq!(versions, (1..=100).collect::<Vec<_>>());
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
        positions.extend(got.into_iter().map(|g| g.0));
    }
    positions.sort_unstable();
    assert_eq!(positions, (1..=400).collect::<Vec<_>>());

    let events = log.read(1, 1000).unwrap();
    assert_eq!(events.len(), 400);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1);
        assert_eq!(e.decode().unwrap().position, e.position);
    }
    let report = log.verify(1, 0, None).unwrap();
    assert_eq!((report.checked, report.first_bad), (400, None));
    for t in 0..4 {
        assert_eq!(
            log.read_stream(&format!("patient-{t}"), 1, 1000)
                .unwrap()
                .len(),
            100
        );
    }

    let head = tokio::time::timeout(
        Duration::from_secs(10),
        watch.wait_for(|h| h.position == 400),
    )
    .await
    .expect("watch saw the head")
    .unwrap()
    .to_owned();
    assert_eq!(head.hash, events[399].hash);
    assert_eq!(head, log.head());
    log.close().await.unwrap();
}

// 7. Restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_head_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (head, first_id) = {
        let log = open(dir.path());
        let first = event("p");
        log.append(request(vec![first.clone(), event("p"), event("q")]))
            .await
            .unwrap();
        log.append(request(vec![event("p")])).await.unwrap();
        let head = log.head();
        assert_eq!(head.position, 4);
        log.close().await.unwrap();
        (head, first)
    };

    let log = open(dir.path());
    assert_eq!(log.head(), head);
    // A retry after restart is still recognised.
    let retry = log.append(request(vec![first_id.clone()])).await.unwrap();
    assert!(retry.deduplicated);
    assert_eq!(
        (retry.appended[0].position, retry.appended[0].stream_version),
        (1, 1)
    );

    let mut req = request(vec![event("p"), event("q")]);
    req.expected_versions.insert("p".into(), 3);
    req.expected_versions.insert("q".into(), 1);
    let out = log.append(req).await.unwrap();
    assert_eq!(
        (out.appended[0].position, out.appended[0].stream_version),
        (5, 4)
    );
    assert_eq!(
        (out.appended[1].position, out.appended[1].stream_version),
        (6, 2)
    );
    // The chain continues across the restart.
    let report = log.verify(1, 0, None).unwrap();
    assert_eq!((report.checked, report.first_bad), (6, None));
    let fifth = log.read(5, 1).unwrap()[0].decode().unwrap();
    assert_eq!(fifth.prev_hash, head.hash.to_vec());
    log.close().await.unwrap();
}

// 8. An event id reused with another body is not a retry.

/// The same event id and patient as `e`, with another observed value.
fn altered(e: &Event) -> Event {
    let mut other = e.clone();
    if let Some(Payload::ObservationRecorded(o)) = &mut other.payload {
        o.value += 1.0;
    }
    other
}

fn expect_conflict(
    got: Result<crate::AppendOutcome, AppendError>,
    index: usize,
    e: &Event,
) -> AppendError {
    match got {
        Err(err @ AppendError::EventIdConflict { .. }) => {
            let AppendError::EventIdConflict {
                index: at,
                event_id,
            } = &err
            else {
                unreachable!()
            };
            assert_eq!(*at, index, "{err}");
            assert_eq!(event_id, &e.event_id);
            assert!(err.to_string().contains(&e.event_id), "{err}");
            err
        }
        other => panic!("expected EventIdConflict, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_id_reused_with_another_body_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let batch = vec![event("p1"), event("p2"), event("p1")];
    let (head, first) = {
        let log = open(dir.path());
        let first = log.append(request(batch.clone())).await.unwrap();
        let head = log.head();

        // The same id and patient with another payload, alone or inside the batch retried whole.
        let err = expect_conflict(
            log.append(request(vec![altered(&batch[1])])).await,
            0,
            &batch[1],
        );
        assert_eq!(
            err.to_string(),
            format!(
                "events[0].event_id: {} is already stored with another body; a retry must resend \
                 the same event, a new event needs a new id",
                batch[1].event_id
            )
        );
        let mut retried = batch.clone();
        retried[2] = altered(&batch[2]);
        expect_conflict(log.append(request(retried)).await, 2, &batch[2]);

        // Another envelope field the client sets is part of the body too.
        let mut later = batch[0].clone();
        later.occurred_at.as_mut().unwrap().seconds += 60;
        expect_conflict(log.append(request(vec![later])).await, 0, &batch[0]);
        let mut resent = batch[0].clone();
        resent.source = "another-system".into();
        expect_conflict(log.append(request(vec![resent])).await, 0, &batch[0]);

        // Nothing was written, and what is stored is the first body.
        assert_eq!(log.head(), head);
        assert_eq!(log.storage().last_position().unwrap(), 3);
        let stored = log.read(2, 1).unwrap()[0].decode().unwrap();
        assert_eq!(stored.payload, batch[1].payload);

        // A true retry is still deduplicated, even carrying the fields the log assigned (an
        // event sent back as it was read).
        let again = log.append(request(batch.clone())).await.unwrap();
        assert!(again.deduplicated);
        assert_eq!(again.appended, first.appended);
        let echoed = log.read(1, 1).unwrap()[0].decode().unwrap();
        let echo = log.append(request(vec![echoed])).await.unwrap();
        assert!(echo.deduplicated);
        assert_eq!(echo.appended[0], first.appended[0]);
        assert_eq!(log.head(), head);
        log.close().await.unwrap();
        (head, first)
    };

    // After a restart (the id index rebuilt from the log), the same answers.
    let log = open(dir.path());
    expect_conflict(
        log.append(request(vec![altered(&batch[0])])).await,
        0,
        &batch[0],
    );
    let again = log.append(request(batch.clone())).await.unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.appended, first.appended);
    assert_eq!(log.head(), head);
    log.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_id_reused_with_another_body_before_its_fsync_is_refused() {
    // Given an event written but not yet durable (its fsync is held)...
    let dir = tempfile::tempdir().unwrap();
    let held = first_append_with_its_fsync_held(dir.path()).await;
    let (log, release, appender, first) = (held.log, held.release, held.appender, held.first);

    // ...the same id with another body is refused at once (it wrote nothing to wait for)...
    let conflict = tokio::time::timeout(
        Duration::from_secs(10),
        log.append(request(vec![altered(&first)])),
    )
    .await
    .expect("a refusal does not wait for the fsync");
    expect_conflict(conflict, 0, &first);

    // ...while a true retry waits for the original's fsync and is deduplicated.
    let retry = {
        let log = log.clone();
        let e = first.clone();
        tokio::spawn(async move { log.append(request(vec![e])).await })
    };
    release.send(()).unwrap();
    drop(release);
    let out = appender.await.unwrap().unwrap();
    let again = retry.await.unwrap().unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.appended, out.appended);
    assert_eq!(log.head().position, 1);
    assert_eq!(log.storage().last_position().unwrap(), 1);
    let stored = log.read(1, 1).unwrap()[0].decode().unwrap();
    assert_eq!(stored.payload, first.payload);
    log.close().await.unwrap();
}

/// Admits everything, but holds the first batch until released: the requests sent meanwhile
/// queue up and the writer takes them as one group.
struct HoldFirst {
    entered: Option<std_mpsc::Sender<()>>,
    release: Option<std_mpsc::Receiver<()>>,
}

impl Gate for HoldFirst {
    fn admit(&mut self, _: &[Event], _: Option<&str>) -> Result<(), Rejection> {
        if let (Some(entered), Some(release)) = (self.entered.take(), self.release.take()) {
            let _ = entered.send(());
            let _ = release.recv();
        }
        Ok(())
    }
    fn restore(&mut self, _: &Event) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_id_reused_with_another_body_in_the_same_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered) = std_mpsc::channel();
    let (release, release_rx) = std_mpsc::channel();
    let gate = HoldFirst {
        entered: Some(entered_tx),
        release: Some(release_rx),
    };
    let log = Arc::new(open_with(dir.path(), Box::new(gate)));
    let append = |events: Vec<Event>| {
        let log = log.clone();
        tokio::spawn(async move { log.append(request(events)).await })
    };

    // The writer is held in the gate on a first request...
    let held = append(vec![event("p0")]);
    tokio::task::spawn_blocking(move || entered.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the writer reached the gate");
    // ...while an event, the same id with another body, and a true retry queue up in that order.
    let a = event("p");
    let new = append(vec![a.clone()]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let conflict = append(vec![altered(&a)]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let retry = append(vec![a.clone()]);
    tokio::time::sleep(Duration::from_millis(50)).await;
    release.send(()).unwrap();

    assert_eq!(held.await.unwrap().unwrap().appended[0].position, 1);
    let out = new.await.unwrap().unwrap();
    assert!(!out.deduplicated);
    assert_eq!(out.appended[0].position, 2);
    expect_conflict(conflict.await.unwrap(), 0, &a);
    let again = retry.await.unwrap().unwrap();
    assert!(again.deduplicated);
    assert_eq!(again.appended, out.appended);
    assert_eq!(log.head().position, 2);
    let stored = log.read(2, 1).unwrap()[0].decode().unwrap();
    assert_eq!(stored.payload, a.payload);
    log.close().await.unwrap();
}

/// An empty snapshot sled abandoned (a start on a full disk) does not keep the log from opening;
/// a young one, which a running sled may be writing, is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_empty_snapshot_does_not_keep_the_log_from_opening() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path());
    log.append(request(vec![event("SNAP-1")])).await.unwrap();
    log.close().await.unwrap();
    drop(log);
    let abandoned = dir.path().join("snap.0000000000000200.generating");
    let file = std::fs::File::create(&abandoned).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
    drop(file);
    let log = open(dir.path());
    assert_eq!(log.head().position, 1);
    assert!(!abandoned.exists());
    log.close().await.unwrap();
    drop(log);

    let young = dir.path().join("snap.0000000000000300.generating");
    std::fs::File::create(&young).unwrap();
    let _ = SledStorage::open(dir.path());
    assert!(
        young.exists(),
        "a snapshot that may be in the making is left alone"
    );
}
