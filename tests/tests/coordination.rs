//! The coordination read model through its gRPC service and its dashboard: worklist rules and
//! order, filters, paging and bad input, one patient's follow-up, weekly indicators, the same
//! answers on SQLite and PostgreSQL and after a rebuild, and the dashboard in a real headless
//! Chromium (DOM assertions, screenshot under `target/`).
use journey_proto::v1::{
    self, coordination_client::CoordinationClient, event::Payload,
    projections_client::ProjectionsClient, Event, FollowUpRequest, HeadRequest, IndicatorsRequest,
    Period, RebuildRequest, WeekIndicators, WorklistRequest, WorklistResponse,
};
use journey_tests::*;
use journey_tests::{event_at as ev, instant as t};
use std::{path::PathBuf, process::Command};
use tonic::Code;

fn facility(id: &str) -> v1::Facility {
    v1::Facility {
        id: id.into(),
        name: format!("Hôpital {id}"),
        territory: if id == "F2" { "T2" } else { "T1" }.into(),
        ..Default::default()
    }
}

fn admit(patient: &str, enc: &str, at: &str, fac: &str) -> Event {
    ev(
        patient,
        at,
        Payload::Admitted(v1::Admitted {
            encounter_id: enc.into(),
            facility: Some(facility(fac)),
            unit: "cardio".into(),
            setting: v1::Setting::Inpatient as i32,
            admit_type: v1::AdmitType::Emergency as i32,
            ..Default::default()
        }),
    )
}

fn discharge(patient: &str, enc: &str, at: &str) -> Event {
    ev(
        patient,
        at,
        Payload::Discharged(v1::Discharged {
            encounter_id: enc.into(),
            disposition: v1::Disposition::Home as i32,
            ..Default::default()
        }),
    )
}

fn letter(patient: &str, enc: &str, at: &str, items: i32) -> Event {
    ev(
        patient,
        at,
        Payload::DischargeLetterSent(v1::DischargeLetterSent {
            encounter_id: enc.into(),
            channel: v1::LetterChannel::Mssante as i32,
            items_present: (1..=items).collect(),
            ..Default::default()
        }),
    )
}

fn contact(patient: &str, at: &str) -> Event {
    ev(
        patient,
        at,
        Payload::ContactMade(v1::ContactMade {
            channel: v1::ContactChannel::Phone as i32,
            reason: "first contact".into(),
            ..Default::default()
        }),
    )
}

fn reconciled(patient: &str, enc: &str, at: &str) -> Event {
    ev(
        patient,
        at,
        Payload::MedicationReconciled(v1::MedicationReconciled {
            encounter_id: enc.into(),
            ..Default::default()
        }),
    )
}

fn appointment(patient: &str, enc: &str, id: &str, at: &str, due: &str) -> Event {
    ev(
        patient,
        at,
        Payload::AppointmentScheduled(v1::AppointmentScheduled {
            appointment_id: id.into(),
            kind: "J+7 GP".into(),
            due_at: Some(t(due)),
            encounter_id: enc.into(),
            ..Default::default()
        }),
    )
}

fn alert(patient: &str, id: &str, at: &str, severity: v1::Severity) -> Event {
    ev(
        patient,
        at,
        Payload::AlertRaised(v1::AlertRaised {
            alert_id: id.into(),
            severity: severity as i32,
            reason: "reported by the home nurse".into(),
            ..Default::default()
        }),
    )
}

