//! Actions in the dashboard: a signed-in coordinator records what she did about a patient — a
//! contact (phone, visit, teleconsultation) with a note, an alert acknowledged or resolved, a
//! referent assigned, an appointment's outcome — from the patient's page. Each is one event
//! appended with the signed-in person as its actor, through the same write rules as any writer
//! (the role's event types in `write_policy.rs`, then the journey rules in the log's writer).
//!
//! Before anything is appended: the form must come from this site (`Origin`, `Sec-Fetch-Site`)
//! and carry the session's own CSRF token; the patient must be one the caller's page shows (the
//! coordination view's territory and consent decision, the very one the patient page takes).
//! Every action, done or refused, is recorded in the access log with its patient. After the
//! append the answer waits (boundedly) for the coordination view to pass the event, so that the
//! page it redirects to shows the result.
use super::{bad_request, enc, not_found_page, Dashboard};
use crate::{
    errors,
    html::{channel_label, esc, role_label, t, Lang},
    log_handle::LogHandle,
    principal::{Principal, Role},
    session::{from_this_site, Csrf},
};
use axum::{
    extract::{Path, State},
    http::{request::Parts, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Form,
};
use journey_proto::v1::{
    event::Payload, event_log_server::EventLog as _, Actor, AlertAcknowledged, AlertResolved,
    AppendRequest, AppointmentCompleted, AppointmentMissed, ContactChannel, ContactMade, Event,
    FollowUpRequest, FollowUpResponse, Professional, ReferentAssigned, Role as ActorRole,
};
use journey_proto::EventType;
use serde::Deserialize;
use std::{fmt::Write, time::Duration};
use tonic::{Code, Status};

/// How long an action's answer waits for the coordination view to fold its event.
const READ_YOUR_WRITES: Duration = Duration::from_secs(3);

/// The longest note or reason a form may carry.
const MAX_TEXT: usize = 500;

/// The referent roles a coordinator may assign, as the form names them.
const REFERENT_ROLES: &[(&str, ActorRole)] = &[
    ("gp", ActorRole::Gp),
    ("home_nurse", ActorRole::HomeNurse),
    ("pharmacist", ActorRole::Pharmacist),
    ("liaison_nurse", ActorRole::LiaisonNurse),
    ("had_coordinator", ActorRole::HadCoordinator),
    ("hospital_physician", ActorRole::HospitalPhysician),
    ("specialist", ActorRole::Specialist),
    ("physiotherapist", ActorRole::Physiotherapist),
    ("coordinator", ActorRole::Coordinator),
];

/// The contact channels, as the form names them.
const CHANNELS: &[(&str, ContactChannel)] = &[
    ("phone", ContactChannel::Phone),
    ("visit", ContactChannel::Visit),
    ("teleconsultation", ContactChannel::Teleconsultation),
];

/// An action's form: `action` says which, the other fields are the action's own.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ActionForm {
    csrf: String,
    pub(super) action: String,
    channel: String,
    pub(super) note: String,
    alert_id: String,
    resolution: String,
    role: String,
    name: String,
    professional_id: String,
    appointment_id: String,
    outcome: String,
    pub(super) reason: String,
    // Discharge planning (`planning_actions.rs`).
    pub(super) encounter_id: String,
    pub(super) item: String,
    pub(super) done: String,
    pub(super) detail: String,
    pub(super) expected: String,
    pub(super) reason_age: String,
    pub(super) reason_chronic: String,
    pub(super) reason_alone: String,
    pub(super) reason_recent: String,
    pub(super) reason_other: String,
}

impl ActionForm {
    /// A planning action's form on stay `E1`, for tests.
    #[cfg(test)]
    pub(super) fn planning(action: &str) -> ActionForm {
        ActionForm {
            action: action.into(),
            encounter_id: "E1".into(),
            ..Default::default()
        }
    }

    /// A complex-discharge reason's check box ("" when not ticked).
    pub(super) fn reason_box(&self, name: &str) -> &str {
        match name {
            "reason_age" => &self.reason_age,
            "reason_chronic" => &self.reason_chronic,
            "reason_alone" => &self.reason_alone,
            "reason_recent" => &self.reason_recent,
            "reason_other" => &self.reason_other,
            _ => "",
        }
    }
}

