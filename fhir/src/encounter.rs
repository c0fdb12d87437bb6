//! Encounter (FR Core Encounter): one per stay, from its admission, transfers and discharge,
//! with their cancellations undone (an admission cancelled: `entered-in-error`), and one per
//! movement (the admission, each transfer) `partOf` its stay, a cancelled movement
//! `entered-in-error`; one per emergency visit.
use crate::{
    codes::{self, V2_0203},
    condition,
    resource::Body,
    resource::{encounter_ref, fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        Admitted, ClassChanged, Code, Discharged, EmergencyVisit, Event, Facility, LeaveEnded,
        LeaveStarted, MovementCorrected, Transferred,
    },
};
use serde_json::{json, Value};

/// The FINESS identifier system (ANS organisations' OID).
const FINESS: &str = "urn:oid:1.2.250.1.71.4.2.2";

pub struct Stay<'a> {
    encounter_id: String,
    first: &'a Event,
    last: &'a Event,
    admitted: Option<(&'a Event, &'a Admitted)>,
    /// The admission and each transfer, in the order they came.
    movements: Vec<Movement<'a>>,
    discharged: Option<(&'a Event, &'a Discharged)>,
    /// The discharge's corrections (`MovementCorrected`): its time, disposition, destination.
    discharge_fix: Fix<'a>,
    /// The cancellation of the admission.
    cancelled: Option<&'a Event>,
    /// The events that carried diagnoses (the admission, each discharge), each with its
    /// cancellation if any.
    diagnosed: Vec<Diagnosed<'a>>,
}

/// An event of the stay that carried diagnoses.
struct Diagnosed<'a> {
    event: &'a Event,
    codes: &'a [Code],
    cancelled: Option<&'a Event>,
}

/// A movement of a stay (IHE PAM, PAM-FR): the patient entering `unit`, by admission, transfer,
/// class change or return from leave, or leaving on leave of absence.
struct Movement<'a> {
    event: &'a Event,
    unit: &'a str,
    cancelled: Option<&'a Event>,
    /// A leave of absence (the patient away from the stay's units).
    leave: bool,
    /// The class it gives the stay (an admission's or a class change's setting).
    setting: Option<i32>,
    /// Its corrected time (`MovementCorrected.moved_at`).
    at: Option<&'a Timestamp>,
}

/// What corrections changed of a discharge.
#[derive(Default)]
struct Fix<'a> {
    at: Option<&'a Timestamp>,
    disposition: Option<i32>,
    destination: Option<&'a str>,
}

impl Movement<'_> {
    fn time(&self) -> Option<&Timestamp> {
        self.at.or(self.event.occurred_at.as_ref())
    }
}

impl<'a> Stay<'a> {
    pub fn new(encounter_id: &str, first: &'a Event) -> Self {
        Stay {
            encounter_id: encounter_id.to_string(),
            first,
            last: first,
            admitted: None,
            movements: Vec::new(),
            discharged: None,
            discharge_fix: Fix::default(),
            cancelled: None,
            diagnosed: Vec::new(),
        }
    }

    fn diagnosed(&mut self, e: &'a Event, codes: &'a [Code]) {
        if !codes.is_empty() {
            self.diagnosed.push(Diagnosed {
                event: e,
                codes,
                cancelled: None,
            });
        }
    }

    pub fn admitted(&mut self, e: &'a Event, a: &'a Admitted) {
        self.admitted = Some((e, a));
        self.cancelled = None;
        self.diagnosed(e, &a.diagnoses);
        self.moved(e, &a.unit, false, Some(a.setting));
    }

    pub fn transferred(&mut self, e: &'a Event, t: &'a Transferred) {
        self.moved(e, &t.to_unit, false, None);
    }

    /// A leave of absence starts (PAM-FR A21): a movement to where the patient goes, if said.
    pub fn left(&mut self, e: &'a Event, l: &'a LeaveStarted) {
        self.moved(e, &l.unit, true, None);
    }

    /// The patient is back from leave (PAM-FR A22), in `unit`.
    pub fn returned(&mut self, e: &'a Event, l: &'a LeaveEnded) {
        self.moved(e, &l.unit, false, None);
    }

    /// The stay's class changes (PAM-FR A06/A07): a movement that gives the stay its class.
    pub fn class_changed(&mut self, e: &'a Event, c: &'a ClassChanged) {
        self.moved(e, &c.unit, false, Some(c.setting));
    }

