//! The follow-up state of one discharge, derived from its facts and the current time (pure).
//! Due times are fixed by the rules of docs/design.md §5; whether something is overdue depends on `now`,
//! so it is computed at query time, never stored.
use super::calendar::{end_of_day, working_days_deadline};

/// The items a discharge letter must hold (`LetterItem` 1..=11).
pub const LETTER_ITEMS_REQUIRED: u32 = 11;
/// First home contact: within this many working days of discharge.
pub const FIRST_CONTACT_WORKING_DAYS: u32 = 2;
/// Medication reconciliation: within this many days of discharge.
pub const RECONCILIATION_DAYS: i64 = 7;
pub const DAY: i64 = 86_400;

/// The weights of the urgency score ([`FollowUp::urgency`]). The worklist's SQL order
/// (`urgency.rs`) adds the same weights under the same conditions.
pub mod weight {
    pub const CRITICAL_ALERT: i64 = 10_000;
    pub const HIGH_ALERT: i64 = 5_000;
    /// An open low or moderate alert…
    pub const OTHER_ALERT: i64 = 200;
    /// …plus this when some open alert (of any severity) is unacknowledged.
    pub const UNACKNOWLEDGED_ALERT: i64 = 1_000;
    pub const FIRST_CONTACT_OVERDUE: i64 = 3_000;
    pub const APPOINTMENT_MISSED: i64 = 1_500;
    pub const APPOINTMENT_UNCONFIRMED: i64 = 1_200;
    /// A step of the care pathway's template (`pathways.rs`) past its deadline, not done.
    pub const PATHWAY_STEP_OVERDUE: i64 = 1_100;
    pub const LETTER_OVERDUE: i64 = 1_000;
    pub const RECONCILIATION_OVERDUE: i64 = 800;
    pub const LETTER_INCOMPLETE: i64 = 300;
    pub const FIRST_CONTACT_DUE: i64 = 100;
    /// Added per whole day late (overdue first contact or letter)…
    pub const PER_DAY_LATE: i64 = 100;
    /// …counting at most this many days.
    pub const MAX_DAYS_LATE: i64 = 99;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentState {
    Scheduled,
    Completed,
    Missed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Appointment {
    pub appointment_id: String,
    pub kind: String,
    pub due_at: i64,
    pub state: AppointmentState,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub alert_id: String,
    /// `Severity` (1 low … 4 critical).
    pub severity: i32,
    pub reason: String,
    pub raised_at: i64,
    pub acknowledged_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// A step of the discharge's care pathway (`pathways.rs`): its deadline and when it was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathwayDue {
    pub due_at: i64,
    pub done_at: Option<i64>,
}

/// What the log says about one discharge and the patient's care since.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub discharged_at: i64,
    pub letter_sent_at: Option<i64>,
    /// Distinct `LetterItem` values present in the (last) letter.
    pub letter_items: u32,
    pub reconciled_at: Option<i64>,
    pub first_contact_at: Option<i64>,
    pub appointments: Vec<Appointment>,
    pub alerts: Vec<Alert>,
    /// The steps of its care pathway's template.
    pub pathway: Vec<PathwayDue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeliness {
    /// Done by its due time.
    OnTime,
    /// Done after its due time.
    Late,
    /// Not done, and not yet due.
    Pending,
    /// Not done and past its due time.
    Overdue,
}

impl Timeliness {
    pub fn of(done_at: Option<i64>, due: i64, now: i64) -> Self {
        match done_at {
            Some(t) if t < due => Timeliness::OnTime,
            Some(_) => Timeliness::Late,
            None if now < due => Timeliness::Pending,
            None => Timeliness::Overdue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Timeliness::OnTime => "on_time",
            Timeliness::Late => "late",
            Timeliness::Pending => "pending",
            Timeliness::Overdue => "overdue",
        }
    }
}

/// The derived follow-up state.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// Same-day letter: due by the end of the discharge day (Paris).
    pub letter: Timeliness,
    pub letter_due_at: i64,
    /// Whole days between discharge and the letter (0 = same day), when sent.
    pub letter_delay_days: Option<i64>,
    pub letter_items: u32,
    pub letter_complete: bool,
    pub reconciliation: Timeliness,
    pub reconciliation_due_at: i64,
    pub first_contact: Timeliness,
    pub first_contact_due_at: i64,
    /// Hours from discharge to the first home contact, when made.
    pub first_contact_delay_hours: Option<i64>,
    pub appointments_upcoming: u32,
    pub appointments_done: u32,
    pub appointments_missed: u32,
    /// Scheduled, past due, and neither completed nor reported missed.
    pub appointments_overdue: u32,
    pub next_appointment_due_at: Option<i64>,
    /// The care pathway's steps not done and past their deadline.
    pub pathway_steps_overdue: u32,
    /// The earliest deadline of a care pathway step not done yet.
    pub pathway_due_at: Option<i64>,
    /// Open (unresolved) alerts by severity: [low, moderate, high, critical].
    pub open_alerts: [u32; 4],
    /// Open alerts nobody has acknowledged.
    pub unacknowledged_alerts: u32,
    pub oldest_open_alert_at: Option<i64>,
    pub max_open_severity: i32,
    /// Something is past due (letter, contact, reconciliation, appointment) or an alert is open.
    pub overdue: bool,
    /// Higher = look first.
    pub urgency: i64,
    /// What to do, most urgent first, as short stable codes (`first_contact_overdue`, …).
    pub tasks: Vec<&'static str>,
}

/// One follow-up item of a discharge: when it is due, when it was done, how it stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Due {
    pub due_at: i64,
    pub done_at: Option<i64>,
    pub state: Timeliness,
}

