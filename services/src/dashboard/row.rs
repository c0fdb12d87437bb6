//! One discharge of the worklist (and of a patient's follow-up) as a table row: who (name, birth
//! date and age, referents), where, what is done, the open alerts (unacknowledged first, their age
//! in hours up to 48 h, then in days), the next thing due and how late it is (the first contact,
//! due within working days, late by working days: French public holidays and weekends do not
//! count), and what to do. On a phone each row is a card, each cell under its heading's name.
use super::{enc, identity, when};
use crate::html::{esc, role_label, t, task_label, timeliness_label, Lang};
use journey_projections::coordination::calendar::{is_working_day, paris_date};
use journey_proto::v1::{Role, WorklistItem};
use std::fmt::Write;

const DAY: i64 = 86_400;

/// `extra`: cells after the row's own (the plan at discharge).
pub(super) fn row(b: &mut String, lang: Lang, i: &WorklistItem, now: i64, extra: &str) {
    let class = if i.open_alerts_critical > 0 {
        "critical"
    } else if i.open_alerts_high > 0 {
        "high"
    } else {
        ""
    };
    let cell = |s: &str| {
        let c = match s {
            "overdue" => "overdue",
            "late" => "late",
            _ => "",
        };
        format!("<span class=\"{c}\">{}</span>", timeliness_label(lang, s))
    };
    let name = if i.display_name.is_empty() {
        &i.patient_id
    } else {
        &i.display_name
    };
    // An overdue pathway step said as the steps themselves ("médecin traitant en retard").
    let tasks: Vec<String> = i
        .tasks
        .iter()
        .flat_map(|t| match t.as_str() {
            "pathway_step_overdue" => super::pathway::overdue_tasks(lang, i),
            _ => vec![task_label(lang, t)],
        })
        .collect();
    let _ = write!(
        b,
        "<tr class=\"{class}\" data-patient-id=\"{pid}\" data-urgency=\"{}\" data-overdue=\"{}\">\
         <td data-label=\"{}\"><a href=\"/patients/{}?lang={}\">{}</a>{}{}</td><td data-label=\"{}\">{}<br><span class=\"muted\">{} · {}</span></td><td data-label=\"{}\">{}</td>\
         <td data-label=\"{}\">{} <span class=\"muted\">{}/{}</span></td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td>\
         <td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td><td data-label=\"{}\">{}</td>{extra}</tr>",
        i.urgency,
        i.overdue,
        t(lang, "patient"),
        enc(&i.patient_id),
        lang.code(),
        esc(name),
        born(lang, i),
        referents(lang, i),
        t(lang, "facility"),
        esc(if i.facility_name.is_empty() { &i.facility_id } else { &i.facility_name }),
        esc(&i.unit),
        esc(&i.territory),
        t(lang, "discharged"),
        when(lang, i.discharged_at.as_ref()),
        t(lang, "letter"),
        cell(&i.letter),
        i.letter_items_present,
        i.letter_items_required,
        t(lang, "first_contact"),
        cell(&i.first_contact),
        t(lang, "appointments"),
        appointments(lang, i),
        t(lang, "alerts"),
        alerts(lang, i),
        t(lang, "due"),
        due(lang, i, now),
        t(lang, "todo"),
        esc(&tasks.join(", ")),
        pid = esc(&i.patient_id),
    );
}

/// Who the patient is, under the name (two patients of the same name told apart): birth date
/// and age, sex, and the INS once the identity is validated.
fn born(lang: Lang, i: &WorklistItem) -> String {
    let id = identity::Identity::listed(&i.birth_date, i.sex, &i.ins);
    match identity::line(lang, &id) {
        l if l.is_empty() => l,
        l => format!("<br><span class=\"muted identity\">{l}</span>"),
    }
}

/// The patient's referents under the name: role, name and how to reach them.
fn referents(lang: Lang, i: &WorklistItem) -> String {
    let mut s = String::new();
    for r in &i.referents {
        let role = role_words(lang, r.role);
        let _ = write!(
            s,
            "<br><span class=\"muted referent\">{}{} {}{}</span>",
            esc(&role),
            if lang == Lang::Fr { "\u{a0}:" } else { ":" },
            esc(&r.name),
            phone_link(&r.phone)
        );
    }
    s
}

/// A phone number as a link the phone dials (after a comma), or nothing.
pub(super) fn phone_link(phone: &str) -> String {
    if phone.trim().is_empty() {
        return String::new();
    }
    let dial: String = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect();
    format!(
        ", <a class=\"phone\" href=\"tel:{}\">{}</a>",
        esc(&dial),
        esc(phone.trim())
    )
}

/// A professional's role (the event catalogue's `Role`) in the reader's words.
pub(super) fn role_words(lang: Lang, role: i32) -> String {
    Role::try_from(role).map_or(String::new(), |r| {
        role_label(
            lang,
            &r.as_str_name().trim_start_matches("ROLE_").to_lowercase(),
        )
    })
}

/// The appointments in words: how many were kept, are to come, were missed or passed without
/// news; "—" when there are none.
fn appointments(lang: Lang, i: &WorklistItem) -> String {
    let parts: Vec<String> = [
        (i.appointments_done, t(lang, "appointments_kept")),
        (i.appointments_upcoming, t(lang, "appointments_to_come")),
        (
            i.appointments_missed + i.appointments_overdue,
            t(lang, "appointments_missed_or_unknown"),
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, words)| format!("{n} {words}"))
    .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join(", ")
    }
}

