//! Field checks on one incoming event, before any journey rule: shape, identifiers, enum values,
//! clock sanity. Pure: the caller passes the current time.
use journey_proto::v1::event::Payload;
use journey_proto::v1::{
    Actor, AdmitType, ChecklistItem, Code, ComplexityReason, ContactChannel, Disposition,
    EdOutcome, Event, Facility, HadGroup, IdentityStatus, LetterChannel, LetterItem, Professional,
    Role, Setting, Severity, Sex,
};
use prost_types::Timestamp;

/// A field of an event that fails validation, with a lowercase explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

type R = Result<(), FieldError>;

/// Seconds of 1900-01-01T00:00:00Z since the Unix epoch.
const EARLIEST_SECONDS: i64 = -2_208_988_800;
/// How far in the future (relative to `now`) a clinical time may lie.
const MAX_FUTURE_SECONDS: i64 = 86_400;
const MAX_PATIENT_ID_LEN: usize = 64;

/// Checks one event as a client sends it to be appended. Returns the first fault found.
pub fn validate(event: &Event, now: Timestamp) -> Result<(), FieldError> {
    uuid_field("event_id", &event.event_id)?;
    patient_id("patient_id", &event.patient_id)?;
    match &event.occurred_at {
        None => return Err(FieldError::new("occurred_at", "is required")),
        Some(t) => clinical_time("occurred_at", t, &now)?,
    }
    actor(event.actor.as_ref())?;
    required("source", &event.source)?;
    // Fields the log assigns.
    if event.position != 0 {
        return Err(FieldError::new(
            "position",
            "is assigned by the log and must be unset",
        ));
    }
    if event.stream_version != 0 {
        return Err(FieldError::new(
            "stream_version",
            "is assigned by the log and must be unset",
        ));
    }
    if event.recorded_at.is_some() {
        return Err(FieldError::new(
            "recorded_at",
            "is assigned by the log and must be unset",
        ));
    }
    if !event.prev_hash.is_empty() {
        return Err(FieldError::new(
            "prev_hash",
            "is assigned by the log and must be unset",
        ));
    }
    if !event.hash.is_empty() {
        return Err(FieldError::new(
            "hash",
            "is assigned by the log and must be unset",
        ));
    }
    if event.schema_version > 1 {
        return Err(FieldError::new("schema_version", "must be 0 or 1"));
    }
    match &event.payload {
        None => Err(FieldError::new("payload", "is required")),
        Some(p) => payload(p, &now),
    }
}

