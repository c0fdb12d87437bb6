//! Discharge planning in the dashboard (issue 18, point 1): the in-hospital worklist (who is
//! expected to leave in the next 48 hours and what is not ready, by facility and unit), the
//! planning section of a patient's page (expected discharge, complex-discharge flag with the
//! reasons the view suggests, the checklist with who ticked what and when, and the forms to
//! change them), whether the plan was complete when a discharged patient left (the
//! post-discharge worklist's column), and the planning indicators.
//!
//! Who sees a stay: as for the coordination view, a coordinator sees the patients with a stay in
//! its territory (here: open stays too, which the coordination view, made of discharges, does
//! not know yet), never one who withdrew the consent to share with its organisation.
use super::{bad_request, enc, page, status_response, unknown_keys, Dashboard};
use crate::{
    access_log::{audited, Access},
    consent,
    coordination_service::memo::{Memo, Stand},
    errors,
    html::{esc, Lang},
    principal::{Principal, Role},
    session::Csrf,
};
use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
};
use journey_projections::planning::{
    checklist::{self, Late, ITEMS},
    queries::{self, DueFilter, Stay},
};
use journey_proto::v1::{ChecklistItem, ComplexityReason, Sex};
use serde::Deserialize;
use std::{collections::HashMap, fmt::Write};
use tonic::Status;

pub(super) fn say(lang: Lang, fr: &str, en: &str) -> String {
    match lang {
        Lang::Fr => fr.to_string(),
        Lang::En => en.to_string(),
    }
}

/// A French participle agreed with the patient's sex, followed by "le" (a date follows).
fn agreed(sex: i32, male: &str, female: &str, unknown: &str) -> String {
    let word = match Sex::try_from(sex) {
        Ok(Sex::Male) => male,
        Ok(Sex::Female) => female,
        _ => unknown,
    };
    format!("{word} le")
}

/// A colon as the reader's language writes it (a space before it in French).
fn colon(lang: Lang) -> &'static str {
    match lang {
        Lang::Fr => " :",
        Lang::En => ":",
    }
}

/// A checklist item in the reader's words.
pub(super) fn item_words(lang: Lang, item: i32) -> String {
    let (fr, en) = match ChecklistItem::try_from(item) {
        Ok(ChecklistItem::SocialEvaluation) => ("Évaluation sociale", "Social evaluation"),
        Ok(ChecklistItem::FunctionalEvaluation) => {
            ("Évaluation fonctionnelle", "Functional evaluation")
        }
        Ok(ChecklistItem::EquipmentOrdered) => ("Matériel commandé", "Equipment ordered"),
        Ok(ChecklistItem::EquipmentDelivered) => ("Matériel livré", "Equipment delivered"),
        Ok(ChecklistItem::HomeServicesArranged) => (
            "Aides à domicile organisées (HAD, SSIAD, infirmier, aides)",
            "Home services arranged (HAD, SSIAD, home nurse, aides)",
        ),
        Ok(ChecklistItem::FollowUpBooked) => ("Rendez-vous de suivi pris", "Follow-up booked"),
        Ok(ChecklistItem::PrescriptionsSent) => (
            "Ordonnances envoyées à la pharmacie",
            "Prescriptions sent to the pharmacy",
        ),
        Ok(ChecklistItem::LetterPrepared) => ("Lettre de liaison prête", "Discharge letter ready"),
        Ok(ChecklistItem::EducationDone) => (
            "Éducation du patient et de l'aidant faite",
            "Patient and caregiver education done",
        ),
        Ok(ChecklistItem::ReturnKitGiven) => ("Kit de retour remis", "Return kit given"),
        _ => ("Élément inconnu", "Unknown item"),
    };
    say(lang, fr, en)
}

