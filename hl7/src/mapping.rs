//! ADT messages → journey events (docs/hl7.md holds the table). Pure: a message and the
//! listener's settings in, events out, or the problem that makes the message unusable. Who the
//! message is about is read in [`identity`], the movements in [`movement`], times in [`time`].
//!
//! Event ids are UUID v5, so a message sent twice maps to the same events and the log's
//! idempotency writes it once: a movement (`Admitted`, `Transferred`, `Discharged`,
//! `LeaveStarted`, `LeaveEnded`, `ClassChanged`, an A16's `DischargeExpected`) that carries its
//! IHE PAM movement id (ZBE-1) is named by (sender, movement id), which is what lets a later
//! cancellation or correction (whose ZBE-1 names the movement it cancels or corrects) name that
//! event without reading the log; every other event by (sender, MSH-10, index of the derived
//! event).
use crate::ack::{ErrorCode, Problem};
use crate::message::Message;
use journey_proto::prost_types::Timestamp;
use journey_proto::v1::{
    event::Payload, Actor, AdmissionCancelled, DischargeCancelled, Discharged, EdOutcome,
    EmergencyVisit, Event, MovementCancelled, PatientsMerged, Role, TransferCancelled, Transferred,
};
use uuid::Uuid;

mod identity;
mod movement;
mod time;

pub use identity::source_field;
use movement::{admission, diagnoses, disposition, emergency, encounter, facility, historic, unit};
pub use time::timestamp;

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
    "A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A12", "A13", "A16", "A21",
    "A22", "A25", "A28", "A31", "A40", "A47", "A52", "A53", "Z99",
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
    let one = |payload: Payload, kind: IdKind| vec![(payload, kind)];
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
                Payload::PatientRegistered(identity::registration(m)?),
                IdKind::Message,
            ),
        ],
        "A01" | "A04" | "A05" => vec![
            (Payload::Admitted(admission(m, s)?), IdKind::Movement),
            (
                Payload::PatientRegistered(identity::registration(m)?),
                IdKind::Message,
            ),
        ],
        "A02" => one(
            Payload::Transferred(Transferred {
                encounter_id: encounter(m)?,
                from_unit: m.get("PV1", 6, 1, 1, 1),
                to_unit: unit(m),
                historic: historic(m),
            }),
            IdKind::Movement,
        ),
        "A03" => one(
            Payload::Discharged(Discharged {
                encounter_id: encounter(m)?,
                disposition: disposition(m) as i32,
                diagnoses: diagnoses(m),
                destination_facility_id: m.get("PV1", 37, 1, 1, 1),
            }),
            IdKind::Movement,
        ),
        // A cancellation names the movement it cancels in ZBE-1: A11 an admission, A12 a
        // transfer, A13 a discharge, A52 a leave (A21), A53 a return (A22); and PAM-FR §5.3.5, a
        // class change (A06/A07, ZBE-4 = INSERT) is cancelled by the opposite trigger naming it
        // (A07 cancels an A06 and the reverse, ZBE-4 = CANCEL).
        "A11" | "A12" | "A13" | "A52" | "A53" => one(cancellation(m, &ctx)?, IdKind::Message),
        "A06" | "A07" if movement::action(m) == "CANCEL" => {
            one(cancellation(m, &ctx)?, IdKind::Message)
        }
        "A06" | "A07" => one(
            Payload::ClassChanged(movement::class_change(m, s)?),
            IdKind::Movement,
        ),
        "A21" => one(
            Payload::LeaveStarted(movement::leave_started(m, s)?),
            IdKind::Movement,
        ),
        "A22" => one(
            Payload::LeaveEnded(movement::leave_ended(m)?),
            IdKind::Movement,
        ),
        "Z99" => one(movement::correction(m, &ctx, s)?, IdKind::Message),
        // A pending discharge is a movement with its own ZBE-1 (PAM-FR §5.3.6); A25, its
        // cancellation, names that movement in ZBE-1 and withdraws the expected time.
        "A16" => one(
            Payload::DischargeExpected(movement::discharge_expected(m, s)?),
            IdKind::Movement,
        ),
        "A25" => one(
            Payload::DischargeExpected(movement::discharge_expectation_withdrawn(m)?),
            IdKind::Message,
        ),
        "A28" => one(
            Payload::PatientRegistered(identity::registration(m)?),
            IdKind::Message,
        ),
        // A08 from a sender outside PAM-FR (which updates an identity with A31 only).
        "A31" | "A08" => one(
            Payload::IdentityUpdated(identity::update(m)?),
            IdKind::Message,
        ),
        "A47" => one(
            Payload::IdentityUpdated(identity::ins_change(m)?),
            IdKind::Message,
        ),
        "A40" => one(
            Payload::PatientsMerged(PatientsMerged {
                surviving_patient_id: ctx.patient_id.clone(),
                retired_patient_id: identity::retired_patient(m, s)?,
            }),
            IdKind::Message,
        ),
        _ => unreachable!("check_header refuses other triggers"),
    };
    Ok(payloads
        .into_iter()
        .enumerate()
        .map(|(i, (payload, kind))| ctx.event(m, i, kind, payload))
        .collect())
}

