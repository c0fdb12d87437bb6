//! The one place where log and rule errors become gRPC statuses.
use journey_domain::FieldError;
use journey_event_log::{AppendError, StorageError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

fn bad_request(field: &str, message: &str) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// An invalid field of `events[index]`.
pub fn invalid_event(index: usize, e: &FieldError) -> Status {
    bad_request(&format!("events[{index}].{}", e.field), &e.message)
}

pub fn invalid(field: &str, message: &str) -> Status {
    bad_request(field, message)
}

pub fn too_large(message: String) -> Status {
    Status::resource_exhausted(message)
}

pub fn append_error(e: AppendError) -> Status {
    let msg = e.to_string();
    match e {
        AppendError::EmptyBatch => bad_request("events", "the batch is empty"),
        AppendError::DuplicateInBatch { index, .. } => bad_request(
            &format!("events[{index}].event_id"),
            "appears twice in the batch",
        ),
        AppendError::EventIdReused { .. } => Status::already_exists(msg),
        AppendError::VersionConflict { .. } => Status::aborted(msg),
        AppendError::Rejected {
            index,
            rule,
            message,
            ..
        } => rejected(msg, index, &rule, &message),
        AppendError::Unavailable(_) => Status::unavailable(msg),
        AppendError::Storage(e) => storage_error(e),
    }
}

/// A batch refused by a rule: `FAILED_PRECONDITION` with the status message as always, plus a
/// `PreconditionFailure` violation whose type is the rule's stable code and whose subject is
/// `events[index]`, so that clients need not parse the message.
fn rejected(msg: String, index: usize, rule: &str, message: &str) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        msg,
        ErrorDetails::with_precondition_failure_violation(
            rule,
            format!("events[{index}]"),
            message,
        ),
    )
}

pub fn storage_error(e: StorageError) -> Status {
    tracing::error!(error = %e, "storage error");
    Status::internal(format!(
        "event log storage failed ({e}); see the server log"
    ))
}
