//! Appointment (FR Core Appointment): a follow-up appointment, booked, then fulfilled or missed
//! (`noshow`).
use crate::{
    patient::professional,
    resource::Body,
    resource::{encounter_ref, fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{AppointmentScheduled, Event};
use serde_json::{json, Value};

pub struct Booking<'a> {
    scheduled: (&'a Event, &'a AppointmentScheduled),
    outcome: Option<(&'static str, &'a str)>,
    last: &'a Event,
}

impl<'a> Booking<'a> {
    pub fn new(e: &'a Event, a: &'a AppointmentScheduled) -> Self {
        Booking {
            scheduled: (e, a),
            outcome: None,
            last: e,
        }
    }

    /// Scheduled again under the same id: the new time and kind, booked again.
    pub fn rescheduled(&mut self, e: &'a Event, a: &'a AppointmentScheduled) {
        self.scheduled = (e, a);
        self.outcome = None;
        self.last = e;
    }

    pub fn completed(&mut self, e: &'a Event) {
        self.outcome = Some(("fulfilled", ""));
        self.last = e;
    }

    pub fn missed(&mut self, e: &'a Event, reason: &'a str) {
        self.outcome = Some(("noshow", reason));
        self.last = e;
    }

    pub fn build(self, patient_id: &str) -> Resource {
        let (_, a) = self.scheduled;
        let id = fhir_id("Appointment", &a.appointment_id);
        let (status, reason) = self.outcome.unwrap_or(("booked", ""));
        let mut participants =
            vec![json!({ "actor": patient_ref(patient_id), "status": "accepted" })];
        if let Some(p) = a
            .with
            .as_ref()
            .filter(|p| !p.id.is_empty() || !p.name.is_empty())
        {
            participants.push(json!({ "actor": professional(p), "status": "accepted" }));
        }
        let mut body = json!({
            "resourceType": "Appointment",
            "id": id,
            "meta": meta(self.last, Some("fr-core-appointment")),
            "identifier": [{ "system": "urn:journey:appointment", "value": a.appointment_id }],
            "status": status,
            "participant": participants,
        });
        put(&mut body, "description", text(&a.kind));
        put(
            &mut body,
            "serviceType",
            text(&a.kind).map(|k| json!([{ "text": k }])),
        );
        // The journey knows when the appointment is due, not how long it lasts: start and end
        // are that instant (FHIR asks for both or neither).
        if let Some(due) = instant(a.due_at.as_ref()) {
            put(&mut body, "start", Some(Value::from(due.clone())));
            put(&mut body, "end", Some(Value::from(due)));
        }
        put(&mut body, "comment", text(reason));
        if !a.encounter_id.is_empty() {
            put(
                &mut body,
                "supportingInformation",
                Some(json!([encounter_ref(&a.encounter_id)])),
            );
        }
        Resource {
            kind: "Appointment",
            id,
            body: Body::Tree(body),
        }
    }
}