/// The short name of an item in forms and the access log.
pub(super) fn item_key(item: ChecklistItem) -> &'static str {
    match item {
        ChecklistItem::SocialEvaluation => "social_evaluation",
        ChecklistItem::FunctionalEvaluation => "functional_evaluation",
        ChecklistItem::EquipmentOrdered => "equipment_ordered",
        ChecklistItem::EquipmentDelivered => "equipment_delivered",
        ChecklistItem::HomeServicesArranged => "home_services_arranged",
        ChecklistItem::FollowUpBooked => "follow_up_booked",
        ChecklistItem::PrescriptionsSent => "prescriptions_sent",
        ChecklistItem::LetterPrepared => "letter_prepared",
        ChecklistItem::EducationDone => "education_done",
        ChecklistItem::ReturnKitGiven => "return_kit_given",
        ChecklistItem::Unspecified => "unspecified",
    }
}

/// The complex-discharge reasons a coordinator may flag, with their form names.
pub(super) const REASONS: [(&str, ComplexityReason); 5] = [
    ("reason_age", ComplexityReason::Age75OrOver),
    ("reason_chronic", ComplexityReason::SeveralChronicConditions),
    ("reason_alone", ComplexityReason::LivesAlone),
    ("reason_recent", ComplexityReason::RecentStay),
    ("reason_other", ComplexityReason::Other),
];

fn reason_words(lang: Lang, r: ComplexityReason) -> String {
    let (fr, en) = match r {
        ComplexityReason::Age75OrOver => ("75 ans ou plus", "75 or older"),
        ComplexityReason::SeveralChronicConditions => (
            "plusieurs maladies chroniques",
            "several chronic conditions",
        ),
        ComplexityReason::LivesAlone => ("vit seul(e)", "lives alone"),
        ComplexityReason::RecentStay => (
            "hospitalisé(e) dans les six derniers mois",
            "a stay in the last six months",
        ),
        ComplexityReason::Other => ("autre raison", "another reason"),
        ComplexityReason::Unspecified => ("", ""),
    };
    say(lang, fr, en)
}

/// A duration in hours up to two days, then in days.
fn span(lang: Lang, secs: i64) -> String {
    let h = secs.max(0) / 3600;
    if h < 48 {
        format!("{h} h")
    } else {
        let d = h / 24;
        match lang {
            Lang::Fr => format!("{d} jour{}", if d > 1 { "s" } else { "" }),
            Lang::En => format!("{d} day{}", if d > 1 { "s" } else { "" }),
        }
    }
}

/// What is late, as a sentence.
fn late_words(lang: Lang, l: &Late) -> String {
    match (lang, l) {
        (Lang::Fr, Late::NoExpectedDate { by }) => {
            format!(
                "pas de date de sortie prévue (en retard de {})",
                span(lang, *by)
            )
        }
        (Lang::En, Late::NoExpectedDate { by }) => {
            format!("no expected discharge date ({} late)", span(lang, *by))
        }
        (Lang::Fr, Late::Evaluation { item, by }) => format!(
            "{} non faite (en retard de {})",
            item_words(lang, *item as i32),
            span(lang, *by)
        ),
        (Lang::En, Late::Evaluation { item, by }) => format!(
            "{} not done ({} late)",
            item_words(lang, *item as i32),
            span(lang, *by)
        ),
        (Lang::Fr, Late::NotReady { left }) => {
            format!("sortie dans {} et pas prête", span(lang, *left))
        }
        (Lang::En, Late::NotReady { left }) => {
            format!("leaves in {} and is not ready", span(lang, *left))
        }
        (Lang::Fr, Late::ExpectedPassed { by }) => {
            format!("date de sortie dépassée de {}", span(lang, *by))
        }
        (Lang::En, Late::ExpectedPassed { by }) => {
            format!("expected discharge passed {} ago", span(lang, *by))
        }
    }
}

/// Everything late of a stay at `now`, in one line ("" when nothing is).
fn late_line(lang: Lang, s: &Stay, now: i64) -> String {
    let late: Vec<String> = s
        .plan
        .late(now)
        .iter()
        .map(|l| late_words(lang, l))
        .collect();
    late.join(" · ")
}

/// A time in the stay's facility's time zone, as the reader writes dates.
pub(super) fn local(lang: Lang, s: &Stay, secs: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp(secs, 0) else {
        return String::new();
    };
    let t = t.with_timezone(&s.tz());
    match lang {
        Lang::Fr => t.format("%d/%m/%Y à %H:%M").to_string(),
        Lang::En => t.format("%-d %b %Y, %H:%M").to_string(),
    }
}

