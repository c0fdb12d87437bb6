//! One discharge of the worklist (and of a patient's follow-up) as a table row: who (name,
//! referents), where, what is done, the open alerts (unacknowledged first, their age in hours
//! up to 48 h, then in days), the next thing due and how late it is, and what to do.
use super::{enc, when};
use crate::html::{esc, role_label, t, task_label, timeliness_label, Lang};
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
    let tasks: Vec<String> = i.tasks.iter().map(|t| task_label(lang, t)).collect();
    let _ = write!(
        b,
        "<tr class=\"{class}\" data-patient-id=\"{pid}\" data-urgency=\"{}\" data-overdue=\"{}\">\
         <td><a href=\"/patients/{}?lang={}\">{}</a>{}</td><td>{}<br><span class=\"muted\">{} · {}</span></td><td>{}</td>\
         <td>{} <span class=\"muted\">{}/{}</span></td><td>{}</td><td>{} / {} / {}</td><td>{}</td><td>{}</td><td>{}</td>{extra}</tr>",
        i.urgency,
        i.overdue,
        enc(&i.patient_id),
        lang.code(),
        esc(name),
        referents(lang, i),
        esc(if i.facility_name.is_empty() { &i.facility_id } else { &i.facility_name }),
        esc(&i.unit),
        esc(&i.territory),
        when(i.discharged_at.as_ref()),
        cell(&i.letter),
        i.letter_items_present,
        i.letter_items_required,
        cell(&i.first_contact),
        i.appointments_done,
        i.appointments_upcoming,
        i.appointments_missed + i.appointments_overdue,
        alerts(lang, i),
        due(lang, i, now),
        esc(&tasks.join(", ")),
        pid = esc(&i.patient_id),
    );
}

/// The patient's referents under the name: role and name.
fn referents(lang: Lang, i: &WorklistItem) -> String {
    let mut s = String::new();
    for r in &i.referents {
        let role = role_words(lang, r.role);
        let _ = write!(
            s,
            "<br><span class=\"muted referent\">{} : {}</span>",
            esc(&role),
            esc(&r.name)
        );
    }
    s
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
    let late = (now - at.seconds) / DAY;
    let late = if now > at.seconds {
        format!(
            "<br><span class=\"overdue\">{} {} {}</span>",
            t(lang, "late_by"),
            late.max(1),
            t(lang, "days")
        )
    } else {
        String::new()
    };
    format!(
        "{what}<br><span class=\"muted\">{}</span>{late}",
        when(Some(at))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_in_hours_then_days() {
        assert_eq!(age(Lang::Fr, 5), "5 h");
        assert_eq!(age(Lang::Fr, 47), "47 h");
        assert_eq!(age(Lang::Fr, 72), "3 jours");
        assert_eq!(age(Lang::En, 1775), "73 days");
    }
}
