//! The single writer: sequences appends, checks them (idempotency, expected versions, the gate),
//! and writes them in groups: many requests, one storage write. The syncer (`syncer.rs`) fsyncs
//! them and answers; nothing is acknowledged, and the durable watermark does not move, before the
//! fsync covering the group returns.
use crate::{
    append::{AppendOutcome, AppendRequest, Appended, Head},
    chain::hash_of,
    checkpoint,
    error::{AppendError, StorageError},
    gate::Gate,
    restore::ChainCheck,
    shared::Shared,
    storage::{Record, StoredEvent, WriteBatch},
    syncer::{Reply, Syncer, Written},
    SCHEMA_VERSION,
};
use journey_proto::{prost::Message, prost_types::Timestamp, v1::Event};
use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

pub(crate) struct Pending {
    pub work: Work,
    pub reply: oneshot::Sender<Result<AppendOutcome, AppendError>>,
}

/// What a request asks the writer to do.
pub(crate) enum Work {
    /// New events from a client: checked (ids, versions, the gate) and given their log fields.
    Append(AppendRequest),
    /// Another log's stored events (a standby following the writer's stream): written with their
    /// bytes and positions once they continue this log's chain; the gate learns them as at open.
    Copy(Vec<StoredEvent>),
}

impl Work {
    fn events(&self) -> usize {
        match self {
            Work::Append(r) => r.events.len(),
            Work::Copy(c) => c.len(),
        }
    }
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    gate: Box<dyn Gate>,
    tip: Head,
    versions: HashMap<String, u64>,
    last_recorded: (i64, i32),
    max_group_events: usize,
    /// Events written in the current group (not yet durable): id → (position, patient, version).
    staged: HashMap<Uuid, (u64, String, u64)>,
    /// Where to save the state at an orderly stop.
    checkpoint: Option<PathBuf>,
}

impl Writer {
    pub fn new(
        shared: Arc<Shared>,
        gate: Box<dyn Gate>,
        tip: Head,
        versions: HashMap<String, u64>,
        max_group_events: usize,
        checkpoint: Option<PathBuf>,
    ) -> Self {
        Writer {
            shared,
            gate,
            tip,
            versions,
            last_recorded: (0, 0),
            max_group_events,
            staged: HashMap::new(),
            checkpoint,
        }
    }

    /// Sequences groups until the request channel closes. Each written group goes to the syncer
    /// thread, and the next group is checked and written while the previous one is fsync'd.
    pub fn run(mut self, mut rx: mpsc::Receiver<Pending>) {
        let (to_syncer, syncer) = Syncer::start(self.shared.clone());
        while let Some(first) = rx.blocking_recv() {
            let mut group = vec![first];
            let mut events = group[0].work.events();
            while events < self.max_group_events {
                match rx.try_recv() {
                    Ok(p) => {
                        events += p.work.events();
                        group.push(p);
                    }
                    Err(_) => break,
                }
            }
            if let Some(written) = self.write_group(group) {
                if let Err(unsent) = to_syncer.send(written) {
                    unsent.0.fail("the log syncer has stopped");
                }
            }
        }
        drop(to_syncer);
        if syncer.join().is_err() {
            tracing::error!("the log syncer thread panicked");
        }
        self.save_checkpoint();
        tracing::debug!(position = self.tip.position, "log writer stopped");
    }

    /// Saves the state for the next open, once everything written is durable and nothing failed.
    fn save_checkpoint(&self) {
        let Some(path) = &self.checkpoint else {
            return;
        };
        let durable = *self.shared.durable.borrow();
        if self.shared.failure().is_some() || durable != self.tip || self.tip.position == 0 {
            return;
        }
        let Some(gate) = self.gate.save() else {
            return;
        };
        let index = self.shared.index.read().expect("index lock");
        let saving = checkpoint::Saving {
            tip: (self.tip.position, self.tip.hash),
            versions: &self.versions,
            index: &index,
            gate: &gate,
        };
        match checkpoint::save(path, &saving) {
            Ok(()) => tracing::info!(
                position = self.tip.position,
                "log state saved at position {}: the next start reads back only what comes after",
                self.tip.position
            ),
            Err(e) => tracing::warn!(error = %e, "the next start will read every event back"),
        }
    }

