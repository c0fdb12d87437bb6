//! The one place where errors become gRPC statuses: every `tonic::Status` the services answer is
//! built here, grouped by meaning. Callers pick the function that says what went wrong; the code,
//! the message text (end-to-end tests and clients match on both) and the structured details
//! (`tonic_types::ErrorDetails`: a `BadRequest` field violation where a request field is at fault,
//! a `PreconditionFailure` for a refusal by a rule or a missing prerequisite, a `ResourceInfo` for
//! what was not found) are decided here. Server-side failures (`UNAVAILABLE`, `INTERNAL`) are
//! logged here too.
use crate::principal::Principal;
use journey_domain::FieldError;
use journey_event_log::{AppendError, StorageError};
use std::{fmt::Display, path::Path};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

// ---- Invalid argument (BadRequest) and resource exhausted ----

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

/// An invalid request field: `INVALID_ARGUMENT` "`field`: `message`", with a `BadRequest` violation.
pub fn invalid(field: &str, message: &str) -> Status {
    bad_request(field, message)
}

/// A request over the size limits: `RESOURCE_EXHAUSTED` "`field`: `message`", with a
/// `BadRequest` violation naming the field (`events` for the batch, `events[i]` for one event).
pub fn too_large(field: &str, message: &str) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("{field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// A request body tonic could not decode as the method's message (`decoder`: what the protobuf
/// decoder said): the caller's request is at fault, `INVALID_ARGUMENT`.
pub fn undecodable_request(decoder: &str) -> Status {
    let message = if decoder.contains("not UTF-8") {
        format!("a string field is not valid UTF-8 ({decoder}); send text as UTF-8")
    } else {
        format!("not a valid protobuf message for this method ({decoder})")
    };
    bad_request("request", &message)
}

/// A request message of `found` bytes over this server's decoding limit of `limit` bytes,
/// refused before it is read: `RESOURCE_EXHAUSTED`.
pub fn request_too_large(found: usize, limit: usize) -> Status {
    too_large(
        "request",
        &format!(
            "{found} bytes, over this server's limit of {limit} bytes (its largest batch: \
             --max-batch-events events of --max-event-bytes); split the batch"
        ),
    )
}

// ---- The log's answers to an append, and its storage ----

pub fn append_error(e: AppendError) -> Status {
    let msg = e.to_string();
    match e {
        AppendError::EmptyBatch => bad_request("events", "the batch is empty"),
        AppendError::DuplicateInBatch { index, .. } => bad_request(
            &format!("events[{index}].event_id"),
            "appears twice in the batch",
        ),
        AppendError::EventIdReused { .. } => Status::already_exists(msg),
        AppendError::EventIdConflict { .. } => Status::already_exists(msg),
        AppendError::VersionConflict { .. } => Status::aborted(msg),
        AppendError::Rejected {
            index,
            rule,
            message,
            ..
        } => rejected(msg, index, &rule, &message),
        AppendError::Unavailable(_) => Status::unavailable(msg),
        // Only copies (a standby following its writer) are refused so; never a client's append.
        AppendError::Diverged(_) => Status::internal(msg),
        AppendError::Storage(e) => storage_error(e),
    }
}

/// `FAILED_PRECONDITION` with `msg`, plus one `PreconditionFailure` violation (`kind` is a stable
/// snake_case code clients can match on).
fn precondition(msg: String, kind: &str, subject: String, description: &str) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        msg,
        ErrorDetails::with_precondition_failure_violation(kind, subject, description),
    )
}

