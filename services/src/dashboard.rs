//! The coordination dashboard: server-rendered HTML, in French and English (`?lang=fr|en`, else
//! the language chosen last): the worklist with its filters, its search box, its CSV export and
//! print view, kept up to date by one small same-origin script (`live.rs`; the pages work
//! without it); a patient page with the timeline, and the weekly indicators with SVG trend
//! charts. A patient the caller may not see and a patient nobody knows get the same page.
use crate::html::{enc, esc, t, Lang};
use crate::{
    coordination_service::CoordinationService,
    log_handle::LogHandle,
    principal::{Principal, Role},
    session::Sessions,
};
use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use journey_projections::{planning::Planning, runtime::Runner};
use journey_proto::v1::{
    FollowUpRequest, FollowUpResponse, IndicatorsRequest, Period, WeekIndicators, WorklistItem,
    WorklistRequest,
};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

use asked::Asked;

mod actions;
mod address;
mod alert_words;
mod asked;
mod charts;
mod export;
mod failure;
mod gp;
mod had;
mod identity;
mod liaison;
mod live;
mod pathway;
mod planning;
mod planning_actions;
mod qls;
mod readmission_figures;
mod roster;
mod row;
mod search;
mod sentence;

#[derive(Clone)]
pub struct Dashboard {
    pub coordination: CoordinationService,
    pub log: LogHandle,
    /// Sign-in and sessions; `None` when the server runs `--insecure`.
    pub sessions: Option<Arc<Sessions>>,
    /// The discharge-planning view (`planning.rs`), in the coordination view's database.
    pub planning: Option<Arc<Runner<Planning>>>,
}

pub fn router(d: Dashboard) -> Router {
    let sessions = d.sessions.clone();
    let signed_in_sessions = d.sessions.clone();
    let panic_sessions = d.sessions.clone();
    let pages = Router::new()
        .route("/", get(worklist))
        .route(export::CSV_PATH, get(export::csv))
        .route(live::EVENTS_PATH, get(live::events))
        .route(live::LIST_PATH, get(live::list))
        .route(search::PATH, get(search::found))
        .route("/patients/{id}", get(patient))
        .route("/patients/{id}/actions", axum::routing::post(actions::act))
        .route("/indicators", get(indicators))
        .route("/planning", get(planning::due_page))
        .route(had::PATH, get(had::page))
        .route(gp::PATH, get(gp::page))
        .layer(axum::middleware::from_fn_with_state(d.clone(), gp::confine))
        .layer(axum::middleware::from_fn_with_state(
            d.clone(),
            liaison::confine,
        ))
        .with_state(d);
    let pages = match sessions {
        None => pages,
        Some(s) => pages
            .layer(axum::middleware::from_fn_with_state(
                s.clone(),
                crate::session::require,
            ))
            .merge(crate::session::routes(s)),
    };
    pages
        .route(crate::html::STYLE_PATH, get(style_sheet))
        .route(live::SCRIPT_PATH, get(live::script))
        .fallback(move |request: axum::extract::Request| {
            address::not_found(signed_in_sessions.clone(), request)
        })
        .layer(axum::middleware::from_fn_with_state(
            panic_sessions,
            failure::catch_panics,
        ))
        .layer(axum::middleware::from_fn(address::remember))
}

/// The pages' style sheet (open: the sign-in page needs it too).
async fn style_sheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        crate::html::STYLE,
    )
        .into_response()
}

/// The signed-in caller (none when the server runs `--insecure`).
type Caller = Option<axum::Extension<Principal>>;

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    lang: Option<String>,
    facility: Option<String>,
    territory: Option<String>,
    referent: Option<String>,
    overdue: Option<String>,
    severity: Option<String>,
    page: Option<String>,
    window: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// After an action: the position its event was appended at.
    recorded: Option<String>,
    /// The worklist as a page to print (no navigation, the whole list, the time printed).
    print: Option<String>,
    /// What the search looks for (`search.rs`).
    q: Option<String>,
    /// A part of a unit's name (the indicators).
    unit: Option<String>,
}

/// The page's language: the query's `lang`, else the browser's.
fn lang_of(p: &Params, headers: &HeaderMap) -> Lang {
    Lang::of(p.lang.as_deref(), headers)
}