    /// Checks a group and writes it (not yet durable); refused requests are answered at once.
    fn write_group(&mut self, group: Vec<Pending>) -> Option<Written> {
        if let Some(why) = self.shared.failure() {
            for p in group {
                let _ = p.reply.send(Err(AppendError::Unavailable(why.clone())));
            }
            return None;
        }
        // Events staged by earlier groups and now durable are in the index: forget them here.
        let durable = self.shared.durable.borrow().position;
        self.staged
            .retain(|_, (position, _, _)| *position > durable);
        let now = self.recorded_now();
        let mut batch = WriteBatch::default();
        let mut replies: Vec<Reply> = Vec::with_capacity(group.len());
        for p in group {
            let prepared = match p.work {
                Work::Append(request) => self.prepare(request, &now, &mut batch),
                Work::Copy(copies) => self.copy(copies, &mut batch),
            };
            match prepared {
                Ok(outcome) => replies.push((p.reply, Ok(outcome))),
                // Refused requests wrote nothing: answer at once.
                Err(e) => {
                    let _ = p.reply.send(Err(e));
                }
            }
        }
        let written = Written {
            tip: self.tip,
            batch,
            replies,
        };
        if written.replies.is_empty() {
            return None;
        }
        // A group of retries only writes nothing, but still goes through the syncer: a retry of an
        // event staged by a group still being synced is answered after that sync, never before.
        if written.batch.records.is_empty() {
            return Some(written);
        }
        if let Err(e) = self.shared.storage.write(&written.batch) {
            // The state in memory is now ahead of the disk: stop taking appends.
            let why = format!("storage failure, restart the server: {e}");
            tracing::error!(error = %e, "event log write failed; refusing further appends");
            *self.shared.failure.lock().expect("failure lock") = Some(why.clone());
            written.fail(&why);
            return None;
        }
        self.shared.written.send_replace(written.tip);
        Some(written)
    }

    fn recorded_now(&mut self) -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let now = (d.as_secs() as i64, d.subsec_nanos() as i32);
        // recorded_at never goes backwards, even if the wall clock does.
        self.last_recorded = self.last_recorded.max(now);
        Timestamp {
            seconds: self.last_recorded.0,
            nanos: self.last_recorded.1,
        }
    }

    /// Checks one request and stages its records into `batch`, or refuses it leaving all state as it was.
    fn prepare(
        &mut self,
        request: AppendRequest,
        now: &Timestamp,
        batch: &mut WriteBatch,
    ) -> Result<AppendOutcome, AppendError> {
        let AppendRequest {
            mut events,
            expected_versions,
            writer,
        } = request;
        if events.is_empty() {
            return Err(AppendError::EmptyBatch);
        }
        let ids = parse_ids(&events)?;

        // Idempotency: a retry (the same events) returns the original positions and writes nothing.
        let mut existing = Vec::with_capacity(events.len());
        for (i, id) in ids.iter().enumerate() {
            existing.push(self.lookup(id, &events[i], i, batch)?);
        }
        if existing.iter().all(Option::is_some) {
            let appended = existing
                .into_iter()
                .zip(&events)
                .map(|(found, e)| {
                    let (position, stream_version) = found.expect("all found");
                    Appended {
                        event_id: e.event_id.clone(),
                        position,
                        stream_version,
                    }
                })
                .collect();
            return Ok(AppendOutcome {
                appended,
                deduplicated: true,
            });
        }
        if let Some(i) = existing.iter().position(Option::is_some) {
            return Err(AppendError::EventIdReused {
                index: i,
                event_id: events[i].event_id.clone(),
            });
        }

        for (patient_id, expected) in &expected_versions {
            let actual = self.versions.get(patient_id).copied().unwrap_or(0);
            if actual != *expected {
                return Err(AppendError::VersionConflict {
                    patient_id: patient_id.clone(),
                    expected: *expected,
                    actual,
                });
            }
        }

        // Assign log fields on a scratch copy of the versions; commit them only if the gate agrees.
        let mut next_versions: HashMap<&str, u64> = HashMap::new();
        for (i, event) in events.iter_mut().enumerate() {
            let v = next_versions
                .entry(event.patient_id.as_str())
                .or_insert_with(|| self.versions.get(&event.patient_id).copied().unwrap_or(0));
            *v += 1;
            event.stream_version = *v;
            event.position = self.tip.position + 1 + i as u64;
            event.recorded_at = Some(*now);
            event.schema_version = SCHEMA_VERSION;
            event.hash.clear();
        }
        drop(next_versions);
        self.gate
            .admit(&events, writer.as_deref())
            .map_err(|r| AppendError::Rejected {
                index: r.index,
                event_id: events
                    .get(r.index)
                    .map(|e| e.event_id.clone())
                    .unwrap_or_default(),
                rule: r.rule,
                message: r.message,
            })?;

        let mut appended = Vec::with_capacity(events.len());
        for (event, id) in events.iter_mut().zip(ids) {
            event.prev_hash = self.tip.hash.to_vec();
            let bytes = event.encode_to_vec();
            let hash = hash_of(&bytes);
            self.tip = Head {
                position: event.position,
                hash,
            };
            self.versions
                .insert(event.patient_id.clone(), event.stream_version);
            self.staged.insert(
                id,
                (
                    event.position,
                    event.patient_id.clone(),
                    event.stream_version,
                ),
            );
            appended.push(Appended {
                event_id: std::mem::take(&mut event.event_id),
                position: event.position,
                stream_version: event.stream_version,
            });
            batch.records.push(Record {
                position: event.position,
                event_id: id,
                patient_id: std::mem::take(&mut event.patient_id),
                stream_version: event.stream_version,
                hash,
                bytes,
            });
        }
        Ok(AppendOutcome {
            appended,
            deduplicated: false,
        })
    }

    /// Stages copies of another log's events into `batch` when they continue the chain, or
    /// refuses them all leaving all state as it was. Copies already held (the same bytes at the
    /// same position: a message delivered twice) are skipped.
    fn copy(
        &mut self,
        copies: Vec<StoredEvent>,
        batch: &mut WriteBatch,
    ) -> Result<AppendOutcome, AppendError> {
        let mut chain = ChainCheck::after(self.tip);
        let mut records = Vec::with_capacity(copies.len());
        let mut events = Vec::with_capacity(copies.len());
        for stored in copies.iter().filter(|c| c.position > self.tip.position) {
            let (record, event) = chain.accept_event(stored).map_err(AppendError::Diverged)?;
            events.push(event);
            records.push(record);
        }
        let mut appended = Vec::with_capacity(records.len());
        for (record, event) in records.into_iter().zip(events) {
            self.gate.restore(&event);
            self.versions
                .insert(event.patient_id.clone(), event.stream_version);
            self.staged.insert(
                record.event_id,
                (record.position, event.patient_id, event.stream_version),
            );
            appended.push(Appended {
                event_id: event.event_id,
                position: record.position,
                stream_version: record.stream_version,
            });
            batch.records.push(record);
        }
        self.tip = chain.head();
        Ok(AppendOutcome {
            appended,
            deduplicated: false,
        })
    }

    /// Where an event id is already stored (durable, or staged by this group or an earlier one
    /// not yet durable): (position, version). An id stored for another patient, or with another
    /// body than `event`'s, is refused: a retry is the same event. Only an id already stored costs
    /// a read and a comparison; a new id costs the two map look-ups.
    fn lookup(
        &self,
        id: &Uuid,
        event: &Event,
        index: usize,
        batch: &WriteBatch,
    ) -> Result<Option<(u64, u64)>, AppendError> {
        let reused = || AppendError::EventIdReused {
            index,
            event_id: id.to_string(),
        };
        let pos = match self.staged.get(id) {
            Some((_, patient, _)) if *patient != event.patient_id => return Err(reused()),
            Some((pos, _, _)) => *pos,
            None => {
                let found = self
                    .shared
                    .index
                    .read()
                    .expect("index lock")
                    .position_of(id);
                match found {
                    Some(pos) => pos,
                    None => return Ok(None),
                }
            }
        };
        let stored = self.stored_event(pos, batch)?;
        if stored.patient_id != event.patient_id {
            return Err(reused());
        }
        let version = stored.stream_version;
        if !same_content(stored, event) {
            return Err(AppendError::EventIdConflict {
                index,
                event_id: event.event_id.clone(),
            });
        }
        Ok(Some((pos, version)))
    }

    /// The event stored at `pos`: still in `batch` when staged by the group being prepared (not
    /// written yet), else in storage (written, durable or not).
    fn stored_event(&self, pos: u64, batch: &WriteBatch) -> Result<Event, AppendError> {
        // A group's records have consecutive positions.
        let in_batch = batch.records.first().and_then(|first| {
            let i = usize::try_from(pos.checked_sub(first.position)?).ok()?;
            batch.records.get(i).filter(|r| r.position == pos)
        });
        if let Some(record) = in_batch {
            return Event::decode(record.bytes.as_slice()).map_err(|e| {
                StorageError(format!("position {pos}: undecodable staged event: {e}")).into()
            });
        }
        let stored = self.shared.storage.read(pos, pos, 1)?;
        Ok(stored
            .first()
            .ok_or_else(|| StorageError(format!("event id index names missing position {pos}")))?
            .decode()?)
    }
}

