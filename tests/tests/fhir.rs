//! The FHIR R4 read API of `journey up` (docs/fhir.md), through HTTP against the real binary: a
//! hand-made journey comes back from `$everything` as one resource per mapped event (a stay and
//! an alert each one resource), every resource valid for the independent Python validator
//! `fhir.resources` 6.5.0 (FHIR R4 4.0.1; installed by `.ci/run`); searches by patient; and the
//! access rules: a coordinator of another territory and an organisation the patient refused get
//! the 404 of an unknown patient, the refusal recorded in the access log; no token 401, a partner
//! 403, an unsupported search parameter 400, each an OperationOutcome.
use journey_proto::v1::{self, event::Payload, AccessRecord, Code, Professional};
use journey_tests::*;
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-coord-t2 coordinator nurse-2 cpts-2 T2
key-0123456789-coord-refused coordinator nurse-9 cpts-9 T1
key-0123456789-partner partner hospital-a chu-a
key-0123456789-auditor auditor auditor-1 cnil
";
const COORDINATOR: &str = "key-0123456789-coord";
const OTHER_TERRITORY: &str = "key-0123456789-coord-t2";
const REFUSED_ORGANISATION: &str = "key-0123456789-coord-refused";
const PARTNER: &str = "key-0123456789-partner";
const AUDITOR: &str = "key-0123456789-auditor";

/// The Python of the virtual environment `.ci/run` makes, with `fhir.resources` 6.5.0.
fn validator_python() -> PathBuf {
    checker_python("fhir.resources", "'fhir.resources==6.5.0' 'pydantic<2'")
}

/// Validates `resource` (and, for a Bundle, each entry's resource on its own) with
/// `fhir.resources`; panics with the validator's words when it refuses.
fn validate(resource: &Value) {
    validate_all(std::slice::from_ref(resource))
}

/// [`validate`] for many resources, in one run of the validator.
fn validate_all(resources: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let file = dir.path().join(format!("{i}.json"));
            std::fs::write(&file, r.to_string()).unwrap();
            file
        })
        .collect();
    let script = r#"
import json, sys
from fhir.resources import construct_fhir_element
for path in sys.argv[1:]:
    data = json.load(open(path))
    try:
        construct_fhir_element(data["resourceType"], data)
        for entry in data.get("entry", []):
            construct_fhir_element(entry["resource"]["resourceType"], entry["resource"])
    except Exception as e:
        sys.exit(f"{path}: {e}")
print("valid", len(sys.argv) - 1)
"#;
    let out = Command::new(validator_python())
        .args(["-c", script])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains(&format!("valid {}", files.len())),
        "fhir.resources refuses a resource:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET path` with `key` as bearer token (none: no header): (status, content type, JSON body).
async fn get(server: &Server, path: &str, key: Option<&str>) -> (u16, String, Value) {
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let raw = http_exchange(&server.http, "GET", path, &auth, "").await;
    let content_type = http_header(&raw, "content-type").unwrap_or("").to_string();
    let body = serde_json::from_str(http_body(&raw))
        .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {raw}"));
    (http_status(&raw), content_type, body)
}

fn at(secs_ago: i64, payload: Payload) -> v1::Event {
    event("P1", ts(secs_ago), payload)
}

fn observation(measure: &str, value: f64, unit: &str) -> v1::Event {
    at(
        2 * 86_400,
        Payload::ObservationRecorded(v1::ObservationRecorded {
            measure: measure.into(),
            value,
            unit: unit.into(),
            ..Default::default()
        }),
    )
}

