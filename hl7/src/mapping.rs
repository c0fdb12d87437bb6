//! ADT messages → journey events (docs/hl7.md holds the table). Pure: a message and the
//! listener's settings in, events out, or the problem that makes the message unusable.
//!
//! Event ids are UUID v5, so a message sent twice maps to the same events and the log's
//! idempotency writes it once: a movement (`Admitted`, `Transferred`, `Discharged`) that carries
//! its IHE PAM movement id (ZBE-1) is named by (sender, movement id), which is what lets a later
//! cancellation (A11/A12/A13, whose ZBE-1 names the cancelled movement) name the cancelled event
//! without reading the log; every other event by (sender, MSH-10, index of the derived event).
use crate::ack::{ErrorCode, Problem};
use crate::message::Message;
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use journey_proto::prost_types::Timestamp;
use journey_proto::v1::{
    event::Payload, Actor, AdmissionCancelled, AdmitType, Admitted, Code, DischargeCancelled,
    Discharged, Disposition, EdOutcome, EmergencyVisit, Event, Facility, IdentityUpdated,
    PatientRegistered, PatientsMerged, Professional, Role, Setting, Sex, TransferCancelled,
    Transferred,
};
use uuid::Uuid;

/// The listener's settings that shape the events.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The organisation the sender writes as (the partner key's; the actor's organisation).
    pub organisation: String,
    /// The PID-3 assigning authority whose identifier becomes `patient_id` (its namespace id or
    /// its universal id, e.g. an OID); `None`: the first PID-3 repetition.
    pub patient_id_authority: Option<String>,
    /// The time zone of times sent without an offset, and of the facilities (IANA name).
    pub time_zone: chrono_tz::Tz,
}

/// The triggers this listener maps (`MSH-9.2`).
pub const SUPPORTED: &[&str] = &[
    "A01", "A02", "A03", "A04", "A05", "A08", "A11", "A12", "A13", "A28", "A31", "A40",
];

/// The ADT triggers of IHE PAM (and PAM-FR) not mapped yet, each with why: the event catalogue
/// has nothing that records them without distorting the read models (docs/hl7.md). Answered
/// `AR` 201 with that reason, so that the interface engine holds or filters them, never an `AA`
/// for a message nothing was written of.
pub const NOT_YET: &[(&str, &str)] = &[
    ("A06", "a change from outpatient to inpatient: the catalogue has no change of patient class yet"),
    ("A07", "a change from inpatient to outpatient: the catalogue has no change of patient class yet"),
    ("A21", "a leave of absence: the catalogue has no leave of absence yet (a transfer would count as one in the read models)"),
    ("A22", "a return from leave of absence: the catalogue has no leave of absence yet"),
    ("A52", "the cancellation of a leave of absence: the catalogue has no leave of absence yet"),
    ("A53", "the cancellation of a return from leave of absence: the catalogue has no leave of absence yet"),
    ("A47", "a change of patient identifier list: not mapped yet"),
    ("Z99", "a PAM-FR update of a movement: historic corrections are not mapped yet"),
];

/// The INS (Identité Nationale de Santé) assigning authorities in PID-3, by OID: the NIR, the NIA,
/// and the test and demonstration NIRs.
const INS_OIDS: &[&str] = &[
    "1.2.250.1.213.1.4.8",
    "1.2.250.1.213.1.4.9",
    "1.2.250.1.213.1.4.10",
    "1.2.250.1.213.1.4.11",
];

/// The namespace of every id this crate derives (a v5 of the DNS namespace, fixed forever).
fn namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_DNS, b"hl7.journey.backbone")
}

