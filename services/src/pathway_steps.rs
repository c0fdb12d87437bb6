//! The care pathway and its follow-up steps for each discharge a coordination answer lists
//! (`journey_projections::coordination::pathways`: the templates; `pathway_facts`: what they are
//! applied to, at the time of the query).
use crate::errors;
use journey_projections::{
    coordination::{pathway_facts, pathways, Coordination},
    runtime::Runner,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{PathwayStep, WorklistItem},
};
use tonic::Status;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// The templates of this process; refused with the reason when its file cannot be used (the
/// coordination view cannot fold then either: it waits, paused, for a file it can use).
pub fn templates() -> Result<&'static pathways::Pathways, Status> {
    pathways::active().map_err(errors::pathways_unusable)
}

/// Sets `pathway` and `pathway_steps` of each of `items` at `now`.
pub async fn fill(
    runner: &Runner<Coordination>,
    items: &mut [WorklistItem],
    now: i64,
) -> Result<(), Status> {
    if items.is_empty() {
        return Ok(());
    }
    let templates = templates()?;
    let keys: Vec<(&str, &str, i64)> = items
        .iter()
        .map(|i| {
            let at = i.discharged_at.as_ref().map_or(0, |t| t.seconds);
            (i.patient_id.as_str(), i.encounter_id.as_str(), at)
        })
        .collect();
    let mut conn = runner
        .db
        .pool
        .acquire()
        .await
        .map_err(errors::read_model_error)?;
    let due = pathway_facts::due(&mut conn, &runner.live_prefix(), templates, &keys, now)
        .await
        .map_err(errors::read_model_error)?;
    for (item, d) in items.iter_mut().zip(due) {
        item.pathway = d.pathway.name.clone();
        item.pathway_steps = d
            .steps
            .iter()
            .map(|s| PathwayStep {
                step: s.step.name.clone(),
                roles: s.step.roles.clone(),
                due_at: ts(s.due_at),
                state: s.timeliness.as_str().into(),
                done_at: s.done_at.and_then(ts),
            })
            .collect();
    }
    Ok(())
}