/// The scenario (week of Monday 5 October 2026), one batch per patient:
/// P1 everything on time; P2 late and incomplete letter, late first contact, a referent;
/// P3 nothing done and a critical alert; P4 missed appointment and an acknowledged moderate alert;
/// P5 in HAD (palliative), not discharged; P6 readmitted (in hospital again); P7 at F2, nothing done.
fn scenario() -> Vec<Vec<Event>> {
    let mut p1 = vec![
        admit("P1", "E1", "2026-10-05T08:00:00Z", "F1"),
        discharge("P1", "E1", "2026-10-06T10:00:00Z"),
        letter("P1", "E1", "2026-10-06T14:00:00Z", 11),
        reconciled("P1", "E1", "2026-10-07T08:00:00Z"),
        contact("P1", "2026-10-07T09:00:00Z"),
        appointment(
            "P1",
            "E1",
            "A1",
            "2026-10-06T11:00:00Z",
            "2026-10-13T09:00:00Z",
        ),
        ev(
            "P1",
            "2026-10-10T20:00:00Z",
            Payload::EmergencyVisit(v1::EmergencyVisit {
                visit_id: "ED1".into(),
                facility: Some(facility("F1")),
                outcome: v1::EdOutcome::DischargedHome as i32,
                ..Default::default()
            }),
        ),
    ];
    p1.push(ev(
        "P1",
        "2026-10-13T09:30:00Z",
        Payload::AppointmentCompleted(v1::AppointmentCompleted {
            appointment_id: "A1".into(),
        }),
    ));
    let p2 = vec![
        admit("P2", "E2", "2026-10-05T08:00:00Z", "F1"),
        discharge("P2", "E2", "2026-10-09T15:00:00Z"),
        letter("P2", "E2", "2026-10-12T09:00:00Z", 8),
        ev(
            "P2",
            "2026-10-09T16:00:00Z",
            Payload::ReferentAssigned(v1::ReferentAssigned {
                role: v1::Role::HomeNurse as i32,
                professional: Some(v1::Professional {
                    id: "rpps-1".into(),
                    role: v1::Role::HomeNurse as i32,
                    name: "Mme Infirmière".into(),
                    ..Default::default()
                }),
            }),
        ),
        ev(
            "P2",
            "2026-10-14T09:00:00Z",
            Payload::HomeVisitRecorded(v1::HomeVisitRecorded {
                channel: v1::ContactChannel::Visit as i32,
                duration_minutes: 30,
                ..Default::default()
            }),
        ),
    ];
    let p3 = vec![
        admit("P3", "E3", "2026-10-05T08:00:00Z", "F1"),
        discharge("P3", "E3", "2026-10-07T10:00:00Z"),
        alert("P3", "AL3", "2026-10-08T10:00:00Z", v1::Severity::Critical),
    ];
    let p4 = vec![
        admit("P4", "E4", "2026-10-05T08:00:00Z", "F1"),
        discharge("P4", "E4", "2026-10-08T10:00:00Z"),
        letter("P4", "E4", "2026-10-08T12:00:00Z", 11),
        reconciled("P4", "E4", "2026-10-09T08:00:00Z"),
        contact("P4", "2026-10-09T09:00:00Z"),
        appointment(
            "P4",
            "E4",
            "A4",
            "2026-10-08T11:00:00Z",
            "2026-10-15T09:00:00Z",
        ),
        alert("P4", "AL4", "2026-10-09T10:00:00Z", v1::Severity::Moderate),
        ev(
            "P4",
            "2026-10-09T11:00:00Z",
            Payload::AlertAcknowledged(v1::AlertAcknowledged {
                alert_id: "AL4".into(),
            }),
        ),
        ev(
            "P4",
            "2026-10-15T18:00:00Z",
            Payload::AppointmentMissed(v1::AppointmentMissed {
                appointment_id: "A4".into(),
                reason: "not home".into(),
            }),
        ),
    ];
    let p5 = vec![ev(
        "P5",
        "2026-10-01T08:00:00Z",
        Payload::Admitted(v1::Admitted {
            encounter_id: "E5".into(),
            facility: Some(facility("F1")),
            unit: "HAD".into(),
            setting: v1::Setting::Had as i32,
            had_group: v1::HadGroup::Palliative as i32,
            admit_type: v1::AdmitType::Elective as i32,
            ..Default::default()
        }),
    )];
    let p6 = vec![
        admit("P6", "E6", "2026-10-05T08:00:00Z", "F1"),
        discharge("P6", "E6", "2026-10-06T10:00:00Z"),
        admit("P6", "E6b", "2026-10-14T08:00:00Z", "F1"),
    ];
    let p7 = vec![
        admit("P7", "E7", "2026-10-05T08:00:00Z", "F2"),
        discharge("P7", "E7", "2026-10-07T10:00:00Z"),
    ];
    vec![p1, p2, p3, p4, p5, p6, p7]
}

const AS_OF: &str = "2026-10-16T12:00:00Z";

async fn load(server: &Server) -> u64 {
    let mut c = server.client().await;
    for events in scenario() {
        c.append(batch(events)).await.expect("scenario appends");
    }
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&server.grpc, head).await;
    head
}

async fn coordination(server: &Server) -> CoordinationClient<tonic::transport::Channel> {
    CoordinationClient::new(journey_tests::client::channel(&server.grpc).await.unwrap())
}

fn request() -> WorklistRequest {
    WorklistRequest {
        as_of: Some(t(AS_OF)),
        ..Default::default()
    }
}

async fn worklist(server: &Server, req: WorklistRequest) -> WorklistResponse {
    coordination(server)
        .await
        .worklist(req)
        .await
        .expect("worklist")
        .into_inner()
}

fn ids(r: &WorklistResponse) -> Vec<&str> {
    r.items.iter().map(|i| i.patient_id.as_str()).collect()
}

