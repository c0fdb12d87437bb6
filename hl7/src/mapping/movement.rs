//! Movements: the stay's admission, transfers and discharge (PV1, ZBE, ZFM, DG1), and the PAM-FR
//! movements — class changes (A06/A07), leaves of absence (A21/A22), their cancellations
//! (A52/A53), corrections (Z99) and the expected discharge (A16/A25). ZBE-5 = `Y` flags a
//! historic movement (one that is not the latest of the stay).
use crate::ack::{ErrorCode, Problem};
use crate::message::Message;
use journey_proto::v1::{
    event::Payload, AdmitType, Admitted, ClassChanged, Code, DischargeExpected, Disposition,
    Facility, LeaveEnded, LeaveStarted, MovementCorrected, Setting,
};

use super::{time, Context, Settings};

/// PV1-19, the visit number: the encounter.
pub(super) fn encounter(m: &Message) -> Result<String, Problem> {
    let id = m.value("PV1", 19);
    if id.is_empty() {
        return Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            "PV1-19",
            "the visit number (PV1-19) is required: it names the encounter (the stay)",
        ));
    }
    Ok(id)
}

/// PV1-3.1, the point of care (the unit); else ZBE-7.1, the responsible unit (PAM-FR).
pub(super) fn unit(m: &Message) -> String {
    let point_of_care = m.get("PV1", 3, 1, 1, 1);
    if point_of_care.is_empty() {
        m.get("ZBE", 7, 1, 1, 1)
    } else {
        point_of_care
    }
}

/// PV1-2 = E: an emergency department visit.
pub(super) fn emergency(m: &Message) -> bool {
    m.value("PV1", 2) == "E"
}

/// PV1-3.4, else MSH-4, in the listener's time zone.
pub(super) fn facility(m: &Message, s: &Settings) -> Facility {
    let in_location = m.get("PV1", 3, 1, 4, 1);
    Facility {
        id: if in_location.is_empty() {
            m.get("MSH", 4, 1, 1, 1)
        } else {
            in_location
        },
        name: String::new(),
        territory: String::new(),
        time_zone: s.time_zone.name().to_string(),
    }
}

/// PV1-4 (`U`, `E`, `A` → emergency), else ZFM-1 (PMSI entry mode 0, 6, 7 → transfer-in); `None`
/// when neither says.
fn stated_admit_type(m: &Message) -> Option<AdmitType> {
    match m.value("PV1", 4).as_str() {
        "U" | "E" | "A" => Some(AdmitType::Emergency),
        _ if matches!(m.value("ZFM", 1).as_str(), "0" | "6" | "7") => Some(AdmitType::TransferIn),
        _ => None,
    }
}

pub(super) fn admission(m: &Message, s: &Settings) -> Result<Admitted, Problem> {
    let admit_type = stated_admit_type(m).unwrap_or(AdmitType::Elective);
    let setting = match m.value("PV1", 2).as_str() {
        "O" | "R" => Setting::DaySurgery,
        _ => Setting::Inpatient,
    };
    Ok(Admitted {
        encounter_id: encounter(m)?,
        facility: Some(facility(m, s)),
        unit: unit(m),
        setting: setting as i32,
        had_group: 0,
        admit_type: admit_type as i32,
        diagnoses: diagnoses(m),
    })
}

/// The discharge's disposition: death (ZFM-2 = 9), against medical advice (PV1-36 = 4,
/// circonstance de sortie), then the PMSI exit mode and destination (ZFM-2, ZFM-4); other when
/// the message says nothing (never a guessed "home").
pub(super) fn disposition(m: &Message) -> Disposition {
    let exit = m.value("ZFM", 2);
    let destination = m.value("ZFM", 4);
    if exit == "9" {
        return Disposition::Deceased;
    }
    if m.value("PV1", 36) == "4" {
        return Disposition::AgainstMedicalAdvice;
    }
    match (exit.as_str(), destination.as_str()) {
        ("8", "6") => Disposition::HomeWithHad,
        ("8", "7") => Disposition::NursingHome,
        ("8", _) => Disposition::Home,
        ("6" | "7" | "0", "1") => Disposition::OtherAcuteHospital,
        ("6" | "7" | "0", "2") => Disposition::Rehab,
        ("6" | "7" | "0", "3") => Disposition::NursingHome,
        ("6" | "7" | "0", "6") => Disposition::HomeWithHad,
        _ => Disposition::Other,
    }
}

