//! The INS on the FHIR Patient (docs/fhir.md), through HTTP against the real binary: a validated
//! identity carries its INS as the French core profile `FRCorePatientINSProfile`
//! (`hl7.fhir.fr.core`) slices it (INS-NIR, or INS-NIA for a temporary number, by the OID the
//! identity gave), with the identity reliability extension `VALI`; a provisional, doubtful or
//! fictitious identity carries no INS, an INS removed (PAM-FR A47) is gone. The profile's
//! constraints are FHIRPath expressions, evaluated on our Patients by the Python `fhirpathpy`
//! (installed by `.ci/run` beside `fhir.resources`, which checks each Patient against FHIR R4).
use journey_proto::v1::{self, event::Payload, IdentityStatus, Sex};
use journey_tests::*;
use serde_json::{json, Value};
use std::process::Command;

const NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
const NIA: &str = "urn:oid:1.2.250.1.213.1.4.9";
const RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";

/// The profile's constraints (FR Core 2.2, `input/fsh/profiles/FRCorePatientINSProfile.fsh` and
/// the reliability extension's invariants), each a FHIRPath expression that must be true, by
/// name. The profile's own apply to a Patient carrying an INS (the profile is the INS's), the
/// extension's to every Patient.
fn profile_constraints() -> Vec<(&'static str, String)> {
    let status = format!("extension('{RELIABILITY}').extension('identityStatus').value");
    let vali = format!("({status}.exists(code = 'VALI'))");
    let ins_slice = |system: &str, code: &str, usage: &str| {
        format!(
            "identifier.where(system = '{system}').all(use = '{usage}' and value.exists() and \
             type.coding.where(system = 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203' and code = '{code}').exists())"
        )
    };
    vec![
        (
            "fr-core-1",
            format!(
                "{vali} implies (identifier.where(system = '{NIR}' and use = 'official').exists() \
                 or identifier.where(system = '{NIA}' and use = 'temp').exists() \
                 or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.10' and use = 'official').exists() \
                 or identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.11' and use = 'official').exists())"
            ),
        ),
        (
            "fr-core-2",
            format!(
                "{vali} implies (identifier.where(use = 'official').count() = 1 \
                 or identifier.where(system = '{NIA}' and use = 'temp').exists())"
            ),
        ),
        (
            "fr-core-identity-reliability-1",
            format!(
                "extension('{RELIABILITY}').all(extension('comment').value.coding.exists(code = 'DOUT' or code = 'FICT') \
                 implies extension('identityStatus').value.exists(code = 'PROV'))"
            ),
        ),
        (
            "fr-core-identity-reliability-2",
            format!(
                "extension('{RELIABILITY}').all(extension('comment').value.coding.where(code = 'FICT').exists() \
                 implies extension('comment').value.coding.where(code = 'DOUT').empty())"
            ),
        ),
        (
            "identityStatus from fr-core-vs-identity-status (required)",
            format!(
                "{status}.all(system = 'https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status' \
                 and (code = 'PROV' or code = 'VALI' or code = 'RECUP' or code = 'QUAL'))"
            ),
        ),
        ("identifier[INS-NIR]", ins_slice(NIR, "INS-NIR", "official")),
        ("identifier[INS-NIA]", ins_slice(NIA, "INS-NIA", "temp")),
        (
            "an INS only with identityReliability (1..*)",
            format!(
                "identifier.where(system = '{NIR}' or system = '{NIA}').exists() implies {vali}"
            ),
        ),
        (
            "INS traits: gender (male | female | unknown), birthDate, one official name with one given",
            format!(
                "{vali} implies ((gender = 'male' or gender = 'female' or gender = 'unknown') \
                 and birthDate.exists() and name.where(use = 'official').count() = 1 \
                 and name.where(use = 'official').family.exists() \
                 and name.where(use = 'official').given.count() = 1)"
            ),
        ),
    ]
}