async fn week_rows(server: &Server, req: IndicatorsRequest) -> Vec<WeekIndicators> {
    coordination(server)
        .await
        .indicators(req)
        .await
        .expect("indicators")
        .into_inner()
        .weeks
}

fn two_weeks(territory: &str) -> IndicatorsRequest {
    IndicatorsRequest {
        period: Some(Period {
            from_date: "2026-10-05".into(),
            to_date: "2026-10-18".into(),
        }),
        territory: territory.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn worklist_rules_order_filters_and_paging() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    load(&server).await;

    let all = worklist(&server, request()).await;
    // P5 (HAD, still admitted) and P6 (back in hospital) are not followed at home.
    assert_eq!(ids(&all), ["P3", "P7", "P4", "P2", "P1"], "{all:#?}");
    assert_eq!(all.total, 5);
    let item = |id: &str| all.items.iter().find(|i| i.patient_id == id).unwrap();

    let p1 = item("P1");
    assert_eq!(
        (
            p1.letter.as_str(),
            p1.first_contact.as_str(),
            p1.medication_reconciliation.as_str()
        ),
        ("on_time", "on_time", "on_time")
    );
    assert_eq!(
        (
            p1.letter_delay_days,
            p1.letter_items_present,
            p1.letter_items_required
        ),
        (0, 11, 11)
    );
    assert_eq!(
        (p1.first_contact_delay_hours, p1.appointments_done),
        (23, 1)
    );
    assert!(!p1.overdue && p1.tasks.is_empty() && p1.urgency == 0);

    let p2 = item("P2");
    assert_eq!(
        (
            p2.letter.as_str(),
            p2.letter_delay_days,
            p2.letter_items_present
        ),
        ("late", 3, 8)
    );
    // Discharged Friday: due by the end of Tuesday (Paris); the visit came on Wednesday.
    assert_eq!(
        (p2.first_contact.as_str(), p2.first_contact_delay_hours),
        ("late", 114)
    );
    assert_eq!(p2.first_contact_due_at, Some(t("2026-10-13T22:00:00Z")));
    // Reconciliation is due 7 days after discharge (16 Oct 15:00): still pending.
    assert_eq!(p2.medication_reconciliation, "pending");
    assert!(!p2.overdue);
    assert_eq!(p2.tasks, ["letter_incomplete"]);
    assert_eq!(p2.referents.len(), 1);
    assert_eq!(p2.referents[0].professional_id, "rpps-1");

    let p3 = item("P3");
    assert_eq!(
        (
            p3.letter.as_str(),
            p3.first_contact.as_str(),
            p3.medication_reconciliation.as_str()
        ),
        ("overdue", "overdue", "overdue")
    );
    assert_eq!((p3.open_alerts_critical, p3.unacknowledged_alerts), (1, 1));
    assert_eq!(p3.oldest_open_alert_age_hours, 8 * 24 + 2);
    assert_eq!(
        p3.tasks,
        [
            "critical_alert_open",
            "first_contact_overdue",
            "letter_overdue",
            "reconciliation_overdue"
        ]
    );

    let p4 = item("P4");
    assert_eq!(
        (
            p4.appointments_missed,
            p4.open_alerts_moderate,
            p4.unacknowledged_alerts
        ),
        (1, 1, 0)
    );
    // Its alert is acknowledged: left to close, not "open".
    assert_eq!(p4.tasks, ["alert_acknowledged", "appointment_missed"]);
    assert!(p4.overdue);
    assert_eq!(item("P7").facility_id, "F2");

    // Filters.
    let overdue = worklist(
        &server,
        WorklistRequest {
            overdue_only: true,
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&overdue), ["P3", "P7", "P4"]);
    let critical = worklist(
        &server,
        WorklistRequest {
            min_alert_severity: 4,
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&critical), ["P3"]);
    let moderate = worklist(
        &server,
        WorklistRequest {
            min_alert_severity: 2,
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&moderate), ["P3", "P4"]);
    let f2 = worklist(
        &server,
        WorklistRequest {
            facility_id: "F2".into(),
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&f2), ["P7"]);
    let t1 = worklist(
        &server,
        WorklistRequest {
            territory: "T1".into(),
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&t1), ["P3", "P4", "P2", "P1"]);
    let nurse = worklist(
        &server,
        WorklistRequest {
            referent_id: "rpps-1".into(),
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&nurse), ["P2"]);
    // A week later than the 30-day window: only the patients with a task still open (an alert
    // not resolved, an appointment past due, no first contact yet), whatever their discharge date.
    let later = worklist(
        &server,
        WorklistRequest {
            as_of: Some(t("2026-11-20T00:00:00Z")),
            ..request()
        },
    )
    .await;
    assert_eq!(ids(&later), ["P3", "P7", "P4"]);

    // Paging walks the same order without gaps or repeats.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = worklist(
            &server,
            WorklistRequest {
                page_size: 2,
                page_token: token.clone(),
                ..request()
            },
        )
        .await;
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|i| i.patient_id.clone()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, ids(&all));

    // Bad input: precise INVALID_ARGUMENT.
    let mut c = coordination(&server).await;
    for (req, field) in [
        (
            WorklistRequest {
                page_token: "x".into(),
                ..request()
            },
            "page_token",
        ),
        (
            WorklistRequest {
                page_token: "99".into(),
                ..request()
            },
            "page_token",
        ),
        (
            WorklistRequest {
                min_alert_severity: 9,
                ..request()
            },
            "min_alert_severity",
        ),
        (
            WorklistRequest {
                window_days: 100_000,
                ..request()
            },
            "window_days",
        ),
    ] {
        let e = c.worklist(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().starts_with(field), "{}", e.message());
    }
}

