//! The event type of a payload: its catalogue name and its NATS subject token.
use crate::v1::event::Payload;

macro_rules! event_types {
    ($($variant:ident = $tag:literal => $snake:literal),* $(,)?) => {
        /// Every event type of the v1 catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType { $($variant),* }

        impl EventType {
            /// Every type, in catalogue order.
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            /// The type of a payload.
            pub fn of(payload: &Payload) -> Self {
                match payload { $(Payload::$variant(_) => EventType::$variant),* }
            }

            /// The type whose payload has this field number in `Event` (the `payload` oneof).
            pub fn of_tag(tag: u32) -> Option<Self> {
                match tag { $($tag => Some(EventType::$variant),)* _ => None }
            }

            /// An empty payload of this type.
            pub fn empty_payload(self) -> Payload {
                match self { $(EventType::$variant => Payload::$variant(Default::default())),* }
            }

            /// Catalogue name, e.g. `Discharged`.
            pub fn name(self) -> &'static str {
                match self { $(EventType::$variant => stringify!($variant)),* }
            }

            /// snake_case name used in NATS subjects, e.g. `discharged`.
            pub fn snake(self) -> &'static str {
                match self { $(EventType::$variant => $snake),* }
            }
        }
    };
}

event_types! {
    PatientRegistered = 100 => "patient_registered",
    IdentityUpdated = 101 => "identity_updated",
    PatientsMerged = 102 => "patients_merged",
    Admitted = 103 => "admitted",
    Transferred = 104 => "transferred",
    Discharged = 105 => "discharged",
    AdmissionCancelled = 106 => "admission_cancelled",
    TransferCancelled = 107 => "transfer_cancelled",
    DischargeCancelled = 108 => "discharge_cancelled",
    EmergencyVisit = 109 => "emergency_visit",
    DischargeLetterSent = 110 => "discharge_letter_sent",
    PrescriptionIssued = 111 => "prescription_issued",
    MedicationReconciled = 112 => "medication_reconciled",
    CarePlanEstablished = 113 => "care_plan_established",
    ReferentAssigned = 114 => "referent_assigned",
    AppointmentScheduled = 115 => "appointment_scheduled",
    AppointmentCompleted = 116 => "appointment_completed",
    AppointmentMissed = 117 => "appointment_missed",
    HomeVisitRecorded = 118 => "home_visit_recorded",
    ContactMade = 119 => "contact_made",
    ObservationRecorded = 120 => "observation_recorded",
    ConditionRecorded = 121 => "condition_recorded",
    AlertRaised = 122 => "alert_raised",
    AlertAcknowledged = 123 => "alert_acknowledged",
    AlertResolved = 124 => "alert_resolved",
    ConsentGiven = 125 => "consent_given",
    ConsentRevoked = 126 => "consent_revoked",
    PatientDeceased = 127 => "patient_deceased",
    LeaveStarted = 128 => "leave_started",
    LeaveEnded = 129 => "leave_ended",
    ClassChanged = 130 => "class_changed",
    MovementCancelled = 131 => "movement_cancelled",
    MovementCorrected = 132 => "movement_corrected",
    DischargeExpected = 133 => "discharge_expected",
    ChecklistItemSet = 134 => "checklist_item_set",
    ComplexDischargeFlagged = 135 => "complex_discharge_flagged",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_names_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for t in EventType::ALL {
            assert!(seen.insert(t.snake()), "duplicate {}", t.snake());
            assert_eq!(t.snake(), t.snake().to_lowercase());
        }
        assert_eq!(EventType::Discharged.snake(), "discharged");
        assert_eq!(EventType::ALL.len(), 36);
    }
}
