//! Actions in the dashboard (issue 18, point 2) through HTTP against a secure `journey up`: a
//! signed-in coordinator records a contact, acknowledges and resolves an alert, assigns a
//! referent and records an appointment's outcome from the patient page; each is one event in the
//! log with the coordinator as its actor, the page shows it on the redirect, and the access log
//! keeps the action with its patient. A form without the session's CSRF token, with another's,
//! or from another site is refused; a patient of another territory is refused (answered as an
//! unknown patient) and the refusal is in `Audit.Accesses`; a server without authentication
//! offers no action and refuses one. Then in a real headless Chromium,
//! driven over the DevTools protocol: sign in, record a contact, see the patient leave the
//! overdue list, acknowledge an alert; screenshots in French and English at desktop and phone
//! widths under `target/screenshots/`.
use journey_proto::v1::{
    self, audit_client::AuditClient, event::Payload, AccessesRequest, Event, HeadRequest,
};
use journey_tests::cdp::shots;
use journey_tests::client::{channel, token};
use journey_tests::dashboard::{
    act, csrf_of, get, head, last_event, load, secure_node, stay, COORDINATOR, KEYS, SOUTH,
};
use journey_tests::*;
use std::path::Path;

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
const DAY: i64 = 86_400;

/// An alert raised `days_ago` and an appointment due two days ago, on top of a stay.
fn alert_and_appointment(patient: &str, days_ago: i64) -> Vec<Event> {
    vec![
        event(
            patient,
            ts(days_ago * DAY),
            Payload::AlertRaised(v1::AlertRaised {
                alert_id: format!("AL-{patient}"),
                severity: v1::Severity::Moderate as i32,
                reason: "weight gain".into(),
                ..Default::default()
            }),
        ),
        event(
            patient,
            ts(9 * DAY),
            Payload::AppointmentScheduled(v1::AppointmentScheduled {
                appointment_id: format!("AP-{patient}"),
                kind: "J+7 GP".into(),
                due_at: Some(ts(2 * DAY)),
                encounter_id: format!("E-{patient}"),
                ..Default::default()
            }),
        ),
    ]
}

/// A secure node with the keys above, the scenario appended and projected: P1 in T1 with an
/// alert and an overdue appointment, P2 in T2, PB in T1 with only its first contact overdue.
async fn node(dir: &Path) -> (Server, String) {
    let (server, admin) = secure_node(dir, KEYS, &["--no-reactor"]);
    let mut events = stay("P1", ("F1", "T1"), "cardio", 10);
    events.extend(alert_and_appointment("P1", 5));
    events.extend(stay("P2", ("F2", "T2"), "cardio", 10));
    events.extend(stay("PB", ("F1", "T1"), "cardio", 10));
    load(&server, &admin, events).await;
    (server, admin)
}