/// `POST /patients/{id}/actions`.
pub(super) async fn act(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    parts: Parts,
    Form(f): Form<ActionForm>,
) -> Response {
    let lang = Lang::of_request(&parts.uri, &parts.headers);
    let Some(caller) = parts.extensions.get::<Principal>() else {
        let s = errors::action_without_person();
        return refused(lang, None, StatusCode::FORBIDDEN, s.message());
    };
    let call = format!("dashboard/action/{}", call_name(&f.action));
    let csrf = parts.extensions.get::<Csrf>();
    let (outcome, hidden) = if !from_this_site(&parts) || !csrf.is_some_and(|c| c.matches(&f.csrf))
    {
        (Err(errors::form_not_from_this_page()), false)
    } else {
        match decide_and_append(&d, caller, &id, &f).await {
            Ok(position) => (Ok(position), false),
            Err(Refusal::Hidden(s)) => (Err(s), true),
            Err(Refusal::Other(s)) => (Err(s), false),
        }
    };
    let outcome = d
        .coordination
        .audit(Some(caller), &call, &id, "", detail(&f), outcome)
        .await;
    match outcome {
        Ok(position) => {
            // The page says whether the view has caught up (`recorded_notice`).
            wait_for_view(&d, position).await;
            if super::planning_actions::is_planning(&f.action) {
                if let Some(planning) = &d.planning {
                    wait_for(planning.watch(), position, "discharge-planning").await;
                }
            }
            Redirect::to(&format!(
                "/patients/{}?lang={}&recorded={position}",
                enc(&id),
                lang.code()
            ))
            .into_response()
        }
        // Outside the caller's territory, withheld by consent, or unknown: the page of an
        // unknown patient, as the patient page answers.
        Err(_) if hidden => not_found_page(lang, Some(caller), &id),
        Err(s) => match s.code() {
            Code::InvalidArgument => bad_request(lang, Some(caller), s.message()),
            Code::PermissionDenied => {
                refused(lang, Some(caller), StatusCode::FORBIDDEN, s.message())
            }
            Code::Unavailable => super::unavailable(lang, Some(caller), s.message()),
            Code::Internal | Code::Unknown | Code::DataLoss => {
                super::failure::page(lang, Some(caller), &s.message())
            }
            _ => refused(lang, Some(caller), StatusCode::CONFLICT, s.message()),
        },
    }
}

/// Why an action was not recorded: the patient is not one the caller's page shows (answered as
/// an unknown patient), or anything else (answered with its reason).
enum Refusal {
    Hidden(Status),
    Other(Status),
}

/// The access log's name of an action (a form's unknown action is named as such, not echoed).
fn call_name(action: &str) -> &'static str {
    if let Some(name) = super::planning_actions::call_name(action) {
        return name;
    }
    match action {
        "contact" => "contact",
        "acknowledge" => "acknowledge",
        "resolve" => "resolve",
        "referent" => "referent",
        "appointment" => "appointment",
        _ => "unknown",
    }
}

/// What the access log keeps of an action: the ids it names, never the note.
fn detail(f: &ActionForm) -> String {
    let mut d = String::new();
    for (k, v) in [
        ("alert", &f.alert_id),
        ("appointment", &f.appointment_id),
        ("outcome", &f.outcome),
        ("channel", &f.channel),
        ("role", &f.role),
        ("encounter", &f.encounter_id),
        ("item", &f.item),
        ("done", &f.done),
    ] {
        if !v.is_empty() {
            let _ = write!(d, "{}{k}={}", if d.is_empty() { "" } else { " " }, v);
        }
    }
    d.chars().take(200).collect()
}

/// A refusal page: the action was not recorded, and why.
fn refused(lang: Lang, caller: Option<&Principal>, status: StatusCode, reason: &str) -> Response {
    let words = (t(lang, "action_refused"), t(lang, "action_refused_text"));
    super::refusal(lang, caller, status, words, reason)
}