/// The cancellation a message is: of an admission, a transfer or a discharge (their own events),
/// else of a leave, a return or a class change (`MovementCancelled`); historic when ZBE-5 = Y.
fn cancellation(m: &Message, ctx: &Context) -> Result<Payload, Problem> {
    let (cancelled_event_id, historic) = (ctx.cancelled(m)?, historic(m));
    Ok(match m.trigger().as_str() {
        "A11" => Payload::AdmissionCancelled(AdmissionCancelled {
            cancelled_event_id,
            historic,
        }),
        "A12" => Payload::TransferCancelled(TransferCancelled {
            cancelled_event_id,
            historic,
        }),
        "A13" => Payload::DischargeCancelled(DischargeCancelled {
            cancelled_event_id,
            historic,
        }),
        _ => Payload::MovementCancelled(MovementCancelled {
            cancelled_event_id,
            historic,
        }),
    })
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
    // An emergency visit is recorded once, at its A04; a class change (A06/A07) is what turns it
    // into a stay (or a stay into an outpatient encounter, PV1-2 = E).
    if emergency(m)
        && !matches!(
            trigger.as_str(),
            "A04" | "A06" | "A07" | "A08" | "A28" | "A31" | "A40" | "A47"
        )
    {
        return Err(Problem::new(
            ErrorCode::UnsupportedEventCode,
            "PV1-2",
            format!(
                "ADT^{trigger} of an emergency department visit (PV1-2 = E) is not mapped yet: the visit is recorded once, at its A04"
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
            patient_id: identity::patient_id(m, s)?,
            occurred_at: time::occurred_at(m, s)?,
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
        let id = match kind {
            IdKind::Movement if !movement.is_empty() => self.movement_id(&movement),
            _ => {
                let name = format!("{}|{}|{index}", self.sender, self.control_id);
                Uuid::new_v5(&namespace(), name.as_bytes()).to_string()
            }
        };
        Event {
            event_id: id,
            patient_id: self.patient_id.clone(),
            occurred_at: Some(self.occurred_at),
            actor: Some(self.actor.clone()),
            source: self.source.clone(),
            correlation_id: self.control_id.clone(),
            payload: Some(payload),
            ..Event::default()
        }
    }

    /// The event id of the sender's movement `movement` (its ZBE-1).
    fn movement_id(&self, movement: &str) -> String {
        let key = format!("{}|movement|{movement}", self.sender);
        Uuid::new_v5(&namespace(), key.as_bytes()).to_string()
    }

    /// The id of the movement ZBE-1 names (a cancellation's or correction's: IHE PAM gives the
    /// movement's own id), required.
    fn named_movement(&self, m: &Message, what: &str) -> Result<String, Problem> {
        let movement = m.get("ZBE", 1, 1, 1, 1);
        if movement.is_empty() {
            return Err(Problem::new(
                ErrorCode::RequiredFieldMissing,
                "ZBE-1",
                format!("{what} names the movement it applies to in ZBE-1 (IHE PAM); without it that event cannot be named"),
            ));
        }
        Ok(self.movement_id(&movement))
    }

    /// The id of the movement a cancellation names in ZBE-1 (ZBE-4 = CANCEL).
    fn cancelled(&self, m: &Message) -> Result<String, Problem> {
        let action = movement::action(m);
        if !action.is_empty() && action != "CANCEL" {
            return Err(Problem::new(
                ErrorCode::TableValueNotFound,
                "ZBE-4",
                format!("a cancellation carries ZBE-4 = CANCEL, not {action:?}"),
            ));
        }
        self.named_movement(m, "a cancellation")
    }
}

#[cfg(test)]
mod tests;
