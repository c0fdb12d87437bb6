//! Discharge planning (issue 18, point 1) through HTTP against a secure `journey up`: the
//! in-hospital worklist lists who is expected to leave within 48 hours with what is not ready, by
//! facility and unit (filters by names as shown); the patient page of a patient still in hospital
//! shows the checklist, the expected discharge and the complex-discharge reasons the view
//! suggests (75 or older, a recent stay); a coordinator ticks and unticks an item and sets the
//! expected discharge, each one event with her as actor, seen on the page at once and recorded in
//! the access log; a coordinator of another territory is refused (an unknown patient to her),
//! nothing is appended and the refusal is in `Audit.Accesses`. The post-discharge worklist says
//! whether the plan was complete when the patient left, and the indicators page counts it. Then in
//! Chromium: tick an item with its button and see it ticked; screenshots in French and English at
//! desktop and phone widths under `target/screenshots/`.
use journey_projections::planning::checklist::ITEMS;
use journey_proto::v1::{self, event::Payload, ChecklistItem, Event};
use journey_tests::cdp::{self, shots};
use journey_tests::dashboard::{
    act, csrf_of, drop_coordination_tables, facility, get, head, last_event, load, secure_node,
    session, COORDINATOR, KEYS, SOUTH,
};
use journey_tests::*;
use std::path::Path;

/// The API key of nurse-L, liaison nurse at facility F1.
const LIAISON: &str = "key-0123456789-liais";

const H: i64 = 3600;
const DAY: i64 = 86_400;

fn registered(patient: &str, family: &str, birth_date: &str) -> Event {
    event(
        patient,
        ts(400 * DAY),
        Payload::PatientRegistered(v1::PatientRegistered {
            family_name: family.into(),
            given_name: "Anne".into(),
            birth_date: birth_date.into(),
            sex: v1::Sex::Female as i32,
            ..Default::default()
        }),
    )
}

fn admission(patient: &str, enc: &str, fac: &str, territory: &str, secs_ago: i64) -> Event {
    event(
        patient,
        ts(secs_ago),
        Payload::Admitted(v1::Admitted {
            encounter_id: enc.into(),
            facility: Some(facility(fac, territory)),
            unit: "Cardiologie".into(),
            setting: v1::Setting::Inpatient as i32,
            admit_type: v1::AdmitType::Emergency as i32,
            ..Default::default()
        }),
    )
}

fn expected(patient: &str, enc: &str, in_secs: i64) -> Event {
    event(
        patient,
        ts(60),
        Payload::DischargeExpected(v1::DischargeExpected {
            encounter_id: enc.into(),
            expected_at: Some(ts(-in_secs)),
            reason: "staff meeting".into(),
        }),
    )
}

fn ticked(patient: &str, enc: &str, item: ChecklistItem, secs_ago: i64) -> Event {
    event(
        patient,
        ts(secs_ago),
        Payload::ChecklistItemSet(v1::ChecklistItemSet {
            encounter_id: enc.into(),
            item: item as i32,
            done: true,
            ..Default::default()
        }),
    )
}

/// A stay ended `days_ago`, with the first `done` checklist items ticked before the discharge.
fn ended_stay(patient: &str, fac: &str, territory: &str, days_ago: i64, done: usize) -> Vec<Event> {
    let enc = format!("E-{patient}");
    let mut v = vec![
        registered(patient, patient, "1960-01-01"),
        admission(patient, &enc, fac, territory, (days_ago + 4) * DAY),
    ];
    for item in &ITEMS[..done] {
        v.push(ticked(patient, &enc, *item, (days_ago + 1) * DAY));
    }
    v.push(discharged(patient, &enc, days_ago * DAY));
    v
}