/// Each Patient checked by `fhir.resources` (FHIR R4) and each of the profile's constraints
/// evaluated on it by `fhirpathpy`: the constraints that fail, by patient.
fn broken_constraints(patients: &[Value]) -> Vec<String> {
    let carries_ins = "identifier.where(system.startsWith('urn:oid:1.2.250.1.213.1.4.')).exists()";
    let python = checker_python(
        "fhirpathpy",
        "'fhir.resources==6.5.0' 'pydantic<2' fhirpathpy",
    );
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.json");
    let constraints: Vec<Value> = profile_constraints()
        .into_iter()
        .map(|(name, expression)| {
            let everyone = name.starts_with("fr-core-identity-reliability");
            json!([
                name,
                if everyone { "true" } else { carries_ins },
                expression
            ])
        })
        .collect();
    std::fs::write(
        &input,
        json!({ "patients": patients, "constraints": constraints }).to_string(),
    )
    .unwrap();
    let script = r#"
import json, sys
from fhir.resources import construct_fhir_element
from fhirpathpy import evaluate
from fhirpathpy.models import models
data = json.load(open(sys.argv[1]))
for p in data["patients"]:
    construct_fhir_element("Patient", p)
    for name, applies, expression in data["constraints"]:
        if evaluate(p, applies, {}, models["r4"]) != [True]:
            continue
        if evaluate(p, expression, {}, models["r4"]) != [True]:
            print(p["id"] + ": " + name)
print("checked", len(data["patients"]))
"#;
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && stdout.contains(&format!("checked {}", patients.len())),
        "fhir.resources or fhirpathpy refused:\n{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.starts_with("checked"))
        .map(str::to_string)
        .collect()
}

fn registered(patient: &str, status: IdentityStatus, ins: &str, oid: &str) -> v1::Event {
    event(
        patient,
        ts(86_400),
        Payload::PatientRegistered(v1::PatientRegistered {
            ins: ins.into(),
            ins_oid: oid.into(),
            identity_status: status as i32,
            local_id: format!("IPP-{patient}"),
            birth_date: "1941-03-02".into(),
            sex: Sex::Female as i32,
            family_name: "MARTIN".into(),
            given_name: "Jeanne".into(),
            ..Default::default()
        }),
    )
}

fn updated(patient: &str, update: v1::IdentityUpdated) -> v1::Event {
    event(patient, ts(3_600), Payload::IdentityUpdated(update))
}

