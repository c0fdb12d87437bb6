//! `journey import …`: bulk loading of external data sets through the gRPC Append API.
//!
//! - [`synthea`]: a Synthea CSV export (`journey import synthea <dir> [--strict]`).
//! - [`csv_table`]: reading a CSV file by column name with line numbers.
//!
//! Every importer derives event ids deterministically (UUID v5 over the source row's identity),
//! so a re-run appends nothing twice, and reports every row it could not use with its file, line
//! and id.
pub mod csv_table;
pub mod synthea;

use journey_proto::prost_types::Timestamp;
use std::fmt;

/// A source row that could not be used, as reported to the user.
#[derive(Debug, Clone)]
pub struct Problem {
    pub file: &'static str,
    /// Line in the file (1 = the header).
    pub line: u64,
    /// The row's id (or a description of it); may be empty.
    pub id: String,
    pub reason: String,
}

impl Problem {
    pub fn malformed(file: &'static str, line: u64, id: String, reason: impl Into<String>) -> Self {
        Problem {
            file,
            line,
            id,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if !self.id.is_empty() {
            write!(f, " ({})", self.id)?;
        }
        write!(f, ": {}", self.reason)
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

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SS[.fff][Z]` (UTC).
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
        let t = t.strip_suffix('Z').unwrap_or(t);
        let (hms, frac) = match t.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (t, None),
        };
        let [h, mi, se] = three_numbers(hms, ':', [2, 2, 2])?;
        if h > 23 || mi > 59 || se > 60 {
            return None;
        }
        seconds += i64::from(h * 3600 + mi * 60 + se);
        if let Some(f) = frac {
            if f.is_empty() || f.len() > 9 {
                return None;
            }
            nanos = (num(f)? * 10u32.pow(9 - f.len() as u32)) as i32;
        }
    }
    Some(Timestamp { seconds, nanos })
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
        ] {
            assert!(parse_time(bad).is_none(), "{bad}");
        }
    }
}
