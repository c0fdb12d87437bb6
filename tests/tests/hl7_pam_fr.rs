//! IHE PAM-FR over MLLP against the real binary: the worked scenarios of PAM-FR 2.11.2 §5.3.7
//! (historic movements) as message sequences, each ending with the patient's movements (read from
//! the log) and the read models (Readmission.PatientStays, Coordination.FollowUp, the unit at a
//! clinical time in Audit.AsOf) exactly as the corrected history sent right the first time gives
//! them; class changes (A06/A07), the pending
//! discharge (A16/A25), the INS and its reliability (PID-32, A47); a crash forced between the log's
//! acknowledgement and the ACK; and `journey hl7 map | head -1`.
use journey_proto::v1::{self, event::Payload, Event};
use journey_tests::*;
use std::collections::HashMap;

mod hl7_mllp;
use hl7_mllp::*;

/// `HHMM` on day `day` of the scenario (day 0 is twenty days ago), as an HL7 time in UTC.
fn at(day: i64, hhmm: &str) -> String {
    let base = chrono::Utc::now().date_naive() - chrono::Duration::days(20);
    let date = base + chrono::Duration::days(day);
    format!("{}{hhmm}00+0000", date.format("%Y%m%d"))
}

/// A PAM-FR message about `patient` (encounter `ENC-<patient>`): PV1-3 = `unit`, the ZBE fields
/// `zbe` (`movement|time||action|historic|original trigger`), then `extra` segments.
fn pam(trigger: &str, control: &str, patient: &str, unit: &str, zbe: &str, extra: &str) -> Vec<u8> {
    let now = hl7_time(0);
    format!(
        "MSH|^~\\&|GAM|CHU-A|JOURNEY|BACKBONE|{now}||ADT^{trigger}^ADT_A01|{control}|P|2.5|||||FRA|UNICODE UTF-8\r\
EVN|{trigger}|{now}\r\
PID|1||{patient}^^^CHU-A^PI||DOE^JANE||19600101|F\r\
PV1|1|I|{unit}^^^FAC-H|R|||||||||||||||ENC-{patient}\r\
ZBE|{zbe}\r\
{extra}"
    )
    .into_bytes()
}

/// `D/HHMM` (day D of the scenario at HH:MM, as the PAM-FR tables write `11/10/2013 – 07h30`), as
/// an HL7 time.
fn when(day_time: &str) -> String {
    let (day, hhmm) = day_time.split_once('/').expect("D/HHMM");
    at(day.parse().unwrap(), hhmm)
}

/// Sends a scenario for `patient` over one connection, each message answered `AA` (see
/// [`send_step`]).
async fn send_all(mllp: &str, patient: &str, steps: &[&str]) {
    let mut c = Mllp::connect(mllp).await;
    for step in steps {
        let ack = send_step(&mut c, patient, step).await;
        assert_eq!(ack.code(), "AA", "{patient} {step}: {}", ack.text());
    }
}

/// Sends one step of a scenario, a line of a PAM-FR table: `trigger movement unit D/HHMM action
/// historic [original trigger]` (ZBE-1, PV1-3 with `-` for none, ZBE-2, ZBE-4, ZBE-5, ZBE-6);
/// discharges and corrections carry ZFM exit mode 8 (home). A movement id is the sender's, unique
/// across its patients: `1` is sent as `<patient>-1`.
async fn send_step(c: &mut Mllp, patient: &str, step: &str) -> Ack {
    let f: Vec<&str> = step.split_whitespace().collect();
    let [trigger, movement, unit, time, action, historic] = f[..6] else {
        panic!("{step}")
    };
    let original = f.get(6).copied().unwrap_or("");
    let unit = if unit == "-" { "" } else { unit };
    let zbe = format!(
        "{patient}-{movement}|{}||{action}|{historic}|{original}",
        when(time)
    );
    let extra = if ["A03", "Z99"].contains(&trigger) {
        "ZFM||8\r"
    } else {
        ""
    };
    let control = format!("{patient}-{trigger}-{movement}-{historic}");
    c.send(&pam(trigger, &control, patient, unit, &zbe, extra))
        .await
}