/// An age in the reader's words: hours up to 48, then whole days.
fn age(lang: Lang, hours: u64) -> String {
    match hours {
        0..48 => format!("{hours} h"),
        _ => format!("{} {}", hours / 24, t(lang, "days")),
    }
}

/// The open alerts by severity, how many nobody has acknowledged yet, and the oldest one's age.
fn alerts(lang: Lang, i: &WorklistItem) -> String {
    let mut parts = Vec::new();
    for (n, label) in [
        (i.open_alerts_critical, t(lang, "severity_critical")),
        (i.open_alerts_high, t(lang, "severity_high")),
        (i.open_alerts_moderate, t(lang, "severity_moderate")),
        (i.open_alerts_low, t(lang, "severity_low")),
    ] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    if parts.is_empty() {
        return "—".into();
    }
    let unacknowledged = match i.unacknowledged_alerts {
        0 => format!(
            "<br><span class=\"muted\">{}</span>",
            t(lang, "all_acknowledged")
        ),
        n => format!("<br><b>{n} {}</b>", t(lang, "to_acknowledge")),
    };
    format!(
        "{} <span class=\"muted\">({})</span>{unacknowledged}",
        parts.join(", "),
        age(lang, i.oldest_open_alert_age_hours)
    )
}

/// The next thing due (the first contact until it is made, then the next appointment), its date
/// and, once past, by how many days it is late.
fn due(lang: Lang, i: &WorklistItem, now: i64) -> String {
    let contact_open = matches!(i.first_contact.as_str(), "pending" | "overdue");
    let (what, at) = if contact_open {
        (t(lang, "first_contact"), i.first_contact_due_at.as_ref())
    } else if i.appointments_overdue > 0 {
        return format!(
            "<span class=\"overdue\">{} {}</span>",
            i.appointments_overdue,
            t(lang, "appointments_past_due")
        );
    } else {
        (t(lang, "appointments"), i.next_appointment_due_at.as_ref())
    };
    let Some(at) = at else {
        return "—".into();
    };
    let late = if now <= at.seconds {
        String::new()
    } else if contact_open {
        // The first contact is due within working days: it is late by working days.
        match working_days_late(at.seconds, now) {
            0 => format!(
                "<br><span class=\"overdue\">{}</span>",
                t(lang, "late_since_weekend")
            ),
            1 => format!(
                "<br><span class=\"overdue\">{} 1 {}</span>",
                t(lang, "late_by"),
                t(lang, "working_day")
            ),
            n => format!(
                "<br><span class=\"overdue\">{} {n} {}</span>",
                t(lang, "late_by"),
                t(lang, "working_days")
            ),
        }
    } else {
        let days = ((now - at.seconds) / DAY).max(1);
        let unit = if days == 1 {
            t(lang, "day")
        } else {
            t(lang, "days")
        };
        format!(
            "<br><span class=\"overdue\">{} {days} {unit}</span>",
            t(lang, "late_by"),
        )
    };
    // The deadline is the start of the first day it is late: the page shows the last day due.
    let last_day = if contact_open {
        at.seconds - 1
    } else {
        at.seconds
    };
    let shown = journey_proto::prost_types::Timestamp {
        seconds: last_day,
        nanos: 0,
    };
    let date = if contact_open {
        day(lang, last_day)
    } else {
        when(lang, Some(&shown))
    };
    format!("{what}<br><span class=\"muted\">{date}</span>{late}")
}

/// "au plus tard le 27/11/2026", "by 27 Nov 2026": the last day of a deadline that ends at the
/// start of the day after.
fn day(lang: Lang, secs: i64) -> String {
    let d = paris_date(secs);
    match lang {
        Lang::Fr => format!("{} {}", t(lang, "by_day"), d.format("%d/%m/%Y")),
        Lang::En => format!("{} {}", t(lang, "by_day"), d.format("%-d %b %Y")),
    }
}

/// The working days (Paris dates, French public holidays and weekends excepted) from the first
/// day late (the Paris date the deadline `due` starts) to today, both included.
fn working_days_late(due: i64, now: i64) -> u32 {
    let (mut d, today) = (paris_date(due), paris_date(now));
    let mut n = 0;
    while d <= today {
        if is_working_day(d) {
            n += 1;
        }
        d = d.succ_opt().expect("a date after");
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_contact_is_late_by_working_days() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        // Due by Friday 27/11/2026 (the deadline: Saturday 00:00 Paris).
        let due = at("2026-11-28T00:00:00+01:00");
        assert_eq!(working_days_late(due, at("2026-11-28T10:00:00+01:00")), 0);
        assert_eq!(working_days_late(due, at("2026-11-30T09:00:00+01:00")), 1);
        assert_eq!(working_days_late(due, at("2026-12-01T18:00:00+01:00")), 2);
        // Christmas and the weekend after it do not count.
        let due = at("2026-12-24T00:00:00+01:00");
        assert_eq!(working_days_late(due, at("2026-12-28T12:00:00+01:00")), 2);
    }

    #[test]
    fn ages_in_hours_then_days() {
        assert_eq!(age(Lang::Fr, 5), "5 h");
        assert_eq!(age(Lang::Fr, 47), "47 h");
        assert_eq!(age(Lang::Fr, 72), "3 jours");
        assert_eq!(age(Lang::En, 1775), "73 days");
    }
}
