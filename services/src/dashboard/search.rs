//! Finding a patient by name, birth date, INS or local id (`/search?q=…`), among the patients
//! the caller may see as the worklist filters them (a coordinator: a stay in the territory; no
//! consent revoked for the caller's organisation). Each patient found is told apart from a
//! namesake by birth date and age, sex and validated INS, and links to its page. Every search is
//! recorded in the access log under the patients it returned, none included.
use super::{
    identity, nobody, planning::say, roster, status_response, summary, table_head, Asked, Dashboard,
};
use crate::{
    coordination_service::territory_for,
    errors,
    html::{esc, Lang},
    principal::Principal,
};
use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use journey_projections::coordination::queries::{self, Found, Search};
use std::fmt::Write;

/// Where the search answers.
pub(super) const PATH: &str = "/search";

/// The search's query keys.
const KEYS: &[&str] = &["lang", "q"];

/// The most patients a search lists; past it the reader is asked to say more.
const LIMIT: usize = 50;

/// The search box, filled in with `q` (on the worklist and on the search's page).
pub(super) fn form(b: &mut String, lang: Lang, q: &str) {
    let _ = write!(
        b,
        "<form method=\"get\" action=\"{PATH}\" id=\"search\" role=\"search\">\
         <input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"{}\" autocomplete=\"off\"></label>\
         <button type=\"submit\">{}</button></form>",
        lang.code(),
        say(lang, "Trouver un patient", "Find a patient"),
        esc(q),
        say(
            lang,
            "nom, date de naissance, INS ou IPP",
            "name, birth date, INS or local id"
        ),
        say(lang, "Chercher", "Search"),
    );
}

pub(super) async fn found(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller, p) = (asked.lang, asked.caller(), &asked.p);
    if let Err(refused) = asked.check(KEYS) {
        return *refused;
    }
    let q = p.q.as_deref().unwrap_or_default().trim();
    let mut b = String::new();
    form(&mut b, lang, q);
    let search = Search::parse(q);
    if search.is_empty() {
        let _ = write!(
            b,
            "<p class=\"notice\" id=\"how\">{}</p>",
            say(
                lang,
                "Tapez un nom (ou une partie), une date de naissance (02/03/1941), un INS ou un IPP ; \
                 un patient est trouvé quand chaque mot correspond.",
                "Type a name (or part of it), a birth date (02/03/1941), an INS or a local id; a \
                 patient is found when every word matches."
            )
        );
    } else {
        let found = match find(&d, caller, q, &search).await {
            Ok(patients) => patients,
            Err(s) => return status_response(lang, caller, s),
        };
        results(&mut b, lang, &found);
    }
    let title = say(lang, "Trouver un patient", "Find a patient");
    super::page(lang, caller, &title, &b).into_response()
}

/// The patients `search` finds for `caller` (one more than [`LIMIT`] when there are more), the
/// search recorded under each of them before anything is shown.
async fn find(
    d: &Dashboard,
    caller: Option<&Principal>,
    q: &str,
    search: &Search,
) -> Result<Vec<Found>, tonic::Status> {
    let runner = &d.coordination.runner;
    let result = match territory_for(caller, "") {
        Ok(territory) => queries::find_patients(
            &runner.db.pool,
            &runner.live_prefix(),
            search,
            &territory,
            crate::consent::scope(caller).as_deref(),
            LIMIT as u64 + 1,
        )
        .await
        .map_err(errors::read_model_error),
        Err(s) => Err(s),
    };
    let detail = format!("q={q:?}");
    roster::recorded(
        d,
        caller,
        "dashboard/search",
        detail,
        result,
        |f: &Found| &f.patient_id,
    )
    .await
}

/// The patients found, a row each: the name linking to the page, under it birth date and age,
/// sex and validated INS (as on the worklist), then the local id.
fn results(b: &mut String, lang: Lang, found: &[Found]) {
    let shown = &found[..found.len().min(LIMIT)];
    if shown.is_empty() {
        nobody(b, &say(lang, "Aucun patient trouvé.", "No patient found."));
        return;
    }
    let more = (found.len() > LIMIT).then(|| {
        say(
            lang,
            "d'autres encore : précisez (un prénom, une date de naissance)",
            "and more: say more (a given name, a birth date)",
        )
    });
    summary(b, lang, shown.len(), more);
    let _ = write!(
        b,
        "<table id=\"found\">{}",
        table_head(&[
            say(lang, "Patient", "Patient"),
            say(lang, "IPP", "Local id")
        ]),
    );
    for f in shown {
        let name = if f.display_name.is_empty() {
            &f.patient_id
        } else {
            &f.display_name
        };
        let deceased = if f.deceased {
            format!(
                " <span class=\"muted\">({})</span>",
                say(lang, "décès", "deceased")
            )
        } else {
            String::new()
        };
        let who = identity::line(
            lang,
            &identity::Identity::listed(&f.birth_date, f.sex, &f.ins),
        );
        let _ = write!(
            b,
            "<tr data-patient-id=\"{pid}\"><td><a href=\"/patients/{}?lang={}\">{}</a>{deceased}\
             <br><span class=\"muted identity\">{who}</span></td><td>{}</td></tr>",
            super::enc(&f.patient_id),
            lang.code(),
            esc(name),
            esc(&f.local_id),
            pid = esc(&f.patient_id),
        );
    }
    b.push_str("</tbody></table>");
}