/// `step` is answered `AE` naming the journey rule `rule` (ERR-5), and nothing is written.
async fn refused(server: &Server, mllp: &str, patient: &str, step: &str, rule: &str) {
    let before = stream(server, patient).await;
    let ack = send_step(&mut Mllp::connect(mllp).await, patient, step).await;
    assert_eq!(ack.code(), "AE", "{step}: {}", ack.text());
    assert!(
        ack.field("ERR", 5).starts_with(&format!("{rule}^")),
        "{step}: {}",
        ack.text()
    );
    assert_eq!(
        stream(server, patient).await,
        before,
        "{step}: nothing written"
    );
}

/// The patient's live movements in clinical order, from the log: every admission, transfer,
/// leave, class change and discharge not cancelled, with its corrections applied, as
/// `"<kind> <unit or -> <YYYYMMDDHHMM>"` (UTC).
fn movements(events: &[Event]) -> Vec<String> {
    let mut cancelled = Vec::new();
    let mut corrections: HashMap<String, v1::MovementCorrected> = HashMap::new();
    for e in events {
        match e.payload.as_ref().unwrap() {
            Payload::AdmissionCancelled(c) => cancelled.push(c.cancelled_event_id.clone()),
            Payload::TransferCancelled(c) => cancelled.push(c.cancelled_event_id.clone()),
            Payload::DischargeCancelled(c) => cancelled.push(c.cancelled_event_id.clone()),
            Payload::MovementCancelled(c) => cancelled.push(c.cancelled_event_id.clone()),
            Payload::MovementCorrected(c) => {
                corrections.insert(c.corrected_event_id.clone(), c.clone());
            }
            _ => {}
        }
    }
    let mut live: Vec<(i64, &str, String)> = events
        .iter()
        .filter(|e| !cancelled.contains(&e.event_id))
        .filter_map(|e| {
            let (kind, unit) = match e.payload.as_ref().unwrap() {
                Payload::Admitted(a) => ("admitted", &a.unit),
                Payload::Transferred(t) => ("transferred", &t.to_unit),
                Payload::Discharged(_) => ("discharged", &String::new()),
                Payload::LeaveStarted(l) => ("leave", &l.unit),
                Payload::LeaveEnded(l) => ("back", &l.unit),
                Payload::ClassChanged(c) => ("class", &c.unit),
                _ => return None,
            };
            let (mut time, mut unit) = (e.occurred_at.unwrap().seconds, unit.clone());
            if let Some(c) = corrections.get(&e.event_id) {
                time = c.moved_at.map_or(time, |t| t.seconds);
                if !c.unit.is_empty() {
                    unit = c.unit.clone();
                }
            }
            Some((time, kind, unit))
        })
        .collect();
    live.sort_by_key(|m| m.0);
    live.into_iter()
        .map(|(time, kind, unit)| {
            let t = chrono::DateTime::from_timestamp(time, 0).unwrap();
            let unit = if unit.is_empty() { "-" } else { &unit };
            format!("{kind} {unit} {}", t.format("%Y%m%d%H%M"))
        })
        .collect()
}

/// [`movements`] as a scenario writes them: `kind unit D/HHMM`.
fn expected(rows: &[&str]) -> Vec<String> {
    rows.iter()
        .map(|row| {
            let (kind_unit, time) = row.rsplit_once(' ').unwrap();
            format!("{kind_unit} {}", &when(time)[..12])
        })
        .collect()
}

/// Both patients' read models, once the projections caught up with the log: the stays (one)
/// and the follow-up of the corrected history equal those of the history sent right.
async fn same_read_models(server: &Server, sent_late: &str, sent_right: &str) -> v1::IndexStay {
    wait_projected(&server.grpc, head(&mut server.client().await).await).await;
    let late = read_models(server, sent_late).await;
    let right = read_models(server, sent_right).await;
    assert_eq!(
        late, right,
        "{sent_late} (corrected history) vs {sent_right} (sent right)"
    );
    one_stay(late.0)
}

