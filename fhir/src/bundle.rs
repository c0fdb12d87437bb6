//! The searchset Bundle a search or `$everything` answers with, written straight to its bytes:
//! each entry's resource is written where it goes (no tree of the whole Bundle: a patient's
//! `$everything` is megabytes).
use crate::{provenance, Resource};
use journey_proto::v1::Event;
use std::io::Write;

/// An entry of a Bundle or an export: a mapped resource, or the Provenance of an event.
pub enum Entry<'a> {
    Resource(Resource),
    Provenance(&'a Event),
}

impl Entry<'_> {
    /// Its `meta.lastUpdated` (what `_since` compares).
    pub fn last_updated(&self) -> Option<String> {
        match self {
            Entry::Resource(r) => r.last_updated().map(str::to_string),
            Entry::Provenance(e) => provenance::last_updated(e),
        }
    }

    /// Whether it changed at or after `since` (the same format on both sides, UTC with
    /// milliseconds: the text order is the time order).
    pub fn since(&self, since: &str) -> bool {
        self.last_updated().as_deref() >= Some(since)
    }

    /// Its `status` (a Provenance has none).
    pub fn status(&self) -> Option<String> {
        match self {
            Entry::Resource(r) => r.status(),
            Entry::Provenance(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Resource(r) => r.kind,
            Entry::Provenance(_) => provenance::KIND,
        }
    }

    /// Its JSON appended to `out`.
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        match self {
            Entry::Resource(r) => r.write(out),
            Entry::Provenance(e) => provenance::write(e, out),
        }
    }

    /// Its id.
    fn id(&self) -> String {
        match self {
            Entry::Resource(r) => r.id.clone(),
            Entry::Provenance(e) => provenance::id(e),
        }
    }
}

/// A searchset of `entries`; `base` is the server's FHIR base URL (`http://host/fhir`),
/// `self_url` the request's own URL.
pub fn searchset(base: &str, self_url: &str, entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + entries.len() * 1536);
    write_searchset(&mut out, base, self_url, entries).expect("writing to memory");
    out
}

fn write_searchset(
    out: &mut Vec<u8>,
    base: &str,
    self_url: &str,
    entries: &[Entry],
) -> std::io::Result<()> {
    let text =
        |out: &mut Vec<u8>, s: &str| serde_json::to_writer(out, s).map_err(std::io::Error::other);
    write!(
        out,
        r#"{{"resourceType":"Bundle","type":"searchset","total":{},"link":[{{"relation":"self","url":"#,
        entries.len()
    )?;
    text(out, self_url)?;
    out.write_all(br#"}],"entry":["#)?;
    for (n, entry) in entries.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.write_all(br#"{"fullUrl":"#)?;
        text(out, &format!("{base}/{}/{}", entry.kind(), entry.id()))?;
        out.write_all(br#","resource":"#)?;
        entry.write(out)?;
        out.write_all(br#","search":{"mode":"match"}}"#)?;
    }
    out.write_all(b"]}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Body;
    use serde_json::{json, Value};

    #[test]
    fn a_searchset_holds_each_entry_with_its_address() {
        let e = Event {
            event_id: "e-1".into(),
            stream_version: 1,
            ..Default::default()
        };
        let r = Resource {
            kind: "Flag",
            id: "A\"1".into(),
            body: Body::Tree(json!({ "resourceType": "Flag", "id": "A\"1" })),
        };
        let bytes = searchset(
            "http://h/fhir",
            "http://h/fhir/Flag?patient=P\"1",
            &[Entry::Resource(r), Entry::Provenance(&e)],
        );
        let b: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(b["total"], 2);
        assert_eq!(b["link"][0]["url"], "http://h/fhir/Flag?patient=P\"1");
        assert_eq!(b["entry"][0]["fullUrl"], "http://h/fhir/Flag/A\"1");
        assert_eq!(b["entry"][0]["resource"]["resourceType"], "Flag");
        assert_eq!(b["entry"][1]["fullUrl"], "http://h/fhir/Provenance/e-1");
        assert_eq!(b["entry"][1]["resource"]["id"], "e-1");
        assert_eq!(b["entry"][1]["search"]["mode"], "match");
        let empty: Value = serde_json::from_slice(&searchset("b", "s", &[])).unwrap();
        assert_eq!(empty["entry"], json!([]));
    }
}
