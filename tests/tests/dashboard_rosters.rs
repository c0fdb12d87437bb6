//! Working lists by role (issue 18, point 5) through HTTP and gRPC against a secure `journey
//! up`: an HAD coordinator's list of the patients in HAD now, by HAD facility, in French and
//! English and recorded in the access log like the worklist; a GP who signs in and sees the
//! patients naming them as GP or referent and nothing else (other pages and other patients
//! refused and recorded, no action, no gRPC read; a patient naming another GP leaves the list);
//! the territory's readmission figures on the indicators page (a coordinator its own territory,
//! an admin every one). Screenshots in French and English at desktop and phone widths under
//! `target/screenshots/`. The lists read the same on PostgreSQL.
use journey_proto::v1::{
    self, audit_client::AuditClient, coordination_client::CoordinationClient, event::Payload,
    AccessesRequest, Event, WorklistRequest,
};
use journey_tests::cdp::{shots, Browser};
use journey_tests::client::{channel, token};
use journey_tests::dashboard::{
    facility, get, load, secure_node, session, stay, COORDINATOR, SOUTH,
};
use journey_tests::*;
use std::path::Path;

const DAY: i64 = 86_400;
const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";
const GP_ID: &str = "rpps-100042";

/// The two coordinators of the dashboard tests, and two GPs (Dr Girard is `rpps-100042`).
const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-south coordinator nurse-9 cpts-9 T2
key-0123456789-girard gp rpps-100042 cabinet-girard
";
const GP: &str = "key-0123456789-girard";

fn gp(id: &str, name: &str) -> v1::Professional {
    v1::Professional {
        id: id.into(),
        role: v1::Role::Gp as i32,
        name: name.into(),
        organisation: "Cabinet".into(),
        phone: "+33 6 12 34 56 78".into(),
    }
}

/// A patient registered with a validated INS, naming `doctor` as GP.
fn registered(id: &str, (family, given, born): (&str, &str, &str), doctor: &str) -> Event {
    event(
        id,
        ts(60 * DAY),
        Payload::PatientRegistered(v1::PatientRegistered {
            family_name: family.into(),
            given_name: given.into(),
            birth_date: born.into(),
            sex: v1::Sex::Female as i32,
            ins: format!("2410375123456{}", &id[1..]),
            ins_oid: "1.2.250.1.213.1.4.8".into(),
            identity_status: v1::IdentityStatus::Validated as i32,
            gp: Some(gp(doctor, "Dr Girard")),
            ..Default::default()
        }),
    )
}

/// An HAD stay at facility `fac` of `territory`, admitted `days_ago`.
fn had(id: &str, (fac, territory): (&str, &str), group: v1::HadGroup, days_ago: i64) -> Event {
    event(
        id,
        ts(days_ago * DAY),
        Payload::Admitted(v1::Admitted {
            encounter_id: format!("HAD-{id}"),
            facility: Some(v1::Facility {
                name: format!("HAD {fac}"),
                ..facility(fac, territory)
            }),
            unit: "soins à domicile".into(),
            setting: v1::Setting::Had as i32,
            had_group: group as i32,
            admit_type: v1::AdmitType::Elective as i32,
            ..Default::default()
        }),
    )
}

/// H1 (Dr Girard's patient) and H5 in HAD at HADN of T1, H4 at HADS of T1 (consent to cpts-1
/// revoked), H3 in HAD in T2, H2 whose HAD stay is over; P1 (Dr Girard as referent) readmitted
/// five days after a stay in T1, P2 (another GP) in T1, P9 in T2.
async fn node(dir: &Path) -> (Server, String) {
    node_on(dir, &["--no-reactor"]).await
}

