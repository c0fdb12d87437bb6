//! Who may write what (docs/design.md §6, "Who may write what"), as far as the caller's role
//! decides it: which event types each role appends, and under which organisation. What depends on
//! the log's content (a partner's relationships with patients, its own encounters and facilities)
//! is decided inside the log's single writer by the journey rules' write rights, for the
//! organisation this module returns.
use crate::errors;
use crate::principal::{Principal, Role};
use journey_proto::{v1::AppendRequest, EventType};
use tonic::Status;

/// The event types a role may append (`None`: every type), and the same in words.
fn types_of(role: Role) -> (Option<&'static [EventType]>, &'static str) {
    match role {
        Role::Admin => (None, "every event"),
        // Everything a care organisation records, but the patient's consent.
        Role::Partner => (
            Some(PARTNER),
            "every event but ConsentGiven and ConsentRevoked (a consent key records consent)",
        ),
        // The patient's consent registry (a patient portal, the admissions desk's consent form).
        Role::Consent => (
            Some(&[EventType::ConsentGiven, EventType::ConsentRevoked]),
            "ConsentGiven and ConsentRevoked only",
        ),
        // The reactor's key.
        Role::Service => (Some(&[EventType::AlertRaised]), "AlertRaised only"),
        // What a coordinator does about a patient, recorded from the dashboard's patient page
        // (which decides territory and consent first); the gRPC Append is not open to the role.
        Role::Coordinator => (
            Some(COORDINATOR),
            "ContactMade, AlertAcknowledged, AlertResolved, ReferentAssigned, AppointmentCompleted, AppointmentMissed, DischargeExpected, ChecklistItemSet and ComplexDischargeFlagged only, from the dashboard",
        ),
        // What a liaison nurse does about a stay of her facility, from the dashboard.
        Role::LiaisonNurse => (
            Some(LIAISON_NURSE),
            "ContactMade, DischargeExpected, ChecklistItemSet and ComplexDischargeFlagged only, from the dashboard",
        ),
        // A GP reads their own patients on the dashboard; they record through their software.
        Role::Quality | Role::Auditor | Role::Gp => (Some(&[]), "no event"),
    }
}

/// Whether `role` may append events of type `t` (the forms a page offers follow it).
pub fn may_append(role: Role, t: EventType) -> bool {
    types_of(role).0.is_none_or(|types| types.contains(&t))
}

const COORDINATOR: &[EventType] = &[
    EventType::ContactMade,
    EventType::AlertAcknowledged,
    EventType::AlertResolved,
    EventType::ReferentAssigned,
    EventType::AppointmentCompleted,
    EventType::AppointmentMissed,
    // Discharge planning, from admission on (issue 18).
    EventType::DischargeExpected,
    EventType::ChecklistItemSet,
    EventType::ComplexDischargeFlagged,
];

/// The hospital side of discharge planning, and the contacts made to prepare it.
const LIAISON_NURSE: &[EventType] = &[
    EventType::ContactMade,
    EventType::DischargeExpected,
    EventType::ChecklistItemSet,
    EventType::ComplexDischargeFlagged,
];

const PARTNER: &[EventType] = &{
    let mut all = [EventType::PatientRegistered; EventType::ALL.len() - 2];
    let mut i = 0;
    let mut j = 0;
    while i < EventType::ALL.len() {
        let t = EventType::ALL[i];
        if !matches!(t, EventType::ConsentGiven | EventType::ConsentRevoked) {
            all[j] = t;
            j += 1;
        }
        i += 1;
    }
    all
};