/// A batch refused by a rule: `FAILED_PRECONDITION` with the status message as always, plus a
/// `PreconditionFailure` violation whose type is the rule's stable code and whose subject is
/// `events[index]`, so that clients need not parse the message.
/// A batch the journey rules refused: `FAILED_PRECONDITION` for a state of the journey,
/// `PERMISSION_DENIED` for a write right of the writing organisation (docs/design.md §6), both
/// naming the rule's stable code (a precondition violation's kind, or the error info's reason).
fn rejected(msg: String, index: usize, rule: &str, message: &str) -> Status {
    if journey_domain::Rule::from_code(rule).is_some_and(journey_domain::Rule::is_write_right) {
        let info =
            std::collections::HashMap::from([("event".to_string(), format!("events[{index}]"))]);
        return Status::with_error_details(
            Code::PermissionDenied,
            msg,
            ErrorDetails::with_error_info(rule, "journey", info),
        );
    }
    precondition(msg, rule, format!("events[{index}]"), message)
}

pub fn storage_error(e: StorageError) -> Status {
    tracing::error!(error = %e, "storage error");
    Status::internal(format!(
        "event log storage failed ({e}); see the server log"
    ))
}

/// A blocking task (`task`: what it did, e.g. "verify") that panicked or was cancelled.
pub fn task_failed(task: &str, e: impl Display) -> Status {
    tracing::error!(error = %e, task, "blocking task failed");
    Status::internal(format!("{task} task failed: {e}"))
}

// ---- Read models and the access log (a database) ----

/// What went wrong with a database, in words for the client; the raw error (addresses, SQL,
/// driver text) is logged here and never sent. `UNAVAILABLE` when the database could not be
/// reached or lent no connection in time (the client may retry), `INTERNAL` otherwise.
fn database_error(database: &str, e: &sqlx::Error, outcome: &str) -> Status {
    use sqlx::Error as E;
    tracing::error!(error = %e, database, "database error");
    match e {
        E::PoolTimedOut => Status::unavailable(format!(
            "the {database} lent no connection within {} s (down, or overloaded); {outcome}: retry later, or check the database",
            journey_projections::db::ACQUIRE_TIMEOUT.as_secs()
        )),
        E::Io(_) | E::Tls(_) | E::Protocol(_) | E::PoolClosed | E::WorkerCrashed => {
            Status::unavailable(format!(
                "the {database} cannot be reached; {outcome}: retry later, or check the database"
            ))
        }
        _ => Status::internal(format!(
            "the {database} failed; {outcome}: the server log has the database's error"
        )),
    }
}

/// A read-model query that failed (see `database_error`).
pub fn read_model_error(e: sqlx::Error) -> Status {
    database_error("read-model database", &e, "the query is not answered")
}

/// A rebuild of `projection` that failed (sent as the last item of the progress stream).
pub fn rebuild_failed(projection: &str, e: &anyhow::Error) -> Status {
    tracing::error!(error = %format!("{e:#}"), projection, "rebuild failed");
    Status::internal(format!(
        "the rebuild of {projection} failed; the server log has the error"
    ))
}

/// An access that cannot be recorded: the read it was for is refused (no record, no data).
pub fn access_log_unwritable(e: sqlx::Error) -> Status {
    let status = database_error("access log's database", &e, "the access cannot be recorded");
    Status::unavailable(format!("{}; the read is refused", status.message()))
}

/// The access log cannot be queried.
pub fn access_log_unreadable(e: sqlx::Error) -> Status {
    database_error("access log's database", &e, "the access log is not read")
}

/// A row of the access log that does not decode.
pub fn access_log_malformed(e: sqlx::Error) -> Status {
    tracing::error!(error = %e, "an access log row does not decode");
    Status::internal("a row of the access log does not decode; the server log has the details")
}

// ---- Not found ----

fn not_found(msg: String, resource_type: &str, name: &str) -> Status {
    let description = msg.clone();
    Status::with_error_details(
        Code::NotFound,
        msg,
        ErrorDetails::with_resource_info(resource_type, name, "", description),
    )
}

/// A patient the log holds no event of.
pub fn unknown_patient(patient_id: &str) -> Status {
    not_found(
        format!("patient {patient_id:?}: no event in the log"),
        "patient",
        patient_id,
    )
}

