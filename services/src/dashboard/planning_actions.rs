//! The discharge-planning actions of a patient's page: tick or untick a checklist item, set or
//! withdraw the expected discharge, flag a complex discharge (or clear it). They go through the
//! same door as every action (`actions.rs`: Origin and CSRF checks, the access log, the log's
//! write rules); this module reads their forms and decides on the stay they name: a stay of the
//! patient the planning view shows the caller, still open.
use super::{
    actions::ActionForm,
    planning::{self, item_key, REASONS},
    Dashboard,
};
use crate::{
    errors,
    principal::{Principal, Role},
};
use journey_projections::planning::{checklist::ITEMS, queries::Stay};
use journey_proto::v1::{
    event::Payload, ChecklistItemSet, ComplexDischargeFlagged, DischargeExpected,
};
use tonic::Status;

/// The longest detail, reason or note.
const MAX_TEXT: usize = 500;

/// Whether an action's name is one of discharge planning's.
pub(super) fn is_planning(action: &str) -> bool {
    matches!(action, "checklist" | "expected" | "complex")
}

/// The access log's name of a planning action.
pub(super) fn call_name(action: &str) -> Option<&'static str> {
    match action {
        "checklist" => Some("checklist"),
        "expected" => Some("expected-discharge"),
        "complex" => Some("complex-discharge"),
        _ => None,
    }
}

fn text(field: &str, value: &str) -> Result<String, Status> {
    let v = value.trim();
    if v.chars().count() > MAX_TEXT {
        return Err(errors::invalid(
            field,
            &format!("at most {MAX_TEXT} characters"),
        ));
    }
    Ok(v.to_string())
}

/// What the form asks, checked before any decision on the patient; the expected time stays
/// local until the stay's facility says in which time zone.
pub(super) enum Draft {
    Ready(Box<Payload>),
    Expected {
        at: Option<chrono::NaiveDateTime>,
        reason: String,
    },
}

pub(super) fn draft(f: &ActionForm) -> Result<Draft, Status> {
    let encounter_id = f.encounter_id.trim().to_string();
    if encounter_id.is_empty() {
        return Err(errors::invalid("encounter_id", "is required"));
    }
    Ok(match f.action.as_str() {
        "checklist" => {
            let item = ITEMS
                .iter()
                .copied()
                .find(|i| item_key(*i) == f.item)
                .ok_or_else(|| {
                    let names: Vec<&str> = ITEMS.iter().map(|i| item_key(*i)).collect();
                    errors::invalid("item", &format!("one of {}", names.join(", ")))
                })?;
            let done = match f.done.as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(errors::invalid("done", "true or false")),
            };
            Draft::Ready(Box::new(Payload::ChecklistItemSet(ChecklistItemSet {
                encounter_id,
                item: item as i32,
                done,
                detail: text("detail", &f.detail)?,
            })))
        }
        "expected" => {
            let at = match f.expected.trim() {
                "" => None,
                s => Some(
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
                        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
                        .map_err(|_| {
                            errors::invalid(
                                "expected",
                                &format!("{s:?}: a date and time like 2026-12-05T14:30, or empty to withdraw the date"),
                            )
                        })?,
                ),
            };
            Draft::Expected {
                at,
                reason: text("reason", &f.reason)?,
            }
        }
        "complex" => {
            let reasons = REASONS
                .iter()
                .filter(|(name, _)| !f.reason_box(name).is_empty())
                .map(|(_, r)| *r as i32)
                .collect();
            Draft::Ready(Box::new(Payload::ComplexDischargeFlagged(
                ComplexDischargeFlagged {
                    encounter_id,
                    reasons,
                    note: text("note", &f.note)?,
                },
            )))
        }
        _ => return Err(errors::invalid("action", "checklist, expected or complex")),
    })
}

/// The stay the form names, if the planning view shows the caller the patient: `NotFound` or
/// `PermissionDenied` when it does not (answered as an unknown patient), `FailedPrecondition`
/// for a stay that ended, `InvalidArgument` for a stay that is not the patient's.
pub(super) async fn stay(
    d: &Dashboard,
    caller: &Principal,
    id: &str,
    encounter_id: &str,
) -> Result<Stay, Status> {
    let Some(runner) = &d.planning else {
        return Err(errors::no_planning_view());
    };
    let stays = planning::visible(d, Some(caller), id, runner)
        .await?
        .ok_or_else(|| errors::no_follow_up(id))?;
    let stay = stays
        .into_iter()
        .find(|s| s.encounter_id == encounter_id.trim())
        .ok_or_else(|| {
            errors::invalid(
                "encounter_id",
                "not one of this patient's stays: reload the patient's page and try again",
            )
        })?;
    // A liaison nurse plans her facility's stays, not the patient's others.
    if caller.role == Role::LiaisonNurse && stay.facility_id != caller.organisation {
        return Err(errors::outside_facility(id, &caller.organisation));
    }
    if !stay.plan.open() {
        return Err(errors::stay_ended());
    }
    Ok(stay)
}

