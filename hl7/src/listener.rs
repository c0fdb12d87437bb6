//! The MLLP listener's connections: many of them, one message in flight on each (the sender waits for the
//! ACK before the next, which keeps a sender's messages in order), an idle timeout, and an ACK
//! for everything that comes framed. `AA` only once the log acknowledged the append of every
//! event the message maps to (the append call returned OK: on disk).
use crate::ack::{self, ErrorCode, Header, Problem, Verdict};
use crate::mapping::{self, Settings};
use crate::message::Message;
use crate::mllp::{self, Frame, Reader};
use journey_proto::v1::{AppendRequest, Event};
use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    sync::watch,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Where a listener's events go: the log's `Append`, in this process or over gRPC, as the
/// sender's organisation.
pub trait Sink: Send + Sync + 'static {
    fn append(
        &self,
        request: AppendRequest,
    ) -> Pin<Box<dyn Future<Output = Result<(), Status>> + Send + '_>>;
}

#[derive(Debug, Clone)]
pub struct Config {
    pub settings: Settings,
    /// Largest message taken, in bytes; a larger one is answered with a reject.
    pub max_message_bytes: usize,
    /// A connection silent this long (between messages, or in the middle of one) is closed.
    pub idle_timeout: Duration,
}

/// Serves one accepted connection (plain TCP or TLS: the node accepts them) until the peer
/// closes it, it stays silent for the idle timeout, or `stop` turns true (after the message in
/// flight is answered).
pub async fn connection<C>(
    io: C,
    peer: SocketAddr,
    config: Arc<Config>,
    sink: Arc<dyn Sink>,
    mut stop: watch::Receiver<bool>,
) where
    C: AsyncRead + AsyncWrite + Send + Unpin,
{
    let (read, mut write) = tokio::io::split(io);
    let mut reader = Reader::new(read, config.max_message_bytes);
    loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(config.idle_timeout, reader.next()) => f,
            _ = stop.wait_for(|s| *s) => return,
        };
        let frame = match frame {
            Err(_) => {
                tracing::info!(%peer, "MLLP connection idle too long; closing it");
                return;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "MLLP connection failed");
                return;
            }
            Ok(Ok(f)) => f,
        };
        let started = std::time::Instant::now();
        let answer = match frame {
            Frame::Closed => return,
            Frame::TooLarge { len, head } => {
                let problem = Problem::new(
                    ErrorCode::Internal,
                    "",
                    format!(
                        "the message is larger than {} bytes ({len} or more): it was not read; split it or ask for a larger --mllp-max-bytes",
                        config.max_message_bytes
                    ),
                );
                reply(&Header::salvage(&head), Verdict::Rejected, Some(&problem))
            }
            Frame::Message(bytes) => answer(&bytes, &config.settings, sink.as_ref()).await,
        };
        if let Err(e) = write.write_all(&mllp::frame(&answer)).await {
            tracing::debug!(%peer, error = %e, "MLLP connection closed before its ACK");
            return;
        }
        metrics::histogram!("journey_hl7_ack_seconds").record(started.elapsed().as_secs_f64());
    }
}

/// The events a message maps to, or the answer refusing it.
pub fn events_of(bytes: &[u8], settings: &Settings) -> Result<(Header, Vec<Event>), Vec<u8>> {
    let message = Message::parse(bytes).map_err(|e| {
        let p = Problem::new(
            if e.field == "MSH-18" {
                ErrorCode::TableValueNotFound
            } else {
                ErrorCode::SegmentSequence
            },
            e.field,
            e.message,
        );
        reply(&Header::salvage(bytes), Verdict::Rejected, Some(&p))
    })?;
    let header = Header::of(&message);
    match mapping::map(&message, settings) {
        Ok(events) => Ok((header, events)),
        Err(p) => {
            let verdict = match p.code {
                ErrorCode::UnsupportedMessageType
                | ErrorCode::UnsupportedEventCode
                | ErrorCode::UnsupportedVersion => Verdict::Rejected,
                _ => Verdict::Error,
            };
            Err(reply(&header, verdict, Some(&p)))
        }
    }
}

/// The ACK of one message: mapped, appended, answered.
pub async fn answer(bytes: &[u8], settings: &Settings, sink: &dyn Sink) -> Vec<u8> {
    let (header, events) = match events_of(bytes, settings) {
        Ok(mapped) => mapped,
        Err(refusal) => return refusal,
    };
    let request = AppendRequest {
        events,
        expected_versions: Default::default(),
    };
    match sink.append(request).await {
        Ok(()) => {
            if abort_before_ack() {
                eprintln!("JOURNEY_FAULT_HL7_ABORT_BEFORE_ACK: the log acknowledged message {:?}; aborting before its ACK", header.control_id);
                std::process::abort();
            }
            reply(&header, Verdict::Accepted, None)
        }
        Err(status) => {
            let (verdict, problem) = refusal(&status);
            tracing::info!(control_id = %header.control_id, code = ?status.code(), error = %status.message(), "HL7 message refused by the log");
            reply(&header, verdict, Some(&problem))
        }
    }
}

