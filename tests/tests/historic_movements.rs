//! Historic movements (IHE PAM-FR `ZBE-5 = Y`), movement corrections (Z99), leaves of absence
//! and class changes through gRPC Append, against the real binary (docs/design.md §3): a past
//! movement is cancelled or inserted only when flagged historic, and every read model then
//! answers exactly as it does for the same journey sent right the first time. Each journey is
//! written twice in one log, once with its corrections (patient `FIX-…`) and once as the
//! corrected history (patient `REF-…`), and the answers are compared.
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        self, audit_client::AuditClient, coordination_client::CoordinationClient, event::Payload,
        readmission_client::ReadmissionClient, AsOfRequest, AsOfStay, Event, FollowUpRequest,
        IndexStay, PatientStaysRequest,
    },
};
use journey_tests::*;
use tonic::Code;

/// 2026-09-01T00:00:00Z
const DAY0: i64 = 1_788_220_800;

/// Day `day` at `hour`:00 UTC.
fn at(day: i64, hour: i64) -> Timestamp {
    Timestamp {
        seconds: DAY0 + day * 86_400 + hour * 3600,
        nanos: 0,
    }
}

/// A movement's event with a fixed id (so the corrections can name it).
fn mv(patient: &str, id: &str, day: i64, hour: i64, payload: Payload) -> Event {
    Event {
        event_id: uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_OID,
            format!("{patient}/{id}").as_bytes(),
        )
        .to_string(),
        ..event(patient, at(day, hour), payload)
    }
}

fn id_of(patient: &str, id: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{patient}/{id}").as_bytes(),
    )
    .to_string()
}

fn admit(enc: &str, unit: &str, setting: v1::Setting) -> Payload {
    Payload::Admitted(v1::Admitted {
        encounter_id: enc.into(),
        facility: Some(v1::Facility {
            id: "CHU-N".into(),
            name: "CHU Nord".into(),
            territory: "T1".into(),
            time_zone: "Europe/Paris".into(),
        }),
        unit: unit.into(),
        setting: setting as i32,
        admit_type: v1::AdmitType::Emergency as i32,
        diagnoses: vec![v1::Code {
            system: "ICD-10".into(),
            code: "I50.0".into(),
            display: String::new(),
        }],
        ..Default::default()
    })
}

fn transfer(enc: &str, to: &str, historic: bool) -> Payload {
    Payload::Transferred(v1::Transferred {
        encounter_id: enc.into(),
        to_unit: to.into(),
        historic,
        ..Default::default()
    })
}

fn discharge(enc: &str, disposition: v1::Disposition) -> Payload {
    Payload::Discharged(v1::Discharged {
        encounter_id: enc.into(),
        disposition: disposition as i32,
        ..Default::default()
    })
}

