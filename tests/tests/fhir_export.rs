//! FHIR Bulk Data export of `journey up` (docs/fhir.md), through HTTP against the real binary:
//! kick-off (`Prefer: respond-async`, 202 and `Content-Location`), status polling (202 with
//! `X-Progress`, then 200 and the manifest), the NDJSON files with the same token, `DELETE`.
//! A simulated territory exports as many resources as `$everything` gives patient by patient,
//! every index stay of the readmission model among them, a sample valid for `fhir.resources`;
//! `_type` filters, `_typeFilter`'s search parameters narrow to exactly what they select, `_since`
//! returns exactly what changed; a coordinator exports its own territory only (the refusal in the
//! access log), a group holds exactly the patients `Coordination.FollowUp` gives its caller there
//! (SQLite and PostgreSQL); a cancelled export is gone; a server killed during an export leaves no
//! manifest, and its folder is removed at the next start.
use journey_proto::v1::{
    self, audit_client::AuditClient, coordination_client::CoordinationClient, event::Payload,
    readmission_client::ReadmissionClient, AccessRecord, AccessesRequest,
};
use journey_tests::client::{channel, token};
use journey_tests::*;
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 CPTS-NORD
key-0123456789-auditor auditor auditor-1 cnil
";
const COORDINATOR: &str = "key-0123456789-coord";
const AUDITOR: &str = "key-0123456789-auditor";
const ASYNC: &str = "Prefer: respond-async\r\n";

fn bearer(key: &str) -> String {
    format!("Authorization: Bearer {key}\r\n")
}

fn admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("data/admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// `GET path` as `key` with `extra` headers: the raw answer.
async fn get_raw(server: &Server, path: &str, key: &str, extra: &str) -> String {
    http_exchange(
        &server.http,
        "GET",
        path,
        &format!("{}{extra}", bearer(key)),
        "",
    )
    .await
}

/// The path of an absolute URL the server gave.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    rest[rest.find('/').unwrap()..].to_string()
}

/// Starts an export at `path` as `key`: the status address's path.
async fn kick_off(server: &Server, path: &str, key: &str) -> String {
    let raw = get_raw(server, path, key, ASYNC).await;
    assert_eq!(http_status(&raw), 202, "{path}: {raw}");
    path_of(http_header(&raw, "content-location").expect("Content-Location"))
}

/// Polls the status until the manifest; the progress lines seen meanwhile.
async fn finished(server: &Server, status: &str, key: &str) -> (Value, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut progress = Vec::new();
    loop {
        let raw = get_raw(server, status, key, "").await;
        match http_status(&raw) {
            202 => {
                progress.push(http_header(&raw, "x-progress").unwrap().to_string());
                assert!(http_header(&raw, "retry-after").is_some(), "{raw}");
            }
            200 => {
                assert!(http_header(&raw, "expires").is_some(), "{raw}");
                return (serde_json::from_str(http_body(&raw)).unwrap(), progress);
            }
            s => panic!("status {s}: {raw}"),
        }
        assert!(Instant::now() < deadline, "the export did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file of a manifest's `output` (a type may have several), read with `key`: type → its
/// resources.
async fn files(server: &Server, manifest: &Value, key: &str) -> BTreeMap<String, Vec<Value>> {
    listed_files(server, &manifest["output"], key).await
}

/// Every file of a manifest's `output` or `error` list, read with `key`: type → its resources.
async fn listed_files(server: &Server, listed: &Value, key: &str) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for o in listed.as_array().unwrap() {
        let raw = get_raw(server, &path_of(o["url"].as_str().unwrap()), key, "").await;
        assert_eq!(http_status(&raw), 200, "{raw}");
        assert_eq!(
            http_header(&raw, "content-type"),
            Some("application/fhir+ndjson")
        );
        let kind = o["type"].as_str().unwrap().to_string();
        let lines: Vec<Value> = http_body(&raw)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, o["count"].as_u64().unwrap(), "{kind}");
        assert!(lines.iter().all(|r| r["resourceType"] == kind.as_str()));
        out.entry(kind).or_default().extend(lines);
    }
    out
}

fn counts(files: &BTreeMap<String, Vec<Value>>) -> BTreeMap<String, usize> {
    files.iter().map(|(k, v)| (k.clone(), v.len())).collect()
}

/// Validates `resources` with `fhir.resources` 6.5.0 (as tests/tests/fhir.rs does), in one run.
fn validate_all(resources: &[&Value]) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sample.ndjson");
    let lines: Vec<String> = resources.iter().map(|r| r.to_string()).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let script = r#"
import json, sys
from fhir.resources import construct_fhir_element
n = 0
for line in open(sys.argv[1]):
    data = json.loads(line)
    try:
        construct_fhir_element(data["resourceType"], data)
    except Exception as e:
        sys.exit(f"{data['resourceType']}/{data['id']}: {e}")
    n += 1
print("valid", n)
"#;
    let python = checker_python("fhir.resources", "'fhir.resources==6.5.0' 'pydantic<2'");
    let out = Command::new(python)
        .args(["-c", script])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success()
            && String::from_utf8_lossy(&out.stdout).contains(&format!("valid {}", lines.len())),
        "fhir.resources refuses a resource:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn simulate(server: &Server, admin: &str, patients: &str) {
    let out = Command::new(journey_bin())
        .args(["simulate", "--patients", patients, "--days", "60"])
        .args(["--seed", "11", "--server", &server.grpc, "--token", admin])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The log's patients, and its head.
async fn patients_in_log(server: &Server, admin: &str) -> (BTreeSet<String>, u64) {
    let events = read_log(&server.grpc, Some(admin)).await;
    let head = events.last().map_or(0, |e| e.position);
    (events.into_iter().map(|e| e.patient_id).collect(), head)
}

/// The access-log records of `patient` (oldest first), or of every patient ("").
async fn accesses(server: &Server, patient: &str) -> Vec<AccessRecord> {
    let mut audit = AuditClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some(AUDITOR)).unwrap(),
    );
    let mut records = audit
        .accesses(AccessesRequest {
            patient_id: patient.into(),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records;
    records.reverse();
    records
}

/// The readmission model's index stays (one page: the simulated population has fewer).
async fn index_stays(server: &Server, key: &str) -> Vec<v1::IndexStay> {
    let mut readmission = ReadmissionClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some(key)).unwrap(),
    );
    let page = readmission
        .index_stays(v1::IndexStaysRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.next_page_token.is_empty());
    page.stays
}