/// The events a message maps to, in the order they are appended (one atomic batch).
pub fn map(m: &Message, s: &Settings) -> Result<Vec<Event>, Problem> {
    check_header(m)?;
    let ctx = Context::new(m, s)?;
    let trigger = m.trigger();
    let payloads: Vec<(Payload, IdKind)> = match trigger.as_str() {
        // An emergency department visit (PV1-2 = E) is no inpatient stay: the catalogue's own
        // event, so that it never counts as an admission in the read models.
        //
        // The visit or admission comes before the registration: a patient the backbone already
        // knows from another organisation is this sender's to register once its own facility
        // holds the patient (the write rights of docs/design.md §6).
        "A04" if emergency(m) => vec![
            (
                Payload::EmergencyVisit(EmergencyVisit {
                    visit_id: encounter(m)?,
                    facility: Some(facility(m, s)),
                    outcome: EdOutcome::Unspecified as i32,
                    diagnoses: diagnoses(m),
                }),
                IdKind::Movement,
            ),
            (
                Payload::PatientRegistered(registration(m)?),
                IdKind::Message,
            ),
        ],
        "A01" | "A04" | "A05" => vec![
            (Payload::Admitted(admission(m, s)?), IdKind::Movement),
            (
                Payload::PatientRegistered(registration(m)?),
                IdKind::Message,
            ),
        ],
        "A02" => vec![(
            Payload::Transferred(Transferred {
                encounter_id: encounter(m)?,
                from_unit: m.get("PV1", 6, 1, 1, 1),
                to_unit: unit(m),
                ..Default::default()
            }),
            IdKind::Movement,
        )],
        "A03" => vec![(
            Payload::Discharged(Discharged {
                encounter_id: encounter(m)?,
                disposition: disposition(m) as i32,
                diagnoses: diagnoses(m),
                destination_facility_id: String::new(),
            }),
            IdKind::Movement,
        )],
        "A11" => vec![(
            Payload::AdmissionCancelled(AdmissionCancelled {
                cancelled_event_id: ctx.cancelled(m)?,
                ..Default::default()
            }),
            IdKind::Message,
        )],
        "A12" => vec![(
            Payload::TransferCancelled(TransferCancelled {
                cancelled_event_id: ctx.cancelled(m)?,
                ..Default::default()
            }),
            IdKind::Message,
        )],
        "A13" => vec![(
            Payload::DischargeCancelled(DischargeCancelled {
                cancelled_event_id: ctx.cancelled(m)?,
                ..Default::default()
            }),
            IdKind::Message,
        )],
        "A28" => vec![(
            Payload::PatientRegistered(registration(m)?),
            IdKind::Message,
        )],
        // A08 from a sender outside PAM-FR (which updates an identity with A31 only).
        "A31" | "A08" => {
            let r = registration(m)?;
            vec![(
                Payload::IdentityUpdated(IdentityUpdated {
                    ins: r.ins,
                    birth_date: r.birth_date,
                    sex: r.sex,
                    gp: r.gp,
                    family_name: r.family_name,
                    given_name: r.given_name,
                    ..Default::default()
                }),
                IdKind::Message,
            )]
        }
        "A40" => vec![(
            Payload::PatientsMerged(PatientsMerged {
                surviving_patient_id: ctx.patient_id.clone(),
                retired_patient_id: retired_patient(m, s)?,
            }),
            IdKind::Message,
        )],
        _ => unreachable!("check_header refuses other triggers"),
    };
    Ok(payloads
        .into_iter()
        .enumerate()
        .map(|(i, (payload, kind))| ctx.event(m, i, kind, payload))
        .collect())
}

/// MSH-9 (an ADT message of a trigger we map) and MSH-12 (HL7 v2).
fn check_header(m: &Message) -> Result<(), Problem> {
    let version = m.value("MSH", 12);
    if !version.starts_with("2.") {
        return Err(Problem::new(
            ErrorCode::UnsupportedVersion,
            "MSH-12",
            format!("version {version:?} is not supported: send HL7 v2 (2.3 to 2.8)"),
        ));
    }
    let kind = m.get("MSH", 9, 1, 1, 1);
    if kind != "ADT" {
        return Err(Problem::new(
            ErrorCode::UnsupportedMessageType,
            "MSH-9",
            format!("message type {kind:?} is not taken here: send ADT messages only"),
        ));
    }
    let trigger = m.trigger();
    if trigger == "A08" && m.value("MSH", 17) == "FRA" {
        return Err(Problem::new(
            ErrorCode::UnsupportedEventCode,
            "MSH-9",
            "ADT^A08 is not part of IHE PAM-FR (MSH-17 = FRA): update an identity with A31",
        ));
    }
    if emergency(m) && !matches!(trigger.as_str(), "A04" | "A08" | "A28" | "A31" | "A40") {
        return Err(Problem::new(
            ErrorCode::UnsupportedEventCode,
            "PV1-2",
            format!(
                "ADT^{trigger} of an emergency department visit (PV1-2 = E) is not mapped yet: the visit is recorded once, at its A04"
            ),
        ));
    }
    if let Some((_, why)) = NOT_YET.iter().find(|(t, _)| *t == trigger) {
        return Err(Problem::new(
            ErrorCode::UnsupportedEventCode,
            "MSH-9",
            format!("ADT^{trigger} is not supported yet, {why}; nothing was written: hold or filter these messages until it is"),
        ));
    }
    if !SUPPORTED.contains(&trigger.as_str()) {
        return Err(Problem::new(
            ErrorCode::UnsupportedEventCode,
            "MSH-9",
            format!(
                "ADT^{trigger} is not taken here: the triggers mapped are {}",
                SUPPORTED.join(", ")
            ),
        ));
    }
    if m.value("MSH", 10).is_empty() {
        return Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            "MSH-10",
            "the message control id (MSH-10) is required: it makes a resent message write nothing twice",
        ));
    }
    Ok(())
}