impl Due {
    fn at(done_at: Option<i64>, due_at: i64, now: i64) -> Due {
        Due {
            due_at,
            done_at,
            state: Timeliness::of(done_at, due_at, now),
        }
    }
}

/// The three items every discharge has, derived at `now` from the discharge's own dates: what
/// [`follow_up`] starts from, and all that the FHIR Tasks show of a discharge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Items {
    /// The letter, due by the end of the discharge day (Paris).
    pub letter: Due,
    pub reconciliation: Due,
    pub first_contact: Due,
}

/// [`Items`] of a discharge at `discharged_at`, its letter sent, its medication reconciled and
/// its first home contact made at these times (if they were).
pub fn items(
    discharged_at: i64,
    letter_sent_at: Option<i64>,
    reconciled_at: Option<i64>,
    first_contact_at: Option<i64>,
    now: i64,
) -> Items {
    Items {
        letter: Due::at(letter_sent_at, end_of_day(discharged_at), now),
        reconciliation: Due::at(
            reconciled_at,
            discharged_at + RECONCILIATION_DAYS * DAY,
            now,
        ),
        first_contact: Due::at(
            first_contact_at,
            working_days_deadline(discharged_at, FIRST_CONTACT_WORKING_DAYS),
            now,
        ),
    }
}

/// Derives the follow-up state of one discharge at `now`.
pub fn follow_up(f: &Facts, now: i64) -> FollowUp {
    let Items {
        letter,
        reconciliation,
        first_contact,
    } = items(
        f.discharged_at,
        f.letter_sent_at,
        f.reconciled_at,
        f.first_contact_at,
        now,
    );
    let (letter_due_at, letter) = (letter.due_at, letter.state);
    let letter_delay_days = f
        .letter_sent_at
        .map(|t| (t - letter_due_at).max(-1).div_euclid(DAY) + 1);
    let letter_items = f.letter_items.count_ones();
    let letter_complete = f.letter_sent_at.is_some() && letter_items >= LETTER_ITEMS_REQUIRED;
    let (reconciliation_due_at, reconciliation) = (reconciliation.due_at, reconciliation.state);
    let (first_contact_due_at, first_contact) = (first_contact.due_at, first_contact.state);
    let first_contact_delay_hours = f.first_contact_at.map(|t| (t - f.discharged_at) / 3600);

    let mut fu = FollowUp {
        letter,
        letter_due_at,
        letter_delay_days,
        letter_items,
        letter_complete,
        reconciliation,
        reconciliation_due_at,
        first_contact,
        first_contact_due_at,
        first_contact_delay_hours,
        appointments_upcoming: 0,
        appointments_done: 0,
        appointments_missed: 0,
        appointments_overdue: 0,
        next_appointment_due_at: None,
        pathway_steps_overdue: 0,
        pathway_due_at: None,
        open_alerts: [0; 4],
        unacknowledged_alerts: 0,
        oldest_open_alert_at: None,
        max_open_severity: 0,
        overdue: false,
        urgency: 0,
        tasks: Vec::new(),
    };
    for a in &f.appointments {
        match a.state {
            AppointmentState::Completed => fu.appointments_done += 1,
            AppointmentState::Missed => fu.appointments_missed += 1,
            AppointmentState::Scheduled if a.due_at < now => fu.appointments_overdue += 1,
            AppointmentState::Scheduled => {
                fu.appointments_upcoming += 1;
                fu.next_appointment_due_at = Some(
                    fu.next_appointment_due_at
                        .map_or(a.due_at, |n| n.min(a.due_at)),
                );
            }
        }
    }
    for step in f.pathway.iter().filter(|s| s.done_at.is_none()) {
        fu.pathway_due_at = Some(
            fu.pathway_due_at
                .map_or(step.due_at, |d| d.min(step.due_at)),
        );
        fu.pathway_steps_overdue += u32::from(now >= step.due_at);
    }
    for a in f.alerts.iter().filter(|a| a.resolved_at.is_none()) {
        let s = a.severity.clamp(1, 4);
        fu.open_alerts[(s - 1) as usize] += 1;
        fu.max_open_severity = fu.max_open_severity.max(s);
        if a.acknowledged_at.is_none() {
            fu.unacknowledged_alerts += 1;
        }
        fu.oldest_open_alert_at = Some(
            fu.oldest_open_alert_at
                .map_or(a.raised_at, |o| o.min(a.raised_at)),
        );
    }
    rank(&mut fu, f, now);
    fu
}

