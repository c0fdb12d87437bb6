//! The patients in hospitalisation at home (HAD) now, for an HAD coordinator: every stay whose
//! setting is HAD, admitted and not discharged, in the caller's territory (an admin: every
//! territory, or the one asked for), one table per HAD facility, each patient as on the worklist
//! with the kind of HAD, since when and the unit. The list is recorded in the access log under
//! every patient it shows, like the worklist.
use super::{
    nobody, patients, planning::say, roster, status_response, summary, table_head, Asked, Dashboard,
};
use crate::coordination_service::territory_for;
use crate::errors;
use crate::html::{esc, Lang};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use journey_projections::coordination::rosters::{self, InHad};
use std::fmt::Write;

pub(super) const PATH: &str = "/had";

/// The page's query keys.
const KEYS: &[&str] = &["lang", "territory"];

/// The most patients the page lists (it says when there are more).
const LIMIT: usize = 1000;

/// The navigation's name of the page.
pub(super) fn title(lang: Lang) -> String {
    say(lang, "Patients en HAD", "Patients in HAD")
}

pub(super) async fn page(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller, p) = (asked.lang, asked.caller(), &asked.p);
    if let Err(refused) = asked.check(KEYS) {
        return *refused;
    }
    let territory_asked = p.territory.as_deref().unwrap_or_default().trim();
    let runner = &d.coordination.runner;
    let result = match territory_for(caller, territory_asked) {
        Ok(territory) => rosters::in_had(
            &runner.db.pool,
            &runner.live_prefix(),
            &territory,
            crate::consent::scope(caller).as_deref(),
            LIMIT as u64 + 1,
        )
        .await
        .map_err(errors::read_model_error),
        Err(s) => Err(s),
    };
    let detail = format!("territory={territory_asked:?}");
    let found = roster::recorded(&d, caller, "dashboard/had", detail, result, |r: &InHad| {
        &r.person.patient_id
    })
    .await;
    let found = match found {
        Ok(found) => found,
        Err(s) => return status_response(lang, caller, s),
    };
    let mut b = String::new();
    let coordinator = caller.is_some_and(|c| c.territory.is_some());
    if !coordinator {
        let _ = write!(
            b,
            "<form method=\"get\" action=\"{PATH}\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
             <label>{}<input name=\"territory\" value=\"{}\"></label><button type=\"submit\">{}</button></form>",
            lang.code(),
            say(lang, "Territoire", "Territory"),
            esc(territory_asked),
            say(lang, "Filtrer", "Filter"),
        );
    }
    list(&mut b, lang, &found, chrono::Utc::now().timestamp());
    super::page(lang, caller, &title(lang), &b).into_response()
}

/// The patients, one table per HAD facility (in the order given: by facility, then name).
fn list(b: &mut String, lang: Lang, found: &[InHad], now: i64) {
    let shown = &found[..found.len().min(LIMIT)];
    let more = (found.len() > LIMIT).then(|| {
        say(
            lang,
            "d'autres encore : choisissez un territoire",
            "and more: choose a territory",
        )
    });
    summary(b, lang, shown.len(), more);
    if shown.is_empty() {
        nobody(
            b,
            &say(
                lang,
                "Aucun patient en HAD en ce moment.",
                "No patient in HAD at the moment.",
            ),
        );
        return;
    }
    let (kind, since, unit) = (
        say(lang, "Type d'HAD", "Kind of HAD"),
        say(lang, "En HAD depuis", "In HAD since"),
        say(lang, "Unité", "Unit"),
    );
    for group in shown.chunk_by(|a, b| a.stay.facility_id == b.stay.facility_id) {
        let s = &group[0].stay;
        let name = if s.facility_name.is_empty() {
            &s.facility_id
        } else {
            &s.facility_name
        };
        let _ = write!(
            b,
            "<section class=\"had-facility\" data-facility=\"{}\"><h2>{} <span class=\"muted\">· {}</span></h2>\
             <table class=\"planning roster\">{}",
            esc(&s.facility_id),
            esc(name),
            patients(lang, group.len() as u64).replace(" id=\"total\"", ""),
            table_head(&[&say(lang, "Patient", "Patient"), &kind, &since, &unit]),
        );
        for r in group {
            let days = (now - r.stay.admitted_at).max(0) / 86_400;
            let _ = write!(
                b,
                "<tr data-patient-id=\"{}\"><td>{}</td><td class=\"had-group\" data-label=\"{kind}\">{}</td>\
                 <td data-label=\"{since}\">{} <span class=\"muted\">({})</span></td><td data-label=\"{unit}\">{}</td></tr>",
                esc(&r.person.patient_id),
                roster::person_cell(lang, &r.person),
                esc(&roster::had_group_words(lang, r.stay.had_group)),
                roster::at(lang, r.stay.admitted_at),
                days_words(lang, days),
                esc(&r.stay.unit),
            );
        }
        b.push_str("</tbody></table></section>");
    }
}

/// "3 jours", "1 day".
fn days_words(lang: Lang, days: i64) -> String {
    match (lang, days) {
        (Lang::Fr, 0 | 1) => format!("{days} jour"),
        (Lang::Fr, _) => format!("{days} jours"),
        (Lang::En, 1) => "1 day".into(),
        (Lang::En, _) => format!("{days} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_agree_with_their_number() {
        assert_eq!(days_words(Lang::Fr, 0), "0 jour");
        assert_eq!(days_words(Lang::Fr, 12), "12 jours");
        assert_eq!(days_words(Lang::En, 1), "1 day");
        assert_eq!(days_words(Lang::En, 0), "0 days");
    }
}
