//! Reading one CSV file by column name, keeping each record's line number for reports.
//!
//! A file is read whole (the Synthea exports the importer is meant for are a few MB). Columns are
//! found by header name, so extra or re-ordered columns do not matter; a missing required column
//! makes the whole file unusable. Malformed records (wrong field count, invalid UTF-8) are
//! reported and left out.
use crate::{Origin, Problem};
use anyhow::Context;
use std::{collections::HashMap, path::Path, sync::Arc};

/// One CSV file: its header and its well-formed records.
pub struct Table {
    /// File name as reported (e.g. `encounters.csv`).
    pub file: Arc<str>,
    columns: HashMap<String, usize>,
    /// (line of the record in the file, 1 = header; the record)
    pub rows: Vec<(u64, csv::StringRecord)>,
}

/// A column index known to exist in a [`Table`].
#[derive(Clone, Copy, Debug)]
pub struct Col(usize);

impl Table {
    /// Reads `dir/file`. `Ok(None)` when the file does not exist. Missing `required` columns are
    /// reported (line 1) and give `Ok(None)` too; malformed records are reported and skipped.
    pub fn read(
        dir: &Path,
        file: &'static str,
        required: &[&str],
        problems: &mut Vec<Problem>,
    ) -> anyhow::Result<Option<Table>> {
        let path = dir.join(file);
        if !path.exists() {
            return Ok(None);
        }
        let file: Arc<str> = Arc::from(file);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let header = reader
            .headers()
            .with_context(|| format!("cannot read the header of {}", path.display()))?
            .clone();
        let columns: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_owned(), i))
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !columns.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            problems.push(Problem::malformed(
                Origin::line(&file, 1, ""),
                format!("missing column(s) {}: file skipped", missing.join(", ")),
            ));
            return Ok(None);
        }
        let mut rows = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            let line = reader.position().line() + 1;
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let line = record.position().map_or(line, |p| p.line());
                    if record.len() != header.len() {
                        problems.push(Problem::malformed(
                            Origin::line(&file, line, record.get(0).unwrap_or_default()),
                            format!(
                                "{} fields where the header has {}",
                                record.len(),
                                header.len()
                            ),
                        ));
                        continue;
                    }
                    rows.push((line, record.clone()));
                }
                Err(e) => {
                    let line = e.position().map_or(line, |p| p.line());
                    match e.kind() {
                        csv::ErrorKind::Io(_) => {
                            return Err(anyhow::Error::new(e)
                                .context(format!("cannot read {}", path.display())))
                        }
                        _ => problems.push(Problem::malformed(
                            Origin::line(&file, line, ""),
                            format!("unreadable record: {e}"),
                        )),
                    }
                }
            }
        }
        Ok(Some(Table {
            file,
            columns,
            rows,
        }))
    }

    /// A required column (checked by [`Table::read`]).
    pub fn col(&self, name: &str) -> Col {
        Col(*self
            .columns
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not a required column of {}", self.file)))
    }

    /// An optional column.
    pub fn opt_col(&self, name: &str) -> Option<Col> {
        self.columns.get(name).copied().map(Col)
    }
}

/// The trimmed value of a column in a record.
pub fn get(record: &csv::StringRecord, col: Col) -> &str {
    record.get(col.0).unwrap_or_default().trim()
}

/// The trimmed value of an optional column ("" when the column is absent).
pub fn get_opt(record: &csv::StringRecord, col: Option<Col>) -> &str {
    col.map_or("", |c| get(record, c))
}