/// Which id an event gets.
#[derive(Clone, Copy)]
enum IdKind {
    /// (sender, MSH-10, index).
    Message,
    /// (sender, ZBE-1) when the message carries its movement id, else as `Message`.
    Movement,
}

/// What every event of a message shares.
struct Context {
    sender: String,
    control_id: String,
    patient_id: String,
    occurred_at: Timestamp,
    actor: Actor,
    source: String,
}

impl Context {
    fn new(m: &Message, s: &Settings) -> Result<Context, Problem> {
        let sender = format!(
            "{}|{}",
            m.components("MSH", 3).join("^"),
            m.components("MSH", 4).join("^")
        );
        let operator = m.get("EVN", 5, 1, 1, 1);
        Ok(Context {
            patient_id: patient_id(m, s)?,
            occurred_at: occurred_at(m, s)?,
            actor: Actor {
                id: if operator.is_empty() {
                    m.value("MSH", 3)
                } else {
                    operator
                }
                .chars()
                .take(64)
                .collect(),
                role: Role::System as i32,
                organisation: s.organisation.clone(),
                display_name: String::new(),
            },
            source: format!("hl7v2:{}", sender),
            control_id: m.value("MSH", 10),
            sender,
        })
    }

    fn event(&self, m: &Message, index: usize, kind: IdKind, payload: Payload) -> Event {
        let movement = m.get("ZBE", 1, 1, 1, 1);
        let name = match kind {
            IdKind::Movement if !movement.is_empty() => self.movement_key(&movement),
            _ => format!("{}|{}|{index}", self.sender, self.control_id),
        };
        Event {
            event_id: Uuid::new_v5(&namespace(), name.as_bytes()).to_string(),
            patient_id: self.patient_id.clone(),
            occurred_at: Some(self.occurred_at),
            actor: Some(self.actor.clone()),
            source: self.source.clone(),
            correlation_id: self.control_id.clone(),
            payload: Some(payload),
            ..Event::default()
        }
    }

    fn movement_key(&self, movement: &str) -> String {
        format!("{}|movement|{movement}", self.sender)
    }

    /// The id of the movement a cancellation names in ZBE-1 (IHE PAM: the cancelled movement's
    /// own id, with ZBE-4 = CANCEL).
    fn cancelled(&self, m: &Message) -> Result<String, Problem> {
        let movement = m.get("ZBE", 1, 1, 1, 1);
        if movement.is_empty() {
            return Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                "ZBE-1",
                "a cancellation names the movement it cancels in ZBE-1 (IHE PAM); without it the cancelled event cannot be named",
            ));
        }
        let action = m.value("ZBE", 4);
        if !action.is_empty() && action != "CANCEL" {
            return Err(Problem::new(
                ErrorCode::TableValueNotFound,
                "ZBE-4",
                format!("a cancellation carries ZBE-4 = CANCEL, not {action:?}"),
            ));
        }
        let key = self.movement_key(&movement);
        Ok(Uuid::new_v5(&namespace(), key.as_bytes()).to_string())
    }
}

/// The PID-3 identifier of the configured assigning authority (CX-4: its namespace id or its
/// universal id), or the first repetition when none is configured. Never a guess between two.
fn patient_id(m: &Message, s: &Settings) -> Result<String, Problem> {
    pid3_of(m, "PID", s).and_then(|id| checked_id(id, "PID-3"))
}

/// MRG-1, the retired identifier of a merge, chosen as PID-3 is.
fn retired_patient(m: &Message, s: &Settings) -> Result<String, Problem> {
    let id = pid3_of(m, "MRG", s).map_err(|mut p| {
        p.field = Some("MRG-1".into());
        p.text = p.text.replace("PID-3", "MRG-1");
        p
    })?;
    checked_id(id, "MRG-1")
}