fn payload(p: &Payload, now: &Timestamp) -> R {
    match p {
        Payload::PatientRegistered(x) => {
            birth_date("patient_registered.birth_date", &x.birth_date, now)?;
            enum_known::<Sex>("patient_registered.sex", x.sex)?;
            enum_known::<IdentityStatus>("patient_registered.identity_status", x.identity_status)?;
            insee_code("patient_registered.birth_place_code", &x.birth_place_code)?;
            opt_professional("patient_registered.gp", x.gp.as_ref())
        }
        Payload::IdentityUpdated(x) => {
            birth_date("identity_updated.birth_date", &x.birth_date, now)?;
            enum_known::<Sex>("identity_updated.sex", x.sex)?;
            enum_known::<IdentityStatus>("identity_updated.identity_status", x.identity_status)?;
            insee_code("identity_updated.birth_place_code", &x.birth_place_code)?;
            if x.ins_removed && !x.ins.is_empty() {
                return Err(FieldError::new(
                    "identity_updated.ins",
                    "must be empty when ins_removed is set",
                ));
            }
            opt_professional("identity_updated.gp", x.gp.as_ref())
        }
        Payload::PatientsMerged(x) => {
            patient_id(
                "patients_merged.surviving_patient_id",
                &x.surviving_patient_id,
            )?;
            patient_id("patients_merged.retired_patient_id", &x.retired_patient_id)?;
            if x.surviving_patient_id == x.retired_patient_id {
                return Err(FieldError::new(
                    "patients_merged.retired_patient_id",
                    "must differ from surviving_patient_id",
                ));
            }
            Ok(())
        }
        Payload::Admitted(x) => {
            required("admitted.encounter_id", &x.encounter_id)?;
            facility("admitted.facility", x.facility.as_ref())?;
            enum_required::<Setting>("admitted.setting", x.setting)?;
            if x.setting == Setting::Outpatient as i32 {
                return Err(FieldError::new(
                    "admitted.setting",
                    "outpatient is not a stay: an outpatient or emergency visit becomes one by ClassChanged",
                ));
            }
            enum_known::<HadGroup>("admitted.had_group", x.had_group)?;
            if x.setting == Setting::Had as i32 && x.had_group == HadGroup::Unspecified as i32 {
                return Err(FieldError::new(
                    "admitted.had_group",
                    "is required when setting is had",
                ));
            }
            enum_required::<AdmitType>("admitted.admit_type", x.admit_type)?;
            codes("admitted.diagnoses", &x.diagnoses)
        }
        Payload::Transferred(x) => required("transferred.encounter_id", &x.encounter_id),
        Payload::Discharged(x) => {
            required("discharged.encounter_id", &x.encounter_id)?;
            enum_required::<Disposition>("discharged.disposition", x.disposition)?;
            codes("discharged.diagnoses", &x.diagnoses)
        }
        Payload::AdmissionCancelled(x) => uuid_field(
            "admission_cancelled.cancelled_event_id",
            &x.cancelled_event_id,
        ),
        Payload::TransferCancelled(x) => uuid_field(
            "transfer_cancelled.cancelled_event_id",
            &x.cancelled_event_id,
        ),
        Payload::DischargeCancelled(x) => uuid_field(
            "discharge_cancelled.cancelled_event_id",
            &x.cancelled_event_id,
        ),
        Payload::EmergencyVisit(x) => {
            required("emergency_visit.visit_id", &x.visit_id)?;
            facility("emergency_visit.facility", x.facility.as_ref())?;
            enum_known::<EdOutcome>("emergency_visit.outcome", x.outcome)?;
            codes("emergency_visit.diagnoses", &x.diagnoses)
        }
        Payload::DischargeLetterSent(x) => {
            required("discharge_letter_sent.encounter_id", &x.encounter_id)?;
            enum_known::<LetterChannel>("discharge_letter_sent.channel", x.channel)?;
            for (i, r) in x.recipients.iter().enumerate() {
                professional(&format!("discharge_letter_sent.recipients[{i}]"), r)?;
            }
            for (i, item) in x.items_present.iter().enumerate() {
                enum_known::<LetterItem>(
                    &format!("discharge_letter_sent.items_present[{i}]"),
                    *item,
                )?;
            }
            Ok(())
        }
        Payload::PrescriptionIssued(x) => {
            required("prescription_issued.prescription_id", &x.prescription_id)?;
            match &x.medication {
                None => {
                    return Err(FieldError::new(
                        "prescription_issued.medication",
                        "is required",
                    ))
                }
                Some(c) => code("prescription_issued.medication", c)?,
            }
            opt_professional("prescription_issued.prescriber", x.prescriber.as_ref())
        }
        Payload::MedicationReconciled(x) => {
            required("medication_reconciled.encounter_id", &x.encounter_id)?;
            opt_professional(
                "medication_reconciled.performed_by",
                x.performed_by.as_ref(),
            )
        }
        Payload::CarePlanEstablished(x) => {
            required("care_plan_established.care_plan_id", &x.care_plan_id)?;
            for (i, t) in x.thresholds.iter().enumerate() {
                let f = format!("care_plan_established.thresholds[{i}]");
                required(&format!("{f}.measure"), &t.measure)?;
                enum_known::<Severity>(&format!("{f}.severity"), t.severity)?;
                if t.low.is_nan() || t.high.is_nan() {
                    return Err(FieldError::new(f, "bounds must be numbers"));
                }
            }
            for (i, r) in x.referents.iter().enumerate() {
                professional(&format!("care_plan_established.referents[{i}]"), r)?;
            }
            Ok(())
        }
        Payload::ReferentAssigned(x) => {
            enum_required::<Role>("referent_assigned.role", x.role)?;
            match &x.professional {
                None => Err(FieldError::new(
                    "referent_assigned.professional",
                    "is required",
                )),
                Some(p) => professional("referent_assigned.professional", p),
            }
        }
        Payload::AppointmentScheduled(x) => {
            required("appointment_scheduled.appointment_id", &x.appointment_id)?;
            if let Some(t) = &x.due_at {
                timestamp_shape("appointment_scheduled.due_at", t)?;
            }
            opt_professional("appointment_scheduled.with", x.with.as_ref())
        }
        Payload::AppointmentCompleted(x) => {
            required("appointment_completed.appointment_id", &x.appointment_id)
        }
        Payload::AppointmentMissed(x) => {
            required("appointment_missed.appointment_id", &x.appointment_id)
        }
        Payload::HomeVisitRecorded(x) => {
            opt_professional("home_visit_recorded.professional", x.professional.as_ref())?;
            enum_known::<ContactChannel>("home_visit_recorded.channel", x.channel)
        }
        Payload::ContactMade(x) => {
            opt_professional("contact_made.professional", x.professional.as_ref())?;
            enum_known::<ContactChannel>("contact_made.channel", x.channel)
        }
        Payload::ObservationRecorded(x) => {
            required("observation_recorded.measure", &x.measure)?;
            if !x.value.is_finite() {
                return Err(FieldError::new(
                    "observation_recorded.value",
                    "must be a finite number",
                ));
            }
            if let Some(why) = crate::alert_rules::implausible(x) {
                return Err(FieldError::new("observation_recorded.value", why));
            }
            match &x.code {
                Some(c) => code("observation_recorded.code", c),
                None => Ok(()),
            }
        }
        Payload::ConditionRecorded(x) => {
            match &x.diagnosis {
                None => {
                    return Err(FieldError::new(
                        "condition_recorded.diagnosis",
                        "is required",
                    ))
                }
                Some(c) => code("condition_recorded.diagnosis", c)?,
            }
            match &x.onset {
                Some(t) => clinical_time("condition_recorded.onset", t, now),
                None => Ok(()),
            }
        }
        Payload::AlertRaised(x) => {
            required("alert_raised.alert_id", &x.alert_id)?;
            enum_known::<Severity>("alert_raised.severity", x.severity)
        }
        Payload::AlertAcknowledged(x) => required("alert_acknowledged.alert_id", &x.alert_id),
        Payload::AlertResolved(x) => required("alert_resolved.alert_id", &x.alert_id),
        Payload::ConsentGiven(x) => required("consent_given.scope", &x.scope),
        Payload::ConsentRevoked(x) => required("consent_revoked.scope", &x.scope),
        Payload::PatientDeceased(x) => match &x.died_at {
            Some(t) => clinical_time("patient_deceased.died_at", t, now),
            None => Ok(()),
        },
        Payload::LeaveStarted(x) => {
            required("leave_started.encounter_id", &x.encounter_id)?;
            match &x.expected_return_at {
                Some(t) => timestamp_shape("leave_started.expected_return_at", t),
                None => Ok(()),
            }
        }
        Payload::LeaveEnded(x) => required("leave_ended.encounter_id", &x.encounter_id),
        Payload::ClassChanged(x) => {
            required("class_changed.encounter_id", &x.encounter_id)?;
            enum_required::<Setting>("class_changed.setting", x.setting)
        }
        Payload::MovementCancelled(x) => uuid_field(
            "movement_cancelled.cancelled_event_id",
            &x.cancelled_event_id,
        ),
        Payload::MovementCorrected(x) => {
            uuid_field(
                "movement_corrected.corrected_event_id",
                &x.corrected_event_id,
            )?;
            if let Some(t) = &x.moved_at {
                clinical_time("movement_corrected.moved_at", t, now)?;
            }
            enum_known::<Disposition>("movement_corrected.disposition", x.disposition)?;
            enum_known::<Setting>("movement_corrected.setting", x.setting)
        }
        Payload::DischargeExpected(x) => {
            required("discharge_expected.encounter_id", &x.encounter_id)?;
            match &x.expected_at {
                Some(t) => timestamp_shape("discharge_expected.expected_at", t),
                None => Ok(()),
            }
        }
        Payload::ChecklistItemSet(x) => {
            required("checklist_item_set.encounter_id", &x.encounter_id)?;
            enum_required::<ChecklistItem>("checklist_item_set.item", x.item)
        }
        Payload::ComplexDischargeFlagged(x) => {
            required("complex_discharge_flagged.encounter_id", &x.encounter_id)?;
            for (i, r) in x.reasons.iter().enumerate() {
                enum_required::<ComplexityReason>(
                    &format!("complex_discharge_flagged.reasons[{i}]"),
                    *r,
                )?;
            }
            Ok(())
        }
    }
}

