//! The HAS discharge-letter indicator (QLS) on the indicators page, through the binary: stays of
//! a territory scored by their best letter (a letter dated another day, or none, scores 0), the
//! territory filter, French and English, and a discharge corrected after its letter scored
//! against its corrected date.
use journey_proto::{
    prost_types::Timestamp,
    v1::{self, coordination_client::CoordinationClient, event::Payload, Event, IndicatorsRequest},
};
use journey_tests::*;

/// 10:00 UTC (11:00 or 12:00 in Paris) of the UTC day `days_ago` days before today, plus `hours`.
fn at(days_ago: i64, hours: i64) -> Timestamp {
    let today = chrono::Utc::now().date_naive() - chrono::Days::new(days_ago as u64);
    let t = today.and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp();
    Timestamp {
        seconds: t + hours * 3600,
        nanos: 0,
    }
}

fn facility(territory: &str) -> v1::Facility {
    v1::Facility {
        id: format!("F-{territory}"),
        name: format!("Hôpital {territory}"),
        territory: territory.into(),
        time_zone: "Europe/Paris".into(),
    }
}

/// A stay of `patient` in `territory` discharged home three days ago at 10:00 UTC; its
/// discharge event id.
fn stay(patient: &str, territory: &str, out: &mut Vec<Event>) -> String {
    let enc = format!("E-{patient}");
    out.push(event(
        patient,
        at(6, 0),
        Payload::Admitted(v1::Admitted {
            encounter_id: enc.clone(),
            facility: Some(facility(territory)),
            unit: "cardio".into(),
            setting: v1::Setting::Inpatient as i32,
            admit_type: v1::AdmitType::Emergency as i32,
            ..Default::default()
        }),
    ));
    let discharge = event(
        patient,
        at(3, 0),
        Payload::Discharged(v1::Discharged {
            encounter_id: enc,
            disposition: v1::Disposition::Home as i32,
            ..Default::default()
        }),
    );
    let id = discharge.event_id.clone();
    out.push(discharge);
    id
}

/// A letter for `patient`'s stay sent `hours` after its discharge, with `items`.
fn letter(patient: &str, hours: i64, items: std::ops::RangeInclusive<i32>, handed: bool) -> Event {
    event(
        patient,
        at(3, hours),
        Payload::DischargeLetterSent(v1::DischargeLetterSent {
            encounter_id: format!("E-{patient}"),
            channel: v1::LetterChannel::Mssante as i32,
            items_present: items.collect(),
            handed_to_patient: handed,
            ..Default::default()
        }),
    )
}

/// The figure of the indicator row `name` on `page`.
fn figure(page: &str, name: &str) -> String {
    let row = page
        .split(&format!("data-indicator=\"{name}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no {name} row: {page}"));
    row.split("<td>")
        .nth(1)
        .and_then(|s| s.split("</td>").next())
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn qls_on_the_indicators_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut events = Vec::new();
    // Q1: every criterion, the same day: 14/14.
    let q1_discharge = stay("Q1", "T1", &mut events);
    events.push(letter("Q1", 5, 1..=11, true));
    // Q2: the same day, seven items, not handed to the patient: 9/14.
    stay("Q2", "T1", &mut events);
    events.push(letter("Q2", 5, 1..=7, false));
    // Q3: complete, but sent (dated) the next day: 0. Then an earlier one the same day with
    // three items: its best letter scores 5/14.
    stay("Q3", "T1", &mut events);
    events.push(letter("Q3", 24, 1..=11, true));
    // Q4: no letter: 0.
    stay("Q4", "T1", &mut events);
    // Q5: another territory, complete.
    stay("Q5", "T2", &mut events);
    events.push(letter("Q5", 1, 1..=11, true));
    let mut client = server.client().await;
    let head = append_batch(&mut client, events).await;
    wait_projected(&server.grpc, head).await;

    let page = http_get(&server.http, "/indicators?lang=fr&territory=T1").await;
    assert!(
        page.contains("Qualité de la lettre de liaison à la sortie (indicateur QLS de la HAS)"),
        "{page}"
    );
    assert_eq!(figure(&page, "qls-stays"), "4");
    // (100 + 9/14 × 100 + 0 + 0) / 4
    assert_eq!(figure(&page, "qls-mean"), "41,1 / 100");
    assert_eq!(figure(&page, "qls-scored"), "50,0 % (2/4)");
    assert_eq!(figure(&page, "qls-complete"), "25,0 % (1/4)");

    // The same figures through the Coordination gRPC service.
    let mut c = CoordinationClient::new(client::channel(&server.grpc).await.unwrap());
    let q = c
        .indicators(IndicatorsRequest {
            territory: "T1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .letter_quality
        .unwrap();
    assert_eq!((q.stays, q.scored, q.complete), (4, 2, 1));
    assert!(
        (q.mean_score - (100.0 + 900.0 / 14.0) / 4.0).abs() < 1e-9,
        "{q:?}"
    );

    let page = http_get(&server.http, "/indicators?lang=en").await;
    assert!(
        page.contains("Quality of the discharge letter (HAS QLS indicator)"),
        "{page}"
    );
    assert_eq!(figure(&page, "qls-stays"), "5");
    // (100 + 64.29 + 0 + 0 + 100) / 5
    assert_eq!(figure(&page, "qls-mean"), "52.9 / 100");
    assert_eq!(figure(&page, "qls-scored"), "60.0 % (3/5)");
    assert_eq!(figure(&page, "qls-complete"), "40.0 % (2/5)");

    // Q3 gets a same-day letter with three items; Q1's discharge is corrected to the next day,
    // after its letter: its letter is no longer dated the day of discharge.
    let head = append_batch(
        &mut client,
        vec![
            letter("Q3", 2, 1..=3, false),
            event(
                "Q1",
                at(2, 0),
                Payload::MovementCorrected(v1::MovementCorrected {
                    corrected_event_id: q1_discharge,
                    moved_at: Some(at(2, 0)),
                    disposition: v1::Disposition::Home as i32,
                    ..Default::default()
                }),
            ),
        ],
    )
    .await;
    wait_projected(&server.grpc, head).await;
    // Figures slow to work out may be those of a moment ago for a few seconds (never here, where
    // they are quick; on a machine under load they might be).
    let asked = std::time::Instant::now();
    let page = loop {
        let page = http_get(&server.http, "/indicators?lang=fr&territory=T1").await;
        if figure(&page, "qls-complete") != "25,0 % (1/4)" {
            break page;
        }
        assert!(
            asked.elapsed().as_secs() < 15,
            "figures not updated in 15 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(figure(&page, "qls-stays"), "4");
    // (0 + 9/14 + 5/14 + 0) × 100 / 4
    assert_eq!(figure(&page, "qls-mean"), "25,0 / 100");
    assert_eq!(figure(&page, "qls-scored"), "50,0 % (2/4)");
    assert_eq!(figure(&page, "qls-complete"), "0,0 % (0/4)");
}
