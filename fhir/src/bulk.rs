//! Bulk Data export (Bulk Data Access IG 2.0) as the mapping sees it: which resources an export
//! writes of a patient, its files' names and order, and the manifest. Pure: the jobs, the files
//! on disk and who may export are `fhir-api/src/export.rs`.
use crate::{
    bundle::Entry,
    query::{ExportAsk, PROVENANCE},
    Kind,
};
use journey_proto::v1::Event;
use serde_json::{json, Value};

/// What an export writes of a patient: of its resources (`events` mapped) and its events'
/// Provenances, those of the types asked, changed since `_since` (`meta.lastUpdated`, as
/// `$everything?_since=`).
pub fn selected<'a>(ask: &ExportAsk, patient: &str, events: &'a [Event]) -> Vec<Entry<'a>> {
    let wanted = |k: &str| ask.types.as_ref().is_none_or(|t| t.contains(&k));
    let mapped = ask
        .types
        .as_ref()
        .is_none_or(|t| t.iter().any(|k| *k != PROVENANCE));
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
    if let Some(since) = &ask.since {
        all.retain(|r| r.since(since));
    }
    all
}

/// A type's NDJSON file.
pub fn file_name(kind: &str) -> String {
    format!("{kind}.ndjson")
}

/// The type an export file's name holds (`Patient.ndjson`), if an export writes it.
pub fn file_kind(name: &str) -> Option<&'static str> {
    match name.strip_suffix(".ndjson")? {
        PROVENANCE => Some(PROVENANCE),
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
/// files are served, `listed` each type written and its count.
pub fn manifest(
    transaction_time: &str,
    request: &str,
    requires_token: bool,
    files_url: &str,
    listed: &[(&str, u64)],
) -> Value {
    let output: Vec<Value> = listed
        .iter()
        .map(|(kind, count)| {
            json!({
                "type": kind,
                "url": format!("{files_url}/{}", file_name(kind)),
                "count": count,
            })
        })
        .collect();
    json!({
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": requires_token,
        "output": output,
        "error": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_named_after_their_type() {
        assert_eq!(file_kind(&file_name("Encounter")), Some("Encounter"));
        assert_eq!(file_kind("Provenance.ndjson"), Some(PROVENANCE));
        assert_eq!(file_kind("../manifest.json"), None);
        assert_eq!(file_kind("Practitioner.ndjson"), None);
        assert!(order("Patient") < order("Flag") && order("Flag") < order(PROVENANCE));
        let m = manifest("t", "r", true, "http://h/fhir/_export/1", &[("Patient", 2)]);
        assert_eq!(
            m["output"][0]["url"],
            "http://h/fhir/_export/1/Patient.ndjson"
        );
    }
}
