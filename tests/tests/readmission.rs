//! The readmission read model through its gRPC service: exact figures for a journey set that
//! exercises every rule, the same answers on SQLite and PostgreSQL, rebuild = incremental, and the
//! standalone service following the log live over NATS.
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        self, event::Payload, projections_client::ProjectionsClient,
        readmission_client::ReadmissionClient, AtRiskRequest, Event, GroupBy, HeadRequest,
        IndexStay, PatientStaysRequest, Period, ProjectionStatusRequest, RatesRequest,
    },
};
use journey_tests::*;
use std::process::Command;
use tonic::Code;

/// 2026-09-01T00:00:00Z
const DAY0: i64 = 1_788_220_800;

fn at(day: i64) -> Timestamp {
    Timestamp {
        seconds: DAY0 + day * 86_400 + 10 * 3600,
        nanos: 0,
    }
}

fn ev(patient: &str, day: i64, payload: Payload) -> Event {
    event(patient, at(day), payload)
}

fn admit(patient: &str, enc: &str, day: i64, facility: &str, elective: bool) -> Event {
    ev(
        patient,
        day,
        Payload::Admitted(v1::Admitted {
            encounter_id: enc.into(),
            facility: Some(v1::Facility {
                id: facility.into(),
                territory: "T1".into(),
                ..Default::default()
            }),
            unit: "cardio".into(),
            setting: v1::Setting::Inpatient as i32,
            admit_type: if elective {
                v1::AdmitType::Elective
            } else {
                v1::AdmitType::Emergency
            } as i32,
            diagnoses: vec![v1::Code {
                system: "ICD-10".into(),
                code: "I50.0".into(),
                display: String::new(),
            }],
            ..Default::default()
        }),
    )
}

fn discharge(patient: &str, enc: &str, day: i64, disposition: v1::Disposition) -> Event {
    ev(
        patient,
        day,
        Payload::Discharged(v1::Discharged {
            encounter_id: enc.into(),
            disposition: disposition as i32,
            ..Default::default()
        }),
    )
}

/// Journeys exercising each rule, one batch per patient, and the expected figures.
fn journeys() -> Vec<Vec<Event>> {
    use v1::Disposition::*;
    let r4_readmit = admit("R4", "R4-2", 10, "F1", false);
    let cancel = ev(
        "R4",
        10,
        Payload::AdmissionCancelled(v1::AdmissionCancelled {
            cancelled_event_id: r4_readmit.event_id.clone(),
            ..Default::default()
        }),
    );
    vec![
        // Readmitted after 8 days, unplanned; the readmission is itself an index stay.
        vec![
            admit("R1", "R1-1", 0, "F1", false),
            discharge("R1", "R1-1", 4, Home),
            admit("R1", "R1-2", 12, "F1", false),
            discharge("R1", "R1-2", 15, Home),
        ],
        // Planned (elective) readmission.
        vec![
            admit("R2", "R2-1", 0, "F1", true),
            discharge("R2", "R2-1", 2, Home),
            admit("R2", "R2-2", 20, "F1", true),
            discharge("R2", "R2-2", 21, Home),
        ],
        // A transfer to another acute hospital continues the stay; then an ED visit without admission.
        vec![
            admit("R3", "R3-1", 0, "F1", false),
            discharge("R3", "R3-1", 3, OtherAcuteHospital),
            admit("R3", "R3-2", 3, "F2", false),
            discharge("R3", "R3-2", 8, Home),
            ev(
                "R3",
                15,
                Payload::EmergencyVisit(v1::EmergencyVisit {
                    visit_id: "V1".into(),
                    facility: Some(v1::Facility {
                        id: "F2".into(),
                        ..Default::default()
                    }),
                    outcome: v1::EdOutcome::DischargedHome as i32,
                    ..Default::default()
                }),
            ),
        ],
        // A cancelled readmission is undone.
        vec![
            admit("R4", "R4-1", 0, "F1", false),
            discharge("R4", "R4-1", 5, Home),
            r4_readmit,
            cancel,
        ],
        // Death at discharge: no index stay.
        vec![
            admit("R5", "R5-1", 0, "F1", false),
            discharge("R5", "R5-1", 3, Deceased),
        ],
        // Against medical advice: not an index stay; the next stay is.
        vec![
            admit("R6", "R6-1", 0, "F1", false),
            discharge("R6", "R6-1", 2, AgainstMedicalAdvice),
            admit("R6", "R6-2", 5, "F1", false),
            discharge("R6", "R6-2", 7, Home),
        ],
        // Readmitted after 38 days: not a 30-day readmission.
        vec![
            admit("R7", "R7-1", 0, "F1", false),
            discharge("R7", "R7-1", 2, Home),
            admit("R7", "R7-2", 40, "F1", false),
            discharge("R7", "R7-2", 41, Home),
        ],
        // Day surgery, then HAD, then day surgery again within 30 days: no index stay, no
        // readmission; reported on their own.
        vec![
            in_setting(admit("S1", "S1-1", 0, "F1", true), v1::Setting::DaySurgery),
            discharge("S1", "S1-1", 0, Home),
            in_setting(admit("S1", "S1-2", 3, "F1", false), v1::Setting::Had),
            discharge("S1", "S1-2", 9, Home),
            in_setting(admit("S1", "S1-3", 12, "F1", true), v1::Setting::DaySurgery),
            discharge("S1", "S1-3", 12, Home),
        ],
    ]
}

