//! The searchset Bundle a search or `$everything` answers with.
use crate::Resource;
use serde_json::{json, Value};

/// A searchset of `resources`; `base` is the server's FHIR base URL (`http://host/fhir`), `self_url`
/// the request's own URL.
pub fn searchset(base: &str, self_url: &str, resources: &[Resource]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .map(|r| {
            json!({
                "fullUrl": format!("{base}/{}", r.reference()),
                "resource": r.body,
                "search": { "mode": "match" },
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": resources.len(),
        "link": [{ "relation": "self", "url": self_url }],
        "entry": entries,
    })
}