/// The expected discharge and how far it is.
fn expected_words(lang: Lang, s: &Stay, now: i64) -> String {
    match s.plan.expected_at {
        None => say(lang, "non renseignée", "not set"),
        Some(t) if t >= now => match lang {
            Lang::Fr => format!("{} (dans {})", local(lang, s, t), span(lang, t - now)),
            Lang::En => format!("{} (in {})", local(lang, s, t), span(lang, t - now)),
        },
        Some(t) => match lang {
            Lang::Fr => format!(
                "{} (dépassée de {})",
                local(lang, s, t),
                span(lang, now - t)
            ),
            Lang::En => format!("{} ({} ago)", local(lang, s, t), span(lang, now - t)),
        },
    }
}

/// The complex flag and the suggested reasons, as words.
fn complexity(lang: Lang, s: &Stay) -> String {
    let mut out = String::new();
    if !s.complex.is_empty() {
        let reasons: Vec<String> = s.complex.iter().map(|r| reason_words(lang, *r)).collect();
        let _ = write!(
            out,
            "<span class=\"complex\">{}{} {}</span>",
            say(lang, "Sortie complexe", "Complex discharge"),
            colon(lang),
            esc(&reasons.join(", "))
        );
    }
    let suggested = s.suggested();
    if !suggested.is_empty() {
        let reasons: Vec<String> = suggested.iter().map(|r| reason_words(lang, *r)).collect();
        let _ = write!(
            out,
            "{}<span class=\"muted suggested\">{}{} {}</span>",
            if out.is_empty() { "" } else { "<br>" },
            say(lang, "À envisager", "Worth considering"),
            colon(lang),
            esc(&reasons.join(", "))
        );
    }
    out
}

/// The stays of a patient `caller` may see, its reading recorded; `None` when the planning view
/// shows the caller no stay of the patient (unknown, outside its territory, consent withdrawn).
pub(super) async fn of_patient(
    d: &Dashboard,
    caller: Option<&Principal>,
    id: &str,
) -> Result<Option<Vec<Stay>>, Status> {
    let Some(runner) = &d.planning else {
        return Ok(None);
    };
    let result = visible(d, caller, id, runner).await;
    let shown = match result {
        Ok(Some(stays)) => Ok(stays),
        Ok(None) => return Ok(None),
        Err(s) => Err(s),
    };
    let recorded = d
        .coordination
        .audit(caller, "dashboard/planning", id, "", String::new(), shown)
        .await;
    match recorded {
        Ok(stays) => Ok(Some(stays)),
        Err(s) if s.code() == tonic::Code::PermissionDenied => Ok(None),
        Err(s) => Err(s),
    }
}

/// The decision without its record: the stays, or `None` for a patient the view does not know,
/// or a refusal (outside the territory, consent withdrawn).
pub(super) async fn visible(
    d: &Dashboard,
    caller: Option<&Principal>,
    id: &str,
    runner: &journey_projections::runtime::Runner<journey_projections::planning::Planning>,
) -> Result<Option<Vec<Stay>>, Status> {
    let stays = queries::of_patient(&runner.db.pool, &runner.live_prefix(), id)
        .await
        .map_err(errors::read_model_error)?;
    if stays.is_empty() {
        return Ok(None);
    }
    if let Some(p) = caller.filter(|p| p.role == Role::Coordinator) {
        let own = p
            .territory
            .as_deref()
            .ok_or_else(|| errors::no_territory(p))?;
        if !stays.iter().any(|s| s.territory == own) {
            return Err(errors::outside_territory(id, own));
        }
    }
    // A liaison nurse's patients have a stay at her facility (`liaison.rs`).
    if let Some(p) = caller.filter(|p| p.role == Role::LiaisonNurse) {
        if !stays.iter().any(|s| s.facility_id == p.organisation) {
            return Err(errors::outside_facility(id, &p.organisation));
        }
    }
    if let Some(org) = consent::scope(caller) {
        let revoked = consent::revoked_among(&d.coordination.runner, &org, [id]).await?;
        if !revoked.is_empty() {
            return Err(errors::consent_revoked(id, &org));
        }
    }
    Ok(Some(stays))
}

