//! A GP on the dashboard: their patients, and nothing else. The list holds the patients who name
//! the signed-in GP (the session's subject, the professional id the events carry: RPPS or local)
//! as their GP (registration, identity update) or as a referent (`ReferentAssigned`, care-plan
//! referents), each with the roles they are named in and the latest stay. The [`confine`] layer
//! keeps a GP to that list and to the pages of those patients, read-only (no action form); any
//! other page, and the page of another patient, is refused and the refusal recorded in the
//! access log (another patient's page answers as an unknown patient's).
use super::{
    nobody, not_found_page, planning::say, refusal, roster, row::role_words, status_response,
    summary, table_head, Asked, Dashboard,
};
use crate::access_log::{audited, Access};
use crate::errors;
use crate::html::{esc, t, Lang};
use crate::principal::{Principal, Role};
use axum::{
    extract::{RawPathParams, Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use journey_projections::coordination::rosters::{self, Referred};
use journey_proto::v1::Setting;
use std::fmt::Write;

pub(super) const PATH: &str = "/my-patients";

const KEYS: &[&str] = &["lang"];

/// The most patients the list shows (it says when there are more).
const LIMIT: usize = 2000;

/// The navigation's name of the page.
pub(super) fn title(lang: Lang) -> String {
    say(lang, "Mes patients", "My patients")
}

/// A signed-in caller of a role the dashboard keeps to a few pages: who, the page's language,
/// the path asked for and the patient it names, if any.
pub(super) struct Confined {
    pub caller: Principal,
    pub lang: Lang,
    pub path: String,
    pub patient: Option<String>,
}

impl Confined {
    /// The caller of `request` when its role is `role`.
    pub(super) fn of(request: &Request, params: &RawPathParams, role: Role) -> Option<Confined> {
        let caller = request
            .extensions()
            .get::<Principal>()
            .filter(|p| p.role == role)
            .cloned()?;
        Some(Confined {
            caller,
            lang: Lang::of_request(request.uri(), request.headers()),
            path: request.uri().path().to_string(),
            patient: params
                .iter()
                .find(|(k, _)| *k == "id")
                .map(|(_, v)| v.to_string()),
        })
    }
}

/// Keeps a signed-in GP to their list and their patients' pages (the worklist's address leads
/// to the list); other callers pass.
pub(super) async fn confine(
    State(d): State<Dashboard>,
    params: RawPathParams,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(Confined {
        caller: gp,
        lang,
        path,
        patient,
    }) = Confined::of(&request, &params, Role::Gp)
    else {
        return next.run(request).await;
    };
    match (request.method(), path.as_str(), patient) {
        (&Method::GET, "/", _) => {
            Redirect::to(&format!("{PATH}?lang={}", lang.code())).into_response()
        }
        (&Method::GET, PATH, _) => next.run(request).await,
        // The one page read with a patient id: `/patients/{id}` (its actions are posted).
        (&Method::GET, _, Some(id)) => {
            match referent_of(&d, &gp, &id).await {
                Ok(true) => {
                    // Read-only: without the session's CSRF token the page offers no action.
                    request.extensions_mut().remove::<crate::session::Csrf>();
                    next.run(request).await
                }
                Ok(false) => not_found_page(lang, Some(&gp), &id),
                Err(s) => status_response(lang, Some(&gp), s),
            }
        }
        _ => refused_page(&d, &gp, lang, request.method(), &path).await,
    }
}

/// A page a confined caller (a GP, a liaison nurse) may not open: refused, and the refusal
/// recorded in the access log.
pub(super) async fn refused_page(
    d: &Dashboard,
    caller: &Principal,
    lang: Lang,
    method: &Method,
    path: &str,
) -> Response {
    let refused = errors::may_not_call(caller, path);
    let access = Access {
        caller: Some(caller),
        call: &format!("dashboard{path}"),
        detail: format!("{method} {path}"),
        ..Default::default()
    };
    let s = audited(
        d.coordination.access.as_ref(),
        access,
        Err::<(), _>(refused),
    )
    .await
    .unwrap_err();
    let words = (t(lang, "refused"), t(lang, "refused_text"));
    refusal(
        lang,
        Some(caller),
        StatusCode::FORBIDDEN,
        words,
        s.message(),
    )
}

/// Whether `gp` is named for `patient` (and the patient shares with the GP's organisation); the
/// decision is recorded when it refuses.
async fn referent_of(d: &Dashboard, gp: &Principal, patient: &str) -> Result<bool, tonic::Status> {
    let runner = &d.coordination.runner;
    let named = rosters::is_referent(
        &runner.db.pool,
        &runner.live_prefix(),
        &gp.subject,
        patient,
        crate::consent::scope(Some(gp)).as_deref(),
    )
    .await
    .map_err(errors::read_model_error)?;
    if named {
        return Ok(true);
    }
    let access = Access {
        caller: Some(gp),
        call: "dashboard/patient",
        patient_id: patient,
        detail: "not the patient's GP or referent".into(),
        ..Default::default()
    };
    let refused = Err::<(), _>(errors::not_referent(&gp.subject, patient));
    match audited(d.coordination.access.as_ref(), access, refused).await {
        Err(s) if s.code() == tonic::Code::PermissionDenied => Ok(false),
        Err(s) => Err(s),
        Ok(()) => Ok(false),
    }
}

/// The GP's list.
pub(super) async fn page(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller) = (asked.lang, asked.caller());
    if let Err(refused) = asked.check(KEYS) {
        return *refused;
    }
    // Whoever else opens the page sees the patients naming them, if any: the list is a GP's.
    let professional = caller.map_or("", |c| c.subject.as_str());
    let runner = &d.coordination.runner;
    let result = rosters::referred_to(
        &runner.db.pool,
        &runner.live_prefix(),
        professional,
        crate::consent::scope(caller).as_deref(),
        LIMIT as u64 + 1,
    )
    .await
    .map_err(errors::read_model_error);
    let found = roster::recorded(
        &d,
        caller,
        "dashboard/my-patients",
        String::new(),
        result,
        |r: &Referred| &r.person.patient_id,
    )
    .await;
    let found = match found {
        Ok(found) => found,
        Err(s) => return status_response(lang, caller, s),
    };
    let mut b = String::new();
    list(&mut b, lang, &found);
    super::page(lang, caller, &title(lang), &b).into_response()
}

fn list(b: &mut String, lang: Lang, found: &[Referred]) {
    let shown = &found[..found.len().min(LIMIT)];
    let more = (found.len() > LIMIT).then(|| say(lang, "et d'autres encore", "and more"));
    summary(b, lang, shown.len(), more);
    if shown.is_empty() {
        nobody(
            b,
            &say(
                lang,
                "Aucun patient ne vous désigne comme médecin traitant ou référent.",
                "No patient names you as their GP or referent.",
            ),
        );
        return;
    }
    let (named, latest) = (
        say(lang, "Vous êtes", "You are"),
        say(lang, "Dernier séjour", "Latest stay"),
    );
    let _ = write!(
        b,
        "<table id=\"my-patients\" class=\"planning roster\">{}",
        table_head(&[&say(lang, "Patient", "Patient"), &named, &latest]),
    );
    for r in shown {
        let roles: Vec<String> = r.roles.iter().map(|role| role_words(lang, *role)).collect();
        let _ = write!(
            b,
            "<tr data-patient-id=\"{}\"><td>{}</td><td class=\"named-as\" data-label=\"{named}\">{}</td>\
             <td data-label=\"{latest}\">{}</td></tr>",
            esc(&r.person.patient_id),
            roster::person_cell(lang, &r.person),
            esc(&roles.join(", ")),
            stay_words(lang, r.stay.as_ref()),
        );
    }
    b.push_str("</tbody></table>");
}

/// The latest stay in a few words: where, since when, and whether it is over.
fn stay_words(lang: Lang, stay: Option<&rosters::Stay>) -> String {
    let Some(s) = stay else {
        return "—".into();
    };
    let place = if s.facility_name.is_empty() {
        &s.facility_id
    } else {
        &s.facility_name
    };
    let state = match s.discharged_at {
        Some(at) => format!(
            "{} {}",
            say(lang, "sorti(e) le", "discharged"),
            roster::at(lang, at)
        ),
        None if s.setting == Setting::Had as i32 => {
            format!(
                "{} · {}",
                say(lang, "en HAD", "in HAD"),
                roster::had_group_words(lang, s.had_group)
            )
        }
        None => say(lang, "hospitalisé(e)", "in hospital"),
    };
    format!(
        "{}<br><span class=\"muted\">{} {} · <span class=\"stay-state\">{}</span></span>",
        esc(place),
        say(lang, "admis(e) le", "admitted"),
        roster::at(lang, s.admitted_at),
        esc(&state),
    )
}
