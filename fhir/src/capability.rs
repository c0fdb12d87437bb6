//! The CapabilityStatement `GET /fhir/metadata` answers: what this server reads and searches.
use crate::{resource::FR_CORE, type_filter, Kind};
use serde_json::{json, Value};

/// The Bulk Data Access IG's operation definitions (`export`, `patient-export`, `group-export`).
const BULK_DATA: &str = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/";

/// The profile each type claims (FR Core where one exists).
fn profile(k: Kind) -> Option<&'static str> {
    match k {
        Kind::Patient => Some("fr-core-patient"),
        Kind::Encounter => Some("fr-core-encounter"),
        Kind::Condition => Some("fr-core-condition"),
        Kind::MedicationRequest => Some("fr-core-medication-request"),
        Kind::Consent => Some("fr-core-consent"),
        Kind::Appointment => Some("fr-core-appointment"),
        Kind::Procedure => Some("fr-core-procedure"),
        Kind::Observation
        | Kind::Flag
        | Kind::CarePlan
        | Kind::CareTeam
        | Kind::DocumentReference
        | Kind::Communication
        | Kind::Task => None,
    }
}

/// A type searched by patient.
fn searched(name: &str) -> Value {
    json!({
        "type": name,
        "interaction": [{ "code": "search-type" }],
        "searchParam": [{
            "name": "patient",
            "type": "reference",
            "documentation": "the patient's id; required, the only parameter",
        }],
    })
}

/// What an export takes: its parameters, and the search parameters `_typeFilter` serves on each
/// type (`also`: the types exported besides the mapped ones).
fn export_documentation(also: &[&str]) -> String {
    let filtered: Vec<String> = Kind::ALL
        .iter()
        .map(|k| k.name())
        .chain(also.iter().copied())
        .map(|kind| format!("{kind}: {}", type_filter::parameters(kind).join(", ")))
        .collect();
    format!(
        "_type, _since, _outputFormat (application/fhir+ndjson) and _typeFilter: <Type>?<parameter>=<value>[&…] (parameters ANDed, queries of a type ORed; tokens as code, system|code, system|; dates with the prefixes eq, ne, gt, lt, ge, le, sa, eb), with these search parameters: {}",
        filtered.join("; ")
    )
}

/// `version`: the server's; `date`: when this statement was last changed; `also`: the types the
/// server searches by patient besides the mapped ones (the Provenance it adds).
pub fn statement(version: &str, date: &str, also: &[&str]) -> Value {
    let mut resources: Vec<Value> = Kind::ALL
        .into_iter()
        .map(|k| {
            let mut r = match k {
                Kind::Patient => json!({
                    "type": "Patient",
                    "interaction": [{ "code": "read" }],
                    "operation": [{
                        "name": "everything",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                    }, {
                        "name": "export",
                        "definition": format!("{BULK_DATA}patient-export"),
                        "documentation": export_documentation(also),
                    }],
                }),
                _ => searched(k.name()),
            };
            if let Some(p) = profile(k) {
                r["supportedProfile"] = json!([format!("{FR_CORE}{p}")]);
            }
            if k == Kind::Patient {
                // A validated identity with its birth place and birth given names (`patient.rs`).
                r["supportedProfile"]
                    .as_array_mut()
                    .expect("the Patient's profiles")
                    .push(json!(format!("{FR_CORE}fr-core-patient-ins")));
            }
            r
        })
        .collect();
    resources.extend(also.iter().map(|t| searched(t)));
    resources.push(json!({
        "type": "Group",
        "documentation": "a territory (its id, e.g. CPTS-NORD): the patients with a stay there; read through its export only",
        "operation": [{
            "name": "export",
            "definition": format!("{BULK_DATA}group-export"),
            "documentation": export_documentation(also),
        }],
    }));
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": { "name": "journey", "version": version },
        "implementation": { "description": "patient journey backbone: FHIR R4 read API over the event log" },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "application/fhir+ndjson"],
        "rest": [{
            "mode": "server",
            "security": {
                "description": "Authorization: Bearer <token> (an API key or a JWT, as for gRPC); coordinators read the patients of their territory who did not revoke their organisation, auditors and admins every patient; every read is recorded in the access log",
            },
            "resource": resources,
            "operation": [{
                "name": "export",
                "definition": format!("{BULK_DATA}export"),
                "documentation": export_documentation(also),
            }],
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exports_name_the_search_parameters_of_type_filter() {
        let s = statement("1", "2026-12-05", &["Provenance"]);
        let said = s["rest"][0]["operation"][0]["documentation"]
            .as_str()
            .unwrap();
        assert!(
            said.contains("Observation: status, code, category, date, _lastUpdated"),
            "{said}"
        );
        assert!(said.contains("Provenance: _lastUpdated"), "{said}");
        let group = s["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Group")
            .unwrap();
        assert_eq!(group["operation"][0]["documentation"].as_str(), Some(said));
    }
}
