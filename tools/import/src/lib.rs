//! `journey import …`: bulk loading of external data sets through the gRPC Append API.
//!
//! A Synthea population is read from either of its export forms into the same records
//! ([`records`]), which one mapping ([`mapping`]) turns into journey events, appended by
//! [`append`]; [`run`] is the verb:
//! - [`synthea_csv`]: a Synthea CSV export (`journey import synthea <dir> [--strict]`), read
//!   with [`csv_table`] (by column name, with line numbers);
//! - [`fhir_bulk`]: FHIR R4 resources, Bulk Data NDJSON files or Bundles (Synthea's default
//!   output) (`journey import fhir <path> [--strict]`).
//!
//! Every event id is derived deterministically (UUID v5 over the identity of what it comes from,
//! the same whichever form it was read from), so a re-run appends nothing twice and the same
//! population imported as CSV or as FHIR gives the same events; every row the import could not
//! use is reported with its file, line (or Bundle entry) and id.
pub mod append;
pub mod csv_table;
pub mod fhir_bulk;
pub mod mapping;
pub mod records;
pub mod run;
pub mod synthea_csv;

pub use run::{run, Format, Options};

use journey_proto::prost_types::Timestamp;
use std::{fmt, sync::Arc};

/// Where a record comes from: a file and a line in it (1 = the first line, or a CSV header), or
/// the number of an entry in a Bundle; and the record's id (or a description of it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: Arc<str>,
    pub line: u64,
    /// `line` counts the entries of a Bundle (from 1), not lines.
    pub entry: bool,
    pub id: String,
}

impl Origin {
    pub fn line(file: &Arc<str>, line: u64, id: impl Into<String>) -> Origin {
        Origin {
            file: file.clone(),
            line,
            entry: false,
            id: id.into(),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entry {
            write!(f, "{} entry {}", self.file, self.line)?;
        } else {
            write!(f, "{}:{}", self.file, self.line)?;
        }
        if !self.id.is_empty() {
            write!(f, " ({})", self.id)?;
        }
        Ok(())
    }
}

/// What a problem costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The record is not used: nothing is appended for it.
    Malformed,
    /// The record is used without one of its codes (an encounter's malformed reason code).
    CodeDropped,
}

/// A source record that could not be used (or not whole), as reported to the user.
#[derive(Debug, Clone)]
pub struct Problem {
    pub origin: Origin,
    pub severity: Severity,
    pub reason: String,
}

impl Problem {
    pub fn malformed(origin: Origin, reason: impl Into<String>) -> Self {
        Problem {
            origin,
            severity: Severity::Malformed,
            reason: reason.into(),
        }
    }

    pub fn code_dropped(origin: Origin, reason: impl Into<String>) -> Self {
        Problem {
            origin,
            severity: Severity::CodeDropped,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.severity {
            Severity::Malformed => "malformed",
            Severity::CodeDropped => "code dropped",
        };
        write!(f, "{what} {}: {}", self.origin, self.reason)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The three numbers of `a<sep>b<sep>c`, each of exactly its width in digits.
fn three_numbers(s: &str, sep: char, widths: [usize; 3]) -> Option<[u32; 3]> {
    let mut parts = s.split(sep);
    let mut out = [0; 3];
    for (n, width) in out.iter_mut().zip(widths) {
        let part = parts.next()?;
        if part.len() != width {
            return None;
        }
        *n = num(part)?;
    }
    parts.next().is_none().then_some(out)
}

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS[.fff]` followed by `Z`, a UTC
/// offset `±HH:MM` (FHIR `dateTime`), or nothing (UTC).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let [y, m, d] = three_numbers(date, '-', [4, 2, 2])?;
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let mut seconds = days_from_civil(y, m, d) * 86_400;
    let mut nanos = 0;
    if let Some(t) = time {
        let (t, offset) = split_offset(t)?;
        let (hms, frac) = match t.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (t, None),
        };
        let [h, mi, se] = three_numbers(hms, ':', [2, 2, 2])?;
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        seconds += i64::from(h * 3600 + mi * 60 + se) - offset;
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 {
                return None;
            }
            nanos = (num(f)? * 10u32.pow(9 - f.len() as u32)) as i32;
        }
    }
    Some(Timestamp { seconds, nanos })
}

/// A time of day and its offset from UTC in seconds (`Z` or none: 0).
fn split_offset(t: &str) -> Option<(&str, i64)> {
    if let Some(t) = t.strip_suffix('Z') {
        return Some((t, 0));
    }
    let Some(i) = t.rfind(['+', '-']) else {
        return Some((t, 0));
    };
    let (t, off) = t.split_at(i);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let (h, m) = off[1..].split_once(':')?;
    let (h, m) = (num(h)?, num(m)?);
    if h > 14 || m > 59 || off.len() != 6 {
        return None;
    }
    Some((t, sign * i64::from(h * 3600 + m * 60)))
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn parses_dates_and_times() {
        assert_eq!(parse_time("1970-01-01").unwrap().seconds, 0);
        assert_eq!(
            parse_time("2023-01-27T16:17:47Z").unwrap().seconds,
            1_674_836_267
        );
        assert_eq!(parse_time("1911-11-03").unwrap().seconds, -1_835_481_600);
        assert_eq!(
            parse_time("1989-05-09T20:35:22-04:00").unwrap().seconds,
            parse_time("1989-05-10T00:35:22Z").unwrap().seconds
        );
        assert_eq!(
            parse_time("2024-02-29T00:00:00.5Z").unwrap().nanos,
            500_000_000
        );
        for bad in [
            "",
            "2023-13-01",
            "2023-02-30",
            "2023-1-01",
            "20x3-01-01",
            "2023-01-01T25:00:00Z",
            "2023-01-01T10:00:00+5:00",
            "2023-01-01T10:00:00+25:00",
        ] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }
}
