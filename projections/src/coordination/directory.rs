//! The places (facility and unit, with the names the events gave them) and the professionals
//! (id and name) the coordination view has seen, kept by the fold, so that what a reader types
//! ("cardio", "Dupont") is matched against these few rows rather than against every encounter
//! or every referent. Rows are only added: a place or a name no encounter or referent holds any
//! longer matches nothing further on.
use crate::sql::{insert_rows, SqlRow, Q};
use sqlx::AnyConnection;
use std::collections::BTreeSet;

pub const PLACES: &str = "places";
pub const PROFESSIONALS: &str = "professionals";

pub fn ddl(p: &str) -> Vec<String> {
    vec![
        format!(
            "CREATE TABLE {p}{PLACES} (facility_id TEXT NOT NULL, facility_name TEXT NOT NULL, unit TEXT NOT NULL,
             PRIMARY KEY (facility_id, facility_name, unit))"
        ),
        format!(
            "CREATE TABLE {p}{PROFESSIONALS} (professional_id TEXT NOT NULL, name TEXT NOT NULL,
             PRIMARY KEY (professional_id, name))"
        ),
    ]
}

struct Place<'a>(&'a str, &'a str, &'a str);

impl SqlRow for Place<'_> {
    const COLS: usize = 3;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.0).bind(self.1).bind(self.2)
    }
}

struct Professional<'a>(&'a str, &'a str);

impl SqlRow for Professional<'_> {
    const COLS: usize = 2;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.0).bind(self.1)
    }
}

/// Adds the places (facility id, facility name, unit) and professionals (id, name) of a batch.
pub async fn write(
    conn: &mut AnyConnection,
    p: &str,
    places: &BTreeSet<(&str, &str, &str)>,
    professionals: &BTreeSet<(&str, &str)>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<Place> = places.iter().map(|&(f, n, u)| Place(f, n, u)).collect();
    insert_rows(
        conn,
        &format!("{p}{PLACES}"),
        "facility_id, facility_name, unit",
        "ON CONFLICT (facility_id, facility_name, unit) DO NOTHING",
        &rows,
    )
    .await?;
    let rows: Vec<Professional> = professionals
        .iter()
        .map(|&(id, name)| Professional(id, name))
        .collect();
    insert_rows(
        conn,
        &format!("{p}{PROFESSIONALS}"),
        "professional_id, name",
        "ON CONFLICT (professional_id, name) DO NOTHING",
        &rows,
    )
    .await
}

/// The places matching what a reader typed, as an SQL subquery of `(facility_id, facility_name,
/// unit)` rows: the facility's id (`$id`), or a part of the facility's or the unit's name
/// (`$pattern`, a lower-case `LIKE` pattern), matched against the places; an encounter's own
/// three columns are then compared with them.
pub fn places_sql(p: &str, id: &str, pattern: &str) -> String {
    format!(
        "(SELECT pl.facility_id, pl.facility_name, pl.unit
           FROM {p}{PLACES} pl WHERE pl.facility_id = {id} OR LOWER(pl.facility_name) LIKE {pattern} ESCAPE '\\'
           OR LOWER(pl.unit) LIKE {pattern} ESCAPE '\\')"
    )
}

/// The patients having a referent matching what a reader typed: the professional's id (`$id`)
/// or a part of their name (`$pattern`), matched against the professionals, then the referents
/// of the professionals found read through their index (an SQL subquery of patient ids).
pub fn referent_patients_sql(p: &str, id: &str, pattern: &str) -> String {
    format!(
        "SELECT r.patient_id FROM {p}referents r WHERE (r.professional_id, r.name) IN
           (SELECT pr.professional_id, pr.name FROM {p}{PROFESSIONALS} pr
            WHERE pr.professional_id = {id} OR LOWER(pr.name) LIKE {pattern} ESCAPE '\\')"
    )
}
