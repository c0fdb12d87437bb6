//! Follow-up templates per care pathway through the binary's Coordination gRPC service: a
//! heart-failure stay's steps follow the built-in PRADO template (home nurse and GP by day 7,
//! cardiologist within two months), done by visits and appointments of those roles; another stay
//! follows the default; a templates file (`JOURNEY_PATHWAYS`) changes them and the worklist's
//! ranking; a file that cannot be used stops the start, saying why.
use journey_proto::v1::{
    self, coordination_client::CoordinationClient, event::Payload, Event, FollowUpRequest,
    PathwayStep, WorklistItem, WorklistRequest, WorklistResponse,
};
use journey_tests::*;
use journey_tests::{event_at as ev, instant as t};

fn professional(id: &str, role: v1::Role) -> Option<v1::Professional> {
    Some(v1::Professional {
        id: id.into(),
        role: role as i32,
        name: id.into(),
        ..Default::default()
    })
}

/// A stay of `patient` with diagnosis `icd10`, discharged home on Tuesday 6 October 2026 at noon
/// in Paris.
fn stay(patient: &str, icd10: &str) -> Vec<Event> {
    let enc = format!("E-{patient}");
    vec![
        ev(
            patient,
            "2026-10-02T08:00:00Z",
            Payload::Admitted(v1::Admitted {
                encounter_id: enc.clone(),
                facility: Some(v1::Facility {
                    id: "F1".into(),
                    name: "Hôpital F1".into(),
                    territory: "T1".into(),
                    time_zone: "Europe/Paris".into(),
                }),
                unit: "cardio".into(),
                setting: v1::Setting::Inpatient as i32,
                admit_type: v1::AdmitType::Emergency as i32,
                diagnoses: vec![v1::Code {
                    system: "ICD-10".into(),
                    code: icd10.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        ),
        ev(
            patient,
            "2026-10-06T10:00:00Z",
            Payload::Discharged(v1::Discharged {
                encounter_id: enc,
                disposition: v1::Disposition::Home as i32,
                ..Default::default()
            }),
        ),
    ]
}

/// H1 (heart failure): its letter (complete, the same day) and medication reconciliation, the
/// home nurse's visit on day 2, an appointment with a specialist on 30 October, no GP: only the
/// pathway is left to do. O1 (a hip fracture): nothing.
fn scenario() -> Vec<Event> {
    let mut events = stay("H1", "I50.9");
    events.push(ev(
        "H1",
        "2026-10-06T14:00:00Z",
        Payload::DischargeLetterSent(v1::DischargeLetterSent {
            encounter_id: "E-H1".into(),
            channel: v1::LetterChannel::Mssante as i32,
            items_present: (1..=11).collect(),
            handed_to_patient: true,
            ..Default::default()
        }),
    ));
    events.push(ev(
        "H1",
        "2026-10-06T15:00:00Z",
        Payload::MedicationReconciled(v1::MedicationReconciled {
            encounter_id: "E-H1".into(),
            ..Default::default()
        }),
    ));
    events.push(ev(
        "H1",
        "2026-10-08T09:00:00Z",
        Payload::HomeVisitRecorded(v1::HomeVisitRecorded {
            professional: professional("nurse-7", v1::Role::HomeNurse),
            channel: v1::ContactChannel::Visit as i32,
            ..Default::default()
        }),
    ));
    events.push(ev(
        "H1",
        "2026-10-09T09:00:00Z",
        Payload::AppointmentScheduled(v1::AppointmentScheduled {
            appointment_id: "A-H1".into(),
            kind: "cardiologue".into(),
            due_at: Some(t("2026-10-30T09:00:00Z")),
            with: professional("cardio-1", v1::Role::Specialist),
            encounter_id: "E-H1".into(),
        }),
    ));
    events.extend(stay("O1", "S72.0"));
    events
}

async fn load(server: &Server, events: Vec<Event>) {
    let mut c = server.client().await;
    let head = append_batch(&mut c, events).await;
    wait_projected(&server.grpc, head).await;
}

async fn follow_up(
    server: &Server,
    patient: &str,
    as_of: &str,
) -> Result<WorklistItem, tonic::Status> {
    let mut c = CoordinationClient::new(client::channel(&server.grpc).await.unwrap());
    let r = c
        .follow_up(FollowUpRequest {
            patient_id: patient.into(),
            as_of: Some(t(as_of)),
        })
        .await?
        .into_inner();
    Ok(r.discharges.into_iter().next().expect("a discharge"))
}

/// The worklist as of `as_of` over 60 days (only what is overdue when `overdue_only`).
async fn worklist(server: &Server, as_of: &str, overdue_only: bool) -> WorklistResponse {
    let mut c = CoordinationClient::new(client::channel(&server.grpc).await.unwrap());
    c.worklist(WorklistRequest {
        as_of: Some(t(as_of)),
        window_days: 60,
        overdue_only,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

/// (step, due, state, done) of each step.
fn steps(i: &WorklistItem) -> Vec<(&str, i64, &str, Option<i64>)> {
    i.pathway_steps
        .iter()
        .map(|s: &PathwayStep| {
            (
                s.step.as_str(),
                s.due_at.as_ref().unwrap().seconds,
                s.state.as_str(),
                s.done_at.as_ref().map(|d| d.seconds),
            )
        })
        .collect()
}

fn at(rfc3339: &str) -> i64 {
    t(rfc3339).seconds
}

#[tokio::test]
async fn a_heart_failure_stay_follows_the_prado_template() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    load(&server, scenario()).await;

    let h1 = follow_up(&server, "H1", "2026-10-20T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(h1.pathway, "heart_failure");
    // Day 7 is Tuesday 13 October, due by its end in Paris (summer time); two months, by the end
    // of 6 December (winter time).
    assert_eq!(
        steps(&h1),
        [
            (
                "home_nurse",
                at("2026-10-13T22:00:00Z"),
                "on_time",
                Some(at("2026-10-08T09:00:00Z"))
            ),
            ("gp", at("2026-10-13T22:00:00Z"), "overdue", None),
            ("cardiologist", at("2026-12-06T23:00:00Z"), "pending", None),
        ]
    );
    assert_eq!(
        h1.pathway_steps[0].roles,
        [v1::Role::HomeNurse as i32],
        "{h1:?}"
    );
    let o1 = follow_up(&server, "O1", "2026-10-20T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(o1.pathway, "default");
    assert!(o1.pathway_steps.is_empty());

    // The worklist carries the same steps.
    let list = worklist(&server, "2026-10-20T10:00:00Z", false).await;
    let row = list.items.iter().find(|i| i.patient_id == "H1").unwrap();
    assert_eq!(steps(row), steps(&h1));
    // The GP's step is what makes H1 overdue, ranked by how late it is: 6 whole days.
    assert_eq!(row.tasks, ["pathway_step_overdue"]);
    assert!(row.overdue);
    assert_eq!(row.urgency, 1_100 + 6 * 100);
    let overdue = worklist(&server, "2026-10-20T10:00:00Z", true).await;
    assert!(
        overdue.items.iter().any(|i| i.patient_id == "H1"),
        "{overdue:?}"
    );
    // Before day 7 is over, nothing of H1 is overdue.
    let early = worklist(&server, "2026-10-13T21:00:00Z", true).await;
    assert!(
        !early.items.iter().any(|i| i.patient_id == "H1"),
        "{early:?}"
    );

    // The pages, at the time they are read: the patient page in French with each step, the
    // worklist in English with the GP's visit overdue among what to do (H1 is listed: its
    // appointment is past due).
    let page = http_get(&server.http, "/patients/H1?lang=fr").await;
    for words in [
        "Parcours : Insuffisance cardiaque (PRADO)",
        "Infirmier à domicile — au plus tard le 13/10/2026 · <span class=\"\">fait le 08/10/2026</span>",
        "Médecin traitant — au plus tard le 13/10/2026 · <span class=\"overdue\">en retard de ",
        "Cardiologue — au plus tard le 06/12/2026",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    let list = http_get(&server.http, "/?lang=en&window=365").await;
    let row = list
        .split("data-patient-id=\"H1\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .unwrap_or_else(|| panic!("no H1 row: {list}"));
    assert!(row.contains("GP overdue (pathway)"), "{row}");
    assert!(!row.contains("Home nurse overdue"), "{row}");

    // The cardiologist's appointment completed: the step is done at its time.
    load(
        &server,
        vec![ev(
            "H1",
            "2026-10-30T10:00:00Z",
            Payload::AppointmentCompleted(v1::AppointmentCompleted {
                appointment_id: "A-H1".into(),
            }),
        )],
    )
    .await;
    let h1 = follow_up(&server, "H1", "2026-10-31T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(
        steps(&h1)[2],
        (
            "cardiologist",
            at("2026-12-06T23:00:00Z"),
            "on_time",
            Some(at("2026-10-30T09:00:00Z"))
        )
    );
    let page = http_get(&server.http, "/patients/H1?lang=en").await;
    assert!(
        page.contains("Cardiologist — by 6 Dec 2026 · <span class=\"\">done on 30 Oct 2026</span>"),
        "{page}"
    );
}

const FILE: &str = r#"{
  "pathways": [{
    "name": "heart_failure", "label": {"fr": "Insuffisance cardiaque", "en": "Heart failure"},
    "codes": ["I50"],
    "steps": [
      {"name": "home_nurse", "label": {"fr": "Infirmier", "en": "Nurse"}, "roles": ["home_nurse"], "within_days": 1},
      {"name": "gp", "label": {"fr": "Médecin traitant", "en": "GP"}, "roles": ["gp"], "within_working_days": 3}
    ]
  }],
  "default": {"name": "usual", "label": {"fr": "Habituel", "en": "Usual"},
    "steps": [{"name": "gp", "label": {"fr": "Médecin traitant", "en": "GP"}, "roles": ["gp"], "within_months": 1}]}
}"#;

#[tokio::test]
async fn a_templates_file_changes_the_steps() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pathways.json");
    std::fs::write(&file, FILE).unwrap();
    let data = dir.path().join("data");
    // First with the built-in templates: the GP 6 days late.
    let mut server = Server::start(&data, &[]);
    load(&server, scenario()).await;
    let h1 = follow_up(&server, "H1", "2026-10-20T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(h1.urgency, 1_100 + 6 * 100);
    assert_eq!(h1.pathway_steps.len(), 3);
    assert!(server.terminate().success());

    // The same node restarted with a templates file: the coordination view is rebuilt with them.
    let server =
        Server::start_with_env(&data, &[], &[("JOURNEY_PATHWAYS", file.to_str().unwrap())]);
    let mut c = server.client().await;
    let head = c
        .head(v1::HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position;
    wait_projected(&server.grpc, head).await;
    let h1 = follow_up(&server, "H1", "2026-10-20T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(h1.pathway, "heart_failure");
    // The nurse by the end of day 1 (Wednesday 7 October): her visit on the 8th is late. The GP
    // within three working days: by the end of Friday 9 October. No cardiologist step.
    assert_eq!(
        steps(&h1),
        [
            (
                "home_nurse",
                at("2026-10-07T22:00:00Z"),
                "late",
                Some(at("2026-10-08T09:00:00Z"))
            ),
            ("gp", at("2026-10-09T22:00:00Z"), "overdue", None),
        ]
    );
    // Ranked by the file's deadline: 10 whole days late, in the worklist's SQL order too (what
    // the view stored was derived again with the file's templates).
    assert_eq!(h1.urgency, 1_100 + 10 * 100);
    let list = worklist(&server, "2026-10-20T10:00:00Z", true).await;
    let row = list.items.iter().find(|i| i.patient_id == "H1").unwrap();
    assert_eq!(row.urgency, 1_100 + 10 * 100);
    // Every other stay: the file's default, a GP within a month.
    let o1 = follow_up(&server, "O1", "2026-10-20T10:00:00Z")
        .await
        .unwrap();
    assert_eq!(o1.pathway, "usual");
    assert_eq!(
        steps(&o1),
        [("gp", at("2026-11-06T23:00:00Z"), "pending", None)]
    );
}

#[tokio::test]
async fn a_templates_file_that_cannot_be_used_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pathways.json");
    std::fs::write(&file, FILE.replace("\"home_nurse\"]", "\"surgeon\"]")).unwrap();
    let data = dir.path().join("data");
    // The node does not start: a coordination view cannot be folded with these templates.
    let out = std::process::Command::new(journey_bin())
        .args([
            "up",
            "--insecure",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&data)
        .env("JOURNEY_PATHWAYS", &file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the care pathway templates cannot be used")
            && err.contains("unknown role \"surgeon\""),
        "{err}"
    );
}
