//! Observation: a telemonitoring measure, LOINC-coded with a UCUM quantity (French core vital
//! sign profiles for weight, SpO2 and heart rate). Written straight from the event (a patient has
//! them by the thousand).
use crate::{
    codes::{self, LOINC, UCUM},
    resource::{fhir_id, fhir_id_of, instant, Coding, Meta, Prefixed, Reference},
    Resource,
};
use journey_proto::v1::{Event, ObservationRecorded};
use serde::Serialize;

const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

#[derive(Serialize)]
struct Observation<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    id: &'a str,
    meta: Meta<'a>,
    status: &'static str,
    category: [Category; 1],
    code: Concept<'a>,
    subject: Reference<'a>,
    #[serde(rename = "valueQuantity")]
    value_quantity: Quantity<'a>,
    #[serde(rename = "effectiveDateTime", skip_serializing_if = "Option::is_none")]
    effective: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<Display<'a>>,
}

#[derive(Serialize)]
struct Category {
    coding: [Coding<'static>; 1],
}

#[derive(Serialize)]
struct Concept<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    coding: Vec<Coding<'a>>,
    text: &'a str,
}

#[derive(Serialize)]
struct Quantity<'a> {
    value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
}

#[derive(Serialize)]
struct Display<'a> {
    display: &'a str,
}

pub fn build(patient_id: &str, e: &Event, o: &ObservationRecorded) -> Resource {
    let known = codes::measure(&o.measure, &o.unit);
    let id = fhir_id("Observation", &e.event_id);
    let patient = fhir_id_of("Patient", patient_id);
    let system;
    let coding = match (&known, o.code.as_ref()) {
        (Some(m), _) => {
            let mut coding = vec![Coding {
                system: LOINC,
                code: m.loinc,
                display: m.display,
            }];
            if o.measure == "spo2" {
                // The vital-signs oxygen saturation profile asks for 2708-6 beside 59408-5.
                coding.push(Coding {
                    system: LOINC,
                    code: "2708-6",
                    display: "Oxygen saturation in Arterial blood",
                });
            }
            coding
        }
        (None, Some(c)) if !c.code.trim().is_empty() => {
            system = codes::system_uri(&c.system);
            vec![Coding {
                system: &system,
                code: &c.code,
                display: &c.display,
            }]
        }
        (None, _) => Vec::new(),
    };
    let category = match known.as_ref().is_some_and(|m| !m.vital_sign) {
        true => ("laboratory", "Laboratory"),
        false => ("vital-signs", "Vital Signs"),
    };
    let quantity = match &known {
        // A unit other than the table's is kept as sent, without claiming a UCUM code for it.
        Some(m) if o.unit.is_empty() || o.unit == m.ucum => Quantity {
            value: o.value,
            unit: Some(m.ucum),
            system: Some(UCUM),
            code: Some(m.ucum),
        },
        _ => Quantity {
            value: o.value,
            unit: (!o.unit.trim().is_empty()).then_some(o.unit.as_str()),
            system: None,
            code: None,
        },
    };
    let body = Observation {
        resource_type: "Observation",
        id: &id,
        meta: Meta::of(e, known.as_ref().and_then(|m| m.profile)),
        status: "final",
        category: [Category {
            coding: [Coding {
                system: CATEGORY,
                code: category.0,
                display: category.1,
            }],
        }],
        code: Concept {
            coding,
            text: &o.measure,
        },
        subject: Reference {
            reference: Prefixed("Patient/", &patient),
        },
        value_quantity: quantity,
        effective: instant(e.occurred_at.as_ref()),
        device: (!o.device_id.trim().is_empty()).then_some(Display {
            display: &o.device_id,
        }),
    };
    Resource::written("Observation", id.clone(), e, &body)
}