/// The planning section of a patient's page: each open stay (and the latest ended one) with its
/// expected discharge, complex flag and checklist, and the forms to change them.
pub(super) fn section(b: &mut String, lang: Lang, id: &str, stays: &[Stay], csrf: Option<&Csrf>) {
    let now = chrono::Utc::now().timestamp();
    let shown: Vec<&Stay> = stays
        .iter()
        .filter(|s| s.plan.open())
        .chain(stays.iter().find(|s| !s.plan.open()))
        .collect();
    if shown.is_empty() {
        return;
    }
    let _ = write!(
        b,
        "<h2>{}</h2>",
        say(lang, "Préparation de la sortie", "Discharge planning")
    );
    for s in shown {
        stay_section(b, lang, id, s, csrf, now);
    }
}

fn stay_section(b: &mut String, lang: Lang, id: &str, s: &Stay, csrf: Option<&Csrf>, now: i64) {
    let enc_id = esc(&s.encounter_id);
    let _ = write!(
        b,
        "<section class=\"stay\" data-encounter=\"{enc_id}\"><h3>{} · {}</h3><p>{} {}",
        esc(&s.facility_name),
        esc(&s.unit),
        say(
            lang,
            &agreed(s.sex, "Admis", "Admise", "Admis(e)"),
            "Admitted"
        ),
        local(lang, s, s.plan.admitted_at),
    );
    match s.plan.discharged_at {
        Some(t) => {
            let done = s.done_at_discharge.unwrap_or(0);
            let _ = write!(
                b,
                " · {} {} · <span id=\"plan-at-discharge\">{}</span></p></section>",
                say(
                    lang,
                    &agreed(s.sex, "sorti", "sortie", "sorti(e)"),
                    "discharged"
                ),
                local(lang, s, t),
                plan_words(lang, done),
            );
            return;
        }
        None => b.push_str("</p>"),
    }
    let done = checklist::done_count(s.plan.done);
    let _ = write!(
        b,
        "<p>{}{} <b id=\"expected\">{}</b>{}</p>",
        say(lang, "Sortie prévue", "Expected discharge"),
        colon(lang),
        esc(&expected_words(lang, s, now)),
        if s.expected_reason.is_empty() {
            String::new()
        } else {
            format!(
                " <span class=\"muted\">({})</span>",
                esc(&s.expected_reason)
            )
        },
    );
    let complex = complexity(lang, s);
    if !complex.is_empty() {
        let _ = write!(b, "<p id=\"complexity\">{complex}</p>");
    }
    let late = late_line(lang, s, now);
    if !late.is_empty() {
        let _ = write!(b, "<p class=\"overdue\" id=\"late\">{}</p>", esc(&late));
    }
    let _ = write!(
        b,
        "<table class=\"checklist\" id=\"checklist-{enc_id}\"><caption>{}{} {done}/{}</caption><thead><tr><th>{}</th><th>{}</th><th>{}</th>{}</tr></thead><tbody>",
        say(lang, "Check-list de sortie", "Discharge checklist"),
        colon(lang),
        ITEMS.len(),
        say(lang, "Élément", "Item"),
        say(lang, "État", "State"),
        say(lang, "Par, le", "By, on"),
        if csrf.is_some() { "<th></th>" } else { "" },
    );
    for item in ITEMS {
        let state = s.items.iter().find(|i| i.item == item as i32);
        let ticked = state.is_some_and(|i| i.done);
        let _ = write!(
            b,
            "<tr data-item=\"{key}\" data-done=\"{ticked}\"><td>{}</td><td>{}</td><td>{}</td>",
            esc(&item_words(lang, item as i32)),
            if ticked {
                say(lang, "✓ fait", "✓ done")
            } else {
                format!(
                    "<span class=\"late\">{}</span>",
                    say(lang, "à faire", "to do")
                )
            },
            state.map_or(String::new(), |i| {
                let detail = if i.detail.is_empty() {
                    String::new()
                } else {
                    format!("<br><span class=\"muted\">{}</span>", esc(&i.detail))
                };
                format!("{}, {}{detail}", esc(&i.by), local(lang, s, i.at))
            }),
            key = item_key(item),
        );
        if let Some(csrf) = csrf {
            let _ = write!(
                b,
                "<td>{}<input type=\"hidden\" name=\"item\" value=\"{key}\"><input type=\"hidden\" name=\"done\" value=\"{}\">{}<button type=\"submit\">{}</button></form></td>",
                open_form(lang, id, csrf, "checklist", &format!("tick-{}-{}", s.encounter_id, item_key(item)), &s.encounter_id),
                !ticked,
                if ticked {
                    String::new()
                } else {
                    format!(
                        "<input name=\"detail\" maxlength=\"500\" placeholder=\"{}\" aria-label=\"{}\">",
                        say(lang, "précision", "detail"),
                        say(lang, "précision", "detail")
                    )
                },
                if ticked {
                    say(lang, "Décocher", "Untick")
                } else {
                    say(lang, "Cocher", "Tick")
                },
                key = item_key(item),
            );
        }
        b.push_str("</tr>");
    }
    b.push_str("</tbody></table>");
    if let Some(csrf) = csrf {
        forms(b, lang, id, s, csrf);
    }
    b.push_str("</section>");
}

