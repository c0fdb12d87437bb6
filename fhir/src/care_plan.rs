//! CarePlan: the plan set at discharge, its goals (contained Goals), the symptoms to watch and
//! the alert thresholds (one activity per measure watched), its referents as the patient's
//! CareTeam.
use crate::{
    codes::{self, LOINC},
    resource::Body,
    resource::{encounter_ref, fhir_id, instant, meta, patient_ref, put},
    Resource,
};
use journey_proto::v1::{CarePlanEstablished, Event, Severity};
use serde_json::{json, Value};

pub fn build(
    patient_id: &str,
    e: &Event,
    c: &CarePlanEstablished,
    care_team: Option<&str>,
) -> Resource {
    let raw = match c.care_plan_id.is_empty() {
        true => &e.event_id,
        false => &c.care_plan_id,
    };
    let id = fhir_id("CarePlan", raw);
    let goals: Vec<Value> = c
        .goals
        .iter()
        .filter(|g| !g.trim().is_empty())
        .enumerate()
        .map(|(i, g)| {
            json!({
                "resourceType": "Goal",
                "id": format!("goal-{}", i + 1),
                "lifecycleStatus": "active",
                "description": { "text": g },
                "subject": patient_ref(patient_id),
            })
        })
        .collect();
    let activities: Vec<Value> = c
        .thresholds
        .iter()
        .map(|t| {
            let code = match codes::measure(&t.measure, "") {
                Some(m) => json!({
                    "coding": [{ "system": LOINC, "code": m.loinc, "display": m.display }],
                    "text": t.measure,
                }),
                None => json!({ "text": t.measure }),
            };
            let severity = Severity::try_from(t.severity).map_or("unspecified".to_string(), |s| {
                s.as_str_name()
                    .trim_start_matches("SEVERITY_")
                    .to_lowercase()
            });
            json!({ "detail": {
                "kind": "ServiceRequest",
                "code": code,
                "status": "in-progress",
                "description": format!(
                    "alert ({severity}) when {} is below {} or above {}",
                    t.measure, t.low, t.high
                ),
            } })
        })
        .collect();
    let mut body = json!({
        "resourceType": "CarePlan",
        "id": id,
        "meta": meta(e, None),
        "identifier": [{ "system": "urn:journey:care-plan", "value": raw }],
        "status": "active",
        "intent": "plan",
        "title": "hospital-to-home care plan",
        "subject": patient_ref(patient_id),
    });
    put(
        &mut body,
        "created",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    if !c.encounter_id.is_empty() {
        put(&mut body, "encounter", Some(encounter_ref(&c.encounter_id)));
    }
    if !goals.is_empty() {
        let refs: Vec<Value> = goals
            .iter()
            .map(|g| json!({ "reference": format!("#{}", g["id"].as_str().unwrap_or_default()) }))
            .collect();
        put(&mut body, "goal", Some(json!(refs)));
        put(&mut body, "contained", Some(json!(goals)));
    }
    if !activities.is_empty() {
        put(&mut body, "activity", Some(json!(activities)));
    }
    let watch: Vec<&str> = c
        .symptoms_to_watch
        .iter()
        .map(String::as_str)
        .filter(|s| !s.trim().is_empty())
        .collect();
    if !watch.is_empty() {
        put(
            &mut body,
            "note",
            Some(json!([{ "text": format!("symptoms to watch: {}", watch.join(", ")) }])),
        );
    }
    if let Some(team) = care_team {
        put(
            &mut body,
            "careTeam",
            Some(json!([{ "reference": format!("CareTeam/{team}") }])),
        );
    }
    Resource {
        kind: "CarePlan",
        id,
        body: Body::Tree(body),
    }
}