/// A dashboard page: the navigation (with a sign-out button for a signed-in caller), then
/// `title` and `body`.
fn page(lang: Lang, caller: Option<&Principal>, title: &str, body: &str) -> Html<String> {
    let l = lang.code();
    let sign_out = match caller {
        Some(_) => format!(
            "<form method=\"post\" action=\"/logout?lang={l}\"><button type=\"submit\" id=\"sign-out\">{}</button></form>",
            t(lang, "sign_out")
        ),
        None => String::new(),
    };
    let links = match caller {
        // A GP's dashboard is their list (`gp.rs`).
        Some(p) if p.role == Role::Gp => {
            format!("<a href=\"{}?lang={l}\">{}</a>", gp::PATH, gp::title(lang))
        }
        // A liaison nurse's is her facility's upcoming discharges (`liaison.rs`).
        Some(p) if p.role == Role::LiaisonNurse => format!(
            "<a href=\"{}?lang={l}\">{}</a>",
            liaison::HOME,
            planning::say(lang, "Sorties à venir", "Upcoming discharges")
        ),
        _ => format!(
            "<a href=\"/?lang={l}\">{}</a><a href=\"/planning?lang={l}\">{}</a><a href=\"{}?lang={l}\">{}</a>\
             <a href=\"/indicators?lang={l}\">{}</a>",
            t(lang, "worklist"),
            planning::say(lang, "Sorties à venir", "Upcoming discharges"),
            had::PATH,
            had::title(lang),
            t(lang, "indicators"),
        ),
    };
    let nav = format!(
        "<nav>{links}<a id=\"other-language\" href=\"{}\">{}</a>{sign_out}</nav>",
        address::other_language(lang),
        if lang == Lang::Fr {
            "English"
        } else {
            "Français"
        },
    );
    Html(crate::html::document(lang, title, &nav, body))
}

/// A page that could not be served: a title and a sentence in the reader's words, then the
/// reason as the server gives it (in English: behind "détails" on a French page), and the way
/// back to the worklist.
fn refusal(
    lang: Lang,
    caller: Option<&Principal>,
    status: StatusCode,
    (title, sentence): (&str, &str),
    reason: &str,
) -> Response {
    let reason = match lang {
        Lang::En => format!("<span id=\"reason\">{}</span></p>", esc(reason)),
        Lang::Fr => format!(
            "</p><details><summary>{}</summary><span id=\"reason\">{}</span></details>",
            t(lang, "details"),
            esc(reason)
        ),
    };
    let body = format!(
        "<p class=\"notice refused\" role=\"alert\">{sentence} {reason}{}",
        way_back(lang)
    );
    (status, page(lang, caller, title, &body)).into_response()
}

/// The link back to the worklist under a page that could not be served.
fn way_back(lang: Lang) -> String {
    format!(
        "<p><a id=\"back\" href=\"/?lang={}\">← {}</a></p>",
        lang.code(),
        t(lang, "back_to_worklist")
    )
}

/// A request the page cannot answer as asked: a sentence, and what is wrong.
fn bad_request(lang: Lang, caller: Option<&Principal>, message: &str) -> Response {
    let words = (t(lang, "bad_address"), t(lang, "bad_address_text"));
    refusal(lang, caller, StatusCode::BAD_REQUEST, words, message)
}

/// Data that cannot be read now (a database that cannot be reached, the log).
fn unavailable(lang: Lang, caller: Option<&Principal>, reason: &str) -> Response {
    let words = (t(lang, "unavailable"), t(lang, "unavailable_text"));
    refusal(lang, caller, StatusCode::SERVICE_UNAVAILABLE, words, reason)
}

/// The page of a status a view answered instead of data, in the reader's words.
fn status_response(lang: Lang, caller: Option<&Principal>, s: tonic::Status) -> Response {
    match s.code() {
        tonic::Code::InvalidArgument => bad_request(lang, caller, s.message()),
        tonic::Code::NotFound => {
            let words = (t(lang, "not_found"), t(lang, "not_found_text"));
            refusal(lang, caller, StatusCode::NOT_FOUND, words, s.message())
        }
        tonic::Code::PermissionDenied => {
            let words = (t(lang, "refused"), t(lang, "refused_text"));
            refusal(lang, caller, StatusCode::FORBIDDEN, words, s.message())
        }
        // Not the reader's doing, nor a database to wait for: the failure page, its number in
        // the server log beside the error.
        tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss => {
            failure::page(lang, caller, &s.message())
        }
        _ => unavailable(lang, caller, s.message()),
    }
}

/// An instant as the reader writes it, in Paris time: "24/11/2026 20:56", "24 Nov 2026 20:56".
fn when(lang: Lang, ts: Option<&journey_proto::prost_types::Timestamp>) -> String {
    ts.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|d| {
            let d = d.with_timezone(&chrono_tz::Europe::Paris);
            match lang {
                Lang::Fr => d.format("%d/%m/%Y %H:%M"),
                Lang::En => d.format("%-d %b %Y %H:%M"),
            }
            .to_string()
        })
        .unwrap_or_default()
}

/// "1 patient", "2 patients".
fn patients(lang: Lang, n: u64) -> String {
    let word = if n == 1 {
        t(lang, "patient_one")
    } else {
        t(lang, "patient_many")
    };
    format!("<span id=\"total\">{n}</span> {word}")
}

