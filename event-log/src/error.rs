use thiserror::Error;

/// A failure of the storage engine (IO, corruption): never the caller's fault.
#[derive(Debug, Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError(e.to_string())
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        StorageError(e.to_string())
    }
}

/// Why an append was refused. Every variant means nothing was written.
#[derive(Debug, Error)]
pub enum AppendError {
    #[error("the batch is empty")]
    EmptyBatch,
    #[error("events[{index}].event_id: {event_id} appears twice in the batch")]
    DuplicateInBatch { index: usize, event_id: String },
    #[error("events[{index}].event_id: {event_id} is already stored for another patient or as part of another batch")]
    EventIdReused { index: usize, event_id: String },
    /// The id is stored for this patient with another body: not a retry (a retry resends the same
    /// event), a client reusing an id. Maps to `ALREADY_EXISTS`, like [`AppendError::EventIdReused`].
    #[error("events[{index}].event_id: {event_id} is already stored with another body; a retry must resend the same event, a new event needs a new id")]
    EventIdConflict { index: usize, event_id: String },
    #[error(
        "version conflict for patient {patient_id}: expected version {expected}, actual {actual}"
    )]
    VersionConflict {
        patient_id: String,
        expected: u64,
        actual: u64,
    },
    /// Refused by the gate (or, for `event_id_not_uuid`, by the log itself). `rule` is the stable
    /// code of the broken rule, as the gate gave it; it is not part of the displayed message.
    #[error("events[{index}] ({event_id}): {message}")]
    Rejected {
        index: usize,
        event_id: String,
        rule: String,
        message: String,
    },
    #[error("event log unavailable: {0}")]
    Unavailable(String),
    /// Copies of another log's events (a standby following the writer) that do not continue
    /// this log's chain: what is wrong, naming the position.
    #[error("the copied events do not continue this log's chain: {0}")]
    Diverged(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
