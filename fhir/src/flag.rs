//! Flag: an alert, active until resolved (then inactive), its severity as the flag-priority
//! extension, the rule that fired as its code.
use crate::{
    codes,
    resource::Body,
    resource::{fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{AlertRaised, Event};
use serde_json::{json, Value};

pub struct Alert<'a> {
    raised: (&'a Event, &'a AlertRaised),
    resolved: Option<&'a Event>,
    last: &'a Event,
}

impl<'a> Alert<'a> {
    pub fn new(e: &'a Event, a: &'a AlertRaised) -> Self {
        Alert {
            raised: (e, a),
            resolved: None,
            last: e,
        }
    }

    pub fn acknowledged(&mut self, e: &'a Event) {
        self.last = e;
    }

    pub fn resolved(&mut self, e: &'a Event) {
        self.resolved = Some(e);
        self.last = e;
    }

    pub fn build(self, patient_id: &str) -> Resource {
        let (raised, a) = self.raised;
        let id = fhir_id("Flag", &a.alert_id);
        // The reason in words, else the rule's name, else that it is an alert a person raised.
        let words = [a.reason.as_str(), a.rule.as_str(), "alert"]
            .into_iter()
            .find(|w| !w.is_empty())
            .unwrap_or("alert");
        let mut code = json!({ "text": words });
        if !a.rule.is_empty() {
            code["coding"] = json!([{ "system": "urn:journey:alert-rule", "code": a.rule }]);
        }
        let mut period = json!({});
        put(
            &mut period,
            "start",
            instant(raised.occurred_at.as_ref()).map(Value::from),
        );
        if let Some(r) = self.resolved {
            put(
                &mut period,
                "end",
                instant(r.occurred_at.as_ref()).map(Value::from),
            );
        }
        let mut body = json!({
            "resourceType": "Flag",
            "id": id,
            "meta": meta(self.last, None),
            "status": if self.resolved.is_some() { "inactive" } else { "active" },
            "category": [{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/flag-category",
                "code": "clinical",
                "display": "Clinical",
            }] }],
            "code": code,
            "subject": patient_ref(patient_id),
            "period": period,
        });
        put(
            &mut body,
            "extension",
            codes::flag_priority(a.severity).map(|p| json!([p])),
        );
        put(
            &mut body,
            "author",
            text(&raised.source).map(|s| json!({ "display": s })),
        );
        Resource {
            kind: "Flag",
            id,
            body: Body::Tree(body),
        }
    }
}
