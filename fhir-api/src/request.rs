//! What a FHIR request asks, as `journey_fhir::query` reads it (pure: the parameters of a read,
//! `$everything`, a search and a Bulk Data kick-off); a parameter it refuses is the API's
//! `INVALID_ARGUMENT`, answered as a 400 OperationOutcome.
use axum::http::Uri;
use journey_fhir::query::{self, Invalid};
pub(super) use journey_fhir::query::{ExportAsk, Select, PROVENANCE};
use journey_services::errors;
use tonic::Status;

fn refused(i: Invalid) -> Status {
    errors::invalid(&i.parameter, &i.message)
}

/// A read takes no parameter.
pub(super) fn no_parameters(uri: &Uri) -> Result<(), Status> {
    query::no_parameters(uri.query()).map_err(refused)
}

/// `$everything` takes `_since` only.
pub(super) fn everything_request(q: Option<&str>) -> Result<Select, Status> {
    query::everything_request(q).map_err(refused)
}

/// A search by patient: the patient named (recorded even when refused), and what is asked.
pub(super) fn search_request(kind: &str, q: Option<&str>) -> (String, Result<Select, Status>) {
    let (patient, select) = query::search_request(kind, q);
    (patient, select.map_err(refused))
}

/// A Bulk Data kick-off's `_type`, `_since` and `_outputFormat`.
pub(super) fn export_request(q: Option<&str>) -> Result<ExportAsk, Status> {
    query::export_request(q).map_err(refused)
}
