//! The care pathway and its follow-up steps for each discharge a coordination answer lists
//! (`journey_projections::coordination::pathways`: the templates; `pathway_facts`: what they are
//! applied to, at the time of the query).
use crate::errors;
use journey_projections::coordination::{pathways, queries::Discharge};
use journey_proto::{prost_types::Timestamp, v1::PathwayStep};
use tonic::Status;

fn ts(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// The templates of this process; refused with the reason when its file cannot be used (the
/// coordination view cannot fold then either: it waits, paused, for a file it can use).
pub fn templates() -> Result<&'static pathways::Pathways, Status> {
    pathways::active().map_err(errors::pathways_unusable)
}

/// The name of the care pathway of discharge `d` and its steps at `now` (`d` as the
/// coordination view's queries found it, with the care its steps are done by).
pub fn of(d: &Discharge, now: i64) -> (String, Vec<PathwayStep>) {
    let Some((pathway, care)) = &d.pathway else {
        return (String::new(), Vec::new());
    };
    let steps = pathways::steps(pathway, d.facts.discharged_at, care, now)
        .iter()
        .map(|s| PathwayStep {
            step: s.step.name.clone(),
            roles: s.step.roles.clone(),
            due_at: ts(s.due_at),
            state: s.timeliness.as_str().into(),
            done_at: s.done_at.and_then(ts),
        })
        .collect();
    (pathway.name.clone(), steps)
}
