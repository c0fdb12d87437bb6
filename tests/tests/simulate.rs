//! `journey simulate` against a real `journey up`: every generated event is accepted, the log
//! verifies, the journeys look like journeys (admissions, discharges, 30-day readmissions), and a
//! second run with the same seed appends nothing.
use journey_proto::v1::{
    event::Payload, AdmitType, Disposition, Event, HeadRequest, Setting, VerifyRequest,
};
use journey_tests::*;
use std::collections::{HashMap, HashSet};
use std::process::Command;

const DAY: i64 = 86_400;

fn simulate(server: &Server) -> (i32, String, String) {
    simulate_with(server, "50", "60")
}

fn simulate_with(server: &Server, patients: &str, days: &str) -> (i32, String, String) {
    let out = Command::new(journey_bin())
        .args([
            "simulate",
            "--patients",
            patients,
            "--days",
            days,
            "--seed",
            "7",
            "--server",
            &server.grpc,
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The number after `label` in the summary line.
fn figure(summary: &str, label: &str) -> u64 {
    let rest = &summary[summary
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {summary:?}"))
        + label.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {label:?} in {summary:?}"))
}

struct Movement {
    encounter: String,
    at: i64,
    inpatient: bool,
    admit_type: i32,
    disposition: i32,
}

/// Live admissions and discharges per patient (cancelled ones undone), in stream order.
fn movements(events: &[Event]) -> HashMap<String, (Vec<Movement>, Vec<Movement>)> {
    type Live = Vec<(String, Movement)>;
    let mut live: HashMap<String, (Live, Live)> = HashMap::new();
    let mut inpatient: HashMap<(String, String), bool> = HashMap::new();
    for e in events {
        let at = e.occurred_at.as_ref().unwrap().seconds;
        let (adm, dis) = live.entry(e.patient_id.clone()).or_default();
        match e.payload.as_ref().unwrap() {
            Payload::Admitted(a) => {
                let inp = a.setting == Setting::Inpatient as i32;
                inpatient.insert((e.patient_id.clone(), a.encounter_id.clone()), inp);
                adm.push((
                    e.event_id.clone(),
                    Movement {
                        encounter: a.encounter_id.clone(),
                        at,
                        inpatient: inp,
                        admit_type: a.admit_type,
                        disposition: 0,
                    },
                ));
            }
            Payload::Discharged(d) => dis.push((
                e.event_id.clone(),
                Movement {
                    encounter: d.encounter_id.clone(),
                    at,
                    inpatient: inpatient[&(e.patient_id.clone(), d.encounter_id.clone())],
                    admit_type: 0,
                    disposition: d.disposition,
                },
            )),
            Payload::AdmissionCancelled(c) => adm.retain(|(id, _)| *id != c.cancelled_event_id),
            Payload::DischargeCancelled(c) => dis.retain(|(id, _)| *id != c.cancelled_event_id),
            _ => {}
        }
    }
    live.into_iter()
        .map(|(p, (a, d))| {
            (
                p,
                (
                    a.into_iter().map(|x| x.1).collect(),
                    d.into_iter().map(|x| x.1).collect(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_appends_plausible_journeys_once() {
    let dir = tempfile::tempdir().unwrap();
    // The reactor would add its own alerts to the simulated ones: this test counts appended events.
    let server = Server::start(dir.path(), &["--no-reactor"]);

    let (code, out, err) = simulate(&server);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let summary = out
        .lines()
        .find(|l| l.starts_with("patients "))
        .unwrap_or_else(|| panic!("no summary line in {out:?}"));
    assert_eq!(figure(summary, "refused"), 0, "{out}");
    let appended = figure(summary, "events appended");
    assert!(appended > 500, "{summary}");
    assert_eq!(figure(summary, "already present"), 0, "{summary}");

    let mut client = server.client().await;
    let head = client.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(head.position, appended, "{summary}");
    let verified = client
        .verify(VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(verified.ok, "{verified:?}");
    assert_eq!(verified.checked, appended);

    let events = read_log(&server.grpc, None).await;
    assert_eq!(events.len() as u64, appended);
    let patients: HashSet<&str> = events.iter().map(|e| e.patient_id.as_str()).collect();
    assert_eq!(patients.len(), 50);

    // Plausible movements: every patient admitted at least once, most stays closed.
    let moves = movements(&events);
    let admitted: usize = moves.values().map(|(a, _)| a.len()).sum();
    let discharged: usize = moves.values().map(|(_, d)| d.len()).sum();
    assert!(moves.values().all(|(a, _)| !a.is_empty()));
    assert!((50..=400).contains(&admitted), "{admitted} admissions");
    assert!(discharged <= admitted, "{discharged} > {admitted}");
    assert!(
        discharged * 10 >= admitted * 7,
        "{discharged} discharges for {admitted} admissions"
    );
    let emergency = moves
        .values()
        .flat_map(|(a, _)| a)
        .filter(|m| m.admit_type == AdmitType::Emergency as i32)
        .count();
    assert!(
        emergency * 4 >= admitted && emergency < admitted,
        "{emergency} emergency of {admitted}"
    );

    // At least one 30-day readmission: an index inpatient discharge (alive, not against medical
    // advice, not to another acute hospital) followed by the patient's next inpatient admission
    // within 30 calendar days.
    let mut readmissions = 0;
    for (adm, dis) in moves.values() {
        for d in dis.iter().filter(|d| {
            d.inpatient
                && ![
                    Disposition::Deceased as i32,
                    Disposition::AgainstMedicalAdvice as i32,
                    Disposition::OtherAcuteHospital as i32,
                ]
                .contains(&d.disposition)
        }) {
            let next = adm
                .iter()
                .filter(|a| a.inpatient && a.at > d.at && a.encounter != d.encounter)
                .min_by_key(|a| a.at);
            if let Some(a) = next {
                if a.at.div_euclid(DAY) - d.at.div_euclid(DAY) <= 30 {
                    readmissions += 1;
                }
            }
        }
    }
    assert!(readmissions >= 1, "no 30-day readmission");

    // A second run with the same seed appends nothing.
    let (code, out, err) = simulate(&server);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let summary = out.lines().find(|l| l.starts_with("patients ")).unwrap();
    assert_eq!(figure(summary, "events appended"), 0, "{summary}");
    assert_eq!(figure(summary, "already present"), appended, "{summary}");
    assert_eq!(figure(summary, "refused"), 0, "{summary}");
    let again = client.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(again.position, head.position);
    assert_eq!(again.hash, head.hash);
    println!("{readmissions} readmissions within 30 days; {admitted} admissions, {discharged} discharges, {appended} events");
}

/// Over a few thousand index stays, the simulated 30-day readmission rate, as the readmission
/// read model counts it, is a realistic one (issue 3: about 10–20 %).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_readmission_rate_is_realistic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (code, out, err) = simulate_with(&server, "1500", "365");
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let head = server
        .client()
        .await
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position;
    let total = rates_total(&server.grpc, head).await;
    let rate = total.readmissions as f64 / total.index_stays as f64;
    println!(
        "{} readmissions of {} index stays: {rate:.3}",
        total.readmissions, total.index_stays
    );
    assert!(total.index_stays >= 1000, "{total:?}");
    assert!((0.10..=0.20).contains(&rate), "rate {rate:.3}: {total:?}");
}
