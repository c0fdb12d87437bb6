//! Bulk Data export (Bulk Data Access IG 2.0) as the mapping sees it: which resources an export
//! writes of a patient, its files' names and order, the OperationOutcome of a patient it could
//! not write, and the manifest. Pure: the jobs, the files on disk and who may export are
//! `fhir-api/src/export.rs`.
use crate::{
    bundle::Entry,
    outcome::{outcome, Issue},
    query::{ExportAsk, PROVENANCE},
    Kind, Resource,
};
use journey_proto::v1::Event;
use serde_json::{json, Value};

/// The type of the error files (the manifest's `error`).
pub const ERROR_KIND: &str = "OperationOutcome";

/// Whether an export asked for `kind` (every type without `_type`).
pub fn wanted(ask: &ExportAsk, kind: &str) -> bool {
    ask.types.as_ref().is_none_or(|t| t.contains(&kind))
}

/// What an export writes of a patient's events: of its resources (`events` mapped) and its
/// events' Provenances, those of the types asked, changed since `_since` (`meta.lastUpdated`, as
/// `$everything?_since=`) and kept by `_typeFilter`. Its Tasks are [`tasks_selected`].
pub fn selected<'a>(ask: &ExportAsk, patient: &str, events: &'a [Event]) -> Vec<Entry<'a>> {
    let wanted = |k: &str| wanted(ask, k);
    let mapped = ask.types.as_ref().is_none_or(|t| {
        t.iter()
            .any(|k| *k != PROVENANCE && *k != Kind::Task.name())
    });
    let mut all: Vec<Entry> = match mapped {
        true => crate::resources(patient, events)
            .into_iter()
            .filter(|r| wanted(r.kind))
            .map(Entry::Resource)
            .collect(),
        false => Vec::new(),
    };
    if wanted(PROVENANCE) {
        all.extend(events.iter().map(Entry::Provenance));
    }
    narrowed(ask, all)
}

/// What an export writes of a patient's Tasks (from the coordination view): as [`selected`].
pub fn tasks_selected(ask: &ExportAsk, tasks: Vec<Resource>) -> Vec<Entry<'static>> {
    match wanted(ask, Kind::Task.name()) {
        true => narrowed(ask, tasks.into_iter().map(Entry::Resource).collect()),
        false => Vec::new(),
    }
}

/// `all` changed since `_since` and kept by `_typeFilter`.
fn narrowed<'a>(ask: &ExportAsk, mut all: Vec<Entry<'a>>) -> Vec<Entry<'a>> {
    if let Some(since) = &ask.since {
        all.retain(|r| r.since(since));
    }
    if !ask.filters.is_empty() {
        all.retain(|r| ask.filters.keeps(r));
    }
    all
}

/// A type's NDJSON file written by an export's worker `part` (from 1): each worker writes its
/// own files, and the manifest lists every file of a type (the Bulk Data IG allows several).
pub fn file_name(kind: &str, part: usize) -> String {
    format!("{kind}-{part}.ndjson")
}

/// The line of an error file for what could not be written of `patient` (`lost`: which
/// resources, `why`).
pub fn error_line(patient: &str, lost: &str, why: &str) -> Value {
    outcome(
        Issue::Exception,
        &format!("patient {patient}: {lost} could not be exported: {why}"),
    )
}

/// The type an export file's name holds (`Patient-1.ndjson`), if an export writes it.
pub fn file_kind(name: &str) -> Option<&'static str> {
    let (kind, part) = name.strip_suffix(".ndjson")?.rsplit_once('-')?;
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match kind {
        PROVENANCE => Some(PROVENANCE),
        ERROR_KIND => Some(ERROR_KIND),
        kind => Kind::parse(kind).map(Kind::name),
    }
}

/// The place of a type's file in a manifest: the mapping's types in order, Provenance last.
pub fn order(kind: &str) -> usize {
    Kind::ALL
        .iter()
        .position(|k| k.name() == kind)
        .unwrap_or(Kind::ALL.len())
}

/// The manifest of a finished export: `request` the kick-off's address, `files_url` where its
/// files are served, `listed` each file written (its name), its type and its count: the
/// resources' in `output`, the OperationOutcomes' in `error`.
pub fn manifest(
    transaction_time: &str,
    request: &str,
    requires_token: bool,
    files_url: &str,
    listed: &[(String, &str, u64)],
) -> Value {
    let entry = |(name, kind, count): &(String, &str, u64)| {
        json!({
            "type": kind,
            "url": format!("{files_url}/{name}"),
            "count": count,
        })
    };
    let (errors, output): (Vec<_>, Vec<_>) = listed.iter().partition(|(_, k, _)| *k == ERROR_KIND);
    json!({
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": requires_token,
        "output": output.into_iter().map(entry).collect::<Vec<_>>(),
        "error": errors.into_iter().map(entry).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_their_type() {
        assert_eq!(file_kind(&file_name("Encounter", 2)), Some("Encounter"));
        assert_eq!(file_kind("Provenance-1.ndjson"), Some(PROVENANCE));
        assert_eq!(file_kind("OperationOutcome-1.ndjson"), Some(ERROR_KIND));
        assert_eq!(file_kind("../manifest.json"), None);
        assert_eq!(file_kind("Patient.ndjson"), None);
        assert_eq!(file_kind("Patient-1.part"), None);
        assert_eq!(file_kind("Practitioner-1.ndjson"), None);
        assert!(order("Patient") < order("Flag") && order("Flag") < order(PROVENANCE));
        let listed = [
            (file_name("Patient", 1), "Patient", 2),
            (file_name(ERROR_KIND, 1), ERROR_KIND, 1),
        ];
        let m = manifest("t", "r", true, "http://h/fhir/_export/1", &listed);
        assert_eq!(
            m["output"][0]["url"],
            "http://h/fhir/_export/1/Patient-1.ndjson"
        );
        assert_eq!(m["output"].as_array().unwrap().len(), 1);
        assert_eq!(m["error"][0]["type"], "OperationOutcome");
    }
}
