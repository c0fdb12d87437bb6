//! Patient (FR Core Patient): the local identifiers, name, sex, birth date, GP, death, and the
//! patients merged into this one (`link` replaces). The
//! INS is not emitted: the French profile carries it only for a qualified identity, and our
//! events do not say yet whether the identity was qualified (docs/fhir.md).
use crate::{
    codes::{gender, V2_0203},
    resource::Body,
    resource::{fhir_id, instant, meta, patient_ref, put, text},
    Resource,
};
use journey_proto::v1::{event::Payload, Event, Professional};
use serde_json::{json, Value};

pub struct Person<'a> {
    patient_id: String,
    first: Option<&'a Event>,
    last: Option<&'a Event>,
    local_id: String,
    family: String,
    given: String,
    birth_date: String,
    sex: i32,
    gp: Option<&'a Professional>,
    died: Option<String>,
    /// The patients merged into this one.
    replaces: Vec<&'a str>,
}

impl<'a> Person<'a> {
    pub fn new(patient_id: &str) -> Self {
        Person {
            patient_id: patient_id.to_string(),
            first: None,
            last: None,
            local_id: String::new(),
            family: String::new(),
            given: String::new(),
            birth_date: String::new(),
            sex: 0,
            gp: None,
            died: None,
            replaces: Vec::new(),
        }
    }

    /// The patient's first event: the resource's version when no identity event came.
    pub fn touch_first(&mut self, e: &'a Event) {
        self.first.get_or_insert(e);
    }

    /// An identity event: what it says replaces what was known (empty fields keep it).
    pub fn apply(&mut self, e: &'a Event, payload: &'a Payload) {
        let keep = |old: &mut String, new: &str| {
            if !new.is_empty() {
                *old = new.to_string();
            }
        };
        match payload {
            Payload::PatientRegistered(r) => {
                keep(&mut self.local_id, &r.local_id);
                keep(&mut self.family, &r.family_name);
                keep(&mut self.given, &r.given_name);
                keep(&mut self.birth_date, &r.birth_date);
                if r.sex != 0 {
                    self.sex = r.sex;
                }
                self.gp = r.gp.as_ref().or(self.gp);
            }
            Payload::IdentityUpdated(u) => {
                keep(&mut self.family, &u.family_name);
                keep(&mut self.given, &u.given_name);
                keep(&mut self.birth_date, &u.birth_date);
                if u.sex != 0 {
                    self.sex = u.sex;
                }
                self.gp = u.gp.as_ref().or(self.gp);
            }
            Payload::PatientsMerged(m) => self.replaces.push(&m.retired_patient_id),
            Payload::PatientDeceased(d) => {
                self.died = instant(d.died_at.as_ref()).or_else(|| instant(e.occurred_at.as_ref()))
            }
            _ => return,
        }
        self.last = Some(e);
    }

    /// The Patient; `None` for a patient without events.
    pub fn build(self) -> Option<Resource> {
        let last = self.last.or(self.first)?;
        let id = fhir_id("Patient", &self.patient_id);
        let identifier = |system: &str, value: &str| {
            json!({
                "use": "usual",
                "type": { "coding": [{ "system": V2_0203, "code": "PI", "display": "Patient internal identifier" }] },
                "system": system,
                "value": value,
            })
        };
        let mut identifiers = vec![identifier("urn:journey:patient", &self.patient_id)];
        if !self.local_id.is_empty() {
            identifiers.push(identifier("urn:journey:local-id", &self.local_id));
        }
        let mut body = json!({
            "resourceType": "Patient",
            "id": id,
            "meta": meta(last, Some("fr-core-patient")),
            "identifier": identifiers,
        });
        if !self.family.is_empty() || !self.given.is_empty() {
            let mut name = json!({ "use": "official" });
            put(&mut name, "family", text(&self.family));
            put(&mut name, "given", text(&self.given).map(|g| json!([g])));
            put(&mut body, "name", Some(json!([name])));
        }
        put(&mut body, "gender", gender(self.sex).map(Value::from));
        put(&mut body, "birthDate", text(&self.birth_date));
        put(&mut body, "deceasedDateTime", self.died.map(Value::from));
        if !self.replaces.is_empty() {
            let links: Vec<Value> = self
                .replaces
                .iter()
                .map(|r| json!({ "other": patient_ref(r), "type": "replaces" }))
                .collect();
            put(&mut body, "link", Some(json!(links)));
        }
        if let Some(gp) = self.gp.filter(|g| !g.id.is_empty() || !g.name.is_empty()) {
            put(
                &mut body,
                "generalPractitioner",
                Some(json!([professional(gp)])),
            );
        }
        Some(Resource {
            kind: "Patient",
            id: fhir_id("Patient", &self.patient_id),
            body: Body::Tree(body),
        })
    }
}

/// A reference to a professional by identifier (RPPS or local id) and name.
pub fn professional(p: &Professional) -> Value {
    let mut r = json!({});
    if !p.id.is_empty() {
        r["identifier"] = json!({ "system": "urn:journey:professional", "value": p.id });
    }
    put(&mut r, "display", text(&p.name));
    r
}
