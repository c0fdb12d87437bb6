//! Working habits (issue 18, point 5) through HTTP against a secure `journey up`: a coordinator
//! finds a patient by name (any case, no accents), birth date, INS (typed with spaces or not),
//! local id or patient id, namesakes told apart by birth date, sex and validated INS; a patient
//! of another territory, or whose consent for the coordinator's organisation is revoked, is not
//! found, and every search is in the access log under the patients it returned (none included).
//! The worklist as a CSV file parsed back (byte-order mark, French `;` and English `,` columns,
//! quoted fields, a formula defused, instants in the facility's time zone, the filters kept) and
//! as a page to print (no navigation, the time printed), each recorded under its patients. Both
//! on SQLite and on PostgreSQL.
use journey_proto::v1::{self, audit_client::AuditClient, event::Payload, AccessesRequest, Event};
use journey_tests::client::{channel, token};
use journey_tests::dashboard::{
    get, load, registered, secure_node, session, stay, COORDINATOR, KEYS, SOUTH,
};
use journey_tests::*;
use std::path::Path;

const DAY: i64 = 86_400;

/// Patient `id` registered as `family`/`given`, born `born`, with a stay at `fac` of `territory`
/// ended ten days ago (its first contact overdue).
fn patient(
    id: &str,
    who: (&str, &str, &str, v1::Sex),
    ins: Option<&str>,
    (fac, territory): (&str, &str),
) -> Vec<Event> {
    let mut events = vec![registered(id, who, ins, 40)];
    events.extend(stay(id, (fac, territory), "cardio", 10));
    events
}

/// Two Jeanne Martin of T1 (P1 with a validated INS, P3 without), Paul Durand of T1 (P2),
/// Hélène Lefèvre of T2 (P4), a third Jeanne Martin of T1 who revoked her consent for cpts-1
/// (P5), and a patient of a facility in Cayenne whose name holds a separator, quotes and a
/// formula (P6): appended and projected.
async fn node(dir: &Path, extra: &[&str]) -> (Server, String) {
    let mut flags = vec!["--no-reactor"];
    flags.extend(extra);
    let (server, admin) = secure_node(dir, KEYS, &flags);
    let jeanne = |born| ("Martin", "Jeanne", born, v1::Sex::Female);
    let mut events = patient(
        "P1",
        jeanne("1941-03-02"),
        Some("241037512345678"),
        ("F1", "T1"),
    );
    events.extend(patient("P3", jeanne("1950-07-14"), None, ("F1", "T1")));
    events.extend(patient(
        "P2",
        ("Durand", "Paul", "1938-11-30", v1::Sex::Male),
        None,
        ("F2", "T1"),
    ));
    events.extend(patient(
        "P4",
        ("Lefèvre", "Hélène", "1944-05-06", v1::Sex::Female),
        None,
        ("F9", "T2"),
    ));
    events.extend(patient("P5", jeanne("1960-01-01"), None, ("F1", "T1")));
    events.push(event(
        "P5",
        ts(5 * DAY),
        Payload::ConsentRevoked(v1::ConsentRevoked {
            scope: "coordination".into(),
            organisations: vec!["cpts-1".into()],
        }),
    ));
    let mut p6 = patient(
        "P6",
        ("=cmd", "Jean \"Jo\"; fils", "1939-12-31", v1::Sex::Male),
        None,
        ("F7", "T1"),
    );
    if let Some(Payload::Admitted(a)) = p6[1].payload.as_mut() {
        a.facility.as_mut().unwrap().time_zone = "America/Cayenne".into();
    }
    events.extend(p6);
    load(&server, &admin, events).await;
    (server, admin)
}

async fn accesses(grpc: &str, admin: &str, req: AccessesRequest) -> Vec<v1::AccessRecord> {
    AuditClient::with_interceptor(channel(grpc).await.unwrap(), token(Some(admin)).unwrap())
        .accesses(req)
        .await
        .unwrap()
        .into_inner()
        .records
}

/// The patients a search page lists, in order.
fn found(page: &str) -> Vec<String> {
    let Some(table) = page.split("<table id=\"found\"").nth(1) else {
        return Vec::new();
    };
    table
        .split("data-patient-id=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_finds_a_patient_by_each_key() {
    finds_by_each_key(&[]).await;
}

/// The same on PostgreSQL, in a database whose text order is French, not bytewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_finds_a_patient_by_each_key_on_postgres() {
    let pg = PgDb::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'",
    );
    finds_by_each_key(&["--database-url", &pg.url]).await;
}