/// PH: in hospital at F1 (T1) for three days, 86 years old, out of another stay two months ago,
/// expected to leave in 20 hours, only the social evaluation done. PL: in F1, expected in five
/// days. P2: in F2 (T2), expected in ten hours. PC and PI: left ten days ago, their plan complete
/// and incomplete.
async fn node(dir: &Path, extra: &[&str]) -> (Server, String) {
    let mut flags = vec!["--no-reactor"];
    flags.extend(extra);
    let keys = format!("{KEYS}{LIAISON} liaison_nurse nurse-L F1\n");
    let (server, admin) = secure_node(dir, &keys, &flags);
    let mut events = vec![
        registered("PH", "Martin", "1940-05-01"),
        admission("PH", "E-PH-0", "F1", "T1", 70 * DAY),
        discharged("PH", "E-PH-0", 60 * DAY),
        admission("PH", "E-PH", "F1", "T1", 3 * DAY),
        ticked("PH", "E-PH", ChecklistItem::SocialEvaluation, 2 * DAY),
        expected("PH", "E-PH", 20 * H),
        registered("PL", "Petit", "1980-02-02"),
        admission("PL", "E-PL", "F1", "T1", DAY),
        expected("PL", "E-PL", 5 * DAY),
        registered("P2", "Sud", "1950-03-03"),
        admission("P2", "E-P2", "F2", "T2", 2 * DAY),
        expected("P2", "E-P2", 10 * H),
    ];
    events.extend(ended_stay("PC", "F1", "T1", 10, 10));
    events.extend(ended_stay("PI", "F1", "T1", 10, 4));
    // PR: left 20 days ago with three items done, back 12 days ago, left again a day later.
    events.extend(ended_stay("PR", "F1", "T1", 20, 3));
    events.push(admission("PR", "E-PR-2", "F1", "T1", 12 * DAY));
    events.push(discharged("PR", "E-PR-2", 11 * DAY));
    load(&server, &admin, events).await;
    (server, admin)
}

/// The row of `patient` in a page's table.
fn row<'a>(page: &'a str, patient: &str) -> &'a str {
    let start = page
        .find(&format!("data-patient-id=\"{patient}\""))
        .unwrap_or_else(|| panic!("{patient} not listed: {page}"));
    let end = page[start..].find("</tr>").unwrap();
    &page[start..start + end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_plan_discharges_from_the_admission_on() {
    plan_discharges(&[]).await;
}

/// The same with the read models in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinators_plan_discharges_on_postgresql() {
    let pg = PgDb::create();
    plan_discharges(&["--database-url", &pg.url]).await;
}