fn one_stay(mut stays: Vec<v1::IndexStay>) -> v1::IndexStay {
    assert_eq!(stays.len(), 1, "{stays:?}");
    stays.remove(0)
}

fn up(dir: &std::path::Path) -> (Server, String) {
    up_with_mllp(dir, &["--no-reactor"])
}

/// The unit `patient` is in at the clinical time `D/HHMM` (Audit.AsOf).
async fn unit_at(server: &Server, patient: &str, time: &str) -> String {
    let channel = journey_tests::client::channel(&server.grpc).await.unwrap();
    let state = v1::audit_client::AuditClient::new(channel)
        .as_of(v1::AsOfRequest {
            patient_id: patient.into(),
            clinical_time: Some(occurred(&when(time))),
            recorded_time: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.open_stays.len(), 1, "{patient} at {time}: {state:?}");
    state.open_stays[0].unit.clone()
}

/// The last event of `patient`'s stream, and the whole stream.
async fn last(server: &Server, patient: &str) -> (Payload, Vec<Event>) {
    let events = stream(server, patient).await;
    (events.last().unwrap().payload.clone().unwrap(), events)
}

/// §5.3.7 "Suppression d'une erreur dans les mouvements": the second stay in the theatre (movement
/// 4) was never made; it is cancelled after the discharge by an A12 with ZBE-5 = Y, PV1-3 = the
/// ICU (the unit of the movement before it).
#[tokio::test]
async fn a_transfer_cancelled_after_the_discharge_leaves_the_stay_as_if_never_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up(dir.path());
    let (late, right) = ("P-CANCEL-LATE", "P-CANCEL-RIGHT");
    send_all(
        &mllp,
        late,
        &[
            "A01 1 6000 0/1800 INSERT N",
            "A02 2 6050 1/0730 INSERT N",
            "A02 3 6055 1/1130 INSERT N",
            "A02 4 6050 1/1500 INSERT N",
            "A02 5 6000 1/1501 INSERT N",
            "A03 6 6000 5/1100 INSERT N",
        ],
    )
    .await;
    // Not flagged historic, the cancellation of a past movement is refused, as any cancellation
    // of a movement but the latest.
    let cancel = "A12 4 6055 1/1500 CANCEL";
    refused(
        &server,
        &mllp,
        late,
        &format!("{cancel} N"),
        "not_latest_movement",
    )
    .await;
    send_all(&mllp, late, &[&format!("{cancel} Y")]).await;
    let (Payload::TransferCancelled(c), events) = last(&server, late).await else {
        panic!("not a transfer cancelled")
    };
    assert!(c.historic, "ZBE-5 = Y");
    assert_eq!(
        movements(&events),
        expected(&[
            "admitted 6000 0/1800",
            "transferred 6050 1/0730",
            "transferred 6055 1/1130",
            "transferred 6000 1/1501",
            "discharged - 5/1100",
        ])
    );

    send_all(
        &mllp,
        right,
        &[
            "A01 1 6000 0/1800 INSERT N",
            "A02 2 6050 1/0730 INSERT N",
            "A02 3 6055 1/1130 INSERT N",
            "A02 5 6000 1/1501 INSERT N",
            "A03 6 6000 5/1100 INSERT N",
        ],
    )
    .await;
    let stay = same_read_models(&server, late, right).await;
    assert_eq!((stay.length_of_stay_days, stay.unit.as_str()), (5, "6000"));
    // At 15:00 on day 1 the patient was still in the ICU: the theatre at 15:00 never happened.
    for patient in [late, right] {
        assert_eq!(
            unit_at(&server, patient, "1/1500").await,
            "6055",
            "{patient}"
        );
    }
}

