//! The worklist taken away: the whole list its filters select as a CSV file (`/worklist.csv`,
//! UTF-8 with a byte-order mark so that Excel reads the accents, `;` between French columns as
//! French Excel expects and `,` between English ones, fields quoted when needed, a field that a
//! spreadsheet would run as a formula defused, instants in the facility's time zone) and as a
//! page to print for the morning huddle (`/?print=1`: no navigation nor forms, the time it was
//! printed). Either is recorded in the access log under every patient it holds.
use super::{next_page_query, planning::say, row::role_words, status_response, Asked, Dashboard};
use crate::html::{t, task_label, timeliness_label, Lang};
use crate::principal::Principal;
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use chrono_tz::Tz;
use journey_proto::v1::{WorklistItem, WorklistRequest, WorklistResponse};
use std::{collections::HashMap, fmt::Write};

/// Where the CSV file is served.
pub(super) const CSV_PATH: &str = "/worklist.csv";

/// The most rows an export or a printed list holds; past it the reader narrows the filters.
const MOST: u64 = 10_000;

/// The links to the CSV file and to the page to print, with the worklist's filters.
pub(super) fn links(b: &mut String, lang: Lang, req: &WorklistRequest) {
    let query = next_page_query(lang, req, "");
    let _ = write!(
        b,
        "<p id=\"take-away\"><a id=\"export\" href=\"{CSV_PATH}{query}\" download>{}</a> · \
         <a id=\"print\" href=\"/{query}&amp;print=1\">{}</a></p>",
        say(lang, "Exporter la liste (CSV)", "Export the list (CSV)"),
        say(lang, "Imprimer la liste", "Print the list"),
    );
}

/// Every row the request's filters select (from its first page on, whatever page it names),
/// recorded as one read under all of them as `call`.
async fn whole_list(
    d: &Dashboard,
    caller: Option<&Principal>,
    req: &WorklistRequest,
    call: &str,
) -> Result<WorklistResponse, tonic::Status> {
    let mut all = WorklistResponse::default();
    let mut next = String::new();
    let result = loop {
        let page = WorklistRequest {
            page_size: 1000,
            page_token: next,
            ..req.clone()
        };
        match d.coordination.worklist_page(&page, caller).await {
            Ok(r) if r.total > MOST => {
                break Err(crate::errors::invalid(
                    "filters",
                    &format!(
                        "the list holds {} patients; narrow the filters to at most {MOST}",
                        r.total
                    ),
                ))
            }
            Ok(r) => {
                all.items.extend(r.items);
                (all.total, all.checkpoint) = (r.total, r.checkpoint);
                next = r.next_page_token;
                if next.is_empty() {
                    break Ok(all);
                }
            }
            Err(s) => break Err(s),
        }
    };
    let detail = format!("{req:?}");
    d.coordination
        .audit_worklist(caller, call, "", None, detail, result)
        .await
}

/// The worklist as a CSV file, its columns in the reader's language.
pub(super) async fn csv(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller) = (asked.lang, asked.caller());
    let req = match asked.worklist() {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    let list = match whole_list(&d, caller, &req, "dashboard/export").await {
        Ok(l) => l,
        Err(s) => return status_response(lang, caller, s),
    };
    let zones = match zones(&d, &list.items).await {
        Ok(z) => z,
        Err(s) => return status_response(lang, caller, s),
    };
    let now = chrono::Utc::now();
    let file = format!(
        "{}-{}.csv",
        say(lang, "liste-de-travail", "worklist"),
        now.with_timezone(&chrono_tz::Europe::Paris)
            .format("%Y-%m-%d-%Hh%M")
    );
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        table(lang, &list.items, &zones),
    )
        .into_response()
}

/// The time zone of each row's facility (Paris when its admission named none).
async fn zones(
    d: &Dashboard,
    items: &[WorklistItem],
) -> Result<HashMap<(String, String), Tz>, tonic::Status> {
    let stays: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i.patient_id.as_str(), i.encounter_id.as_str()))
        .collect();
    let runner = &d.coordination.runner;
    let named = journey_projections::coordination::queries::time_zones(
        &runner.db.pool,
        &runner.live_prefix(),
        &stays,
    )
    .await
    .map_err(crate::errors::read_model_error)?;
    Ok(named
        .into_iter()
        .filter_map(|(k, zone)| zone.parse().ok().map(|z| (k, z)))
        .collect())
}