async fn finds_by_each_key(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path(), extra).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;
    let search = |q: &str, lang: &str| {
        let path = format!("/search?lang={lang}&q={}", query_value(q));
        let (base, cookie) = (base.clone(), cookie.clone());
        async move { get(&base, &path, &cookie).await }
    };

    // The box is on the worklist, in both languages.
    let fr = get(base, "/?lang=fr", &cookie).await;
    assert!(
        fr.contains("id=\"search\"") && fr.contains("Trouver un patient"),
        "{fr}"
    );
    let en = get(base, "/?lang=en", &cookie).await;
    assert!(en.contains("Find a patient") && en.contains("name, birth date, INS or local id"));

    // By name, any case: the two Jeanne Martin of T1 whose consent holds, told apart.
    let page = search("martin", "fr").await;
    assert_eq!(http_status(&page), 200, "{page}");
    assert_eq!(found(&page), ["P1", "P3"], "{page}");
    assert!(page.contains("née le 02/03/1941") && page.contains("née le 14/07/1950"));
    assert!(
        page.contains("femme") && page.contains("241037512345678"),
        "{page}"
    );
    assert!(page.contains("href=\"/patients/P1?lang=fr\""), "{page}");
    assert!(page.contains("IPP-P3"), "{page}");
    // A name and a birth date; a birth date alone, as ISO.
    assert_eq!(
        found(&search("Jeanne MARTIN 14/07/1950", "fr").await),
        ["P3"]
    );
    assert_eq!(found(&search("1941-03-02", "en").await), ["P1"]);
    // The INS typed with spaces, the local id in any case, the patient's id.
    assert_eq!(found(&search("2 41 03 75 123 456 78", "fr").await), ["P1"]);
    assert_eq!(found(&search("ipp-p3", "fr").await), ["P3"]);
    assert_eq!(found(&search("P2", "fr").await), ["P2"]);
    let en = search("durand", "en").await;
    assert_eq!(found(&en), ["P2"]);
    assert!(
        en.contains("born 30 Nov 1938") && en.contains("male"),
        "{en}"
    );
    // Nothing found: said in the reader's words; nothing typed: how to search.
    let none = search("Martin 01/01/1900", "fr").await;
    assert!(
        found(&none).is_empty() && none.contains("Aucun patient trouvé."),
        "{none}"
    );
    let how = search("", "en").await;
    assert!(
        how.contains("id=\"how\"") && how.contains("every word matches"),
        "{how}"
    );
    // A key the search does not take is refused.
    let bad = get(base, "/search?lang=en&name=martin", &cookie).await;
    assert_eq!(http_status(&bad), 400, "{bad}");

    // Hélène Lefèvre is of T2: not found by a T1 coordinator, found by T2's without accents.
    let outside = search("Lefèvre", "fr").await;
    assert!(found(&outside).is_empty(), "{outside}");
    let south = session(base, SOUTH).await;
    let theirs = get(base, "/search?lang=fr&q=helene+lefevre", &south).await;
    assert_eq!(found(&theirs), ["P4"], "{theirs}");
    // The T2 coordinator finds none of T1's patients.
    assert!(found(&get(base, "/search?lang=fr&q=martin", &south).await).is_empty());
    // The administrator finds every Jeanne Martin, P5 included.
    let admin_cookie = session(base, &admin).await;
    assert_eq!(
        found(&get(base, "/search?lang=fr&q=martin", &admin_cookie).await),
        ["P1", "P3", "P5"]
    );

    // Every search is recorded: under each patient it returned, and with what was typed.
    let p1 = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            patient_id: "P1".into(),
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    let searches: Vec<_> = p1.iter().filter(|r| r.call == "dashboard/search").collect();
    assert!(searches.len() >= 4, "{p1:?}");
    assert!(searches.iter().any(|r| r.patients == ["P1", "P3"]
        && r.subject == "nurse-1"
        && r.detail.contains("martin")));
    let nurse = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            subject: "nurse-1".into(),
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    let outside = nurse
        .iter()
        .find(|r| r.call == "dashboard/search" && r.detail.contains("Lefèvre"))
        .unwrap_or_else(|| panic!("the search outside the territory is recorded: {nurse:?}"));
    assert!(
        outside.patients.is_empty() && outside.outcome == "ok",
        "{outside:?}"
    );
    // Nothing of P4 was recorded as read by nurse-1.
    let p4 = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            patient_id: "P4".into(),
            subject: "nurse-1".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(p4.is_empty(), "{p4:?}");
}

