//! What the indicators count: a period, and optionally a facility, a territory and the units
//! whose name holds what a reader typed. One scope for every read model's figures (the weekly
//! indicators, the QLS, the discharge-planning figures), filtered by the same SQL.

/// Discharges in `[from, to)` (UTC seconds) of one facility or territory and of the units whose
/// name holds `unit` (any case and accents), each empty for all; `readmission_prefix` names the
/// live readmission tables in the same database, for the figures that join them, and `places`
/// the coordination view's live directory of places (`coordination::directory::PLACES`: `unit`
/// and `unit_key` columns), which finds the units named (without it, a unit's name is matched by
/// `LOWER`, which SQLite knows for ASCII only).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub readmission_prefix: Option<&'a str>,
    pub places: Option<&'a str>,
    pub from: i64,
    pub to: i64,
    pub facility_id: &'a str,
    pub territory: &'a str,
    pub unit: &'a str,
}

impl Scope<'_> {
    /// The conditions (each starting with ` AND `) putting rows `alias` in the scope's place,
    /// with their values, bound from `$n+1` on. A row's unit is its own column, or, with
    /// `unit_in`, that of the row's encounter (same patient and encounter id) in that table.
    pub fn place_sql(&self, alias: &str, unit_in: Option<&str>, n: usize) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        if !self.facility_id.is_empty() {
            binds.push(self.facility_id.to_string());
            sql += &format!(" AND {alias}.facility_id = ${}", n + binds.len());
        }
        if !self.territory.is_empty() {
            binds.push(self.territory.to_string());
            sql += &format!(" AND {alias}.territory = ${}", n + binds.len());
        }
        if !self.unit.trim().is_empty() {
            let mut unit_named = |column: &str| match self.places {
                Some(places) => {
                    binds.push(crate::sql::key_pattern(self.unit));
                    format!(
                        "{column} IN (SELECT pl.unit FROM {places} pl WHERE pl.unit_key LIKE ${} ESCAPE '\\')",
                        n + binds.len()
                    )
                }
                None => {
                    binds.push(crate::sql::contains_pattern(self.unit));
                    format!("LOWER({column}) LIKE ${} ESCAPE '\\'", n + binds.len())
                }
            };
            sql += &match unit_in {
                None => format!(" AND {}", unit_named(&format!("{alias}.unit"))),
                Some(encounters) => format!(
                    " AND EXISTS (SELECT 1 FROM {encounters} u WHERE u.patient_id = {alias}.patient_id
                       AND u.encounter_id = {alias}.encounter_id AND {})",
                    unit_named("u.unit")
                ),
            };
        }
        (sql, binds)
    }
}
