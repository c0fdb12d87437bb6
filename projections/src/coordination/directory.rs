//! The places (facility and unit, with the names the events gave them) and the professionals
//! (id and name) the coordination view has seen, kept by the fold, so that what a reader types
//! ("cardio", "Dupont") is matched against these few rows rather than against every encounter
//! or every referent. Rows are only added: a place or a name no encounter or referent holds any
//! longer matches nothing further on. Each name is kept with its key (`sql::name_key`: lower
//! case, no accents), matched against the key of what the reader typed, so that "geriatrie" finds
//! "GÉRIATRIE" on SQLite (whose `LOWER` knows ASCII only) as on PostgreSQL.
use crate::sql::{insert_rows, name_key, SqlRow, Q};
use sqlx::AnyConnection;
use std::collections::BTreeSet;

pub const PLACES: &str = "places";
pub const PROFESSIONALS: &str = "professionals";

pub fn ddl(p: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE {p}{PLACES} (facility_id TEXT NOT NULL, facility_name TEXT NOT NULL, unit TEXT NOT NULL,
             facility_key TEXT NOT NULL, unit_key TEXT NOT NULL, PRIMARY KEY (facility_id, facility_name, unit))"
        ),
        format!(
            "CREATE TABLE {p}{PROFESSIONALS} (professional_id TEXT NOT NULL, name TEXT NOT NULL,
             name_key TEXT NOT NULL, PRIMARY KEY (professional_id, name))"
        ),
    ]
}

/// A place and the keys of its two names.
struct Place<'a>(&'a str, &'a str, &'a str, String, String);

impl SqlRow for Place<'_> {
    const COLS: usize = 5;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.0)
            .bind(self.1)
            .bind(self.2)
            .bind(self.3.as_str())
            .bind(self.4.as_str())
    }
}

/// A professional and the key of their name.
struct Professional<'a>(&'a str, &'a str, String);

impl SqlRow for Professional<'_> {
    const COLS: usize = 3;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.0).bind(self.1).bind(self.2.as_str())
    }
}

/// Adds the places (facility id, facility name, unit) and professionals (id, name) of a batch.
pub async fn write(
    conn: &mut AnyConnection,
    p: &str,
    places: &BTreeSet<(&str, &str, &str)>,
    professionals: &BTreeSet<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<Place> = places
        .iter()
        .map(|&(f, n, u)| Place(f, n, u, name_key(n), name_key(u)))
        .collect();
    insert_rows(
        conn,
        &format!("{p}{PLACES}"),
        "facility_id, facility_name, unit, facility_key, unit_key",
        "ON CONFLICT (facility_id, facility_name, unit) DO NOTHING",
        &rows,
    )
    .await?;
    let rows: Vec<Professional> = professionals
        .iter()
        .map(|&(id, name)| Professional(id, name, name_key(name)))
        .collect();
    insert_rows(
        conn,
        &format!("{p}{PROFESSIONALS}"),
        "professional_id, name, name_key",
        "ON CONFLICT (professional_id, name) DO NOTHING",
        &rows,
    )
    .await
}

/// The places matching what a reader typed, as an SQL subquery of `(facility_id, facility_name,
/// unit)` rows: the facility's id (`$id`), or a part of the facility's or the unit's name
/// (`$pattern`, a `LIKE` pattern of a key: `sql::key_pattern`), matched against the places; an
/// encounter's own three columns are then compared with them.
pub fn places_sql(p: &str, id: &str, pattern: &str) -> String {
    format!(
        "(SELECT pl.facility_id, pl.facility_name, pl.unit
           FROM {p}{PLACES} pl WHERE pl.facility_id = {id} OR pl.facility_key LIKE {pattern} ESCAPE '\\'
           OR pl.unit_key LIKE {pattern} ESCAPE '\\')"
    )
}

/// The patients having a referent matching what a reader typed: the professional's id (`$id`)
/// or a part of their name (`$pattern`), matched against the professionals, then the referents
/// of the professionals found read through their index (an SQL subquery of patient ids).
pub fn referent_patients_sql(p: &str, id: &str, pattern: &str) -> String {
    format!(
        "SELECT r.patient_id FROM {p}referents r WHERE (r.professional_id, r.name) IN
           (SELECT pr.professional_id, pr.name FROM {p}{PROFESSIONALS} pr
            WHERE pr.professional_id = {id} OR pr.name_key LIKE {pattern} ESCAPE '\\')"
    )
}