/// The event payload of a draft, for its stay.
pub(super) fn payload(draft: Draft, stay: &Stay) -> Result<Payload, Status> {
    match draft {
        Draft::Ready(p) => Ok(*p),
        Draft::Expected { at, reason } => {
            let expected_at = match at {
                None => None,
                Some(local) => {
                    let at = local
                        .and_local_timezone(stay.tz())
                        .earliest()
                        .ok_or_else(|| {
                            errors::invalid(
                                "expected",
                                "this time does not exist in the facility's time zone (a clock change)",
                            )
                        })?;
                    Some(journey_proto::prost_types::Timestamp {
                        seconds: at.timestamp(),
                        nanos: 0,
                    })
                }
            };
            Ok(Payload::DischargeExpected(DischargeExpected {
                encounter_id: stay.encounter_id.clone(),
                expected_at,
                reason,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{ChecklistItem, ComplexityReason};

    fn form(action: &str) -> ActionForm {
        ActionForm::planning(action)
    }

    #[test]
    fn a_ticked_item_becomes_its_event() {
        let mut f = form("checklist");
        f.item = "return_kit_given".into();
        f.done = "true".into();
        f.detail = " pilulier ".into();
        let Ok(Draft::Ready(p)) = draft(&f) else {
            panic!("a checklist item")
        };
        let Payload::ChecklistItemSet(x) = *p else {
            panic!("a checklist item")
        };
        assert_eq!(
            (x.encounter_id.as_str(), x.item, x.done, x.detail.as_str()),
            ("E1", ChecklistItem::ReturnKitGiven as i32, true, "pilulier")
        );
    }

    #[test]
    fn an_expected_time_is_read_in_the_facility_time_zone() {
        let mut f = form("expected");
        f.expected = "2026-12-05T14:30".into();
        let stay = Stay {
            encounter_id: "E1".into(),
            time_zone: "Europe/Paris".into(),
            ..Default::default()
        };
        let Ok(Payload::DischargeExpected(x)) = payload(draft(&f).unwrap(), &stay) else {
            panic!("an expected discharge")
        };
        // 14:30 in Paris in December is 13:30 UTC.
        let utc = chrono::DateTime::from_timestamp(x.expected_at.unwrap().seconds, 0).unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-12-05T13:30:00+00:00");
        f.expected = String::new();
        let Ok(Payload::DischargeExpected(x)) = payload(draft(&f).unwrap(), &stay) else {
            panic!("a withdrawn date")
        };
        assert!(x.expected_at.is_none());
    }

    #[test]
    fn complex_reasons_come_from_their_boxes() {
        let mut f = form("complex");
        f.reason_alone = "on".into();
        f.reason_age = "on".into();
        let Ok(Draft::Ready(p)) = draft(&f) else {
            panic!("a flag")
        };
        let Payload::ComplexDischargeFlagged(x) = *p else {
            panic!("a flag")
        };
        assert_eq!(
            x.reasons,
            vec![
                ComplexityReason::Age75OrOver as i32,
                ComplexityReason::LivesAlone as i32
            ]
        );
    }

    #[test]
    fn a_bad_planning_form_is_refused_with_its_field() {
        let mut no_item = form("checklist");
        no_item.item = "coffee".into();
        no_item.done = "true".into();
        let mut bad_done = form("checklist");
        bad_done.item = "letter_prepared".into();
        bad_done.done = "maybe".into();
        let mut bad_date = form("expected");
        bad_date.expected = "tomorrow".into();
        let mut no_encounter = form("complex");
        no_encounter.encounter_id = " ".into();
        for (f, field) in [
            (no_item, "item"),
            (bad_done, "done"),
            (bad_date, "expected"),
            (no_encounter, "encounter_id"),
        ] {
            let Err(s) = draft(&f) else {
                panic!("{field}: accepted")
            };
            assert_eq!(s.code(), tonic::Code::InvalidArgument);
            assert!(s.message().starts_with(field), "{field}: {}", s.message());
        }
    }
}