/// A simulated population: the whole export holds, type by type, as many resources as
/// `$everything` gives patient by patient, and every index stay of the readmission model; a
/// sample validates; `_type` filters; the coordinator exports its own territory only; the export
/// is in the access log with its patients; DELETE cancels; the CLI verb writes the same files.
#[tokio::test]
async fn a_simulated_population_exports_whole_and_valid() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = admin_token(dir.path());
    let admin = admin.as_str();
    simulate(&server, admin, "25");
    let (patients, head) = patients_in_log(&server, admin).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;

    // The CapabilityStatement names the three exports.
    let raw = get_raw(&server, "/fhir/metadata", admin, "").await;
    let metadata: Value = serde_json::from_str(http_body(&raw)).unwrap();
    assert_eq!(metadata["rest"][0]["operation"][0]["name"], "export");
    let group = metadata["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Group")
        .unwrap();
    assert_eq!(group["operation"][0]["name"], "export");
    validate_all(&[&metadata]);

    let status = kick_off(&server, "/fhir/$export", admin).await;
    let (manifest, progress) = finished(&server, &status, admin).await;
    assert_eq!(manifest["requiresAccessToken"], true);
    assert!(manifest["request"]
        .as_str()
        .unwrap()
        .ends_with("/fhir/$export"));
    assert!(progress.iter().all(|p| !p.is_empty()), "{progress:?}");
    let exported = files(&server, &manifest, admin).await;

    // Type by type, what $everything gives for each patient, the Tasks of the coordination view
    // included; nothing in error.
    assert_eq!(manifest["error"], serde_json::json!([]));
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for p in &patients {
        let raw = get_raw(
            &server,
            &format!("/fhir/Patient/{p}/$everything"),
            admin,
            "",
        )
        .await;
        let bundle: Value = serde_json::from_str(http_body(&raw)).unwrap();
        for e in bundle["entry"].as_array().unwrap() {
            let kind = e["resource"]["resourceType"].as_str().unwrap().to_string();
            *expected.entry(kind).or_default() += 1;
        }
    }
    assert_eq!(counts(&exported), expected);
    assert!(expected["Task"] > 0, "{expected:?}");
    assert_eq!(exported["Patient"].len(), patients.len());
    // The read models: every index stay of the readmission model is an exported, finished stay.
    let encounters: BTreeMap<&str, &Value> = exported["Encounter"]
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    let stays = index_stays(&server, admin).await;
    assert!(!stays.is_empty());
    for s in &stays {
        let e = encounters.get(s.encounter_id.as_str()).unwrap_or_else(|| {
            panic!("index stay {} is not exported", s.encounter_id);
        });
        assert_eq!(e["status"], "finished", "{e}");
    }
    // A sample of each file validates.
    let sample: Vec<&Value> = exported.values().flat_map(|v| v.iter().take(40)).collect();
    validate_all(&sample);
    // The files on disk are the server's alone; the export is in the access log, with patients.
    let job = status.rsplit('/').next().unwrap();
    let folder = dir.path().join("data/fhir-exports").join(job);
    for f in std::fs::read_dir(&folder).unwrap() {
        let mode = f.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let first = patients.iter().next().unwrap();
    let recorded = accesses(&server, first).await;
    let export = recorded
        .iter()
        .find(|r| r.call == "fhir/$export")
        .expect("the export in the access log");
    assert_eq!(export.outcome, "ok");
    assert!(export.patients.contains(first), "{export:?}");

    // _type: only the types asked, Task among them.
    let status = kick_off(&server, "/fhir/$export?_type=Patient,Flag,Task", AUDITOR).await;
    let (typed, _) = finished(&server, &status, AUDITOR).await;
    let typed = files(&server, &typed, AUDITOR).await;
    assert_eq!(
        counts(&typed),
        [
            ("Patient".to_string(), expected["Patient"]),
            (
                "Flag".to_string(),
                expected.get("Flag").copied().unwrap_or(0)
            ),
            ("Task".to_string(), expected["Task"]),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    );
    // _typeFilter: of the Encounters those finished or in progress, of the Tasks those done (two
    // filters, two files a type at most); the other types asked whole.
    let status = kick_off(
        &server,
        "/fhir/$export?_type=Encounter,Task,Flag&_typeFilter=Encounter%3Fstatus%3Dfinished%2Cin-progress&_typeFilter=Task%3Fstatus%3Dcompleted",
        AUDITOR,
    )
    .await;
    let (filtered, _) = finished(&server, &status, AUDITOR).await;
    let filtered = files(&server, &filtered, AUDITOR).await;
    let of = |kind: &str, kept: &[&str]| {
        exported[kind]
            .iter()
            .filter(|r| kept.contains(&r["status"].as_str().unwrap()))
            .count()
    };
    let (kept, done) = (
        of("Encounter", &["finished", "in-progress"]),
        of("Task", &["completed"]),
    );
    assert!(kept < expected["Encounter"] && done < expected["Task"] && done > 0);
    assert_eq!(
        counts(&filtered),
        [
            ("Encounter".to_string(), kept),
            ("Task".to_string(), done),
            (
                "Flag".to_string(),
                expected.get("Flag").copied().unwrap_or(0)
            ),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect()
    );
    for refused in [
        "_typeFilter=Patient%3Factive%3Dtrue",
        "_typeFilter=Encounter%3Fcode%3DIMP",
        "_type=Patient&_typeFilter=Encounter%3Fstatus%3Dfinished",
    ] {
        let raw = get_raw(&server, &format!("/fhir/$export?{refused}"), admin, ASYNC).await;
        assert_eq!(http_status(&raw), 400, "{refused}: {raw}");
        assert!(http_body(&raw).contains("_typeFilter"), "{raw}");
    }
    // Someone else's export is not there for the coordinator.
    let raw = get_raw(&server, &status, COORDINATOR, "").await;
    assert_eq!(http_status(&raw), 404, "{raw}");

    // The coordinator: its own territory, each patient with a stay there.
    let status = kick_off(&server, "/fhir/Group/CPTS-NORD/$export", COORDINATOR).await;
    let (group, _) = finished(&server, &status, COORDINATOR).await;
    let group = files(&server, &group, COORDINATOR).await;
    let nord: BTreeSet<&str> = group["Patient"]
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(!nord.is_empty() && nord.len() < patients.len(), "{nord:?}");
    for e in &group["Encounter"] {
        let subject = e["subject"]["reference"].as_str().unwrap();
        assert!(nord.contains(subject.trim_start_matches("Patient/")), "{e}");
    }
    // A patient who revokes the coordinator's organisation leaves its exports.
    let revoking = nord.iter().next().unwrap().to_string();
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let revoked = event(
        &revoking,
        ts(60),
        Payload::ConsentRevoked(v1::ConsentRevoked {
            scope: "coordination".into(),
            organisations: vec!["cpts-1".into()],
        }),
    );
    let head = append_batch(&mut log, vec![revoked]).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;
    let status = kick_off(&server, "/fhir/Group/CPTS-NORD/$export", COORDINATOR).await;
    let (after, _) = finished(&server, &status, COORDINATOR).await;
    let after = files(&server, &after, COORDINATOR).await;
    let ids: BTreeSet<&str> = after["Patient"]
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let mut still = nord.clone();
    still.remove(revoking.as_str());
    assert_eq!(ids, still);
    // ... and its access-log record lists the others, not the patient who refused.
    let record = accesses(&server, "")
        .await
        .into_iter()
        .rev()
        .find(|r| r.call == "fhir/Group/$export" && r.outcome == "ok")
        .expect("the group export in the access log");
    let listed: BTreeSet<&str> = record.patients.iter().map(String::as_str).collect();
    assert_eq!(listed, still, "{record:?}");
    // ... not another's, nor every patient: refused, and the refusals recorded.
    for path in ["/fhir/Group/CPTS-SUD/$export", "/fhir/$export"] {
        let raw = get_raw(&server, path, COORDINATOR, ASYNC).await;
        assert_eq!(http_status(&raw), 403, "{path}: {raw}");
        let outcome: Value = serde_json::from_str(http_body(&raw)).unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
    }
    let refused: Vec<AccessRecord> = accesses(&server, "")
        .await
        .into_iter()
        .filter(|r| r.subject == "nurse-1" && r.outcome == "permissiondenied")
        .collect();
    assert_eq!(
        refused.iter().map(|r| r.call.as_str()).collect::<Vec<_>>(),
        ["fhir/Group/$export", "fhir/$export"],
        "{refused:?}"
    );
    assert!(refused[0].detail.contains("CPTS-SUD"), "{:?}", refused[0]);
    // Without Prefer: respond-async, and with an unknown parameter: 400.
    let raw = get_raw(&server, "/fhir/$export", admin, "").await;
    assert_eq!(http_status(&raw), 400, "{raw}");
    assert!(http_body(&raw).contains("Prefer: respond-async"), "{raw}");
    let raw = get_raw(&server, "/fhir/$export?_typeFilter=x", admin, ASYNC).await;
    assert_eq!(http_status(&raw), 400, "{raw}");

    // DELETE cancels: the status and the files are gone.
    let status = kick_off(&server, "/fhir/$export", admin).await;
    let raw = http_exchange(&server.http, "DELETE", &status, &bearer(admin), "").await;
    assert_eq!(http_status(&raw), 202, "{raw}");
    let raw = get_raw(&server, &status, admin, "").await;
    assert_eq!(http_status(&raw), 404, "{raw}");
    let job = status.rsplit('/').next().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!dir.path().join("data/fhir-exports").join(job).exists());

    // The CLI verb: the same endpoints, the files and the manifest in a folder.
    let to = dir.path().join("export");
    let out = Command::new(journey_bin())
        .args(["fhir", "export", "--to", to.to_str().unwrap()])
        .args(["--type", "Patient,Encounter", "--url", &server.http])
        .args(["--token", admin])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("exporting"));
    let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the export folder is private");
    let cli_manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(to.join("manifest.json")).unwrap()).unwrap();
    // Each file of the manifest in the folder, named as its address; the types asked, whole.
    let mut written: BTreeMap<String, usize> = BTreeMap::new();
    for o in cli_manifest["output"].as_array().unwrap() {
        let name = o["url"].as_str().unwrap().rsplit('/').next().unwrap();
        let text = std::fs::read_to_string(to.join(name)).unwrap();
        *written
            .entry(o["type"].as_str().unwrap().into())
            .or_default() += text.lines().count();
    }
    assert_eq!(
        written,
        [
            ("Encounter".to_string(), expected["Encounter"]),
            ("Patient".to_string(), patients.len())
        ]
        .into_iter()
        .collect()
    );

    // `--type-filter`: only the resources the search selects (here the finished stays and
    // movements, counted in the whole export above), the flag's text sent as `_typeFilter`.
    let encounters = |folder: &std::path::Path| -> Vec<Value> {
        let manifest: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
                .unwrap();
        manifest["output"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["type"] == "Encounter")
            .flat_map(|o| {
                let name = o["url"].as_str().unwrap().rsplit('/').next().unwrap();
                std::fs::read_to_string(folder.join(name))
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let finished = encounters(&to)
        .into_iter()
        .filter(|e| e["status"] == "finished")
        .count();
    assert!(finished > 0 && finished < expected["Encounter"]);
    let filtered = dir.path().join("export-finished");
    let out = Command::new(journey_bin())
        .args(["fhir", "export", "--to", filtered.to_str().unwrap()])
        .args([
            "--type",
            "Encounter",
            "--type-filter",
            "Encounter?status=finished",
        ])
        .args(["--url", &server.http, "--token", admin])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = encounters(&filtered);
    assert_eq!(kept.len(), finished);
    assert!(kept.iter().all(|e| e["status"] == "finished"));
    // A search the export cannot run: refused with the server's reason, no folder written.
    let refused = dir.path().join("export-refused");
    let out = Command::new(journey_bin())
        .args(["fhir", "export", "--to", refused.to_str().unwrap()])
        .args(["--type-filter", "Encounter?subject:missing=true"])
        .args(["--url", &server.http, "--token", admin])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("_typeFilter"), "{said}");
    assert!(!refused.join("manifest.json").exists());
}

/// `_since`: exactly the resources changed from then on, of every patient: the discharged stay,
/// the movement its discharge ended, the new measure, their Provenances; nothing of the patient
/// untouched since.
#[tokio::test]
async fn since_exports_exactly_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = admin_token(dir.path());
    let admin = admin.as_str();
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let admission = admitted("P1", "S1", 5 * 86_400);
    let admission_id = admission.event_id.clone();
    let registered = |p: &str| {
        event(
            p,
            ts(6 * 86_400),
            Payload::PatientRegistered(v1::PatientRegistered {
                family_name: "Martin".into(),
                ..Default::default()
            }),
        )
    };
    append_batch(
        &mut log,
        vec![
            registered("P1"),
            registered("P2"),
            admission,
            observation("P1", 80.0),
        ],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let new_measure = observation("P1", 81.0);
    let new_measure_id = new_measure.event_id.clone();
    let discharge = discharged("P1", "S1", 86_400);
    let discharge_id = discharge.event_id.clone();
    let head = append_batch(&mut log, vec![discharge, new_measure]).await;
    // The coordination view has the discharge: its Tasks changed with it.
    wait_projected_as(&server.grpc, head, Some(admin)).await;

    let path = format!(
        "/fhir/$export?_since={}",
        since
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            .replace('+', "%2B")
    );
    let status = kick_off(&server, &path, admin).await;
    let (manifest, _) = finished(&server, &status, admin).await;
    let exported = files(&server, &manifest, admin).await;
    let ids: BTreeSet<(String, String)> = exported
        .iter()
        .flat_map(|(k, v)| {
            v.iter()
                .map(move |r| (k.clone(), r["id"].as_str().unwrap().to_string()))
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("Encounter", "S1"),
        ("Encounter", admission_id.as_str()),
        ("Observation", new_measure_id.as_str()),
        ("Provenance", discharge_id.as_str()),
        ("Provenance", new_measure_id.as_str()),
        ("Task", "S1.discharge-letter"),
        ("Task", "S1.medication-reconciliation"),
        ("Task", "S1.first-contact"),
    ]
    .into_iter()
    .map(|(k, i)| (k.to_string(), i.to_string()))
    .collect();
    assert_eq!(ids, expected);
    // Only P1 changed: the access log names it, not P2.
    let record = accesses(&server, "P1")
        .await
        .into_iter()
        .find(|r| r.call == "fhir/$export")
        .unwrap();
    assert_eq!(record.patients, ["P1"]);
}

/// A patient whose events cannot be read (the fault-injection point
/// `JOURNEY_FAULT_FHIR_EXPORT_UNREADABLE`, as when the log fails to give them) is in the
/// manifest's `error` file, an OperationOutcome naming it; the export holds every other patient
/// whole, and the access log does not count it as exported. `journey fhir export` downloads
/// that error file too, and names it in its summary.
#[tokio::test]
async fn a_patient_that_cannot_be_read_goes_to_the_error_file() {
    let dir = tempfile::tempdir().unwrap();
    let lost = "P-LOST";
    let server = Server::start_with_env(
        dir.path(),
        &["--no-reactor"],
        &[("JOURNEY_FAULT_FHIR_EXPORT_UNREADABLE", lost)],
    );
    let mut log = server.client().await;
    let mut events = Vec::new();
    for p in [lost, "P-KEPT-1", "P-KEPT-2"] {
        events.push(admitted(p, &format!("S-{p}"), 3 * 86_400));
        events.push(observation(p, 80.0));
    }
    append_batch(&mut log, events).await;
    let raw = http_exchange(&server.http, "GET", "/fhir/$export", ASYNC, "").await;
    assert_eq!(http_status(&raw), 202, "{raw}");
    let status = path_of(http_header(&raw, "content-location").unwrap());
    let (manifest, _) = finished(&server, &status, "").await;

    let errors = listed_files(&server, &manifest["error"], "").await;
    let outcomes = &errors["OperationOutcome"];
    assert_eq!(outcomes.len(), 1, "{errors:?}");
    assert_eq!(outcomes[0]["issue"][0]["severity"], "error");
    let said = outcomes[0]["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        said.contains("patient P-LOST") && said.contains("could not be read"),
        "{said}"
    );
    let exported = files(&server, &manifest, "").await;
    let subjects: BTreeSet<&str> = exported["Observation"]
        .iter()
        .map(|o| o["subject"]["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        subjects,
        ["Patient/P-KEPT-1", "Patient/P-KEPT-2"]
            .into_iter()
            .collect()
    );
    assert_eq!(
        exported["Encounter"].len(),
        4,
        "two stays and their admissions"
    );
    let record = accesses(&server, "P-KEPT-1")
        .await
        .into_iter()
        .find(|r| r.call == "fhir/$export")
        .unwrap();
    assert_eq!(record.patients, ["P-KEPT-1", "P-KEPT-2"]);

    // The CLI verb downloads the error file beside the others, and says so.
    let to = dir.path().join("export");
    let out = Command::new(journey_bin())
        .args(["fhir", "export", "--to", to.to_str().unwrap()])
        .args(["--url", &server.http])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli_manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(to.join("manifest.json")).unwrap()).unwrap();
    let error_file = cli_manifest["error"][0]["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap();
    let lines: Vec<Value> = std::fs::read_to_string(to.join(error_file))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["resourceType"], "OperationOutcome");
    assert!(lines[0]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("patient P-LOST"));
    assert!(
        said.contains(&format!("errors in {error_file}: 1 OperationOutcome")),
        "{said}"
    );
}

/// A server killed during an export leaves no manifest (the files are written first, the
/// manifest last and atomically), and the next start removes the half export.
#[tokio::test]
async fn a_killed_export_leaves_no_half_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = admin_token(dir.path());
    let admin = admin.as_str();
    simulate(&server, admin, "150");
    let status = kick_off(&server, "/fhir/$export", admin).await;
    // Killed while it writes its files (or, on a very fast machine, once done: then its
    // manifest is whole).
    let running = loop {
        let raw = get_raw(&server, &status, admin, "").await;
        let progress = http_header(&raw, "x-progress").unwrap_or("");
        if http_status(&raw) != 202 {
            break false;
        }
        if progress.starts_with("patients:") && !progress.starts_with("patients: 0 ") {
            break true;
        }
    };
    server.kill9();
    let job = status.rsplit('/').next().unwrap();
    let folder = dir.path().join("data/fhir-exports").join(job);
    let manifest = folder.join("manifest.json");
    if running {
        let written: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|f| f.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert!(written.iter().any(|f| f.ends_with(".part")), "{written:?}");
        assert!(
            !manifest.exists(),
            "a manifest after a kill during the export"
        );
    } else {
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        for o in m["output"].as_array().unwrap() {
            let file = folder.join(o["url"].as_str().unwrap().rsplit('/').next().unwrap());
            let n = std::fs::read_to_string(file).unwrap().lines().count();
            assert_eq!(n as u64, o["count"].as_u64().unwrap());
        }
    }
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    if running {
        assert!(!folder.exists(), "the half export is removed at start");
        let raw = get_raw(&server, &status, admin, "").await;
        assert_eq!(http_status(&raw), 404, "{raw}");
    } else {
        let raw = get_raw(&server, &status, admin, "").await;
        assert_eq!(http_status(&raw), 200, "{raw}");
    }
}

/// The (system, code) pairs of a CodeableConcept, a list of them, or a Coding.
fn codes_of(v: &Value) -> Vec<(String, String)> {
    let one = |c: &Value| {
        (
            c["system"].as_str().unwrap_or("").to_string(),
            c["code"].as_str().unwrap_or("").to_string(),
        )
    };
    match v {
        Value::Array(list) => list.iter().flat_map(codes_of).collect(),
        Value::Object(o) if o.contains_key("coding") => {
            v["coding"].as_array().unwrap().iter().map(one).collect()
        }
        Value::Object(o) if o.contains_key("code") => vec![one(v)],
        _ => Vec::new(),
    }
}

fn has_code(v: &Value, system: Option<&str>, code: &str) -> bool {
    codes_of(v)
        .iter()
        .any(|(s, c)| c == code && system.is_none_or(|want| want == s))
}

/// The middle of the distinct `values` once sorted.
fn middle(mut values: Vec<String>) -> String {
    values.sort();
    values.dedup();
    assert!(values.len() > 1, "{values:?}");
    values[(values.len() - 1) / 2].clone()
}

/// `_typeFilter` beyond `status`, through HTTP on a simulated population: each kind of search
/// parameter (a token by system and code, by code, by system; a category; a class; a clinical
/// status; a medication's code; dates with prefixes on an instant and on a stay's period; a
/// `_lastUpdated`) narrows the export to exactly the resources of the whole export that this test
/// selects itself from their JSON; parameters of one query are ANDed, queries of a type ORed; a
/// parameter, modifier, prefix or date the server does not serve is a 400 naming what it
/// filters, and starts no job.
#[tokio::test]
async fn type_filter_search_parameters_narrow_to_exactly_what_they_select() {
    use chrono::Datelike;
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &["--no-reactor"]);
    let admin = admin_token(dir.path());
    let admin = admin.as_str();
    simulate(&server, admin, "25");
    // One measure recorded later, so that the measures' lastUpdated differ (a fast simulation
    // may record every one in the same millisecond).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    append_batch(&mut log, vec![observation("P-LATE", 21.0)]).await;
    let (_, head) = patients_in_log(&server, admin).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;
    let status = kick_off(&server, "/fhir/$export", AUDITOR).await;
    let (manifest, _) = finished(&server, &status, AUDITOR).await;
    let all = files(&server, &manifest, AUDITOR).await;

    // Values taken from the data: the middle day of the measures, of the stays' starts, the
    // middle lastUpdated of the measures, a diagnosis's and a prescription's code.
    let day_of = |t: &str| t[..10].to_string();
    let text = |v: &Value| v.as_str().map(str::to_string);
    let measures = &all["Observation"];
    let measure_day = middle(
        measures
            .iter()
            .filter_map(|o| o["effectiveDateTime"].as_str().map(day_of))
            .collect(),
    );
    let stay_day = middle(
        all["Encounter"]
            .iter()
            .filter_map(|e| e["period"]["start"].as_str().map(day_of))
            .collect(),
    );
    let after_stay_day = (chrono::NaiveDate::parse_from_str(&stay_day, "%Y-%m-%d").unwrap()
        + chrono::Days::new(1))
    .to_string();
    let after_stay_month = (chrono::NaiveDate::parse_from_str(&stay_day, "%Y-%m-%d")
        .unwrap()
        .with_day(1)
        .unwrap()
        + chrono::Months::new(1))
    .format("%Y-%m")
    .to_string();
    let updated = middle(
        measures
            .iter()
            .filter_map(|o| text(&o["meta"]["lastUpdated"]))
            .collect(),
    );
    let (diagnosis_system, diagnosis) = all["Condition"]
        .iter()
        .flat_map(|c| codes_of(&c["code"]))
        .next()
        .expect("a coded diagnosis");
    let (drug_system, drug) = all["MedicationRequest"]
        .iter()
        .flat_map(|m| codes_of(&m["medicationCodeableConcept"]))
        .next()
        .expect("a coded prescription");
    const LOINC: &str = "http://loinc.org";
    let effective = |o: &Value| o["effectiveDateTime"].as_str().unwrap_or("").to_string();
    let start = |e: &Value| e["period"]["start"].as_str().map(str::to_string);
    let end = |e: &Value| e["period"]["end"].as_str().map(str::to_string);

    type Select<'a> = Box<dyn Fn(&Value) -> bool + 'a>;
    // (type, its _typeFilter queries, what they select, whether that must be a strict part)
    let cases: Vec<(&str, Vec<String>, Select, bool)> = vec![
        (
            "Observation",
            vec![format!("Observation?code={LOINC}|29463-7")],
            Box::new(|o| has_code(&o["code"], Some(LOINC), "29463-7")),
            true,
        ),
        (
            "Observation",
            vec!["Observation?code=29463-7,59408-5".into()],
            Box::new(|o| {
                has_code(&o["code"], None, "29463-7") || has_code(&o["code"], None, "59408-5")
            }),
            false,
        ),
        (
            "Observation",
            vec!["Observation?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs".into()],
            Box::new(|o| {
                has_code(
                    &o["category"],
                    Some("http://terminology.hl7.org/CodeSystem/observation-category"),
                    "vital-signs",
                )
            }),
            false,
        ),
        (
            "Observation",
            vec![format!("Observation?code={LOINC}|&date=ge{measure_day}")],
            Box::new(|o| {
                codes_of(&o["code"]).iter().any(|(s, _)| s == LOINC)
                    && effective(o).as_str() >= measure_day.as_str()
            }),
            true,
        ),
        (
            "Observation",
            vec![
                "Observation?code=29463-7".into(),
                format!("Observation?date=lt{measure_day}"),
            ],
            Box::new(|o| {
                has_code(&o["code"], None, "29463-7")
                    || effective(o).as_str() < measure_day.as_str()
            }),
            true,
        ),
        (
            "Observation",
            vec![format!("Observation?_lastUpdated=gt{updated}")],
            Box::new(|o| o["meta"]["lastUpdated"].as_str().unwrap() > updated.as_str()),
            true,
        ),
        (
            "Provenance",
            vec![format!("Provenance?_lastUpdated=le{updated}")],
            Box::new(|p| p["meta"]["lastUpdated"].as_str().unwrap() <= updated.as_str()),
            true,
        ),
        (
            "Encounter",
            vec!["Encounter?class=IMP&status=finished".into()],
            Box::new(|e| e["class"]["code"] == "IMP" && e["status"] == "finished"),
            true,
        ),
        (
            "Encounter",
            vec![format!("Encounter?date=lt{stay_day}")],
            Box::new(|e| start(e).is_some_and(|s| s < stay_day)),
            true,
        ),
        (
            "Encounter",
            // A stay still open reaches past any day; a finished one if it ends after this one.
            vec![format!("Encounter?date=gt{stay_day}")],
            Box::new(|e| {
                (start(e).is_some() || end(e).is_some())
                    && end(e).is_none_or(|t| t >= after_stay_day)
            }),
            true,
        ),
        (
            "Encounter",
            // eq: the stays the month holds whole.
            vec![format!("Encounter?date=eq{}", &stay_day[..7])],
            Box::new(|e| {
                start(e).is_some_and(|s| s.as_str() >= &stay_day[..7])
                    && end(e).is_some_and(|t| t < after_stay_month)
            }),
            false,
        ),
        (
            "Condition",
            vec!["Condition?clinical-status=active".into()],
            Box::new(|c| has_code(&c["clinicalStatus"], None, "active")),
            false,
        ),
        (
            "Condition",
            vec![format!("Condition?code={diagnosis_system}|{diagnosis}")],
            Box::new(|c| has_code(&c["code"], Some(&diagnosis_system), &diagnosis)),
            false,
        ),
        (
            "MedicationRequest",
            vec![format!("MedicationRequest?code={drug_system}|{drug}")],
            Box::new(|m| has_code(&m["medicationCodeableConcept"], Some(&drug_system), &drug)),
            false,
        ),
        (
            "Appointment",
            vec![format!("Appointment?date=ge{measure_day}")],
            Box::new(|a| a["start"].as_str().is_some_and(|s| s >= measure_day.as_str())),
            false,
        ),
        (
            "Task",
            vec!["Task?code=urn:journey:coordination-item|discharge-letter&status=completed".into()],
            Box::new(|t| {
                has_code(&t["code"], Some("urn:journey:coordination-item"), "discharge-letter")
                    && t["status"] == "completed"
            }),
            false,
        ),
    ];
    for (kind, queries, select, strict) in &cases {
        let whole = &all[*kind];
        let expected: BTreeSet<&str> = whole
            .iter()
            .filter(|r| select(r))
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(
            !expected.is_empty(),
            "{queries:?} selects nothing of {kind}"
        );
        if *strict {
            assert!(
                expected.len() < whole.len(),
                "{queries:?} keeps every {kind}"
            );
        }
        let filters: String = queries
            .iter()
            .map(|q| format!("&_typeFilter={}", query_value(q)))
            .collect();
        let status = kick_off(
            &server,
            &format!("/fhir/$export?_type={kind}{filters}"),
            AUDITOR,
        )
        .await;
        let (manifest, _) = finished(&server, &status, AUDITOR).await;
        let got = files(&server, &manifest, AUDITOR).await;
        let ids: BTreeSet<&str> = got
            .get(*kind)
            .map(|v| v.iter().map(|r| r["id"].as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(ids, expected, "{queries:?}");
    }

    // What the server does not filter by: 400, naming the parameter and what it filters by,
    // and no job started.
    let jobs = || {
        std::fs::read_dir(dir.path().join("data/fhir-exports"))
            .unwrap()
            .count()
    };
    let before = jobs();
    for (query, says) in [
        (
            "Observation?foo=1",
            ["foo", "status, code, category, date, _lastUpdated"],
        ),
        (
            "Encounter?code=x",
            ["code", "status, class, date, _lastUpdated"],
        ),
        ("Observation?code:text=weight", [":text", "code, category"]),
        (
            "Observation?date=ap2024",
            ["\\\"ap\\\"", "eq, ne, gt, lt, ge, le, sa, eb"],
        ),
        (
            "Observation?date=ge2024-13-01",
            ["ge2024-13-01", "is not a date"],
        ),
        ("Condition?date=2024", ["date", "onset-date, recorded-date"]),
    ] {
        let path = format!("/fhir/$export?_typeFilter={}", query_value(query));
        let raw = get_raw(&server, &path, AUDITOR, ASYNC).await;
        assert_eq!(http_status(&raw), 400, "{query}: {raw}");
        let body = http_body(&raw);
        let outcome: Value = serde_json::from_str(body).unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        for said in says {
            assert!(
                body.contains("_typeFilter") && body.contains(said),
                "{query}: {said}: {body}"
            );
        }
    }
    assert_eq!(jobs(), before, "a refused kick-off started a job");
}

/// The territories of `patient`'s discharges as `Coordination.FollowUp` gives them to `key`, or
/// `None` when it refuses (unknown, outside the caller's territory, its organisation refused).
async fn follow_up_territories(server: &Server, key: &str, patient: &str) -> Option<Vec<String>> {
    let mut c = CoordinationClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some(key)).unwrap(),
    );
    let asked = c
        .follow_up(v1::FollowUpRequest {
            patient_id: patient.into(),
            as_of: None,
        })
        .await;
    match asked {
        Ok(r) => Some(
            r.into_inner()
                .discharges
                .into_iter()
                .map(|d| d.territory)
                .collect(),
        ),
        Err(s)
            if matches!(
                s.code(),
                tonic::Code::NotFound | tonic::Code::PermissionDenied
            ) =>
        {
            None
        }
        Err(s) => panic!("{patient}: {s}"),
    }
}

