//! Encounter (FR Core Encounter): one per stay, from its admission, transfers and discharge,
//! with their cancellations undone (an admission cancelled: `entered-in-error`), and one per
//! movement (the admission, each transfer) `partOf` its stay, a cancelled movement
//! `entered-in-error`; one per emergency visit.
use crate::{
    codes::{self, V2_0203},
    condition,
    resource::Body,
    resource::{
        encounter_ref, fhir_id, fhir_id_of, instant, meta, patient_ref, put, text, Identifier,
        Meta, Prefixed, Reference,
    },
    Resource,
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        Admitted, ClassChanged, Code, Discharged, EmergencyVisit, Event, Facility, LeaveEnded,
        LeaveStarted, MovementCorrected, Transferred,
    },
};
use serde::Serialize;
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
    fn diagnoses(&self) -> Vec<DiagnosisRef> {
        self.diagnosed
            .iter()
            .filter(|d| d.cancelled.is_none() && self.cancelled.is_none())
            .flat_map(|d| diagnosis_ids(d.event, d.codes))
            .map(|id| DiagnosisRef {
                condition: ConditionRef {
                    reference: format!("Condition/{id}"),
                },
            })
            .collect()
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
        let id = fhir_id("Encounter", &m.event.event_id);
        let patient = fhir_id_of("Patient", patient_id);
        let stay = fhir_id_of("Encounter", &self.encounter_id);
        let ended = matches!((void, ender), (None, Some(_)));
        let body = MovementEncounter {
            class: codes::stay_class(m.setting.unwrap_or_else(|| self.setting())),
            id: &id,
            identifier: [VisitNumber::new("urn:journey:movement", &m.event.event_id)],
            location: (!m.unit.is_empty()).then(|| {
                [Location {
                    location: Display { display: m.unit },
                    status: if status == "in-progress" {
                        "active"
                    } else {
                        "completed"
                    },
                }]
            }),
            meta: Meta::of(last, Some("fr-core-encounter")),
            part_of: Reference {
                reference: Prefixed("Encounter/", &stay),
            },
            period: Period {
                end: if ended { instant(ended_at) } else { None },
                start: instant(m.time()),
            },
            resource_type: "Encounter",
            status,
            subject: Reference {
                reference: Prefixed("Patient/", &patient),
            },
            kind: m.leave.then_some([Text {
                text: "leave of absence",
            }]),
        };
        Resource::written("Encounter", id.clone(), last, &body)
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
        let (priority, admit_source) = codes::admission(admitted.map_or(0, |a| a.admit_type));
        let mut diagnoses: Vec<&Code> = admitted.map_or(vec![], |a| a.diagnoses.iter().collect());
        if let Some((_, d)) = self.discharged {
            diagnoses.extend(d.diagnoses.iter());
        }
        let discharge = self.discharged.map(|(_, d)| {
            let fix = &self.discharge_fix;
            let destination = fix.destination.unwrap_or(&d.destination_facility_id);
            (
                codes::discharge_disposition(fix.disposition.unwrap_or(d.disposition)),
                (!destination.is_empty()).then_some(Destination {
                    identifier: Identifier {
                        system: FINESS,
                        value: destination,
                    },
                }),
            )
        });
        let (disposition, destination) = discharge.unwrap_or((None, None));
        let hospitalization = Hospitalization {
            admit_source,
            destination,
            discharge_disposition: disposition,
        };
        let id = fhir_id("Encounter", &self.encounter_id);
        let patient = fhir_id_of("Patient", patient_id);
        let diagnosis = self.diagnoses();
        let body = StayEncounter {
            class: codes::stay_class(self.setting()),
            diagnosis: (!diagnosis.is_empty()).then_some(diagnosis),
            hospitalization: hospitalization.any().then_some(hospitalization),
            id: &id,
            identifier: [VisitNumber::new(ENCOUNTERS, &self.encounter_id)],
            location: self.locations(status),
            meta: Meta::of(self.last, Some("fr-core-encounter")),
            period: Period {
                end: instant(self.discharge_time()),
                start: instant(start_at),
            },
            priority,
            reason_code: reasons(&diagnoses),
            resource_type: "Encounter",
            service_provider: admitted.and_then(|a| Provider::of(a.facility.as_ref())),
            status,
            subject: Reference {
                reference: Prefixed("Patient/", &patient),
            },
        };
        Resource::written("Encounter", id.clone(), self.last, &body)
    }

    /// The units the stay went through (its movements not cancelled); the last one active while
    /// the stay is open.
    fn locations(&self, status: &str) -> Option<Vec<Location<'a>>> {
        let units: Vec<&str> = self
            .movements
            .iter()
            .filter(|m| m.cancelled.is_none() && !m.leave && !m.unit.is_empty())
            .map(|m| m.unit)
            .collect();
        let n = units.len();
        let list: Vec<Location> = units
            .into_iter()
            .enumerate()
            .map(|(i, unit)| {
                let open = i + 1 == n && status == "in-progress";
                Location {
                    location: Display { display: unit },
                    status: if open { "active" } else { "completed" },
                }
            })
            .collect();
        (!list.is_empty()).then_some(list)
    }
}

