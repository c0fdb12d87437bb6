//! Patient (FR Core Patient): the local identifiers, name, sex, birth date, GP, death, the
//! patients merged into this one (`link` replaces), and the identity as the French INS profile
//! carries it: the INS of a validated identity, how far the identity was checked, the birth place
//! and the list of birth given names; a Patient holding every trait of the INS profile claims it
//! ([`crate::identity`]; docs/fhir.md).
use crate::{
    codes::{gender, V2_0203},
    identity,
    resource::Body,
    resource::{fhir_id, instant, meta, patient_ref, put, text, FR_CORE},
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
    ins: String,
    ins_oid: String,
    identity_status: i32,
    /// The INSEE code of the birth place.
    birth_place: String,
    /// The list of birth given names, space-separated.
    birth_given_names: String,
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
            ins: String::new(),
            ins_oid: String::new(),
            identity_status: 0,
            birth_place: String::new(),
            birth_given_names: String::new(),
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
                keep(&mut self.birth_place, &r.birth_place_code);
                keep(&mut self.birth_given_names, &r.birth_given_names);
                if r.sex != 0 {
                    self.sex = r.sex;
                }
                self.gp = r.gp.as_ref().or(self.gp);
                self.identity(&r.ins, &r.ins_oid, r.identity_status, false);
            }
            Payload::IdentityUpdated(u) => {
                keep(&mut self.family, &u.family_name);
                keep(&mut self.given, &u.given_name);
                keep(&mut self.birth_date, &u.birth_date);
                keep(&mut self.birth_place, &u.birth_place_code);
                keep(&mut self.birth_given_names, &u.birth_given_names);
                if u.sex != 0 {
                    self.sex = u.sex;
                }
                self.gp = u.gp.as_ref().or(self.gp);
                self.identity(&u.ins, &u.ins_oid, u.identity_status, u.ins_removed);
            }
            Payload::PatientsMerged(m) => self.replaces.push(&m.retired_patient_id),
            Payload::PatientDeceased(d) => {
                self.died = instant(d.died_at.as_ref()).or_else(|| instant(e.occurred_at.as_ref()))
            }
            _ => return,
        }
        self.last = Some(e);
    }

    /// The INS and the identity status an identity event gives (an INS removed when it was
    /// wrongly attributed).
    fn identity(&mut self, ins: &str, oid: &str, status: i32, removed: bool) {
        if removed {
            self.ins.clear();
            self.ins_oid.clear();
        } else if !ins.is_empty() {
            self.ins = ins.to_string();
            self.ins_oid = oid.to_string();
        }
        if status != 0 {
            self.identity_status = status;
        }
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
        let ins = identity::ins(self.identity_status, &self.ins, &self.ins_oid);
        // The given name is the first of the birth list when the identity gave only the list
        // (the INS's rule: `given` holds the first given name of the birth certificate).
        let given = match self.given.trim() {
            "" => self
                .birth_given_names
                .split_whitespace()
                .next()
                .unwrap_or(""),
            g => g,
        };
        let sex = gender(self.sex);
        let claims_ins = identity::Traits {
            ins: ins.as_ref(),
            family: &self.family,
            given,
            birth_given_names: &self.birth_given_names,
            birth_date: &self.birth_date,
            birth_place: &self.birth_place,
            gender: sex,
        }
        .complete();
        let mut identifiers: Vec<Value> = ins.into_iter().collect();
        identifiers.push(identifier("urn:journey:patient", &self.patient_id));
        if !self.local_id.is_empty() {
            identifiers.push(identifier("urn:journey:local-id", &self.local_id));
        }
        let mut meta = meta(last, Some("fr-core-patient"));
        if claims_ins {
            meta["profile"] = json!([
                format!("{FR_CORE}fr-core-patient"),
                format!("{FR_CORE}{}", identity::INS_PROFILE)
            ]);
        }
        let mut body = json!({
            "resourceType": "Patient",
            "id": id,
            "meta": meta,
            "identifier": identifiers,
        });
        let extensions: Vec<Value> = [
            identity::reliability(self.identity_status),
            identity::birth_place(&self.birth_place),
        ]
        .into_iter()
        .flatten()
        .collect();
        put(
            &mut body,
            "extension",
            (!extensions.is_empty()).then(|| json!(extensions)),
        );
        if !self.family.is_empty() || !given.is_empty() {
            let mut name = json!({ "use": "official" });
            put(
                &mut name,
                "extension",
                identity::birth_given_names(&self.birth_given_names).map(|e| json!([e])),
            );
            put(&mut name, "family", text(&self.family));
            put(&mut name, "given", text(given).map(|g| json!([g])));
            put(&mut body, "name", Some(json!([name])));
        }
        put(&mut body, "gender", sex.map(Value::from));
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