/// The journeys, as (with corrections, sent right). Days and hours are the clinical times; the
/// corrections are sent last, as a hospital sends them.
fn journeys() -> Vec<(&'static str, Vec<Event>, Vec<Event>)> {
    use v1::Disposition::{Home, Rehab};
    use v1::Setting::{DaySurgery, Inpatient};
    let mut out = Vec::new();

    // 1. PAM-FR §5.3.7: a transfer found wrong after the discharge is cancelled (historic).
    let (f, r) = ("FIX-CANCEL", "REF-CANCEL");
    let fix = vec![
        mv(f, "1", 0, 18, admit("E1", "cardio", Inpatient)),
        mv(f, "2", 1, 7, transfer("E1", "bloc", false)),
        mv(f, "3", 1, 11, transfer("E1", "rea", false)),
        mv(f, "4", 1, 15, transfer("E1", "bloc", false)),
        mv(f, "6", 5, 11, discharge("E1", Home)),
        mv(
            f,
            "7",
            6,
            9,
            Payload::TransferCancelled(v1::TransferCancelled {
                cancelled_event_id: id_of(f, "4"),
                historic: true,
            }),
        ),
    ];
    let right = vec![
        mv(r, "1", 0, 18, admit("E1", "cardio", Inpatient)),
        mv(r, "2", 1, 7, transfer("E1", "bloc", false)),
        mv(r, "3", 1, 11, transfer("E1", "rea", false)),
        mv(r, "6", 5, 11, discharge("E1", Home)),
    ];
    out.push(("historic cancellation of a transfer", fix, right));

    // 2. PAM-FR §5.3.7: a forgotten ICU transfer inserted after the discharge (historic).
    let (f, r) = ("FIX-INSERT", "REF-INSERT");
    let fix = vec![
        mv(f, "1", 0, 18, admit("E1", "cardio", Inpatient)),
        mv(f, "2", 1, 7, transfer("E1", "bloc", false)),
        mv(f, "3", 1, 15, transfer("E1", "cardio", false)),
        mv(f, "4", 5, 11, discharge("E1", Home)),
        mv(f, "5", 1, 11, transfer("E1", "rea", true)),
    ];
    let right = vec![
        mv(r, "1", 0, 18, admit("E1", "cardio", Inpatient)),
        mv(r, "2", 1, 7, transfer("E1", "bloc", false)),
        mv(r, "5", 1, 11, transfer("E1", "rea", false)),
        mv(r, "3", 1, 15, transfer("E1", "cardio", false)),
        mv(r, "4", 5, 11, discharge("E1", Home)),
    ];
    out.push(("historic insertion of a transfer", fix, right));

    // 3. PAM-FR §5.3.7: a leave of absence cancelled after the discharge (A53 then A52).
    let (f, r) = ("FIX-LEAVE", "REF-LEAVE");
    let cancel = |p: &str, id: &str| {
        Payload::MovementCancelled(v1::MovementCancelled {
            cancelled_event_id: id_of(p, id),
            historic: true,
        })
    };
    let fix = vec![
        mv(f, "1", 0, 18, admit("E1", "cardio", Inpatient)),
        mv(
            f,
            "2",
            1,
            7,
            Payload::LeaveStarted(v1::LeaveStarted {
                encounter_id: "E1".into(),
                ..Default::default()
            }),
        ),
        mv(
            f,
            "3",
            1,
            15,
            Payload::LeaveEnded(v1::LeaveEnded {
                encounter_id: "E1".into(),
                ..Default::default()
            }),
        ),
        mv(f, "4", 2, 15, discharge("E1", Home)),
        mv(f, "5", 3, 9, cancel(f, "3")),
        mv(f, "6", 3, 9, cancel(f, "2")),
    ];
    let right = vec![
        mv(r, "1", 0, 18, admit("E1", "cardio", Inpatient)),
        mv(r, "4", 2, 15, discharge("E1", Home)),
    ];
    out.push(("historic cancellation of a leave", fix, right));

    // 4. Z99: the discharge was three days earlier, to rehabilitation, and its diagnosis with
    //    it (it counts in the Charlson index of the stay); a readmission follows.
    let (f, r) = ("FIX-Z99", "REF-Z99");
    let discharge_with = |disposition: v1::Disposition| {
        Payload::Discharged(v1::Discharged {
            encounter_id: "E1".into(),
            disposition: disposition as i32,
            diagnoses: vec![v1::Code {
                system: "ICD-10".into(),
                code: "C78.0".into(),
                display: String::new(),
            }],
            ..Default::default()
        })
    };
    let fix = vec![
        mv(f, "1", 0, 10, admit("E1", "cardio", Inpatient)),
        mv(f, "2", 7, 10, discharge_with(Home)),
        mv(
            f,
            "3",
            8,
            9,
            Payload::MovementCorrected(v1::MovementCorrected {
                corrected_event_id: id_of(f, "2"),
                moved_at: Some(at(4, 10)),
                disposition: Rehab as i32,
                ..Default::default()
            }),
        ),
        mv(f, "4", 20, 10, admit("E2", "cardio", Inpatient)),
        mv(f, "5", 24, 10, discharge("E2", Home)),
    ];
    let right = vec![
        mv(r, "1", 0, 10, admit("E1", "cardio", Inpatient)),
        mv(r, "2", 4, 10, discharge_with(Rehab)),
        mv(r, "4", 20, 10, admit("E2", "cardio", Inpatient)),
        mv(r, "5", 24, 10, discharge("E2", Home)),
    ];
    out.push(("a corrected discharge", fix, right));

    // 5. A06: a day case becomes an inpatient stay; the change was in fact at noon, to another
    //    unit (Z99 correcting the class change).
    let (f, r) = ("FIX-CLASS", "REF-CLASS");
    let to_inpatient = |unit: &str| {
        Payload::ClassChanged(v1::ClassChanged {
            encounter_id: "E1".into(),
            setting: Inpatient as i32,
            unit: unit.into(),
            ..Default::default()
        })
    };
    let fix = vec![
        mv(f, "1", 0, 8, admit("E1", "ambu", DaySurgery)),
        mv(f, "2", 0, 16, to_inpatient("chir")),
        mv(f, "3", 3, 10, discharge("E1", Home)),
        mv(
            f,
            "4",
            4,
            9,
            Payload::MovementCorrected(v1::MovementCorrected {
                corrected_event_id: id_of(f, "2"),
                moved_at: Some(at(0, 12)),
                unit: "chir-ortho".into(),
                ..Default::default()
            }),
        ),
    ];
    let right = vec![
        mv(r, "1", 0, 8, admit("E1", "ambu", DaySurgery)),
        mv(r, "2", 0, 12, to_inpatient("chir-ortho")),
        mv(r, "3", 3, 10, discharge("E1", Home)),
    ];
    out.push(("a class change", fix, right));
    out
}