/// The care pathways' templates file that cannot be used (`JOURNEY_PATHWAYS`).
pub fn pathways_unusable(reason: &str) -> Status {
    Status::failed_precondition(format!("the follow-up templates cannot be used: {reason}"))
}

/// A patient the coordination read model has no follow-up for.
pub fn no_follow_up(patient_id: &str) -> Status {
    not_found(
        format!("no follow-up for patient {patient_id:?} (never admitted, or not yet projected)"),
        "follow-up",
        patient_id,
    )
}

/// A read model this server does not run (`running`: the ones it does).
pub fn unknown_projection(name: &str, running: &[&str]) -> Status {
    not_found(
        format!(
            "unknown projection {name:?}; this server runs: {}",
            running.join(", ")
        ),
        "projection",
        name,
    )
}

// ---- Audit prerequisites ----

/// The anchor file at `path` cannot be read, so the log cannot be checked against it.
pub fn anchor_unreadable(path: &Path, e: &anyhow::Error) -> Status {
    precondition(
        format!("the anchor file is unreadable ({e:#}); the log cannot be checked against it"),
        "anchor_unreadable",
        path.display().to_string(),
        &format!("{e:#}"),
    )
}

/// `Accesses` asked of an audit service without a database.
pub fn no_access_log() -> Status {
    precondition(
        "this audit service keeps no access log: ask `journey up` or a read side with a database"
            .into(),
        "no_access_log",
        "access_log".into(),
        "this audit service has no database",
    )
}

/// A read of patient data asked of a service with nowhere to record it: refused (no record, no
/// data).
pub fn read_unrecorded(call: &str) -> Status {
    precondition(
        format!("{call}: this server keeps no access log, so it cannot record the read and refuses it; give it one with --access-log-url"),
        "no_access_log",
        "access_log".into(),
        "a read of patient data is recorded before it is answered",
    )
}

/// An `Accesses` page token this service did not issue.
pub fn bad_page_token() -> Status {
    bad_request(
        "page_token",
        "not a token this service issued; leave it empty for the first page",
    )
}

/// Patient-level rows asked by a caller whose consents cannot be checked here (no coordination
/// read model beside the readmission one).
pub fn consent_unknown(organisation: &str) -> Status {
    precondition(
        format!("patients' consents are not known on this server, so no patient-level row is shown to {organisation:?}; ask a server that also runs the coordination read model (journey up, journey serve coordination), or use Rates"),
        "consent_unknown",
        organisation.to_string(),
        "patient-level rows need the patients' consents",
    )
}

// ---- Authentication (UNAUTHENTICATED) ----

pub fn missing_token() -> Status {
    Status::unauthenticated(
        "missing token: send `authorization: Bearer <token>` (journey up writes an admin token to <data-dir>/admin.token)",
    )
}

/// A bearer token that is neither a known API key nor a JWT.
pub fn unknown_token() -> Status {
    Status::unauthenticated("unknown API key and not a JWT")
}

pub fn jwt_algorithm_not_configured(alg: jsonwebtoken::Algorithm) -> Status {
    Status::unauthenticated(format!("JWT algorithm {alg:?} is not configured here"))
}

/// A JWT that does not verify (signature, expiry, claims).
pub fn invalid_jwt(e: impl Display) -> Status {
    Status::unauthenticated(format!("invalid JWT: {e}"))
}

// ---- Authorisation (PERMISSION_DENIED) ----

/// A token whose `role` claim names no role.
pub fn unknown_role(role: &str) -> Status {
    Status::permission_denied(format!("unknown role {role:?}"))
}

/// A caller whose role may not call the gRPC method `path`.
pub fn may_not_call(caller: &Principal, path: &str) -> Status {
    Status::permission_denied(format!(
        "{} ({:?}) may not call {path}",
        caller.subject, caller.role
    ))
}