/// The opening of a planning action's form.
fn open_form(
    lang: Lang,
    id: &str,
    csrf: &Csrf,
    action: &str,
    form_id: &str,
    encounter: &str,
) -> String {
    format!(
        "<form method=\"post\" action=\"/patients/{}/actions?lang={}\" id=\"{}\" class=\"action\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">\
         <input type=\"hidden\" name=\"encounter_id\" value=\"{}\">",
        enc(id),
        lang.code(),
        esc(form_id),
        csrf.token(),
        esc(encounter),
    )
}

/// The forms of the expected discharge and of the complex flag.
fn forms(b: &mut String, lang: Lang, id: &str, s: &Stay, csrf: &Csrf) {
    let value = s
        .plan
        .expected_at
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map_or(String::new(), |t| {
            t.with_timezone(&s.tz())
                .format("%Y-%m-%dT%H:%M")
                .to_string()
        });
    let _ = write!(
        b,
        "{}<fieldset><legend>{}</legend><label>{}<input type=\"datetime-local\" name=\"expected\" value=\"{value}\"></label>\
         <label>{}<input name=\"reason\" maxlength=\"500\"></label><button type=\"submit\">{}</button></fieldset></form>",
        open_form(lang, id, csrf, "expected", &format!("expected-{}", s.encounter_id), &s.encounter_id),
        say(lang, "Date de sortie prévue", "Expected discharge date"),
        say(
            lang,
            "Date et heure (vide : retirer la date)",
            "Date and time (empty: withdraw it)"
        ),
        say(lang, "Motif", "Reason"),
        say(lang, "Enregistrer", "Save"),
    );
    let _ = write!(
        b,
        "{}<fieldset><legend>{}</legend>",
        open_form(
            lang,
            id,
            csrf,
            "complex",
            &format!("complex-{}", s.encounter_id),
            &s.encounter_id
        ),
        say(
            lang,
            "Sortie complexe : raisons",
            "Complex discharge: reasons"
        ),
    );
    let suggested = s.suggested();
    for (name, r) in REASONS {
        let mark = if suggested.contains(&r) {
            format!(
                " <span class=\"muted\">({})</span>",
                say(lang, "suggéré", "suggested")
            )
        } else {
            String::new()
        };
        let _ = write!(
            b,
            "<label class=\"check\"><span><input type=\"checkbox\" name=\"{name}\" value=\"on\"{}> {}{mark}</span></label>",
            if s.complex.contains(&r) { " checked" } else { "" },
            esc(&reason_words(lang, r)),
        );
    }
    let _ = write!(
        b,
        "<label>{}<input name=\"note\" maxlength=\"500\" value=\"{}\"></label><button type=\"submit\">{}</button></fieldset></form>",
        say(lang, "Note", "Note"),
        esc(&s.complex_note),
        say(lang, "Enregistrer", "Save"),
    );
}

