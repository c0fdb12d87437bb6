//! The storage contract the log needs; small on purpose so the engine stays replaceable.
use crate::error::StorageError;
use journey_proto::{prost::Message, v1::Event};
use uuid::Uuid;

/// One event as stored: its position, its chain hash and its encoding (the event without `hash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: u64,
    pub hash: [u8; 32],
    pub bytes: Vec<u8>,
}

impl StoredEvent {
    /// Decodes the event and fills in its `hash`.
    pub fn decode(&self) -> Result<Event, StorageError> {
        let mut event = Event::decode(self.bytes.as_slice()).map_err(|e| {
            StorageError(format!(
                "position {}: undecodable event: {e}",
                self.position
            ))
        })?;
        event.hash = self.hash.to_vec();
        Ok(event)
    }
}

/// A new event ready to be written, with every index key it needs.
#[derive(Debug, Clone)]
pub struct Record {
    pub position: u64,
    pub event_id: Uuid,
    pub patient_id: String,
    pub stream_version: u64,
    pub hash: [u8; 32],
    pub bytes: Vec<u8>,
}

/// Records written atomically: all or none, even across a crash.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub records: Vec<Record>,
}

pub trait Storage: Send + Sync + 'static {
    /// Writes the batch atomically. Not yet durable: see [`Storage::sync`].
    fn write(&self, batch: &WriteBatch) -> Result<(), StorageError>;
    /// Makes everything written so far durable (fsync). Returns only once it is on disk.
    fn sync(&self) -> Result<(), StorageError>;
    /// The highest stored position (0 when empty).
    fn last_position(&self) -> Result<u64, StorageError>;
    /// Events with `from <= position <= to`, ascending, at most `limit`.
    fn read(&self, from: u64, to: u64, limit: usize) -> Result<Vec<StoredEvent>, StorageError>;
    /// Small named values beside the log (e.g. the outbox cursor). Not synced on their own.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;
    fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StorageError>;
    /// Bytes used on disk.
    fn size_on_disk(&self) -> Result<u64, StorageError>;
}
