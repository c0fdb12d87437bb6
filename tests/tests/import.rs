//! `journey import synthea` and `journey import fhir`: the shared Synthea exports, and a small
//! population the test writes in the CSV and both FHIR forms, through the real binary and server.
#[path = "import/population.rs"]
mod population;

use futures::StreamExt;
use journey_proto::v1::{event::Payload, Disposition, HeadRequest, ReadAllRequest};
use journey_tests::*;
use std::{
    collections::{HashMap, HashSet},
    path::Path,
    process::Command,
    time::Instant,
};

const SMALL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/synthea-small"
);
const MEDIUM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/synthea-medium"
);
const FHIR_BULK_10: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/synthea-fhir-bulk-10"
);

fn import(server: &Server, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    import_as(server, "synthea", dir, extra)
}

/// `journey import <form> <path> …` into `server`: (exit code, stdout, stderr).
fn import_as(server: &Server, form: &str, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(journey_bin())
        .args(["import", form])
        .arg(dir)
        .args(extra)
        .args(["--server", &server.grpc])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Encounter ids by ENCOUNTERCLASS, read from the CSV independently of the importer.
fn encounter_classes(dir: &Path) -> HashMap<String, HashSet<String>> {
    let text = std::fs::read_to_string(dir.join("encounters.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (id, class) = (col("Id"), col("ENCOUNTERCLASS"));
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        out.entry(f[class].to_string())
            .or_default()
            .insert(f[id].to_string());
    }
    out
}

/// Ids of the encounter rows whose `kind` event was reported refused.
fn refused(stderr: &str, kind: &str) -> HashSet<String> {
    refused_in(stderr, "encounters.csv", kind)
}

/// Ids of the records of `file` whose `kind` event was reported refused.
fn refused_in(stderr: &str, file: &str, kind: &str) -> HashSet<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with(&format!("refused {file}:")) && l.contains(&format!(") {kind}:")))
        .map(|l| {
            l.split_once('(')
                .unwrap()
                .1
                .split_once(')')
                .unwrap()
                .0
                .to_string()
        })
        .collect()
}

/// Counts of each payload kind in the whole log.
async fn kinds(server: &Server) -> HashMap<&'static str, usize> {
    let mut client = server.client().await;
    let mut stream = client
        .read_all(ReadAllRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut out = HashMap::new();
    while let Some(batch) = stream.next().await {
        for e in batch.unwrap().events {
            let k = match e.payload.unwrap() {
                Payload::Admitted(_) => "Admitted",
                Payload::Discharged(_) => "Discharged",
                Payload::EmergencyVisit(_) => "EmergencyVisit",
                Payload::PatientRegistered(_) => "PatientRegistered",
                _ => "other",
            };
            *out.entry(k).or_default() += 1;
        }
    }
    out
}

fn line_value(stdout: &str, key: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} in {stdout}"))
        .trim()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

async fn head(server: &Server) -> u64 {
    let mut client = server.client().await;
    client
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position
}

fn verify(server: &Server) {
    let out = Command::new(journey_bin())
        .args(["verify", "--server", &server.grpc])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok:"),
        "{stdout}"
    );
}

/// Index stays, 30-day readmissions and ED revisits computed from the CSV alone (docs/design.md §5):
/// see [`figures`]. Refused encounter rows are left out.
fn expected_figures(dir: &Path, refused_ids: &HashSet<String>) -> (u64, u64, u64) {
    let deaths: HashMap<String, i64> = std::fs::read_to_string(dir.join("patients.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (!f[2].is_empty()).then(|| (f[0].to_string(), secs(&format!("{}T00:00:00Z", f[2]))))
        })
        .collect();
    let text = std::fs::read_to_string(dir.join("encounters.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (id, start, stop, patient, class) = (
        col("Id"),
        col("START"),
        col("STOP"),
        col("PATIENT"),
        col("ENCOUNTERCLASS"),
    );
    let mut inpatient: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    let mut ed: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        if refused_ids.contains(f[id]) {
            continue;
        }
        let span = (secs(f[start]), secs(f[stop]));
        match f[class] {
            "inpatient" => inpatient
                .entry(f[patient].to_string())
                .or_default()
                .push(span),
            "emergency" | "urgentcare" => ed.entry(f[patient].to_string()).or_default().push(span),
            _ => {}
        }
    }
    figures(&deaths, inpatient, &ed)
}