/// Whether the plan was complete when the patient left, in words.
fn plan_words(lang: Lang, done: i64) -> String {
    let n = checklist::done_count(done);
    if checklist::complete(done) {
        say(lang, "plan de sortie complet", "discharge plan complete")
    } else {
        match lang {
            Lang::Fr => format!("plan de sortie incomplet ({n}/{})", ITEMS.len()),
            Lang::En => format!("discharge plan incomplete ({n}/{})", ITEMS.len()),
        }
    }
}

/// The post-discharge worklist's plan cells: for each (patient, encounter) of the page, whether
/// its plan was complete when the patient left ("—" when the view holds no plan).
pub(super) async fn plans_at_discharge(
    d: &Dashboard,
    stays: &[(String, String)],
) -> HashMap<(String, String), i64> {
    let Some(runner) = &d.planning else {
        return HashMap::new();
    };
    queries::done_at_discharge(&runner.db.pool, &runner.live_prefix(), stays)
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "planning view unreadable: plans left out of the worklist");
            HashMap::new()
        })
}

/// A post-discharge worklist cell: the plan at discharge.
pub(super) fn plan_cell(lang: Lang, done: Option<i64>) -> String {
    match done {
        Some(d) => format!(
            "<td class=\"plan\" data-plan-complete=\"{}\"><span class=\"{}\">{}</span></td>",
            checklist::complete(d),
            if checklist::complete(d) { "" } else { "late" },
            plan_words(lang, d)
        ),
        None => "<td class=\"plan\">—</td>".to_string(),
    }
}

