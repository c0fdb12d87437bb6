//! What one access record holds. Every free-text field has a fixed bound: what a caller sends
//! (a purpose header, a request printed in the detail) cannot grow the log beyond it.

/// Bound of the short fields (subject, role, organisation, call, patient id, purpose, outcome).
pub const SHORT: usize = 128;
/// Bound of the detail.
pub const DETAIL: usize = 512;
/// At most this many patients are listed for one list read (a page is at most 1,000 rows).
pub const PATIENTS: usize = 1_000;

/// `text` cut to at most `max` bytes on a character boundary, marked with "…" when cut.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A record as stored (and read back).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    pub id: String,
    /// Its position in the chain (`None`: written before the access log was chained).
    pub seq: Option<i64>,
    pub at_micros: i64,
    pub subject: String,
    pub role: String,
    pub organisation: String,
    pub call: String,
    pub patient_id: String,
    pub purpose: String,
    pub outcome: String,
    pub detail: String,
    /// The address the call came from ("" when unknown).
    pub peer: String,
    /// How many calls the record stands for (refusals counted per minute: more than one).
    pub calls: i64,
    /// The patients a list read returned.
    pub patients: Vec<String>,
    pub prev_hash: String,
    pub hash: String,
}

impl Record {
    /// A record to add: a new id, every field bounded, the patients sorted once each (its place
    /// in the chain is given when it is written).
    pub fn bounded_fields(mut self) -> Record {
        self.id = uuid::Uuid::new_v4().to_string();
        for (field, max) in [
            (&mut self.subject, SHORT),
            (&mut self.role, SHORT),
            (&mut self.organisation, SHORT),
            (&mut self.call, SHORT),
            (&mut self.patient_id, SHORT),
            (&mut self.purpose, SHORT),
            (&mut self.outcome, SHORT),
            (&mut self.peer, SHORT),
            (&mut self.detail, DETAIL),
        ] {
            *field = bounded(field, max);
        }
        self.patients.truncate(PATIENTS);
        for p in &mut self.patients {
            *p = bounded(p, SHORT);
        }
        self.patients.sort();
        self.patients.dedup();
        self.calls = self.calls.max(1);
        self
    }

    /// The patients as stored in the record's own row: one per line.
    pub(crate) fn patients_text(&self) -> String {
        self.patients.join("\n")
    }

    pub(crate) fn patients_of(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// The columns a record is read back from, in [`decode`]'s order.
pub const COLUMNS: &str = "id, seq, at_micros, subject, role, organisation, call, patient_id, purpose, outcome, detail, peer, calls, patients, prev_hash, hash";

/// A record read with [`COLUMNS`].
pub(crate) fn decode(r: &sqlx::any::AnyRow) -> Result<Record, sqlx::Error> {
    use sqlx::Row;
    Ok(Record {
        id: r.try_get(0)?,
        seq: r.try_get(1)?,
        at_micros: r.try_get(2)?,
        subject: r.try_get(3)?,
        role: r.try_get(4)?,
        organisation: r.try_get(5)?,
        call: r.try_get(6)?,
        patient_id: r.try_get(7)?,
        purpose: r.try_get(8)?,
        outcome: r.try_get(9)?,
        detail: r.try_get(10)?,
        peer: r.try_get(11)?,
        calls: r.try_get(12)?,
        patients: Record::patients_of(&r.try_get::<String, _>(13)?),
        prev_hash: r.try_get::<Option<String>, _>(14)?.unwrap_or_default(),
        hash: r.try_get::<Option<String>, _>(15)?.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_on_a_character_boundary() {
        assert_eq!(bounded("short", 10), "short");
        let long = "é".repeat(100);
        let b = bounded(&long, 11);
        assert!(b.len() <= 11, "{b}");
        assert!(b.ends_with('…'));
        assert!(b.starts_with("éééé"));
        let r = Record {
            purpose: "p".repeat(10_000),
            detail: "d".repeat(100_000),
            patients: vec!["b".into(), "a".into(), "b".into()],
            ..Default::default()
        }
        .bounded_fields();
        assert!(r.purpose.len() <= SHORT && r.detail.len() <= DETAIL);
        assert_eq!(r.patients, ["a", "b"]);
        assert_eq!(r.calls, 1);
    }
}