fn required(field: &str, value: &str) -> R {
    if value.trim().is_empty() {
        Err(FieldError::new(field, "is required"))
    } else {
        Ok(())
    }
}

fn uuid_field(field: &str, value: &str) -> R {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    uuid::Uuid::try_parse(value)
        .map(|_| ())
        .map_err(|_| FieldError::new(field, "must be a uuid"))
}

fn patient_id(field: &str, value: &str) -> R {
    if value.is_empty() {
        return Err(FieldError::new(field, "is required"));
    }
    if value.len() > MAX_PATIENT_ID_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_PATIENT_ID_LEN} characters"),
        ));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'))
    {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits and . _ : -",
        ));
    }
    Ok(())
}

fn timestamp_shape(field: &str, t: &Timestamp) -> R {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(FieldError::new(field, "has invalid nanos"));
    }
    Ok(())
}

fn clinical_time(field: &str, t: &Timestamp, now: &Timestamp) -> R {
    timestamp_shape(field, t)?;
    if t.seconds < EARLIEST_SECONDS {
        return Err(FieldError::new(field, "is before 1900-01-01"));
    }
    let limit = (now.seconds.saturating_add(MAX_FUTURE_SECONDS), now.nanos);
    if (t.seconds, t.nanos) > limit {
        return Err(FieldError::new(field, "is more than one day in the future"));
    }
    Ok(())
}