fn in_setting(mut e: Event, setting: v1::Setting) -> Event {
    if let Some(Payload::Admitted(a)) = e.payload.as_mut() {
        a.setting = setting as i32;
        if setting == v1::Setting::Had {
            a.had_group = v1::HadGroup::AcuteChronic as i32;
        }
    }
    e
}

async fn load(server: &Server, batches: Vec<Vec<Event>>) -> u64 {
    let mut c = server.client().await;
    for b in batches {
        c.append(batch(b)).await.unwrap();
    }
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&server.grpc, head).await;
    head
}

async fn all_stays(grpc: &str) -> Vec<IndexStay> {
    all_stays_paged(grpc, 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn figures_follow_the_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    load(&server, journeys()).await;
    let mut c = ReadmissionClient::new(journey_tests::client::channel(&server.grpc).await.unwrap());

    let r = c
        .rates(RatesRequest {
            period: None,
            group_by: GroupBy::Facility as i32,
        })
        .await
        .unwrap()
        .into_inner();
    let total = r.total.unwrap();
    assert_eq!(
        (
            total.index_stays,
            total.readmissions,
            total.unplanned_readmissions,
            total.ed_revisits
        ),
        (9, 2, 1, 1)
    );
    let by: Vec<(String, u64, u64, u64)> = r
        .rows
        .iter()
        .map(|x| (x.key.clone(), x.index_stays, x.readmissions, x.ed_revisits))
        .collect();
    assert_eq!(by, vec![("F1".into(), 8, 2, 0), ("F2".into(), 1, 0, 1)]);
    assert!((r.rows[0].rate - 0.25).abs() < 1e-9);
    assert_eq!(
        (r.day_surgery_stays, r.had_stays),
        (2, 1),
        "reported on their own"
    );

    let stays = all_stays(&server.grpc).await;
    assert_eq!(stays.len(), 9, "paged through all index stays");
    let r3 = c
        .patient_stays(PatientStaysRequest {
            patient_id: "R3".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(r3.len(), 1, "a transfer chain is one stay");
    assert_eq!(
        (
            r3[0].first_encounter_id.as_str(),
            r3[0].encounter_id.as_str(),
            r3[0].length_of_stay_days
        ),
        ("R3-1", "R3-2", 8)
    );
    assert!(r3[0].ed_revisit && !r3[0].readmitted);
    let r1 = c
        .patient_stays(PatientStaysRequest {
            patient_id: "R1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(
        (r1[0].readmitted, r1[0].days_to_readmission, r1[0].unplanned),
        (true, 8, true)
    );
    assert_eq!(r1[0].discharge_date, "2026-09-05");
    // LACE of R1-1: LOS 4 → 4, emergency 3, Charlson (I50) 1, no ED → 8.
    assert_eq!(r1[0].lace, 8);
    let r2 = c
        .patient_stays(PatientStaysRequest {
            patient_id: "R2".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!((r2[0].readmitted, r2[0].unplanned), (true, false));
    for p in ["R4", "R6"] {
        let s = c
            .patient_stays(PatientStaysRequest {
                patient_id: p.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .stays;
        assert_eq!(s.len(), 1, "{p}");
        assert!(!s[0].readmitted, "{p}");
    }
    assert!(c
        .patient_stays(PatientStaysRequest {
            patient_id: "R5".into()
        })
        .await
        .unwrap()
        .into_inner()
        .stays
        .is_empty());

    // At risk on 2026-10-15: discharged since 2026-09-15, not readmitted: R1-2 (09-16), R2-2 (09-22), R7-2 (10-12).
    let risk = c
        .at_risk(AtRiskRequest {
            as_of_date: "2026-10-15".into(),
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    let mut ids: Vec<&str> = risk.iter().map(|s| s.encounter_id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, vec!["R1-2", "R2-2", "R7-2"]);
    assert!(
        risk.windows(2).all(|w| w[0].lace >= w[1].lace),
        "ordered by LACE"
    );

    let month = c
        .rates(RatesRequest {
            period: Some(Period {
                from_date: "2026-09-01".into(),
                to_date: "2026-09-10".into(),
            }),
            group_by: GroupBy::Month as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(month.rows.len(), 1);
    assert_eq!(month.rows[0].key, "2026-09");
    assert_eq!(month.total.unwrap().index_stays, 6);

    // Bad input.
    let bad = c
        .rates(RatesRequest {
            period: Some(Period {
                from_date: "2026-13-01".into(),
                to_date: String::new(),
            }),
            group_by: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(
        bad.message().contains("period.from_date"),
        "{}",
        bad.message()
    );
    let bad = c
        .rates(RatesRequest {
            period: None,
            group_by: 99,
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let mut p = ProjectionsClient::new(journey_tests::client::channel(&server.grpc).await.unwrap());
    let nf = p
        .rebuild(v1::RebuildRequest {
            projection: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(nf.code(), Code::NotFound);
}

/// A facility's time zone sets the calendar days: discharged 2026-10-01 at 23:30 UTC (already
/// Oct 2, 01:30 in Paris) and readmitted on Nov 1: 31 days in UTC, 30 days in Paris.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_days_are_the_facility_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let in_zone = |mut e: Event, tz: &str| {
        if let Some(Payload::Admitted(a)) = &mut e.payload {
            a.facility.as_mut().unwrap().time_zone = tz.into();
        }
        e
    };
    let late_evening = |mut e: Event| {
        e.occurred_at = Some(Timestamp {
            seconds: DAY0 + 30 * 86_400 + 23 * 3600 + 30 * 60,
            nanos: 0,
        });
        e
    };
    let journey = |p: &str, tz: &str| {
        vec![
            in_zone(admit(p, &format!("{p}-1"), 0, "F1", false), tz),
            late_evening(discharge(p, &format!("{p}-1"), 30, v1::Disposition::Home)),
            in_zone(admit(p, &format!("{p}-2"), 61, "F1", false), tz),
            discharge(p, &format!("{p}-2"), 63, v1::Disposition::Home),
        ]
    };
    load(
        &server,
        vec![journey("UTC1", ""), journey("PAR1", "Europe/Paris")],
    )
    .await;
    let mut c = ReadmissionClient::new(journey_tests::client::channel(&server.grpc).await.unwrap());
    let first_stay = |p: &str| PatientStaysRequest {
        patient_id: p.into(),
    };
    let utc = c
        .patient_stays(first_stay("UTC1"))
        .await
        .unwrap()
        .into_inner();
    let paris = c
        .patient_stays(first_stay("PAR1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (utc.stays[0].readmitted, paris.stays[0].readmitted),
        (false, true),
        "31 calendar days in UTC, 30 in Paris"
    );
    assert_eq!(paris.stays[0].days_to_readmission, 30);

    // An unknown zone name is refused at ingest, naming the field.
    let err = server
        .client()
        .await
        .append(batch(vec![in_zone(
            admit("BAD1", "BAD1-1", 0, "F1", false),
            "Paris",
        )]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("facility.time_zone"),
        "{}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_and_postgres_agree_and_rebuild_equals_incremental() {
    let pg = PgDb::create();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let lite = Server::start(d1.path(), &[]);
    let post = Server::start(d2.path(), &["--database-url", &pg.url]);
    // The same events (same ids) into both logs.
    let events = journeys();
    load(&lite, events.clone()).await;
    load(&post, events).await;
    let a = all_stays(&lite.grpc).await;
    let b = all_stays(&post.grpc).await;
    assert_eq!(a.len(), 9);
    assert_eq!(a, b, "SQLite and PostgreSQL give identical answers");

    for server in [&lite, &post] {
        let out = Command::new(journey_bin())
            .args(["rebuild", "readmission", "--server", &server.grpc])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("rebuilt"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("events/s"),
            "progress shown"
        );
        assert_eq!(all_stays(&server.grpc).await, a, "rebuild = incremental");
        let mut p =
            ProjectionsClient::new(journey_tests::client::channel(&server.grpc).await.unwrap());
        let s = p
            .status(ProjectionStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            s.projections[0].generation, 2,
            "swapped to the new generation"
        );
        assert_eq!(s.projections[0].checkpoint, s.log_head);
    }
    // Still live after the swap.
    let mut c = lite.client().await;
    c.append(batch(vec![
        admit("R8", "R8-1", 0, "F1", false),
        discharge("R8", "R8-1", 1, v1::Disposition::Home),
    ]))
    .await
    .unwrap();
    wait_projected(
        &lite.grpc,
        c.head(HeadRequest {}).await.unwrap().into_inner().position,
    )
    .await;
    assert_eq!(all_stays(&lite.grpc).await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_service_catches_up_then_follows_nats_live() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let log = Server::publishing(dir.path(), &nats, "E2E_RM");
    let mut batches = journeys();
    let later = batches.split_off(4);
    load(&log, batches).await;
    let db = format!("sqlite://{}/standalone.sqlite", dir.path().display());
    let service = serve_over_nats("readmission", &log.grpc, &nats.url(), "E2E_RM", &db);
    let head = load(&log, later).await;
    wait_projected(&service.grpc, head).await;
    assert_eq!(all_stays(&service.grpc).await, all_stays(&log.grpc).await);
    // More live events.
    let mut c = log.client().await;
    c.append(batch(vec![
        admit("R9", "R9-1", 0, "F1", false),
        discharge("R9", "R9-1", 1, v1::Disposition::Home),
    ]))
    .await
    .unwrap();
    wait_projected(&service.grpc, head + 2).await;
    assert_eq!(all_stays(&service.grpc).await.len(), 10);
}

#[test]
fn a_bad_database_url_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(journey_bin())
        .args([
            "up",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--database-url",
            "mysql://x",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported database url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A standalone projection killed with SIGKILL in the middle of its catch-up (mid-batch: the
/// transaction holding rows and checkpoint is lost whole) resumes from its checkpoint and ends with
/// exactly the tables of the in-process projection: nothing missed, nothing counted twice.
#[tokio::test]
async fn projection_killed_mid_batch_resumes_without_double_counting() {
    let dir = tempfile::tempdir().unwrap();
    let log = Server::start(dir.path(), &["--no-reactor"]);
    let seeded = ["--patients", "1500", "--days", "120", "--seed", "11"];
    simulate_into(&log.grpc, None, &seeded);
    let mut c = log.client().await;
    let head = c.head(HeadRequest {}).await.unwrap().into_inner().position;
    wait_projected(&log.grpc, head).await;

    let db = format!("sqlite://{}/killed.sqlite", dir.path().display());
    let args = [
        "serve",
        "readmission",
        "--log-url",
        &log.grpc,
        "--database-url",
        &db,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ];
    let mut kills = 0;
    let mut last = 0;
    // Kill it twice while it is part-way through the log.
    while kills < 2 {
        let mut service = spawn_ready(&args);
        let mut p =
            ProjectionsClient::new(journey_tests::client::channel(&service.grpc).await.unwrap());
        let started = p
            .status(ProjectionStatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .projections[0]
            .checkpoint;
        assert!(
            started >= last,
            "checkpoint went back from {last} to {started}"
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let now = p
                .status(ProjectionStatusRequest {})
                .await
                .unwrap()
                .into_inner()
                .projections[0]
                .checkpoint;
            if now > started {
                last = now;
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the catch-up did not move from {started} in a minute"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        service.kill9();
        kills += 1;
        assert!(
            last < head,
            "the catch-up finished before the kill; use a longer log"
        );
    }
    let service = spawn_ready(&args);
    wait_projected(&service.grpc, head).await;
    let expected = all_stays_paged(&log.grpc, 1000).await;
    assert!(
        expected.len() > 500,
        "a real workload: {} index stays",
        expected.len()
    );
    assert_eq!(all_stays_paged(&service.grpc, 1000).await, expected);
}