/// Checks that the caller's role may append every event of `request`, each under the caller's
/// own organisation, and answers the organisation the log must hold the batch to (a partner's),
/// or `None` for a writer the log trusts with any patient (admin, the consent registry and the
/// reactor within their event types, a coordinator or a liaison nurse whose patient the dashboard
/// has decided on,
/// or every caller under `--insecure`).
pub fn writer_of(
    request: &AppendRequest,
    caller: Option<&Principal>,
) -> Result<Option<String>, Status> {
    let Some(p) = caller else {
        return Ok(None);
    };
    if p.role == Role::Admin {
        return Ok(None);
    }
    let (allowed, writes) = types_of(p.role);
    let allowed = allowed.unwrap_or_default();
    for (i, e) in request.events.iter().enumerate() {
        let Some(payload) = &e.payload else { continue };
        let t = EventType::of(payload);
        if !allowed.contains(&t) {
            return Err(errors::event_type_not_yours(i, t.name(), p, writes));
        }
        let org = e.actor.as_ref().map_or("", |a| a.organisation.as_str());
        // The reactor's alerts are the backbone's own: no organisation, or the key's.
        let system = p.role == Role::Service && org.is_empty();
        if !system && (org != p.organisation || org.is_empty()) {
            return Err(errors::not_your_organisation(i, org, &p.organisation));
        }
    }
    Ok((p.role == Role::Partner).then(|| p.organisation.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_liaison_nurse_records_contacts_and_the_discharge_plan_only() {
        assert!(may_append(Role::LiaisonNurse, EventType::ContactMade));
        assert!(may_append(Role::LiaisonNurse, EventType::ChecklistItemSet));
        assert!(!may_append(Role::LiaisonNurse, EventType::ReferentAssigned));
        assert!(!may_append(
            Role::LiaisonNurse,
            EventType::AlertAcknowledged
        ));
        assert!(may_append(Role::Coordinator, EventType::ReferentAssigned));
        assert!(may_append(Role::Admin, EventType::ConsentGiven));
    }

    #[test]
    fn partners_write_every_type_but_consent() {
        assert_eq!(PARTNER.len(), EventType::ALL.len() - 2);
        assert!(!PARTNER.contains(&EventType::ConsentGiven));
        assert!(!PARTNER.contains(&EventType::ConsentRevoked));
        assert!(PARTNER.contains(&EventType::PatientDeceased));
    }

    #[test]
    fn a_coordinator_records_what_it_did_under_its_own_organisation() {
        use journey_proto::v1::{event::Payload, Actor, Admitted, ContactMade, Event};
        let p = Principal {
            subject: "nurse-1".into(),
            role: Role::Coordinator,
            organisation: "cpts-1".into(),
            territory: Some("T1".into()),
        };
        let of = |org: &str, payload: Payload| AppendRequest {
            events: vec![Event {
                actor: Some(Actor {
                    organisation: org.into(),
                    ..Default::default()
                }),
                payload: Some(payload),
                ..Default::default()
            }],
            ..Default::default()
        };
        let contact = || Payload::ContactMade(ContactMade::default());
        assert_eq!(writer_of(&of("cpts-1", contact()), Some(&p)).unwrap(), None);
        assert!(writer_of(&of("cpts-2", contact()), Some(&p)).is_err());
        let admitted = Payload::Admitted(Admitted::default());
        assert!(writer_of(&of("cpts-1", admitted), Some(&p)).is_err());
    }

    #[test]
    fn a_coordinator_plans_discharges_but_does_not_discharge() {
        use journey_proto::v1::{
            event::Payload, Actor, ChecklistItemSet, ComplexDischargeFlagged, DischargeExpected,
            Discharged, Event,
        };
        let p = Principal {
            subject: "nurse-1".into(),
            role: Role::Coordinator,
            organisation: "cpts-1".into(),
            territory: Some("T1".into()),
        };
        let of = |payload: Payload| AppendRequest {
            events: vec![Event {
                actor: Some(Actor {
                    organisation: "cpts-1".into(),
                    ..Default::default()
                }),
                payload: Some(payload),
                ..Default::default()
            }],
            ..Default::default()
        };
        for planning in [
            Payload::DischargeExpected(DischargeExpected::default()),
            Payload::ChecklistItemSet(ChecklistItemSet::default()),
            Payload::ComplexDischargeFlagged(ComplexDischargeFlagged::default()),
        ] {
            assert_eq!(writer_of(&of(planning), Some(&p)).unwrap(), None);
        }
        let s = writer_of(&of(Payload::Discharged(Discharged::default())), Some(&p)).unwrap_err();
        assert!(s.message().contains("ChecklistItemSet"), "{}", s.message());
    }
}