/// A birth date, when given: a calendar date `YYYY-MM-DD`, from 1900 on and not after `now`'s
/// day (UTC) plus one, as clinical times are.
fn birth_date(field: &str, value: &str, now: &Timestamp) -> R {
    if value.is_empty() {
        return Ok(()); // unknown
    }
    let shape = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let date = shape
        .then(|| chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| {
            FieldError::new(
                field,
                format!("{value:?} is not a date (expected YYYY-MM-DD)"),
            )
        })?;
    let seconds = date
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp();
    if seconds < EARLIEST_SECONDS {
        return Err(FieldError::new(field, "is before 1900-01-01"));
    }
    if seconds > now.seconds.saturating_add(MAX_FUTURE_SECONDS) {
        return Err(FieldError::new(field, "is in the future"));
    }
    Ok(())
}

/// An INSEE (COG) code of a place of birth, when given: 5 characters, the commune's (2 characters
/// of its département, digits or `2A`/`2B` for Corsica, then 3 digits; overseas 97x and 2 digits)
/// or, for a birth abroad, the country's (`99` and 3 digits).
fn insee_code(field: &str, value: &str) -> R {
    if value.is_empty() {
        return Ok(()); // unknown
    }
    let b = value.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let ok = b.len() == 5 && digits(2..5) && (digits(0..2) || matches!(&b[..2], b"2A" | b"2B"));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "{value:?} is not an INSEE code: 5 characters, the commune's (digits, or 2A/2B and 3 digits in Corsica) or the country's for a birth abroad (99 and 3 digits)"
            ),
        ))
    }
}

