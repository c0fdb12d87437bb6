//! The dashboard's pages and actions over HTTP, as the dashboard tests drive them: a page read
//! with a session's cookie, the CSRF token its forms carry, an action form posted, and what the
//! log holds after it.
use crate::{client, http_exchange, patient_events};
use journey_proto::v1::{self, Event, HeadRequest};

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

/// The API keys of two coordinators: nurse-1 of cpts-1 in territory T1 ([`COORDINATOR`]) and
/// nurse-9 of cpts-9 in T2 ([`SOUTH`]).
pub const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-south coordinator nurse-9 cpts-9 T2
";
pub const COORDINATOR: &str = "key-0123456789-coord";
pub const SOUTH: &str = "key-0123456789-south";

/// Facility `id`, named "Hôpital `id`", in `territory`, on Paris time.
pub fn facility(id: &str, territory: &str) -> v1::Facility {
    v1::Facility {
        id: id.into(),
        name: format!("Hôpital {id}"),
        territory: territory.into(),
        time_zone: "Europe/Paris".into(),
    }
}

/// GET `path` with `cookie` (a `Cookie: …` header line); the raw response.
pub async fn get(base: &str, path: &str, cookie: &str) -> String {
    http_exchange(base, "GET", path, cookie, "").await
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