/// The patient-level decision (the coordination view's, as for the patient page), then the
/// event through the log's write rules; the position it was appended at.
async fn decide_and_append(
    d: &Dashboard,
    caller: &Principal,
    id: &str,
    f: &ActionForm,
) -> Result<u64, Refusal> {
    if super::planning_actions::is_planning(&f.action) {
        return decide_and_append_planning(d, caller, id, f).await;
    }
    let payload = payload(f, caller).map_err(Refusal::Other)?;
    let follow_up = d
        .coordination
        .follow_up_of(
            &FollowUpRequest {
                patient_id: id.to_string(),
                as_of: None,
            },
            Some(caller),
        )
        .await
        .map_err(|s| match s.code() {
            Code::PermissionDenied | Code::NotFound => Refusal::Hidden(s),
            _ => Refusal::Other(s),
        })?;
    named_in_follow_up(&payload, &follow_up).map_err(Refusal::Other)?;
    append(&d.log, caller, event(id, caller, payload))
        .await
        .map_err(Refusal::Other)
}

/// A discharge-planning action: the form, then the stay it names (the planning view's decision,
/// an open stay of the patient), then the event through the log's write rules.
async fn decide_and_append_planning(
    d: &Dashboard,
    caller: &Principal,
    id: &str,
    f: &ActionForm,
) -> Result<u64, Refusal> {
    use super::planning_actions as planning;
    let draft = planning::draft(f).map_err(Refusal::Other)?;
    let stay = planning::stay(d, caller, id, &f.encounter_id)
        .await
        .map_err(|s| match s.code() {
            Code::PermissionDenied | Code::NotFound => Refusal::Hidden(s),
            _ => Refusal::Other(s),
        })?;
    let payload = planning::payload(draft, &stay).map_err(Refusal::Other)?;
    append(&d.log, caller, event(id, caller, payload))
        .await
        .map_err(Refusal::Other)
}

/// An alert or appointment the form names must be the patient's (not another patient's id).
fn named_in_follow_up(payload: &Payload, f: &FollowUpResponse) -> Result<(), Status> {
    let alert = |id: &str| f.alerts.iter().any(|a| a.alert_id == id);
    let appointment = |id: &str| f.appointments.iter().any(|a| a.appointment_id == id);
    let known = match payload {
        Payload::AlertAcknowledged(a) => alert(&a.alert_id),
        Payload::AlertResolved(a) => alert(&a.alert_id),
        Payload::AppointmentCompleted(a) => appointment(&a.appointment_id),
        Payload::AppointmentMissed(a) => appointment(&a.appointment_id),
        _ => true,
    };
    if known {
        Ok(())
    } else {
        Err(errors::invalid(
            "form",
            "the alert or appointment is not one of this patient's: reload the patient's page and try again",
        ))
    }
}

/// A form text field, trimmed and bounded.
fn text(field: &str, value: &str, required: bool) -> Result<String, Status> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(errors::invalid(field, "is required"));
    }
    if v.chars().count() > MAX_TEXT {
        return Err(errors::invalid(
            field,
            &format!("at most {MAX_TEXT} characters"),
        ));
    }
    Ok(v.to_string())
}

/// The event payload the form asks for.
fn payload(f: &ActionForm, caller: &Principal) -> Result<Payload, Status> {
    Ok(match f.action.as_str() {
        "contact" => {
            let channel = CHANNELS
                .iter()
                .find(|(name, _)| *name == f.channel)
                .ok_or_else(|| errors::invalid("channel", "phone, visit or teleconsultation"))?
                .1;
            Payload::ContactMade(ContactMade {
                professional: Some(Professional {
                    id: caller.subject.clone(),
                    role: actor_role(caller) as i32,
                    name: caller.subject.clone(),
                    organisation: caller.organisation.clone(),
                    ..Default::default()
                }),
                channel: channel as i32,
                reason: text("note", &f.note, false)?,
            })
        }
        "acknowledge" => Payload::AlertAcknowledged(AlertAcknowledged {
            alert_id: text("alert_id", &f.alert_id, true)?,
        }),
        "resolve" => Payload::AlertResolved(AlertResolved {
            alert_id: text("alert_id", &f.alert_id, true)?,
            resolution: text("resolution", &f.resolution, false)?,
        }),
        "referent" => {
            let role = REFERENT_ROLES
                .iter()
                .find(|(name, _)| *name == f.role)
                .ok_or_else(|| {
                    let names: Vec<&str> = REFERENT_ROLES.iter().map(|r| r.0).collect();
                    errors::invalid("role", &format!("one of {}", names.join(", ")))
                })?
                .1;
            Payload::ReferentAssigned(ReferentAssigned {
                role: role as i32,
                professional: Some(Professional {
                    id: text("professional_id", &f.professional_id, true)?,
                    role: role as i32,
                    name: text("name", &f.name, true)?,
                    organisation: String::new(),
                    ..Default::default()
                }),
            })
        }
        "appointment" => {
            let appointment_id = text("appointment_id", &f.appointment_id, true)?;
            match f.outcome.as_str() {
                "completed" => {
                    Payload::AppointmentCompleted(AppointmentCompleted { appointment_id })
                }
                "missed" => Payload::AppointmentMissed(AppointmentMissed {
                    appointment_id,
                    reason: text("reason", &f.reason, false)?,
                }),
                _ => return Err(errors::invalid("outcome", "completed or missed")),
            }
        }
        _ => {
            return Err(errors::invalid(
                "action",
                "contact, acknowledge, resolve, referent or appointment",
            ))
        }
    })
}