#[tokio::test]
async fn follow_up_of_one_patient() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    load(&server).await;
    let mut c = coordination(&server).await;
    let p4 = c
        .follow_up(FollowUpRequest {
            patient_id: "P4".into(),
            as_of: Some(t(AS_OF)),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(p4.discharges.len(), 1);
    assert_eq!(p4.appointments.len(), 1);
    assert_eq!(
        (
            p4.appointments[0].appointment_id.as_str(),
            p4.appointments[0].state.as_str()
        ),
        ("A4", "missed")
    );
    assert_eq!(p4.alerts.len(), 1);
    assert!(p4.alerts[0].acknowledged && !p4.alerts[0].resolved);

    let e = c
        .follow_up(FollowUpRequest {
            patient_id: "nobody".into(),
            as_of: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c.follow_up(FollowUpRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

/// The expected figures of the scenario's two weeks (see `scenario`).
fn check_weeks(weeks: &[WeekIndicators]) {
    assert_eq!(weeks.len(), 2, "{weeks:#?}");
    let (w1, w2) = (&weeks[0], &weeks[1]);
    assert_eq!(
        (w1.week.as_str(), w2.week.as_str()),
        ("2026-10-05", "2026-10-12")
    );
    // P1, P2, P3, P4, P6, P7 left hospital that week.
    assert_eq!(w1.discharges, 6);
    assert_eq!(
        (w1.index_stays, w1.readmissions_30d, w1.ed_revisits_30d),
        (6, 1, 1)
    );
    assert!((w1.readmission_rate - 1.0 / 6.0).abs() < 1e-9);
    assert_eq!(w1.letters, 3);
    assert!((w1.letter_same_day_rate - 2.0 / 6.0).abs() < 1e-9);
    assert!((w1.letter_completeness - 30.0 / 33.0).abs() < 1e-9);
    assert_eq!(
        (
            w1.first_contacts,
            w1.first_contact_delay_median_hours,
            w1.first_contact_delay_p90_hours
        ),
        (3, 23, 114)
    );
    assert_eq!((w1.alerts_raised, w1.alerts_open), (2, 2));
    assert_eq!(
        (
            w1.had_palliative,
            w1.had_acute_chronic,
            w1.had_nursing_home_support
        ),
        (1, 0, 0)
    );
    assert_eq!(
        (
            w2.discharges,
            w2.appointments_due,
            w2.appointments_missed,
            w2.had_palliative
        ),
        (0, 2, 1, 1)
    );
    assert_eq!(w2.first_contact_delay_median_hours, -1);
}

#[tokio::test]
async fn indicators_sqlite_postgres_and_rebuild_agree() {
    let d1 = tempfile::tempdir().unwrap();
    let lite = Server::start(d1.path(), &[]);
    let pg = PgDb::create();
    let d2 = tempfile::tempdir().unwrap();
    let post = Server::start(d2.path(), &["--database-url", &pg.url]);
    load(&lite).await;
    load(&post).await;

    let weeks = week_rows(&lite, two_weeks("")).await;
    check_weeks(&weeks);
    assert_eq!(weeks, week_rows(&post, two_weeks("")).await);
    assert_eq!(
        worklist(&lite, request()).await.items,
        worklist(&post, request()).await.items
    );
    let t2 = week_rows(&lite, two_weeks("T2")).await;
    assert_eq!(
        (t2[0].discharges, t2[0].index_stays, t2[0].had_palliative),
        (1, 1, 0)
    );

    // Bad periods are refused.
    let mut c = coordination(&lite).await;
    let e = c
        .indicators(IndicatorsRequest {
            period: Some(Period {
                from_date: "2026-13-01".into(),
                to_date: String::new(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);

    // A rebuild gives the same answers as incremental projection.
    let before = worklist(&lite, request()).await.items;
    let mut p = ProjectionsClient::new(journey_tests::client::channel(&lite.grpc).await.unwrap());
    let mut stream = p
        .rebuild(RebuildRequest {
            projection: "coordination".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut done = false;
    while let Some(progress) = stream.message().await.unwrap() {
        done |= progress.done;
    }
    assert!(done, "the rebuild reports its end");
    let status = p
        .status(v1::ProjectionStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    let gen = status
        .projections
        .iter()
        .find(|s| s.name == "coordination")
        .unwrap()
        .generation;
    assert_eq!(gen, 2);
    assert_eq!(worklist(&lite, request()).await.items, before);
    check_weeks(&week_rows(&lite, two_weeks("")).await);
    let e = p
        .rebuild(RebuildRequest {
            projection: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

fn chromium() -> String {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(c).exists() {
            return c.into();
        }
    }
    panic!("Chromium is required for the dashboard test: apt-get install -y chromium (.ci/run does it)");
}

/// The DOM of `url` after Chromium loaded it.
fn dom(url: &str) -> String {
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rows(dom: &str) -> Vec<String> {
    dom.split("data-patient-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn dashboard_in_a_headless_browser() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    load(&server).await;
    // The dashboard shows the present: a window wide enough to reach back to the scenario.
    let base = &server.http;
    let overdue = dom(&format!("{base}/?window=3650&overdue=on"));
    let listed = rows(&overdue);
    for p in ["P3", "P7", "P4"] {
        assert!(
            listed.contains(&p.to_string()),
            "{p} missing from {listed:?}"
        );
    }
    assert!(
        !listed.contains(&"P1".to_string()),
        "P1 has nothing overdue: {listed:?}"
    );
    assert_eq!(listed[0], "P3", "the critical alert comes first");
    // The facility filter narrows the list.
    assert_eq!(
        rows(&dom(&format!("{base}/?window=3650&facility=F2"))),
        ["P7"]
    );
    // French.
    let fr = dom(&format!("{base}/?window=3650&lang=fr"));
    assert!(fr.contains("Liste de travail") && fr.contains("Lettre de liaison"));
    // The patient page shows the timeline.
    let page = dom(&format!("{base}/patients/P4"));
    for kind in [
        "Admitted",
        "Discharged",
        "DischargeLetterSent",
        "AppointmentMissed",
        "AlertAcknowledged",
    ] {
        assert!(
            page.contains(&format!("data-kind=\"{kind}\"")),
            "{kind} missing from the timeline"
        );
    }
    assert!(page.contains("id=\"timeline\""));
    // Indicators with their SVG charts.
    let ind = dom(&format!("{base}/indicators?from=2026-10-05&to=2026-10-18"));
    assert!(ind.contains("id=\"chart-readmission\"") && ind.contains("data-week=\"2026-10-05\""));

    // Bad filters: HTTP 400 with the reason.
    let resp = http_get_status(base, "/?color=red").await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(resp.contains("unknown filter &quot;color&quot;"), "{resp}");

    // A screenshot for people to look at.
    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
    std::fs::create_dir_all(&target).unwrap();
    let shot = target.join("dashboard-worklist.png");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,900",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("{base}/?window=3650"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && shot.exists(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The raw HTTP response (status line, headers, body) of a GET.
async fn http_get_status(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn standalone_coordination_service_over_nats() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let log = Server::publishing(dir.path(), &nats, "E2E_CO");
    // Half the journeys before the service starts (catch-up), half after (live over NATS).
    let mut batches = scenario();
    let later = batches.split_off(3);
    let mut c = log.client().await;
    for events in batches {
        c.append(batch(events)).await.unwrap();
    }
    let db = format!("sqlite://{}/coordination.sqlite", dir.path().display());
    let service = serve_over_nats("coordination", &log.grpc, &nats.url(), "E2E_CO", &db);
    for events in later {
        c.append(batch(events)).await.unwrap();
    }
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&service.grpc, head).await;
    wait_projected(&log.grpc, head).await;
    assert_eq!(
        worklist(&service, request()).await.items,
        worklist(&log, request()).await.items
    );
    check_weeks(&week_rows(&service, two_weeks("")).await);
    // Its dashboard reads the timeline from the remote log.
    let page = http_get(&service.http, "/patients/P4").await;
    assert!(page.contains("data-kind=\"AppointmentMissed\""), "{page}");
}
