//! What the dashboard tests share: a secure node with its admin token, the events they load as
//! the admin (a registered patient, a stay), a session; then the pages and actions over HTTP: a
//! page read with the session's cookie, the CSRF token its forms carry, an action form posted,
//! and what the log holds after it; the coordination tables dropped under a running node.
use crate::{
    admin_token, append_batch, client, dashboard_sign_in, event, http_exchange, patient_events,
    secure_up, ts, wait_projected_as, Server,
};
use journey_proto::v1::{self, event::Payload, Event, HeadRequest};
use std::path::Path;

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

/// The API keys of two coordinators: nurse-1 of cpts-1 in territory T1 ([`COORDINATOR`]) and
/// nurse-9 of cpts-9 in T2 ([`SOUTH`]).
pub const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-south coordinator nurse-9 cpts-9 T2
";
pub const COORDINATOR: &str = "key-0123456789-coord";
pub const SOUTH: &str = "key-0123456789-south";

/// A secure `journey up` in `dir` with the API `keys` and `flags`, and the admin token it wrote.
pub fn secure_node(dir: &Path, keys: &str, flags: &[&str]) -> (Server, String) {
    (secure_up(dir, keys, flags), admin_token(&dir.join("data")))
}

/// Appends `events` as `admin` and waits for the views to have folded them.
pub async fn load(server: &Server, admin: &str, events: Vec<Event>) {
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let head = append_batch(&mut log, events).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;
}

/// Patient `id` registered as `family`/`given`, born `born`, with local id `IPP-{id}` and, when
/// given, an INS with its OID (the identity then validated, else provisional); `days_ago` days
/// ago.
pub fn registered(
    id: &str,
    (family, given, born, sex): (&str, &str, &str, v1::Sex),
    ins: Option<&str>,
    days_ago: i64,
) -> Event {
    event(
        id,
        ts(days_ago * 86_400),
        Payload::PatientRegistered(v1::PatientRegistered {
            family_name: family.into(),
            given_name: given.into(),
            birth_date: born.into(),
            sex: sex as i32,
            ins: ins.unwrap_or_default().into(),
            ins_oid: ins.map_or(String::new(), |_| "1.2.250.1.213.1.4.8".into()),
            identity_status: if ins.is_some() {
                v1::IdentityStatus::Validated as i32
            } else {
                v1::IdentityStatus::Provisional as i32
            },
            local_id: format!("IPP-{id}"),
            ..Default::default()
        }),
    )
}

/// Facility `id`, named "Hôpital `id`", in `territory`, on Paris time.
pub fn facility(id: &str, territory: &str) -> v1::Facility {
    v1::Facility {
        id: id.into(),
        name: format!("Hôpital {id}"),
        territory: territory.into(),
        time_zone: "Europe/Paris".into(),
    }
}

/// A stay in `unit` at facility `fac` of `territory` (admitted as an emergency three days before)
/// ended `days_ago`, its letter sent and its medication reconciled that day: only the first
/// contact is left to do (overdue after two working days).
pub fn stay(
    patient: &str,
    (fac, territory): (&str, &str),
    unit: &str,
    days_ago: i64,
) -> Vec<Event> {
    let enc = format!("E-{patient}");
    let at = |secs_ago: i64| ts(secs_ago);
    vec![
        event(
            patient,
            at((days_ago + 3) * 86_400),
            Payload::Admitted(v1::Admitted {
                encounter_id: enc.clone(),
                facility: Some(facility(fac, territory)),
                unit: unit.into(),
                setting: v1::Setting::Inpatient as i32,
                admit_type: v1::AdmitType::Emergency as i32,
                ..Default::default()
            }),
        ),
        event(
            patient,
            at(days_ago * 86_400),
            Payload::Discharged(v1::Discharged {
                encounter_id: enc.clone(),
                disposition: v1::Disposition::Home as i32,
                ..Default::default()
            }),
        ),
        event(
            patient,
            at(days_ago * 86_400 - 600),
            Payload::DischargeLetterSent(v1::DischargeLetterSent {
                encounter_id: enc.clone(),
                channel: v1::LetterChannel::Mssante as i32,
                items_present: (1..=11).collect(),
                ..Default::default()
            }),
        ),
        event(
            patient,
            at(days_ago * 86_400 - 1200),
            Payload::MedicationReconciled(v1::MedicationReconciled {
                encounter_id: enc,
                ..Default::default()
            }),
        ),
    ]
}

/// GET `path` with `cookie` (a `Cookie: …` header line); the raw response.
pub async fn get(base: &str, path: &str, cookie: &str) -> String {
    http_exchange(base, "GET", path, cookie, "").await
}

/// Signs in on the dashboard at `base` with `key`: the `Cookie: …` line of the session.
pub async fn session(base: &str, key: &str) -> String {
    dashboard_sign_in(base, key).await.1.expect("a session")
}

/// The CSRF token of the first action form of a page.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no action form: {page}"))
        .to_string()
}

/// Posts an action form for `patient` (with `fields`, already encoded); the raw response.
pub async fn act(base: &str, cookie: &str, patient: &str, fields: &str) -> String {
    let path = format!("/patients/{patient}/actions?lang=en");
    http_exchange(base, "POST", &path, &format!("{cookie}{FORM}"), fields).await
}

/// The log's head position, read as `token`.
pub async fn head(grpc: &str, token: &str) -> u64 {
    let mut log = client::connect(grpc, Some(token)).await.unwrap();
    log.head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position
}

/// The patient's last event in the log, read as `token`.
pub async fn last_event(grpc: &str, token: &str, patient: &str) -> Event {
    let mut log = client::connect(grpc, Some(token)).await.unwrap();
    let events = patient_events(&mut log, patient).await;
    events.into_iter().last().expect("the patient's events")
}

/// Drops every coordination table of the SQLite read models in `dir`'s `data` folder under a
/// running node (its queries then fail for another reason than an unreachable database); how
/// many there were.
pub async fn drop_coordination_tables(dir: &Path) -> usize {
    let url = format!("sqlite://{}/read-models.sqlite", dir.join("data").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'coordination%'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    for (table,) in &tables {
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&db)
            .await
            .unwrap();
    }
    tables.len()
}