/// A partner appending an event (`events[index]`) for another organisation than its own.
pub fn not_your_organisation(index: usize, organisation: &str, own: &str) -> Status {
    let field = format!("events[{index}].actor.organisation");
    let message = format!("{organisation:?} is not your organisation {own:?}");
    Status::with_error_details(
        Code::PermissionDenied,
        format!("{field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// An event type the caller's role does not write (`events[index]`); `writes` says what it does.
pub fn event_type_not_yours(
    index: usize,
    event_type: &str,
    caller: &Principal,
    writes: &str,
) -> Status {
    let field = format!("events[{index}]");
    let role = format!("{:?}", caller.role).to_lowercase();
    let message = format!("a {role} key may not write {event_type}: it writes {writes}");
    Status::with_error_details(
        Code::PermissionDenied,
        format!("{field}: {message}"),
        ErrorDetails::with_bad_request_violation(field, message),
    )
}

/// A patient who revoked the consent to share with the caller's organisation.
pub fn consent_revoked(patient_id: &str, organisation: &str) -> Status {
    Status::permission_denied(format!(
        "patient {patient_id:?} revoked the consent to share with {organisation:?}"
    ))
}

/// A coordinator with no territory configured.
pub fn no_territory(caller: &Principal) -> Status {
    Status::permission_denied(format!(
        "no territory is configured for {} ({}); add it to the token or the territories file",
        caller.subject, caller.organisation
    ))
}

/// A coordinator asking for another territory than its own (the request's `territory` field).
pub fn not_your_territory(requested: &str, own: &str) -> Status {
    Status::with_error_details(
        Code::PermissionDenied,
        format!("territory {requested:?} is not yours ({own:?})"),
        ErrorDetails::with_bad_request_violation(
            "territory",
            format!("{requested:?} is not your territory {own:?}"),
        ),
    )
}

/// A patient with no stay in the coordinator's territory.
pub fn outside_territory(patient_id: &str, territory: &str) -> Status {
    Status::permission_denied(format!(
        "patient {patient_id:?} has no stay in your territory {territory:?}"
    ))
}

/// A liaison nurse asking for a patient with no stay at her facility.
pub fn outside_facility(patient_id: &str, facility: &str) -> Status {
    Status::permission_denied(format!(
        "patient {patient_id:?} has no stay at your facility {facility:?}"
    ))
}

// ---- The FHIR API (`journey-fhir-api`) ----

/// A caller whose role does not read the FHIR API.
pub fn fhir_role_refused(caller: &Principal) -> Status {
    Status::permission_denied(format!(
        "{} ({:?}) may not read the FHIR API: it serves coordinators, auditors and admins",
        caller.subject, caller.role
    ))
}

/// A coordinator on a server without the coordination view, which alone knows its territory's
/// patients and their consents.
pub fn fhir_no_coordination_view(caller: &Principal) -> Status {
    precondition(
        format!("{} (coordinator): this server keeps no coordination view, so it cannot tell which patients are yours; ask journey up or journey serve coordination", caller.subject),
        "no_coordination_view",
        caller.organisation.clone(),
        "a coordinator reads the patients of its territory, known to the coordination view",
    )
}

/// A Bulk Data export of every patient asked by a coordinator, who exports its territory only.
pub fn fhir_export_refused(caller: &Principal) -> Status {
    Status::permission_denied(format!(
        "{} ({:?}) may not export every patient: auditors and admins do; a coordinator exports its own territory with GET /fhir/Group/{{territory}}/$export",
        caller.subject, caller.role
    ))
}

/// A Bulk Data export status or file that is not (or no longer) there for this caller.
pub fn fhir_export_unknown(id: &str) -> Status {
    not_found(
        format!("no export {id:?} of yours: it was cancelled, it expired, or the server restarted during it; start a new one"),
        "export",
        id,
    )
}

/// Too many Bulk Data exports at once.
pub fn fhir_exports_busy(running: usize) -> Status {
    Status::resource_exhausted(format!(
        "{running} exports are running already; wait for one to finish (or cancel one with DELETE on its status address), then ask again"
    ))
}

/// A Bulk Data export that could not be finished.
pub fn fhir_export_failed(e: impl Display) -> Status {
    Status::unavailable(format!("the export stopped: {e}; start it again"))
}

/// A GP asking for a patient who does not name them as GP or referent (recorded; the page answers
/// as for an unknown patient).
pub fn not_referent(professional: &str, patient_id: &str) -> Status {
    Status::permission_denied(format!(
        "{professional} is not the GP or a referent of patient {patient_id}"
    ))
}

/// A patient the caller may not read, or that nobody knows: the same answer for both.
pub fn patient_not_visible(patient_id: &str) -> Status {
    not_found(
        format!("no patient {patient_id:?} that you may read; check the id, or ask someone whose territory it is"),
        "patient",
        patient_id,
    )
}

// ---- Actions in the dashboard (`dashboard/actions.rs`) ----

/// An action on a dashboard whose log is remote: the remote log would take the node's key,
/// not the signed-in person, as the writer.
pub fn actions_need_local_log(log: &str) -> Status {
    Status::failed_precondition(format!(
        "actions are recorded only by a dashboard that holds its log (journey up); this one reads the log at {log}: act from the dashboard of the node that holds the log"
    ))
}

/// An action whose form did not come from this session's own page (another site's form, or a
/// form without the session's CSRF token).
pub fn form_not_from_this_page() -> Status {
    Status::permission_denied(
        "the form did not come from your own patient page (another site, or a page of an earlier session): open the patient's page again and repeat the action",
    )
}

/// An action asked without a signed-in person (a server run with --insecure).
pub fn action_without_person() -> Status {
    Status::permission_denied(
        "an action is recorded under the signed-in person: run the server with authentication and sign in",
    )
}

/// A discharge-planning page or action on a server without the planning view (a read side
/// without the coordination view).
pub fn no_planning_view() -> Status {
    Status::unavailable("the discharge-planning view does not run on this server")
}

/// A planning action on a stay that has ended: its plan stays as it was when the patient left.
pub fn stay_ended() -> Status {
    Status::failed_precondition(
        "the stay has ended: its discharge plan is kept as it was when the patient left",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Role;
    use tonic_types::StatusExt;

    fn caller(role: Role) -> Principal {
        Principal {
            subject: "alice".into(),
            role,
            organisation: "CHU-A".into(),
            territory: None,
        }
    }

    /// The only BadRequest violation of `s`, as (field, description).
    fn violation(s: &Status) -> (String, String) {
        let details = s.get_error_details();
        let v = details.bad_request().expect("a BadRequest detail");
        assert_eq!(v.field_violations.len(), 1);
        let v = &v.field_violations[0];
        (v.field.clone(), v.description.clone())
    }

    /// The only PreconditionFailure violation of `s`, as (type, subject, description).
    fn precondition_of(s: &Status) -> (String, String, String) {
        let details = s.get_error_details();
        let p = details
            .precondition_failure()
            .expect("a PreconditionFailure detail");
        assert_eq!(p.violations.len(), 1);
        let v = &p.violations[0];
        (v.r#type.clone(), v.subject.clone(), v.description.clone())
    }

    fn has_no_details(s: &Status) -> bool {
        s.details().is_empty()
    }

    #[test]
    fn invalid_arguments_name_their_field() {
        let s = invalid("patient_id", "required");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "patient_id: required");
        assert_eq!(violation(&s), ("patient_id".into(), "required".into()));

        let e = FieldError {
            field: "occurred_at".into(),
            message: "required".into(),
        };
        let s = invalid_event(3, &e);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "events[3].occurred_at: required");
        assert_eq!(violation(&s).0, "events[3].occurred_at");

        let s = too_large("events[2]", "too big");
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.message(), "events[2]: too big");
        assert_eq!(violation(&s).0, "events[2]");
    }

    #[test]
    fn append_errors_keep_their_codes_and_rules() {
        let s = append_error(AppendError::EmptyBatch);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(violation(&s).0, "events");
        let s = append_error(AppendError::DuplicateInBatch {
            index: 2,
            event_id: "x".into(),
        });
        assert_eq!(violation(&s).0, "events[2].event_id");
        let s = append_error(AppendError::Rejected {
            index: 1,
            event_id: "x".into(),
            rule: "nothing_after_death".into(),
            message: "the patient died".into(),
        });
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(s.message(), "events[1] (x): the patient died");
        assert_eq!(
            precondition_of(&s),
            (
                "nothing_after_death".into(),
                "events[1]".into(),
                "the patient died".into()
            )
        );
        let s = append_error(AppendError::Unavailable("closing".into()));
        assert_eq!(s.code(), Code::Unavailable);
    }

    #[test]
    fn server_failures_are_unavailable_or_internal() {
        // The database down or slow: UNAVAILABLE, saying which database and what to do.
        let s = read_model_error(sqlx::Error::PoolTimedOut);
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(
            s.message(),
            "the read-model database lent no connection within 5 s (down, or overloaded); \
             the query is not answered: retry later, or check the database"
        );
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connect 10.0.0.7:5432 refused",
        );
        let s = read_model_error(sqlx::Error::Io(refused));
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(
            s.message(),
            "the read-model database cannot be reached; the query is not answered: \
             retry later, or check the database"
        );
        // Anything else: INTERNAL; the driver's text (here a column name) stays in the server log.
        let raw = || sqlx::Error::ColumnNotFound("secret_column".into());
        let s = read_model_error(raw());
        assert_eq!(s.code(), Code::Internal);
        for s in [
            read_model_error(raw()),
            access_log_unwritable(raw()),
            access_log_unreadable(raw()),
            access_log_malformed(raw()),
        ] {
            assert!(!s.message().contains("secret_column"), "{s:?}");
        }

        let s = access_log_unwritable(sqlx::Error::PoolTimedOut);
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s
            .message()
            .starts_with("the access log's database lent no connection within 5 s"));
        assert!(s.message().ends_with("; the read is refused"), "{s:?}");
        let s = access_log_unwritable(raw());
        assert_eq!(s.code(), Code::Unavailable, "no record, no read: retry");

        let s = access_log_unreadable(sqlx::Error::PoolClosed);
        assert_eq!(s.code(), Code::Unavailable);
        assert!(s
            .message()
            .starts_with("the access log's database cannot be reached"));

        let s = access_log_malformed(raw());
        assert_eq!(s.code(), Code::Internal);

        let e = anyhow::anyhow!("disk gone").context("catch-up");
        let s = rebuild_failed("readmission", &e);
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(
            s.message(),
            "the rebuild of readmission failed; the server log has the error"
        );

        let s = task_failed("verify", "panicked");
        assert_eq!(s.code(), Code::Internal);
        assert_eq!(s.message(), "verify task failed: panicked");

        for s in [
            read_model_error(sqlx::Error::RowNotFound),
            access_log_unwritable(sqlx::Error::RowNotFound),
            access_log_malformed(sqlx::Error::RowNotFound),
            rebuild_failed("readmission", &e),
            task_failed("verify", "panicked"),
        ] {
            assert!(has_no_details(&s), "{s:?}");
        }
    }

    #[test]
    fn not_found_says_what_was_looked_for() {
        let s = unknown_patient("P-1");
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "patient \"P-1\": no event in the log");
        let r = s
            .get_details_resource_info()
            .expect("a ResourceInfo detail");
        assert_eq!(
            (r.resource_type.as_str(), r.resource_name.as_str()),
            ("patient", "P-1")
        );
        assert_eq!(r.description, s.message());

        let s = no_follow_up("P-2");
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(
            s.message(),
            "no follow-up for patient \"P-2\" (never admitted, or not yet projected)"
        );
        let r = s
            .get_details_resource_info()
            .expect("a ResourceInfo detail");
        assert_eq!(
            (r.resource_type.as_str(), r.resource_name.as_str()),
            ("follow-up", "P-2")
        );

        let s = unknown_projection("nope", &["readmission", "coordination"]);
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(
            s.message(),
            "unknown projection \"nope\"; this server runs: readmission, coordination"
        );
        let r = s
            .get_details_resource_info()
            .expect("a ResourceInfo detail");
        assert_eq!(
            (r.resource_type.as_str(), r.resource_name.as_str()),
            ("projection", "nope")
        );
    }

    #[test]
    fn missing_audit_prerequisites_are_failed_preconditions() {
        let e = anyhow::anyhow!("bad json").context("reading the anchor");
        let s = anchor_unreadable(Path::new("/data/anchor.json"), &e);
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.message(),
            "the anchor file is unreadable (reading the anchor: bad json); the log cannot be checked against it"
        );
        assert_eq!(
            precondition_of(&s),
            (
                "anchor_unreadable".into(),
                "/data/anchor.json".into(),
                "reading the anchor: bad json".into()
            )
        );

        let s = no_access_log();
        assert_eq!(s.code(), Code::FailedPrecondition);
        assert_eq!(
            s.message(),
            "this audit service keeps no access log: ask `journey up` or a read side with a database"
        );
        assert_eq!(precondition_of(&s).0, "no_access_log");
    }

    #[test]
    fn authentication_refusals_are_unauthenticated() {
        let cases = [
            (
                missing_token(),
                "missing token: send `authorization: Bearer <token>` (journey up writes an admin token to <data-dir>/admin.token)",
            ),
            (unknown_token(), "unknown API key and not a JWT"),
            (
                jwt_algorithm_not_configured(jsonwebtoken::Algorithm::ES256),
                "JWT algorithm ES256 is not configured here",
            ),
            (invalid_jwt("ExpiredSignature"), "invalid JWT: ExpiredSignature"),
        ];
        for (s, message) in cases {
            assert_eq!(s.code(), Code::Unauthenticated, "{message}");
            assert_eq!(s.message(), message);
            assert!(has_no_details(&s), "{message}");
        }
    }

    #[test]
    fn authorisation_refusals_are_permission_denied() {
        let coordinator = caller(Role::Coordinator);
        let cases = [
            (unknown_role("boss"), "unknown role \"boss\""),
            (
                may_not_call(&caller(Role::Quality), "/journey.v1.EventLog/Append"),
                "alice (Quality) may not call /journey.v1.EventLog/Append",
            ),
            (
                consent_revoked("P-1", "CHU-A"),
                "patient \"P-1\" revoked the consent to share with \"CHU-A\"",
            ),
            (
                no_territory(&coordinator),
                "no territory is configured for alice (CHU-A); add it to the token or the territories file",
            ),
            (
                outside_territory("P-1", "north"),
                "patient \"P-1\" has no stay in your territory \"north\"",
            ),
        ];
        for (s, message) in cases {
            assert_eq!(s.code(), Code::PermissionDenied, "{message}");
            assert_eq!(s.message(), message);
            assert!(has_no_details(&s), "{message}");
        }
    }

    #[test]
    fn refusals_about_a_request_field_name_it() {
        let s = not_your_organisation(1, "CHU-B", "CHU-A");
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(
            s.message(),
            "events[1].actor.organisation: \"CHU-B\" is not your organisation \"CHU-A\""
        );
        assert_eq!(
            violation(&s),
            (
                "events[1].actor.organisation".into(),
                "\"CHU-B\" is not your organisation \"CHU-A\"".into()
            )
        );

        let s = not_your_territory("south", "north");
        assert_eq!(s.code(), Code::PermissionDenied);
        assert_eq!(s.message(), "territory \"south\" is not yours (\"north\")");
        assert_eq!(violation(&s).0, "territory");
    }
}
