//! The searchset Bundle a search or `$everything` answers with.
use crate::Resource;
use serde_json::{json, Value};

/// A searchset of `resources`; `base` is the server's FHIR base URL (`http://host/fhir`), `self_url`
/// the request's own URL.
/// The resources move into the Bundle (a patient's `$everything` is megabytes: no copy).
pub fn searchset(base: &str, self_url: &str, resources: Vec<Resource>) -> Value {
    let total = resources.len();
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let mut entry = serde_json::Map::with_capacity(3);
            entry.insert("fullUrl".into(), json!(format!("{base}/{}", r.reference())));
            entry.insert("resource".into(), r.body);
            entry.insert("search".into(), json!({ "mode": "match" }));
            Value::Object(entry)
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": [{ "relation": "self", "url": self_url }],
        "entry": entries,
    })
}
