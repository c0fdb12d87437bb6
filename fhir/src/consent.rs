//! Consent (FR Core Consent): a consent given (permit) or revoked (deny) to share with the
//! organisations it names (every one when it names none).
use crate::{
    codes::{coded, ACT_CODE, LOINC},
    resource::Body,
    resource::{fhir_id, instant, meta, patient_ref, put},
    Resource,
};
use journey_proto::v1::Event;
use serde_json::{json, Value};

pub fn build(
    patient_id: &str,
    e: &Event,
    scope: &str,
    organisations: &[String],
    given: bool,
) -> Resource {
    let id = fhir_id("Consent", &e.event_id);
    let actors: Vec<Value> = organisations
        .iter()
        .filter(|o| !o.is_empty())
        .map(|o| {
            json!({
                "role": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                    "display": "information recipient",
                }] },
                "reference": { "identifier": { "system": "urn:journey:organisation", "value": o }, "display": o },
            })
        })
        .collect();
    let mut provision = json!({ "type": if given { "permit" } else { "deny" } });
    if !actors.is_empty() {
        provision["actor"] = json!(actors);
    }
    if !scope.is_empty() {
        provision["code"] = json!([{ "text": scope }]);
    }
    let mut body = json!({
        "resourceType": "Consent",
        "id": id,
        "meta": meta(e, Some("fr-core-consent")),
        "status": "active",
        "scope": coded(
            "http://terminology.hl7.org/CodeSystem/consentscope",
            "patient-privacy",
            "Privacy Consent",
        ),
        "category": [{ "coding": [{ "system": LOINC, "code": "59284-0", "display": "Patient Consent" }] }],
        "patient": patient_ref(patient_id),
        "policyRule": if given {
            coded(ACT_CODE, "OPTIN", "opt-in")
        } else {
            coded(ACT_CODE, "OPTOUT", "opt-out")
        },
        "provision": provision,
    });
    put(
        &mut body,
        "dateTime",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    Resource {
        kind: "Consent",
        id,
        body: Body::Tree(body),
    }
}