/// The role the signed-in person acts in, as the events name it.
fn actor_role(caller: &Principal) -> ActorRole {
    match caller.role {
        Role::Coordinator => ActorRole::Coordinator,
        Role::LiaisonNurse => ActorRole::LiaisonNurse,
        _ => ActorRole::Administrative,
    }
}

/// The event of an action: now, by the signed-in person, from the dashboard.
fn event(patient_id: &str, caller: &Principal, payload: Payload) -> Event {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Event {
        event_id: uuid::Uuid::new_v4().to_string(),
        patient_id: patient_id.to_string(),
        occurred_at: Some(journey_proto::prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: 0,
        }),
        actor: Some(Actor {
            id: caller.subject.clone(),
            role: actor_role(caller) as i32,
            organisation: caller.organisation.clone(),
            display_name: caller.subject.clone(),
        }),
        source: "dashboard".into(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// Appends through the node's log as `caller`: the `EventLog` service's Append, so the role's
/// write rights and the journey rules apply as to any writer.
async fn append(log: &LogHandle, caller: &Principal, event: Event) -> Result<u64, Status> {
    let LogHandle::InProcess { service, .. } = log else {
        return Err(errors::actions_need_local_log(&log.describe()));
    };
    let mut request = tonic::Request::new(AppendRequest {
        events: vec![event],
        expected_versions: Default::default(),
    });
    request.extensions_mut().insert(caller.clone());
    let appended = service.append(request).await?.into_inner().appended;
    appended
        .last()
        .map(|a| a.position)
        .ok_or_else(|| errors::task_failed("dashboard action", "the log appended nothing"))
}

/// Waits, at most [`READ_YOUR_WRITES`], for the coordination view to fold `position`.
async fn wait_for_view(d: &Dashboard, position: u64) {
    wait_for(d.coordination.runner.watch(), position, "coordination").await;
}

/// Waits, at most [`READ_YOUR_WRITES`], for a view to fold `position`.
async fn wait_for(
    mut watch: tokio::sync::watch::Receiver<journey_projections::runtime::State>,
    position: u64,
    view: &str,
) {
    let folded = watch.wait_for(|s| s.checkpoint >= position);
    if tokio::time::timeout(READ_YOUR_WRITES, folded)
        .await
        .is_err()
    {
        tracing::warn!(
            position,
            view,
            "dashboard action: the view lags behind the log"
        );
    }
}

/// The notice above a patient's page after an action: recorded, and shown — or not shown yet
/// when the view lags behind the log.
pub(super) fn recorded_notice(b: &mut String, lang: Lang, recorded: u64, view_at: u64) {
    if recorded == 0 {
        return;
    }
    if view_at >= recorded {
        let _ = write!(
            b,
            "<p class=\"notice\" id=\"recorded\" role=\"status\">{}</p>",
            t(lang, "action_recorded")
        );
    } else {
        let _ = write!(
            b,
            "<p class=\"notice\" id=\"lagging\" role=\"status\">{}</p>",
            t(lang, "action_lagging")
        );
    }
}

/// The action forms of a patient's page, each carrying the session's CSRF token: those whose
/// event the caller's role may append (`role`; every form without authentication).
pub(super) fn forms(
    b: &mut String,
    lang: Lang,
    id: &str,
    csrf: &Csrf,
    f: &FollowUpResponse,
    role: Option<Role>,
) {
    let may = |t: EventType| role.is_none_or(|r| crate::write_policy::may_append(r, t));
    let open = |action: &str, form_id: &str| {
        format!(
            "<form method=\"post\" action=\"/patients/{}/actions?lang={}\" id=\"{form_id}\" class=\"action\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">",
            enc(id),
            lang.code(),
            csrf.token(),
        )
    };
    let _ = write!(b, "<h2>{}</h2><div id=\"actions\">", t(lang, "act"));
    if may(EventType::ContactMade) {
        contact_form(b, lang, &open("contact", "contact-form"));
    }
    if may(EventType::AlertResolved) {
        alert_forms(b, lang, f, &open);
    }
    if may(EventType::AppointmentCompleted) {
        appointment_forms(b, lang, f, &open);
    }
    if may(EventType::ReferentAssigned) {
        referent_form(b, lang, &open("referent", "referent-form"));
    }
    b.push_str("</div>");
}

/// A contact's form (`open`: the form's opening tags).
fn contact_form(b: &mut String, lang: Lang, open: &str) {
    let _ = write!(
        b,
        "{}<fieldset><legend>{}</legend>{}<label>",
        open,
        t(lang, "contact_made"),
        select(
            t(lang, "channel"),
            "channel",
            CHANNELS.iter().map(|c| (c.0, channel_label(lang, c.0)))
        ),
    );
    let _ = write!(
        b,
        "{}<textarea name=\"note\" maxlength=\"{MAX_TEXT}\" rows=\"2\"></textarea></label>\
         <button type=\"submit\">{}</button></fieldset></form>",
        t(lang, "note"),
        t(lang, "record"),
    );
}

/// A form per alert not resolved yet: acknowledge it (when not yet), resolve it.
fn alert_forms(
    b: &mut String,
    lang: Lang,
    f: &FollowUpResponse,
    open: &dyn Fn(&str, &str) -> String,
) {
    for a in f.alerts.iter().filter(|a| !a.resolved) {
        let _ = write!(
            b,
            "<fieldset data-alert=\"{aid}\"><legend>{} · {}</legend>",
            esc(&super::alert_words::reason(lang, &a.rule, &a.reason)),
            super::when(lang, a.raised_at.as_ref()),
            aid = esc(&a.alert_id),
        );
        if !a.acknowledged {
            let _ = write!(
                b,
                "{}<input type=\"hidden\" name=\"alert_id\" value=\"{}\"><button type=\"submit\">{}</button></form>",
                open("acknowledge", &format!("acknowledge-{}", esc(&a.alert_id))),
                esc(&a.alert_id),
                t(lang, "acknowledge"),
            );
        }
        let _ = write!(
            b,
            "{}<input type=\"hidden\" name=\"alert_id\" value=\"{}\"><label>{}<input name=\"resolution\" maxlength=\"{MAX_TEXT}\"></label>\
             <button type=\"submit\">{}</button></form></fieldset>",
            open("resolve", &format!("resolve-{}", esc(&a.alert_id))),
            esc(&a.alert_id),
            t(lang, "resolution"),
            t(lang, "resolve"),
        );
    }
}

/// Two forms per appointment not done yet: completed, missed.
fn appointment_forms(
    b: &mut String,
    lang: Lang,
    f: &FollowUpResponse,
    open: &dyn Fn(&str, &str) -> String,
) {
    for a in f
        .appointments
        .iter()
        .filter(|a| matches!(a.state.as_str(), "scheduled" | "overdue"))
    {
        let _ = write!(
            b,
            "<fieldset data-appointment=\"{aid}\"><legend>{} · {}</legend>\
             {}<input type=\"hidden\" name=\"appointment_id\" value=\"{aid}\"><input type=\"hidden\" name=\"outcome\" value=\"completed\">\
             <button type=\"submit\">{}</button></form>\
             {}<input type=\"hidden\" name=\"appointment_id\" value=\"{aid}\"><input type=\"hidden\" name=\"outcome\" value=\"missed\">\
             <label>{}<input name=\"reason\" maxlength=\"{MAX_TEXT}\"></label><button type=\"submit\">{}</button></form></fieldset>",
            esc(&a.kind),
            super::when(lang, a.due_at.as_ref()),
            open("appointment", &format!("completed-{}", esc(&a.appointment_id))),
            t(lang, "appointment_completed"),
            open("appointment", &format!("missed-{}", esc(&a.appointment_id))),
            t(lang, "reason"),
            t(lang, "appointment_missed"),
            aid = esc(&a.appointment_id),
        );
    }
}

/// A referent's form (`open`: the form's opening tags).
fn referent_form(b: &mut String, lang: Lang, open: &str) {
    let _ = write!(
        b,
        "{}<fieldset><legend>{}</legend>{}<label>",
        open,
        t(lang, "assign_referent"),
        select(
            t(lang, "referent_role"),
            "role",
            REFERENT_ROLES.iter().map(|r| (r.0, role_label(lang, r.0)))
        ),
    );
    let _ = write!(
        b,
        "{}<input name=\"name\" required maxlength=\"{MAX_TEXT}\"></label>\
         <label>{}<input name=\"professional_id\" required maxlength=\"{MAX_TEXT}\"></label>\
         <button type=\"submit\">{}</button></fieldset></form>",
        t(lang, "referent_name"),
        t(lang, "professional_id"),
        t(lang, "assign"),
    );
}

/// A labelled drop-down list of `(value, words)`.
fn select<'a>(label: &str, name: &str, options: impl Iterator<Item = (&'a str, String)>) -> String {
    let mut s = format!("<label>{label}<select name=\"{name}\">");
    for (value, words) in options {
        let _ = write!(s, "<option value=\"{value}\">{}</option>", esc(&words));
    }
    s.push_str("</select></label>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> Principal {
        Principal {
            subject: "nurse-1".into(),
            role: Role::Coordinator,
            organisation: "cpts-1".into(),
            territory: Some("T1".into()),
        }
    }

    #[test]
    fn a_form_becomes_the_event_it_asks_for() {
        let f = ActionForm {
            action: "contact".into(),
            channel: "phone".into(),
            note: "  called back  ".into(),
            ..Default::default()
        };
        let Payload::ContactMade(c) = payload(&f, &coordinator()).unwrap() else {
            panic!("a contact")
        };
        assert_eq!(c.channel, ContactChannel::Phone as i32);
        assert_eq!(c.reason, "called back");
        assert_eq!(c.professional.unwrap().organisation, "cpts-1");
        let e = event(
            "P1",
            &coordinator(),
            Payload::AlertAcknowledged(Default::default()),
        );
        let actor = e.actor.unwrap();
        assert_eq!(
            (actor.id.as_str(), actor.role, actor.organisation.as_str()),
            ("nurse-1", ActorRole::Coordinator as i32, "cpts-1")
        );
    }

    #[test]
    fn a_bad_form_is_refused_with_its_field() {
        for (f, field) in [
            (
                ActionForm {
                    action: "dance".into(),
                    ..Default::default()
                },
                "action",
            ),
            (
                ActionForm {
                    action: "contact".into(),
                    channel: "fax".into(),
                    ..Default::default()
                },
                "channel",
            ),
            (
                ActionForm {
                    action: "acknowledge".into(),
                    ..Default::default()
                },
                "alert_id",
            ),
            (
                ActionForm {
                    action: "referent".into(),
                    role: "gp".into(),
                    name: "Dr A".into(),
                    ..Default::default()
                },
                "professional_id",
            ),
            (
                ActionForm {
                    action: "appointment".into(),
                    appointment_id: "A1".into(),
                    outcome: "maybe".into(),
                    ..Default::default()
                },
                "outcome",
            ),
            (
                ActionForm {
                    action: "contact".into(),
                    channel: "phone".into(),
                    note: "x".repeat(MAX_TEXT + 1),
                    ..Default::default()
                },
                "note",
            ),
        ] {
            let s = payload(&f, &coordinator()).unwrap_err();
            assert_eq!(s.code(), Code::InvalidArgument);
            assert!(s.message().starts_with(field), "{field}: {}", s.message());
        }
    }
}
