//! The Tasks of a patient (docs/fhir.md): the coordination items of each discharge the
//! coordination view follows (letter, medication reconciliation, first home contact), their due
//! dates and states as that view derives them now, mapped by `journey_fhir::task`. A server
//! without the coordination view has no Task.
use journey_fhir::{
    task::{self, Owner, Work},
    Resource,
};
use journey_projections::coordination::{followup::Timeliness, patient, queries::Item};
use journey_proto::v1::Event;
use journey_services::{coordination_service::CoordinationService, errors};
use std::collections::HashMap;
use tonic::Status;

/// The discharges the view follows for `patient`, as it derives them now.
pub(super) async fn followed(
    view: &CoordinationService,
    patient: &str,
) -> Result<Vec<Item>, Status> {
    let now = chrono::Utc::now().timestamp();
    let found = patient::patient(
        &view.runner.db.pool,
        &view.runner.live_prefix(),
        patient,
        now,
    )
    .await
    .map_err(errors::read_model_error)?;
    Ok(found.map(|f| f.discharges).unwrap_or_default())
}

/// The discharges the view follows for each of `patients` (those with any), as [`followed`]
/// gives them, in a few queries for all of them (a Bulk Data export's batch of patients).
pub(super) async fn followed_of(
    view: &CoordinationService,
    patients: &[String],
) -> Result<HashMap<String, Vec<Item>>, Status> {
    let now = chrono::Utc::now().timestamp();
    let patients: Vec<&str> = patients.iter().map(String::as_str).collect();
    patient::discharges_of(
        &view.runner.db.pool,
        &view.runner.live_prefix(),
        &patients,
        now,
    )
    .await
    .map_err(errors::read_model_error)
}

/// The Tasks of `followed`, their `meta` from `events`.
pub(super) fn tasks(patient: &str, followed: &[Item], events: &[Event]) -> Vec<Resource> {
    let mut out = Vec::with_capacity(followed.len() * Work::ALL.len());
    for i in followed {
        let (d, fu) = (&i.discharge, &i.follow_up);
        let facility = Owner::Facility {
            id: &d.facility_id,
            name: &d.facility_name,
        };
        let first_contact = match d.referents.first() {
            Some(r) => Owner::Professional {
                id: &r.professional_id,
                name: &r.name,
            },
            None => Owner::Territory(&d.territory),
        };
        let items = [
            (
                Work::Letter,
                facility.clone(),
                fu.letter_due_at,
                d.facts.letter_sent_at,
                fu.letter,
            ),
            (
                Work::Reconciliation,
                facility,
                fu.reconciliation_due_at,
                d.facts.reconciled_at,
                fu.reconciliation,
            ),
            (
                Work::FirstContact,
                first_contact,
                fu.first_contact_due_at,
                d.facts.first_contact_at,
                fu.first_contact,
            ),
        ];
        for (work, owner, due_at, done_at, state) in items {
            let item = task::Item {
                encounter_id: &d.encounter_id,
                discharge_event_id: None,
                work,
                owner,
                discharged_at: d.facts.discharged_at,
                due_at,
                done_at,
                overdue: state == Timeliness::Overdue,
            };
            out.extend(task::build(patient, &item, events));
        }
    }
    out
}
