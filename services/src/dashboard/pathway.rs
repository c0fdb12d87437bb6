//! A discharge's care pathway and its follow-up steps in the reader's language (the labels of the
//! templates in use, `journey_projections::coordination::pathways`): on the patient page each step
//! with its last day, done when, or late by how many days; on the worklist the steps overdue among
//! what to do.
use super::planning::say;
use crate::html::{esc, t, Lang};
use journey_projections::coordination::{calendar::paris_date, pathways};
use journey_proto::v1::{PathwayStep, WorklistItem};
use std::fmt::Write;

const DAY: i64 = 86_400;

/// The pathway's label and the step's, as the templates in use say them (else their names).
fn label(lang: Lang, pathway: &str, step: Option<&str>) -> String {
    let found = pathways::active().ok().and_then(|p| p.named(pathway));
    let l = match (found, step) {
        (Some(p), None) => Some(&p.label),
        (Some(p), Some(s)) => p.steps.iter().find(|x| x.name == s).map(|x| &x.label),
        (None, _) => None,
    };
    match (l, lang) {
        (Some(l), Lang::Fr) => l.fr.clone(),
        (Some(l), Lang::En) => l.en.clone(),
        (None, _) => step.unwrap_or(pathway).replace('_', " "),
    }
}

/// A Paris date as the pages write it.
fn date(lang: Lang, secs: i64) -> String {
    let d = paris_date(secs);
    match lang {
        Lang::Fr => d.format("%d/%m/%Y").to_string(),
        Lang::En => d.format("%-d %b %Y").to_string(),
    }
}

/// One step: its label, its last day, and done when or late by how much.
fn step(lang: Lang, pathway: &str, s: &PathwayStep, now: i64) -> String {
    let due = s.due_at.as_ref().map_or(0, |t| t.seconds);
    let mut out = format!(
        "{} — {} {}",
        esc(&label(lang, pathway, Some(&s.step))),
        t(lang, "by_day"),
        // The deadline is the start of the first day late: the last day due is the day before.
        date(lang, due - 1),
    );
    match (&s.done_at, s.state.as_str()) {
        (Some(d), state) => {
            let class = if state == "late" { "late" } else { "" };
            let _ = write!(
                out,
                " · <span class=\"{class}\">{} {}</span>",
                say(lang, "fait le", "done on"),
                date(lang, d.seconds)
            );
        }
        (None, "overdue") => {
            let days = ((now - due) / DAY).max(1);
            let unit = if days == 1 {
                t(lang, "day")
            } else {
                t(lang, "days")
            };
            let _ = write!(
                out,
                " · <span class=\"overdue\">{} {days} {unit}</span>",
                t(lang, "late_by")
            );
        }
        _ => {}
    }
    out
}

/// The pathway of each discharge of `items` that has steps, for the patient page.
pub(super) fn section(b: &mut String, lang: Lang, items: &[WorklistItem], now: i64) {
    for i in items.iter().filter(|i| !i.pathway_steps.is_empty()) {
        let _ = write!(
            b,
            "<h3>{} {}</h3><ul class=\"pathway\" data-encounter=\"{}\" data-pathway=\"{}\">",
            say(lang, "Parcours :", "Pathway:"),
            esc(&label(lang, &i.pathway, None)),
            esc(&i.encounter_id),
            esc(&i.pathway),
        );
        for s in &i.pathway_steps {
            let _ = write!(
                b,
                "<li data-step=\"{}\" data-state=\"{}\">{}</li>",
                esc(&s.step),
                esc(&s.state),
                step(lang, &i.pathway, s, now)
            );
        }
        b.push_str("</ul>");
    }
}

/// The steps of `i` overdue, as things to do ("médecin traitant en retard (parcours)").
pub(super) fn overdue_tasks(lang: Lang, i: &WorklistItem) -> Vec<String> {
    i.pathway_steps
        .iter()
        .filter(|s| s.state == "overdue")
        .map(|s| {
            format!(
                "{} {}",
                label(lang, &i.pathway, Some(&s.step)),
                say(lang, "en retard (parcours)", "overdue (pathway)")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::prost_types::Timestamp;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }
    fn ts(s: &str) -> Option<Timestamp> {
        Some(Timestamp {
            seconds: utc(s),
            nanos: 0,
        })
    }

    fn heart_failure() -> WorklistItem {
        let step = |name: &str, due: &str, state: &str, done: Option<&str>| PathwayStep {
            step: name.into(),
            due_at: ts(due),
            state: state.into(),
            done_at: done.and_then(ts),
            ..Default::default()
        };
        WorklistItem {
            encounter_id: "E1".into(),
            pathway: "heart_failure".into(),
            pathway_steps: vec![
                step(
                    "home_nurse",
                    "2026-10-13T22:00:00Z",
                    "on_time",
                    Some("2026-10-08T09:00:00Z"),
                ),
                step("gp", "2026-10-13T22:00:00Z", "overdue", None),
                step("cardiologist", "2026-12-06T23:00:00Z", "pending", None),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn the_steps_in_french_and_english() {
        let now = utc("2026-10-20T10:00:00Z");
        let mut fr = String::new();
        section(&mut fr, Lang::Fr, &[heart_failure()], now);
        for words in [
            "Parcours : Insuffisance cardiaque (PRADO)",
            "Infirmier à domicile — au plus tard le 13/10/2026 · <span class=\"\">fait le 08/10/2026</span>",
            "Médecin traitant — au plus tard le 13/10/2026 · <span class=\"overdue\">en retard de 6 jours</span>",
            "Cardiologue — au plus tard le 06/12/2026</li>",
        ] {
            assert!(fr.contains(words), "{words}: {fr}");
        }
        let mut en = String::new();
        section(&mut en, Lang::En, &[heart_failure()], now);
        for words in [
            "Pathway: Heart failure (PRADO)",
            "GP — by 13 Oct 2026 · <span class=\"overdue\">late by 6 days</span>",
            "Cardiologist — by 6 Dec 2026</li>",
        ] {
            assert!(en.contains(words), "{words}: {en}");
        }
        assert_eq!(
            overdue_tasks(Lang::Fr, &heart_failure()),
            ["Médecin traitant en retard (parcours)"]
        );
        assert_eq!(
            overdue_tasks(Lang::En, &heart_failure()),
            ["GP overdue (pathway)"]
        );
    }
}
