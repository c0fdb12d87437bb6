//! The indicators page's unit filter (issue 18): a reader types a part of a unit's name and the
//! weekly figures and the discharge-planning figures count that unit's discharges only, the form
//! keeping what was typed, in French and English; the same answers on SQLite and PostgreSQL (two
//! secure `journey up` over the same events, the second on a fresh PostgreSQL database).
use journey_proto::v1;
use journey_tests::dashboard::{
    get, load, registered, secure_node, session, stay, COORDINATOR, KEYS,
};
use journey_tests::*;

/// The discharges the weekly table of an indicators page counts, all weeks summed.
fn weekly_discharges(page: &str) -> u64 {
    page.split("<tr data-week=\"")
        .skip(1)
        .map(|row| {
            let cell = row.split("<td>").nth(2).expect("a discharges cell");
            cell.split("</td>").next().unwrap().parse::<u64>().unwrap()
        })
        .sum()
}

/// The discharges the planning section counts ("… (complete/discharges)" on its first row).
fn planning_discharges(page: &str) -> String {
    page.split("data-indicator=\"complete\"")
        .nth(1)
        .and_then(|row| row.split("<td>").nth(1))
        .and_then(|cell| cell.split("</td>").next())
        .unwrap_or_else(|| panic!("no planning section: {page}"))
        .to_string()
}

/// The stays the letters' quality (QLS) section scores.
fn qls_stays(page: &str) -> String {
    page.split("data-indicator=\"qls-stays\"")
        .nth(1)
        .and_then(|row| row.split("<td>").nth(1))
        .and_then(|cell| cell.split("</td>").next())
        .unwrap_or_else(|| panic!("no QLS section: {page}"))
        .to_string()
}

/// Four patients of territory T1 discharged ten days ago: two from cardiology at F1, one from
/// pneumology and one from geriatrics (its name in capitals with an accent) at F1.
fn events() -> Vec<v1::Event> {
    let mut events = Vec::new();
    for (id, unit) in [
        ("P1", "Cardiologie A"),
        ("P2", "cardiologie B"),
        ("P3", "Pneumologie"),
        ("P4", "GÉRIATRIE"),
    ] {
        let who = ("Martin", id, "1950-01-01", v1::Sex::Female);
        events.push(registered(id, who, None, 40));
        events.extend(stay(id, ("F1", "T1"), unit, 10));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_filter_counts_that_units_discharges_alike_on_sqlite_and_postgres() {
    let pg = PgDb::create();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (lite, admin) = secure_node(d1.path(), KEYS, &["--no-reactor"]);
    let (post, post_admin) = secure_node(
        d2.path(),
        KEYS,
        &["--no-reactor", "--database-url", &pg.url],
    );
    load(&lite, &admin, events()).await;
    load(&post, &post_admin, events()).await;

    let mut answers = Vec::new();
    for server in [&lite, &post] {
        let base = &server.http;
        let cookie = session(base, COORDINATOR).await;
        let mut figures = Vec::new();
        for (unit, discharges, planning) in [
            ("", 4, "0 % (0/4)"),
            ("cardio", 2, "0 % (0/2)"),
            ("CARDIOLOGIE b", 1, "0 % (0/1)"),
            ("pneumo", 1, "0 % (0/1)"),
            ("neuro", 0, "—"),
            // Whatever the case and the accents, on SQLite (whose LOWER knows ASCII only) too
            ("gériatrie", 1, "0 % (0/1)"),
            ("Geriatrie", 1, "0 % (0/1)"),
            ("ÉRIA", 1, "0 % (0/1)"),
        ] {
            let path = format!("/indicators?lang=en&unit={}", query_value(unit));
            let page = get(base, &path, &cookie).await;
            assert_eq!(http_status(&page), 200, "{path}: {page}");
            assert_eq!(weekly_discharges(&page), discharges, "{path}: {page}");
            assert_eq!(planning_discharges(&page), planning, "{path}: {page}");
            // The letters' quality counts the same stays.
            assert_eq!(qls_stays(&page), discharges.to_string(), "{path}: {page}");
            // The form keeps what was typed.
            assert!(
                page.contains(&format!("<input name=\"unit\" value=\"{unit}\">")),
                "{path}: {page}"
            );
            figures.push((
                weekly_discharges(&page),
                planning_discharges(&page),
                qls_stays(&page),
            ));
        }
        // The label in both languages.
        let fr = get(base, "/indicators?lang=fr&unit=cardio", &cookie).await;
        assert!(fr.contains("Service (nom ou partie du nom)"), "{fr}");
        let en = get(base, "/indicators?lang=en", &cookie).await;
        assert!(en.contains("Unit (name or part of it)"), "{en}");
        answers.push(figures);
    }
    assert_eq!(answers[0], answers[1], "SQLite, then PostgreSQL");
}
