//! A liaison nurse (infirmière de liaison) on the dashboard: the hospital side of discharge
//! planning at her facility (her organisation is the facility's id). The [`confine`] layer keeps
//! her to the in-hospital worklist, which lists her facility's stays only (`planning.rs`), and to
//! the pages and actions of patients with a stay at her facility (the planning view's decision,
//! recorded); another patient answers as an unknown one, and any other page (the post-discharge
//! worklist, the indicators and the territory's readmission figures, the HAD list, the search)
//! is refused; each refusal is recorded in the access log. What she may record is the role's
//! event types (`write_policy.rs`): contacts and the discharge plan.
use super::{
    gp::{self, Confined},
    not_found_page, planning, status_response, Dashboard,
};
use crate::principal::Role;
use axum::{
    extract::{RawPathParams, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

/// The in-hospital worklist, a liaison nurse's dashboard.
pub(super) const HOME: &str = "/planning";

/// Keeps a signed-in liaison nurse to her facility's stays and their patients (the worklist's
/// address leads to the in-hospital worklist); other callers pass.
pub(super) async fn confine(
    State(d): State<Dashboard>,
    params: RawPathParams,
    request: Request,
    next: Next,
) -> Response {
    let Some(Confined {
        caller: nurse,
        lang,
        path,
        patient,
    }) = Confined::of(&request, &params, Role::LiaisonNurse)
    else {
        return next.run(request).await;
    };
    match (request.method(), path.as_str(), patient) {
        (&Method::GET, "/", _) => {
            Redirect::to(&format!("{HOME}?lang={}", lang.code())).into_response()
        }
        (&Method::GET, HOME, _) => next.run(request).await,
        // A patient's page (GET) and its actions (POST): the routes read with a patient id.
        (&Method::GET | &Method::POST, _, Some(id)) => {
            match planning::of_patient(&d, Some(&nurse), &id).await {
                Ok(Some(_)) => next.run(request).await,
                // Refused (and recorded) or unknown: the same page.
                Ok(None) => not_found_page(lang, Some(&nurse), &id),
                Err(s) => status_response(lang, Some(&nurse), s),
            }
        }
        (method, _, _) => {
            let method = method.clone();
            gp::refused_page(&d, &nurse, lang, &method, &path).await
        }
    }
}