async fn plan_discharges(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path(), extra).await;
    let (base, grpc) = (&server.http, &server.grpc);
    let cookie = session(base, COORDINATOR).await;

    // The in-hospital worklist: PH (in 20 h, not ready), not PL (in five days) nor P2 (T2).
    let list = get(base, "/planning?lang=en", &cookie).await;
    assert_eq!(http_status(&list), 200, "{list}");
    let ph = row(&list, "PH");
    assert!(ph.contains("data-ready=\"false\""), "{ph}");
    assert!(
        ph.contains("MARTIN Anne") && ph.contains("born 1 May 1940"),
        "{ph}"
    );
    assert!(ph.contains("1/10 done"), "{ph}");
    assert!(
        ph.contains("Functional evaluation") && ph.contains("Return kit given"),
        "{ph}"
    );
    assert!(!ph.contains("Social evaluation"), "done, not missing: {ph}");
    assert!(
        ph.contains("leaves in 19 h and is not ready")
            || ph.contains("leaves in 20 h and is not ready"),
        "{ph}"
    );
    assert!(
        ph.contains("75 or older") && ph.contains("a stay in the last six months"),
        "{ph}"
    );
    assert!(list.contains("<h2>Hôpital F1 · Cardiologie</h2>"), "{list}");
    for absent in ["PL", "P2", "PC"] {
        assert!(
            !list.contains(&format!("data-patient-id=\"{absent}\"")),
            "{absent}: {list}"
        );
    }
    // Filters take the names shown, in any case, in part.
    let f1 = get(
        base,
        "/planning?lang=en&facility=h%C3%B4pital%20f1&unit=cardio",
        &cookie,
    )
    .await;
    assert!(f1.contains("data-patient-id=\"PH\""), "{f1}");
    let none = get(base, "/planning?lang=en&facility=F9", &cookie).await;
    assert!(none.contains("id=\"empty\""), "{none}");
    let typo = get(base, "/planning?lang=en&ward=x", &cookie).await;
    assert_eq!(http_status(&typo), 400, "{typo}");
    // In French.
    let fr = get(base, "/planning?lang=fr", &cookie).await;
    assert!(row(&fr, "PH").contains("Évaluation fonctionnelle"), "{fr}");
    assert!(row(&fr, "PH").contains("née le 01/05/1940"), "{fr}");

    // The patient page of a patient still in hospital.
    let page = get(base, "/patients/PH?lang=en", &cookie).await;
    assert_eq!(http_status(&page), 200, "{page}");
    assert!(page.contains("Discharge planning"), "{page}");
    assert!(
        page.contains("data-item=\"social_evaluation\" data-done=\"true\""),
        "{page}"
    );
    assert!(
        page.contains("data-item=\"functional_evaluation\" data-done=\"false\""),
        "{page}"
    );
    assert!(
        page.contains("id=\"tick-E-PH-functional_evaluation\""),
        "{page}"
    );
    let token = csrf_of(&page);

    // Tick the functional evaluation: one event, the coordinator its actor, seen on the page.
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=checklist&encounter_id=E-PH&item=functional_evaluation&done=true&detail=GIR+4"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let e = last_event(grpc, &admin, "PH").await;
    let Some(Payload::ChecklistItemSet(x)) = &e.payload else {
        panic!("a checklist item: {e:?}")
    };
    assert_eq!(
        (x.encounter_id.as_str(), x.item, x.done, x.detail.as_str()),
        (
            "E-PH",
            ChecklistItem::FunctionalEvaluation as i32,
            true,
            "GIR 4"
        )
    );
    assert_eq!(e.actor.as_ref().unwrap().id, "nurse-1");
    let location = http_header(&r, "location").unwrap().to_string();
    let page = get(base, &location, &cookie).await;
    assert!(page.contains("id=\"recorded\""), "{page}");
    assert!(
        page.contains("data-item=\"functional_evaluation\" data-done=\"true\""),
        "{page}"
    );
    assert!(page.contains("nurse-1") && page.contains("GIR 4"), "{page}");

    // Untick it again.
    let r = act(
        base,
        &cookie,
        "PH",
        &format!(
            "csrf={token}&action=checklist&encounter_id=E-PH&item=functional_evaluation&done=false"
        ),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let page = get(base, "/patients/PH?lang=en", &cookie).await;
    assert!(
        page.contains("data-item=\"functional_evaluation\" data-done=\"false\""),
        "{page}"
    );

    // Move the expected discharge to the day after tomorrow, 14:30 in Paris: off the 48-hour list.
    let day_after = (chrono::Utc::now() + chrono::Duration::days(3)).date_naive();
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=expected&encounter_id=E-PH&expected={day_after}T14%3A30&reason=waiting+for+SSIAD"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let e = last_event(grpc, &admin, "PH").await;
    let Some(Payload::DischargeExpected(x)) = &e.payload else {
        panic!("an expected discharge: {e:?}")
    };
    assert_eq!(x.reason, "waiting for SSIAD");
    // Read in the facility's time zone and shown back in it (planning_actions.rs's unit test
    // pins the conversion to Paris time).
    let utc = chrono::DateTime::from_timestamp(x.expected_at.unwrap().seconds, 0).unwrap();
    let off = (utc.naive_utc()
        - chrono::NaiveDateTime::parse_from_str(&format!("{day_after}T14:30"), "%Y-%m-%dT%H:%M")
            .unwrap())
    .num_hours();
    assert!(
        (-2..=-1).contains(&off),
        "Paris is one or two hours ahead of UTC: {utc}"
    );
    let page = get(base, "/patients/PH?lang=en", &cookie).await;
    assert!(
        page.contains(&format!("name=\"expected\" value=\"{day_after}T14:30\"")),
        "{page}"
    );
    let list = get(base, "/planning?lang=en", &cookie).await;
    assert!(!list.contains("data-patient-id=\"PH\""), "{list}");
    // A bad date is refused with its field, and nothing is appended.
    let before = head(grpc, &admin).await;
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=expected&encounter_id=E-PH&expected=tomorrow"),
    )
    .await;
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(http_body(&r).contains("expected"), "{r}");
    assert_eq!(head(grpc, &admin).await, before);

    // Flag the complex discharge: the reasons ticked, the suggestions left for what is not.
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=complex&encounter_id=E-PH&reason_alone=on&reason_age=on&note=daughter+abroad"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let e = last_event(grpc, &admin, "PH").await;
    let Some(Payload::ComplexDischargeFlagged(x)) = &e.payload else {
        panic!("a complex discharge: {e:?}")
    };
    assert_eq!(
        x.reasons,
        [
            v1::ComplexityReason::Age75OrOver as i32,
            v1::ComplexityReason::LivesAlone as i32
        ]
    );
    let page = get(base, "/patients/PH?lang=en", &cookie).await;
    let complexity = page.split("id=\"complexity\">").nth(1).unwrap();
    let complexity = complexity.split("</p>").next().unwrap();
    assert!(
        complexity.contains("Complex discharge: 75 or older, lives alone"),
        "{complexity}"
    );
    assert!(
        complexity.contains("Worth considering: a stay in the last six months"),
        "{complexity}"
    );
    let before = head(grpc, &admin).await;

    // A stay that ended keeps its plan as it was: refused, nothing appended.
    let r = act(
        base,
        &cookie,
        "PH",
        &format!(
            "csrf={token}&action=checklist&encounter_id=E-PH-0&item=letter_prepared&done=true"
        ),
    )
    .await;
    assert_eq!(http_status(&r), 409, "{r}");
    assert!(http_body(&r).contains("the stay has ended"), "{r}");
    // Another patient's stay is not this patient's.
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=checklist&encounter_id=E-PL&item=letter_prepared&done=true"),
    )
    .await;
    assert_eq!(http_status(&r), 400, "{r}");
    assert_eq!(head(grpc, &admin).await, before);

    // A coordinator of another territory: the patient is unknown to her, nothing appended, and
    // the refusal is recorded.
    let south = session(base, SOUTH).await;
    let south_page = get(base, "/patients/P2?lang=en", &south).await;
    let south_token = csrf_of(&south_page);
    let other = get(base, "/patients/PH?lang=en", &south).await;
    assert_eq!(http_status(&other), 404, "{other}");
    let r = act(
        base,
        &south,
        "PH",
        &format!(
            "csrf={south_token}&action=checklist&encounter_id=E-PH&item=letter_prepared&done=true"
        ),
    )
    .await;
    assert_eq!(http_status(&r), 404, "{r}");
    assert_eq!(head(grpc, &admin).await, before);
    let records = access_records(grpc, Some(&admin), of_patient("PH")).await;
    let who = who_called(&records);
    assert!(
        who.contains(&[
            "nurse-9".to_string(),
            "dashboard/action/checklist".to_string(),
            "permissiondenied".to_string()
        ]),
        "{who:?}"
    );
    assert!(
        who.contains(&[
            "nurse-1".to_string(),
            "dashboard/action/checklist".to_string(),
            "ok".to_string()
        ]),
        "{who:?}"
    );
    assert!(
        who.iter()
            .any(|w| w[0] == "nurse-1" && w[1] == "dashboard/planning-worklist"),
        "{who:?}"
    );

    // The post-discharge worklist: whether the plan was complete when the patient left.
    let worklist = get(base, "/?lang=en", &cookie).await;
    assert!(
        row(&worklist, "PC").contains("data-plan-complete=\"true\""),
        "{worklist}"
    );
    let pi = row(&worklist, "PI");
    assert!(
        pi.contains("data-plan-complete=\"false\"") && pi.contains("4/10"),
        "{pi}"
    );
    // The indicators over the last twelve weeks: one of five discharges had its checklist
    // complete (PC; not PI, PR twice, PH's earlier stay); of the four index stays with an
    // incomplete plan, one was readmitted within 30 days (PR's first).
    let ind = get(base, "/indicators?lang=en", &cookie).await;
    assert!(ind.contains("id=\"planning-indicators\""), "{ind}");
    let figure = |name: &str| {
        ind.split(&format!("data-indicator=\"{name}\""))
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap_or_else(|| panic!("{name}: {ind}"))
            .to_string()
    };
    assert!(figure("complete").contains("20 % (1/5)"), "{ind}");
    assert!(figure("readmitted-complete").contains("0 % (0/1)"), "{ind}");
    assert!(
        figure("readmitted-incomplete").contains("25 % (1/4)"),
        "{ind}"
    );

    // `journey rebuild planning` gives the same view.
    let page = get(base, "/patients/PH?lang=en", &cookie).await;
    let checklist = |page: &str| {
        page.split("<table class=\"checklist\"")
            .nth(1)
            .and_then(|t| t.split("</table>").next())
            .unwrap_or_else(|| panic!("no checklist: {page}"))
            .to_string()
    };
    let mut p = v1::projections_client::ProjectionsClient::with_interceptor(
        client::channel(grpc).await.unwrap(),
        client::token(Some(&admin)).unwrap(),
    );
    let mut stream = p
        .rebuild(v1::RebuildRequest {
            projection: "planning".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut done = false;
    while let Some(progress) = stream.message().await.unwrap() {
        done |= progress.done;
    }
    assert!(done, "the rebuild reports its end");
    let rebuilt = get(base, "/patients/PH?lang=en", &cookie).await;
    assert_eq!(checklist(&rebuilt), checklist(&page));
    let again = get(base, "/indicators?lang=en", &cookie).await;
    assert!(
        again.contains("25 % (1/4)") && again.contains("20 % (1/5)"),
        "{again}"
    );
}

/// A liaison nurse of F1 works on F1's stays: her worklist lists them (not F2's), she ticks a
/// checklist item and records a contact for one of them, each one event with her as actor in
/// the role of liaison nurse; another facility's patient is unknown to her (the page and the
/// action), nothing is appended and the refusal is recorded; the post-discharge worklist leads to
/// her worklist, and the indicators (the territory's readmission figures) are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_liaison_nurse_prepares_her_facilitys_discharges() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path(), &[]).await;
    let (base, grpc) = (&server.http, &server.grpc);
    let cookie = session(base, LIAISON).await;

    let home = get(base, "/?lang=en", &cookie).await;
    assert_eq!(http_status(&home), 303, "{home}");
    assert_eq!(http_header(&home, "location"), Some("/planning?lang=en"));
    let list = get(base, "/planning?lang=en", &cookie).await;
    assert_eq!(http_status(&list), 200, "{list}");
    assert!(list.contains("data-patient-id=\"PH\""), "{list}");
    assert!(!list.contains("data-patient-id=\"P2\""), "F2's: {list}");
    assert!(!list.contains("href=\"/indicators"), "{list}");
    // Even when she asks for the other facility by name.
    let f2 = get(base, "/planning?lang=en&facility=F2", &cookie).await;
    assert!(!f2.contains("data-patient-id=\"P2\""), "{f2}");

    // Her facility's patient: tick an item, record a contact.
    let page = get(base, "/patients/PH?lang=en", &cookie).await;
    assert_eq!(http_status(&page), 200, "{page}");
    // The forms of what her role records, not the others.
    assert!(page.contains("id=\"contact-form\""), "{page}");
    assert!(!page.contains("id=\"referent-form\""), "{page}");
    let token = csrf_of(&page);
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=checklist&encounter_id=E-PH&item=letter_prepared&done=true"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let e = last_event(grpc, &admin, "PH").await;
    assert!(
        matches!(&e.payload, Some(Payload::ChecklistItemSet(x)) if x.item == ChecklistItem::LetterPrepared as i32),
        "{e:?}"
    );
    let actor = e.actor.as_ref().unwrap();
    assert_eq!(
        (actor.id.as_str(), actor.role, actor.organisation.as_str()),
        ("nurse-L", v1::Role::LiaisonNurse as i32, "F1")
    );
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=contact&channel=phone&note=called+the+daughter"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    let e = last_event(grpc, &admin, "PH").await;
    let Some(Payload::ContactMade(c)) = &e.payload else {
        panic!("a contact: {e:?}")
    };
    assert_eq!(c.reason, "called the daughter");
    assert_eq!(
        c.professional.as_ref().unwrap().role,
        v1::Role::LiaisonNurse as i32
    );
    // Her role records no alert's outcome.
    let before = head(grpc, &admin).await;
    let r = act(
        base,
        &cookie,
        "PH",
        &format!("csrf={token}&action=referent&role=gp&name=Dr+X&professional_id=rpps-1"),
    )
    .await;
    assert_eq!(http_status(&r), 403, "{r}");
    assert_eq!(head(grpc, &admin).await, before);

    // Another facility's patient: unknown to her, nothing appended, the refusal recorded.
    let other = get(base, "/patients/P2?lang=en", &cookie).await;
    assert_eq!(http_status(&other), 404, "{other}");
    let r = act(
        base,
        &cookie,
        "P2",
        &format!("csrf={token}&action=checklist&encounter_id=E-P2&item=letter_prepared&done=true"),
    )
    .await;
    assert_eq!(http_status(&r), 404, "{r}");
    assert_eq!(head(grpc, &admin).await, before);
    let who = who_called(&access_records(grpc, Some(&admin), of_patient("P2")).await);
    assert!(
        who.iter()
            .any(|w| w[0] == "nurse-L" && w[2] == "permissiondenied"),
        "{who:?}"
    );
    assert!(
        !who.iter().any(|w| w[0] == "nurse-L" && w[2] == "ok"),
        "{who:?}"
    );

    // The indicators (the territory's readmission figures): refused, and recorded.
    let ind = get(base, "/indicators?lang=en", &cookie).await;
    assert_eq!(http_status(&ind), 403, "{ind}");
    assert!(!ind.contains("id=\"readmission-figures\""), "{ind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_ticked_item_shows_ticked() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _admin) = node(dir.path(), &[]).await;
    let base = &server.http;
    let mut browser = cdp::Browser::start(&dir.path().join("chromium"));
    let mut tab = browser.tab().await;
    tab.sign_in(base, COORDINATOR).await;
    tab.wait_for(
        "document.querySelector('#worklist') !== null || document.querySelector('#empty') !== null",
    )
    .await;

    tab.goto(&format!("{base}/planning?lang=fr")).await;
    let listed = tab
        .eval("[...document.querySelectorAll('#planning tr[data-patient-id]')].map(r => r.dataset.patientId)")
        .await;
    assert_eq!(listed, serde_json::json!(["PH"]));
    shots(&mut tab, "planning-worklist-fr").await;
    tab.goto(&format!("{base}/planning?lang=en")).await;
    shots(&mut tab, "planning-worklist-en").await;

    tab.goto(&format!("{base}/patients/PH?lang=fr")).await;
    shots(&mut tab, "planning-patient-fr").await;
    tab.eval("document.querySelector('#tick-E-PH-equipment_ordered input[name=detail]').value = 'lit médicalisé'; \
              document.querySelector('#tick-E-PH-equipment_ordered button').click(); true")
        .await;
    tab.wait_for("document.querySelector('#recorded') !== null")
        .await;
    let done = tab
        .eval("document.querySelector('tr[data-item=equipment_ordered]').dataset.done")
        .await;
    assert_eq!(done, serde_json::json!("true"));
    let html = tab.html().await;
    assert!(html.contains("lit médicalisé"), "{html}");
    assert!(html.contains("2/10"), "{html}");
    shots(&mut tab, "planning-ticked-fr").await;
    tab.goto(&format!("{base}/patients/PH?lang=en")).await;
    shots(&mut tab, "planning-patient-en").await;
    tab.goto(&format!("{base}/?lang=fr")).await;
    shots(&mut tab, "planning-worklist-after-discharge-fr").await;
    tab.goto(&format!("{base}/indicators?lang=fr")).await;
    let html = tab.html().await;
    assert!(
        html.contains("Sorties avec la check-list complète"),
        "{html}"
    );
    shots(&mut tab, "planning-indicators-fr").await;
    tab.goto(&format!("{base}/indicators?lang=en")).await;
    shots(&mut tab, "planning-indicators-en").await;
}

/// In Chromium: a liaison nurse signs in and lands on her facility's upcoming discharges, opens
/// her patient's page; a coordinator's indicators narrowed to a unit; then the failure page of a
/// read model made unusable. Screenshots in French and English at desktop and phone widths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_a_liaison_nurse_and_the_pages_she_and_a_coordinator_see() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _admin) = node(dir.path(), &[]).await;
    let base = &server.http;
    let mut browser = cdp::Browser::start(&dir.path().join("chromium"));
    let mut tab = browser.tab().await;
    tab.sign_in(base, LIAISON).await;
    tab.wait_for("document.querySelector('#planning') !== null")
        .await;
    let listed = tab
        .eval("[...document.querySelectorAll('#planning tr[data-patient-id]')].map(r => r.dataset.patientId)")
        .await;
    assert_eq!(listed, serde_json::json!(["PH"]));
    shots(&mut tab, "liaison-planning-fr").await;
    tab.goto(&format!("{base}/planning?lang=en")).await;
    shots(&mut tab, "liaison-planning-en").await;
    tab.goto(&format!("{base}/patients/PH?lang=fr")).await;
    assert!(tab.html().await.contains("id=\"tick-E-PH-"));
    shots(&mut tab, "liaison-patient-fr").await;
    tab.goto(&format!("{base}/patients/PH?lang=en")).await;
    shots(&mut tab, "liaison-patient-en").await;

    let mut tab = browser.tab().await;
    tab.sign_in(base, COORDINATOR).await;
    tab.wait_for("document.querySelector('#list') !== null")
        .await;
    tab.goto(&format!("{base}/indicators?lang=fr&unit=cardio"))
        .await;
    let html = tab.html().await;
    assert!(html.contains("name=\"unit\" value=\"cardio\""), "{html}");
    shots(&mut tab, "indicators-unit-fr").await;
    tab.goto(&format!("{base}/indicators?lang=en&unit=cardio"))
        .await;
    shots(&mut tab, "indicators-unit-en").await;

    drop_coordination_tables(dir.path()).await;
    tab.goto(&format!("{base}/?lang=fr")).await;
    assert!(tab.html().await.contains("id=\"error-id\""));
    shots(&mut tab, "failure-fr").await;
    tab.goto(&format!("{base}/?lang=en")).await;
    shots(&mut tab, "failure-en").await;
}