fn secs(t: &str) -> i64 {
    use journey_proto::prost_types::Timestamp;
    t.parse::<Timestamp>()
        .unwrap_or_else(|_| panic!("bad time {t}"))
        .seconds
}

/// (index stays, 30-day readmissions, ED revisits) of patients' inpatient stays and ED visits
/// ((start, stop) in seconds), given their deaths (seconds, any time of the day of death): a stay
/// is an index stay when the patient is alive after its discharge day; it is readmitted when the
/// patient's next inpatient admission is ≤ 30 calendar days after its discharge; an ED revisit
/// is an ED visit within 30 days after the discharge not followed by an inpatient admission
/// within 6 hours.
fn figures(
    deaths: &HashMap<String, i64>,
    mut inpatient: HashMap<String, Vec<(i64, i64)>>,
    ed: &HashMap<String, Vec<(i64, i64)>>,
) -> (u64, u64, u64) {
    let day = |s: i64| s.div_euclid(86_400);
    let (mut index, mut readmitted, mut revisits) = (0, 0, 0);
    for (p, stays) in &mut inpatient {
        stays.sort();
        let admissions: Vec<i64> = stays.iter().map(|s| s.0).collect();
        for (_, discharge) in stays.iter() {
            if deaths.get(p).is_some_and(|d| day(*d) <= day(*discharge)) {
                continue;
            }
            index += 1;
            if let Some(next) = admissions.iter().find(|a| **a >= *discharge) {
                if day(*next) - day(*discharge) <= 30 {
                    readmitted += 1;
                }
            }
            let revisit = ed.get(p).into_iter().flatten().any(|(vs, ve)| {
                let admitted = admissions.iter().any(|a| *a >= *vs && *a <= ve + 6 * 3600);
                *vs >= *discharge && day(*vs) - day(*discharge) <= 30 && !admitted
            });
            revisits += revisit as u64;
        }
    }
    (index, readmitted, revisits)
}

/// The Readmission service's totals after the import, compared with the CSV's own figures.
async fn check_readmission_figures(server: &Server, dir: &Path, stderr: &str) -> (u64, u64, u64) {
    let refused_ids: HashSet<String> = ["Admitted", "Discharged", "EmergencyVisit"]
        .iter()
        .flat_map(|k| refused(stderr, k))
        .collect();
    let expected = expected_figures(dir, &refused_ids);
    let t = rates_total(&server.grpc, head(server).await).await;
    assert_eq!(
        (t.index_stays, t.readmissions, t.ed_revisits),
        expected,
        "read model vs CSV"
    );
    expected
}

/// Imports `dir` into a fresh server and checks admissions and ED visits against the CSV.
async fn import_and_check(dir: &Path) -> (Server, tempfile::TempDir, String, (u64, u64, u64)) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (code, out, err) = import(&server, dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let classes = encounter_classes(dir);
    let counts = kinds(&server).await;
    let inpatient = &classes["inpatient"];
    let refused_adm = refused(&err, "Admitted");
    assert!(refused_adm.is_subset(inpatient));
    assert_eq!(
        counts.get("Admitted").copied().unwrap_or(0),
        inpatient.len() - refused_adm.len(),
        "{out}"
    );
    let ed: HashSet<String> = classes
        .get("emergency")
        .into_iter()
        .chain(classes.get("urgentcare"))
        .flatten()
        .cloned()
        .collect();
    let refused_ed = refused(&err, "EmergencyVisit");
    assert!(refused_ed.is_subset(&ed));
    assert_eq!(
        counts.get("EmergencyVisit").copied().unwrap_or(0),
        ed.len() - refused_ed.len(),
        "{out}"
    );
    let appended = line_value(&out, "events appended:");
    assert_eq!(head(&server).await, appended);
    verify(&server);
    let figures = check_readmission_figures(&server, dir, &err).await;
    (server, data, out, figures)
}