/// PID-3 (or MRG-1) by authority.
fn pid3_of(m: &Message, seg: &str, s: &Settings) -> Result<String, Problem> {
    let field = if seg == "MRG" { 1 } else { 3 };
    let Some(segment) = m.segment(seg) else {
        return Err(Problem::new(
            ErrorCode::SegmentSequence,
            seg,
            format!("the {seg} segment is required in this message"),
        ));
    };
    let reps = segment.repetitions(m, field);
    let found = match &s.patient_id_authority {
        None => (reps > 0).then(|| segment.get(m, field, 1, 1, 1)),
        Some(authority) => (1..=reps)
            .find(|r| {
                segment.get(m, field, *r, 4, 1) == *authority
                    || segment.get(m, field, *r, 4, 2) == *authority
            })
            .map(|r| segment.get(m, field, r, 1, 1)),
    };
    match found.filter(|id| !id.is_empty()) {
        Some(id) => Ok(id),
        None => Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            "PID-3",
            match &s.patient_id_authority {
                Some(a) => format!(
                    "PID-3 holds no identifier of the assigning authority {a:?} (--hl7-patient-id-authority)"
                ),
                None => "PID-3 holds no patient identifier".to_string(),
            },
        )),
    }
}

fn checked_id(id: String, field: &str) -> Result<String, Problem> {
    let ok = id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(Problem::new(
            ErrorCode::DataType,
            field,
            format!("{field} identifier {id:?} must be at most 64 letters, digits or . _ : -"),
        ))
    }
}

/// The clinical time: the movement's (ZBE-2), else the admission's or discharge's (PV1-44 /
/// PV1-45 for A01 / A03), else the event's (EVN-6, EVN-2), else the message's (MSH-7).
fn occurred_at(m: &Message, s: &Settings) -> Result<Timestamp, Problem> {
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

/// PID-5/7/8 and PD1-4 (the GP).
fn registration(m: &Message) -> Result<PatientRegistered, Problem> {
    let birth = m.value("PID", 7);
    let birth_date = if birth.len() >= 8 {
        let d = &birth[..8];
        NaiveDate::parse_from_str(d, "%Y%m%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| {
                Problem::new(
                    ErrorCode::DataType,
                    "PID-7",
                    format!("PID-7 {birth:?} is not a date (YYYYMMDD)"),
                )
            })?
    } else {
        String::new()
    };
    let gp_id = m.get("PD1", 4, 1, 1, 1);
    let gp = (!gp_id.is_empty()).then(|| Professional {
        id: gp_id,
        role: Role::Gp as i32,
        name: [m.get("PD1", 4, 1, 3, 1), m.get("PD1", 4, 1, 2, 1)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        organisation: String::new(),
    });
    Ok(PatientRegistered {
        ins: ins(m),
        local_id: m.get("PID", 3, 1, 1, 1),
        birth_date,
        sex: match m.value("PID", 8).as_str() {
            "F" => Sex::Female,
            "M" => Sex::Male,
            "O" | "A" => Sex::Other,
            "U" | "N" => Sex::Unknown,
            _ => Sex::Unspecified,
        } as i32,
        gp,
        family_name: m.get("PID", 5, 1, 1, 1),
        given_name: m.get("PID", 5, 1, 2, 1),
        ..Default::default()
    })
}

/// The INS of PID-3 (an identifier whose assigning authority is an INS OID), kept only when
/// PID-32 says the identity is validated (`VALI`, table 0445 of PAM-FR): a provisional or doubtful
/// identity carries no INS.
fn ins(m: &Message) -> String {
    let Some(pid) = m.segment("PID") else {
        return String::new();
    };
    let validated = (1..=pid.repetitions(m, 32)).any(|r| pid.get(m, 32, r, 1, 1) == "VALI");
    if !validated {
        return String::new();
    }
    (1..=pid.repetitions(m, 3))
        .find(|r| INS_OIDS.contains(&pid.get(m, 3, *r, 4, 2).as_str()))
        .map(|r| pid.get(m, 3, r, 1, 1))
        .unwrap_or_default()
}

/// PV1-19, the visit number: the encounter.
fn encounter(m: &Message) -> Result<String, Problem> {
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
fn unit(m: &Message) -> String {
    let point_of_care = m.get("PV1", 3, 1, 1, 1);
    if point_of_care.is_empty() {
        m.get("ZBE", 7, 1, 1, 1)
    } else {
        point_of_care
    }
}

/// PV1-2 = E: an emergency department visit.
fn emergency(m: &Message) -> bool {
    m.value("PV1", 2) == "E"
}

/// PV1-3.4, else MSH-4, in the listener's time zone.
fn facility(m: &Message, s: &Settings) -> Facility {
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

fn admission(m: &Message, s: &Settings) -> Result<Admitted, Problem> {
    let admit_type = match m.value("PV1", 4).as_str() {
        "U" | "E" | "A" => AdmitType::Emergency,
        _ if matches!(m.value("ZFM", 1).as_str(), "0" | "6" | "7") => AdmitType::TransferIn,
        _ => AdmitType::Elective,
    };
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
fn disposition(m: &Message) -> Disposition {
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
fn diagnoses(m: &Message) -> Vec<Code> {
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

#[cfg(test)]
mod tests;