/// §5.3.7 "Ajout d'un mouvement historique": the ICU transfer (6055, 11:30) was forgotten and is
/// inserted after the discharge (A02, ZBE-1 = 5, ZBE-4 = INSERT, ZBE-5 = Y): the result equals the
/// journey sent right the first time over MLLP.
#[tokio::test]
async fn a_forgotten_icu_transfer_inserted_gives_the_journey_sent_right() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up(dir.path());
    let (late, right) = ("P-INSERT-LATE", "P-INSERT-RIGHT");
    send_all(
        &mllp,
        late,
        &[
            "A01 1 6000 0/1800 INSERT N",
            "A02 2 6050 1/0730 INSERT N",
            "A02 3 6000 1/1500 INSERT N",
            "A03 4 6000 5/1100 INSERT N",
            "A02 5 6055 1/1130 INSERT Y",
        ],
    )
    .await;
    send_all(
        &mllp,
        right,
        &[
            "A01 1 6000 0/1800 INSERT N",
            "A02 2 6050 1/0730 INSERT N",
            "A02 5 6055 1/1130 INSERT N",
            "A02 3 6000 1/1500 INSERT N",
            "A03 4 6000 5/1100 INSERT N",
        ],
    )
    .await;
    let (Payload::Transferred(t), events) = last(&server, late).await else {
        panic!("not a transfer")
    };
    assert!(t.historic, "ZBE-5 = Y");
    let journey = expected(&[
        "admitted 6000 0/1800",
        "transferred 6050 1/0730",
        "transferred 6055 1/1130",
        "transferred 6000 1/1500",
        "discharged - 5/1100",
    ]);
    assert_eq!(movements(&events), journey);
    assert_eq!(movements(&stream(&server, right).await), journey);
    let stay = same_read_models(&server, late, right).await;
    assert_eq!(stay.length_of_stay_days, 5);
    // At noon on day 1 the patient was in the ICU, as the inserted transfer says.
    for patient in [late, right] {
        assert_eq!(
            unit_at(&server, patient, "1/1200").await,
            "6055",
            "{patient}"
        );
    }
}

/// §5.3.7 "Cas des permissions, annulation de la permission": a leave (A21, movement 2) and its
/// return (A22, movement 3) are cancelled after the discharge, the return first (A53, ZBE-1 = 3,
/// PV1-3 = the leave's unit), then the leave (A52, ZBE-1 = 2, PV1-3 = cardio), both historic.
#[tokio::test]
async fn a_leave_of_absence_cancelled_leaves_the_stay_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up(dir.path());
    let (late, right) = ("P-LEAVE-LATE", "P-LEAVE-RIGHT");
    send_all(
        &mllp,
        late,
        &[
            "A01 1 6000 0/1800 INSERT N",
            "A21 2 -    1/0730 INSERT N",
            "A22 3 6000 1/1500 INSERT N",
            "A03 4 6000 2/1500 INSERT N",
        ],
    )
    .await;
    assert_eq!(
        movements(&stream(&server, late).await),
        expected(&[
            "admitted 6000 0/1800",
            "leave - 1/0730",
            "back 6000 1/1500",
            "discharged - 2/1500",
        ])
    );
    send_all(
        &mllp,
        late,
        &["A53 3 -    1/1500 CANCEL Y", "A52 2 6000 1/0730 CANCEL Y"],
    )
    .await;
    let events = stream(&server, late).await;
    let cancellations: Vec<bool> = events
        .iter()
        .filter_map(|e| match e.payload.as_ref().unwrap() {
            Payload::MovementCancelled(c) => Some(c.historic),
            _ => None,
        })
        .collect();
    assert_eq!(cancellations, [true, true]);
    assert_eq!(
        movements(&events),
        expected(&["admitted 6000 0/1800", "discharged - 2/1500",])
    );

    send_all(
        &mllp,
        right,
        &["A01 1 6000 0/1800 INSERT N", "A03 4 6000 2/1500 INSERT N"],
    )
    .await;
    let stay = same_read_models(&server, late, right).await;
    assert_eq!(stay.length_of_stay_days, 2);
}