fn actor(a: Option<&Actor>) -> R {
    let Some(a) = a else {
        return Err(FieldError::new("actor", "is required"));
    };
    required("actor.id", &a.id)?;
    enum_known::<Role>("actor.role", a.role)
}

fn facility(field: &str, f: Option<&Facility>) -> R {
    let Some(f) = f else {
        return Err(FieldError::new(field, "is required"));
    };
    required(&format!("{field}.id"), &f.id)?;
    if !f.time_zone.is_empty() && f.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return Err(FieldError::new(
            format!("{field}.time_zone"),
            "is not an IANA time zone name (for instance Europe/Paris; empty means UTC)",
        ));
    }
    Ok(())
}

fn opt_professional(field: &str, p: Option<&Professional>) -> R {
    match p {
        Some(p) => professional(field, p),
        None => Ok(()),
    }
}

fn professional(field: &str, p: &Professional) -> R {
    if Role::try_from(p.role).is_ok() {
        return Ok(()); // the field's name is only built for an error
    }
    enum_known::<Role>(&format!("{field}.role"), p.role)
}

fn codes(field: &str, cs: &[Code]) -> R {
    for (i, c) in cs.iter().enumerate() {
        if code_is_complete(c) {
            continue; // the field's name is only built for an error
        }
        code(&format!("{field}[{i}]"), c)?;
    }
    Ok(())
}

fn code_is_complete(c: &Code) -> bool {
    !c.system.trim().is_empty() && !c.code.trim().is_empty()
}

fn code(field: &str, c: &Code) -> R {
    if code_is_complete(c) {
        return Ok(()); // the field's name is only built for an error
    }
    required(&format!("{field}.system"), &c.system)?;
    required(&format!("{field}.code"), &c.code)
}

/// The value is a number the enum knows (unspecified allowed).
fn enum_known<E: TryFrom<i32>>(field: &str, v: i32) -> R {
    if E::try_from(v).is_err() {
        return Err(FieldError::new(field, format!("unknown value {v}")));
    }
    Ok(())
}

