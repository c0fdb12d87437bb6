//! Working days for coordination deadlines (docs/design.md §5): Monday to Friday, French public
//! holidays excluded, in Europe/Paris time.
use chrono::{Datelike, Days, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Europe::Paris;

/// Easter Sunday of `year` (Gregorian, anonymous algorithm).
fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("valid Easter date")
}

/// The eleven French public holidays (metropolitan) of `year`.
pub fn french_holidays(year: i32) -> [NaiveDate; 11] {
    let d = |m, d| NaiveDate::from_ymd_opt(year, m, d).expect("valid date");
    let e = easter(year);
    [
        d(1, 1),
        e + Days::new(1), // Easter Monday
        d(5, 1),
        d(5, 8),
        e + Days::new(39), // Ascension
        e + Days::new(50), // Whit Monday
        d(7, 14),
        d(8, 15),
        d(11, 1),
        d(11, 11),
        d(12, 25),
    ]
}

pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
        && !french_holidays(date.year()).contains(&date)
}

/// The calendar date in Paris of a UTC instant (seconds).
pub fn paris_date(utc_secs: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(utc_secs, 0)
        .unwrap_or_default()
        .with_timezone(&Paris)
        .date_naive()
}

/// The first instant (UTC seconds) of a Paris calendar date.
pub fn paris_midnight(date: NaiveDate) -> i64 {
    Paris
        .from_local_datetime(&date.and_time(NaiveTime::MIN))
        .earliest()
        .map_or(0, |t| t.timestamp())
}

/// The end (exclusive, UTC seconds) of the Paris day holding `utc_secs`: a same-day deadline.
pub fn end_of_day(utc_secs: i64) -> i64 {
    paris_midnight(paris_date(utc_secs) + Days::new(1))
}

/// The deadline of "within `n` working days" of an instant: the end (exclusive) of the `n`-th
/// working day after its Paris date. Discharged on Friday, 2 working days: due by Tuesday
/// midnight (Monday is the first).
pub fn working_days_deadline(utc_secs: i64, n: u32) -> i64 {
    let mut date = paris_date(utc_secs);
    let mut left = n;
    while left > 0 {
        date = date + Days::new(1);
        if is_working_day(date) {
            left -= 1;
        }
    }
    paris_midnight(date + Days::new(1))
}

/// The Monday (Paris date) of the ISO week holding `utc_secs`.
pub fn week_start(utc_secs: i64) -> NaiveDate {
    let d = paris_date(utc_secs);
    d - Days::new(d.weekday().num_days_from_monday() as u64)
}

pub fn week_start_secs(utc_secs: i64) -> i64 {
    paris_midnight(week_start(utc_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }
    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn easter_dates() {
        for (y, e) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
        ] {
            assert_eq!(easter(y), date(e), "{y}");
        }
    }

    #[test]
    fn holidays_of_2026() {
        let h = french_holidays(2026);
        for d in [
            "2026-01-01",
            "2026-04-06",
            "2026-05-01",
            "2026-05-08",
            "2026-05-14",
            "2026-05-25",
            "2026-07-14",
            "2026-08-15",
            "2026-11-01",
            "2026-11-11",
            "2026-12-25",
        ] {
            assert!(h.contains(&date(d)), "{d}");
        }
        assert!(!is_working_day(date("2026-05-14")));
        assert!(!is_working_day(date("2026-11-28")), "a Saturday");
        assert!(is_working_day(date("2026-11-24")));
    }

    #[test]
    fn two_working_days() {
        // (discharge instant UTC, deadline = midnight Paris starting the day after the 2nd working day)
        let cases = [
            // Tuesday → due by end of Thursday.
            ("2026-11-24T10:00:00Z", "2026-11-26T23:00:00Z"),
            // Friday → Monday, Tuesday: end of Tuesday.
            ("2026-11-27T15:00:00Z", "2026-12-01T23:00:00Z"),
            // Late Friday UTC evening is Saturday in Paris: Monday, Tuesday still.
            ("2026-11-27T23:30:00Z", "2026-12-01T23:00:00Z"),
            // Wednesday 13 May 2026: Thursday 14 is Ascension → Friday 15, Monday 18 (CEST, UTC+2).
            ("2026-05-13T08:00:00Z", "2026-05-18T22:00:00Z"),
            // Thursday 24 Dec 2026: 25 holiday, weekend → Monday 28, Tuesday 29.
            ("2026-12-24T09:00:00Z", "2026-12-29T23:00:00Z"),
        ];
        for (at, due) in cases {
            assert_eq!(
                working_days_deadline(utc(at), 2),
                utc(due),
                "discharged {at}"
            );
        }
    }

    #[test]
    fn same_day_in_paris() {
        // 23:30 UTC on 24 Nov is 00:30 on 25 Nov in Paris: the day ends at 25 Nov 23:00 UTC.
        assert_eq!(
            end_of_day(utc("2026-11-24T23:30:00Z")),
            utc("2026-11-25T23:00:00Z")
        );
        assert_eq!(
            end_of_day(utc("2026-11-24T10:00:00Z")),
            utc("2026-11-24T23:00:00Z")
        );
        assert_eq!(week_start(utc("2026-11-29T12:00:00Z")), date("2026-11-23"));
    }
}
