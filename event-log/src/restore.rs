//! A log written back from a copy of its stored events (a backup, the NATS stream): every event is
//! checked against the chain before it is written, and its stored bytes are kept exactly, so the
//! restored log has the same hashes, head included.
//!
//! [`ChainCheck`] is the check alone (a backup is verified whole before anything is written);
//! [`Restore`] writes what it accepts into an empty [`Storage`], in groups, and makes it durable
//! at [`Restore::finish`].
use crate::{
    append::Head,
    chain::{hash_of, ZERO_HASH},
    error::StorageError,
    storage::{Record, Storage, StoredEvent, WriteBatch},
};
use journey_proto::{prost::Message, v1::Event};

/// Events written per group (one journal frame each).
const GROUP: usize = 4096;

/// Follows a chain event by event: each must be the next position, hash to its stored hash, and
/// carry the previous event's hash.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    head: Head,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck::after(Head {
            position: 0,
            hash: ZERO_HASH,
        })
    }
}

impl ChainCheck {
    /// A chain that continues after `head` (position 0 and [`ZERO_HASH`]: from its start).
    pub fn after(head: Head) -> ChainCheck {
        ChainCheck { head }
    }

    /// The last event accepted (or the starting point).
    pub fn head(&self) -> Head {
        self.head
    }

    /// Accepts `stored` when it continues the chain, with the record to write; says what is wrong
    /// otherwise, naming the position.
    pub fn accept(&mut self, stored: &StoredEvent) -> Result<Record, String> {
        self.accept_event(stored).map(|(record, _)| record)
    }

    /// [`ChainCheck::accept`], with the event decoded on the way (its `hash` left empty).
    pub fn accept_event(&mut self, stored: &StoredEvent) -> Result<(Record, Event), String> {
        let next = self.head.position + 1;
        let pos = stored.position;
        if pos != next {
            return Err(format!(
                "position {next} is missing: the next event found is at position {pos}"
            ));
        }
        if hash_of(&stored.bytes) != stored.hash {
            return Err(format!(
                "position {pos}: the event's bytes do not match its hash (altered or damaged)"
            ));
        }
        let event = Event::decode(stored.bytes.as_slice())
            .map_err(|e| format!("position {pos}: undecodable event: {e}"))?;
        if event.position != pos {
            return Err(format!(
                "position {pos}: the event claims position {} (moved)",
                event.position
            ));
        }
        if event.prev_hash.as_slice() != self.head.hash {
            return Err(format!(
                "position {pos}: prev_hash does not link to the event before it"
            ));
        }
        let event_id = uuid::Uuid::parse_str(&event.event_id)
            .map_err(|_| format!("position {pos}: event_id is not a UUID"))?;
        self.head = Head {
            position: pos,
            hash: stored.hash,
        };
        let record = Record {
            position: pos,
            event_id,
            patient_id: event.patient_id.clone(),
            stream_version: event.stream_version,
            hash: stored.hash,
            bytes: stored.bytes.clone(),
        };
        Ok((record, event))
    }
}

/// Writes a chain of stored events into an empty storage.
pub struct Restore<'a> {
    storage: &'a dyn Storage,
    chain: ChainCheck,
    group: WriteBatch,
}

impl<'a> Restore<'a> {
    /// Starts a restore into `storage`, which must hold no event.
    pub fn begin(storage: &'a dyn Storage) -> Result<Restore<'a>, StorageError> {
        let last = storage.last_position()?;
        if last != 0 {
            return Err(StorageError(format!(
                "the log to restore into already holds {last} events: restore into an empty folder"
            )));
        }
        Ok(Restore {
            storage,
            chain: ChainCheck::default(),
            group: WriteBatch::default(),
        })
    }

    /// Checks `stored` against the chain and writes it (in groups); nothing of it is written when
    /// it does not continue the chain.
    pub fn push(&mut self, stored: &StoredEvent) -> Result<(), StorageError> {
        let record = self.chain.accept(stored).map_err(StorageError)?;
        self.group.records.push(record);
        if self.group.records.len() >= GROUP {
            self.write_group()?;
        }
        Ok(())
    }

    /// The last event accepted.
    pub fn head(&self) -> Head {
        self.chain.head()
    }

    /// Writes what is left and makes the whole log durable; returns its head.
    pub fn finish(mut self) -> Result<Head, StorageError> {
        self.write_group()?;
        self.storage.sync()?;
        Ok(self.chain.head())
    }

    fn write_group(&mut self) -> Result<(), StorageError> {
        if self.group.records.is_empty() {
            return Ok(());
        }
        self.storage.write(&self.group)?;
        self.group.records.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        tests::{event, request},
        EventLog, LogOptions, NoRules, SledStorage,
    };
    use std::sync::Arc;

    /// A log of 12 events in 4 batches, closed; its stored events.
    async fn stored_log(dir: &std::path::Path) -> (Vec<StoredEvent>, Head) {
        let storage = Arc::new(SledStorage::open(dir).unwrap());
        let log =
            EventLog::open(storage.clone(), Box::new(NoRules), LogOptions::default()).unwrap();
        for b in 0..4 {
            let events = (0..3).map(|i| event(&format!("p-{b}-{i}"))).collect();
            log.append(request(events)).await.unwrap();
        }
        let head = log.head();
        log.close().await.unwrap();
        (storage.read(1, u64::MAX, 100).unwrap(), head)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restored_log_has_the_same_bytes_and_head_and_opens() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (events, head) = stored_log(a.path()).await;
        let storage = Arc::new(SledStorage::open(b.path()).unwrap());
        let mut restore = Restore::begin(storage.as_ref()).unwrap();
        for e in &events {
            restore.push(e).unwrap();
        }
        assert_eq!(restore.finish().unwrap(), head);
        assert_eq!(storage.read(1, u64::MAX, 100).unwrap(), events);
        let err = Restore::begin(storage.as_ref()).err().unwrap();
        assert!(err.0.contains("already holds 12 events"), "{err}");
        let log = EventLog::open(storage, Box::new(NoRules), LogOptions::default()).unwrap();
        assert_eq!(log.head(), head);
        assert!(log
            .verify(1, head.position, None)
            .unwrap()
            .first_bad
            .is_none());
    }

    #[test]
    fn an_event_that_does_not_continue_the_chain_is_refused_and_not_written() {
        let a = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (events, _) = runtime.block_on(stored_log(a.path()));
        let check = |events: &[StoredEvent]| {
            let mut chain = ChainCheck::default();
            events
                .iter()
                .try_for_each(|e| chain.accept(e).map(|_| ()))
                .err()
                .unwrap()
        };
        let mut altered = events.clone();
        *altered[4].bytes.last_mut().unwrap() ^= 1;
        assert_eq!(
            check(&altered),
            "position 5: the event's bytes do not match its hash (altered or damaged)"
        );
        let mut gap = events.clone();
        gap.remove(6);
        assert_eq!(
            check(&gap),
            "position 7 is missing: the next event found is at position 8"
        );
        let mut swapped = events.clone();
        swapped.swap(2, 3);
        assert!(check(&swapped).starts_with("position 3 is missing"));
        let b = tempfile::tempdir().unwrap();
        let storage = SledStorage::open(b.path()).unwrap();
        let mut restore = Restore::begin(&storage).unwrap();
        for e in &altered[..4] {
            restore.push(e).unwrap();
        }
        assert!(restore.push(&altered[4]).is_err());
        assert_eq!(restore.head().position, 4, "the refused event is not taken");
    }
}