/// The value is a known number other than 0 (unspecified).
fn enum_required<E: TryFrom<i32>>(field: &str, v: i32) -> R {
    enum_known::<E>(field, v)?;
    if v == 0 {
        return Err(FieldError::new(field, "must be specified"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{
        AdmissionCancelled, Admitted, AlertAcknowledged, AppointmentCompleted, Discharged,
        HomeVisitRecorded, ObservationRecorded, PatientsMerged, PrescriptionIssued,
    };

    const NOW: i64 = 1_700_000_000;

    fn now() -> Timestamp {
        Timestamp {
            seconds: NOW,
            nanos: 0,
        }
    }

    fn good_admitted() -> Admitted {
        Admitted {
            encounter_id: "enc-1".into(),
            facility: Some(Facility {
                id: "fac-1".into(),
                ..Default::default()
            }),
            setting: Setting::Inpatient as i32,
            admit_type: AdmitType::Emergency as i32,
            diagnoses: vec![Code {
                system: "ICD-10".into(),
                code: "I50".into(),
                display: String::new(),
            }],
            ..Default::default()
        }
    }

    fn event(p: Payload) -> Event {
        Event {
            event_id: "7b0c2f1e-3f4a-4d5b-8c6d-9e0f1a2b3c4d".into(),
            patient_id: "pat:42.a_b-c".into(),
            occurred_at: Some(Timestamp {
                seconds: NOW - 3600,
                nanos: 0,
            }),
            actor: Some(Actor {
                id: "dr-1".into(),
                role: Role::Gp as i32,
                ..Default::default()
            }),
            source: "adt".into(),
            payload: Some(p),
            ..Default::default()
        }
    }

    fn fails(e: &Event, field: &str) {
        let err = validate(e, now()).expect_err("should fail");
        assert_eq!(err.field, field, "{err}");
        assert_eq!(err.to_string(), format!("{}: {}", err.field, err.message));
    }

    #[test]
    fn a_birth_date_is_a_calendar_date_or_nothing() {
        use journey_proto::v1::{IdentityUpdated, PatientRegistered};
        let registered = |d: &str| {
            event(Payload::PatientRegistered(PatientRegistered {
                birth_date: d.into(),
                ..Default::default()
            }))
        };
        for good in ["", "1950-02-28", "2000-02-29", "2023-11-14"] {
            validate(&registered(good), now()).unwrap();
        }
        for bad in [
            "not-a-date",
            "1950-2-28",
            "1950-02-30",
            "2023-02-29",
            "19500228",
            "1950-02-28T00:00:00Z",
            " 1950-02-28",
            "1899-12-31",
            "2099-01-01",
        ] {
            fails(&registered(bad), "patient_registered.birth_date");
        }
        let err = validate(&registered("not-a-date"), now()).unwrap_err();
        assert_eq!(
            err.message,
            "\"not-a-date\" is not a date (expected YYYY-MM-DD)"
        );
        let updated = event(Payload::IdentityUpdated(IdentityUpdated {
            birth_date: "1950-13-01".into(),
            ..Default::default()
        }));
        fails(&updated, "identity_updated.birth_date");
    }

    #[test]
    fn a_birth_place_is_an_insee_code_or_nothing() {
        use journey_proto::v1::{IdentityUpdated, PatientRegistered};
        let registered = |code: &str| {
            event(Payload::PatientRegistered(PatientRegistered {
                birth_place_code: code.into(),
                ..Default::default()
            }))
        };
        // Paris, Ajaccio (2A), Bastia (2B), Saint-Denis de La Réunion, born in Morocco.
        for good in ["", "75056", "2A004", "2B033", "97411", "99350"] {
            validate(&registered(good), now()).unwrap();
        }
        for bad in [
            "7505", "750560", "2C004", "2a004", "75 56", "A5056", "Paris", "7505é",
        ] {
            fails(&registered(bad), "patient_registered.birth_place_code");
        }
        let err = validate(&registered("2C004"), now()).unwrap_err();
        assert!(
            err.message.starts_with("\"2C004\" is not an INSEE code"),
            "{err}"
        );
        let updated = event(Payload::IdentityUpdated(IdentityUpdated {
            birth_place_code: "1234".into(),
            ..Default::default()
        }));
        fails(&updated, "identity_updated.birth_place_code");
    }

    #[test]
    fn valid_event_passes() {
        validate(&event(Payload::Admitted(good_admitted())), now()).unwrap();
        let mut e = event(Payload::HomeVisitRecorded(HomeVisitRecorded::default()));
        e.schema_version = 1;
        validate(&e, now()).unwrap();
    }

    #[test]
    fn envelope_errors_name_the_field() {
        let base = event(Payload::Admitted(good_admitted()));
        let mut e = base.clone();
        e.event_id = "not-a-uuid".into();
        fails(&e, "event_id");
        let mut e = base.clone();
        e.patient_id = String::new();
        fails(&e, "patient_id");
        let mut e = base.clone();
        e.patient_id = "a".repeat(65);
        fails(&e, "patient_id");
        let mut e = base.clone();
        e.patient_id = "p 1".into();
        fails(&e, "patient_id");
        let mut e = base.clone();
        e.occurred_at = None;
        fails(&e, "occurred_at");
        let mut e = base.clone();
        e.occurred_at = Some(Timestamp {
            seconds: -2_208_988_801,
            nanos: 0,
        });
        fails(&e, "occurred_at");
        let mut e = base.clone();
        e.occurred_at = Some(Timestamp {
            seconds: NOW + 86_401,
            nanos: 0,
        });
        fails(&e, "occurred_at");
        let mut e = base.clone();
        e.occurred_at = Some(Timestamp {
            seconds: NOW + 86_000,
            nanos: 0,
        });
        validate(&e, now()).unwrap();
        let mut e = base.clone();
        e.actor = None;
        fails(&e, "actor");
        let mut e = base.clone();
        e.actor = Some(Actor::default());
        fails(&e, "actor.id");
        let mut e = base.clone();
        e.actor.as_mut().unwrap().role = 999;
        fails(&e, "actor.role");
        let mut e = base.clone();
        e.source = String::new();
        fails(&e, "source");
        let mut e = base.clone();
        e.payload = None;
        fails(&e, "payload");
    }

    #[test]
    fn log_assigned_fields_must_be_unset() {
        let base = event(Payload::Admitted(good_admitted()));
        let mut e = base.clone();
        e.position = 1;
        fails(&e, "position");
        let mut e = base.clone();
        e.stream_version = 1;
        fails(&e, "stream_version");
        let mut e = base.clone();
        e.recorded_at = Some(now());
        fails(&e, "recorded_at");
        let mut e = base.clone();
        e.prev_hash = vec![0; 32];
        fails(&e, "prev_hash");
        let mut e = base.clone();
        e.hash = vec![1];
        fails(&e, "hash");
        let mut e = base.clone();
        e.schema_version = 2;
        fails(&e, "schema_version");
    }

    #[test]
    fn admitted_field_errors() {
        let check = |f: fn(&mut Admitted), field: &str| {
            let mut a = good_admitted();
            f(&mut a);
            fails(&event(Payload::Admitted(a)), field);
        };
        check(|a| a.encounter_id.clear(), "admitted.encounter_id");
        check(|a| a.facility = None, "admitted.facility");
        check(
            |a| a.facility.as_mut().unwrap().id.clear(),
            "admitted.facility.id",
        );
        check(
            |a| a.facility.as_mut().unwrap().time_zone = "Paris".into(),
            "admitted.facility.time_zone",
        );
        check(|a| a.setting = 0, "admitted.setting");
        check(|a| a.setting = 42, "admitted.setting");
        check(|a| a.setting = Setting::Had as i32, "admitted.had_group");
        check(|a| a.had_group = 17, "admitted.had_group");
        check(|a| a.admit_type = 0, "admitted.admit_type");
        check(
            |a| a.diagnoses[0].system.clear(),
            "admitted.diagnoses[0].system",
        );
        check(
            |a| a.diagnoses[0].code.clear(),
            "admitted.diagnoses[0].code",
        );
        let mut a = good_admitted();
        a.setting = Setting::Had as i32;
        a.had_group = HadGroup::Palliative as i32;
        a.facility.as_mut().unwrap().time_zone = "America/Cayenne".into();
        validate(&event(Payload::Admitted(a)), now()).unwrap();
    }

    #[test]
    fn discharged_field_errors() {
        let d = Discharged {
            encounter_id: "e".into(),
            disposition: Disposition::Home as i32,
            ..Default::default()
        };
        validate(&event(Payload::Discharged(d.clone())), now()).unwrap();
        let mut x = d.clone();
        x.encounter_id.clear();
        fails(&event(Payload::Discharged(x)), "discharged.encounter_id");
        let mut x = d.clone();
        x.disposition = 0;
        fails(&event(Payload::Discharged(x)), "discharged.disposition");
        let mut x = d;
        x.disposition = 99;
        fails(&event(Payload::Discharged(x)), "discharged.disposition");
    }

    #[test]
    fn other_payload_errors() {
        fails(
            &event(Payload::AdmissionCancelled(AdmissionCancelled {
                cancelled_event_id: "x".into(),
                ..Default::default()
            })),
            "admission_cancelled.cancelled_event_id",
        );
        fails(
            &event(Payload::PrescriptionIssued(PrescriptionIssued {
                prescription_id: "rx".into(),
                ..Default::default()
            })),
            "prescription_issued.medication",
        );
        fails(
            &event(Payload::PrescriptionIssued(PrescriptionIssued {
                prescription_id: "rx".into(),
                medication: Some(Code {
                    system: "ATC".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
            "prescription_issued.medication.code",
        );
        fails(
            &event(Payload::AlertAcknowledged(AlertAcknowledged::default())),
            "alert_acknowledged.alert_id",
        );
        fails(
            &event(Payload::AppointmentCompleted(
                AppointmentCompleted::default(),
            )),
            "appointment_completed.appointment_id",
        );
        fails(
            &event(Payload::PatientsMerged(PatientsMerged {
                surviving_patient_id: "a".into(),
                retired_patient_id: "a".into(),
            })),
            "patients_merged.retired_patient_id",
        );
        fails(
            &event(Payload::PatientsMerged(PatientsMerged {
                surviving_patient_id: String::new(),
                retired_patient_id: "a".into(),
            })),
            "patients_merged.surviving_patient_id",
        );
        fails(
            &event(Payload::HomeVisitRecorded(HomeVisitRecorded {
                channel: 77,
                ..Default::default()
            })),
            "home_visit_recorded.channel",
        );
    }

    fn observation(measure: &str, value: f64, unit: &str) -> Event {
        event(Payload::ObservationRecorded(ObservationRecorded {
            measure: measure.into(),
            value,
            unit: unit.into(),
            ..Default::default()
        }))
    }

    #[test]
    fn impossible_observation_values_are_refused() {
        let refused = [
            ("weight", -1.0, "kg", "cannot be negative"),
            ("weight", 0.0, "kg", "more than 0"),
            ("weight", 501.0, "kg", "at most 500 kg"),
            ("weight", 1200.0, "[lb_av]", "at most 500 kg"),
            ("Body Weight", 0.0, "", "more than 0"),
            ("spo2", 101.0, "%", "between 0 and 100"),
            ("SpO2", -3.0, "%", "cannot be negative"),
            ("heart_rate", 301.0, "/min", "between 0 and 300"),
            ("heart_rate", -60.0, "/min", "cannot be negative"),
            ("bp_systolic", -120.0, "mm[Hg]", "cannot be negative"),
            ("bp_diastolic", 450.0, "mm[Hg]", "between 0 and 400"),
            ("respiratory_rate", 200.0, "/min", "between 0 and 150"),
            ("glucose", -1.0, "mmol/L", "cannot be negative"),
            ("temperature", 60.0, "Cel", "between 10 and 50"),
        ];
        for (measure, value, unit, needle) in refused {
            let err = validate(&observation(measure, value, unit), now())
                .expect_err(&format!("{measure} {value} {unit} should be refused"));
            assert_eq!(err.field, "observation_recorded.value", "{err}");
            assert!(err.message.contains(needle), "{measure} {value}: {err}");
            assert!(err.message.contains(&value.to_string()), "{err}");
        }
        let accepted = [
            ("weight", 0.6, "kg"),
            ("weight", 72.4, "kg"),
            ("weight", 500.0, "kg"),
            ("weight", 700.0, "g"),
            ("spo2", 0.0, "%"),
            ("spo2", 100.0, "%"),
            ("spo2", 0.97, "1"),
            ("heart_rate", 0.0, "/min"),
            ("heart_rate", 300.0, "/min"),
            ("bp_systolic", 400.0, "mm[Hg]"),
            ("glucose", 450.0, "mg/dL"),
            ("temperature", 98.6, "[degF]"),
            ("temperature", 37.2, "Cel"),
            // Unknown measures pass whatever their value.
            ("pain_score", -5.0, ""),
            ("steps", 1e9, "1"),
        ];
        for (measure, value, unit) in accepted {
            validate(&observation(measure, value, unit), now())
                .unwrap_or_else(|e| panic!("{measure} {value} {unit}: {e}"));
        }
        // A LOINC code names the measure when the name does not.
        let mut e = observation("Body mass", 0.0, "kg");
        if let Some(Payload::ObservationRecorded(o)) = e.payload.as_mut() {
            o.code = Some(Code {
                system: "LOINC".into(),
                code: "29463-7".into(),
                display: String::new(),
            });
        }
        fails(&e, "observation_recorded.value");
        // Not a number at all is refused before plausibility.
        let err = validate(&observation("spo2", f64::NAN, "%"), now()).unwrap_err();
        assert_eq!(err.message, "must be a finite number");
    }
}
