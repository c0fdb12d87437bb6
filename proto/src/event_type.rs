//! The event type of a payload: its catalogue name and its NATS subject token.
use crate::v1::event::Payload;

macro_rules! event_types {
    ($($variant:ident => $snake:literal),* $(,)?) => {
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
    PatientRegistered => "patient_registered",
    IdentityUpdated => "identity_updated",
    PatientsMerged => "patients_merged",
    Admitted => "admitted",
    Transferred => "transferred",
    Discharged => "discharged",
    AdmissionCancelled => "admission_cancelled",
    TransferCancelled => "transfer_cancelled",
    DischargeCancelled => "discharge_cancelled",
    EmergencyVisit => "emergency_visit",
    DischargeLetterSent => "discharge_letter_sent",
    PrescriptionIssued => "prescription_issued",
    MedicationReconciled => "medication_reconciled",
    CarePlanEstablished => "care_plan_established",
    ReferentAssigned => "referent_assigned",
    AppointmentScheduled => "appointment_scheduled",
    AppointmentCompleted => "appointment_completed",
    AppointmentMissed => "appointment_missed",
    HomeVisitRecorded => "home_visit_recorded",
    ContactMade => "contact_made",
    ObservationRecorded => "observation_recorded",
    ConditionRecorded => "condition_recorded",
    AlertRaised => "alert_raised",
    AlertAcknowledged => "alert_acknowledged",
    AlertResolved => "alert_resolved",
    ConsentGiven => "consent_given",
    ConsentRevoked => "consent_revoked",
    PatientDeceased => "patient_deceased",
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
        assert_eq!(EventType::ALL.len(), 28);
    }
}