/// A table's heading row (`headings` in the reader's words), then the opening of its body.
fn table_head<S: AsRef<str>>(headings: &[S]) -> String {
    let mut h = String::from("<thead><tr>");
    for heading in headings {
        let _ = write!(h, "<th>{}</th>", heading.as_ref());
    }
    h.push_str("</tr></thead><tbody>");
    h
}

/// What a list says when it has no one to show.
fn nobody(b: &mut String, sentence: &str) {
    let _ = write!(b, "<p id=\"empty\">{sentence}</p>");
}

/// A list's count of the `shown` patients and, when `more` (the list cut at its limit), what
/// to do to see the others.
fn summary(b: &mut String, lang: Lang, shown: usize, more: Option<String>) {
    let _ = write!(
        b,
        "<p class=\"muted\" id=\"summary\">{}",
        patients(lang, shown as u64)
    );
    if let Some(more) = more {
        let _ = write!(b, " · <span id=\"more\">{more}</span>");
    }
    b.push_str("</p>");
}

/// How fresh a view is, in words: up to date at the time of the page (Paris time) when it has
/// folded the whole log, else how many events it has still to take in.
fn freshness(lang: Lang, checkpoint: u64, head: Option<u64>) -> String {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris);
    let at = match lang {
        Lang::Fr => now.format("%H h %M").to_string(),
        Lang::En => now.format("%H:%M").to_string(),
    };
    match head {
        Some(head) if head > checkpoint => {
            let behind = head - checkpoint;
            let what = if behind == 1 {
                t(lang, "update_one")
            } else {
                t(lang, "update_many")
            };
            format!("{} ({behind} {what}, {at})", t(lang, "updating"))
        }
        _ => format!("{} {at}", t(lang, "up_to_date_at")),
    }
}

/// The worklist's query keys; anything else is refused (a typo should not silently show
/// everything).
const WORKLIST_KEYS: &[&str] = &[
    "lang",
    "facility",
    "territory",
    "referent",
    "overdue",
    "severity",
    "page",
    "window",
    "print",
];

/// The indicators' query keys.
const INDICATORS_KEYS: &[&str] = &["lang", "from", "to", "facility", "unit", "territory"];

fn unknown_keys(raw: Option<&str>, known: &[&str]) -> Option<String> {
    raw?.split('&')
        .filter_map(|kv| kv.split('=').next())
        .find(|k| !k.is_empty() && !known.contains(k))
        .map(str::to_string)
}