/// A Z99 correcting the time of a discharge (ZBE-1 = the discharge's movement, ZBE-4 = UPDATE,
/// ZBE-6 = A03): the length of stay is exactly that of the stay sent right.
#[tokio::test]
async fn a_corrected_discharge_time_changes_the_length_of_stay_as_if_sent_right() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up(dir.path());
    let (late, right) = ("P-Z99-LATE", "P-Z99-RIGHT");
    send_all(
        &mllp,
        late,
        &["A01 1 6000 0/1800 INSERT N", "A03 2 6000 3/1100 INSERT N"],
    )
    .await;
    wait_projected(&server.grpc, head(&mut server.client().await).await).await;
    let (stays, _) = read_models(&server, late).await;
    assert_eq!(one_stay(stays).length_of_stay_days, 3, "as first sent");
    // A correction names a movement that was sent; else refused.
    refused(
        &server,
        &mllp,
        late,
        "Z99 9 6000 5/1100 UPDATE N A03",
        "corrected_event_unknown",
    )
    .await;
    send_all(&mllp, late, &["Z99 2 6000 5/1100 UPDATE N A03"]).await;
    let (Payload::MovementCorrected(c), events) = last(&server, late).await else {
        panic!("not a correction")
    };
    assert_eq!(
        c.corrected_event_id, events[2].event_id,
        "the discharge, named by its ZBE-1"
    );
    assert_eq!(c.disposition, v1::Disposition::Home as i32);
    assert_eq!(
        movements(&events),
        expected(&["admitted 6000 0/1800", "discharged - 5/1100",])
    );

    send_all(
        &mllp,
        right,
        &["A01 1 6000 0/1800 INSERT N", "A03 2 6000 5/1100 INSERT N"],
    )
    .await;
    let stay = same_read_models(&server, late, right).await;
    assert_eq!(stay.length_of_stay_days, 5);
}

/// PAM-FR §5.3.5: a class change is a movement (A06 or A07, ZBE-4 = INSERT), cancelled by the
/// opposite trigger naming it (ZBE-4 = CANCEL).
#[tokio::test]
async fn class_changes_and_their_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up_with_mllp(dir.path(), &["--no-read-models", "--no-reactor"]);
    let p = "P-CLASS";
    send_all(&mllp, p, &["A01 1 6000 0/1800 INSERT N"]).await;
    // Inpatient becomes day hospital (I → R: an A06), then outpatient (R → O: an A07) with the
    // class in PV1-2.
    let mut c = Mllp::connect(&mllp).await;
    for (trigger, movement, class, when) in [
        ("A06", "2", "R", at(1, "0900")),
        ("A07", "3", "O", at(2, "0900")),
    ] {
        let message = String::from_utf8(pam(
            trigger,
            &format!("C{movement}"),
            p,
            "6100",
            &format!("{p}-{movement}|{when}||INSERT|N"),
            "",
        ))
        .unwrap()
        .replace("PV1|1|I|", &format!("PV1|1|{class}|"));
        let ack = c.send(message.as_bytes()).await;
        assert_eq!(ack.code(), "AA", "{trigger}: {}", ack.text());
    }
    // The A07 is cancelled by an A06 naming it.
    let cancel = pam(
        "A06",
        "C4",
        p,
        "6100",
        &format!("{p}-3|{}||CANCEL|N", at(2, "0900")),
        "",
    );
    let ack = c.send(&cancel).await;
    assert_eq!(ack.code(), "AA", "{}", ack.text());
    // A class PV1-2 does not know is refused, naming the field; nothing written.
    let before = stream(&server, p).await.len();
    let bad = String::from_utf8(pam(
        "A06",
        "C5",
        p,
        "6100",
        &format!("{p}-5|{}||INSERT|N", at(3, "0900")),
        "",
    ))
    .unwrap()
    .replace("PV1|1|I|", "PV1|1|X|");
    let ack = c.send(bad.as_bytes()).await;
    assert_eq!(ack.code(), "AE", "{}", ack.text());
    assert!(ack.field("ERR", 2).starts_with("PV1^1^2"), "{}", ack.text());

    let events = stream(&server, p).await;
    assert_eq!(events.len(), before, "nothing written");
    assert_eq!(
        kinds(&events),
        [
            "Admitted",
            "PatientRegistered",
            "ClassChanged",
            "ClassChanged",
            "MovementCancelled"
        ]
    );
    let class = |i: usize| match events[i].payload.as_ref().unwrap() {
        Payload::ClassChanged(c) => (c.setting, c.unit.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        class(2),
        (v1::Setting::DaySurgery as i32, "6100".to_string())
    );
    assert_eq!(class(3).0, v1::Setting::Outpatient as i32);
    let Some(Payload::MovementCancelled(x)) = events[4].payload.as_ref() else {
        panic!()
    };
    assert_eq!(
        x.cancelled_event_id, events[3].event_id,
        "the A07 its ZBE-1 names"
    );
}

