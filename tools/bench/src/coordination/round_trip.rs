//! An action's round trip, embedded: a first contact recorded (`ContactMade` appended through
//! `EventLog.Append`, as the dashboard's contact action appends it) for the most urgent patient of
//! the worklist's first page whose first contact is not made, then that page read again and again
//! (`Coordination.Worklist`, the query the page renders) until it shows the contact: the
//! patient's row says the contact is made, or the patient left the first page because the
//! contact lowered its urgency.
use super::super::common::{histogram, record, status};
use hdrhistogram::Histogram;
use journey_log_access::LogClient;
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        coordination_client::CoordinationClient, event::Payload, Actor, AppendRequest,
        ContactChannel, ContactMade, Event, Professional, Role, WorklistRequest,
    },
};
use std::{
    collections::HashSet,
    time::{Duration, Instant, SystemTime},
};

/// Whether a worklist row's first contact is still to be made.
fn waiting(first_contact: &str) -> bool {
    matches!(first_contact, "pending" | "overdue")
}

/// A first contact for `patient_id`, by a coordinator, now (`i`: its correlation).
pub(super) fn contact(patient_id: &str, i: u64) -> Event {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let nurse = Professional {
        id: "bench-nurse".into(),
        role: Role::Coordinator as i32,
        name: "Bench Nurse".into(),
        ..Default::default()
    };
    Event {
        event_id: uuid::Uuid::new_v4().to_string(),
        patient_id: patient_id.to_string(),
        occurred_at: Some(Timestamp {
            seconds: now,
            nanos: 0,
        }),
        actor: Some(Actor {
            id: nurse.id.clone(),
            role: Role::Coordinator as i32,
            organisation: "bench".into(),
            ..Default::default()
        }),
        source: "journey-bench".into(),
        correlation_id: format!("bench-contact-{i}"),
        payload: Some(Payload::ContactMade(ContactMade {
            professional: Some(nurse),
            channel: ContactChannel::Phone as i32,
            reason: "bench".into(),
        })),
        ..Default::default()
    }
}

/// Up to `calls` round trips (at least 10 unless the page runs out of patients to contact, none
/// after `budget`), in µs; and how many polls of the page they took in all.
pub async fn measure(
    coordination: &CoordinationClient<tonic::transport::Channel>,
    log: &LogClient,
    page: &WorklistRequest,
    calls: u64,
    budget: Duration,
) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut h = histogram();
    let mut polls = 0;
    let mut contacted = HashSet::new();
    let started = Instant::now();
    for i in 0..calls {
        if i >= 10 && started.elapsed() > budget {
            break;
        }
        let shown = coordination
            .clone()
            .worklist(page.clone())
            .await
            .map_err(status)?
            .into_inner();
        let Some(target) = shown
            .items
            .iter()
            .find(|it| waiting(&it.first_contact) && !contacted.contains(&it.patient_id))
        else {
            break;
        };
        let patient = target.patient_id.clone();
        contacted.insert(patient.clone());
        let t = Instant::now();
        log.clone()
            .append(AppendRequest {
                events: vec![contact(&patient, i)],
                expected_versions: Default::default(),
            })
            .await
            .map_err(status)?;
        loop {
            polls += 1;
            let now = coordination
                .clone()
                .worklist(page.clone())
                .await
                .map_err(status)?
                .into_inner();
            let row = now.items.iter().find(|it| it.patient_id == patient);
            if row.is_none_or(|it| !waiting(&it.first_contact)) {
                break;
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(30),
                "the contact for {patient} did not show on the worklist in 30 s"
            );
        }
        record(&mut h, t.elapsed());
    }
    Ok((h, polls))
}