/// The CSV text: the byte-order mark, the header line, a line per row (CRLF, as RFC 4180 says).
fn table(lang: Lang, items: &[WorklistItem], zones: &HashMap<(String, String), Tz>) -> String {
    let sep = match lang {
        Lang::Fr => ';',
        Lang::En => ',',
    };
    let mut out = String::from("\u{feff}");
    let heads = [
        t(lang, "patient").to_string(),
        say(lang, "Identifiant", "Patient id"),
        say(lang, "Date de naissance", "Birth date"),
        say(lang, "Sexe", "Sex"),
        "INS".to_string(),
        t(lang, "facility").to_string(),
        say(lang, "Service", "Unit"),
        t(lang, "territory").to_string(),
        t(lang, "discharged").to_string(),
        t(lang, "letter").to_string(),
        t(lang, "first_contact").to_string(),
        say(lang, "Premier contact dû le", "First contact due"),
        say(lang, "Rendez-vous faits", "Appointments kept"),
        say(lang, "Rendez-vous à venir", "Appointments to come"),
        say(
            lang,
            "Rendez-vous manqués ou sans nouvelles",
            "Appointments missed or without news",
        ),
        say(lang, "Alertes ouvertes", "Open alerts"),
        say(lang, "Alertes à prendre en compte", "Alerts to acknowledge"),
        t(lang, "referents").to_string(),
        t(lang, "todo").to_string(),
        say(lang, "En retard", "Overdue"),
    ];
    line(&mut out, sep, &heads);
    for i in items {
        let zone = zones
            .get(&(i.patient_id.clone(), i.encounter_id.clone()))
            .copied()
            .unwrap_or(chrono_tz::Europe::Paris);
        let at = |ts: Option<&journey_proto::prost_types::Timestamp>| instant(lang, ts, zone);
        let referents: Vec<String> = i
            .referents
            .iter()
            .map(|r| {
                let phone = match r.phone.trim() {
                    "" => String::new(),
                    p => format!(" ({p})"),
                };
                format!(
                    "{}{}{}{phone}",
                    role_words(lang, r.role),
                    colon(lang),
                    r.name
                )
            })
            .collect();
        let tasks: Vec<String> = i.tasks.iter().map(|k| task_label(lang, k)).collect();
        let open = i.open_alerts_low
            + i.open_alerts_moderate
            + i.open_alerts_high
            + i.open_alerts_critical;
        let fields = [
            i.display_name.clone(),
            i.patient_id.clone(),
            birth_date(lang, &i.birth_date),
            super::identity::sex_words(lang, i.sex).to_string(),
            i.ins.clone(),
            if i.facility_name.is_empty() {
                i.facility_id.clone()
            } else {
                i.facility_name.clone()
            },
            i.unit.clone(),
            i.territory.clone(),
            at(i.discharged_at.as_ref()),
            format!(
                "{} ({}/{})",
                timeliness_label(lang, &i.letter),
                i.letter_items_present,
                i.letter_items_required
            ),
            timeliness_label(lang, &i.first_contact).to_string(),
            at(i.first_contact_due_at.as_ref()),
            i.appointments_done.to_string(),
            i.appointments_upcoming.to_string(),
            (i.appointments_missed + i.appointments_overdue).to_string(),
            open.to_string(),
            i.unacknowledged_alerts.to_string(),
            referents.join(" | "),
            tasks.join(", "),
            match (i.overdue, lang) {
                (true, Lang::Fr) => "oui",
                (false, Lang::Fr) => "non",
                (true, Lang::En) => "yes",
                (false, Lang::En) => "no",
            }
            .to_string(),
        ];
        line(&mut out, sep, &fields);
    }
    out
}

/// One CSV line of `fields`, ended by CRLF.
fn line(out: &mut String, sep: char, fields: &[String]) {
    for (n, f) in fields.iter().enumerate() {
        if n > 0 {
            out.push(sep);
        }
        out.push_str(&field(f, sep));
    }
    out.push_str("\r\n");
}