/// PAM-FR §5.3.5: an emergency visit (A04, PV1-2 = `E`) becomes an inpatient stay by an A06
/// (PV1-2 = `I`) of the same visit number: the stay opens at the A06, as an emergency admission,
/// and the read models equal those of the same visit followed by an A01.
#[tokio::test]
async fn an_emergency_visit_made_a_stay_by_an_a06_is_an_emergency_admission() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up(dir.path());
    // (trigger, movement, PV1-2, PV1-4, unit, D/HHMM)
    let send = |patient: &'static str,
                steps: Vec<(
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    )>| {
        let mllp = mllp.clone();
        async move {
            let mut c = Mllp::connect(&mllp).await;
            for (trigger, movement, class, admit_type, unit, time) in steps {
                let zbe = format!("{patient}-{movement}|{}||INSERT|N", when(time));
                let extra = if trigger == "A03" { "ZFM||8\r" } else { "" };
                let message = String::from_utf8(pam(
                    trigger,
                    &format!("{patient}-{movement}"),
                    patient,
                    unit,
                    &zbe,
                    extra,
                ))
                .unwrap()
                .replace("PV1|1|I|", &format!("PV1|1|{class}|"))
                .replace("^^^FAC-H|R|", &format!("^^^FAC-H|{admit_type}|"));
                let ack = c.send(message.as_bytes()).await;
                assert_eq!(ack.code(), "AA", "{patient} {trigger}: {}", ack.text());
            }
        }
    };
    let (late, right) = ("P-ED-A06", "P-ED-A01");
    send(
        late,
        vec![
            ("A04", "1", "E", "", "URG", "0/1800"),
            ("A06", "2", "I", "", "6000", "0/2200"),
            ("A02", "3", "I", "", "6055", "1/0900"),
            ("A03", "4", "I", "", "6055", "4/1100"),
        ],
    )
    .await;
    send(
        right,
        vec![
            ("A04", "1", "E", "", "URG", "0/1800"),
            ("A01", "2", "I", "U", "6000", "0/2200"),
            ("A02", "3", "I", "", "6055", "1/0900"),
            ("A03", "4", "I", "", "6055", "4/1100"),
        ],
    )
    .await;
    assert_eq!(
        kinds(&stream(&server, late).await),
        [
            "EmergencyVisit",
            "PatientRegistered",
            "ClassChanged",
            "Transferred",
            "Discharged"
        ]
    );
    let stay = same_read_models(&server, late, right).await;
    assert_eq!(stay.unit, "6055");
    assert_eq!(unit_at(&server, late, "0/2300").await, "6000");
}

