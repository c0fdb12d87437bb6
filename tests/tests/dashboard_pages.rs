//! The dashboard as a nurse reads it (issue 18, points 3 and 4), through HTTP and in a real
//! headless Chromium against a secure `journey up`: the worklist counts "1 patient" / "3
//! patients" and says how fresh it is in words and local time; the first contact is late by
//! working days; two patients of the same name are told apart by their birth date (and, on their
//! page, sex and validated INS); filters take the facility's or the unit's name as shown and the
//! referent's name, and the other language's link keeps them; error pages (unknown address,
//! unknown patient, bad filter, refused action) are pages in the reader's language with a way
//! back; the sign-in page is French unless English was chosen, and lands on the page asked for
//! (a page of this server only); the indicators' charts label their axes and draw the p90; at
//! 400 px nothing scrolls sideways. Screenshots in French and English at desktop and phone
//! widths under `target/screenshots/`.
use journey_proto::v1::{self, event::Payload, Event};
use journey_tests::cdp::{shots, Browser};
use journey_tests::dashboard::{
    drop_coordination_tables, get, load, registered, secure_node, session, stay, COORDINATOR, KEYS,
};
use journey_tests::*;
use std::path::Path;

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
const DAY: i64 = 86_400;

/// A patient registered with a name, birth date, sex and INS (validated or not), a stay at `fac`
/// in `unit` ended ten days ago (letter and reconciliation done: the first contact is overdue),
/// and a GP as referent.
fn patient(
    id: &str,
    who: (&str, &str, &str, v1::Sex),
    ins: Option<&str>,
    (fac, unit): (&str, &str),
) -> Vec<Event> {
    let mut events = vec![registered(id, who, ins, 40)];
    events.extend(stay(id, (fac, "T1"), unit, 10));
    events.push(event(
        id,
        ts(10 * DAY - 1800),
        Payload::ReferentAssigned(v1::ReferentAssigned {
            role: v1::Role::Gp as i32,
            professional: Some(v1::Professional {
                id: "rpps-100042".into(),
                role: v1::Role::Gp as i32,
                name: format!("Dr {}", if unit == "pneumo" { "Lefort" } else { "Girard" }),
                organisation: "Cabinet".into(),
                phone: "+33 6 12 34 56 78".into(),
            }),
        }),
    ));
    events
}

/// A secure node with two patients named Jeanne Martin in cardiology at F1 (one with a validated
/// INS) and Paul Durand in pneumology at F2, all of territory T1.
async fn node(dir: &Path) -> Server {
    let (server, admin) = secure_node(dir, KEYS, &["--no-reactor"]);
    let jeanne = |born| ("Martin", "Jeanne", born, v1::Sex::Female);
    let mut events = patient(
        "P1",
        jeanne("1941-03-02"),
        Some("241037512345678"),
        ("F1", "cardio"),
    );
    events.extend(patient("P3", jeanne("1950-07-14"), None, ("F1", "cardio")));
    events.extend(patient(
        "P2",
        ("Durand", "Paul", "1938-11-30", v1::Sex::Male),
        None,
        ("F2", "pneumo"),
    ));
    load(&server, &admin, events).await;
    server
}