/// [`node`] with these flags.
async fn node_on(dir: &Path, flags: &[&str]) -> (Server, String) {
    let (server, admin) = secure_node(dir, KEYS, flags);
    let mut events = vec![
        registered("H1", ("Moreau", "Alice", "1940-05-06"), GP_ID),
        had("H1", ("HADN", "T1"), v1::HadGroup::Palliative, 12),
        registered("H5", ("Bernard", "Lucie", "1952-01-09"), "rpps-777"),
        had("H5", ("HADN", "T1"), v1::HadGroup::AcuteChronic, 3),
        registered("H4", ("Petit", "Rose", "1944-02-03"), "rpps-777"),
        had("H4", ("HADS", "T1"), v1::HadGroup::NursingHomeSupport, 4),
        event(
            "H4",
            ts(DAY),
            Payload::ConsentRevoked(v1::ConsentRevoked {
                scope: "coordination".into(),
                organisations: vec!["cpts-1".into()],
            }),
        ),
        registered("H3", ("Roux", "Emma", "1939-09-09"), "rpps-777"),
        had("H3", ("HADT2", "T2"), v1::HadGroup::Palliative, 6),
        registered("H2", ("Blanc", "Marie", "1945-04-04"), "rpps-777"),
        had("H2", ("HADN", "T1"), v1::HadGroup::Palliative, 20),
        event(
            "H2",
            ts(2 * DAY),
            Payload::Discharged(v1::Discharged {
                encounter_id: "HAD-H2".into(),
                disposition: v1::Disposition::Home as i32,
                ..Default::default()
            }),
        ),
    ];
    events.extend(stay("P1", ("F1", "T1"), "cardio", 10));
    events.push(event(
        "P1",
        ts(10 * DAY - 1800),
        Payload::ReferentAssigned(v1::ReferentAssigned {
            role: v1::Role::Gp as i32,
            professional: Some(gp(GP_ID, "Dr Girard")),
        }),
    ));
    events.push(event(
        "P1",
        ts(5 * DAY),
        Payload::Admitted(v1::Admitted {
            encounter_id: "E-P1-again".into(),
            facility: Some(facility("F1", "T1")),
            unit: "cardio".into(),
            setting: v1::Setting::Inpatient as i32,
            admit_type: v1::AdmitType::Emergency as i32,
            ..Default::default()
        }),
    ));
    events.extend(stay("P2", ("F1", "T1"), "pneumo", 8));
    events.push(registered(
        "P2",
        ("Durand", "Paula", "1938-11-30"),
        "rpps-777",
    ));
    events.extend(stay("P9", ("F2", "T2"), "cardio", 9));
    load(&server, &admin, events).await;
    (server, admin)
}

/// The patients a page lists, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("data-patient-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