/// The query of a page taking `known` keys, checked: a bad value is refused in the same words
/// on every page, then a key the page does not take.
fn check_query(query: Option<&str>, p: &Params, known: &[&str]) -> Result<(), String> {
    severity(p)?;
    window_days(p)?;
    match unknown_keys(query, known) {
        Some(k) => Err(format!(
            "unknown filter {k:?}; this page knows: {}",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// The `severity` filter: 0 (any) to 4 (critical).
fn severity(p: &Params) -> Result<i32, String> {
    match p.severity.as_deref().unwrap_or("") {
        "" => Ok(0),
        s => s
            .parse::<i32>()
            .ok()
            .filter(|v| (0..=4).contains(v))
            .ok_or_else(|| format!("severity {s:?}: use 0 (any) to 4 (critical)")),
    }
}

/// The `window` filter: a number of days (0: the default).
fn window_days(p: &Params) -> Result<u32, String> {
    match p.window.as_deref().unwrap_or("") {
        "" => Ok(0),
        s => s
            .parse::<u32>()
            .map_err(|_| format!("window {s:?}: a number of days")),
    }
}

async fn worklist(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller, p) = (asked.lang, asked.caller(), &asked.p);
    let req = match asked.worklist() {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    if p.print.as_deref().is_some_and(|v| !v.is_empty()) {
        return export::print_page(&d, lang, caller, &req).await;
    }
    let list = match list_section(&d, lang, caller, &req).await {
        Ok(list) => list,
        Err(s) => return status_response(lang, caller, s),
    };
    let mut b = String::new();
    search::form(&mut b, lang, "");
    filters_form(&mut b, lang, &req);
    export::links(&mut b, lang, &req);
    b.push_str(&list);
    b.push_str(live::SCRIPT_TAG);
    page(lang, caller, t(lang, "worklist"), &b).into_response()
}

/// The worklist's list as the page shows it and refreshes it (`live.rs`): the count and how
/// fresh the view is, the rows, the link to the next page; the element carries the view's
/// position and the number of overdue items (the page's title says it). The page is recorded
/// under every patient it lists before it is shown.
async fn list_section(
    d: &Dashboard,
    lang: Lang,
    caller: Option<&Principal>,
    req: &WorklistRequest,
) -> Result<String, tonic::Status> {
    let result = d.coordination.worklist_page(req, caller).await;
    let resp = d
        .coordination
        .audit_worklist(
            caller,
            "dashboard/worklist",
            "",
            None,
            format!("{req:?}"),
            result,
        )
        .await?;
    let whole_list = req.page_token.is_empty() && resp.next_page_token.is_empty();
    let overdue = if req.overdue_only {
        resp.total
    } else if whole_list {
        resp.items.iter().filter(|i| i.overdue).count() as u64
    } else {
        // A count, no patient shown: nothing to record.
        let overdue = WorklistRequest {
            overdue_only: true,
            page_size: 1,
            page_token: String::new(),
            ..req.clone()
        };
        d.coordination.worklist_page(&overdue, caller).await?.total
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<div id=\"list\" data-position=\"{}\" data-overdue=\"{overdue}\">",
        resp.checkpoint
    );
    let head = d.log.head().await.ok().map(|(h, _)| h);
    let _ = write!(
        b,
        "<p class=\"muted\" id=\"summary\">{} · <span id=\"freshness\">{}</span></p>",
        patients(lang, resp.total),
        freshness(lang, resp.checkpoint, head),
    );
    if resp.items.is_empty() {
        let _ = write!(b, "<p id=\"empty\">{}</p>", t(lang, "none"));
    } else {
        worklist_table(d, &mut b, lang, &resp.items).await;
    }
    if !resp.next_page_token.is_empty() {
        let _ = write!(
            b,
            "<p><a id=\"next\" href=\"/{}\">{} →</a></p>",
            next_page_query(lang, req, &resp.next_page_token),
            t(lang, "next")
        );
    }
    b.push_str("</div>");
    Ok(b)
}

/// The worklist's table: its rows, with the plan at discharge when the planning view runs.
async fn worklist_table(d: &Dashboard, b: &mut String, lang: Lang, items: &[WorklistItem]) {
    let keys: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.patient_id.clone(), i.encounter_id.clone()))
        .collect();
    let plans = planning::plans_at_discharge(d, &keys).await;
    let plans = d.planning.as_ref().map(|_| &plans);
    discharge_table(b, lang, "worklist", items, plans);
}

/// The worklist request the query asks for; an unknown key or a bad value is refused (the
/// message says why) rather than ignored.
fn worklist_request(query: Option<&str>, p: &Params) -> Result<WorklistRequest, String> {
    check_query(query, p, WORKLIST_KEYS)?;
    let severity = severity(p)?;
    let window = window_days(p)?;
    Ok(WorklistRequest {
        facility_id: p.facility.as_deref().unwrap_or_default().trim().to_string(),
        territory: p
            .territory
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_string(),
        referent_id: p.referent.as_deref().unwrap_or_default().trim().to_string(),
        overdue_only: matches!(p.overdue.as_deref(), Some("on" | "1" | "true")),
        min_alert_severity: severity,
        page_size: 50,
        page_token: p.page.clone().unwrap_or_default(),
        as_of: None,
        window_days: window,
    })
}

/// The worklist's filters, filled in with the request's.
fn filters_form(b: &mut String, lang: Lang, req: &WorklistRequest) {
    let sel = |v: i32| {
        if v == req.min_alert_severity {
            " selected"
        } else {
            ""
        }
    };
    let window = match req.window_days {
        0 => String::new(),
        days => format!("<input type=\"hidden\" name=\"window\" value=\"{days}\">"),
    };
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/\" id=\"filters\"><input type=\"hidden\" name=\"lang\" value=\"{l}\">{window}\
         <label>{}<input name=\"facility\" value=\"{}\"></label>\
         <label>{}<input name=\"territory\" value=\"{}\"></label>\
         <label>{}<input name=\"referent\" value=\"{}\"></label>\
         <label>{}<input type=\"checkbox\" name=\"overdue\"{}></label>\
         <label>{}<select name=\"severity\"><option value=\"0\"{}>{}</option><option value=\"1\"{}>{}</option>\
         <option value=\"2\"{}>{}</option><option value=\"3\"{}>{}</option><option value=\"4\"{}>{}</option></select></label>\
         <button type=\"submit\">{}</button></form>",
        t(lang, "facility_or_unit"),
        esc(&req.facility_id),
        t(lang, "territory"),
        esc(&req.territory),
        t(lang, "referent"),
        esc(&req.referent_id),
        t(lang, "overdue_only"),
        if req.overdue_only { " checked" } else { "" },
        t(lang, "severity"),
        sel(0),
        t(lang, "any"),
        sel(1),
        t(lang, "severity_low"),
        sel(2),
        t(lang, "severity_moderate"),
        sel(3),
        t(lang, "severity_high"),
        sel(4),
        t(lang, "severity_critical"),
        t(lang, "filter"),
        l = lang.code(),
    );
}

/// The query of the worklist's next page: the same filters, and the page token.
fn next_page_query(lang: Lang, req: &WorklistRequest, page_token: &str) -> String {
    let mut q = String::new();
    for (k, v) in [
        ("lang", lang.code().to_string()),
        ("facility", req.facility_id.clone()),
        ("territory", req.territory.clone()),
        ("referent", req.referent_id.clone()),
        (
            "overdue",
            if req.overdue_only {
                "on".into()
            } else {
                String::new()
            },
        ),
        ("severity", req.min_alert_severity.to_string()),
        (
            "window",
            match req.window_days {
                0 => String::new(),
                days => days.to_string(),
            },
        ),
        ("page", page_token.to_string()),
    ] {
        if !v.is_empty() {
            let _ = write!(q, "{}{k}={}", if q.is_empty() { "?" } else { "&" }, enc(&v));
        }
    }
    q
}

/// A table of discharges, one [`row`] each (the worklist, and a patient's follow-up); with
/// `plans`, whether each discharge plan was complete when the patient left.
fn discharge_table(
    b: &mut String,
    lang: Lang,
    id: &str,
    items: &[WorklistItem],
    plans: Option<&std::collections::HashMap<(String, String), i64>>,
) {
    let _ = write!(
        b,
        "<table id=\"{id}\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>{}</tr></thead><tbody>",
        t(lang, "patient"),
        t(lang, "facility"),
        t(lang, "discharged"),
        t(lang, "letter"),
        t(lang, "first_contact"),
        t(lang, "appointments"),
        t(lang, "alerts"),
        t(lang, "due"),
        t(lang, "todo"),
        plans.map_or(String::new(), |_| planning::plan_header(lang)),
    );
    let now = chrono::Utc::now().timestamp();
    for i in items {
        let plan = plans.map_or(String::new(), |p| {
            let key = (i.patient_id.clone(), i.encounter_id.clone());
            planning::plan_cell(lang, p.get(&key).copied())
        });
        row::row(b, lang, i, now, &plan);
    }
    b.push_str("</tbody></table>");
}

async fn patient(
    State(d): State<Dashboard>,
    caller: Caller,
    csrf: Option<axum::Extension<crate::session::Csrf>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(p): Query<Params>,
) -> Response {
    let lang = lang_of(&p, &headers);
    let caller = caller.as_deref();
    // Decide first, render after: the coordination view decides (territory, consent) and records
    // the read; without its allow decision nothing of the patient goes out, unless the caller
    // may see every patient. A patient refused to the caller gets the page of an unknown one:
    // the answer must not tell that the patient exists elsewhere.
    let fu = match follow_up(&d, caller, &id).await {
        Ok(f) => f,
        // A patient still in hospital is not in the coordination view yet: the planning view
        // decides on their stays.
        Err(s) if s.code() == tonic::Code::PermissionDenied => None,
        Err(s) => return status_response(lang, caller, s),
    };
    let plan = match planning::of_patient(&d, caller, &id).await {
        Ok(p) => p,
        Err(s) => return status_response(lang, caller, s),
    };
    let everything = sees_every_patient(caller);
    if fu.is_none() && plan.is_none() && !everything {
        return not_found_page(lang, caller, &id);
    }
    let mut events = match d.log.patient(&id).await {
        Ok(e) => e,
        Err(e) => return unavailable(lang, caller, &format!("cannot read the log: {e:#}")),
    };
    if !everything {
        // Fail closed while the view lags: what it has not folded yet was not part of the
        // decision (a transfer to another territory, a consent revoked).
        let decided = match (&fu, &d.planning) {
            (None, Some(planning)) => planning.watch().borrow().checkpoint,
            _ => d.coordination.runner.watch().borrow().checkpoint,
        };
        events.retain(|e| e.position <= decided);
    }
    if fu.is_none() && plan.is_none() && events.is_empty() {
        return not_found_page(lang, caller, &id);
    }
    let mut b = String::new();
    let title = fu
        .as_ref()
        .map(|f| f.display_name.clone())
        .or_else(|| {
            plan.as_ref()
                .and_then(|p| p.first())
                .map(|s| s.display_name.clone())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| id.clone());
    let recorded = p.recorded.as_deref().and_then(|r| r.parse().ok());
    let view_at = d.coordination.runner.watch().borrow().checkpoint;
    actions::recorded_notice(&mut b, lang, recorded.unwrap_or(0), view_at);
    let who = identity::line(lang, &identity::of(&events));
    if !who.is_empty() {
        let _ = write!(b, "<p id=\"identity\">{who}</p>");
    }
    if let Some(stays) = &plan {
        planning::section(&mut b, lang, &id, stays, csrf.as_deref());
    }
    if let Some(f) = &fu {
        follow_up_section(&mut b, lang, f);
        if let Some(csrf) = &csrf {
            actions::forms(&mut b, lang, &id, csrf, f, caller.map(|c| c.role));
        }
    }
    sentence::timeline(&mut b, lang, &events);
    page(lang, caller, &title, &b).into_response()
}

/// Whether the caller sees a patient's record whatever the coordination view decides: an admin,
/// or anyone on a server without authentication. A coordinator sees only what the view allows.
fn sees_every_patient(caller: Option<&Principal>) -> bool {
    caller.is_none_or(|p| p.role == Role::Admin)
}

/// The page of a patient unknown to the caller's view, the same whether nobody knows the
/// patient or the caller may not see it.
fn not_found_page(lang: Lang, caller: Option<&Principal>, id: &str) -> Response {
    let body = format!(
        "<p class=\"notice\" id=\"not-found\">{}</p><p class=\"muted\">{}</p>{}",
        t(lang, "not_found_text"),
        esc(id),
        way_back(lang)
    );
    let title = t(lang, "not_found");
    (StatusCode::NOT_FOUND, page(lang, caller, title, &body)).into_response()
}

/// The patient's follow-up, its reading audited; `None` when the coordination view does not
/// know the patient.
async fn follow_up(
    d: &Dashboard,
    caller: Option<&Principal>,
    id: &str,
) -> Result<Option<FollowUpResponse>, tonic::Status> {
    let result = d
        .coordination
        .follow_up_of(
            &FollowUpRequest {
                patient_id: id.to_string(),
                as_of: None,
            },
            caller,
        )
        .await;
    let result = d
        .coordination
        .audit(caller, "dashboard/patient", id, "", String::new(), result)
        .await;
    match result {
        Ok(f) => Ok(Some(f)),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s),
    }
}

/// The patient page's follow-up: the discharges, the referents and the alerts.
fn follow_up_section(b: &mut String, lang: Lang, f: &FollowUpResponse) {
    if f.deceased {
        let _ = write!(b, "<p><b>{}</b></p>", t(lang, "deceased"));
    }
    let _ = write!(b, "<h2>{}</h2>", t(lang, "followup"));
    if !f.discharges.is_empty() {
        discharge_table(b, lang, "followup", &f.discharges, None);
    }
    pathway::section(b, lang, &f.discharges, chrono::Utc::now().timestamp());
    if !f.referents.is_empty() {
        let _ = write!(b, "<h3>{}</h3><ul id=\"referents\">", t(lang, "referents"));
        for r in &f.referents {
            let role = row::role_words(lang, r.role);
            let _ = write!(
                b,
                "<li>{} — {}{}</li>",
                esc(&role),
                esc(&r.name),
                row::phone_link(&r.phone)
            );
        }
        b.push_str("</ul>");
    }
    if !f.alerts.is_empty() {
        let _ = write!(b, "<h3>{}</h3><ul id=\"alerts\">", t(lang, "alerts"));
        for a in &f.alerts {
            let (state, words) = if a.resolved {
                ("resolved", t(lang, "alert_resolved"))
            } else if a.acknowledged {
                ("acknowledged", t(lang, "alert_acknowledged"))
            } else {
                ("open", t(lang, "alert_unacknowledged"))
            };
            let _ = write!(
                b,
                "<li data-state=\"{state}\">{} · {} · {} · {words}</li>",
                when(lang, a.raised_at.as_ref()),
                esc(&sentence::severity(lang, a.severity)),
                esc(&alert_words::reason(lang, &a.rule, &a.reason)),
            );
        }
        b.push_str("</ul>");
    }
}

/// The facility the indicators' filter means by what the reader typed (its id, or a part of its
/// name): its id when one facility answers; otherwise what was typed (no figure then) and a
/// notice saying no facility has that name, or listing, as links, those that have it.
async fn facility_named(
    d: &Dashboard,
    lang: Lang,
    p: &Params,
    typed: &str,
) -> Result<(String, String), sqlx::Error> {
    if typed.is_empty() {
        return Ok((String::new(), String::new()));
    }
    let runner = &d.coordination.runner;
    let found = journey_projections::coordination::queries::facilities_named(
        &runner.db.pool,
        &runner.live_prefix(),
        typed,
    )
    .await?;
    Ok(match found.as_slice() {
        [(id, _)] => (id.clone(), String::new()),
        [] => (
            typed.to_string(),
            format!(
                "<p class=\"notice\" id=\"no-facility\">{}</p>",
                t(lang, "no_facility")
            ),
        ),
        several => {
            let links: Vec<String> = several
                .iter()
                .map(|(id, name)| {
                    let mut q = format!("lang={}&facility={}", lang.code(), enc(id));
                    for (k, v) in [
                        ("from", &p.from),
                        ("to", &p.to),
                        ("unit", &p.unit),
                        ("territory", &p.territory),
                    ] {
                        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                            let _ = write!(q, "&{k}={}", enc(v));
                        }
                    }
                    format!("<a href=\"/indicators?{}\">{}</a>", esc(&q), esc(name))
                })
                .collect();
            (
                typed.to_string(),
                format!(
                    "<p class=\"notice\" id=\"several-facilities\">{} {}</p>",
                    t(lang, "several_facilities"),
                    links.join(", ")
                ),
            )
        }
    })
}

