//! Times: the clinical time of a message's events, and HL7 DTM values read in the listener's
//! time zone when they carry no offset.
use crate::ack::{ErrorCode, Problem};
use crate::message::Message;
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use journey_proto::prost_types::Timestamp;

use super::Settings;

/// The clinical time: the movement's (ZBE-2), else the admission's or discharge's (PV1-44 /
/// PV1-45 for A01 / A03), else the event's (EVN-6, EVN-2), else the message's (MSH-7).
pub(super) fn occurred_at(m: &Message, s: &Settings) -> Result<Timestamp, Problem> {
    let pv1 = match m.trigger().as_str() {
        "A01" | "A04" | "A05" => Some(("PV1-44", m.value("PV1", 44))),
        "A03" => Some(("PV1-45", m.value("PV1", 45))),
        _ => None,
    };
    let candidates = [("ZBE-2", m.value("ZBE", 2))]
        .into_iter()
        .chain(pv1)
        .chain([
            ("EVN-6", m.value("EVN", 6)),
            ("EVN-2", m.value("EVN", 2)),
            ("MSH-7", m.value("MSH", 7)),
        ]);
    for (field, value) in candidates {
        if value.is_empty() {
            continue;
        }
        return timestamp(&value, s.time_zone).ok_or_else(|| {
            Problem::new(
                ErrorCode::DataType,
                field,
                format!("{field} {value:?} is not an HL7 date and time (YYYYMMDDHHMM[SS][+ZZZZ])"),
            )
        });
    }
    Err(Problem::new(
        ErrorCode::RequiredFieldMissing,
        "MSH-7",
        "the message gives no time (ZBE-2, EVN-2 or MSH-7)",
    ))
}

/// An HL7 DTM (`YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]`); without an offset, in `tz`.
pub fn timestamp(value: &str, tz: chrono_tz::Tz) -> Option<Timestamp> {
    let (digits, offset) = match value.find(['+', '-']) {
        Some(i) => (&value[..i], Some(&value[i..])),
        None => (value, None),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.len() < 4
        || whole.len() > 14
        || whole.len() % 2 == 1
        || !whole.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let n = |from: usize, default: u32| -> u32 {
        whole
            .get(from..from + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let year: i32 = whole[..4].parse().ok()?;
    let date = NaiveDate::from_ymd_opt(year, n(4, 1), n(6, 1))?;
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        let f: String = fraction.chars().take(9).collect();
        let v: u32 = f.parse().ok()?;
        v * 10u32.pow(9 - f.len() as u32)
    };
    let local: NaiveDateTime = date.and_hms_nano_opt(n(8, 0), n(10, 0), n(12, 0), nanos)?;
    let utc = match offset {
        Some(o) => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let hhmm = &o[1..];
            if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let secs = sign
                * (hhmm[..2].parse::<i32>().ok()? * 3600 + hhmm[2..].parse::<i32>().ok()? * 60);
            chrono::FixedOffset::east_opt(secs)?
                .from_local_datetime(&local)
                .single()?
                .to_utc()
        }
        None => tz.from_local_datetime(&local).earliest()?.to_utc(),
    };
    Some(Timestamp {
        seconds: utc.timestamp(),
        nanos: utc.timestamp_subsec_nanos() as i32,
    })
}

/// An optional time field (EVN-3, PV2-9, PV2-47): `None` when empty, a precise refusal when it is
/// not an HL7 date and time.
pub(super) fn optional(
    m: &Message,
    seg: &str,
    field: usize,
    s: &Settings,
) -> Result<Option<Timestamp>, Problem> {
    let value = m.value(seg, field);
    if value.is_empty() {
        return Ok(None);
    }
    timestamp(&value, s.time_zone).map(Some).ok_or_else(|| {
        Problem::new(
            ErrorCode::DataType,
            &format!("{seg}-{field}"),
            format!(
                "{seg}-{field} {value:?} is not an HL7 date and time (YYYYMMDDHHMM[SS][+ZZZZ])"
            ),
        )
    })
}