/// A stay without what names its patient.
fn anonymous(mut s: IndexStay) -> IndexStay {
    s.patient_id.clear();
    s
}

/// What an as-of stay says, without its event ids.
fn stay_facts(
    s: &AsOfStay,
) -> (
    String,
    String,
    i32,
    Option<Timestamp>,
    Option<Timestamp>,
    i32,
) {
    (
        s.encounter_id.clone(),
        s.unit.clone(),
        s.setting,
        s.admitted_at,
        s.discharged_at,
        s.disposition,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_answer_as_if_the_corrected_history_had_been_sent_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut log = server.client().await;
    let cases = journeys();
    let mut head = 0;
    for (name, fix, right) in &cases {
        // one event per request, in the order a feed sends them
        for e in fix.iter().chain(right) {
            let r = log.append(batch(vec![e.clone()])).await;
            let r = r.unwrap_or_else(|e| panic!("{name}: refused: {e:?}"));
            head = r.into_inner().appended[0].position;
        }
    }
    wait_projected(&server.grpc, head).await;

    let channel = journey_tests::client::channel(&server.grpc).await.unwrap();
    let mut readmission = ReadmissionClient::new(channel.clone());
    let mut coordination = CoordinationClient::new(channel.clone());
    let mut audit = AuditClient::new(channel);
    for (name, fix, right) in &cases {
        let (f, r) = (fix[0].patient_id.clone(), right[0].patient_id.clone());
        let stays = |p: String| PatientStaysRequest { patient_id: p };
        let fs = readmission.patient_stays(stays(f.clone())).await.unwrap();
        let rs = readmission.patient_stays(stays(r.clone())).await.unwrap();
        let (fs, rs) = (fs.into_inner().stays, rs.into_inner().stays);
        assert!(!rs.is_empty(), "{name}: the reference journey has stays");
        assert_eq!(
            fs.into_iter().map(anonymous).collect::<Vec<_>>(),
            rs.into_iter().map(anonymous).collect::<Vec<_>>(),
            "{name}: readmission stays"
        );

        let follow = |p: String| FollowUpRequest {
            patient_id: p,
            as_of: Some(at(30, 0)),
        };
        let ff = coordination.follow_up(follow(f.clone())).await.unwrap();
        let rf = coordination.follow_up(follow(r.clone())).await.unwrap();
        let (ff, rf) = (ff.into_inner(), rf.into_inner());
        assert!(
            !rf.discharges.is_empty(),
            "{name}: the reference has a discharge"
        );
        assert_eq!(
            format!("{:?}", ff.discharges).replace(&f, "P"),
            format!("{:?}", rf.discharges).replace(&r, "P"),
            "{name}: coordination follow-up"
        );

        // as of every half day of the journey, as known now
        for half_days in 0..20 {
            let t = at(half_days / 2, 12 * (half_days % 2));
            let req = |p: String| AsOfRequest {
                patient_id: p,
                clinical_time: Some(t),
                recorded_time: None,
            };
            let fa = audit.as_of(req(f.clone())).await.unwrap().into_inner();
            let ra = audit.as_of(req(r.clone())).await.unwrap().into_inner();
            let facts = |a: &v1::AsOfResponse| {
                (
                    a.open_stays.iter().map(stay_facts).collect::<Vec<_>>(),
                    a.discharged_stays
                        .iter()
                        .map(stay_facts)
                        .collect::<Vec<_>>(),
                )
            };
            assert_eq!(facts(&fa), facts(&ra), "{name}: as of {t:?}");
        }
    }

    // what the journeys show, spelt out
    let unit_at = |p: &str, day: i64, hour: i64| {
        let mut audit = audit.clone();
        let p = p.to_owned();
        async move {
            let a = audit
                .as_of(AsOfRequest {
                    patient_id: p,
                    clinical_time: Some(at(day, hour)),
                    recorded_time: None,
                })
                .await
                .unwrap()
                .into_inner();
            a.open_stays.first().map(|s| s.unit.clone())
        }
    };
    assert_eq!(unit_at("FIX-INSERT", 1, 12).await.as_deref(), Some("rea"));
    let z99 = readmission
        .patient_stays(PatientStaysRequest {
            patient_id: "FIX-Z99".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(z99[0].length_of_stay_days, 4, "the corrected discharge");
    assert!(
        z99[0].charlson >= 6,
        "the discharge's diagnosis (metastatic cancer) counted at its corrected time: {:?}",
        z99[0]
    );
    assert_eq!(z99[0].disposition, v1::Disposition::Rehab as i32);
    let cancelled = readmission
        .patient_stays(PatientStaysRequest {
            patient_id: "FIX-CANCEL".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(cancelled[0].unit, "rea", "the unit at discharge");
    let class = readmission
        .patient_stays(PatientStaysRequest {
            patient_id: "FIX-CLASS".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .stays;
    assert_eq!(
        class.len(),
        1,
        "a day case turned inpatient is an index stay"
    );
    assert_eq!(class[0].unit, "chir-ortho", "the corrected unit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_movement_is_corrected_only_when_flagged_historic() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut log = server.client().await;
    let p = "P-REFUSED";
    let stay = vec![
        mv(p, "1", 0, 18, admit("E1", "cardio", v1::Setting::Inpatient)),
        mv(p, "2", 1, 7, transfer("E1", "bloc", false)),
        mv(p, "3", 1, 11, transfer("E1", "rea", false)),
        mv(p, "4", 5, 11, discharge("E1", v1::Disposition::Home)),
    ];
    append_batch(&mut log, stay).await;
    let before = patient_events(&mut log, p).await.len();

    let refused = |e: Event| {
        let mut log = log.clone();
        async move {
            let status = log.append(batch(vec![e])).await.unwrap_err();
            let reason = tonic_types::StatusExt::get_details_precondition_failure(&status)
                .and_then(|f| f.violations.first().map(|v| v.r#type.clone()))
                .unwrap_or_default();
            (status.code(), reason, status.message().to_owned())
        }
    };
    // a plain cancellation of a past transfer
    let (code, reason, message) = refused(mv(
        p,
        "5",
        6,
        9,
        Payload::TransferCancelled(v1::TransferCancelled {
            cancelled_event_id: id_of(p, "2"),
            historic: false,
        }),
    ))
    .await;
    assert_eq!(code, Code::FailedPrecondition);
    assert_eq!(reason, "not_latest_movement", "{message}");
    assert!(message.contains("historic"), "says how: {message}");
    // a transfer after the stay, even historic
    let (code, reason, _) = refused(mv(p, "6", 7, 9, transfer("E1", "x", true))).await;
    assert_eq!(
        (code, reason.as_str()),
        (Code::FailedPrecondition, "after_discharge")
    );
    // a correction moving the discharge before a transfer
    let (_, reason, _) = refused(mv(
        p,
        "7",
        7,
        9,
        Payload::MovementCorrected(v1::MovementCorrected {
            corrected_event_id: id_of(p, "4"),
            moved_at: Some(at(1, 9)),
            ..Default::default()
        }),
    ))
    .await;
    assert_eq!(reason, "after_discharge");
    // a correction naming nothing
    let (_, reason, _) = refused(mv(
        p,
        "8",
        7,
        9,
        Payload::MovementCorrected(v1::MovementCorrected {
            corrected_event_id: id_of(p, "nothing"),
            moved_at: Some(at(1, 9)),
            ..Default::default()
        }),
    ))
    .await;
    assert_eq!(reason, "corrected_event_unknown");
    assert_eq!(
        patient_events(&mut log, p).await.len(),
        before,
        "nothing written"
    );
}