async fn accesses(grpc: &str, admin: &str, req: AccessesRequest) -> Vec<v1::AccessRecord> {
    AuditClient::with_interceptor(channel(grpc).await.unwrap(), token(Some(admin)).unwrap())
        .accesses(AccessesRequest { limit: 1000, ..req })
        .await
        .unwrap()
        .into_inner()
        .records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_had_coordinator_lists_the_patients_in_had_now_by_facility() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path()).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;

    let fr = get(base, "/had?lang=fr", &cookie).await;
    assert_eq!(http_status(&fr), 200, "{fr}");
    // In HAD now, in T1, sharing with cpts-1: H5 and H1 at HADN (by name), not H2 (discharged),
    // H3 (T2) or H4 (consent revoked).
    assert_eq!(listed(&fr), ["H5", "H1"], "{fr}");
    assert!(fr.contains("<span id=\"total\">2</span> patients"), "{fr}");
    assert!(fr.contains("data-facility=\"HADN\""), "{fr}");
    assert!(fr.contains("<h2>HAD HADN "), "{fr}");
    assert!(!fr.contains("data-facility=\"HADS\""), "{fr}");
    assert!(
        fr.contains("Patients en HAD") && fr.contains("soins palliatifs"),
        "{fr}"
    );
    assert!(
        fr.contains("aigu ou chronique") && fr.contains("12 jours"),
        "{fr}"
    );
    assert!(
        fr.contains("née le 06/05/1940") && fr.contains("INS 24103751234561"),
        "{fr}"
    );
    for english in ["palliative", "Kind of HAD", "In HAD since", "days"] {
        assert!(
            !fr.contains(english),
            "{english:?} in the French page: {fr}"
        );
    }
    // Reachable from the navigation of every page of a coordinator.
    let worklist = get(base, "/?lang=fr", &cookie).await;
    assert!(
        worklist.contains("<a href=\"/had?lang=fr\">Patients en HAD</a>"),
        "{worklist}"
    );

    let en = get(base, "/had?lang=en", &cookie).await;
    assert_eq!(listed(&en), ["H5", "H1"], "{en}");
    assert!(
        en.contains("Patients in HAD") && en.contains("palliative care"),
        "{en}"
    );
    assert!(
        en.contains("born 6 May 1940") && en.contains("12 days"),
        "{en}"
    );

    // Another territory asked for is refused, and a filter the page does not take.
    let other = get(base, "/had?lang=en&territory=T2", &cookie).await;
    assert_eq!(http_status(&other), 403, "{other}");
    let typo = get(base, "/had?lang=en&facilty=HADN", &cookie).await;
    assert_eq!(http_status(&typo), 400, "{typo}");

    // The south's coordinator sees its own territory's.
    let south = session(base, SOUTH).await;
    assert_eq!(listed(&get(base, "/had?lang=fr", &south).await), ["H3"]);
    // An admin sees every territory, or the one asked for.
    let admin_cookie = session(base, &admin).await;
    let all = get(base, "/had?lang=en", &admin_cookie).await;
    let mut every = listed(&all);
    every.sort();
    assert_eq!(every, ["H1", "H3", "H4", "H5"], "{all}");
    assert_eq!(
        listed(&get(base, "/had?lang=en&territory=T2", &admin_cookie).await),
        ["H3"]
    );

    // The list is in the access log under each patient it showed, like the worklist.
    let records = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            patient_id: "H1".into(),
            subject: "nurse-1".into(),
            ..Default::default()
        },
    )
    .await;
    let read = records
        .iter()
        .find(|r| r.call == "dashboard/had")
        .unwrap_or_else(|| panic!("no record of the HAD list: {records:?}"));
    assert_eq!(read.outcome, "ok");
    assert!(read.patients.contains(&"H5".to_string()), "{read:?}");
    assert!(!read.patients.contains(&"H4".to_string()), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gp_sees_the_patients_naming_them_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path()).await;
    let base = &server.http;
    let cookie = session(base, GP).await;

    // The worklist's address leads a GP to their list.
    let home = get(base, "/?lang=fr", &cookie).await;
    assert_eq!(http_status(&home), 303, "{home}");
    assert!(home.contains("location: /my-patients?lang=fr"), "{home}");

    let fr = get(base, "/my-patients?lang=fr", &cookie).await;
    assert_eq!(http_status(&fr), 200, "{fr}");
    // Named as GP at registration (H1) or as referent (P1); by name: Moreau, then P1 (no name).
    let mut mine = listed(&fr);
    mine.sort();
    assert_eq!(mine, ["H1", "P1"], "{fr}");
    assert!(
        fr.contains("Mes patients") && fr.contains("médecin traitant"),
        "{fr}"
    );
    assert!(fr.contains("en HAD · soins palliatifs"), "{fr}");
    assert!(
        fr.contains("hospitalisé(e)"),
        "P1 is back in hospital: {fr}"
    );
    // The navigation offers the list only.
    assert!(
        !fr.contains("href=\"/indicators") && !fr.contains("href=\"/had"),
        "{fr}"
    );
    let en = get(base, "/my-patients?lang=en", &cookie).await;
    assert!(
        en.contains("My patients") && en.contains("in HAD · palliative care"),
        "{en}"
    );

    // The list is recorded under each patient it showed.
    let listed_h1 = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            patient_id: "H1".into(),
            subject: GP_ID.into(),
            ..Default::default()
        },
    )
    .await;
    let read = listed_h1
        .iter()
        .find(|r| r.call == "dashboard/my-patients")
        .unwrap_or_else(|| panic!("no record of the GP's list: {listed_h1:?}"));
    assert_eq!(
        (read.outcome.as_str(), read.role.as_str()),
        ("ok", "gp"),
        "{read:?}"
    );
    assert!(read.patients.contains(&"P1".to_string()), "{read:?}");

    // Their patient's page, read-only.
    let page = get(base, "/patients/H1?lang=fr", &cookie).await;
    assert_eq!(http_status(&page), 200, "{page}");
    assert!(page.contains("Moreau"), "{page}");
    assert!(
        !page.contains("name=\"csrf\""),
        "a GP is offered no action: {page}"
    );

    // Another patient answers as an unknown one, and the refusal is recorded.
    let other = get(base, "/patients/P2?lang=fr", &cookie).await;
    assert_eq!(http_status(&other), 404, "{other}");
    assert!(!other.contains("Durand"), "{other}");
    let refused = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            patient_id: "P2".into(),
            subject: GP_ID.into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        refused
            .iter()
            .any(|r| r.call == "dashboard/patient" && r.outcome == "permissiondenied"),
        "{refused:?}"
    );

    // Every other page is refused (in the reader's words) and recorded.
    for path in [
        "/indicators?lang=fr",
        "/had?lang=fr",
        "/planning?lang=fr",
        "/search?lang=fr&q=Durand",
        "/worklist.csv?lang=fr",
    ] {
        let r = get(base, path, &cookie).await;
        assert_eq!(http_status(&r), 403, "{path}: {r}");
        assert!(
            r.contains("Accès refusé") || r.contains("refus"),
            "{path}: {r}"
        );
        assert!(!r.contains("data-patient-id"), "{path}: {r}");
    }
    let form = get(base, "/patients/H1?lang=fr", &cookie).await;
    assert!(!form.contains("csrf"), "{form}");
    let act = http_exchange(
        base,
        "POST",
        "/patients/H1/actions?lang=fr",
        &format!("{cookie}{FORM}"),
        "action=contact&channel=phone&note=x",
    )
    .await;
    assert_eq!(http_status(&act), 403, "{act}");
    let records = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            subject: GP_ID.into(),
            outcome: "permissiondenied".into(),
            ..Default::default()
        },
    )
    .await;
    for call in [
        "dashboard/indicators",
        "dashboard/had",
        "dashboard/patients/H1/actions",
    ] {
        assert!(
            records.iter().any(|r| r.call == call),
            "{call}: {records:?}"
        );
    }

    // H1 names another GP: Dr Girard no longer sees her.
    let mut log = client::connect(&server.grpc, Some(&admin)).await.unwrap();
    let at = append_batch(
        &mut log,
        vec![event(
            "H1",
            ts(60),
            Payload::IdentityUpdated(v1::IdentityUpdated {
                gp: Some(gp("rpps-777", "Dr Vidal")),
                ..Default::default()
            }),
        )],
    )
    .await;
    wait_projected_as(&server.grpc, at, Some(&admin)).await;
    assert_eq!(
        listed(&get(base, "/my-patients?lang=fr", &cookie).await),
        ["P1"]
    );
    let gone = get(base, "/patients/H1?lang=fr", &cookie).await;
    assert_eq!(http_status(&gone), 404, "{gone}");

    // No gRPC read either.
    let mut coordination = CoordinationClient::with_interceptor(
        channel(&server.grpc).await.unwrap(),
        token(Some(GP)).unwrap(),
    );
    let s = coordination
        .worklist(WorklistRequest::default())
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_indicators_show_the_territorys_readmission_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path()).await;
    let base = &server.http;

    let cookie = session(base, COORDINATOR).await;
    let fr = get(base, "/indicators?lang=fr", &cookie).await;
    assert_eq!(http_status(&fr), 200, "{fr}");
    let section = &fr[fr.find("id=\"readmission-figures\"").expect("the section")..];
    assert!(
        section.contains("Réhospitalisations du territoire"),
        "{section}"
    );
    assert!(section.contains("data-territory=\"T1\""), "{section}");
    assert!(!section.contains("data-territory=\"T2\""), "{section}");
    // P1's first stay, readmitted five days after, and P2's (P1's second is not over): one
    // readmission of two index stays.
    let t1 = &section[section.find("data-territory=\"T1\"").unwrap()..];
    assert!(t1.contains("50,0 % (1/2)"), "{t1}");
    let en = get(base, "/indicators?lang=en", &cookie).await;
    assert!(en.contains("Readmissions in the territory"), "{en}");

    let admin_cookie = session(base, &admin).await;
    let all = get(base, "/indicators?lang=en", &admin_cookie).await;
    let section = &all[all.find("id=\"readmission-figures\"").expect("the section")..];
    for key in ["T1", "T2", "all"] {
        assert!(
            section.contains(&format!("data-territory=\"{key}\"")),
            "{key}: {section}"
        );
    }
    assert!(section.contains("Every territory"), "{section}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lists_read_alike_on_postgresql() {
    // Text ordered by French rules, not bytes: the lists' order must not depend on the locale.
    let pg = PgDb::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'",
    );
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node_on(dir.path(), &["--no-reactor", "--database-url", &pg.url]).await;
    let base = &server.http;
    let coordinator = session(base, COORDINATOR).await;
    assert_eq!(
        listed(&get(base, "/had?lang=fr", &coordinator).await),
        ["H5", "H1"]
    );
    let admin_cookie = session(base, &admin).await;
    let mut every = listed(&get(base, "/had?lang=en", &admin_cookie).await);
    every.sort();
    assert_eq!(every, ["H1", "H3", "H4", "H5"]);
    let gp = session(base, GP).await;
    let mut mine = listed(&get(base, "/my-patients?lang=fr", &gp).await);
    mine.sort();
    assert_eq!(mine, ["H1", "P1"]);
    assert_eq!(
        http_status(&get(base, "/patients/P1?lang=fr", &gp).await),
        200
    );
    assert_eq!(
        http_status(&get(base, "/patients/P2?lang=fr", &gp).await),
        404
    );
    let indicators = get(base, "/indicators?lang=fr", &coordinator).await;
    assert!(indicators.contains("50,0 % (1/2)"), "{indicators}");
    // The same figure written as an English reader writes it
    let indicators = get(base, "/indicators?lang=en", &coordinator).await;
    assert!(indicators.contains("50.0 % (1/2)"), "{indicators}");
    assert!(!indicators.contains("50,0 %"), "{indicators}");
}