/// A group export puts in it exactly the patients `Coordination.FollowUp` gives the same caller
/// with a discharge in the territory (decided there a batch of patients at once): for a
/// coordinator, its organisation's refusals (by name, or of every organisation) leave patients
/// out, another organisation's do not; for an auditor no refusal applies (as for an admin's
/// follow-up).
async fn a_group_is_each_patients_follow_up(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, extra);
    let admin = admin_token(dir.path());
    let admin = admin.as_str();
    simulate(&server, admin, "120");
    let (patients, head) = patients_in_log(&server, admin).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;
    let mut nord = Vec::new();
    for p in &patients {
        let territories = follow_up_territories(&server, admin, p).await;
        if territories.is_some_and(|t| t.iter().any(|t| t == "CPTS-NORD")) {
            nord.push(p.clone());
        }
    }
    assert!(nord.len() > 6 && nord.len() < patients.len(), "{nord:?}");
    // Two refuse the coordinator's organisation, one every organisation, one another one.
    let refusal = |p: &str, organisations: &[&str]| {
        event(
            p,
            ts(90),
            Payload::ConsentRevoked(v1::ConsentRevoked {
                scope: "coordination".into(),
                organisations: organisations.iter().map(|o| o.to_string()).collect(),
            }),
        )
    };
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let head = append_batch(
        &mut log,
        vec![
            refusal(&nord[0], &["cpts-1"]),
            refusal(&nord[1], &["cpts-9", "cpts-1"]),
            refusal(&nord[2], &[]),
            refusal(&nord[3], &["cpts-9"]),
        ],
    )
    .await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;
    let mut readable = BTreeSet::new();
    for p in &patients {
        let territories = follow_up_territories(&server, COORDINATOR, p).await;
        if territories.is_some_and(|t| t.iter().any(|t| t == "CPTS-NORD")) {
            readable.insert(p.as_str());
        }
    }
    let mut expected: BTreeSet<&str> = nord.iter().map(String::as_str).collect();
    for refused in &nord[..3] {
        expected.remove(refused.as_str());
    }
    assert_eq!(readable, expected, "FollowUp applies the refusals");
    for (key, expected) in [
        (COORDINATOR, readable),
        (AUDITOR, nord.iter().map(String::as_str).collect()),
    ] {
        let status = kick_off(&server, "/fhir/Group/CPTS-NORD/$export?_type=Patient", key).await;
        let (manifest, _) = finished(&server, &status, key).await;
        let exported = files(&server, &manifest, key).await;
        let ids: BTreeSet<&str> = exported["Patient"]
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, expected, "{key}");
    }
}

#[tokio::test]
async fn a_group_is_each_patients_follow_up_on_sqlite() {
    a_group_is_each_patients_follow_up(&["--no-reactor"]).await;
}

#[tokio::test]
async fn a_group_is_each_patients_follow_up_on_postgres() {
    let pg = PgDb::create();
    a_group_is_each_patients_follow_up(&["--no-reactor", "--database-url", &pg.url]).await;
}