    /// `e` corrects the movement or discharge `c.corrected_event_id`: its time, unit, class,
    /// disposition or destination, whichever it gives.
    pub fn corrected(&mut self, e: &'a Event, c: &'a MovementCorrected) {
        let id = c.corrected_event_id.as_str();
        for m in self.movements.iter_mut().filter(|m| m.event.event_id == id) {
            m.at = c.moved_at.as_ref().or(m.at);
            if !c.unit.is_empty() {
                m.unit = &c.unit;
            }
            if c.setting != 0 && m.setting.is_some() {
                m.setting = Some(c.setting);
            }
        }
        if self.discharged.is_some_and(|(d, _)| d.event_id == id) {
            let fix = &mut self.discharge_fix;
            fix.at = c.moved_at.as_ref().or(fix.at);
            if c.disposition != 0 {
                fix.disposition = Some(c.disposition);
            }
            if !c.destination_facility_id.is_empty() {
                fix.destination = Some(&c.destination_facility_id);
            }
        }
        self.last = e;
    }

    fn moved(&mut self, e: &'a Event, unit: &'a str, leave: bool, setting: Option<i32>) {
        self.movements.push(Movement {
            event: e,
            unit,
            cancelled: None,
            leave,
            setting,
            at: None,
        });
        self.last = e;
    }

    /// The stay's class: that of its last movement that gives one and holds (an admission, a
    /// class change).
    fn setting(&self) -> i32 {
        self.movements
            .iter()
            .rev()
            .filter(|m| m.cancelled.is_none())
            .find_map(|m| m.setting)
            .or(self.admitted.map(|(_, a)| a.setting))
            .unwrap_or(0)
    }

    /// Whether the patient is on leave: the stay open, its last movement that holds a leave.
    fn on_leave(&self) -> bool {
        self.discharged.is_none()
            && self
                .movements
                .iter()
                .rev()
                .find(|m| m.cancelled.is_none())
                .is_some_and(|m| m.leave)
    }

