//! The discharge-planning rules, pure: which checklist items a stay needs, when it is ready, what
//! is late, and the complex-discharge reasons the backbone derives itself (docs/design.md §5,
//! "Discharge planning").
//!
//! - A stay is **ready** when each of the ten checklist items is done (an item that does not
//!   apply is ticked with a detail saying so: nothing is ready by omission).
//! - It is **due** (on the in-hospital worklist) while it is open and its expected discharge is
//!   at most [`HORIZON`] ahead, or already past.
//! - What is **late**: an open stay with no expected discharge [`HORIZON`] after admission; the
//!   social or functional evaluation not done [`HORIZON`] after admission (planning starts at
//!   admission); a due stay that is not ready; an expected discharge past while the patient is
//!   still in.
//! - Suggested reasons for a complex discharge: 75 or older on the day of admission (from the
//!   birth date), and another stay that ended in the six months before this admission.
use chrono::{Datelike, Months, NaiveDate};
use journey_proto::v1::{ChecklistItem, ComplexityReason};

/// How far ahead the in-hospital worklist looks, and how long after admission the expected date
/// and the evaluations may wait: 48 hours.
pub const HORIZON: i64 = 48 * 3600;

/// The checklist, in the order a team goes through it.
pub const ITEMS: [ChecklistItem; 10] = [
    ChecklistItem::SocialEvaluation,
    ChecklistItem::FunctionalEvaluation,
    ChecklistItem::EquipmentOrdered,
    ChecklistItem::EquipmentDelivered,
    ChecklistItem::HomeServicesArranged,
    ChecklistItem::FollowUpBooked,
    ChecklistItem::PrescriptionsSent,
    ChecklistItem::LetterPrepared,
    ChecklistItem::EducationDone,
    ChecklistItem::ReturnKitGiven,
];

/// The evaluations planning starts with.
pub const EVALUATIONS: [ChecklistItem; 2] = [
    ChecklistItem::SocialEvaluation,
    ChecklistItem::FunctionalEvaluation,
];

/// An item's bit in a set of done items.
pub fn bit(item: ChecklistItem) -> i64 {
    1 << (item as i32)
}

/// Every item's bit: the set of a ready stay.
pub fn all_bits() -> i64 {
    ITEMS.iter().fold(0, |m, i| m | bit(*i))
}

/// Whether a set of done items makes a stay ready.
pub fn complete(done: i64) -> bool {
    done & all_bits() == all_bits()
}

/// [`complete`] as an SQL condition on `done`, a column or expression holding a set of done items.
pub fn complete_sql(done: &str) -> String {
    let all = all_bits();
    format!("({done} & {all}) = {all}")
}

/// How many of the checklist's items a set holds.
pub fn done_count(done: i64) -> u32 {
    (done & all_bits()).count_ones()
}

/// The items of the checklist not in `done`, in checklist order.
pub fn missing(done: i64) -> Vec<ChecklistItem> {
    ITEMS
        .iter()
        .copied()
        .filter(|i| done & bit(*i) == 0)
        .collect()
}

/// What a stay's planning stands on, as far as the rules need it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub admitted_at: i64,
    pub discharged_at: Option<i64>,
    pub expected_at: Option<i64>,
    /// The checklist items done, as [`bit`]s.
    pub done: i64,
}

/// Something of a stay's planning that is late, and by how much (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Late {
    /// No expected discharge date, this long after the [`HORIZON`] past admission.
    NoExpectedDate { by: i64 },
    /// An evaluation not done, this long after the [`HORIZON`] past admission.
    Evaluation { item: ChecklistItem, by: i64 },
    /// Expected to leave within [`HORIZON`] (in `left` seconds) and not ready.
    NotReady { left: i64 },
    /// The expected discharge passed this long ago and the patient is still in.
    ExpectedPassed { by: i64 },
}

impl Plan {
    pub fn open(&self) -> bool {
        self.discharged_at.is_none()
    }