async fn indicators(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller, p) = (asked.lang, asked.caller(), &asked.p);
    if let Err(refused) = asked.check(INDICATORS_KEYS) {
        return *refused;
    }
    let typed = p.facility.as_deref().unwrap_or_default().trim();
    let unit = p.unit.as_deref().unwrap_or_default().trim();
    let (facility_id, notice) = match facility_named(&d, lang, p, typed).await {
        Ok(found) => found,
        Err(e) => return status_response(lang, caller, crate::errors::read_model_error(e)),
    };
    let req = IndicatorsRequest {
        period: Some(Period {
            from_date: p.from.clone().unwrap_or_default(),
            to_date: p.to.clone().unwrap_or_default(),
        }),
        facility_id,
        territory: p.territory.clone().unwrap_or_default(),
        unit: unit.to_string(),
    };
    let resp = match d.coordination.indicators_of(&req, caller).await {
        Ok(r) => r,
        Err(s) => return status_response(lang, caller, s),
    };
    let weeks = &resp.weeks;
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/indicators\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<input name=\"from\" type=\"date\" value=\"{}\"></label><label>{}<input name=\"to\" type=\"date\" value=\"{}\"></label>\
         <label>{}<input name=\"facility\" value=\"{}\"></label><label>{}<input name=\"unit\" value=\"{}\"></label>\
         <label>{}<input name=\"territory\" value=\"{}\"></label><button type=\"submit\">{}</button></form>",
        lang.code(),
        t(lang, "from"), esc(p.from.as_deref().unwrap_or("")),
        t(lang, "to"), esc(p.to.as_deref().unwrap_or("")),
        t(lang, "facility"), esc(typed),
        planning::say(lang, "Service (nom ou partie du nom)", "Unit (name or part of it)"), esc(unit),
        t(lang, "territory"), esc(&req.territory),
        t(lang, "filter"),
    );
    b.push_str(&notice);
    let now = chrono::Utc::now().timestamp();
    let all = |f: &dyn Fn(&WeekIndicators) -> Option<f64>| weeks.iter().map(f).collect();
    let (blue, brown) = ("#1565c0", "#8a5300");
    b.push_str("<div class=\"charts\">");
    for (id, title, y_label, series) in [
        (
            "chart-readmission",
            t(lang, "readmission_rate"),
            "%",
            vec![charts::Series {
                name: t(lang, "readmission_rate"),
                colour: blue,
                values: all(&|w| charts::readmission(w, now)),
            }],
        ),
        (
            "chart-contact",
            t(lang, "contact_delay"),
            t(lang, "hours"),
            vec![
                charts::Series {
                    name: t(lang, "median"),
                    colour: blue,
                    values: all(&|w| charts::hours(w.first_contact_delay_median_hours)),
                },
                charts::Series {
                    name: t(lang, "p90"),
                    colour: brown,
                    values: all(&|w| charts::hours(w.first_contact_delay_p90_hours)),
                },
            ],
        ),
        (
            "chart-letters",
            t(lang, "same_day"),
            "%",
            vec![charts::Series {
                name: t(lang, "same_day"),
                colour: blue,
                values: all(&charts::same_day),
            }],
        ),
        (
            "chart-missed",
            t(lang, "missed"),
            t(lang, "appointments_word"),
            vec![charts::Series {
                name: t(lang, "missed"),
                colour: blue,
                values: all(&charts::missed),
            }],
        ),
    ] {
        b.push_str(&charts::chart(lang, id, title, y_label, weeks, &series));
    }
    b.push_str("</div>");
    let _ = write!(
        b,
        "<div class=\"wide\"><table id=\"indicators\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        t(lang, "week"), t(lang, "discharges"), t(lang, "readmission_rate"), t(lang, "ed"), t(lang, "contact_delay"),
        t(lang, "same_day"), t(lang, "completeness"), t(lang, "missed"), t(lang, "open_alerts"), t(lang, "had"),
    );
    let h = |v: i64| charts::figure(lang, charts::hours(v), "");
    for w in weeks {
        let rate = match charts::readmission(w, now) {
            Some(r) => format!(
                "{} ({}/{})",
                charts::figure(lang, Some(r), "%"),
                w.readmissions_30d,
                w.index_stays
            ),
            None if w.index_stays > 0 => {
                format!("— <span class=\"muted\">({})</span>", t(lang, "not_over"))
            }
            None => "—".into(),
        };
        let _ = write!(
            b,
            "<tr data-week=\"{}\"><td>{}</td><td>{}</td><td class=\"rate\">{rate}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{} / {} / {}</td></tr>",
            esc(&w.week), esc(&charts::week_words(lang, &w.week)), w.discharges,
            w.ed_revisits_30d, h(w.first_contact_delay_median_hours), h(w.first_contact_delay_p90_hours),
            charts::figure(lang, charts::same_day(w), "%"), charts::figure(lang, charts::completeness(w), "%"),
            match charts::missed(w) { Some(_) => format!("{}/{}", w.appointments_missed, w.appointments_due), None => "—".into() },
            w.alerts_open, h(w.open_alert_age_median_hours), w.had_palliative, w.had_acute_chronic, w.had_nursing_home_support,
        );
    }
    b.push_str("</tbody></table></div>");
    b.push_str(&qls::section(lang, resp.letter_quality.as_ref()));
    // Discharge planning over the same weeks.
    let week_day = |w: &WeekIndicators| chrono::NaiveDate::parse_from_str(&w.week, "%Y-%m-%d").ok();
    let day = |w: &WeekIndicators| {
        week_day(w).map(journey_projections::coordination::calendar::paris_midnight)
    };
    if let (Some(from), Some(last)) = (weeks.first().and_then(day), weeks.last().and_then(day)) {
        let territory = match caller.filter(|c| c.role == Role::Coordinator) {
            Some(c) => c.territory.clone().unwrap_or_default(),
            None => req.territory.clone(),
        };
        let to = last + 7 * 86_400;
        let days = (
            weeks.first().and_then(week_day),
            weeks.last().and_then(week_day),
        );
        // The two sections read different tables: at once.
        let (planning, readmissions) = tokio::join!(
            planning::indicators_section(&d, lang, from, to, &territory, &req.facility_id, unit),
            async {
                match days {
                    (Some(first), Some(last)) => {
                        let period = (first, last + chrono::Days::new(6));
                        readmission_figures::section(&d, lang, caller, period, &territory).await
                    }
                    _ => Ok(String::new()),
                }
            }
        );
        for section in [planning, readmissions] {
            match section {
                Ok(section) => b.push_str(&section),
                Err(s) => return status_response(lang, caller, s),
            }
        }
    }
    let head = d.log.head().await.ok().map(|(h, _)| h);
    let _ = write!(
        b,
        "<p class=\"muted\" id=\"freshness\">{}</p>",
        freshness(lang, resp.checkpoint, head)
    );
    page(lang, caller, t(lang, "indicators"), &b).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_encodes_queries() {
        assert_eq!(
            esc("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(enc("a b&c=é"), "a%20b%26c%3D%C3%A9");
        assert_eq!(
            unknown_keys(Some("lang=fr&overdue=on"), WORKLIST_KEYS),
            None
        );
        assert_eq!(
            unknown_keys(Some("lang=fr&color=red"), WORKLIST_KEYS),
            Some("color".into())
        );
    }

    #[test]
    fn the_next_page_keeps_the_filters_and_the_window() {
        let uri: axum::http::Uri = "/?lang=fr&facility=H%C3%B4pital+F1&window=90&overdue=on"
            .parse()
            .unwrap();
        let p: Params = Query::try_from_uri(&uri).unwrap().0;
        let req = worklist_request(uri.query(), &p).unwrap();
        assert_eq!(
            next_page_query(Lang::Fr, &req, "50"),
            "?lang=fr&facility=H%C3%B4pital%20F1&overdue=on&severity=0&window=90&page=50"
        );
    }

    #[test]
    fn a_bad_value_is_refused_in_the_same_words_on_every_page() {
        let p = |q: &str| -> Params {
            let uri: axum::http::Uri = format!("/?{q}").parse().unwrap();
            Query::try_from_uri(&uri).unwrap().0
        };
        for q in ["window=abc", "window=-5", "severity=9"] {
            let on_worklist = check_query(Some(q), &p(q), WORKLIST_KEYS).unwrap_err();
            let on_indicators = check_query(Some(q), &p(q), INDICATORS_KEYS).unwrap_err();
            assert_eq!(on_worklist, on_indicators, "{q}");
        }
        assert_eq!(
            check_query(Some("window=7"), &p("window=7"), INDICATORS_KEYS).unwrap_err(),
            "unknown filter \"window\"; this page knows: lang, from, to, facility, unit, territory"
        );
        assert!(check_query(Some("window=7"), &p("window=7"), WORKLIST_KEYS).is_ok());
    }
}
