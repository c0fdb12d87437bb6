//! `journey import synthea`: the shared Synthea exports through the real binary and server.
use futures::StreamExt;
use journey_proto::v1::{event::Payload, HeadRequest, ReadAllRequest};
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

fn import(server: &Server, dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(journey_bin())
        .args(["import", "synthea"])
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
    stderr
        .lines()
        .filter(|l| l.starts_with("refused encounters.csv:") && l.contains(&format!(") {kind}:")))
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
/// an inpatient encounter is an index stay when the patient is alive after its STOP day; it is
/// readmitted when the patient's next inpatient START is ≤ 30 calendar days after STOP; an ED
/// revisit is an emergency/urgent-care encounter within 30 days after STOP not followed by an
/// inpatient admission within 6 hours. Refused encounter rows are left out.
fn expected_figures(dir: &Path, refused_ids: &HashSet<String>) -> (u64, u64, u64) {
    use journey_proto::prost_types::Timestamp;
    let secs = |t: &str| {
        t.parse::<Timestamp>()
            .unwrap_or_else(|_| panic!("bad time {t}"))
            .seconds
    };
    let day = |s: i64| s.div_euclid(86_400);
    let deaths: HashMap<String, i64> = std::fs::read_to_string(dir.join("patients.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (!f[2].is_empty()).then(|| {
                (
                    f[0].to_string(),
                    secs(&format!("{}T00:00:00Z", f[2])) / 86_400,
                )
            })
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
    let (mut index, mut readmitted, mut revisits) = (0, 0, 0);
    for (p, stays) in &mut inpatient {
        stays.sort();
        let admissions: Vec<i64> = stays.iter().map(|s| s.0).collect();
        for (admit, discharge) in stays.iter() {
            let _ = admit;
            if deaths.get(p).is_some_and(|d| *d <= day(*discharge)) {
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
