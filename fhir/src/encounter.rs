//! Encounter (FR Core Encounter): one per stay, from its admission, transfers and discharge,
//! with their cancellations undone (an admission cancelled: `entered-in-error`); one per
//! emergency visit.
use crate::{
    codes::{self, V2_0203},
    resource::{encounter_ref, fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{Admitted, Code, Discharged, EmergencyVisit, Event, Facility, Transferred};
use serde_json::{json, Value};

/// The FINESS identifier system (ANS organisations' OID).
const FINESS: &str = "urn:oid:1.2.250.1.71.4.2.2";

pub struct Stay<'a> {
    encounter_id: String,
    first: &'a Event,
    last: &'a Event,
    admitted: Option<(&'a Event, &'a Admitted)>,
    transfers: Vec<(&'a Event, &'a Transferred)>,
    discharged: Option<(&'a Event, &'a Discharged)>,
    cancelled: bool,
}

impl<'a> Stay<'a> {
    pub fn new(encounter_id: &str, first: &'a Event) -> Self {
        Stay {
            encounter_id: encounter_id.to_string(),
            first,
            last: first,
            admitted: None,
            transfers: Vec::new(),
            discharged: None,
            cancelled: false,
        }
    }

    pub fn admitted(&mut self, e: &'a Event, a: &'a Admitted) {
        self.admitted = Some((e, a));
        self.cancelled = false;
        self.last = e;
    }

    pub fn transferred(&mut self, e: &'a Event, t: &'a Transferred) {
        self.transfers.push((e, t));
        self.last = e;
    }

    pub fn discharged(&mut self, e: &'a Event, d: &'a Discharged) {
        self.discharged = Some((e, d));
        self.last = e;
    }

    /// `e` cancels the movement whose event id is `cancelled`.
    pub fn cancel(&mut self, e: &'a Event, cancelled: &str) {
        if self.admitted.is_some_and(|(a, _)| a.event_id == cancelled) {
            self.cancelled = true;
        } else if self
            .discharged
            .is_some_and(|(d, _)| d.event_id == cancelled)
        {
            self.discharged = None;
        } else {
            self.transfers.retain(|(t, _)| t.event_id != cancelled);
        }
        self.last = e;
    }

    pub fn build(self, patient_id: &str) -> Resource {
        let status = match (self.cancelled, self.discharged.is_some()) {
            (true, _) => "entered-in-error",
            (false, true) => "finished",
            (false, false) => "in-progress",
        };
        let admitted = self.admitted.map(|(_, a)| a);
        let start = self.admitted.map_or(self.first, |(e, _)| e);
        let mut period = json!({});
        put(
            &mut period,
            "start",
            instant(start.occurred_at.as_ref()).map(Value::from),
        );
        if let Some((d, _)) = self.discharged {
            put(
                &mut period,
                "end",
                instant(d.occurred_at.as_ref()).map(Value::from),
            );
        }
        let mut body = json!({
            "resourceType": "Encounter",
            "id": fhir_id("Encounter", &self.encounter_id),
            "meta": meta(self.last, Some("fr-core-encounter")),
            "identifier": [identifier(&self.encounter_id)],
            "status": status,
            "class": codes::stay_class(admitted.map_or(0, |a| a.setting)),
            "subject": patient_ref(patient_id),
            "period": period,
        });
        let (priority, admit_source) = codes::admission(admitted.map_or(0, |a| a.admit_type));
        put(&mut body, "priority", priority);
        let mut diagnoses: Vec<&Code> = admitted.map_or(vec![], |a| a.diagnoses.iter().collect());
        if let Some((_, d)) = self.discharged {
            diagnoses.extend(d.diagnoses.iter());
        }
        put(&mut body, "reasonCode", reasons(&diagnoses));
        let mut hospitalization = json!({});
        put(&mut hospitalization, "admitSource", admit_source);
        if let Some((_, d)) = self.discharged {
            put(
                &mut hospitalization,
                "dischargeDisposition",
                codes::discharge_disposition(d.disposition),
            );
            if !d.destination_facility_id.is_empty() {
                put(
                    &mut hospitalization,
                    "destination",
                    Some(
                        json!({ "identifier": { "system": FINESS, "value": d.destination_facility_id } }),
                    ),
                );
            }
        }
        if hospitalization.as_object().is_some_and(|o| !o.is_empty()) {
            put(&mut body, "hospitalization", Some(hospitalization));
        }
        put(&mut body, "location", self.locations(admitted, status));
        put(
            &mut body,
            "serviceProvider",
            admitted.and_then(|a| organisation(a.facility.as_ref())),
        );
        Resource {
            kind: "Encounter",
            id: fhir_id("Encounter", &self.encounter_id),
            body,
        }
    }

    /// The units the stay went through: the admission's, then each transfer's; the last one
    /// active while the stay is open.
    fn locations(&self, admitted: Option<&Admitted>, status: &str) -> Option<Value> {
        let mut units: Vec<&str> = admitted.map(|a| a.unit.as_str()).into_iter().collect();
        units.extend(self.transfers.iter().map(|(_, t)| t.to_unit.as_str()));
        units.retain(|u| !u.is_empty());
        let n = units.len();
        let list: Vec<Value> = units
            .into_iter()
            .enumerate()
            .map(|(i, unit)| {
                let open = i + 1 == n && status == "in-progress";
                json!({
                    "location": { "display": unit },
                    "status": if open { "active" } else { "completed" },
                })
            })
            .collect();
        (!list.is_empty()).then(|| json!(list))
    }
}

/// An emergency visit without admission: a finished encounter of class EMER.
pub fn emergency(patient_id: &str, e: &Event, v: &EmergencyVisit) -> Resource {
    let raw = if v.visit_id.is_empty() {
        &e.event_id
    } else {
        &v.visit_id
    };
    let id = fhir_id("Encounter", raw);
    let mut period = json!({});
    put(
        &mut period,
        "start",
        instant(e.occurred_at.as_ref()).map(Value::from),
    );
    let mut body = json!({
        "resourceType": "Encounter",
        "id": id,
        "meta": meta(e, Some("fr-core-encounter")),
        "identifier": [identifier(raw)],
        "status": "finished",
        "class": codes::emergency_class(),
        "subject": patient_ref(patient_id),
        "period": period,
    });
    let diagnoses: Vec<&Code> = v.diagnoses.iter().collect();
    put(&mut body, "reasonCode", reasons(&diagnoses));
    put(
        &mut body,
        "hospitalization",
        codes::ed_disposition(v.outcome).map(|d| json!({ "dischargeDisposition": d })),
    );
    put(
        &mut body,
        "serviceProvider",
        organisation(v.facility.as_ref()),
    );
    Resource {
        kind: "Encounter",
        id,
        body,
    }
}

/// The FR Core Encounter identifier: the visit number under the journey's encounter ids.
fn identifier(encounter_id: &str) -> Value {
    json!({
        "type": { "coding": [{ "system": V2_0203, "code": "VN", "display": "Visit number" }] },
        "system": "urn:journey:encounter",
        "value": encounter_id,
    })
}

fn reasons(diagnoses: &[&Code]) -> Option<Value> {
    let list: Vec<Value> = diagnoses
        .iter()
        .filter_map(|c| codes::concept(Some(c)))
        .collect();
    (!list.is_empty()).then(|| json!(list))
}

/// The facility as the encounter's service provider (by FINESS, with its name).
fn organisation(f: Option<&Facility>) -> Option<Value> {
    let f = f.filter(|f| !f.id.is_empty())?;
    let mut r = json!({ "identifier": { "system": FINESS, "value": f.id } });
    put(&mut r, "display", text(&f.name));
    Some(r)
}

/// The reference to this encounter from another resource.
pub fn reference(encounter_id: &str) -> Option<Value> {
    (!encounter_id.is_empty()).then(|| encounter_ref(encounter_id))
}