async fn accesses(grpc: &str, admin: &str, patient: &str) -> Vec<v1::AccessRecord> {
    AuditClient::with_interceptor(channel(grpc).await.unwrap(), token(Some(admin)).unwrap())
        .accesses(AccessesRequest {
            patient_id: patient.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_acts_from_the_patient_page() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path()).await;
    let (base, grpc) = (&server.http, &server.grpc);
    let (_, cookie) = dashboard_sign_in(base, COORDINATOR).await;
    let cookie = cookie.expect("a session");
    let page = get(base, "/patients/P1?lang=en", &cookie).await;
    assert_eq!(http_status(&page), 200, "{page}");
    for form in [
        "id=\"contact-form\"",
        "id=\"acknowledge-AL-P1\"",
        "id=\"resolve-AL-P1\"",
        "id=\"completed-AP-P1\"",
        "id=\"referent-form\"",
    ] {
        assert!(page.contains(form), "{form} missing: {page}");
    }
    let csrf = csrf_of(&page);
    // The worklist row (issue 18: 4): the alert's age in days, the first contact's due date and
    // how late it is, the alert to acknowledge.
    let row = |page: &str, patient: &str| {
        let start = page
            .find(&format!("data-patient-id=\"{patient}\""))
            .unwrap_or_else(|| panic!("{patient} not listed: {page}"));
        page[start..].split("</tr>").next().unwrap().to_string()
    };
    let p1 = row(&get(base, "/?lang=fr", &cookie).await, "P1");
    for words in [
        "(5 jours)",
        "1 à prendre en compte",
        "alerte à prendre en compte",
        "Premier contact",
        "en retard de",
    ] {
        assert!(p1.contains(words), "{words:?} not in {p1}");
    }

    // A contact by phone, with a note: one event, by the signed-in coordinator, shown at once.
    let r = act(
        base,
        &cookie,
        "P1",
        &format!("csrf={csrf}&action=contact&channel=phone&note=called+back%2C+feels+well"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let to = http_header(&r, "location").unwrap().to_string();
    assert!(to.starts_with("/patients/P1?lang=en&recorded="), "{to}");
    let e = last_event(grpc, &admin, "P1").await;
    let Some(Payload::ContactMade(c)) = &e.payload else {
        panic!("not a contact: {e:?}")
    };
    assert_eq!(c.channel, v1::ContactChannel::Phone as i32);
    assert_eq!(c.reason, "called back, feels well");
    let actor = e.actor.clone().unwrap();
    assert_eq!(
        (actor.id.as_str(), actor.role, actor.organisation.as_str()),
        ("nurse-1", v1::Role::Coordinator as i32, "cpts-1")
    );
    assert_eq!(e.source, "dashboard");
    let shown = get(base, &to, &cookie).await;
    assert!(shown.contains("id=\"recorded\""), "{shown}");
    assert!(!shown.contains("first contact overdue"), "{shown}");

    // Acknowledge, then resolve the alert; the follow-up's alert list follows each.
    let r = act(
        base,
        &cookie,
        "P1",
        &format!("csrf={csrf}&action=acknowledge&alert_id=AL-P1"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let shown = get(base, http_header(&r, "location").unwrap(), &cookie).await;
    assert!(shown.contains("data-state=\"acknowledged\""), "{shown}");
    let p1 = row(&get(base, "/?lang=fr", &cookie).await, "P1");
    assert!(
        p1.contains("alerte prise en compte, à clore") && p1.contains("toutes prises en compte"),
        "{p1}"
    );
    assert!(!shown.contains("id=\"acknowledge-AL-P1\""), "{shown}");
    let r = act(
        base,
        &cookie,
        "P1",
        &format!(
            "csrf={csrf}&action=resolve&alert_id=AL-P1&resolution=diuretic+adjusted+by+the+GP"
        ),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let shown = get(base, http_header(&r, "location").unwrap(), &cookie).await;
    assert!(shown.contains("data-state=\"resolved\""), "{shown}");
    let Some(Payload::AlertResolved(a)) = last_event(grpc, &admin, "P1").await.payload else {
        panic!("not a resolution")
    };
    assert_eq!(a.resolution, "diuretic adjusted by the GP");

    // The appointment kept, then a referent.
    let r = act(
        base,
        &cookie,
        "P1",
        &format!("csrf={csrf}&action=appointment&appointment_id=AP-P1&outcome=completed"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let shown = get(base, http_header(&r, "location").unwrap(), &cookie).await;
    assert!(!shown.contains("id=\"completed-AP-P1\""), "{shown}");
    let r = act(
        base,
        &cookie,
        "P1",
        &format!("csrf={csrf}&action=referent&role=home_nurse&name=Claire+Martin&professional_id=RPPS-10101"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let shown = get(base, http_header(&r, "location").unwrap(), &cookie).await;
    assert!(shown.contains("Claire Martin"), "{shown}");
    // On the worklist row: the referent, the alert closed, the contact made.
    let p1 = row(&get(base, "/?lang=fr", &cookie).await, "P1");
    assert!(
        p1.contains("infirmier(e) à domicile\u{a0}: Claire Martin"),
        "{p1}"
    );
    assert!(
        !p1.contains("alerte") && !p1.contains("en retard de"),
        "{p1}"
    );

    // Each action is in the access log under the patient.
    let calls: Vec<(String, String)> = accesses(grpc, &admin, "P1")
        .await
        .into_iter()
        .map(|a| (a.call, a.outcome))
        .collect();
    for call in [
        "contact",
        "acknowledge",
        "resolve",
        "appointment",
        "referent",
    ] {
        let call = format!("dashboard/action/{call}");
        assert!(
            calls.iter().any(|(c, o)| *c == call && o == "ok"),
            "{call} not in {calls:?}"
        );
    }

    // A bad form is refused with its reason, and nothing is appended.
    let before = head(grpc, &admin).await;
    let r = act(
        base,
        &cookie,
        "P1",
        &format!("csrf={csrf}&action=contact&channel=fax"),
    )
    .await;
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(r.contains("phone, visit or teleconsultation"), "{r}");
    let r = act(
        base,
        &cookie,
        "P1",
        &format!("csrf={csrf}&action=acknowledge&alert_id=AL-P2"),
    )
    .await;
    assert_eq!(http_status(&r), 400, "another patient's alert: {r}");
    assert_eq!(head(grpc, &admin).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_forms_and_other_territories_are_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path()).await;
    let (base, grpc) = (&server.http, &server.grpc);
    let (_, cookie) = dashboard_sign_in(base, COORDINATOR).await;
    let cookie = cookie.expect("a session");
    let csrf = csrf_of(&get(base, "/patients/P1", &cookie).await);
    let before = head(grpc, &admin).await;

    // Without the session's token, with another session's, or sent from another site.
    let (_, other) = dashboard_sign_in(base, COORDINATOR).await;
    let others = csrf_of(&get(base, "/patients/P1", &other.unwrap()).await);
    assert_ne!(others, csrf, "each session has its own token");
    for fields in [
        "action=contact&channel=phone".to_string(),
        format!("csrf={others}&action=contact&channel=phone"),
        "csrf=0000&action=contact&channel=phone".to_string(),
    ] {
        let r = act(base, &cookie, "P1", &fields).await;
        assert_eq!(http_status(&r), 403, "{fields}: {r}");
        assert!(r.contains("Nothing was recorded"), "{r}");
    }
    let path = "/patients/P1/actions?lang=en";
    let evil = format!("{cookie}{FORM}Origin: https://evil.example\r\n");
    let r = http_exchange(
        base,
        "POST",
        path,
        &evil,
        &format!("csrf={csrf}&action=contact&channel=phone"),
    )
    .await;
    assert_eq!(http_status(&r), 403, "{r}");

    // A patient of another territory: the page of an unknown patient, nothing appended.
    let r = act(
        base,
        &cookie,
        "P2",
        &format!("csrf={csrf}&action=contact&channel=phone"),
    )
    .await;
    assert_eq!(http_status(&r), 404, "{r}");
    assert!(r.contains("id=\"not-found\""), "{r}");
    assert_eq!(
        head(grpc, &admin).await,
        before,
        "a refused action appends nothing"
    );

    // Refused, and recorded with the patient.
    let refused: Vec<v1::AccessRecord> = accesses(grpc, &admin, "P2")
        .await
        .into_iter()
        .filter(|a| a.call == "dashboard/action/contact")
        .collect();
    assert!(
        refused
            .iter()
            .any(|a| a.subject == "nurse-1" && a.outcome != "ok"),
        "{refused:?}"
    );
    let forged = accesses(grpc, &admin, "P1")
        .await
        .into_iter()
        .filter(|a| a.call == "dashboard/action/contact" && a.outcome != "ok")
        .map(|a| a.calls.max(1))
        .sum::<u64>();
    assert!(forged >= 4, "the forged forms are recorded: {forged}");

    // The coordinator of the other territory may act on P2 (its own) but not on P1.
    let (_, south) = dashboard_sign_in(base, SOUTH).await;
    let south = south.unwrap();
    let south_csrf = csrf_of(&get(base, "/patients/P2", &south).await);
    let r = act(
        base,
        &south,
        "P1",
        &format!("csrf={south_csrf}&action=contact&channel=visit"),
    )
    .await;
    assert_eq!(http_status(&r), 404, "{r}");
    let r = act(
        base,
        &south,
        "P2",
        &format!("csrf={south_csrf}&action=contact&channel=visit"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    assert_eq!(head(grpc, &admin).await, before + 1);

    // The gRPC Append stays closed to a coordinator: the dashboard decides its patients.
    let mut log = client::connect(grpc, Some(COORDINATOR)).await.unwrap();
    let contact = event(
        "P2",
        ts(60),
        Payload::ContactMade(v1::ContactMade {
            channel: v1::ContactChannel::Phone as i32,
            ..Default::default()
        }),
    );
    let e = log.append(batch(vec![contact])).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
}

#[tokio::test]
async fn without_authentication_nobody_acts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut log = server.client().await;
    let head = append_batch(&mut log, stay("P1", ("F1", "T1"), "cardio", 10)).await;
    wait_projected(&server.grpc, head).await;
    let page = http_get(&server.http, "/patients/P1").await;
    assert!(
        !page.contains("id=\"actions\""),
        "no forms without a signed-in person: {page}"
    );
    let r = act(&server.http, "", "P1", "action=contact&channel=phone").await;
    assert_eq!(http_status(&r), 403, "{r}");
    assert!(r.contains("signed-in person"), "{r}");
    assert_eq!(
        log.head(HeadRequest {})
            .await
            .unwrap()
            .into_inner()
            .position,
        head
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_recorded_contact_takes_the_patient_off_the_overdue_list() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _admin) = node(dir.path()).await;
    let base = &server.http;
    let mut browser = cdp::Browser::start(&dir.path().join("chromium"));
    let mut tab = browser.tab().await;

    // Sign in through the form, as a person would.
    tab.sign_in(base, COORDINATOR).await;
    tab.wait_for("document.querySelector('#worklist') !== null")
        .await;
    let overdue = format!("{base}/?overdue=on&lang=fr");
    tab.goto(&overdue).await;
    assert!(tab.rows().await.contains(&"PB".to_string()));

    // Record the contact from the patient's page.
    tab.goto(&format!("{base}/patients/PB?lang=fr")).await;
    shots(&mut tab, "dashboard-patient-fr").await;
    tab.eval(
        "document.querySelector('#contact-form select').value = 'phone'; \
         document.querySelector('#contact-form textarea').value = 'Appel : va bien'; \
         document.querySelector('#contact-form button').click(); true",
    )
    .await;
    tab.wait_for("document.querySelector('#recorded') !== null")
        .await;
    let page = tab.html().await;
    assert!(page.contains("C'est enregistré"), "{page}");
    // The timeline reads as sentences (issue 18: 3), the event itself behind "détails".
    assert!(
        page.contains("Contact par téléphone : « Appel : va bien »"),
        "{page}"
    );
    assert!(
        page.contains("Lettre de liaison envoyée par MSSanté, 11/11 éléments"),
        "{page}"
    );
    shots(&mut tab, "dashboard-action-recorded-fr").await;

    // Off the overdue list.
    tab.goto(&overdue).await;
    assert!(!tab.rows().await.contains(&"PB".to_string()));
    shots(&mut tab, "dashboard-worklist-fr").await;
    tab.goto(&format!("{base}/?overdue=on&lang=en")).await;
    shots(&mut tab, "dashboard-worklist-en").await;
    tab.goto(&format!("{base}/patients/P1?lang=en")).await;
    shots(&mut tab, "dashboard-patient-en").await;

    // Acknowledge P1's alert with its button.
    tab.eval("document.querySelector('#acknowledge-AL-P1 button').click(); true")
        .await;
    tab.wait_for("document.querySelector('#recorded') !== null")
        .await;
    let page = tab.html().await;
    assert!(page.contains("data-state=\"acknowledged\""), "{page}");
    assert!(
        page.contains("Alert acknowledged"),
        "the timeline says it: {page}"
    );
}