/// The patients the worklist of a page lists, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("data-patient-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The row of `patient` in a worklist page.
fn row<'a>(page: &'a str, patient: &str) -> &'a str {
    let at = page
        .find(&format!("data-patient-id=\"{patient}\""))
        .unwrap_or_else(|| panic!("no row of {patient}: {page}"));
    let rest = &page[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worklist_reads_as_sentences_and_filters_by_the_names_shown() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir.path()).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;

    let fr = get(base, "/?lang=fr", &cookie).await;
    assert_eq!(http_status(&fr), 200, "{fr}");
    assert!(
        fr.contains("<span id=\"total\">3</span> patients ·"),
        "{fr}"
    );
    assert!(fr.contains("à jour à "), "{fr}");
    assert!(
        !fr.contains("événement #") && !fr.contains("1 patients"),
        "{fr}"
    );
    // Two Jeanne Martin, told apart by their birth date.
    let (p1, p3) = (row(&fr, "P1"), row(&fr, "P3"));
    assert!(
        p1.contains("MARTIN Jeanne") && p3.contains("MARTIN Jeanne"),
        "{p1}"
    );
    // birth date with age, sex, and the INS of the validated identity only
    assert!(p1.contains("née le 02/03/1941"), "{p1}");
    assert!(p3.contains("née le 14/07/1950"), "{p3}");
    assert!(
        p1.contains("<span class=\"sex\">femme</span>")
            && p1.contains("<span class=\"ins\">INS 241037512345678</span>"),
        "{p1}"
    );
    assert!(
        !p3.contains("INS"),
        "no INS without a validated identity: {p3}"
    );
    // Discharged ten days ago, due within two working days: late by working days.
    assert!(p1.contains("jours ouvrés"), "{p1}");
    assert!(p1.contains("au plus tard le"), "{p1}");
    // Dates as a French reader writes them, no ISO dates.
    assert!(!p1.contains("2026-") && !p1.contains("2027-"), "{p1}");
    let en = get(base, "/?lang=en", &cookie).await;
    assert!(
        en.contains("working days") && en.contains("born 2 Mar 1941"),
        "{en}"
    );
    assert!(
        !en.contains("jours") && en.contains("GP: Dr Girard"),
        "{en}"
    );

    // The facility's name as shown, in any case, a part of it, or the unit's name.
    for (typed, expected) in [
        ("H%C3%B4pital+F2", vec!["P2"]),
        ("h%C3%B4pital+f2", vec!["P2"]),
        ("F2", vec!["P2"]),
        ("cardio", vec!["P1", "P3"]),
        ("Pneumo", vec!["P2"]),
        ("F9", vec![]),
    ] {
        let page = get(base, &format!("/?lang=fr&facility={typed}"), &cookie).await;
        assert_eq!(http_status(&page), 200, "{page}");
        let mut got = listed(&page);
        got.sort();
        assert_eq!(got, expected, "facility={typed}");
    }
    let one = get(base, "/?lang=fr&facility=pneumo", &cookie).await;
    assert!(
        one.contains("<span id=\"total\">1</span> patient ·"),
        "{one}"
    );
    let one_en = get(base, "/?lang=en&facility=pneumo", &cookie).await;
    assert!(
        one_en.contains("<span id=\"total\">1</span> patient ·"),
        "{one_en}"
    );
    // The referent by name.
    let lefort = get(base, "/?lang=fr&referent=lefort", &cookie).await;
    assert_eq!(listed(&lefort), ["P2"], "{lefort}");
    // The other language keeps the filters and the window; the filter form keeps the window.
    let page = get(base, "/?lang=fr&facility=cardio&window=90", &cookie).await;
    assert!(
        page.contains("id=\"other-language\" href=\"/?lang=en&amp;facility=cardio&amp;window=90\""),
        "{page}"
    );
    assert!(
        page.contains("<input type=\"hidden\" name=\"window\" value=\"90\">"),
        "{page}"
    );

    // The indicators' facility filter takes the name too; a name several facilities share asks
    // which one; a name nobody has says so.
    let discharged =
        |page: &str, n: u32| page.contains(&format!("</td><td>{n}</td><td class=\"rate\">"));
    let all = get(base, "/indicators?lang=fr", &cookie).await;
    assert!(discharged(&all, 3), "{all}");
    let f2 = get(
        base,
        "/indicators?lang=fr&facility=h%C3%B4pital+f2",
        &cookie,
    )
    .await;
    assert!(discharged(&f2, 1) && !discharged(&f2, 3), "{f2}");
    assert!(
        f2.contains("value=\"hôpital f2\""),
        "what was typed stays: {f2}"
    );
    let both = get(base, "/indicators?lang=fr&facility=H%C3%B4pital", &cookie).await;
    assert!(both.contains("id=\"several-facilities\""), "{both}");
    assert!(
        both.contains("href=\"/indicators?lang=fr&amp;facility=F1\">Hôpital F1</a>"),
        "{both}"
    );
    let none = get(base, "/indicators?lang=fr&facility=Clinique", &cookie).await;
    assert!(none.contains("id=\"no-facility\""), "{none}");

    // The patient page: who the patient is, no raw id, the referent, the timeline's authors as
    // roles or "automatically", never an account id.
    let p1 = get(base, "/patients/P1?lang=fr", &cookie).await;
    assert!(
        p1.contains("née le 02/03/1941") && p1.contains("femme"),
        "{p1}"
    );
    assert!(p1.contains("INS 241037512345678"), "a validated INS: {p1}");
    let p3 = get(base, "/patients/P3?lang=fr", &cookie).await;
    assert!(
        !p3.contains("INS "),
        "a provisional identity's INS is not shown: {p3}"
    );
    assert!(p1.contains("médecin traitant — Dr Girard"), "{p1}");
    assert!(
        p1.contains("<a class=\"phone\" href=\"tel:+33612345678\">+33 6 12 34 56 78</a>"),
        "the referent's phone, a link that dials: {p1}"
    );
    assert!(!p1.contains("· nurse-1<"), "{p1}");
    assert!(p1.contains("id=\"sign-out\""), "{p1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_are_pages_in_the_readers_language_with_a_way_back() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir.path()).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;

    for (path, status, title) in [
        ("/nowhere?lang=fr", 404, "Page introuvable"),
        ("/patients/NOBODY?lang=fr", 404, "Patient inconnu"),
        ("/?lang=fr&color=red", 400, "Adresse incorrecte"),
        ("/nowhere?lang=en", 404, "Page not found"),
    ] {
        let page = get(base, path, &cookie).await;
        assert_eq!(http_status(&page), status, "{path}: {page}");
        let lang = if path.contains("lang=en") { "en" } else { "fr" };
        assert!(
            http_header(&page, "content-type").is_some_and(|c| c.starts_with("text/html")),
            "{page}"
        );
        assert!(page.contains(&format!("<html lang=\"{lang}\">")), "{page}");
        assert!(page.contains(title), "{path}: {page}");
        assert!(
            page.contains(&format!("id=\"back\" href=\"/?lang={lang}\"")),
            "{path}: {page}"
        );
        assert!(page.contains("id=\"sign-out\""), "{path}: {page}");
    }
    // The reason a filter is refused stays for the technical team, behind "détails".
    let bad = get(base, "/?lang=fr&color=red", &cookie).await;
    assert!(bad.contains("<summary>détails</summary>"), "{bad}");
    // An address nobody serves, without a session either: French by default.
    let page = http_exchange(base, "GET", "/nowhere", "", "").await;
    assert_eq!(http_status(&page), 404, "{page}");
    assert!(
        page.contains("Page introuvable") && !page.contains("id=\"sign-out\""),
        "{page}"
    );
    // A refused action (no CSRF token): a French page, a way back.
    let r = http_exchange(
        base,
        "POST",
        "/patients/P1/actions?lang=fr",
        &format!("{cookie}{FORM}"),
        "action=contact&channel=phone",
    )
    .await;
    assert_eq!(http_status(&r), 403, "{r}");
    assert!(
        r.contains("<html lang=\"fr\">") && r.contains("Action non enregistrée"),
        "{r}"
    );
    assert!(r.contains("id=\"back\" href=\"/?lang=fr\""), "{r}");
}