#[tokio::test]
async fn small_imports_once_and_reruns_append_nothing() {
    let dir = Path::new(SMALL);
    let (server, _data, out, figures) = import_and_check(dir).await;
    assert_eq!(line_value(&out, "patients:"), 27, "{out}");
    assert_eq!(
        figures.1, 0,
        "synthea-small has no 30-day readmission: {figures:?}"
    );
    assert!(figures.0 > 0, "{figures:?}");
    let before = head(&server).await;
    let (code, out, err) = import(&server, dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(line_value(&out, "events appended:"), 0, "{out}");
    assert_eq!(line_value(&out, "already present:"), before, "{out}");
    assert_eq!(head(&server).await, before);
    verify(&server);
}

#[tokio::test]
async fn broken_row_is_reported_and_strict_stops() {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(SMALL).unwrap() {
        let p = entry.unwrap().path();
        let to = tmp.path().join(p.file_name().unwrap());
        std::fs::copy(&p, &to).unwrap();
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    // Break the START of the encounter on line 10 (line 1 is the header).
    let path = tmp.path().join("encounters.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut fields: Vec<String> = lines[9].split(',').map(String::from).collect();
    let broken_id = fields[0].clone();
    fields[1] = "2023-13-45T99:00:00Z".into();
    lines[9] = fields.join(",");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (code, out, err) = import(&server, tmp.path(), &["--strict"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("malformed encounters.csv:10"), "{err}");
    assert_eq!(
        head(&server).await,
        0,
        "strict appends nothing after a malformed row"
    );

    let (code, out, err) = import(&server, tmp.path(), &[]);
    assert_eq!(code, 0, "{out}{err}");
    let report = err
        .lines()
        .find(|l| l.starts_with("malformed encounters.csv:10"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        report.contains(&broken_id) && report.contains("START"),
        "{report}"
    );
    // The rows recorded in the broken encounter name an encounter the import does not have:
    // malformed too, each reported with the encounter it names.
    let dependent: usize = [
        "conditions.csv",
        "medications.csv",
        "observations.csv",
        "careplans.csv",
    ]
    .iter()
    .map(|f| {
        std::fs::read_to_string(tmp.path().join(f))
            .unwrap()
            .lines()
            .filter(|l| l.contains(&broken_id))
            .count()
    })
    .sum();
    assert!(dependent > 0);
    let others: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("malformed ") && !l.starts_with("malformed encounters.csv:10"))
        .collect();
    assert_eq!(others.len(), dependent, "{err}");
    for l in others {
        assert!(
            l.contains(&format!("encounter {broken_id:?} is not in the export")),
            "{l}"
        );
    }
    assert_eq!(
        line_value(&out, "malformed rows:"),
        1 + dependent as u64,
        "{out}"
    );
    assert!(line_value(&out, "events appended:") > 2000, "{out}");
    verify(&server);

    // A refused row with --strict (Synthea's death certification a week after death): exit 1.
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (code, out, err) = import(&server, Path::new(SMALL), &["--strict"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("refused encounters.csv:"), "{err}");
}

/// About 10 s in a debug build (42k events).
#[tokio::test]
async fn medium_imports() {
    let started = Instant::now();
    let (_server, _data, out, figures) = import_and_check(Path::new(MEDIUM)).await;
    assert_eq!(line_value(&out, "patients:"), 922, "{out}");
    assert_eq!(
        figures.1, 1,
        "synthea-medium has one 30-day readmission: {figures:?}"
    );
    eprintln!("synthea-medium imported in {:?}\n{out}", started.elapsed());
}

/// The event as the importer sent it: what the log adds (position, recording time, chain) left out.
fn as_sent(mut e: journey_proto::v1::Event) -> journey_proto::v1::Event {
    e.position = 0;
    e.recorded_at = None;
    e.prev_hash.clear();
    e.hash.clear();
    e
}

/// Imports `dir` as `form` into a fresh server: the server, its data folder and stdout.
fn fresh_import(form: &str, dir: &Path) -> (Server, tempfile::TempDir, String) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (code, out, err) = import_as(&server, form, dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for clean in ["refused rows: 0", "malformed rows: 0", "codes dropped: 0"] {
        assert!(out.contains(clean), "{form}: {out}{err}");
    }
    (server, data, out)
}

#[tokio::test]
async fn one_population_as_csv_ndjson_and_bundles_gives_the_same_events() {
    let tmp = tempfile::tempdir().unwrap();
    // The same folder name: the events' source is `synthea:<folder>` whichever the form.
    let (csv, ndjson, bundles) = (
        tmp.path().join("csv/population"),
        tmp.path().join("ndjson/population"),
        tmp.path().join("bundles/population"),
    );
    population::write_csv(&csv);
    population::write_ndjson(&ndjson);
    population::write_bundles(&bundles);
    let mut logs = Vec::new();
    for (form, dir) in [("synthea", &csv), ("fhir", &ndjson), ("fhir", &bundles)] {
        let (server, _data, out) = fresh_import(form, dir);
        let events = read_log(&server.grpc, None).await;
        assert_eq!(events.len() as u64, line_value(&out, "events appended:"));
        logs.push(by_patient(events.into_iter().map(as_sent).collect()));
    }
    assert_eq!(
        logs[0].keys().collect::<Vec<_>>(),
        population::PATIENTS.iter().collect::<Vec<_>>()
    );
    assert!(logs[0].values().map(Vec::len).sum::<usize>() > 30);
    for (form, log) in [("NDJSON", &logs[1]), ("Bundles", &logs[2])] {
        for (patient, events) in &logs[0] {
            let other = &log[patient];
            for (i, (a, b)) in events.iter().zip(other).enumerate() {
                assert_eq!(a, b, "{form}, {patient}, event {i}");
            }
            assert_eq!(events.len(), other.len(), "{form}, {patient}");
        }
    }
}

/// The payloads of a patient's events, in stream order.
async fn payloads(server: &Server, patient: &str) -> Vec<(i64, Payload)> {
    let mut client = server.client().await;
    patient_events(&mut client, patient)
        .await
        .into_iter()
        .map(|e| (e.occurred_at.unwrap().seconds, e.payload.unwrap()))
        .collect()
}

#[tokio::test]
async fn overlapping_stays_are_one_stay_and_every_reason_reaches_the_charlson_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("population");
    population::write_csv(&dir);
    let (server, _data, _) = fresh_import("synthea", &dir);

    // pat-a: the ICU encounter inside the ward stay is two transfers of the same stay.
    let a = payloads(&server, "pat-a").await;
    let transfers: Vec<(i64, &str, &str, &str)> = a
        .iter()
        .filter_map(|(at, p)| match p {
            Payload::Transferred(t) => Some((
                *at,
                t.encounter_id.as_str(),
                t.from_unit.as_str(),
                t.to_unit.as_str(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        transfers,
        [
            (secs("2020-01-12T00:00:00Z"), "enc-a1", "ward", "ICU"),
            (secs("2020-01-14T00:00:00Z"), "enc-a1", "ICU", "ward"),
        ]
    );
    let admitted = |events: &[(i64, Payload)]| -> Vec<String> {
        events
            .iter()
            .filter_map(|(_, p)| match p {
                Payload::Admitted(a) => Some(a.encounter_id.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(admitted(&a), ["enc-a1", "enc-a5"]);
    // The outpatient visit's reason is a recorded diagnosis.
    assert!(a.iter().any(|(_, p)| matches!(p,
        Payload::ConditionRecorded(c) if c.encounter_id == "enc-a0"
            && c.diagnosis.as_ref().is_some_and(|d| d.code == "44054006"))));

    // pat-b dies in hospital: one stay (the second encounter is its ICU part), discharged
    // deceased at the end of the day of death, not home alive before it.
    let b = payloads(&server, "pat-b").await;
    assert_eq!(admitted(&b), ["enc-b1"]);
    let end_of_death_day = secs("2021-03-08T23:59:59Z");
    let discharges: Vec<(i64, i32)> = b
        .iter()
        .filter_map(|(at, p)| match p {
            Payload::Discharged(d) => Some((*at, d.disposition)),
            _ => None,
        })
        .collect();
    assert_eq!(
        discharges,
        [(end_of_death_day, Disposition::Deceased as i32)]
    );
    assert!(matches!(b.last(), Some((at, Payload::PatientDeceased(_))) if *at == end_of_death_day));

    // pat-c: a stay overlapped by a stay at another hospital is a transfer between hospitals.
    let c = payloads(&server, "pat-c").await;
    assert_eq!(admitted(&c), ["enc-c1", "enc-c2"]);
    assert!(c.iter().any(|(at, p)| matches!(p,
        Payload::Discharged(d) if d.encounter_id == "enc-c1"
            && d.disposition == Disposition::OtherAcuteHospital as i32)
        && *at == secs("2022-05-03T12:00:00Z")));
    assert!(c.iter().any(|(_, p)| matches!(p,
        Payload::Admitted(a) if a.encounter_id == "enc-c2"
            && a.admit_type == journey_proto::v1::AdmitType::TransferIn as i32)));
    assert!(c
        .iter()
        .any(|(_, p)| matches!(p, Payload::EmergencyVisit(v) if v.visit_id == "enc-c0")));

    // The read model: pat-a's two index stays (the first readmitted after 21 days, with an ED
    // revisit), none for pat-b, one transfer chain for pat-c.
    let t = rates_total(&server.grpc, head(&server).await).await;
    assert_eq!((t.index_stays, t.readmissions, t.ed_revisits), (3, 1, 1));
    let readmission = journey_proto::v1::readmission_client::ReadmissionClient::new(
        journey_tests::client::channel(&server.grpc).await.unwrap(),
    );
    let stays = |p: &str| {
        let request = journey_proto::v1::PatientStaysRequest {
            patient_id: p.into(),
        };
        let mut c = readmission.clone();
        async move { c.patient_stays(request).await.unwrap().into_inner().stays }
    };
    let a = stays("pat-a").await;
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(
        (
            a[0].encounter_id.as_str(),
            a[0].readmitted,
            a[0].days_to_readmission,
            a[0].ed_revisit
        ),
        ("enc-a1", true, 21, true)
    );
    // Heart failure (the stay's diagnosis) + type 2 diabetes (an outpatient visit's reason).
    assert_eq!(a[0].charlson, 2);
    // + COPD, the reason of the ED visit between the two stays (DESIGN §5: every diagnosis
    // recorded up to the index discharge, an ED visit's too).
    assert_eq!((a[1].encounter_id.as_str(), a[1].charlson), ("enc-a5", 3));
    assert!(stays("pat-b").await.is_empty());
    let c = stays("pat-c").await;
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        (c[0].first_encounter_id.as_str(), c[0].encounter_id.as_str()),
        ("enc-c1", "enc-c2")
    );
}

#[tokio::test]
async fn fhir_bulk_10_gives_the_readmission_figures_of_its_files() {
    let dir = Path::new(FHIR_BULK_10);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (code, out, err) = import_as(&server, "fhir", dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("malformed rows: 0"), "{out}");

    // The files read here, independently of the importer.
    let resources = |ty: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(dir.join(format!("{ty}.000.ndjson")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let time = |v: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    let patients = resources("Patient");
    let deaths: HashMap<String, i64> = patients
        .iter()
        .filter(|p| p.get("deceasedDateTime").is_some())
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                time(&p["deceasedDateTime"]),
            )
        })
        .collect();
    // Inpatient encounters (class IMP, not a skilled-nursing admission) by patient, with their
    // facility; ED visits (class EMER, or AMB of the urgent-care type).
    let mut inpatient: HashMap<String, Vec<(i64, i64, String)>> = HashMap::new();
    let mut ed: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for e in resources("Encounter") {
        let patient = e["subject"]["reference"]
            .as_str()
            .unwrap()
            .trim_start_matches("Patient/")
            .to_string();
        let span = (time(&e["period"]["start"]), time(&e["period"]["end"]));
        let ty = e["type"][0]["coding"][0]["code"]
            .as_str()
            .unwrap_or_default();
        match e["class"]["code"].as_str().unwrap() {
            "IMP" if ty != "449411000124106" => inpatient.entry(patient).or_default().push((
                span.0,
                span.1,
                e["serviceProvider"]["reference"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )),
            "EMER" => ed.entry(patient).or_default().push(span),
            "AMB" if ty == "702927004" => ed.entry(patient).or_default().push(span),
            _ => {}
        }
    }
    // Overlapping encounters at one facility are one stay.
    let mut stays: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    for (p, mut encs) in inpatient {
        encs.sort();
        let mut merged: Vec<(i64, i64, String)> = Vec::new();
        for e in encs {
            match merged.last_mut() {
                Some(last) if e.0 < last.1 && e.2 == last.2 => last.1 = last.1.max(e.1),
                Some(last) if e.0 < last.1 => {
                    panic!("a transfer between hospitals: {last:?} {e:?}")
                }
                _ => merged.push(e),
            }
        }
        stays.insert(p, merged.into_iter().map(|(s, e, _)| (s, e)).collect());
    }
    let n_stays: usize = stays.values().map(Vec::len).sum();
    let n_ed: usize = ed.values().map(Vec::len).sum();
    let expected = figures(&deaths, stays, &ed);

    // No stay or ED visit was refused (the refusals are Synthea's death certifications, after
    // the death).
    for kind in ["Admitted", "Discharged", "EmergencyVisit"] {
        assert!(
            refused_in(&err, "Encounter.000.ndjson", kind).is_empty(),
            "{err}"
        );
    }
    let counts = kinds(&server).await;
    assert_eq!(counts["PatientRegistered"], patients.len());
    assert_eq!(counts["Admitted"], n_stays);
    assert_eq!(counts["EmergencyVisit"], n_ed);
    assert_eq!(head(&server).await, line_value(&out, "events appended:"));
    verify(&server);
    let t = rates_total(&server.grpc, head(&server).await).await;
    assert_eq!(
        (t.index_stays, t.readmissions, t.ed_revisits),
        expected,
        "read model vs the NDJSON files"
    );
    assert!(expected.0 > 40, "{expected:?}");
    eprintln!("synthea-fhir-bulk-10: {n_stays} stays, {n_ed} ED visits, (index stays, readmissions, ED revisits) = {expected:?}");
}

#[tokio::test]
async fn bad_fhir_and_csv_input_is_reported_with_file_and_line_and_strict_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |file: &str, lines: &[&str]| {
        std::fs::write(dir.join(file), lines.join("\n") + "\n").unwrap();
    };
    write(
        "Patient.000.ndjson",
        &[
            r#"{"resourceType": "Patient", "id": "pat-1", "birthDate": "1950-01-01", "gender": "female"}"#,
            r#"{"resourceType": "Patient", "id": "pat-2", "birthDate": "#,
            r#"{"resourceType": "Patient", "id": "pat-3", "gender": "male"}"#,
            r#"{"resourceType": "Patinet", "id": "x"}"#,
            r#"{"id": "no-type"}"#,
            r#"{"resourceType": "Procedure", "id": "proc-1", "status": "completed"}"#,
        ],
    );
    write(
        "Encounter.000.ndjson",
        &[
            r#"{"resourceType": "Encounter", "id": "enc-1", "class": {"code": "AMB"}, "subject": {"reference": "Patient/pat-1"}, "period": {"start": "2020-01-01T10:00:00+01:00", "end": "2020-01-01T10:30:00+01:00"}, "reasonCode": [{"coding": [{"system": "http://snomed.info/sct", "code": "4.4054E+14"}]}]}"#,
            r#"{"resourceType": "Encounter", "id": "enc-2", "class": {"code": "AMB"}, "subject": {"reference": "Patient/ghost"}, "period": {"start": "2020-01-02T10:00:00Z"}}"#,
            r#"{"resourceType": "Encounter", "id": "enc-3", "class": {"code": "IMP"}, "subject": {"reference": "Patient/pat-1"}, "period": {"end": "2020-01-03T10:00:00Z"}}"#,
        ],
    );
    write(
        "Condition.000.ndjson",
        &[
            r#"{"resourceType": "Condition", "id": "c-1", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}, "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-404"}, "onsetDateTime": "2020-01-01T10:00:00Z"}"#,
            r#"{"resourceType": "Condition", "id": "c-2", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "4.4054E+14"}]}, "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-1"}, "onsetDateTime": "2020-01-01T10:00:00Z"}"#,
            r#"{"resourceType": "Condition", "id": "c-3", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}, "subject": {"reference": "Patient/pat-1"}, "encounter": {"reference": "Encounter/enc-1"}, "onsetDateTime": "2020-01-01T10:00:00Z"}"#,
        ],
    );
    write(
        "bundle.json",
        &[
            r#"{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Organization", "id": "org-1", "name": "HOPITAL NORD"}}, {"fullUrl": "urn:uuid:nothing"}]}"#,
        ],
    );
    write(
        "log.ndjson",
        &[r#"{"exportId": "export-1", "eventId": "kickoff"}"#],
    );
    let problems = [
        "malformed Patient.000.ndjson:2: not JSON",
        "malformed Patient.000.ndjson:3 (Patient/pat-3): birthDate is missing",
        "malformed Patient.000.ndjson:4 (Patinet/x): unknown resource type \"Patinet\"",
        "malformed Patient.000.ndjson:5 (no-type): no resourceType",
        "malformed Encounter.000.ndjson:2 (Encounter/enc-2): patient \"ghost\" is not in the export",
        "malformed Encounter.000.ndjson:3 (Encounter/enc-3): period.start is missing",
        "code dropped Encounter.000.ndjson:1 (Encounter/enc-1): reason code \"4.4054E+14\" is a number in scientific notation",
        "malformed Condition.000.ndjson:1 (Condition/c-1): encounter \"enc-404\" is not in the export",
        "malformed Condition.000.ndjson:2 (Condition/c-2): \"4.4054E+14\" is a number in scientific notation",
        "malformed bundle.json entry 2: entry without a resource",
    ];

    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let (code, out, err) = import_as(&server, "fhir", &dir, &["--strict"]);
    assert_eq!(code, 1, "{out}{err}");
    for p in problems {
        assert!(err.lines().any(|l| l.starts_with(p)), "{p}\n{err}");
    }
    assert_eq!(head(&server).await, 0, "--strict appends nothing");

    let (code, out, err) = import_as(&server, "fhir", &dir, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let reported = err
        .lines()
        .filter(|l| l.starts_with("malformed ") || l.starts_with("code dropped "))
        .count();
    assert_eq!(reported, problems.len(), "{err}");
    assert_eq!(line_value(&out, "malformed rows:"), 9, "{out}");
    assert_eq!(line_value(&out, "codes dropped:"), 1, "{out}");
    let skipped = out
        .lines()
        .find(|l| l.starts_with("not imported:"))
        .unwrap();
    assert!(
        skipped.contains("Procedure 1")
            && skipped.contains("files without FHIR resources (log.ndjson) 1"),
        "{skipped}"
    );
    // pat-1's registration, enc-1's contact (without its dropped reason), condition c-3.
    let mut client = server.client().await;
    let events = patient_events(&mut client, "pat-1").await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match e.payload.as_ref().unwrap() {
            Payload::PatientRegistered(_) => "registered",
            Payload::ContactMade(_) => "contact",
            Payload::ConditionRecorded(c) if c.diagnosis.as_ref().unwrap().code == "44054006" => {
                "c-3"
            }
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["registered", "contact", "c-3"]);
    assert_eq!(head(&server).await, 3);
    let (code, out, _) = import_as(&server, "fhir", &dir, &[]);
    assert_eq!(code, 0);
    assert_eq!(line_value(&out, "events appended:"), 0, "{out}");
    assert_eq!(line_value(&out, "already present:"), 3, "{out}");

    // The same checks on the CSV form: a condition's code and an encounter's reason code in
    // scientific notation.
    let csv = tmp.path().join("population");
    population::write_csv(&csv);
    for (file, from, to) in [
        ("conditions.csv", ",55822004,", ",5.5822E+07,"),
        ("encounters.csv", ",44054006,", ",4.4054E+14,"),
    ] {
        let path = csv.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from));
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }
    let (code, out, err) = import_as(&server, "synthea", &csv, &[]);
    assert_eq!(code, 0, "{out}{err}");
    for p in [
        "malformed conditions.csv:2 (patient pat-a, code 5.5822E+07): \"5.5822E+07\" is a number in scientific notation",
        "code dropped encounters.csv:2 (enc-a0): reason code \"4.4054E+14\" is a number in scientific notation",
    ] {
        assert!(err.lines().any(|l| l.starts_with(p)), "{p}\n{err}");
    }
    assert_eq!(line_value(&out, "malformed rows:"), 1, "{out}");
    assert_eq!(line_value(&out, "codes dropped:"), 1, "{out}");
}
