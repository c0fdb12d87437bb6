//! The INS on the FHIR Patient (docs/fhir.md), through HTTP against the real binary: a validated
//! identity carries its INS as the French core profile `FRCorePatientINSProfile`
//! (`hl7.fhir.fr.core`) slices it (INS-NIR, or INS-NIA for a temporary number, by the OID the
//! identity gave), with the identity reliability extension `VALI`; a provisional, doubtful or
//! fictitious identity carries no INS, an INS removed (PAM-FR A47) is gone. A validated identity
//! whose birth place (INSEE code) and list of birth given names are known, with every other trait
//! the profile requires, claims `fr-core-patient-ins`; one that lacks any does not. A malformed
//! INSEE code is refused at the log (gRPC) and over HL7 (the ACK names PID-11), nothing written.
//! The profile's constraints are FHIRPath expressions, evaluated on our Patients by the Python
//! `fhirpathpy` (installed by `.ci/run` beside `fhir.resources`, which checks each Patient against
//! FHIR R4).
use journey_proto::v1::{self, event::Payload, IdentityStatus, Sex};
use journey_tests::*;
use serde_json::{json, Value};
use std::process::Command;

mod hl7_mllp;
use hl7_mllp::*;

const NIR: &str = "urn:oid:1.2.250.1.213.1.4.8";
const NIA: &str = "urn:oid:1.2.250.1.213.1.4.9";
const RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";
const FR_CORE_PATIENT: &str = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient";
const INS_PROFILE: &str = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins";
const BIRTH_PLACE: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";
const INSEE_CODE: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code";
const BIRTH_LIST: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name";
const COMMUNES: &str = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM";
const COUNTRIES: &str = "https://mos.esante.gouv.fr/NOS/TRE_R20-Pays/FHIR/TRE-R20-Pays";

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