/// The header of that column.
pub(super) fn plan_header(lang: Lang) -> String {
    format!(
        "<th>{}</th>",
        say(lang, "Plan à la sortie", "Plan at discharge")
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct DueParams {
    lang: Option<String>,
    facility: Option<String>,
    unit: Option<String>,
    territory: Option<String>,
}

const DUE_KEYS: &[&str] = &["lang", "facility", "unit", "territory"];

/// `GET /planning`: the in-hospital worklist.
pub(super) async fn due_page(
    State(d): State<Dashboard>,
    caller: super::Caller,
    uri: axum::http::Uri,
    headers: HeaderMap,
    Query(p): Query<DueParams>,
) -> Response {
    let lang = Lang::of(p.lang.as_deref(), &headers);
    let caller = caller.as_deref();
    if let Some(k) = unknown_keys(uri.query(), DUE_KEYS) {
        let message = format!(
            "unknown filter {k:?}; this page knows: {}",
            DUE_KEYS.join(", ")
        );
        return bad_request(lang, caller, &message);
    }
    let title = say(lang, "Sorties à venir", "Upcoming discharges");
    let Some(runner) = &d.planning else {
        let s = errors::no_planning_view();
        return status_response(lang, caller, s);
    };
    let territory = match caller.filter(|c| c.role == Role::Coordinator) {
        Some(c) => match &c.territory {
            Some(t) => t.clone(),
            None => return status_response(lang, caller, errors::no_territory(c)),
        },
        None => p.territory.clone().unwrap_or_default(),
    };
    let filter = DueFilter {
        territory,
        // A liaison nurse sees her facility's stays only.
        facility_id: caller
            .filter(|c| c.role == Role::LiaisonNurse)
            .map(|c| c.organisation.clone())
            .unwrap_or_default(),
        facility: p.facility.clone().unwrap_or_default(),
        unit: p.unit.clone().unwrap_or_default(),
    };
    let now = chrono::Utc::now().timestamp();
    let result = async {
        let mut stays = queries::due(&runner.db.pool, &runner.live_prefix(), &filter, now)
            .await
            .map_err(errors::read_model_error)?;
        if let Some(org) = consent::scope(caller) {
            let revoked = consent::revoked_among(
                &d.coordination.runner,
                &org,
                stays.iter().map(|s| s.patient_id.as_str()),
            )
            .await?;
            stays.retain(|s| !revoked.contains(&s.patient_id));
        }
        Ok(stays)
    }
    .await;
    // The page is recorded under every patient it lists before it is shown.
    let patients: Vec<String> = result
        .as_ref()
        .map(|s: &Vec<Stay>| s.iter().map(|s| s.patient_id.clone()).collect())
        .unwrap_or_default();
    let access = Access {
        caller,
        call: "dashboard/planning-worklist",
        patients: &patients,
        detail: format!("{filter:?}"),
        ..Default::default()
    };
    let stays = match audited(d.coordination.access.as_ref(), access, result).await {
        Ok(s) => s,
        Err(s) => return status_response(lang, caller, s),
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<form method=\"get\" action=\"/planning\" id=\"filters\"><input type=\"hidden\" name=\"lang\" value=\"{}\">\
         <label>{}<input name=\"facility\" value=\"{}\"></label><label>{}<input name=\"unit\" value=\"{}\"></label>\
         <button type=\"submit\">{}</button></form>",
        lang.code(),
        say(lang, "Établissement", "Facility"),
        esc(&filter.facility),
        say(lang, "Service", "Unit"),
        esc(&filter.unit),
        say(lang, "Filtrer", "Filter"),
    );
    let not_ready = stays.iter().filter(|s| !s.plan.ready()).count();
    let _ = write!(
        b,
        "<p id=\"summary\">{}</p>",
        match lang {
            Lang::Fr => format!(
                "<span id=\"total\">{n}</span> {} dans les 48 heures ou après la date prévue ; {not_ready} sans plan de sortie complet.",
                if stays.len() > 1 { "patients sortent" } else { "patient sort" },
                n = stays.len()
            ),
            Lang::En => format!(
                "<span id=\"total\">{n}</span> {} within 48 hours or past the expected date; {not_ready} without a complete discharge plan.",
                if stays.len() == 1 { "patient leaves" } else { "patients leave" },
                n = stays.len()
            ),
        }
    );
    if stays.is_empty() {
        let _ = write!(
            b,
            "<p id=\"empty\">{}</p>",
            say(
                lang,
                "Aucune sortie prévue dans les 48 heures.",
                "No discharge expected in the next 48 hours."
            )
        );
    }
    due_tables(&mut b, lang, &stays, now);
    let view_at = runner.watch().borrow().checkpoint;
    let head = d.log.head().await.ok().map(|(h, _)| h);
    let _ = write!(
        b,
        "<p class=\"muted\" id=\"freshness\">{}</p>",
        super::freshness(lang, view_at, head)
    );
    page(lang, caller, &title, &b).into_response()
}

/// One table per facility and unit.
fn due_tables(b: &mut String, lang: Lang, stays: &[Stay], now: i64) {
    let mut group: Option<(&str, &str)> = None;
    for s in stays {
        let this = (s.facility_name.as_str(), s.unit.as_str());
        if group != Some(this) {
            if group.is_some() {
                b.push_str("</tbody></table>");
            }
            let _ = write!(
                b,
                "<h2>{} · {}</h2><table class=\"planning\" id=\"planning\"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
                esc(this.0),
                esc(this.1),
                say(lang, "Patient", "Patient"),
                say(lang, "Sortie prévue", "Expected discharge"),
                say(lang, "Check-list", "Checklist"),
                say(lang, "Ce qui n'est pas prêt", "Not ready"),
            );
            group = Some(this);
        }
        let name = if s.display_name.is_empty() {
            &s.patient_id
        } else {
            &s.display_name
        };
        let missing: Vec<String> = checklist::missing(s.plan.done)
            .iter()
            .map(|i| item_words(lang, *i as i32))
            .collect();
        let late = late_line(lang, s, now);
        let complex = complexity(lang, s);
        let _ = write!(
            b,
            "<tr data-patient-id=\"{}\" data-ready=\"{}\"><td><a href=\"/patients/{}?lang={}\">{}</a><br><span class=\"muted\">{}</span>{}</td>\
             <td>{}</td><td>{}/{} {}</td><td class=\"missing\">{}{}</td></tr>",
            esc(&s.patient_id),
            s.plan.ready(),
            enc(&s.patient_id),
            lang.code(),
            esc(name),
            esc(&super::identity::born(lang, &s.birth_date, s.sex)),
            if complex.is_empty() {
                String::new()
            } else {
                format!("<br>{complex}")
            },
            esc(&expected_words(lang, s, now)),
            checklist::done_count(s.plan.done),
            ITEMS.len(),
            say(lang, "faits", "done"),
            if late.is_empty() {
                String::new()
            } else {
                format!("<span class=\"overdue\">{}</span><br>", esc(&late))
            },
            if missing.is_empty() {
                say(lang, "prêt", "ready")
            } else {
                esc(&missing.join(", "))
            },
        );
    }
    if group.is_some() {
        b.push_str("</tbody></table>");
    }
}

/// The planning indicators asked (period, territory, facility id, unit), kept while the planning
/// and readmission views stand still.
static PLANNING_FIGURES: Memo<(i64, i64, String, String, String), queries::Indicators> =
    Memo::new();

/// The planning indicators of the discharges in `[from, to)` (a territory, a facility id and a
/// part of a unit's name, empty: all), as a paragraph for the indicators page.
pub(super) async fn indicators_section(
    d: &Dashboard,
    lang: Lang,
    from: i64,
    to: i64,
    territory: &str,
    facility_id: &str,
    unit: &str,
) -> Result<String, Status> {
    let Some(runner) = &d.planning else {
        return Ok(String::new());
    };
    let rp = d.coordination.readmission.as_ref().map(|r| r.live_prefix());
    let mut stands = vec![Stand::of(runner)];
    stands.extend(d.coordination.readmission.as_ref().map(Stand::of));
    let asked = (
        from,
        to,
        territory.to_string(),
        facility_id.to_string(),
        unit.to_string(),
    );
    // The units named are found in the coordination view's directory of places.
    stands.push(Stand::of(&d.coordination.runner));
    let places = format!(
        "{}{}",
        d.coordination.runner.live_prefix(),
        journey_projections::coordination::directory::PLACES
    );
    let (runner, key) = (runner.clone(), asked.clone());
    let compute = async move {
        let (_, _, territory, facility_id, unit) = &key;
        queries::indicators(
            &runner.db.pool,
            &runner.live_prefix(),
            journey_projections::scope::Scope {
                readmission_prefix: rp.as_deref(),
                places: Some(&places),
                from,
                to,
                territory,
                facility_id,
                unit,
            },
        )
        .await
    };
    let i = PLANNING_FIGURES
        .get_or(asked, stands, compute)
        .await
        .map_err(errors::read_model_error)?;
    let pct = |n: u64, of: u64| {
        if of == 0 {
            "—".to_string()
        } else {
            format!("{:.0} % ({n}/{of})", 100.0 * n as f64 / of as f64)
        }
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<h2>{}</h2><table id=\"planning-indicators\"><tbody>\
         <tr data-indicator=\"complete\"><th>{}</th><td>{}</td></tr>\
         <tr data-indicator=\"readmitted-complete\"><th>{}</th><td>{}</td></tr>\
         <tr data-indicator=\"readmitted-incomplete\"><th>{}</th><td>{}</td></tr></tbody></table><p class=\"muted\">{}</p>",
        say(lang, "Préparation de la sortie", "Discharge planning"),
        say(
            lang,
            "Sorties avec la check-list complète",
            "Discharges with the checklist complete"
        ),
        pct(i.complete, i.discharges),
        say(
            lang,
            "Réhospitalisations à 30 jours, check-list complète",
            "30-day readmissions, checklist complete"
        ),
        pct(i.readmitted_complete, i.index_complete),
        say(
            lang,
            "Réhospitalisations à 30 jours, check-list incomplète",
            "30-day readmissions, checklist incomplete"
        ),
        pct(i.readmitted_incomplete, i.index_incomplete),
        say(
            lang,
            "Sorties des semaines ci-dessus ; la check-list telle qu'elle était à la sortie ; réhospitalisations des séjours index, comme dans le tableau.",
            "Discharges of the weeks above; the checklist as it was when the patient left; readmissions of index stays, as in the table."
        ),
    );
    Ok(b)
}