/// Whether `stored` (an event as the log stored it) carries the same client-supplied content as
/// `new`: every field but those the log assigns (position, stream version, recorded time, schema
/// version, chain hashes), compared as messages so that encoding details do not matter.
fn same_content(mut stored: Event, new: &Event) -> bool {
    stored.position = new.position;
    stored.stream_version = new.stream_version;
    stored.recorded_at = new.recorded_at;
    stored.schema_version = new.schema_version;
    stored.prev_hash.clone_from(&new.prev_hash);
    stored.hash.clone_from(&new.hash);
    stored == *new
}

/// The rule code of the log's own refusal of an `event_id` that is not a UUID.
const EVENT_ID_NOT_UUID: &str = "event_id_not_uuid";

fn parse_ids(events: &[Event]) -> Result<Vec<Uuid>, AppendError> {
    let mut seen = HashSet::with_capacity(events.len());
    events
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let id = Uuid::parse_str(&e.event_id).map_err(|_| AppendError::Rejected {
                index,
                event_id: e.event_id.clone(),
                rule: EVENT_ID_NOT_UUID.into(),
                message: "event_id is not a UUID".into(),
            })?;
            if !seen.insert(id) {
                return Err(AppendError::DuplicateInBatch {
                    index,
                    event_id: e.event_id.clone(),
                });
            }
            Ok(id)
        })
        .collect()
}