/// A stay in territory T1 with its transfer and discharge, a second admission cancelled, four
/// measures, a diagnosis, a prescription, an alert raised then resolved, and a consent revoked for
/// organisation cpts-9, a care plan with its referent, the GP named referent, an appointment
/// kept, a discharge letter, a medication reconciliation, a home visit: 22 events, 20 resources
/// besides the Patient (two stays, three movements, the visit, one CareTeam, the letter's
/// DocumentReference and Communication), and a Provenance per event.
fn journey() -> Vec<v1::Event> {
    let gp = Professional {
        id: "10003456789".into(),
        role: v1::Role::Gp as i32,
        name: "Dr Bernard".into(),
        ..Default::default()
    };
    let nurse = Professional {
        id: "10009876543".into(),
        role: v1::Role::HomeNurse as i32,
        name: "Mme Petit".into(),
        ..Default::default()
    };
    let second = admitted("P1", "S2", 86_400);
    let cancel = at(
        3600,
        Payload::AdmissionCancelled(v1::AdmissionCancelled {
            cancelled_event_id: second.event_id.clone(),
            ..Default::default()
        }),
    );
    vec![
        at(
            6 * 86_400,
            Payload::PatientRegistered(v1::PatientRegistered {
                local_id: "IPP-77".into(),
                birth_date: "1948-03-02".into(),
                sex: v1::Sex::Female as i32,
                gp: Some(gp.clone()),
                family_name: "Martin".into(),
                given_name: "Jeanne".into(),
                ..Default::default()
            }),
        ),
        admitted("P1", "S1", 5 * 86_400),
        at(
            4 * 86_400,
            Payload::Transferred(v1::Transferred {
                encounter_id: "S1".into(),
                from_unit: "cardio".into(),
                to_unit: "icu".into(),
                ..Default::default()
            }),
        ),
        discharged("P1", "S1", 3 * 86_400),
        observation("weight", 81.4, "kg"),
        observation("spo2", 93.0, "%"),
        observation("bp_systolic", 152.0, "mm[Hg]"),
        observation("glucose", 6.1, "mmol/L"),
        at(
            3 * 86_400,
            Payload::ConditionRecorded(v1::ConditionRecorded {
                diagnosis: Some(Code {
                    system: "ICD-10".into(),
                    code: "I50.0".into(),
                    display: "Congestive heart failure".into(),
                }),
                encounter_id: "S1".into(),
                ..Default::default()
            }),
        ),
        at(
            3 * 86_400,
            Payload::PrescriptionIssued(v1::PrescriptionIssued {
                prescription_id: "RX-1".into(),
                medication: Some(Code {
                    system: "ATC".into(),
                    code: "C03CA01".into(),
                    display: "furosemide".into(),
                }),
                dose: "40 mg once a day".into(),
                duration_days: 30,
                encounter_id: "S1".into(),
                ..Default::default()
            }),
        ),
        at(
            3 * 86_400,
            Payload::CarePlanEstablished(v1::CarePlanEstablished {
                care_plan_id: "CP-1".into(),
                goals: vec!["stable weight".into(), "no readmission".into()],
                symptoms_to_watch: vec!["breathlessness".into()],
                thresholds: vec![v1::AlertThreshold {
                    measure: "weight".into(),
                    low: 70.0,
                    high: 84.0,
                    severity: v1::Severity::High as i32,
                }],
                referents: vec![nurse.clone()],
                encounter_id: "S1".into(),
            }),
        ),
        at(
            3 * 86_400,
            Payload::DischargeLetterSent(v1::DischargeLetterSent {
                encounter_id: "S1".into(),
                channel: v1::LetterChannel::Mssante as i32,
                recipients: vec![gp.clone()],
                handed_to_patient: true,
                items_present: vec![
                    v1::LetterItem::ReasonForStay as i32,
                    v1::LetterItem::Medications as i32,
                ],
            }),
        ),
        at(
            3 * 86_400,
            Payload::MedicationReconciled(v1::MedicationReconciled {
                encounter_id: "S1".into(),
                discrepancies_found: 2,
                performed_by: Some(nurse.clone()),
            }),
        ),
        at(
            2 * 86_400 + 600,
            Payload::HomeVisitRecorded(v1::HomeVisitRecorded {
                professional: Some(nurse.clone()),
                channel: v1::ContactChannel::Visit as i32,
                duration_minutes: 45,
                ..Default::default()
            }),
        ),
        at(
            3 * 86_400,
            Payload::ReferentAssigned(v1::ReferentAssigned {
                role: v1::Role::Gp as i32,
                professional: Some(gp.clone()),
            }),
        ),
        at(
            3 * 86_400,
            Payload::AppointmentScheduled(v1::AppointmentScheduled {
                appointment_id: "AP-1".into(),
                kind: "J+7 GP".into(),
                due_at: Some(ts(86_400 * 2 - 3600)),
                with: Some(gp.clone()),
                encounter_id: "S1".into(),
            }),
        ),
        at(
            86_400 * 2 - 3600,
            Payload::AppointmentCompleted(v1::AppointmentCompleted {
                appointment_id: "AP-1".into(),
            }),
        ),
        at(
            2 * 86_400,
            Payload::AlertRaised(v1::AlertRaised {
                alert_id: "A1".into(),
                severity: v1::Severity::High as i32,
                rule: "weight_gain".into(),
                reason: "weight up 2 kg in 3 days".into(),
            }),
        ),
        at(
            86_400 + 60,
            Payload::AlertResolved(v1::AlertResolved {
                alert_id: "A1".into(),
                resolution: "diuretic adjusted".into(),
            }),
        ),
        at(
            86_400 + 30,
            Payload::ConsentRevoked(v1::ConsentRevoked {
                scope: "coordination".into(),
                organisations: vec!["cpts-9".into()],
            }),
        ),
        second,
        cancel,
    ]
}