/// A stay's Encounter written straight, its keys in the order a JSON tree writes them.
#[derive(Serialize)]
struct StayEncounter<'a> {
    class: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnosis: Option<Vec<DiagnosisRef>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hospitalization: Option<Hospitalization<'a>>,
    id: &'a str,
    identifier: [VisitNumber<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<Vec<Location<'a>>>,
    meta: Meta<'a>,
    period: Period,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<Value>,
    #[serde(rename = "reasonCode", skip_serializing_if = "Option::is_none")]
    reason_code: Option<Value>,
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    #[serde(rename = "serviceProvider", skip_serializing_if = "Option::is_none")]
    service_provider: Option<Provider<'a>>,
    status: &'static str,
    subject: Reference<'a>,
}

/// A movement's Encounter written straight, its keys in the order a JSON tree writes them.
#[derive(Serialize)]
struct MovementEncounter<'a> {
    class: Value,
    id: &'a str,
    identifier: [VisitNumber<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<[Location<'a>; 1]>,
    meta: Meta<'a>,
    #[serde(rename = "partOf")]
    part_of: Reference<'a>,
    period: Period,
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    status: &'static str,
    subject: Reference<'a>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<[Text<'static>; 1]>,
}

#[derive(Serialize)]
struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<String>,
}

#[derive(Serialize)]
struct Text<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Display<'a> {
    display: &'a str,
}

/// A unit the stay went through.
#[derive(Serialize)]
struct Location<'a> {
    location: Display<'a>,
    status: &'static str,
}

/// `Encounter.diagnosis`: a Condition of the stay.
#[derive(Serialize)]
struct DiagnosisRef {
    condition: ConditionRef,
}

#[derive(Serialize)]
struct ConditionRef {
    reference: String,
}

#[derive(Serialize)]
struct Hospitalization<'a> {
    #[serde(rename = "admitSource", skip_serializing_if = "Option::is_none")]
    admit_source: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<Destination<'a>>,
    #[serde(
        rename = "dischargeDisposition",
        skip_serializing_if = "Option::is_none"
    )]
    discharge_disposition: Option<Value>,
}

impl Hospitalization<'_> {
    fn any(&self) -> bool {
        self.admit_source.is_some()
            || self.destination.is_some()
            || self.discharge_disposition.is_some()
    }
}

#[derive(Serialize)]
struct Destination<'a> {
    identifier: Identifier<'a>,
}

/// The facility as the stay's service provider (by FINESS, with its name), as [`organisation`]
/// builds it.
#[derive(Serialize)]
struct Provider<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
    identifier: Identifier<'a>,
}