/// A CSV field: a text a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, a tab or a
/// carriage return first) starts with an apostrophe, and a field holding the separator, a quote
/// or a line break is quoted, its quotes doubled (RFC 4180).
fn field(text: &str, sep: char) -> String {
    let text = match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    };
    if text.contains([sep, '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// An instant in `zone`, as a spreadsheet reads it in the reader's language: "24/11/2026 20:56",
/// "2026-11-24 20:56".
fn instant(lang: Lang, ts: Option<&journey_proto::prost_types::Timestamp>, zone: Tz) -> String {
    ts.filter(|t| t.seconds != 0)
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|d| {
            let d = d.with_timezone(&zone);
            match lang {
                Lang::Fr => d.format("%d/%m/%Y %H:%M"),
                Lang::En => d.format("%Y-%m-%d %H:%M"),
            }
            .to_string()
        })
        .unwrap_or_default()
}

/// A birth date as the reader writes it (French: 02/03/1941; English: ISO).
fn birth_date(lang: Lang, date: &str) -> String {
    match (chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d"), lang) {
        (Ok(d), Lang::Fr) => d.format("%d/%m/%Y").to_string(),
        _ => date.to_string(),
    }
}

/// The worklist as a page to print: no navigation nor forms, the time it was printed, the
/// filters in words, the whole list.
pub(super) async fn print_page(
    d: &Dashboard,
    lang: Lang,
    caller: Option<&Principal>,
    req: &WorklistRequest,
) -> Response {
    let list = match whole_list(d, caller, req, "dashboard/print").await {
        Ok(l) => l,
        Err(s) => return status_response(lang, caller, s),
    };
    let now = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Paris);
    let printed = match lang {
        Lang::Fr => format!("Imprimée le {}", now.format("%d/%m/%Y à %H h %M")),
        Lang::En => format!("Printed {}", now.format("%-d %b %Y at %H:%M")),
    };
    let mut b = format!(
        "<p id=\"printed\">{printed} · {}{}</p>",
        super::patients(lang, list.total),
        filters_words(lang, req)
    );
    if list.items.is_empty() {
        let _ = write!(b, "<p id=\"empty\">{}</p>", t(lang, "none"));
    } else {
        super::worklist_table(d, &mut b, lang, &list.items).await;
    }
    b.push_str(&super::way_back(lang));
    let title = t(lang, "worklist");
    let html = crate::html::document(lang, title, "", &b);
    axum::response::Html(html).into_response()
}

/// A colon as the reader's language sets it.
fn colon(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => "\u{a0}: ",
        Lang::En => ": ",
    }
}

/// The filters of a printed list, in words (after a separator), or nothing.
fn filters_words(lang: Lang, req: &WorklistRequest) -> String {
    let mut parts = Vec::new();
    for (key, value) in [
        ("facility_or_unit", &req.facility_id),
        ("territory", &req.territory),
        ("referent", &req.referent_id),
    ] {
        if !value.is_empty() {
            parts.push(format!(
                "{}{}{}",
                t(lang, key),
                colon(lang),
                crate::html::esc(value)
            ));
        }
    }
    if req.overdue_only {
        parts.push(t(lang, "overdue_only").to_string());
    }
    parts
        .into_iter()
        .map(|p| format!(" · {p}"))
        .collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("MARTIN Jeanne", ';'), "MARTIN Jeanne");
        assert_eq!(field("a;b", ';'), "\"a;b\"");
        assert_eq!(field("a;b", ','), "a;b");
        assert_eq!(field("dit \"bien\"", ','), "\"dit \"\"bien\"\"\"");
        assert_eq!(field("deux\nlignes", ','), "\"deux\nlignes\"");
        assert_eq!(
            field("=HYPERLINK(\"x\")", ','),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(field("+33 6 12", ';'), "'+33 6 12");
    }

    #[test]
    fn instants_are_in_the_facility_time_zone() {
        let ts = journey_proto::prost_types::Timestamp {
            seconds: 1_764_600_000, // 2025-12-01 14:40 UTC
            nanos: 0,
        };
        assert_eq!(
            instant(Lang::Fr, Some(&ts), chrono_tz::Europe::Paris),
            "01/12/2025 15:40"
        );
        assert_eq!(
            instant(Lang::En, Some(&ts), chrono_tz::America::Cayenne),
            "2025-12-01 11:40"
        );
        assert_eq!(instant(Lang::En, None, chrono_tz::Europe::Paris), "");
    }
}