/// The entries of a searchset Bundle, counted by resource type.
fn counted(bundle: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in bundle["entry"].as_array().unwrap() {
        *out.entry(e["resource"]["resourceType"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

fn entry<'a>(bundle: &'a Value, kind: &str, id: &str) -> &'a Value {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == kind && r["id"] == id)
        .unwrap_or_else(|| panic!("no {kind}/{id} in {bundle}"))
}

/// The codes of required bindings in FHIR R4 the resources of `bundle` use, checked against their
/// value sets (the validator checks structure and types, not value sets).
/// FHIR R4 EventStatus: a Procedure's or a Communication's status.
const EVENT_STATUS: &[&str] = &[
    "preparation",
    "in-progress",
    "not-done",
    "on-hold",
    "stopped",
    "completed",
    "entered-in-error",
    "unknown",
];

fn check_value_sets(bundle: &Value) {
    let one_of = |what: &str, v: &Value, set: &[&str]| {
        if let Some(code) = v.as_str() {
            assert!(set.contains(&code), "{what} {code:?} is not in {set:?}");
        }
    };
    one_of("Bundle.type", &bundle["type"], &["searchset"]);
    for entry in bundle["entry"].as_array().unwrap() {
        one_of(
            "search.mode",
            &entry["search"]["mode"],
            &["match", "include", "outcome"],
        );
        let r = &entry["resource"];
        let kind = r["resourceType"].as_str().unwrap();
        let status = &r["status"];
        match kind {
            "Patient" => {
                one_of(
                    "Patient.gender",
                    &r["gender"],
                    &["male", "female", "other", "unknown"],
                );
                for l in r["link"].as_array().into_iter().flatten() {
                    one_of(
                        "Patient.link.type",
                        &l["type"],
                        &["replaced-by", "replaces", "refer", "seealso"],
                    );
                }
            }
            "Encounter" => one_of(
                kind,
                status,
                &[
                    "planned",
                    "arrived",
                    "triaged",
                    "in-progress",
                    "onleave",
                    "finished",
                    "cancelled",
                    "entered-in-error",
                    "unknown",
                ],
            ),
            "Observation" => {
                one_of(
                    kind,
                    status,
                    &[
                        "registered",
                        "preliminary",
                        "final",
                        "amended",
                        "corrected",
                        "cancelled",
                        "entered-in-error",
                        "unknown",
                    ],
                );
                if r["valueQuantity"]["code"].is_string() {
                    assert_eq!(r["valueQuantity"]["system"], "http://unitsofmeasure.org");
                }
            }
            "Condition" => {
                one_of(
                    "Condition.clinicalStatus",
                    &r["clinicalStatus"]["coding"][0]["code"],
                    &[
                        "active",
                        "recurrence",
                        "relapse",
                        "inactive",
                        "remission",
                        "resolved",
                    ],
                );
                one_of(
                    "Condition.verificationStatus",
                    &r["verificationStatus"]["coding"][0]["code"],
                    &[
                        "unconfirmed",
                        "provisional",
                        "differential",
                        "confirmed",
                        "refuted",
                        "entered-in-error",
                    ],
                );
            }
            "MedicationRequest" => {
                one_of(
                    kind,
                    status,
                    &[
                        "active",
                        "on-hold",
                        "cancelled",
                        "completed",
                        "entered-in-error",
                        "stopped",
                        "draft",
                        "unknown",
                    ],
                );
                one_of(
                    "MedicationRequest.intent",
                    &r["intent"],
                    &[
                        "proposal",
                        "plan",
                        "order",
                        "original-order",
                        "reflex-order",
                        "filler-order",
                        "instance-order",
                        "option",
                    ],
                );
            }
            "Procedure" | "Communication" => one_of(kind, status, EVENT_STATUS),
            "CarePlan" => {
                one_of(
                    kind,
                    status,
                    &[
                        "draft",
                        "active",
                        "on-hold",
                        "revoked",
                        "completed",
                        "entered-in-error",
                        "unknown",
                    ],
                );
                one_of(
                    "CarePlan.intent",
                    &r["intent"],
                    &["proposal", "plan", "order", "option"],
                );
                for a in r["activity"].as_array().into_iter().flatten() {
                    one_of(
                        "CarePlan.activity.detail.status",
                        &a["detail"]["status"],
                        &[
                            "not-started",
                            "scheduled",
                            "in-progress",
                            "on-hold",
                            "completed",
                            "cancelled",
                            "stopped",
                            "unknown",
                            "entered-in-error",
                        ],
                    );
                    one_of(
                        "CarePlan.activity.detail.kind",
                        &a["detail"]["kind"],
                        &[
                            "Appointment",
                            "CommunicationRequest",
                            "DeviceRequest",
                            "MedicationRequest",
                            "NutritionOrder",
                            "Task",
                            "ServiceRequest",
                            "VisionPrescription",
                        ],
                    );
                }
                for g in r["contained"].as_array().into_iter().flatten() {
                    one_of(
                        "Goal.lifecycleStatus",
                        &g["lifecycleStatus"],
                        &[
                            "proposed",
                            "planned",
                            "accepted",
                            "active",
                            "on-hold",
                            "completed",
                            "cancelled",
                            "entered-in-error",
                            "rejected",
                        ],
                    );
                }
            }
            "CareTeam" => one_of(
                kind,
                status,
                &[
                    "proposed",
                    "active",
                    "suspended",
                    "inactive",
                    "entered-in-error",
                ],
            ),
            "Appointment" => {
                one_of(
                    kind,
                    status,
                    &[
                        "proposed",
                        "pending",
                        "booked",
                        "arrived",
                        "fulfilled",
                        "cancelled",
                        "noshow",
                        "entered-in-error",
                        "checked-in",
                        "waitlist",
                    ],
                );
                for p in r["participant"].as_array().into_iter().flatten() {
                    one_of(
                        "Appointment.participant.status",
                        &p["status"],
                        &["accepted", "declined", "tentative", "needs-action"],
                    );
                }
            }
            "DocumentReference" => {
                one_of(kind, status, &["current", "superseded", "entered-in-error"])
            }
            "Flag" => one_of(kind, status, &["active", "inactive", "entered-in-error"]),
            "Consent" => {
                one_of(
                    kind,
                    status,
                    &[
                        "draft",
                        "proposed",
                        "active",
                        "rejected",
                        "inactive",
                        "entered-in-error",
                    ],
                );
                one_of(
                    "Consent.provision.type",
                    &r["provision"]["type"],
                    &["deny", "permit"],
                );
            }
            "Task" => {
                one_of(
                    kind,
                    status,
                    &[
                        "draft",
                        "requested",
                        "received",
                        "accepted",
                        "rejected",
                        "ready",
                        "cancelled",
                        "in-progress",
                        "on-hold",
                        "failed",
                        "completed",
                        "entered-in-error",
                    ],
                );
                one_of(
                    "Task.intent",
                    &r["intent"],
                    &[
                        "unknown",
                        "proposal",
                        "plan",
                        "order",
                        "original-order",
                        "reflex-order",
                        "filler-order",
                        "instance-order",
                        "option",
                    ],
                );
            }
            "Provenance" => {
                for e in r["entity"].as_array().into_iter().flatten() {
                    one_of(
                        "Provenance.entity.role",
                        &e["role"],
                        &["derivation", "revision", "quotation", "source", "removal"],
                    );
                }
            }
            other => panic!("a resource type the test does not know: {other}"),
        }
    }
}

async fn accesses(server: &Server, patient: &str) -> Vec<AccessRecord> {
    let mut records = access_records(&server.grpc, Some(AUDITOR), of_patient(patient)).await;
    records.reverse();
    records
}

#[tokio::test]
async fn a_journey_reads_back_as_valid_fhir_to_whom_may_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let admin = admin.trim();
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let head = append_batch(&mut log, journey()).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;

    // The CapabilityStatement is open.
    let (status, content_type, metadata) = get(&server, "/fhir/metadata", None).await;
    assert_eq!(
        (status, metadata["resourceType"].as_str()),
        (200, Some("CapabilityStatement"))
    );
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    validate(&metadata);

    // $everything: the Patient and one resource per mapped event.
    let (status, content_type, everything) =
        get(&server, "/fhir/Patient/P1/$everything", Some(COORDINATOR)).await;
    assert_eq!(status, 200, "{everything}");
    assert!(
        content_type.starts_with("application/fhir+json"),
        "{content_type}"
    );
    assert_eq!(everything["type"], "searchset");
    let expected: BTreeMap<String, usize> = [
        ("Patient", 1),
        ("Encounter", 6),
        ("Observation", 4),
        ("Condition", 1),
        ("MedicationRequest", 1),
        ("Procedure", 1),
        ("CarePlan", 1),
        ("CareTeam", 1),
        ("Appointment", 1),
        ("DocumentReference", 1),
        ("Communication", 1),
        ("Flag", 1),
        ("Consent", 1),
        ("Task", 3),
        ("Provenance", 22),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_string(), n))
    .collect();
    assert_eq!(counted(&everything), expected);
    assert_eq!(everything["total"], 46);
    validate(&everything);
    check_value_sets(&everything);

    let stay = entry(&everything, "Encounter", "S1");
    assert_eq!(stay["status"], "finished");
    assert_eq!(stay["class"]["code"], "IMP");
    assert_eq!(
        stay["hospitalization"]["dischargeDisposition"]["coding"][0]["code"],
        "home"
    );
    assert_eq!(
        stay["location"].as_array().unwrap().len(),
        2,
        "cardio, then icu"
    );
    assert_eq!(
        stay["meta"]["versionId"], "4",
        "its discharge is the patient's 4th event"
    );
    assert_eq!(
        entry(&everything, "Encounter", "S2")["status"],
        "entered-in-error"
    );
    // One Encounter per movement, `partOf` its stay; the cancelled admission's entered in error.
    let movements: Vec<(&str, &str)> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["partOf"].is_object())
        .map(|r| {
            (
                r["partOf"]["reference"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        movements,
        [
            ("Encounter/S1", "finished"),
            ("Encounter/S1", "finished"),
            ("Encounter/S2", "entered-in-error"),
        ]
    );
    assert_eq!(entry(&everything, "Flag", "A1")["status"], "inactive");
    assert_eq!(
        entry(&everything, "Appointment", "AP-1")["status"],
        "fulfilled"
    );
    let plan = entry(&everything, "CarePlan", "CP-1");
    assert_eq!(plan["goal"].as_array().unwrap().len(), 2);
    assert_eq!(plan["careTeam"][0]["reference"], "CareTeam/P1.team");
    let team = entry(&everything, "CareTeam", "P1.team");
    let members: Vec<&str> = team["participant"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["member"]["display"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["Mme Petit", "Dr Bernard"]);
    let sent = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Communication")
        .unwrap();
    assert_eq!(sent["medium"][0]["coding"][0]["code"], "EMAILWRIT");
    assert_eq!(
        sent["recipient"].as_array().unwrap().len(),
        2,
        "the GP and the patient"
    );
    let rx = entry(&everything, "MedicationRequest", "RX-1");
    assert_eq!(
        rx["medicationCodeableConcept"]["coding"][0]["system"],
        "http://www.whocc.no/atc"
    );
    let loinc: Vec<(&str, &str)> = everything["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .map(|r| {
            (
                r["code"]["coding"][0]["code"].as_str().unwrap(),
                r["valueQuantity"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        loinc,
        [
            ("29463-7", "kg"),
            ("59408-5", "%"),
            ("8480-6", "mm[Hg]"),
            ("15074-8", "mmol/L")
        ]
    );

    // The Patient alone, and a search by patient; the auditor reads them too.
    let (status, _, patient) = get(&server, "/fhir/Patient/P1", Some(AUDITOR)).await;
    assert_eq!(status, 200, "{patient}");
    assert_eq!(patient["generalPractitioner"][0]["display"], "Dr Bernard");
    assert_eq!(patient["gender"], "female");
    assert_eq!(patient["meta"]["versionId"], "1");
    validate(&patient);
    let (status, _, provenances) =
        get(&server, "/fhir/Provenance?patient=P1", Some(COORDINATOR)).await;
    assert_eq!(status, 200, "{provenances}");
    assert_eq!(
        counted(&provenances),
        [("Provenance".to_string(), 22)].into()
    );
    assert!(
        metadata["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "Provenance"),
        "the CapabilityStatement names the Provenance search"
    );
    // And the Patient's two FR Core profiles: any identity, and a validated one with its birth
    // place and birth given names (the INS profile)
    let patient_profiles = metadata["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .map(|r| r["supportedProfile"].clone())
        .unwrap();
    assert_eq!(
        patient_profiles,
        serde_json::json!([
            "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient",
            "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins"
        ])
    );
    let (status, _, observations) =
        get(&server, "/fhir/Observation?patient=P1", Some(COORDINATOR)).await;
    assert_eq!(status, 200, "{observations}");
    assert_eq!(
        counted(&observations),
        [("Observation".to_string(), 4)].into()
    );
    validate(&observations);

    // The coordination items of the stay as Tasks: the letter, the reconciliation and the home
    // visit all done, each Task's version the event that did it, owned by the facility or the
    // referent named, with its due date.
    let (status, _, tasks) = get(&server, "/fhir/Task?patient=P1", Some(COORDINATOR)).await;
    assert_eq!(status, 200, "{tasks}");
    assert_eq!(counted(&tasks), [("Task".to_string(), 3)].into());
    validate(&tasks);
    check_value_sets(&tasks);
    let letter = entry(&tasks, "Task", "S1.discharge-letter");
    assert_eq!(letter["status"], "completed");
    assert_eq!(letter["focus"]["reference"], "Encounter/S1");
    assert_eq!(letter["for"]["reference"], "Patient/P1");
    assert!(
        letter["restriction"]["period"]["end"].is_string(),
        "{letter}"
    );
    assert!(
        letter["owner"]["identifier"]["value"].is_string(),
        "{letter}"
    );
    let letter_version = 1 + journey()
        .iter()
        .position(|e| matches!(e.payload, Some(Payload::DischargeLetterSent(_))))
        .unwrap();
    assert_eq!(
        letter["meta"]["versionId"],
        letter_version.to_string(),
        "the letter's event did it"
    );
    for id in ["S1.medication-reconciliation", "S1.first-contact"] {
        assert_eq!(entry(&tasks, "Task", id)["status"], "completed", "{id}");
    }

    // Another territory, an organisation the patient refused, and nobody's patient: one answer.
    let unknown = get(&server, "/fhir/Patient/P404/$everything", Some(COORDINATOR)).await;
    assert_eq!(unknown.0, 404, "{}", unknown.2);
    assert_eq!(unknown.2["issue"][0]["code"], "not-found");
    validate(&unknown.2);
    for key in [OTHER_TERRITORY, REFUSED_ORGANISATION] {
        let (status, _, body) = get(&server, "/fhir/Patient/P1/$everything", Some(key)).await;
        assert_eq!(status, 404, "{key}: {body}");
        assert_eq!(
            body.to_string().replace("P1", "P404"),
            unknown.2.to_string(),
            "{key}: the answer of an unknown patient"
        );
        let (status, _, body) = get(&server, "/fhir/Condition?patient=P1", Some(key)).await;
        assert_eq!(status, 404, "{key}: {body}");
    }

    // No token, an unknown one, a partner, an unsupported parameter.
    let (status, _, body) = get(&server, "/fhir/Patient/P1", None).await;
    assert_eq!(
        (status, body["issue"][0]["code"].as_str()),
        (401, Some("login"))
    );
    validate(&body);
    let raw = http_exchange(&server.http, "GET", "/fhir/Patient/P1", "", "").await;
    assert_eq!(http_header(&raw, "www-authenticate"), Some("Bearer"));
    let (status, _, _) = get(&server, "/fhir/Patient/P1", Some("key-not-issued-0123")).await;
    assert_eq!(status, 401);
    let (status, _, body) = get(&server, "/fhir/Patient/P1", Some(PARTNER)).await;
    assert_eq!(
        (status, body["issue"][0]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _, body) = get(
        &server,
        "/fhir/Observation?patient=P1&code=29463-7",
        Some(COORDINATOR),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("code: unsupported search parameter"),
        "{body}"
    );
    let (status, _, _) = get(&server, "/fhir/Observation", Some(COORDINATOR)).await;
    assert_eq!(status, 400, "the patient is required");
    // A read-only API: another method is refused with an OperationOutcome.
    let auth = format!("Authorization: Bearer {COORDINATOR}\r\n");
    let raw = http_exchange(&server.http, "DELETE", "/fhir/Patient/P1", &auth, "").await;
    assert_eq!(http_status(&raw), 405, "{raw}");
    assert_eq!(http_header(&raw, "allow"), Some("GET"));
    let body: Value = serde_json::from_str(http_body(&raw)).unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome");
    let (status, _, _) = get(&server, "/fhir/Practitioner?patient=P1", Some(COORDINATOR)).await;
    assert_eq!(status, 400, "a type the API does not serve");

    // Every read of P1 is in the access log with who asked and what they got, the refusals too.
    let records = accesses(&server, "P1").await;
    let seen = who_called(records.iter().filter(|r| r.call.starts_with("fhir/")));
    assert_eq!(
        seen,
        [
            ["nurse-1", "fhir/Patient/$everything", "ok"],
            ["auditor-1", "fhir/Patient", "ok"],
            ["nurse-1", "fhir/Provenance", "ok"],
            ["nurse-1", "fhir/Observation", "ok"],
            ["nurse-1", "fhir/Task", "ok"],
            ["nurse-2", "fhir/Patient/$everything", "permissiondenied"],
            ["nurse-2", "fhir/Condition", "permissiondenied"],
            ["nurse-9", "fhir/Patient/$everything", "permissiondenied"],
            ["nurse-9", "fhir/Condition", "permissiondenied"],
            ["hospital-a", "fhir/Patient", "permissiondenied"],
            ["nurse-1", "fhir/Observation", "invalidargument"],
            ["nurse-1", "fhir/Practitioner", "invalidargument"],
        ]
    );
    let unknown_read = accesses(&server, "P404").await;
    assert_eq!(unknown_read.len(), 1, "{unknown_read:?}");
    assert_eq!(unknown_read[0].outcome, "notfound");
}

/// What `$everything` must hold for `events` (one patient's), counted from the events themselves:
/// a resource per measure, diagnosis, prescription, reconciliation and consent event and per
/// diagnosis a stay or a visit carries, two per
/// letter (the document and its sending), one per stay, per movement (admission, transfer), per
/// emergency visit and per home visit or contact, one per alert, care plan and appointment, the
/// CareTeam when anyone was named referent, the Patient, and a Provenance per event.
fn expected_counts(events: &[v1::Event]) -> BTreeMap<String, usize> {
    // A Condition per coded diagnosis a stay or a visit carries.
    fn diagnoses(codes: &[Code], add: &mut impl FnMut(&str)) {
        for _ in codes.iter().filter(|c| !c.code.trim().is_empty()) {
            add("Condition");
        }
    }
    let mut n = BTreeMap::new();
    let mut stays = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    let mut plans = BTreeSet::new();
    let mut appointments = BTreeSet::new();
    let mut team = false;
    let mut add = |k: &str| *n.entry(k.to_string()).or_insert(0) += 1;
    add("Patient");
    for e in events {
        add("Provenance");
        match e.payload.as_ref().unwrap() {
            Payload::Admitted(a) => {
                stays.insert(a.encounter_id.clone());
                add("Encounter");
                diagnoses(&a.diagnoses, &mut add);
            }
            Payload::Discharged(d) => diagnoses(&d.diagnoses, &mut add),
            Payload::Transferred(_) => add("Encounter"),
            Payload::EmergencyVisit(v) => {
                add("Encounter");
                diagnoses(&v.diagnoses, &mut add);
            }
            Payload::HomeVisitRecorded(_) | Payload::ContactMade(_) => add("Encounter"),
            Payload::ObservationRecorded(_) => add("Observation"),
            Payload::ConditionRecorded(_) => add("Condition"),
            Payload::PrescriptionIssued(_) => add("MedicationRequest"),
            Payload::MedicationReconciled(_) => add("Procedure"),
            Payload::ConsentGiven(_) | Payload::ConsentRevoked(_) => add("Consent"),
            Payload::DischargeLetterSent(_) => {
                add("DocumentReference");
                add("Communication");
            }
            Payload::AlertRaised(a) => {
                alerts.insert(a.alert_id.clone());
            }
            Payload::CarePlanEstablished(c) => {
                plans.insert(c.care_plan_id.clone());
                team |= !c.referents.is_empty();
            }
            Payload::ReferentAssigned(r) => team |= r.professional.is_some(),
            Payload::AppointmentScheduled(a) => {
                appointments.insert(a.appointment_id.clone());
            }
            _ => {}
        }
    }
    for _ in &stays {
        add("Encounter");
    }
    for _ in &alerts {
        add("Flag");
    }
    for _ in &plans {
        add("CarePlan");
    }
    for _ in &appointments {
        add("Appointment");
    }
    if team {
        add("CareTeam");
    }
    n
}

/// Simulated journeys (`journey simulate`): every patient's `$everything` has a resource for each
/// mapped event (counted independently from the log) and validates.
#[tokio::test]
async fn simulated_journeys_read_back_whole_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = admin_token(&dir.path().join("data"));
    let admin = admin.as_str();
    let seeded = ["--patients", "25", "--days", "60", "--seed", "11"];
    simulate_into(&server.grpc, Some(admin), &seeded);
    let log = read_log(&server.grpc, Some(admin)).await;
    let head = log.iter().map(|e| e.position).max().unwrap();
    wait_projected_as(&server.grpc, head, Some(admin)).await;
    let by_patient = by_patient(log);
    assert!(by_patient.len() >= 20, "{} patients", by_patient.len());
    let mut coordination = v1::coordination_client::CoordinationClient::with_interceptor(
        client::channel(&server.grpc).await.unwrap(),
        client::token(Some(admin)).unwrap(),
    );

    let mut bundles = Vec::new();
    let mut tasks = 0;
    for (patient, events) in &by_patient {
        let path = format!("/fhir/Patient/{patient}/$everything");
        let (status, _, bundle) = get(&server, &path, Some(admin)).await;
        assert_eq!(status, 200, "{patient}: {bundle}");
        // Three Tasks (letter, reconciliation, first contact) per discharge the view follows.
        let followed = coordination
            .follow_up(v1::FollowUpRequest {
                patient_id: patient.clone(),
                as_of: None,
            })
            .await
            .map_or(0, |f| f.into_inner().discharges.len());
        let mut expected = expected_counts(events);
        if followed > 0 {
            expected.insert("Task".into(), 3 * followed);
            tasks += 3 * followed;
        }
        assert_eq!(counted(&bundle), expected, "{patient}");
        for entry in bundle["entry"].as_array().unwrap() {
            let version: u64 = entry["resource"]["meta"]["versionId"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=events.len() as u64).contains(&version), "{entry}");
        }
        check_value_sets(&bundle);
        bundles.push(bundle);
    }
    assert!(tasks > 0, "some discharges are followed");
    validate_all(&bundles);
}

/// `$everything?_since=` returns exactly the resources that changed from then on: a stay that was
/// discharged, the movement its discharge ended, a new measure, the two events' Provenances; not
/// the Patient or the other measure, untouched since.
#[tokio::test]
async fn since_returns_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let admin = admin.trim();
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let admission = admitted("P1", "S1", 5 * 86_400);
    let admission_id = admission.event_id.clone();
    let first = vec![
        at(
            6 * 86_400,
            Payload::PatientRegistered(v1::PatientRegistered {
                family_name: "Martin".into(),
                ..Default::default()
            }),
        ),
        admission,
        observation("weight", 80.0, "kg"),
    ];
    append_batch(&mut log, first).await;
    let (_, _, before) = get(&server, "/fhir/Patient/P1/$everything", Some(admin)).await;
    let last_known = before["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["resource"]["meta"]["lastUpdated"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .max()
        .unwrap();
    // The next batch is recorded at a later millisecond than anything shown so far.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = chrono::DateTime::parse_from_rfc3339(&last_known).unwrap()
        + chrono::Duration::milliseconds(1);
    let new_measure = observation("spo2", 95.0, "%");
    let new_measure_id = new_measure.event_id.clone();
    let discharge = discharged("P1", "S1", 86_400);
    let discharge_id = discharge.event_id.clone();
    let head = append_batch(&mut log, vec![discharge, new_measure]).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;

    let path = format!(
        "/fhir/Patient/P1/$everything?_since={}",
        since
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .replace('+', "%2B")
    );
    let (status, _, changed) = get(&server, &path, Some(admin)).await;
    assert_eq!(status, 200, "{changed}");
    let ids: BTreeSet<(String, String)> = changed["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let r = &e["resource"];
            (
                r["resourceType"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("Encounter", "S1"),
        ("Encounter", admission_id.as_str()),
        ("Observation", new_measure_id.as_str()),
        // The discharge opened the stay's coordination items.
        ("Task", "S1.discharge-letter"),
        ("Task", "S1.medication-reconciliation"),
        ("Task", "S1.first-contact"),
        ("Provenance", discharge_id.as_str()),
        ("Provenance", new_measure_id.as_str()),
    ]
    .into_iter()
    .map(|(k, i)| (k.to_string(), i.to_string()))
    .collect();
    assert_eq!(ids, expected);
    validate(&changed);

    let (status, _, body) = get(
        &server,
        "/fhir/Patient/P1/$everything?_since=last-week",
        Some(admin),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

/// The split deployment serves FHIR too: `journey serve coordination` reads the patient's stream
/// from the remote, secured log with its `--log-token`, and holds a coordinator to its territory
/// with its own coordination view; `journey serve readmission`, without one, refuses
/// coordinators.
#[tokio::test]
async fn a_split_read_side_serves_fhir_from_the_remote_log() {
    let dir = tempfile::tempdir().unwrap();
    let keys = private_file(
        &dir.path().join("keys.txt"),
        format!("{KEYS}key-0123456789-service service projector backbone\nkey-0123456789-admin admin root backbone\n"),
    );
    let data = dir.path().join("data").display().to_string();
    let log = secure_serve(&["serve", "event-log", "--data-dir", &data], &keys);
    let side = |side: &str, db: &str| {
        let db = format!("sqlite://{}", dir.path().join(db).display());
        secure_read_side(side, &log.grpc, "key-0123456789-service", &db, &keys)
    };
    let read_side = side("coordination", "c.sqlite");
    let admin = "key-0123456789-admin";
    let mut client = client::connect(&log.grpc, Some(admin)).await.unwrap();
    let head = append_batch(&mut client, journey()).await;
    wait_projected_as(&read_side.grpc, head, Some(admin)).await;

    let (status, _, everything) = get(
        &read_side,
        "/fhir/Patient/P1/$everything",
        Some(COORDINATOR),
    )
    .await;
    assert_eq!(status, 200, "{everything}");
    assert_eq!(everything["total"], 46, "with the stay's three Tasks");
    validate(&everything);
    let (status, _, _) = get(&read_side, "/fhir/Patient/P1", Some(OTHER_TERRITORY)).await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&read_side, "/fhir/Patient/P1", None).await;
    assert_eq!(status, 401);

    // A readmission read side has no coordination view: it cannot tell a coordinator's patients
    // and says so; an admin reads there too.
    let readmission = side("readmission", "r.sqlite");
    let (status, _, body) = get(&readmission, "/fhir/Patient/P1", Some(COORDINATOR)).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("no coordination view"),
        "{body}"
    );
    let (status, _, _) = get(&readmission, "/fhir/Patient/P1", Some(admin)).await;
    assert_eq!(status, 200);
}

/// `journey serve fhir`: the FHIR API as its own process over the remote, secured log, with its
/// own coordination view: a coordinator reads its patient's `$everything` there (every resource
/// valid), another territory gets the 404 and both reads are in the access log the process is
/// given (the log node's, read back through its Audit service); neither the dashboard nor the
/// coordination gRPC service is served there; a Bulk Data export starts there.
#[tokio::test]
async fn serve_fhir_is_the_fhir_api_alone_over_the_remote_log() {
    let dir = tempfile::tempdir().unwrap();
    let keys = private_file(
        &dir.path().join("keys.txt"),
        format!("{KEYS}key-0123456789-service service projector backbone\nkey-0123456789-admin admin root backbone\n"),
    );
    let data = dir.path().join("data");
    let log = secure_serve(
        &[
            "serve",
            "event-log",
            "--data-dir",
            &data.display().to_string(),
        ],
        &keys,
    );
    let db = format!("sqlite://{}", dir.path().join("fhir.sqlite").display());
    let access = format!("sqlite://{}", data.join("access-log.sqlite").display());
    let fhir = secure_serve(
        &[
            "serve",
            "fhir",
            "--log-url",
            &log.grpc,
            "--log-token",
            "key-0123456789-service",
            "--database-url",
            &db,
            "--access-log-url",
            &access,
        ],
        &keys,
    );
    let admin = "key-0123456789-admin";
    let mut client = client::connect(&log.grpc, Some(admin)).await.unwrap();
    let head = append_batch(&mut client, journey()).await;
    wait_projected_as(&fhir.grpc, head, Some(admin)).await;

    let (status, content_type, everything) =
        get(&fhir, "/fhir/Patient/P1/$everything", Some(COORDINATOR)).await;
    assert_eq!(status, 200, "{everything}");
    assert!(content_type.starts_with("application/fhir+json"));
    assert_eq!(everything["total"], 46);
    assert!(
        everything["entry"][0]["fullUrl"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/fhir/", fhir.http)),
        "addresses on the FHIR process: {}",
        everything["entry"][0]["fullUrl"]
    );
    validate(&everything);
    let (status, _, body) = get(&fhir, "/fhir/Patient/P1", Some(OTHER_TERRITORY)).await;
    assert_eq!(status, 404, "{body}");
    let records = accesses(&log, "P1").await;
    assert_eq!(
        who_called(records.iter().filter(|r| r.call.starts_with("fhir/"))),
        [
            ["nurse-1", "fhir/Patient/$everything", "ok"],
            ["nurse-2", "fhir/Patient", "permissiondenied"],
        ],
        "every read recorded by the FHIR process"
    );
    let (status, _, _) = get(&fhir, "/fhir/Patient/P1", None).await;
    assert_eq!(status, 401);

    // The FHIR door only: no dashboard, no Coordination service.
    let page = http_exchange(&fhir.http, "GET", "/", "", "").await;
    assert_eq!(http_status(&page), 404, "{page}");
    let mut coordination = v1::coordination_client::CoordinationClient::with_interceptor(
        client::channel(&fhir.grpc).await.unwrap(),
        client::token(Some(admin)).unwrap(),
    );
    let refused = coordination
        .follow_up(v1::FollowUpRequest {
            patient_id: "P1".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented, "{refused:?}");

    // Bulk Data export from there too.
    let raw = http_exchange(
        &fhir.http,
        "GET",
        "/fhir/$export",
        &format!("Authorization: Bearer {admin}\r\nPrefer: respond-async\r\n"),
        "",
    )
    .await;
    assert_eq!(http_status(&raw), 202, "{raw}");
    assert!(
        http_header(&raw, "content-location")
            .is_some_and(|l| l.starts_with(&format!("{}/fhir/_export/", fhir.http))),
        "{raw}"
    );
}