    pub fn ready(&self) -> bool {
        complete(self.done)
    }

    /// Whether the stay belongs on the in-hospital worklist at `now`.
    pub fn due(&self, now: i64) -> bool {
        self.open() && self.expected_at.is_some_and(|t| t <= now + HORIZON)
    }

    /// What is late at `now` (nothing once the patient left).
    pub fn late(&self, now: i64) -> Vec<Late> {
        let mut out = Vec::new();
        if !self.open() {
            return out;
        }
        let past_horizon = now - (self.admitted_at + HORIZON);
        match self.expected_at {
            None if past_horizon > 0 => out.push(Late::NoExpectedDate { by: past_horizon }),
            Some(t) if t < now => out.push(Late::ExpectedPassed { by: now - t }),
            _ => {}
        }
        if past_horizon > 0 {
            for item in EVALUATIONS {
                if self.done & bit(item) == 0 {
                    out.push(Late::Evaluation {
                        item,
                        by: past_horizon,
                    });
                }
            }
        }
        if let Some(t) = self.expected_at {
            if self.due(now) && t >= now && !self.ready() {
                out.push(Late::NotReady { left: t - now });
            }
        }
        out
    }
}

/// The reasons for a complex discharge the backbone derives from what it knows, not already
/// among `flagged`: 75 or older on the day of admission (`birth_date` "YYYY-MM-DD"; `admitted_on`
/// the admission's local date), and a stay that ended in the six months before it.
pub fn suggested(
    birth_date: &str,
    admitted_on: NaiveDate,
    previous_discharge_on: Option<NaiveDate>,
    flagged: &[ComplexityReason],
) -> Vec<ComplexityReason> {
    let mut out = Vec::new();
    if let Ok(born) = NaiveDate::parse_from_str(birth_date, "%Y-%m-%d") {
        let mut age = admitted_on.year() - born.year();
        if (admitted_on.month(), admitted_on.day()) < (born.month(), born.day()) {
            age -= 1;
        }
        if age >= 75 {
            out.push(ComplexityReason::Age75OrOver);
        }
    }
    if let Some(prev) = previous_discharge_on {
        let since = admitted_on
            .checked_sub_months(Months::new(6))
            .unwrap_or(NaiveDate::MIN);
        if prev >= since && prev <= admitted_on {
            out.push(ComplexityReason::RecentStay);
        }
    }
    out.retain(|r| !flagged.contains(r));
    out
}

/// A set of reasons as bits (the read model's column), and back.
pub fn reason_bits(reasons: &[i32]) -> i64 {
    reasons
        .iter()
        .filter(|r| (1..=30).contains(*r))
        .fold(0, |m, r| m | 1 << r)
}

