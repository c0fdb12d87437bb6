//! The Tasks of a patient (docs/fhir.md): the coordination items of each discharge the
//! coordination view follows (letter, medication reconciliation, first home contact), their due
//! dates and states as that view derives them now, mapped by `journey_fhir::task`. A server
//! without the coordination view has no Task.
use journey_fhir::{
    task::{self, Owner, Work},
    Resource,
};
use journey_projections::coordination::{
    followup::Timeliness,
    patient::{self, TaskDischarge},
};
use journey_proto::v1::Event;
use journey_services::{coordination_service::CoordinationService, errors};
use std::collections::HashMap;
use tonic::Status;

/// What the Tasks show of the discharges the view follows for `patient`, as it derives them now.
pub(super) async fn followed(
    view: &CoordinationService,
    patient: &str,
) -> Result<Vec<TaskDischarge>, Status> {
    Ok(followed_of(view, &[patient.to_string()])
        .await?
        .remove(patient)
        .unwrap_or_default())
}

/// [`followed`] for each of `patients` (those with any discharge), in two queries per `IN` list
/// (a Bulk Data export's batch of patients).
pub(super) async fn followed_of(
    view: &CoordinationService,
    patients: &[String],
) -> Result<HashMap<String, Vec<TaskDischarge>>, Status> {
    let now = chrono::Utc::now().timestamp();
    let patients: Vec<&str> = patients.iter().map(String::as_str).collect();
    patient::task_discharges_of(
        &view.runner.db.pool,
        &view.runner.live_prefix(),
        &patients,
        now,
    )
    .await
    .map_err(errors::read_model_error)
}

/// The Tasks of `followed`, their `meta` from `events`.
pub(super) fn tasks(patient: &str, followed: &[TaskDischarge], events: &[Event]) -> Vec<Resource> {
    let mut out = Vec::with_capacity(followed.len() * Work::ALL.len());
    for d in followed {
        let facility = Owner::Facility {
            id: &d.facility_id,
            name: &d.facility_name,
        };
        let first_contact = match &d.referent {
            Some(r) => Owner::Professional {
                id: &r.professional_id,
                name: &r.name,
            },
            None => Owner::Territory(&d.territory),
        };
        let items = [
            (Work::Letter, facility.clone(), d.items.letter),
            (Work::Reconciliation, facility, d.items.reconciliation),
            (Work::FirstContact, first_contact, d.items.first_contact),
        ];
        for (work, owner, due) in items {
            let item = task::Item {
                encounter_id: &d.encounter_id,
                discharge_event_id: None,
                work,
                owner,
                discharged_at: d.discharged_at,
                due_at: due.due_at,
                done_at: due.done_at,
                overdue: due.state == Timeliness::Overdue,
            };
            out.extend(task::build(patient, &item, events));
        }
    }
    out
}