/// A16 announces the discharge (EVN-3, the expected time); A25 withdraws it.
#[tokio::test]
async fn a_pending_discharge_and_its_cancellation() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up_with_mllp(dir.path(), &["--no-read-models", "--no-reactor"]);
    let p = "P-PENDING";
    send_all(&mllp, p, &["A01 1 6000 0/1800 INSERT N"]).await;
    let expected = at(22, "1000");
    let mut c = Mllp::connect(&mllp).await;
    // EVN-3, the planned event's time: the expected discharge.
    let a16 = String::from_utf8(pam(
        "A16",
        "D2",
        p,
        "6000",
        &format!("{p}-2|{}||INSERT|N", at(19, "0900")),
        "",
    ))
    .unwrap()
    .split('\r')
    .map(|line| {
        if line.starts_with("EVN|") {
            format!("{line}|{expected}")
        } else {
            line.to_string()
        }
    })
    .collect::<Vec<_>>()
    .join("\r");
    let ack = c.send(a16.as_bytes()).await;
    assert_eq!(ack.code(), "AA", "{}", ack.text());
    let a25 = pam(
        "A25",
        "D3",
        p,
        "6000",
        &format!("{p}-2|{}||CANCEL|N", at(19, "0900")),
        "",
    );
    let ack = c.send(&a25).await;
    assert_eq!(ack.code(), "AA", "{}", ack.text());
    // Without an expected time an A16 is refused, naming EVN-3.
    let ack = c
        .send(&pam(
            "A16",
            "D4",
            p,
            "6000",
            &format!("{p}-4|{}||INSERT|N", at(19, "0900")),
            "",
        ))
        .await;
    assert_eq!(ack.code(), "AE", "{}", ack.text());
    assert!(ack.field("ERR", 2).starts_with("EVN^1^3"), "{}", ack.text());

    let events = stream(&server, p).await;
    let expectations: Vec<Option<i64>> = events
        .iter()
        .filter_map(|e| match e.payload.as_ref().unwrap() {
            Payload::DischargeExpected(d) => Some(d.expected_at.map(|t| t.seconds)),
            _ => None,
        })
        .collect();
    assert_eq!(expectations, [Some(occurred(&expected).seconds), None]);
}

/// The INS is kept only for a validated identity (PID-32 = VALI), with its OID; A47 removes a
/// wrongly attributed one (PID-3's INS repetition `""`, the INS in MRG-1).
#[tokio::test]
async fn the_ins_its_reliability_and_its_removal() {
    let dir = tempfile::tempdir().unwrap();
    let (server, mllp) = up_with_mllp(dir.path(), &["--no-read-models", "--no-reactor"]);
    let pad = "|".repeat(24); // PID-9 … PID-31
    let message = |trigger: &str,
                   control: &str,
                   patient: &str,
                   ins: &str,
                   pid32: &str,
                   mrg: &str| {
        format!(
            "MSH|^~\\&|GAM|CHU-A|JOURNEY|BACKBONE|{now}||ADT^{trigger}|{control}|P|2.5|||||FRA|UNICODE UTF-8\r\
EVN||{now}\r\
PID|1||{patient}^^^CHU-A^PI~{ins}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||DARK^JEANNE||19600530|F{pad}{pid32}\r{mrg}",
            now = hl7_time(0)
        )
        .into_bytes()
    };
    let mut c = Mllp::connect(&mllp).await;
    for (patient, pid32) in [("P-INS-VALI", "VALI"), ("P-INS-PROV", "PROV")] {
        let ack = c
            .send(&message(
                "A28",
                patient,
                patient,
                "260058815400233",
                pid32,
                "",
            ))
            .await;
        assert_eq!(ack.code(), "AA", "{}", ack.text());
    }
    let registration = |events: &[Event]| match events[0].payload.as_ref().unwrap() {
        Payload::PatientRegistered(r) => r.clone(),
        other => panic!("{other:?}"),
    };
    let vali = registration(&stream(&server, "P-INS-VALI").await);
    assert_eq!(vali.ins, "260058815400233");
    assert_eq!(vali.ins_oid, "1.2.250.1.213.1.4.8");
    assert_eq!(vali.identity_status, v1::IdentityStatus::Validated as i32);
    let prov = registration(&stream(&server, "P-INS-PROV").await);
    assert_eq!(
        (prov.ins.as_str(), prov.ins_oid.as_str()),
        ("", ""),
        "not validated: no INS"
    );
    assert_eq!(prov.identity_status, v1::IdentityStatus::Provisional as i32);

    let mrg = "MRG|260058815400233^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS\r";
    let ack = c
        .send(&message("A47", "INS-2", "P-INS-VALI", "\"\"", "VALI", mrg))
        .await;
    assert_eq!(ack.code(), "AA", "{}", ack.text());
    let events = stream(&server, "P-INS-VALI").await;
    let Some(Payload::IdentityUpdated(u)) = events.last().unwrap().payload.as_ref() else {
        panic!("{:?}", kinds(&events))
    };
    assert!(u.ins_removed);
    assert_eq!((u.ins.as_str(), u.family_name.as_str()), ("", "DARK"));
    // An A47 of another identifier than the INS is not taken: a merge is A40.
    let ack = c
        .send(&message(
            "A47",
            "INS-3",
            "P-INS-VALI",
            "\"\"",
            "VALI",
            "MRG|OLD-IPP^^^CHU-A^PI\r",
        ))
        .await;
    assert_eq!(ack.code(), "AR", "{}", ack.text());
    assert!(ack.field("ERR", 2).starts_with("MRG^1^1"), "{}", ack.text());
    assert_eq!(
        stream(&server, "P-INS-VALI").await.len(),
        events.len(),
        "nothing written"
    );
}