/// A CSV text's records (RFC 4180: quoted fields, doubled quotes, line breaks inside quotes).
fn parse_csv(text: &str, sep: char) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, c) if c == sep => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worklist_exported_and_printed() {
    exported_and_printed(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worklist_exported_and_printed_on_postgres() {
    let pg = PgDb::create();
    exported_and_printed(&["--database-url", &pg.url]).await;
}

async fn exported_and_printed(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (server, admin) = node(dir.path(), extra).await;
    let base = &server.http;
    let cookie = session(base, COORDINATOR).await;

    // The worklist links to both, with its filters.
    let page = get(base, "/?lang=fr&facility=F7", &cookie).await;
    assert!(
        page.contains("href=\"/worklist.csv?lang=fr&amp;facility=F7")
            || page.contains("href=\"/worklist.csv?lang=fr&facility=F7"),
        "{page}"
    );
    assert!(page.contains("id=\"print\""), "{page}");

    // French: BOM, `;`, French headings, every T1 patient whose consent holds.
    let r = get(base, "/worklist.csv?lang=fr", &cookie).await;
    assert_eq!(http_status(&r), 200, "{r}");
    assert_eq!(
        http_header(&r, "content-type"),
        Some("text/csv; charset=utf-8")
    );
    let disposition = http_header(&r, "content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"liste-de-travail-"),
        "{disposition}"
    );
    let body = http_body(&r);
    assert!(body.starts_with('\u{feff}'), "a byte-order mark for Excel");
    assert!(body.contains("\r\n"), "CRLF lines");
    let rows = parse_csv(body.trim_start_matches('\u{feff}'), ';');
    let head = &rows[0];
    assert_eq!(
        &head[..4],
        ["Patient", "Identifiant", "Date de naissance", "Sexe"]
    );
    assert!(
        head.iter().any(|h| h == "Premier contact dû le"),
        "{head:?}"
    );
    assert!(rows.iter().all(|r| r.len() == head.len()), "{rows:?}");
    let col = |name: &str| head.iter().position(|h| h == name).unwrap();
    let mut ids: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["P1", "P2", "P3", "P6"]);
    let p1 = rows.iter().find(|r| r[1] == "P1").unwrap();
    assert_eq!(p1[0], "MARTIN Jeanne");
    assert_eq!(
        (p1[2].as_str(), p1[3].as_str(), p1[4].as_str()),
        ("02/03/1941", "femme", "241037512345678")
    );
    assert_eq!(p1[col("En retard")], "oui");
    assert!(
        p1[col("À faire")].contains("premier contact en retard"),
        "{p1:?}"
    );
    // The name with a separator and quotes comes back whole; its formula is defused.
    let p6 = rows.iter().find(|r| r[1] == "P6").unwrap();
    assert_eq!(p6[0], "'=CMD Jean \"Jo\"; fils");
    assert!(body.contains("\"'=CMD Jean \"\"Jo\"\"; fils\""), "{body}");
    // Instants in the facility's time zone: Cayenne (UTC−3, no summer time) for P6, Paris
    // (UTC+1 or +2) for P1; both were discharged ten days ago.
    let ten_days_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(10);
    let offset = |r: &Vec<String>| {
        let local =
            chrono::NaiveDateTime::parse_from_str(&r[col("Sortie")], "%d/%m/%Y %H:%M").unwrap();
        ((local - ten_days_ago).num_seconds() as f64 / 3600.0).round() as i64
    };
    assert_eq!(offset(p6), -3, "{p6:?}");
    assert!([1, 2].contains(&offset(p1)), "{p1:?}");

    // English: `,`, English headings, ISO dates; the filters kept (overdue, facility by name).
    let r = get(
        base,
        "/worklist.csv?lang=en&facility=H%C3%B4pital+F1&overdue=on",
        &cookie,
    )
    .await;
    let rows = parse_csv(http_body(&r).trim_start_matches('\u{feff}'), ',');
    assert_eq!(
        &rows[0][..4],
        ["Patient", "Patient id", "Birth date", "Sex"]
    );
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[1].as_str()).collect();
    assert_eq!(ids.len(), 2, "{rows:?}");
    assert!(ids.contains(&"P1") && ids.contains(&"P3"), "{rows:?}");
    let p1 = rows.iter().find(|r| r[1] == "P1").unwrap();
    assert_eq!((p1[2].as_str(), p1[3].as_str()), ("1941-03-02", "female"));
    // A bad filter is refused as on the page.
    let bad = get(base, "/worklist.csv?lang=en&severity=9", &cookie).await;
    assert_eq!(http_status(&bad), 400, "{bad}");

    // The page to print: no navigation nor forms, the time printed, the whole list.
    let print = get(base, "/?lang=fr&overdue=on&print=1", &cookie).await;
    assert_eq!(http_status(&print), 200, "{print}");
    assert!(
        !print.contains("<nav") && !print.contains("<form"),
        "{print}"
    );
    assert!(
        print.contains("Imprimée le") && print.contains("En retard seulement"),
        "{print}"
    );
    for p in ["P1", "P2", "P3", "P6"] {
        assert!(
            print.contains(&format!("data-patient-id=\"{p}\"")),
            "{p}: {print}"
        );
    }
    let en = get(base, "/?lang=en&print=1", &cookie).await;
    assert!(en.contains("Printed "), "{en}");

    // Both are recorded under their patients.
    let records = accesses(
        &server.grpc,
        &admin,
        AccessesRequest {
            patient_id: "P6".into(),
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    for call in ["dashboard/export", "dashboard/print"] {
        assert!(
            records
                .iter()
                .any(|r| r.call == call && r.subject == "nurse-1"),
            "{call}: {records:?}"
        );
    }
}