/// Urgency and the task list: open alerts by severity first, then what is overdue, then what is
/// incomplete. The score adds whole days late so that older problems come first.
fn rank(fu: &mut FollowUp, f: &Facts, now: i64) {
    use weight::*;
    let days_late = |due: i64| ((now - due).max(0) / DAY).min(MAX_DAYS_LATE);
    let mut score = 0i64;
    let mut tasks = Vec::new();
    if fu.open_alerts[3] > 0 {
        score += CRITICAL_ALERT;
        tasks.push("critical_alert_open");
    }
    if fu.open_alerts[2] > 0 {
        score += HIGH_ALERT;
        tasks.push("high_alert_open");
    }
    if fu.open_alerts[1] + fu.open_alerts[0] > 0 {
        score += UNACKNOWLEDGED_ALERT * i64::from(fu.unacknowledged_alerts > 0) + OTHER_ALERT;
        // Somebody has seen an acknowledged alert: what is left is to close it.
        if fu.unacknowledged_alerts > 0 {
            tasks.push("alert_open");
        } else {
            tasks.push("alert_acknowledged");
        }
    }
    if fu.first_contact == Timeliness::Overdue {
        score += FIRST_CONTACT_OVERDUE + PER_DAY_LATE * days_late(fu.first_contact_due_at);
        tasks.push("first_contact_overdue");
    }
    if fu.appointments_missed > 0 {
        score += APPOINTMENT_MISSED;
        tasks.push("appointment_missed");
    }
    if fu.appointments_overdue > 0 {
        score += APPOINTMENT_UNCONFIRMED;
        tasks.push("appointment_unconfirmed");
    }
    if let (true, Some(due)) = (fu.pathway_steps_overdue > 0, fu.pathway_due_at) {
        // Late counted from the earliest step not done (overdue, since one is).
        score += PATHWAY_STEP_OVERDUE + PER_DAY_LATE * days_late(due);
        tasks.push("pathway_step_overdue");
    }
    if fu.letter == Timeliness::Overdue {
        score += LETTER_OVERDUE + PER_DAY_LATE * days_late(fu.letter_due_at);
        tasks.push("letter_overdue");
    }
    if fu.reconciliation == Timeliness::Overdue {
        score += RECONCILIATION_OVERDUE;
        tasks.push("reconciliation_overdue");
    }
    if f.letter_sent_at.is_some() && !fu.letter_complete {
        score += LETTER_INCOMPLETE;
        tasks.push("letter_incomplete");
    }
    if fu.first_contact == Timeliness::Pending {
        score += FIRST_CONTACT_DUE;
        tasks.push("first_contact_due");
    }
    fu.overdue = fu.open_alerts.iter().sum::<u32>() > 0
        || fu.first_contact == Timeliness::Overdue
        || fu.letter == Timeliness::Overdue
        || fu.reconciliation == Timeliness::Overdue
        || fu.appointments_overdue > 0
        || fu.appointments_missed > 0
        || fu.pathway_steps_overdue > 0;
    fu.urgency = score;
    fu.tasks = tasks;
}