/// The INS profile's own cardinalities and bindings beyond FR Core Patient
/// (`FRCorePatientINSProfile.fsh`), each a FHIRPath expression that must hold on a Patient that
/// claims the profile (`INS profile: …`, by name).
fn ins_profile_constraints() -> Vec<(&'static str, String)> {
    let place = format!("extension('{BIRTH_PLACE}')");
    let insee = format!("{place}.value.extension('{INSEE_CODE}')");
    let official = "name.where(use = 'official')";
    vec![
        (
            "INS profile: extension[identityReliability] 1..*",
            format!("extension('{RELIABILITY}').exists()"),
        ),
        (
            "INS profile: extension[birthPlace] 1..1, valueAddress.extension[inseeCode] 1..1",
            format!(
                "{place}.count() = 1 and {place}.value.exists() and {insee}.count() = 1 \
                 and {insee}.value.code.matches('^([0-9]{{5}}|2[AB][0-9]{{3}})$')"
            ),
        ),
        (
            "INS profile: identifier 1.., an INS slice",
            "identifier.where(system = 'urn:oid:1.2.250.1.213.1.4.8' or system = 'urn:oid:1.2.250.1.213.1.4.9' \
             or system = 'urn:oid:1.2.250.1.213.1.4.10' or system = 'urn:oid:1.2.250.1.213.1.4.11').exists()"
                .to_string(),
        ),
        (
            "INS profile: gender 1..1 from fr-core-vs-patient-gender-INS, birthDate 1..",
            "(gender = 'male' or gender = 'female' or gender = 'unknown') and birthDate.exists()"
                .to_string(),
        ),
        (
            "INS profile: name[officialName] 1..1, family, given 1..1, extension[birth-list-given-name] 1..1",
            format!(
                "{official}.count() = 1 and {official}.family.exists() and {official}.given.count() = 1 \
                 and {official}.extension('{BIRTH_LIST}').count() = 1 \
                 and {official}.extension('{BIRTH_LIST}').value.exists()"
            ),
        ),
        (
            "INS profile: meta.profile[fr-ins-canonical] 0..1",
            format!("meta.profile.where($this = '{INS_PROFILE}').count() = 1"),
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
    let claims_ins = format!("meta.profile.where($this = '{INS_PROFILE}').exists()");
    let constraints: Vec<Value> = profile_constraints()
        .into_iter()
        .chain(ins_profile_constraints())
        .map(|(name, expression)| {
            let applies = if name.starts_with("fr-core-identity-reliability") {
                "true"
            } else if name.starts_with("INS profile:") {
                claims_ins.as_str()
            } else {
                carries_ins
            };
            json!([name, applies, expression])
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
    // Neither the birth place (INSEE code) nor the list of birth given names is known: the
    // Patient claims FR Core Patient, not the INS profile (docs/fhir.md).
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

/// A validated identity with its INS traits: the birth place's INSEE code and the list of birth
/// given names, beside the registration's name, sex and birth date.
fn registered_with(
    patient: &str,
    status: IdentityStatus,
    place: &str,
    names: &str,
    sex: Sex,
) -> v1::Event {
    let mut e = registered(patient, status, "279035121518989", "1.2.250.1.213.1.4.8");
    if let Some(Payload::PatientRegistered(r)) = &mut e.payload {
        r.birth_place_code = place.into();
        r.birth_given_names = names.into();
        r.sex = sex as i32;
    }
    e
}

async fn patient(server: &Server, id: &str) -> Value {
    let raw = http_exchange(&server.http, "GET", &format!("/fhir/Patient/{id}"), "", "").await;
    assert_eq!(http_status(&raw), 200, "{raw}");
    serde_json::from_str(http_body(&raw)).unwrap()
}

fn profiles(p: &Value) -> Vec<String> {
    p["meta"]["profile"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// The birth place's INSEE code and its code system, when the Patient carries one.
fn birth_place_of(p: &Value) -> Option<(String, String)> {
    let place = p["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == BIRTH_PLACE)?;
    let insee = &place["valueAddress"]["extension"][0];
    assert_eq!(insee["url"], INSEE_CODE);
    Some((
        insee["valueCoding"]["system"].as_str()?.to_string(),
        insee["valueCoding"]["code"].as_str()?.to_string(),
    ))
}

/// The official name's given names and its list of birth given names.
fn names_of(p: &Value) -> (Vec<String>, Option<String>) {
    let name = &p["name"][0];
    assert_eq!(name["use"], "official");
    let given = name["given"]
        .as_array()
        .map(|g| g.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let list = name["extension"].as_array().and_then(|es| {
        es.iter()
            .find(|e| e["url"] == BIRTH_LIST)
            .map(|e| e["valueString"].as_str().unwrap().to_string())
    });
    (given, list)
}

#[tokio::test]
async fn a_validated_identity_with_its_birth_place_and_names_claims_the_ins_profile() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--no-reactor"]);
    let mut log = client::connect(&server.grpc, None).await.unwrap();
    let (vali, prov) = (IdentityStatus::Validated, IdentityStatus::Provisional);
    let list = "Jeanne Marie Louise";
    let events = vec![
        // Everything the INS profile asks: born in Paris.
        registered_with("FULL", vali, "75056", list, Sex::Female),
        // Born in Ajaccio (Corsica, 2A); a man whose sex is unknown to the referential is
        // `unknown`, which the INS binding takes.
        registered_with("CORSICA", vali, "2A004", "Pierre Yves", Sex::Unknown),
        // Born abroad (Morocco, the country's INSEE code), the traits given by a later update,
        // which also changes the given name alone: the list stays.
        registered_with("ABROAD", vali, "", "", Sex::Female),
        updated(
            "ABROAD",
            v1::IdentityUpdated {
                birth_place_code: "99350".into(),
                birth_given_names: "Jeanne  Fatima".into(),
                ..Default::default()
            },
        ),
        // One trait missing each: no claim.
        registered_with("NO-PLACE", vali, "", list, Sex::Female),
        registered_with("NO-NAMES", vali, "75056", "", Sex::Female),
        // Not validated, or no status said: the traits are carried, the INS and the claim are
        // not. (A validated identity of another sex than male, female or unknown cannot claim
        // it either: the fhir crate's unit tests.)
        registered_with("PROV-FULL", prov, "75056", list, Sex::Female),
        registered_with(
            "UNSAID-FULL",
            IdentityStatus::Unspecified,
            "75056",
            list,
            Sex::Female,
        ),
    ];
    append_batch(&mut log, events).await;

    let ids = [
        "FULL",
        "CORSICA",
        "ABROAD",
        "NO-PLACE",
        "NO-NAMES",
        "PROV-FULL",
        "UNSAID-FULL",
    ];
    let mut patients = Vec::new();
    for id in ids {
        patients.push(patient(&server, id).await);
    }
    let by_id = |id: &str| patients.iter().find(|p| p["id"] == id).unwrap();
    let claims = |id: &str| profiles(by_id(id)).contains(&INS_PROFILE.to_string());

    // The complete ones claim both profiles (the INS one derives from FR Core Patient).
    let full = by_id("FULL");
    assert_eq!(profiles(full), [FR_CORE_PATIENT, INS_PROFILE]);
    assert_eq!(
        birth_place_of(full),
        Some((COMMUNES.into(), "75056".into()))
    );
    // One given name (the first of the birth certificate), the whole list in the extension.
    assert_eq!(
        names_of(full),
        (vec!["Jeanne".to_string()], Some(list.to_string()))
    );
    assert_eq!(ins_of(full).len(), 1);
    assert!(claims("CORSICA"));
    assert_eq!(
        birth_place_of(by_id("CORSICA")),
        Some((COMMUNES.into(), "2A004".into()))
    );
    assert_eq!(by_id("CORSICA")["gender"], "unknown");
    assert!(claims("ABROAD"), "{}", by_id("ABROAD"));
    assert_eq!(
        birth_place_of(by_id("ABROAD")),
        Some((COUNTRIES.into(), "99350".into()))
    );
    assert_eq!(
        names_of(by_id("ABROAD")).1.as_deref(),
        Some("Jeanne  Fatima")
    );

    // A trait missing, or the identity not validated: FR Core Patient only, what is known kept.
    for id in ["NO-PLACE", "NO-NAMES", "PROV-FULL", "UNSAID-FULL"] {
        assert_eq!(profiles(by_id(id)), [FR_CORE_PATIENT], "{id}");
    }
    assert_eq!(birth_place_of(by_id("NO-PLACE")), None);
    assert_eq!(names_of(by_id("NO-PLACE")).1.as_deref(), Some(list));
    assert_eq!(names_of(by_id("NO-NAMES")).1, None);
    let prov_full = by_id("PROV-FULL");
    assert_eq!(ins_of(prov_full), []);
    assert_eq!(
        birth_place_of(prov_full),
        Some((COMMUNES.into(), "75056".into()))
    );

    // Every Patient valid FHIR R4, the claimed profile's constraints all hold.
    assert_eq!(broken_constraints(&patients), Vec::<String>::new());
    // The check sees a claim without its traits: no birth place; no list; two given names.
    let mut no_place = full.clone();
    no_place["id"] = json!("NO-PLACE-CLAIMED");
    no_place["extension"] = json!([full["extension"][0].clone()]);
    let mut no_list = full.clone();
    no_list["id"] = json!("NO-LIST-CLAIMED");
    no_list["name"][0]
        .as_object_mut()
        .unwrap()
        .remove("extension");
    let mut two_given = full.clone();
    two_given["id"] = json!("TWO-GIVEN");
    two_given["name"][0]["given"] = json!(["Jeanne", "Marie"]);
    let mut bad_code = full.clone();
    bad_code["id"] = json!("BAD-CODE");
    bad_code["extension"][1]["valueAddress"]["extension"][0]["valueCoding"]["code"] = json!("7505");
    assert_eq!(
        broken_constraints(&[no_place, no_list, two_given, bad_code]),
        [
            "NO-PLACE-CLAIMED: INS profile: extension[birthPlace] 1..1, valueAddress.extension[inseeCode] 1..1",
            "NO-LIST-CLAIMED: INS profile: name[officialName] 1..1, family, given 1..1, extension[birth-list-given-name] 1..1",
            "TWO-GIVEN: INS traits: gender (male | female | unknown), birthDate, one official name with one given",
            "TWO-GIVEN: INS profile: name[officialName] 1..1, family, given 1..1, extension[birth-list-given-name] 1..1",
            "BAD-CODE: INS profile: extension[birthPlace] 1..1, valueAddress.extension[inseeCode] 1..1",
        ]
    );
}

/// A malformed INSEE code is refused with the field named, over gRPC (InvalidArgument) and over
/// HL7 (an AE whose ERR points at PID-11); nothing is written either way. The same PAM-FR message
/// with a well-formed code is taken, and its Patient claims the INS profile.
#[tokio::test]
async fn a_malformed_insee_code_is_refused_and_nothing_is_written() {
    use tonic_types::StatusExt;
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up_with_mllp(dir.path(), &["--no-reactor"]);
    let mut log = client::connect(&server.grpc, None).await.unwrap();
    let before = head(&mut log).await;

    for (code, event_field) in [
        ("7505", "patient_registered.birth_place_code"),
        ("2C004", "patient_registered.birth_place_code"),
    ] {
        let e = registered_with(
            "BAD",
            IdentityStatus::Validated,
            code,
            "Jeanne",
            Sex::Female,
        );
        let status = log.append(batch(vec![e])).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
        let violation = status.get_details_bad_request().unwrap().field_violations[0].clone();
        assert_eq!(violation.field, format!("events[0].{event_field}"));
        assert!(
            status
                .message()
                .contains(&format!("{code:?} is not an INSEE code")),
            "{}",
            status.message()
        );
    }
    let update = updated(
        "BAD",
        v1::IdentityUpdated {
            birth_place_code: "Paris".into(),
            ..Default::default()
        },
    );
    let status = log.append(batch(vec![update])).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.get_details_bad_request().unwrap().field_violations[0].field,
        "events[0].identity_updated.birth_place_code"
    );
    assert_eq!(head(&mut log).await, before, "nothing appended");

    // PAM-FR: the birth place in PID-11 (type BDL, XAD-9), the list in PID-5.3 (type L).
    let message = |control: &str, code: &str| {
        format!(
            "MSH|^~\\&|GAM|CHU-A|JOURNEY|BACKBONE|{now}||ADT^A28^ADT_A05|{control}|P|2.5|||||FRA|UNICODE UTF-8|||2.11.2\r\
EVN||{now}\r\
PID|1||HL7-INS^^^CHU-A&1.2.250.1.71.4.2.7&ISO^PI~279035121518989^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||MARTIN^Jeanne^Jeanne Marie Louise^^^^L||19410302|F|||^^Marseille^^^FRA^BDL^^{code}|||||||||||||||||||||VALI\r",
            now = hl7_time(60)
        )
        .into_bytes()
    };
    let mut c = Mllp::connect(&mllp).await;
    let ack = c.send(&message("INS-BAD", "1305")).await;
    assert_eq!(ack.code(), "AE", "{}", ack.text());
    assert_eq!(ack.field("ERR", 2), "PID^1^11", "{}", ack.text());
    assert!(
        ack.field("ERR", 8)
            .contains("\"1305\" is not an INSEE code"),
        "{}",
        ack.text()
    );
    assert_eq!(head(&mut log).await, before, "nothing appended");
    assert!(patient_events(&mut log, "HL7-INS").await.is_empty());

    let ack = c.send(&message("INS-GOOD", "13055")).await;
    assert_eq!(ack.code(), "AA", "{}", ack.text());
    let p = patient(&server, "HL7-INS").await;
    assert_eq!(profiles(&p), [FR_CORE_PATIENT, INS_PROFILE]);
    assert_eq!(birth_place_of(&p), Some((COMMUNES.into(), "13055".into())));
    assert_eq!(
        names_of(&p),
        (
            vec!["Jeanne".to_string()],
            Some("Jeanne Marie Louise".to_string())
        )
    );
    assert_eq!(broken_constraints(&[p]), Vec::<String>::new());
}

/// `journey import fhir` reads FR Core's birth place and list of birth given names: an INS
/// Patient served by one node, imported into another, registers the patient with both; a Patient
/// whose birth place is no INSEE code is refused by the log, reported, and nothing of it written.
#[tokio::test]
async fn an_imported_fhir_patient_keeps_its_birth_place_and_names() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let source = Server::start(one.path(), &["--no-reactor"]);
    let mut log = client::connect(&source.grpc, None).await.unwrap();
    let list = "Jeanne Marie Louise";
    append_batch(
        &mut log,
        vec![registered_with(
            "ROUND-TRIP",
            IdentityStatus::Validated,
            "2B033",
            list,
            Sex::Female,
        )],
    )
    .await;
    let served = patient(&source, "ROUND-TRIP").await;
    assert_eq!(profiles(&served), [FR_CORE_PATIENT, INS_PROFILE]);
    let mut malformed = served.clone();
    malformed["id"] = json!("MALFORMED");
    malformed["extension"][1]["valueAddress"]["extension"][0]["valueCoding"]["code"] =
        json!("2C033");

    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("Patient.000.ndjson"),
        format!("{served}\n{malformed}\n"),
    )
    .unwrap();
    let target = Server::start(two.path(), &["--no-reactor"]);
    let out = Command::new(journey_bin())
        .args(["import", "fhir"])
        .arg(folder.path())
        .args(["--server", &target.grpc])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("refused rows: 1"), "{stdout}{stderr}");
    assert!(
        stderr.contains("\"2C033\" is not an INSEE code"),
        "{stdout}{stderr}"
    );

    let mut target_log = client::connect(&target.grpc, None).await.unwrap();
    let events = patient_events(&mut target_log, "ROUND-TRIP").await;
    let registration = events
        .iter()
        .find_map(|e| match &e.payload {
            Some(Payload::PatientRegistered(r)) => Some(r.clone()),
            _ => None,
        })
        .expect("a registration");
    assert_eq!(
        (
            registration.birth_place_code.as_str(),
            registration.birth_given_names.as_str(),
            registration.given_name.as_str()
        ),
        ("2B033", list, "Jeanne")
    );
    assert!(patient_events(&mut target_log, "MALFORMED")
        .await
        .is_empty());
}