/// DG1-3 of every DG1 (code system from DG1-3.3, else DG1-2).
pub(super) fn diagnoses(m: &Message) -> Vec<Code> {
    m.all("DG1")
        .filter_map(|d| {
            let code = d.get(m, 3, 1, 1, 1);
            let mut system = d.get(m, 3, 1, 3, 1);
            if system.is_empty() {
                system = d.get(m, 2, 1, 1, 1);
            }
            (!code.is_empty() && !system.is_empty()).then(|| Code {
                system,
                code,
                display: d.get(m, 3, 1, 2, 1),
            })
        })
        .collect()
}

/// ZBE-5 = `Y`: a historic movement, inserted, cancelled or corrected before the stay's latest.
pub(super) fn historic(m: &Message) -> bool {
    m.value("ZBE", 5) == "Y"
}

/// ZBE-4, the action on the movement: `INSERT` (or nothing) for a new one, `CANCEL`, `UPDATE`.
pub(super) fn action(m: &Message) -> String {
    m.value("ZBE", 4)
}

/// PV1-2 of a class change, the encounter's new class: `I` inpatient, `R` day surgery (temps
/// partiel), `O` or `E` outpatient (an outpatient or emergency encounter, no stay).
fn class(m: &Message) -> Result<Setting, Problem> {
    match m.value("PV1", 2).as_str() {
        "I" => Ok(Setting::Inpatient),
        "R" => Ok(Setting::DaySurgery),
        "O" | "E" => Ok(Setting::Outpatient),
        other => Err(Problem::new(
            if other.is_empty() {
                ErrorCode::RequiredFieldMissing
            } else {
                ErrorCode::TableValueNotFound
            },
            "PV1-2",
            format!("a class change (A06/A07) carries the new patient class in PV1-2 (I, R, O or E), not {other:?}"),
        )),
    }
}

/// A06/A07 with ZBE-4 = INSERT (or nothing): the encounter's new class. The facility and admission
/// type ride along: when the encounter is an emergency visit (PV1-2 was `E`), the change opens a
/// stay there (emergency unless PV1-4 or ZFM-1 says otherwise).
pub(super) fn class_change(m: &Message, s: &Settings) -> Result<ClassChanged, Problem> {
    Ok(ClassChanged {
        encounter_id: encounter(m)?,
        setting: class(m)? as i32,
        unit: unit(m),
        historic: historic(m),
        facility: Some(facility(m, s)),
        admit_type: stated_admit_type(m).map_or(0, |t| t as i32),
    })
}

/// A21: a leave of absence (permission, or a technical platform for less than 48 h), to PV1-3.1
/// when said, expected back at PV2-47.
pub(super) fn leave_started(m: &Message, s: &Settings) -> Result<LeaveStarted, Problem> {
    Ok(LeaveStarted {
        encounter_id: encounter(m)?,
        unit: m.get("PV1", 3, 1, 1, 1),
        expected_return_at: time::optional(m, "PV2", 47, s)?,
        historic: historic(m),
    })
}

/// A22: the return from the leave, to PV1-3.1.
pub(super) fn leave_ended(m: &Message) -> Result<LeaveEnded, Problem> {
    Ok(LeaveEnded {
        encounter_id: encounter(m)?,
        unit: m.get("PV1", 3, 1, 1, 1),
        historic: historic(m),
    })
}