/// A read model made unusable under a running node (its tables dropped in the node's own SQLite
/// file): the pages that read it answer 500 with the dashboard's failure page in the reader's
/// language, an error number and the way back, and nothing of the database's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_error_is_a_page_with_a_number_and_no_sql() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir.path()).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;
    assert_eq!(http_status(&get(base, "/?lang=fr", &cookie).await), 200);

    assert!(
        drop_coordination_tables(dir.path()).await > 0,
        "no coordination table"
    );

    for (path, lang, title) in [
        ("/", "fr", "Erreur inattendue"),
        ("/?lang=en", "en", "Unexpected error"),
        ("/patients/P1?lang=fr", "fr", "Erreur inattendue"),
    ] {
        let page = get(base, path, &cookie).await;
        assert_eq!(http_status(&page), 500, "{path}: {page}");
        assert!(page.contains(&format!("<html lang=\"{lang}\">")), "{page}");
        assert!(page.contains(title), "{path}: {page}");
        assert!(page.contains("id=\"error-id\">E-"), "{path}: {page}");
        assert!(
            page.contains(&format!("id=\"back\" href=\"/?lang={lang}\"")),
            "{path}: {page}"
        );
        assert!(page.contains("id=\"sign-out\""), "{path}: {page}");
        for internal in [
            "SELECT",
            "no such table",
            "coordination_g",
            "sqlx",
            "database",
        ] {
            assert!(
                !page.contains(internal),
                "{path} shows {internal:?}: {page}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_french_and_lands_on_the_page_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir.path()).await;
    let base = &server.http;

    // An English browser that chose nothing gets French, with the way to English.
    let page = http_exchange(
        base,
        "GET",
        "/login",
        "Accept-Language: en-US,en;q=0.9\r\n",
        "",
    )
    .await;
    assert!(
        page.contains("<html lang=\"fr\">") && page.contains("Connexion"),
        "{page}"
    );
    assert!(
        page.contains("id=\"other-language\" href=\"/login?lang=en"),
        "{page}"
    );

    // A page asked for without a session: to the sign-in, which remembers it.
    let r = http_exchange(base, "GET", "/patients/P1?lang=en", "", "").await;
    assert_eq!(http_status(&r), 303, "{r}");
    let to = http_header(&r, "location").unwrap().to_string();
    assert_eq!(to, "/login?lang=en&next=/patients/P1%3Flang%3Den");
    let form = http_exchange(base, "GET", &to, "", "").await;
    assert!(
        form.contains("name=\"next\" value=\"/patients/P1?lang=en\""),
        "{form}"
    );
    assert!(form.contains("Sign in"), "{form}");
    let next = "%2Fpatients%2FP1%3Flang%3Den";
    let r = http_exchange(
        base,
        "POST",
        "/login?lang=en",
        FORM,
        &format!("token={COORDINATOR}&next={next}"),
    )
    .await;
    assert_eq!(http_status(&r), 303, "{r}");
    assert_eq!(http_header(&r, "location"), Some("/patients/P1?lang=en"));
    // Never another site.
    for away in ["https%3A%2F%2Fevil.example%2F", "%2F%2Fevil.example%2F"] {
        let r = http_exchange(
            base,
            "POST",
            "/login?lang=fr",
            FORM,
            &format!("token={COORDINATOR}&next={away}"),
        )
        .await;
        assert_eq!(
            http_header(&r, "location"),
            Some("/?lang=fr"),
            "{away}: {r}"
        );
    }
    // A language chosen is kept for the pages reached without one.
    let r = http_exchange(base, "GET", "/login?lang=en", "", "").await;
    let chosen = http_header(&r, "set-cookie").expect("the choice is kept");
    assert!(chosen.starts_with("journey_lang=en;"), "{chosen}");
    let (_, cookie) = dashboard_sign_in(base, COORDINATOR).await;
    let cookie = cookie.unwrap();
    let page = get(base, "/", &format!("{cookie}Cookie: journey_lang=en\r\n")).await;
    assert!(page.contains("<html lang=\"en\">"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_pages_fit_a_phone_and_keep_the_filters() {
    let dir = tempfile::tempdir().unwrap();
    let server = node(dir.path()).await;
    let base = &server.http;
    let mut browser = Browser::start(&dir.path().join("chromium"));
    let mut tab = browser.tab().await;

    // The page asked for, then the sign-in (in French), then that page.
    tab.goto(&format!("{base}/login")).await;
    shots(&mut tab, "pages-sign-in-fr").await;
    let asked = format!("{base}/indicators");
    tab.call("Page.navigate", serde_json::json!({"url": asked}))
        .await;
    tab.wait_for("document.querySelector('input[name=token]') !== null")
        .await;
    tab.submit_sign_in(COORDINATOR).await;
    tab.wait_for("document.querySelector('#indicators') !== null")
        .await;
    assert_eq!(tab.eval("document.documentElement.lang").await, "fr");

    // Filter by the facility's name, then switch language: the filter stays.
    tab.goto(&format!("{base}/?lang=fr")).await;
    tab.eval(
        "document.querySelector('#filters input[name=facility]').value = 'Hôpital F1'; \
         document.querySelector('#filters').submit(); true",
    )
    .await;
    tab.wait_for("location.search.includes('facility=')").await;
    let mut rows = tab.rows().await;
    rows.sort();
    assert_eq!(rows, ["P1", "P3"]);
    shots(&mut tab, "pages-worklist-filtered-fr").await;
    tab.eval("document.querySelector('#other-language').click(); true")
        .await;
    tab.wait_for("document.documentElement.lang === 'en'").await;
    let mut rows = tab.rows().await;
    rows.sort();
    assert_eq!(
        rows,
        ["P1", "P3"],
        "the filter survives the language change"
    );
    assert_eq!(
        tab.eval("document.querySelector('#filters input[name=facility]').value")
            .await,
        "Hôpital F1"
    );
    shots(&mut tab, "pages-worklist-filtered-en").await;

    // Every page fits a 400 px phone: nothing scrolls sideways.
    for (path, name) in [
        ("/?lang=fr", "pages-worklist-fr"),
        ("/?lang=en", "pages-worklist-en"),
        ("/patients/P1?lang=fr", "pages-patient-fr"),
        ("/patients/P1?lang=en", "pages-patient-en"),
        ("/indicators?lang=fr", "pages-indicators-fr"),
        ("/indicators?lang=en", "pages-indicators-en"),
        ("/nowhere?lang=fr", "pages-not-found-fr"),
        ("/nowhere?lang=en", "pages-not-found-en"),
    ] {
        tab.goto(&format!("{base}{path}")).await;
        shots(&mut tab, name).await;
        // `shots` leaves the phone's size on.
        let width = tab.eval("document.documentElement.scrollWidth").await;
        assert!(
            width.as_u64().is_some_and(|w| w <= 400),
            "{path} is {width} px wide on a 400 px phone"
        );
    }
    // The indicators' charts: a y label on each, the p90 drawn.
    tab.goto(&format!("{base}/indicators?lang=fr")).await;
    let labels = tab
        .eval("document.querySelectorAll('svg text.y-label').length")
        .await;
    let charts = tab
        .eval("document.querySelectorAll('.charts svg[id]').length")
        .await;
    assert_eq!(labels, charts, "one y label per chart");
    let html = tab.html().await;
    assert!(html.contains("90e centile"), "{html}");
}