pub fn reasons_of(bits: i64) -> Vec<ComplexityReason> {
    (1..=30)
        .filter(|r| bits & (1 << r) != 0)
        .filter_map(|r| ComplexityReason::try_from(r).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const NOW: i64 = 1_800_000_000;

    fn plan(admitted_h_ago: i64, expected_in_h: Option<i64>, done: &[ChecklistItem]) -> Plan {
        Plan {
            admitted_at: NOW - admitted_h_ago * H,
            discharged_at: None,
            expected_at: expected_in_h.map(|h| NOW + h * H),
            done: done.iter().fold(0, |m, i| m | bit(*i)),
        }
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn given_every_item_done_when_checked_then_the_stay_is_ready() {
        let p = plan(24, Some(10), &ITEMS);
        assert!(p.ready());
        assert_eq!(done_count(p.done), 10);
        assert!(missing(p.done).is_empty());
        assert!(p.late(NOW).is_empty());
    }

    #[test]
    fn given_one_item_left_when_checked_then_the_stay_is_not_ready_and_says_which() {
        let p = plan(24, Some(10), &ITEMS[..9]);
        assert!(!p.ready());
        assert_eq!(missing(p.done), vec![ChecklistItem::ReturnKitGiven]);
        assert_eq!(p.late(NOW), vec![Late::NotReady { left: 10 * H }]);
    }

    #[test]
    fn given_an_expected_discharge_within_48_hours_then_the_stay_is_due() {
        assert!(plan(24, Some(47), &[]).due(NOW));
        assert!(plan(24, Some(48), &[]).due(NOW));
        // Past expected dates stay on the list while the patient is in.
        assert!(plan(24, Some(-5), &[]).due(NOW));
    }

    #[test]
    fn given_an_expected_discharge_beyond_48_hours_or_none_then_the_stay_is_not_due() {
        assert!(!plan(24, Some(49), &[]).due(NOW));
        assert!(!plan(24, None, &[]).due(NOW));
    }

    #[test]
    fn given_a_discharged_stay_then_it_is_neither_due_nor_late() {
        let mut p = plan(100, Some(-10), &[]);
        p.discharged_at = Some(NOW - H);
        assert!(!p.due(NOW));
        assert!(p.late(NOW).is_empty());
    }

    #[test]
    fn given_no_expected_date_48_hours_after_admission_then_it_is_late() {
        assert!(plan(47, None, &EVALUATIONS).late(NOW).is_empty());
        assert_eq!(
            plan(50, None, &EVALUATIONS).late(NOW),
            vec![Late::NoExpectedDate { by: 2 * H }]
        );
    }

    #[test]
    fn given_evaluations_not_done_48_hours_after_admission_then_each_is_late() {
        assert_eq!(
            plan(72, Some(100), &[ChecklistItem::SocialEvaluation]).late(NOW),
            vec![Late::Evaluation {
                item: ChecklistItem::FunctionalEvaluation,
                by: 24 * H
            }]
        );
        // Within 48 hours of admission the evaluations may wait.
        assert!(plan(30, Some(100), &[]).late(NOW).is_empty());
    }

    #[test]
    fn given_an_expected_discharge_past_and_the_patient_still_in_then_it_is_late() {
        assert_eq!(
            plan(20, Some(-3), &ITEMS).late(NOW),
            vec![Late::ExpectedPassed { by: 3 * H }]
        );
    }

    #[test]
    fn given_a_patient_of_75_on_the_admission_day_then_age_is_suggested() {
        let on = date("2026-03-10");
        assert_eq!(
            suggested("1951-03-10", on, None, &[]),
            vec![ComplexityReason::Age75OrOver]
        );
        // 75 the day after: not yet.
        assert!(suggested("1951-03-11", on, None, &[]).is_empty());
        assert!(suggested("not a date", on, None, &[]).is_empty());
    }

    #[test]
    fn given_a_stay_ended_in_the_six_months_before_admission_then_recent_stay_is_suggested() {
        let on = date("2026-03-10");
        assert_eq!(
            suggested("1990-01-01", on, Some(date("2025-09-10")), &[]),
            vec![ComplexityReason::RecentStay]
        );
        assert!(suggested("1990-01-01", on, Some(date("2025-09-09")), &[]).is_empty());
    }

    #[test]
    fn given_a_reason_already_flagged_then_it_is_not_suggested_again() {
        let on = date("2026-03-10");
        assert_eq!(
            suggested(
                "1940-01-01",
                on,
                Some(date("2026-01-01")),
                &[ComplexityReason::Age75OrOver]
            ),
            vec![ComplexityReason::RecentStay]
        );
    }

    #[test]
    fn reasons_go_to_bits_and_back() {
        let r = [
            ComplexityReason::LivesAlone as i32,
            ComplexityReason::Other as i32,
        ];
        assert_eq!(
            reasons_of(reason_bits(&r)),
            vec![ComplexityReason::LivesAlone, ComplexityReason::Other]
        );
        assert_eq!(reason_bits(&[]), 0);
    }
}