/// The patients of the rows a page shows.
async fn rows(tab: &mut journey_tests::cdp::Tab) -> Vec<String> {
    let v = tab
        .eval("[...document.querySelectorAll('tr[data-patient-id]')].map(r => r.dataset.patientId)")
        .await;
    serde_json::from_value(v).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_the_had_list_the_gp_list_and_the_readmission_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _admin) = node(dir.path()).await;
    let base = &server.http;
    let mut browser = Browser::start(&dir.path().join("chromium"));
    let mut tab = browser.tab().await;
    tab.sign_in(base, COORDINATOR).await;
    tab.wait_for("document.querySelector('#worklist') !== null")
        .await;
    for lang in ["fr", "en"] {
        tab.goto(&format!("{base}/had?lang={lang}")).await;
        assert_eq!(rows(&mut tab).await, ["H5", "H1"]);
        shots(&mut tab, &format!("had-{lang}")).await;
        tab.goto(&format!("{base}/indicators?lang={lang}")).await;
        tab.eval("document.querySelector('#readmission-figures').scrollIntoView(); true")
            .await;
        shots(&mut tab, &format!("readmission-figures-{lang}")).await;
    }
    tab.eval("document.querySelector('#sign-out').click(); true")
        .await;
    tab.wait_for("location.pathname === '/logout'").await;
    tab.sign_in(base, GP).await;
    tab.wait_for("document.querySelector('#my-patients') !== null")
        .await;
    for lang in ["fr", "en"] {
        tab.goto(&format!("{base}/my-patients?lang={lang}")).await;
        let mut shown = rows(&mut tab).await;
        shown.sort();
        assert_eq!(shown, ["H1", "P1"]);
        shots(&mut tab, &format!("gp-{lang}")).await;
    }
}