/// A fault-injection point for tests (docs/hl7.md): with `JOURNEY_FAULT_HL7_ABORT_BEFORE_ACK=1`
/// in its environment the process aborts (no clean-up, as `kill -9`) right after the log
/// acknowledged a message's events and before its ACK is written: the crash that loses an ACK
/// for events already on disk. Read once.
fn abort_before_ack() -> bool {
    static FAULT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FAULT
        .get_or_init(|| std::env::var("JOURNEY_FAULT_HL7_ABORT_BEFORE_ACK").is_ok_and(|v| v == "1"))
}

/// What a refusal of the log becomes: an error in the content (`AE`) when the journey rules, a
/// right or a field refuse it (resending it unchanged would not help), a reject (`AR`: resend
/// later) when the log cannot take it now.
fn refusal(status: &Status) -> (Verdict, Problem) {
    let rule = status
        .get_details_error_info()
        .map(|i| i.reason)
        .or_else(|| {
            status
                .get_details_precondition_failure()
                .and_then(|p| p.violations.first().map(|v| v.r#type.clone()))
        });
    let violation = status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()));
    let field = violation.as_ref().map(|f| format!("event {f}"));
    // The message's field the refused event field was read from, when one is (ERR-2).
    let location = violation.as_deref().and_then(mapping::source_field);
    let (verdict, code) = match status.code() {
        Code::FailedPrecondition | Code::PermissionDenied => (Verdict::Error, ErrorCode::Internal),
        // A field refused, or an event over the log's size limit: the content, not the moment.
        Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted => {
            (Verdict::Error, ErrorCode::DataType)
        }
        Code::AlreadyExists => (Verdict::Error, ErrorCode::DuplicateKey),
        _ => (Verdict::Rejected, ErrorCode::Internal),
    };
    let text = match verdict {
        Verdict::Rejected => format!(
            "the journey log cannot take the message now ({}); nothing was written, send it again",
            status.message()
        ),
        _ => match &field {
            Some(f) => format!("{f}: {}", status.message()),
            None => status.message().to_string(),
        },
    };
    let mut problem = Problem::new(code, location.unwrap_or(""), text);
    problem.rule = rule;
    (verdict, problem)
}

/// The ACK, counted by trigger (the mapped ones by name, any other as `other`: a sender cannot
/// grow `/metrics`) and by verdict.
fn reply(header: &Header, verdict: Verdict, problem: Option<&Problem>) -> Vec<u8> {
    let trigger = mapping::SUPPORTED
        .iter()
        .find(|t| **t == header.trigger)
        .copied()
        .unwrap_or("other");
    let ack = match verdict {
        Verdict::Accepted => "accepted",
        Verdict::Error => "error",
        Verdict::Rejected => "rejected",
    };
    metrics::counter!("journey_hl7_messages_total", "trigger" => trigger, "ack" => ack)
        .increment(1);
    let id = uuid::Uuid::new_v4().simple().to_string();
    ack::ack(header, verdict, problem, &id[..20])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn refusals_of_the_log_become_errors_or_rejects() {
        let rule = Status::with_error_details(
            Code::FailedPrecondition,
            "discharge without open admission",
            ErrorDetails::with_precondition_failure_violation(
                "no_open_admission",
                "events[0]",
                "no open stay",
            ),
        );
        let (verdict, p) = refusal(&rule);
        assert_eq!(verdict, Verdict::Error);
        assert_eq!(p.rule.as_deref(), Some("no_open_admission"));
        assert_eq!(p.code, ErrorCode::Internal);

        let right = Status::with_error_details(
            Code::PermissionDenied,
            "not yours",
            ErrorDetails::with_error_info(
                "not_related",
                "journey",
                std::collections::HashMap::new(),
            ),
        );
        let (verdict, p) = refusal(&right);
        assert_eq!(verdict, Verdict::Error);
        assert_eq!(p.rule.as_deref(), Some("not_related"));

        let field = Status::with_error_details(
            Code::InvalidArgument,
            "admitted.facility.id: is required",
            ErrorDetails::with_bad_request_violation(
                "events[1].admitted.facility.id",
                "is required",
            ),
        );
        let (verdict, p) = refusal(&field);
        assert_eq!(verdict, Verdict::Error);
        assert_eq!(p.code, ErrorCode::DataType);
        assert!(
            p.text.starts_with("event events[1].admitted.facility.id"),
            "{}",
            p.text
        );

        assert_eq!(p.field, None, "a field no message field gives");

        let insee = Status::with_error_details(
            Code::InvalidArgument,
            "patient_registered.birth_place_code: \"7505\" is not an INSEE code",
            ErrorDetails::with_bad_request_violation(
                "events[1].patient_registered.birth_place_code",
                "\"7505\" is not an INSEE code",
            ),
        );
        let (verdict, p) = refusal(&insee);
        assert_eq!(verdict, Verdict::Error);
        assert_eq!(p.field.as_deref(), Some("PID-11"));

        assert_eq!(
            refusal(&Status::already_exists("id")).1.code,
            ErrorCode::DuplicateKey
        );
        assert_eq!(
            refusal(&Status::resource_exhausted("too big")).0,
            Verdict::Error
        );
        for transient in [
            Status::unavailable("log closing"),
            Status::unauthenticated("bad token"),
            Status::internal("disk"),
        ] {
            let (verdict, p) = refusal(&transient);
            assert_eq!(verdict, Verdict::Rejected, "{transient:?}");
            assert!(
                p.text.contains("nothing was written, send it again"),
                "{}",
                p.text
            );
        }
    }
}