/// The server aborts (JOURNEY_FAULT_HL7_ABORT_BEFORE_ACK) exactly after the log acknowledged the
/// transfer's events and before its ACK: the sender gets no ACK, resends after the restart, and
/// gets `AA` with nothing written twice.
#[tokio::test]
async fn a_crash_between_the_log_and_the_ack_then_the_resend_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mllp = format!("127.0.0.1:{}", free_port());
    let args = [
        "--mllp-addr",
        mllp.as_str(),
        "--mllp-organisation",
        ORG,
        "--no-read-models",
        "--no-reactor",
    ];
    let p = "P-ABORT";
    let admit = adt("A01", "F1", p, "MVT-F1", &hl7_time(600));
    {
        let server = Server::start(&data, &args);
        let mut c = Mllp::connect(&mllp).await;
        assert_eq!(c.send(&admit).await.code(), "AA");
        drop(server);
    }
    let mut server =
        Server::start_with_env(&data, &args, &[("JOURNEY_FAULT_HL7_ABORT_BEFORE_ACK", "1")]);
    let transfer = adt("A02", "F2", p, "MVT-F2", &hl7_time(300));
    let mut c = Mllp::connect(&mllp).await;
    c.send_raw(&frame(&transfer)).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        use tokio::io::AsyncReadExt;
        c.0.read_to_end(&mut got).await
    })
    .await
    .expect("the connection ends");
    assert!(
        read.is_err() || got.is_empty(),
        "no ACK went out: {:?}",
        String::from_utf8_lossy(&got)
    );
    let status = server.child.wait().unwrap();
    assert!(!status.success(), "the process aborted: {status:?}");

    let server = Server::start(&data, &args);
    let written = stream(&server, p).await;
    assert_eq!(
        kinds(&written),
        ["Admitted", "PatientRegistered", "Transferred"],
        "on disk before the crash"
    );
    let mut again = Mllp::connect(&mllp).await;
    let ack = again.send(&transfer).await;
    assert_eq!(ack.code(), "AA", "{}", ack.text());
    assert_eq!(
        stream(&server, p).await,
        written,
        "the resend wrote nothing"
    );
}

/// `journey hl7 map FILE | head -1`: the reader goes after the first line; the verb stops
/// quietly (no panic on the broken pipe) and succeeds.
#[test]
fn map_into_a_closed_pipe_stops_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a01.hl7");
    std::fs::write(&file, adt("A01", "B1", "P-PIPE", "MVT-B1", &hl7_time(60))).unwrap();
    let mut child = std::process::Command::new(journey_bin())
        .args(["hl7", "map", "--mllp-organisation", ORG])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    // Through a shell pipe, as typed: the first event only.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' hl7 map --mllp-organisation {ORG} '{}' | head -1",
            journey_bin().display(),
            file.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("\"admitted\""), "{stdout}");
}
