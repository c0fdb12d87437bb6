//! Observation: a telemonitoring measure, LOINC-coded with a UCUM quantity (French core vital
//! sign profiles for weight, SpO2 and heart rate).
use crate::{
    codes::{self, LOINC, UCUM},
    resource::{fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{Event, ObservationRecorded};
use serde_json::{json, Value};

pub fn build(patient_id: &str, e: &Event, o: &ObservationRecorded) -> Resource {
    let known = codes::measure(&o.measure, &o.unit);
    let id = fhir_id("Observation", &e.event_id);
    let code = match known {
        Some(m) => {
            let mut coding =
                vec![json!({ "system": LOINC, "code": m.loinc, "display": m.display })];
            if o.measure == "spo2" {
                // The vital-signs oxygen saturation profile asks for 2708-6 beside 59408-5.
                coding.push(json!({ "system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood" }));
            }
            json!({ "coding": coding, "text": o.measure })
        }
        None => {
            let mut c = codes::concept(o.code.as_ref()).unwrap_or_else(|| json!({}));
            c["text"] = json!(o.measure);
            c
        }
    };
    let category = if known.is_some_and(|m| !m.vital_sign) {
        ("laboratory", "Laboratory")
    } else {
        ("vital-signs", "Vital Signs")
    };
    let mut quantity = json!({ "value": o.value });
    match known {
        // A unit other than the table's is kept as sent, without claiming a UCUM code for it.
        Some(m) if o.unit.is_empty() || o.unit == m.ucum => {
            quantity["unit"] = json!(m.ucum);
            quantity["system"] = json!(UCUM);
            quantity["code"] = json!(m.ucum);
        }
        _ => put(&mut quantity, "unit", text(&o.unit)),
    }
    let mut body = json!({
        "resourceType": "Observation",
        "id": id,
        "meta": meta(e, known.and_then(|m| m.profile)),
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category.0,
            "display": category.1,
        }] }],
        "code": code,
        "subject": patient_ref(patient_id),
        "valueQuantity": quantity,
    });
    put(
        &mut body,
        "effectiveDateTime",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    put(
        &mut body,
        "device",
        text(&o.device_id).map(|d| json!({ "display": d })),
    );
    Resource {
        kind: "Observation",
        id,
        body,
    }
}