    /// When the stay ended (its discharge, corrected).
    fn discharge_time(&self) -> Option<&'a Timestamp> {
        let (d, _) = self.discharged?;
        self.discharge_fix.at.or(d.occurred_at.as_ref())
    }

    pub fn discharged(&mut self, e: &'a Event, d: &'a Discharged) {
        self.discharged = Some((e, d));
        self.diagnosed(e, &d.diagnoses);
        self.last = e;
    }

    /// `e` cancels the movement whose event id is `cancelled`: an admission cancelled voids the
    /// stay, a discharge cancelled re-opens it, a transfer cancelled stays as a movement entered
    /// in error.
    pub fn cancel(&mut self, e: &'a Event, cancelled: &str) {
        if self.admitted.is_some_and(|(a, _)| a.event_id == cancelled) {
            self.cancelled = Some(e);
        }
        if self
            .discharged
            .is_some_and(|(d, _)| d.event_id == cancelled)
        {
            self.discharged = None;
        }
        for m in self
            .movements
            .iter_mut()
            .filter(|m| m.event.event_id == cancelled)
        {
            m.cancelled = Some(e);
        }
        for d in self
            .diagnosed
            .iter_mut()
            .filter(|d| d.event.event_id == cancelled)
        {
            d.cancelled = Some(e);
        }
        self.last = e;
    }

    /// The stay, then each of its movements, then each of its diagnoses.
    pub fn build(self, patient_id: &str) -> Vec<Resource> {
        let mut out = vec![self.stay(patient_id)];
        out.extend((0..self.movements.len()).map(|i| self.movement(i, patient_id)));
        for d in &self.diagnosed {
            let void = d.cancelled.or(self.cancelled);
            out.extend(d.codes.iter().enumerate().filter_map(|(i, code)| {
                condition::diagnosis(patient_id, &self.encounter_id, d.event, i + 1, code, void)
            }));
        }
        out
    }

    /// The stay's diagnoses that hold (their events not cancelled), as `Encounter.diagnosis`.
    fn diagnoses(&self) -> Option<Value> {
        let list: Vec<Value> = self
            .diagnosed
            .iter()
            .filter(|d| d.cancelled.is_none() && self.cancelled.is_none())
            .flat_map(|d| encounter_diagnoses(d.event, d.codes))
            .collect();
        (!list.is_empty()).then(|| json!(list))
    }

    /// The movement `i`: `partOf` the stay, in its unit from its time to the next movement's (or
    /// the discharge); a cancelled movement, or any movement of a cancelled stay,
    /// `entered-in-error`.
    fn movement(&self, i: usize, patient_id: &str) -> Resource {
        let m = &self.movements[i];
        let next = self.movements[i + 1..]
            .iter()
            .find(|n| n.cancelled.is_none());
        let ender = next.map(|n| n.event).or(self.discharged.map(|(d, _)| d));
        let ended_at = match next {
            Some(n) => n.time(),
            None => self.discharge_time(),
        };
        let void = m.cancelled.or(self.cancelled);
        let status = match (void, ender) {
            (Some(_), _) => "entered-in-error",
            (None, Some(_)) => "finished",
            (None, None) => "in-progress",
        };
        let last = [Some(m.event), void, ender.filter(|_| void.is_none())]
            .into_iter()
            .flatten()
            .max_by_key(|e| e.stream_version)
            .unwrap_or(m.event);
        let mut period = json!({});
        put(&mut period, "start", instant(m.time()).map(Value::from));
        if let (None, Some(_)) = (void, ender) {
            put(&mut period, "end", instant(ended_at).map(Value::from));
        }
        let id = fhir_id("Encounter", &m.event.event_id);
        let mut body = json!({
            "resourceType": "Encounter",
            "id": id,
            "meta": meta(last, Some("fr-core-encounter")),
            "identifier": [{
                "type": { "coding": [{ "system": V2_0203, "code": "VN", "display": "Visit number" }] },
                "system": "urn:journey:movement",
                "value": m.event.event_id,
            }],
            "status": status,
            "class": codes::stay_class(m.setting.unwrap_or_else(|| self.setting())),
            "subject": patient_ref(patient_id),
            "period": period,
            "partOf": encounter_ref(&self.encounter_id),
        });
        if m.leave {
            put(
                &mut body,
                "type",
                Some(json!([{ "text": "leave of absence" }])),
            );
        }
        if !m.unit.is_empty() {
            let state = if status == "in-progress" {
                "active"
            } else {
                "completed"
            };
            put(
                &mut body,
                "location",
                Some(json!([{ "location": { "display": m.unit }, "status": state }])),
            );
        }
        Resource {
            kind: "Encounter",
            id,
            body: Body::Tree(body),
        }
    }

    fn stay(&self, patient_id: &str) -> Resource {
        let status = match (self.cancelled, self.discharged.is_some()) {
            (Some(_), _) => "entered-in-error",
            (None, true) => "finished",
            (None, false) if self.on_leave() => "onleave",
            (None, false) => "in-progress",
        };
        let admitted = self.admitted.map(|(_, a)| a);
        let start = self.admitted.map_or(self.first, |(e, _)| e);
        let start_at = self
            .movements
            .iter()
            .find(|m| m.event.event_id == start.event_id)
            .and_then(|m| m.at)
            .or(start.occurred_at.as_ref());
        let mut body = json!({
            "resourceType": "Encounter",
            "id": fhir_id("Encounter", &self.encounter_id),
            "meta": meta(self.last, Some("fr-core-encounter")),
            "identifier": [identifier(ENCOUNTERS, &self.encounter_id)],
            "status": status,
            "class": codes::stay_class(self.setting()),
            "subject": patient_ref(patient_id),
            "period": period_of(start_at, self.discharge_time()),
        });
        let (priority, admit_source) = codes::admission(admitted.map_or(0, |a| a.admit_type));
        put(&mut body, "priority", priority);
        let mut diagnoses: Vec<&Code> = admitted.map_or(vec![], |a| a.diagnoses.iter().collect());
        if let Some((_, d)) = self.discharged {
            diagnoses.extend(d.diagnoses.iter());
        }
        put(&mut body, "reasonCode", reasons(&diagnoses));
        put(&mut body, "diagnosis", self.diagnoses());
        let mut hospitalization = json!({});
        put(&mut hospitalization, "admitSource", admit_source);
        if let Some((_, d)) = self.discharged {
            let fix = &self.discharge_fix;
            put(
                &mut hospitalization,
                "dischargeDisposition",
                codes::discharge_disposition(fix.disposition.unwrap_or(d.disposition)),
            );
            let destination = fix.destination.unwrap_or(&d.destination_facility_id);
            if !destination.is_empty() {
                put(
                    &mut hospitalization,
                    "destination",
                    Some(json!({ "identifier": { "system": FINESS, "value": destination } })),
                );
            }
        }
        if hospitalization.as_object().is_some_and(|o| !o.is_empty()) {
            put(&mut body, "hospitalization", Some(hospitalization));
        }
        put(&mut body, "location", self.locations(status));
        put(
            &mut body,
            "serviceProvider",
            admitted.and_then(|a| organisation(a.facility.as_ref())),
        );
        Resource {
            kind: "Encounter",
            id: fhir_id("Encounter", &self.encounter_id),
            body: Body::Tree(body),
        }
    }

    /// The units the stay went through (its movements not cancelled); the last one active while
    /// the stay is open.
    fn locations(&self, status: &str) -> Option<Value> {
        let units: Vec<&str> = self
            .movements
            .iter()
            .filter(|m| m.cancelled.is_none() && !m.leave && !m.unit.is_empty())
            .map(|m| m.unit)
            .collect();
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

/// An emergency visit without admission: a finished encounter of class EMER, then its
/// diagnoses.
pub fn emergency(patient_id: &str, e: &Event, v: &EmergencyVisit) -> Vec<Resource> {
    let raw = if v.visit_id.is_empty() {
        &e.event_id
    } else {
        &v.visit_id
    };
    let (id, mut body) = one_event(patient_id, e, raw, ENCOUNTERS, codes::emergency_class());
    let diagnoses: Vec<&Code> = v.diagnoses.iter().collect();
    put(&mut body, "reasonCode", reasons(&diagnoses));
    let listed = encounter_diagnoses(e, &v.diagnoses);
    put(
        &mut body,
        "diagnosis",
        (!listed.is_empty()).then(|| json!(listed)),
    );
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
    let mut out = vec![Resource {
        kind: "Encounter",
        id,
        body: Body::Tree(body),
    }];
    out.extend(
        v.diagnoses
            .iter()
            .enumerate()
            .filter_map(|(i, code)| condition::diagnosis(patient_id, raw, e, i + 1, code, None)),
    );
    out
}

/// `Encounter.diagnosis`: the Conditions of the diagnoses `e` carried (those with a code).
fn encounter_diagnoses(e: &Event, codes: &[Code]) -> Vec<Value> {
    codes
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.code.trim().is_empty())
        .map(|(i, _)| {
            json!({ "condition": {
                "reference": format!("Condition/{}", condition::diagnosis_id(e, i + 1)),
            } })
        })
        .collect()
}