/// The identifiers of a Patient by system: (use, type code, value).
fn ins_of(patient: &Value) -> Vec<(String, String, String, String)> {
    patient["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["system"].as_str().unwrap().starts_with("urn:oid:"))
        .map(|i| {
            let s = |v: &Value| v.as_str().unwrap_or("").to_string();
            (
                s(&i["system"]),
                s(&i["use"]),
                s(&i["type"]["coding"][0]["code"]),
                s(&i["value"]),
            )
        })
        .collect()
}

fn status_of(patient: &Value) -> Vec<String> {
    let Some(extensions) = patient["extension"].as_array() else {
        return Vec::new();
    };
    extensions
        .iter()
        .filter(|e| e["url"] == RELIABILITY)
        .flat_map(|e| e["extension"].as_array().unwrap())
        .map(|part| {
            let coding = if part["url"] == "identityStatus" {
                &part["valueCoding"]
            } else {
                &part["valueCodeableConcept"]["coding"][0]
            };
            format!(
                "{}={}",
                part["url"].as_str().unwrap(),
                coding["code"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn the_ins_of_a_validated_identity_follows_the_french_ins_profile() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = client::connect(&server.grpc, None).await.unwrap();
    let nir = "279035121518989";
    let events = vec![
        // Validated with the NIR's OID; then an update that changes the name only.
        registered(
            "VALI-NIR",
            IdentityStatus::Validated,
            nir,
            "1.2.250.1.213.1.4.8",
        ),
        updated(
            "VALI-NIR",
            v1::IdentityUpdated {
                family_name: "MARTIN-DURAND".into(),
                ..Default::default()
            },
        ),
        // A temporary number (NIA).
        registered(
            "VALI-NIA",
            IdentityStatus::Validated,
            "180012B00000042",
            "1.2.250.1.213.1.4.9",
        ),
        // An INS without a validated identity is not carried.
        registered(
            "PROV",
            IdentityStatus::Provisional,
            nir,
            "1.2.250.1.213.1.4.8",
        ),
        registered("DOUT", IdentityStatus::Doubtful, nir, "1.2.250.1.213.1.4.8"),
        registered("FICT", IdentityStatus::Fictitious, "", ""),
        registered("NONE", IdentityStatus::Unspecified, nir, ""),
        // Validated later; then its INS removed (A47), the identity still validated.
        registered("LATER", IdentityStatus::Provisional, "", ""),
        updated(
            "LATER",
            v1::IdentityUpdated {
                ins: nir.into(),
                ins_oid: "1.2.250.1.213.1.4.8".into(),
                identity_status: IdentityStatus::Validated as i32,
                ..Default::default()
            },
        ),
        registered(
            "REMOVED",
            IdentityStatus::Validated,
            nir,
            "1.2.250.1.213.1.4.8",
        ),
        updated(
            "REMOVED",
            v1::IdentityUpdated {
                ins_removed: true,
                ..Default::default()
            },
        ),
    ];
    append_batch(&mut log, events).await;

    let mut patients = Vec::new();
    for id in [
        "VALI-NIR", "VALI-NIA", "PROV", "DOUT", "FICT", "NONE", "LATER", "REMOVED",
    ] {
        let raw = http_exchange(&server.http, "GET", &format!("/fhir/Patient/{id}"), "", "").await;
        assert_eq!(http_status(&raw), 200, "{raw}");
        patients.push(serde_json::from_str::<Value>(http_body(&raw)).unwrap());
    }
    let by_id = |id: &str| patients.iter().find(|p| p["id"] == id).unwrap();

    // The INS-NIR slice: official, its type, the NIR's OID, the number; VALI.
    let p = by_id("VALI-NIR");
    assert_eq!(
        ins_of(p),
        [(NIR.into(), "official".into(), "INS-NIR".into(), nir.into())]
    );
    assert_eq!(status_of(p), ["identityStatus=VALI"]);
    assert_eq!(p["name"][0]["family"], "MARTIN-DURAND");
    assert_eq!(p["gender"], "female");
    // The local identifiers stay, `usual`: the INS is the one official identifier.
    let usual: Vec<&str> = p["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["use"] == "usual")
        .map(|i| i["system"].as_str().unwrap())
        .collect();
    assert_eq!(usual, ["urn:journey:patient", "urn:journey:local-id"]);
    // The profile's birth place (INSEE code) and birth list of given names are not in the
    // catalogue: the Patient claims FR Core Patient, not the INS profile (docs/fhir.md).
    assert_eq!(
        p["meta"]["profile"],
        json!(["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient"])
    );

    // A temporary number: the INS-NIA slice, `temp`.
    assert_eq!(
        ins_of(by_id("VALI-NIA")),
        [(
            NIA.into(),
            "temp".into(),
            "INS-NIA".into(),
            "180012B00000042".into()
        )]
    );

    // No INS without a validated identity; the status still said, the attribute kept.
    for id in ["PROV", "DOUT", "FICT", "NONE", "REMOVED"] {
        assert_eq!(ins_of(by_id(id)), [], "{id}");
    }
    assert_eq!(status_of(by_id("PROV")), ["identityStatus=PROV"]);
    assert_eq!(
        status_of(by_id("DOUT")),
        ["identityStatus=PROV", "comment=DOUT"]
    );
    assert_eq!(
        status_of(by_id("FICT")),
        ["identityStatus=PROV", "comment=FICT"]
    );
    assert_eq!(status_of(by_id("NONE")), Vec::<String>::new());
    assert_eq!(ins_of(by_id("LATER")).len(), 1, "validated by the update");
    assert_eq!(status_of(by_id("REMOVED")), ["identityStatus=VALI"]);

    // Every Patient valid FHIR R4 and within the profile's constraints.
    assert_eq!(broken_constraints(&patients), Vec::<String>::new());
    // The check does see a break: a second official identifier; an INS not `official`.
    let mut two_official = by_id("VALI-NIR").clone();
    two_official["identifier"][1]["use"] = json!("official");
    let mut secondary = by_id("VALI-NIR").clone();
    secondary["id"] = json!("SECONDARY");
    secondary["identifier"][0]["use"] = json!("secondary");
    assert_eq!(
        broken_constraints(&[two_official, secondary]),
        [
            "VALI-NIR: fr-core-2",
            "SECONDARY: fr-core-1",
            "SECONDARY: fr-core-2",
            "SECONDARY: identifier[INS-NIR]"
        ]
    );
}