impl<'a> Provider<'a> {
    fn of(f: Option<&'a Facility>) -> Option<Self> {
        let f = f.filter(|f| !f.id.is_empty())?;
        Some(Provider {
            display: (!f.name.trim().is_empty()).then_some(f.name.as_str()),
            identifier: Identifier {
                system: FINESS,
                value: &f.id,
            },
        })
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

/// The ids of the Conditions of the diagnoses `e` carried (those with a code).
fn diagnosis_ids<'e>(e: &'e Event, codes: &'e [Code]) -> impl Iterator<Item = String> + 'e {
    codes
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.code.trim().is_empty())
        .map(move |(i, _)| condition::diagnosis_id(e, i + 1))
}

/// `Encounter.diagnosis`: the Conditions of the diagnoses `e` carried (those with a code).
fn encounter_diagnoses(e: &Event, codes: &[Code]) -> Vec<Value> {
    diagnosis_ids(e, codes)
        .map(|id| json!({ "condition": { "reference": format!("Condition/{id}") } }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{AdmitType, Disposition, Setting};

    fn ev(n: u64) -> Event {
        Event {
            event_id: format!("e{n}"),
            stream_version: n,
            occurred_at: Some(Timestamp {
                seconds: 1_780_000_000 + n as i64 * 3_600,
                nanos: 0,
            }),
            recorded_at: Some(Timestamp {
                seconds: 1_780_000_000 + n as i64 * 3_700,
                nanos: 5_000_000,
            }),
            ..Default::default()
        }
    }

    fn code(c: &str) -> Code {
        Code {
            system: "ICD-10".into(),
            code: c.into(),
            display: "a diagnosis".into(),
        }
    }

    /// Each Encounter of `stay` (the stay, then each movement) as written and as its tree was
    /// built: the same JSON.
    fn same(stay: &Stay, patient: &str) -> usize {
        let written = stay.stay(patient);
        assert_eq!(written.json(), tree::stay(stay, patient), "stay");
        assert_eq!(
            written.last_updated(),
            tree::stay(stay, patient)["meta"]["lastUpdated"].as_str()
        );
        for i in 0..stay.movements.len() {
            assert_eq!(
                stay.movement(i, patient).json(),
                tree::movement(stay, i, patient),
                "movement {i}"
            );
        }
        1 + stay.movements.len()
    }

    #[test]
    fn a_stay_and_its_movements_are_written_as_their_trees_were_built() {
        let e: Vec<Event> = (1..=12).map(ev).collect();
        let admitted = Admitted {
            encounter_id: "S 1".into(),
            facility: Some(Facility {
                id: "750000001".into(),
                name: "CHU \"Nord\"".into(),
                ..Default::default()
            }),
            unit: "Cardiologie".into(),
            setting: Setting::Inpatient as i32,
            admit_type: AdmitType::Emergency as i32,
            diagnoses: vec![code("I50.9"), code(" "), code("E11")],
            ..Default::default()
        };
        let bare = Admitted {
            encounter_id: "S2".into(),
            facility: Some(Facility {
                id: String::new(),
                name: "nameless".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let transferred = Transferred {
            to_unit: "USIC".into(),
            ..Default::default()
        };
        let left = LeaveStarted::default();
        let back = LeaveEnded {
            unit: "Cardiologie".into(),
            ..Default::default()
        };
        let had = ClassChanged {
            setting: Setting::Had as i32,
            unit: "HAD".into(),
            ..Default::default()
        };
        let moved = MovementCorrected {
            corrected_event_id: "e2".into(),
            moved_at: Some(Timestamp {
                seconds: 1_780_001_000,
                nanos: 0,
            }),
            unit: "Réanimation".into(),
            ..Default::default()
        };
        let discharged = Discharged {
            disposition: Disposition::Rehab as i32,
            diagnoses: vec![code("I10")],
            destination_facility_id: "750000002".into(),
            ..Default::default()
        };
        let fixed = MovementCorrected {
            corrected_event_id: "e7".into(),
            disposition: Disposition::Home as i32,
            destination_facility_id: "750000003".into(),
            ..Default::default()
        };
        let home = Discharged {
            disposition: Disposition::Home as i32,
            ..Default::default()
        };
        let mut n = 0;
        // Whole: every movement, corrected, discharged then corrected.
        let mut s = Stay::new("S 1", &e[0]);
        s.admitted(&e[0], &admitted);
        s.transferred(&e[1], &transferred);
        s.left(&e[2], &left);
        n += same(&s, "P 1");
        s.returned(&e[3], &back);
        s.class_changed(&e[4], &had);
        s.corrected(&e[5], &moved);
        n += same(&s, "P 1");
        s.discharged(&e[6], &discharged);
        n += same(&s, "P1");
        s.corrected(&e[7], &fixed);
        n += same(&s, "P1");
        // The discharge and a transfer cancelled, then the admission.
        s.cancel(&e[8], "e7");
        s.cancel(&e[9], "e2");
        n += same(&s, "P1");
        s.cancel(&e[10], "e1");
        n += same(&s, "P1");
        // Bare: no unit, no facility's id, no admit type nor diagnosis; discharged home.
        let mut b = Stay::new("S2", &e[0]);
        b.admitted(&e[0], &bare);
        n += same(&b, "P1");
        b.discharged(&e[11], &home);
        n += same(&b, "P1");
        assert_eq!(n, 38);
    }

    /// The trees a stay's Encounters were built as before they were written straight (the code
    /// they replaced).
    mod tree {
        use super::super::*;

        fn diagnosis_list(s: &Stay) -> Option<Value> {
            let list: Vec<Value> = s
                .diagnosed
                .iter()
                .filter(|d| d.cancelled.is_none() && s.cancelled.is_none())
                .flat_map(|d| encounter_diagnoses(d.event, d.codes))
                .collect();
            (!list.is_empty()).then(|| json!(list))
        }

        pub(super) fn movement(s: &Stay, i: usize, patient_id: &str) -> Value {
            let m = &s.movements[i];
            let next = s.movements[i + 1..].iter().find(|n| n.cancelled.is_none());
            let ender = next.map(|n| n.event).or(s.discharged.map(|(d, _)| d));
            let ended_at = match next {
                Some(n) => n.time(),
                None => s.discharge_time(),
            };
            let void = m.cancelled.or(s.cancelled);
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
                "class": codes::stay_class(m.setting.unwrap_or_else(|| s.setting())),
                "subject": patient_ref(patient_id),
                "period": period,
                "partOf": encounter_ref(&s.encounter_id),
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
            body
        }
        pub(super) fn stay(s: &Stay, patient_id: &str) -> Value {
            let status = match (s.cancelled, s.discharged.is_some()) {
                (Some(_), _) => "entered-in-error",
                (None, true) => "finished",
                (None, false) if s.on_leave() => "onleave",
                (None, false) => "in-progress",
            };
            let admitted = s.admitted.map(|(_, a)| a);
            let start = s.admitted.map_or(s.first, |(e, _)| e);
            let start_at = s
                .movements
                .iter()
                .find(|m| m.event.event_id == start.event_id)
                .and_then(|m| m.at)
                .or(start.occurred_at.as_ref());
            let mut body = json!({
                "resourceType": "Encounter",
                "id": fhir_id("Encounter", &s.encounter_id),
                "meta": meta(s.last, Some("fr-core-encounter")),
                "identifier": [identifier(ENCOUNTERS, &s.encounter_id)],
                "status": status,
                "class": codes::stay_class(s.setting()),
                "subject": patient_ref(patient_id),
                "period": period_of(start_at, s.discharge_time()),
            });
            let (priority, admit_source) = codes::admission(admitted.map_or(0, |a| a.admit_type));
            put(&mut body, "priority", priority);
            let mut diagnoses: Vec<&Code> =
                admitted.map_or(vec![], |a| a.diagnoses.iter().collect());
            if let Some((_, d)) = s.discharged {
                diagnoses.extend(d.diagnoses.iter());
            }
            put(&mut body, "reasonCode", reasons(&diagnoses));
            put(&mut body, "diagnosis", diagnosis_list(s));
            let mut hospitalization = json!({});
            put(&mut hospitalization, "admitSource", admit_source);
            if let Some((_, d)) = s.discharged {
                let fix = &s.discharge_fix;
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
            put(&mut body, "location", locations(s, status));
            put(
                &mut body,
                "serviceProvider",
                admitted.and_then(|a| organisation(a.facility.as_ref())),
            );
            body
        }
        fn locations(s: &Stay, status: &str) -> Option<Value> {
            let units: Vec<&str> = s
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
}