/// The system of the journey's encounter ids.
const ENCOUNTERS: &str = "urn:journey:encounter";

/// The FR Core Encounter identifier: the visit number `value` under `system`.
/// The visit number `value` under `system`, as [`identifier`] builds it, for the Encounters
/// written straight.
#[derive(serde::Serialize)]
pub(crate) struct VisitNumber<'a> {
    #[serde(rename = "type")]
    kind: crate::resource::Concept<'static>,
    system: &'a str,
    value: &'a str,
}

impl<'a> VisitNumber<'a> {
    pub(crate) fn new(system: &'a str, value: &'a str) -> Self {
        VisitNumber {
            kind: crate::resource::Concept::coded(V2_0203, "VN", "Visit number"),
            system,
            value,
        }
    }
}

fn identifier(system: &str, value: &str) -> Value {
    json!({
        "type": { "coding": [{ "system": V2_0203, "code": "VN", "display": "Visit number" }] },
        "system": system,
        "value": value,
    })
}

/// From `start`'s occurrence to `end`'s, when there is one.
fn period(start: &Event, end: Option<&Event>) -> Value {
    period_of(
        start.occurred_at.as_ref(),
        end.and_then(|e| e.occurred_at.as_ref()),
    )
}

/// From `start` to `end`, each when known.
fn period_of(start: Option<&Timestamp>, end: Option<&Timestamp>) -> Value {
    let mut period = json!({});
    put(&mut period, "start", instant(start).map(Value::from));
    put(&mut period, "end", instant(end).map(Value::from));
    period
}

/// The id and body of a finished Encounter that one event `e` records whole, at its occurrence:
/// `raw` its visit number under `system`, of class `class`.
pub(crate) fn one_event(
    patient_id: &str,
    e: &Event,
    raw: &str,
    system: &str,
    class: Value,
) -> (String, Value) {
    let id = fhir_id("Encounter", raw);
    let body = json!({
        "resourceType": "Encounter",
        "id": id,
        "meta": meta(e, Some("fr-core-encounter")),
        "identifier": [identifier(system, raw)],
        "status": "finished",
        "class": class,
        "subject": patient_ref(patient_id),
        "period": period(e, None),
    });
    (id, body)
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