/// A16, a pending discharge: the expected time from EVN-3 (planned event), else PV2-9.
pub(super) fn discharge_expected(m: &Message, s: &Settings) -> Result<DischargeExpected, Problem> {
    let expected_at = match time::optional(m, "EVN", 3, s)? {
        Some(t) => Some(t),
        None => time::optional(m, "PV2", 9, s)?,
    };
    if expected_at.is_none() {
        return Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            "EVN-3",
            "a pending discharge (A16) gives the expected discharge time in EVN-3 or PV2-9",
        ));
    }
    Ok(DischargeExpected {
        encounter_id: encounter(m)?,
        expected_at,
        reason: String::new(),
    })
}

/// A25: the pending discharge withdrawn (no expected time).
pub(super) fn discharge_expectation_withdrawn(m: &Message) -> Result<DischargeExpected, Problem> {
    Ok(DischargeExpected {
        encounter_id: encounter(m)?,
        expected_at: None,
        reason: String::new(),
    })
}

/// Z99 (ZBE-4 = UPDATE): the movement ZBE-1 corrected, as the message now describes it. ZBE-6
/// names the movement's trigger, which says which fields a correction of it carries: its time
/// (ZBE-2) always; the unit (PV1-3.1, else ZBE-7) of an admission, transfer, class change or
/// leave; the class (PV1-2) of an admission or class change; the disposition (ZFM-2/4, PV1-36)
/// and destination facility (PV1-37, its FINESS) of a discharge, when the message says them. A field a correction does not carry is unset, so
/// unchanged. A correction of a pending discharge (A16) is a new expected discharge time.
pub(super) fn correction(m: &Message, ctx: &Context, s: &Settings) -> Result<Payload, Problem> {
    let act = action(m);
    if !act.is_empty() && act != "UPDATE" {
        return Err(Problem::new(
            ErrorCode::TableValueNotFound,
            "ZBE-4",
            format!("a correction (Z99) carries ZBE-4 = UPDATE, not {act:?}"),
        ));
    }
    let original = m.value("ZBE", 6);
    let moved = |pv1_time: Option<usize>| -> Result<_, Problem> {
        match time::optional(m, "ZBE", 2, s)? {
            Some(t) => Ok(Some(t)),
            None => match pv1_time {
                Some(f) => time::optional(m, "PV1", f, s),
                None => Ok(None),
            },
        }
    };
    let mut c = MovementCorrected {
        corrected_event_id: String::new(),
        ..Default::default()
    };
    match original.as_str() {
        "A01" | "A04" | "A05" => {
            c.moved_at = moved(Some(44))?;
            c.unit = unit(m);
            c.setting = match m.value("PV1", 2).as_str() {
                "" => Setting::Unspecified,
                "O" | "R" => Setting::DaySurgery,
                _ => Setting::Inpatient,
            } as i32;
        }
        "A02" => {
            c.moved_at = moved(None)?;
            c.unit = unit(m);
        }
        "A03" => {
            c.moved_at = moved(Some(45))?;
            let said = !m.value("ZFM", 2).is_empty() || !m.value("PV1", 36).is_empty();
            if said {
                c.disposition = disposition(m) as i32;
            }
            c.destination_facility_id = m.get("PV1", 37, 1, 1, 1);
        }
        "A06" | "A07" => {
            c.moved_at = moved(None)?;
            c.unit = unit(m);
            c.setting = class(m)? as i32;
        }
        "A21" | "A22" => {
            c.moved_at = moved(None)?;
            c.unit = m.get("PV1", 3, 1, 1, 1);
        }
        "A16" => return Ok(Payload::DischargeExpected(discharge_expected(m, s)?)),
        "" => {
            return Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                "ZBE-6",
                "a correction (Z99) names in ZBE-6 the trigger of the movement it corrects (A01, A02, A03…)",
            ))
        }
        other => {
            return Err(Problem::new(
                ErrorCode::UnsupportedEventCode,
                "ZBE-6",
                format!("a correction (Z99) of an {other} movement is not mapped: the movements corrected here are A01, A04, A05, A02, A03, A06, A07, A21, A22 and A16"),
            ))
        }
    }
    c.corrected_event_id = ctx.named_movement(m, "a correction (Z99)")?;
    Ok(Payload::MovementCorrected(c))
}
