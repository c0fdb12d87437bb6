//! The Tasks of a Bulk Data export, of `$everything` and of `GET /fhir/Task?patient=` come from
//! the coordination view asked once per batch of patients
//! (`coordination::patient::task_discharges_of`, two statements per `IN` list): for every patient
//! of a simulated territory, that read gives exactly what the Tasks show of the discharges of the
//! patient's whole follow-up (`coordination::patient::patient`, what the dashboard reads, with its
//! appointments, alerts and care pathways): the same discharges in the same order, the same
//! items due, done and overdue, the same referent, at several times, in batches of any size. On
//! SQLite, and on a PostgreSQL database whose text order is French (ICU), not bytewise.
use journey_projections::coordination::followup::Timeliness;
use journey_projections::{
    coordination::patient::{self, TaskDischarge},
    db,
    runtime::prefix,
};
use journey_tests::*;
use sqlx::{AnyPool, Row};
use std::collections::HashMap;

const DAY: i64 = 86_400;

/// A simulated territory in `journey up` (on `database`, or on its SQLite file), projected:
/// the read model's pool and the live generation's table prefix.
async fn simulated(dir: &std::path::Path, database: Option<&str>) -> (Server, AnyPool, String) {
    let mut args = vec!["--no-reactor"];
    if let Some(url) = database {
        args.extend(["--database-url", url]);
    }
    let server = Server::start(dir, &args);
    simulate_into(
        &server.grpc,
        None,
        &["--patients", "300", "--days", "120", "--seed", "5"],
    );
    let head = read_log(&server.grpc, None).await.last().unwrap().position;
    wait_projected(&server.grpc, head).await;
    let url = match database {
        Some(url) => url.to_string(),
        None => format!("sqlite://{}/read-models.sqlite", dir.display()),
    };
    let pool = db::connect(&url).await.unwrap().pool;
    let generation: i64 =
        sqlx::query("SELECT generation FROM journey_projections WHERE name = 'coordination'")
            .fetch_one(&pool)
            .await
            .unwrap()
            .get(0);
    (server, pool, prefix("coordination", generation))
}

/// What an assertion compares of a patient's discharges: every field, as `Debug` shows them.
fn shown(items: &[TaskDischarge]) -> Vec<String> {
    items.iter().map(|i| format!("{i:#?}")).collect()
}

/// Every patient of the view (in byte order), and one it does not know.
async fn patients(pool: &AnyPool, p: &str) -> Vec<String> {
    let mut ids: Vec<String> = sqlx::query(&format!(
        "SELECT patient_id FROM {p}patients UNION SELECT patient_id FROM {p}encounters"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    ids.sort();
    ids.push("nobody-known".into());
    ids
}

/// For each time, the batched read of every patient (more than one `IN` list) and of smaller
/// batches equals what the Tasks show of each patient's own follow-up; the territory is varied
/// enough for that to mean something.
async fn check(pool: &AnyPool, p: &str) {
    let ids = patients(pool, p).await;
    assert!(
        ids.len() > 256,
        "{} patients: more than one IN list",
        ids.len()
    );
    let keys: Vec<&str> = ids.iter().map(String::as_str).collect();
    let now = chrono::Utc::now().timestamp();
    for at in [now, now - 20 * DAY, now - 75 * DAY] {
        let whole = patient::task_discharges_of(pool, p, &keys, at)
            .await
            .unwrap();
        let (mut several, mut with_referent, mut overdue, mut done) = (0, 0, 0, 0);
        for id in &ids {
            let own: Vec<TaskDischarge> = patient::patient(pool, p, id, at)
                .await
                .unwrap()
                .map(|f| f.discharges)
                .unwrap_or_default()
                .iter()
                .map(TaskDischarge::from)
                .collect();
            let batched = whole.get(id).map_or(&[][..], Vec::as_slice);
            assert_eq!(shown(batched), shown(&own), "{id} at {at}");
            assert!(
                !whole.contains_key(id) || !own.is_empty(),
                "{id}: empty entry"
            );
            several += usize::from(own.len() > 1);
            with_referent += usize::from(own.iter().any(|d| d.referent.is_some()));
            for d in &own {
                let items = [
                    d.items.letter,
                    d.items.reconciliation,
                    d.items.first_contact,
                ];
                overdue += items
                    .iter()
                    .filter(|i| i.state == Timeliness::Overdue)
                    .count();
                done += items.iter().filter(|i| i.done_at.is_some()).count();
            }
        }
        assert!(whole.len() > 100, "{} patients discharged", whole.len());
        assert!(several > 10, "{several} patients discharged more than once");
        assert!(with_referent > 0, "no discharge with a referent");
        assert!(
            overdue > 0 && done > 0,
            "{overdue} items overdue, {done} done"
        );
        assert!(!whole.contains_key("nobody-known"));
        // Batches as an export makes them (a few patients, repeated ids), and one patient as
        // `$everything` asks, give the same.
        for batch in keys.chunks(7) {
            let mut asked = batch.to_vec();
            asked.push(batch[0]);
            let part = patient::task_discharges_of(pool, p, &asked, at)
                .await
                .unwrap();
            for id in batch {
                assert_eq!(
                    part.get(*id).map(|v| shown(v)),
                    whole.get(*id).map(|v| shown(v)),
                    "{id} at {at}: in a batch of {}",
                    batch.len()
                );
                let alone = patient::task_discharges_of(pool, p, &[id], at)
                    .await
                    .unwrap();
                assert_eq!(
                    alone.get(*id).map(|v| shown(v)),
                    whole.get(*id).map(|v| shown(v)),
                    "{id} at {at}: alone"
                );
            }
        }
    }
    let empty: HashMap<String, Vec<TaskDischarge>> = patient::task_discharges_of(pool, p, &[], now)
        .await
        .unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn batched_discharges_are_each_patients_own_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, pool, p) = simulated(dir.path(), None).await;
    check(&pool, &p).await;
}

#[tokio::test]
async fn batched_discharges_are_each_patients_own_on_postgres() {
    let pg = PgDb::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'",
    );
    let dir = tempfile::tempdir().unwrap();
    let (_server, pool, p) = simulated(dir.path(), Some(&pg.url)).await;
    check(&pool, &p).await;
    pool.close().await;
}