/// Whether a discharge still has an open task, whatever its date: an alert not resolved, an
/// appointment past due and not confirmed, a care pathway step overdue, or no first contact yet
/// (`urgency::open_task_sql`).
pub fn open_task(f: &Facts, fu: &FollowUp) -> bool {
    fu.open_alerts.iter().sum::<u32>() > 0
        || fu.appointments_overdue > 0
        || fu.pathway_steps_overdue > 0
        || f.first_contact_at.is_none()
}

/// The `q`-quantile (0..=1) of `values` by nearest rank; `None` when empty.
pub fn quantile(values: &mut [i64], q: f64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }
    fn items(n: u32) -> u32 {
        (1..=n).fold(0, |m, i| m | 1 << i)
    }
    /// Discharged Tuesday 24 Nov 2026 at 11:00 Paris.
    fn discharged() -> Facts {
        Facts {
            discharged_at: utc("2026-11-24T10:00:00Z"),
            ..Default::default()
        }
    }

    /// (letter sent at, items, now) → (letter, delay days, complete, task).
    type LetterCase = (
        Option<&'static str>,
        u32,
        &'static str,
        Timeliness,
        Option<i64>,
        bool,
        Option<&'static str>,
    );

    #[test]
    fn letters() {
        // (given letter sent at, items, when now) → (letter, delay days, complete, task)
        let cases: &[LetterCase] = &[
            (
                Some("2026-11-24T16:00:00Z"),
                11,
                "2026-11-25T09:00:00Z",
                Timeliness::OnTime,
                Some(0),
                true,
                None,
            ),
            (
                Some("2026-11-26T09:00:00Z"),
                11,
                "2026-11-26T10:00:00Z",
                Timeliness::Late,
                Some(2),
                true,
                None,
            ),
            (
                Some("2026-11-24T16:00:00Z"),
                8,
                "2026-11-25T09:00:00Z",
                Timeliness::OnTime,
                Some(0),
                false,
                Some("letter_incomplete"),
            ),
            (
                None,
                0,
                "2026-11-24T20:00:00Z",
                Timeliness::Pending,
                None,
                false,
                None,
            ),
            (
                None,
                0,
                "2026-11-25T09:00:00Z",
                Timeliness::Overdue,
                None,
                false,
                Some("letter_overdue"),
            ),
        ];
        for (sent, n, now, want, delay, complete, task) in cases {
            let f = Facts {
                letter_sent_at: sent.map(utc),
                letter_items: items(*n),
                ..discharged()
            };
            let fu = follow_up(&f, utc(now));
            assert_eq!(fu.letter, *want, "{sent:?} at {now}");
            assert_eq!(fu.letter_delay_days, *delay, "{sent:?}");
            assert_eq!(fu.letter_complete, *complete, "{sent:?}");
            assert_eq!(fu.letter_items, *n);
            if let Some(t) = task {
                assert!(fu.tasks.contains(t), "{sent:?} {now}: {:?}", fu.tasks);
            }
        }
    }

    #[test]
    fn first_contact_with_weekends() {
        // Discharged Friday 27 Nov 2026 15:00 UTC: due by the end of Tuesday 1 Dec (Paris).
        let fri = utc("2026-11-27T15:00:00Z");
        let cases = [
            (
                Some("2026-11-30T09:00:00Z"),
                "2026-12-03T09:00:00Z",
                Timeliness::OnTime,
            ),
            (
                Some("2026-12-01T21:00:00Z"),
                "2026-12-03T09:00:00Z",
                Timeliness::OnTime,
            ),
            (
                Some("2026-12-02T08:00:00Z"),
                "2026-12-03T09:00:00Z",
                Timeliness::Late,
            ),
            (None, "2026-11-30T09:00:00Z", Timeliness::Pending),
            (None, "2026-12-01T22:59:00Z", Timeliness::Pending),
            (None, "2026-12-01T23:00:00Z", Timeliness::Overdue),
        ];
        for (contact, now, want) in cases {
            let f = Facts {
                discharged_at: fri,
                first_contact_at: contact.map(utc),
                ..Default::default()
            };
            let fu = follow_up(&f, utc(now));
            assert_eq!(fu.first_contact, want, "{contact:?} at {now}");
            assert_eq!(
                fu.overdue,
                want == Timeliness::Overdue || fu.letter == Timeliness::Overdue
            );
        }
        let f = Facts {
            discharged_at: fri,
            first_contact_at: Some(utc("2026-11-30T15:00:00Z")),
            ..Default::default()
        };
        assert_eq!(
            follow_up(&f, fri + 10 * DAY).first_contact_delay_hours,
            Some(72)
        );
    }

    #[test]
    fn appointments() {
        let appt = |due: &str, state| Appointment {
            appointment_id: due.into(),
            kind: "J+7 GP".into(),
            due_at: utc(due),
            state,
        };
        let f = Facts {
            appointments: vec![
                appt("2026-12-01T09:00:00Z", AppointmentState::Completed),
                appt("2026-12-02T09:00:00Z", AppointmentState::Missed),
                appt("2026-12-03T09:00:00Z", AppointmentState::Scheduled),
                appt("2026-12-24T09:00:00Z", AppointmentState::Scheduled),
                appt("2026-12-20T09:00:00Z", AppointmentState::Scheduled),
            ],
            first_contact_at: Some(utc("2026-11-25T09:00:00Z")),
            letter_sent_at: Some(utc("2026-11-24T12:00:00Z")),
            letter_items: items(11),
            reconciled_at: Some(utc("2026-11-25T09:00:00Z")),
            ..discharged()
        };
        let fu = follow_up(&f, utc("2026-12-05T00:00:00Z"));
        assert_eq!(
            (
                fu.appointments_done,
                fu.appointments_missed,
                fu.appointments_overdue,
                fu.appointments_upcoming
            ),
            (1, 1, 1, 2)
        );
        assert_eq!(
            fu.next_appointment_due_at,
            Some(utc("2026-12-20T09:00:00Z"))
        );
        assert!(fu.overdue);
        assert_eq!(
            fu.tasks,
            vec!["appointment_missed", "appointment_unconfirmed"]
        );
    }

    #[test]
    fn alerts_open_acknowledged_resolved() {
        let alert = |sev, ack: Option<&str>, res: Option<&str>| Alert {
            alert_id: format!("{sev}{ack:?}{res:?}"),
            severity: sev,
            reason: String::new(),
            raised_at: utc("2026-11-26T08:00:00Z"),
            acknowledged_at: ack.map(utc),
            resolved_at: res.map(utc),
        };
        let base = Facts {
            first_contact_at: Some(utc("2026-11-25T09:00:00Z")),
            letter_sent_at: Some(utc("2026-11-24T12:00:00Z")),
            letter_items: items(11),
            reconciled_at: Some(utc("2026-11-25T09:00:00Z")),
            ..discharged()
        };
        let now = utc("2026-11-27T08:00:00Z");
        // Nothing open: not overdue, nothing to do.
        let quiet = follow_up(&base, now);
        assert!(!quiet.overdue && quiet.tasks.is_empty() && quiet.urgency == 0);
        // Open and unacknowledged.
        let f = Facts {
            alerts: vec![alert(4, None, None)],
            ..base.clone()
        };
        let fu = follow_up(&f, now);
        assert_eq!(
            (
                fu.open_alerts,
                fu.unacknowledged_alerts,
                fu.max_open_severity
            ),
            ([0, 0, 0, 1], 1, 4)
        );
        assert_eq!(fu.tasks, vec!["critical_alert_open"]);
        assert!(fu.overdue && fu.urgency > quiet.urgency);
        // Acknowledged: still open, less urgent than unacknowledged of the same severity.
        let moderate = |ack| Facts {
            alerts: vec![alert(2, ack, None)],
            ..base.clone()
        };
        let unack = follow_up(&moderate(None), now);
        let ack = follow_up(&moderate(Some("2026-11-26T09:00:00Z")), now);
        assert_eq!((ack.open_alerts[1], ack.unacknowledged_alerts), (1, 0));
        assert!(unack.urgency > ack.urgency);
        assert_eq!(ack.oldest_open_alert_at, Some(utc("2026-11-26T08:00:00Z")));
        // Resolved: gone from the open counts.
        let f = Facts {
            alerts: vec![alert(4, None, Some("2026-11-26T10:00:00Z"))],
            ..base.clone()
        };
        let fu = follow_up(&f, now);
        assert_eq!((fu.open_alerts, fu.overdue), ([0; 4], false));
    }

    #[test]
    fn reconciliation_due_in_a_week() {
        let f = discharged();
        assert_eq!(
            follow_up(&f, f.discharged_at + 6 * DAY).reconciliation,
            Timeliness::Pending
        );
        let late = follow_up(&f, f.discharged_at + 8 * DAY);
        assert_eq!(late.reconciliation, Timeliness::Overdue);
        assert!(late.tasks.contains(&"reconciliation_overdue"));
    }

    #[test]
    fn urgency_orders_alerts_then_overdue_contact_then_letters() {
        let now = utc("2026-12-10T09:00:00Z");
        let critical = Facts {
            alerts: vec![Alert {
                alert_id: "a".into(),
                severity: 4,
                reason: String::new(),
                raised_at: now - 3600,
                acknowledged_at: None,
                resolved_at: None,
            }],
            first_contact_at: Some(now - 5 * DAY),
            letter_sent_at: Some(now - 5 * DAY),
            reconciled_at: Some(now),
            letter_items: items(11),
            discharged_at: now - 6 * DAY,
            ..Default::default()
        };
        let no_contact = Facts {
            letter_sent_at: Some(now - 5 * DAY),
            reconciled_at: Some(now),
            letter_items: items(11),
            discharged_at: now - 6 * DAY,
            ..Default::default()
        };
        let incomplete = Facts {
            first_contact_at: Some(now - 5 * DAY),
            letter_sent_at: Some(now - 6 * DAY),
            reconciled_at: Some(now),
            letter_items: items(5),
            discharged_at: now - 6 * DAY,
            ..Default::default()
        };
        let u = |f: &Facts| follow_up(f, now).urgency;
        assert!(u(&critical) > u(&no_contact));
        assert!(u(&no_contact) > u(&incomplete));
        assert!(u(&incomplete) > 0);
    }

    #[test]
    fn given_a_pathway_step_past_its_deadline_when_derived_then_overdue_ranked_and_listed() {
        // Letter, reconciliation and first contact done: only the pathway is left.
        let done = Facts {
            letter_sent_at: Some(utc("2026-11-24T16:00:00Z")),
            letter_items: items(11),
            reconciled_at: Some(utc("2026-11-25T09:00:00Z")),
            first_contact_at: Some(utc("2026-11-25T09:00:00Z")),
            ..discharged()
        };
        let day7 = utc("2026-12-01T23:00:00Z");
        let f = Facts {
            pathway: vec![
                // The home nurse came; the GP did not; the cardiologist is due in two months.
                PathwayDue {
                    due_at: day7,
                    done_at: Some(utc("2026-11-26T09:00:00Z")),
                },
                PathwayDue {
                    due_at: day7,
                    done_at: None,
                },
                PathwayDue {
                    due_at: utc("2027-01-24T23:00:00Z"),
                    done_at: None,
                },
            ],
            ..done.clone()
        };
        // Before day 7 is over: nothing overdue, the next deadline is day 7.
        let before = follow_up(&f, day7 - 1);
        assert_eq!(
            (before.pathway_steps_overdue, before.pathway_due_at),
            (0, Some(day7))
        );
        assert!(!before.overdue && !open_task(&f, &before));
        assert_eq!(before.urgency, 0);
        // Three days after: the GP's step overdue, late by three whole days.
        let after = follow_up(&f, day7 + 3 * DAY);
        assert_eq!(after.pathway_steps_overdue, 1);
        assert!(after.overdue && open_task(&f, &after));
        assert_eq!(after.tasks, ["pathway_step_overdue"]);
        assert_eq!(
            after.urgency,
            weight::PATHWAY_STEP_OVERDUE + 3 * weight::PER_DAY_LATE
        );
        // Every step done: nothing left.
        let all_done = Facts {
            pathway: f
                .pathway
                .iter()
                .map(|s| PathwayDue {
                    done_at: Some(day7 - DAY),
                    ..*s
                })
                .collect(),
            ..done
        };
        let fu = follow_up(&all_done, day7 + 90 * DAY);
        assert_eq!((fu.pathway_steps_overdue, fu.pathway_due_at), (0, None));
        assert!(!fu.overdue);
    }

    #[test]
    fn quantiles() {
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [7], 0.9), Some(7));
        let mut v: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), Some(5));
        assert_eq!(quantile(&mut v, 0.9), Some(9));
    }
}
