//! The indicators page keeps its figures while the read models stand still (issue 18: speed),
//! and not for long after they moved on: the same page asked again after a discharge counts it in
//! every section (the weekly table and the QLS, the discharge planning, the territory's
//! readmission figures): at once when they are quick to work out, as here; figures slow to work
//! out are those of a few seconds ago while the new ones are worked out, which the test allows
//! for on a machine under load. Through the binary.
use journey_proto::{
    prost_types::Timestamp,
    v1::{self, event::Payload, Event},
};
use journey_tests::*;

/// 10:00 UTC of the UTC day `days_ago` days before today.
fn at(days_ago: u64) -> Timestamp {
    let day = chrono::Utc::now().date_naive() - chrono::Days::new(days_ago);
    Timestamp {
        seconds: day.and_hms_opt(10, 0, 0).unwrap().and_utc().timestamp(),
        nanos: 0,
    }
}

/// A stay of `patient` in territory T1, admitted six days ago and discharged home three days ago.
fn stay(patient: &str) -> Vec<Event> {
    let encounter_id = format!("E-{patient}");
    vec![
        event(
            patient,
            at(6),
            Payload::Admitted(v1::Admitted {
                encounter_id: encounter_id.clone(),
                facility: Some(v1::Facility {
                    id: "F-T1".into(),
                    name: "Hôpital T1".into(),
                    territory: "T1".into(),
                    time_zone: "Europe/Paris".into(),
                }),
                unit: "cardio".into(),
                setting: v1::Setting::Inpatient as i32,
                admit_type: v1::AdmitType::Emergency as i32,
                ..Default::default()
            }),
        ),
        event(
            patient,
            at(3),
            Payload::Discharged(v1::Discharged {
                encounter_id,
                disposition: v1::Disposition::Home as i32,
                ..Default::default()
            }),
        ),
    ]
}

/// The first cell after `marker` on `page`.
fn cell(page: &str, marker: &str) -> String {
    page.split(marker)
        .nth(1)
        .and_then(|r| r.split("</td>").next())
        .and_then(|r| r.rsplit('>').next())
        .unwrap_or_else(|| panic!("no {marker}: {page}"))
        .to_string()
}

/// The page's figures of discharges: QLS stays scored, planning discharges with the checklist
/// complete, the territory's index stays.
fn figures(page: &str) -> [String; 3] {
    [
        cell(page, "data-indicator=\"qls-stays\">"),
        cell(page, "data-indicator=\"complete\">"),
        cell(page, "<td class=\"index-stays\">"),
    ]
}

#[tokio::test]
async fn the_same_page_asked_after_a_discharge_counts_it() {
    // Given one discharge in territory T1, and the page read twice while nothing happens
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut client = server.client().await;
    let head = append_batch(&mut client, stay("P1")).await;
    wait_projected(&server.grpc, head).await;
    let path = "/indicators?lang=en&territory=T1";
    let first = http_get(&server.http, path).await;
    assert_eq!(figures(&first), ["1", "0 % (0/1)", "1"].map(String::from));
    let again = http_get(&server.http, path).await;
    assert_eq!(figures(&again), figures(&first));

    // When another patient of the territory is discharged
    let head = append_batch(&mut client, stay("P2")).await;
    wait_projected(&server.grpc, head).await;

    // Then the same page counts both discharges in each section, once the figures of a moment
    // ago (given while the new ones are worked out) are replaced: well within 15 s
    let both = ["2", "0 % (0/2)", "2"].map(String::from);
    let asked = std::time::Instant::now();
    loop {
        let page = http_get(&server.http, path).await;
        let shown = figures(&page);
        if shown == both {
            break;
        }
        // Never anything but the figures before or after the discharge, section by section
        for (now, (before, after)) in shown.iter().zip(figures(&first).iter().zip(&both)) {
            assert!(
                now == before || now == after,
                "{now}: neither {before} nor {after}"
            );
        }
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(15),
            "the page still shows {shown:?} 15 s after the discharge was folded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
