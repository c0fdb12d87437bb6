//! CareTeam: the patient's referents (GP, home nurse, pharmacist, liaison nurse, HAD
//! coordinator…), from `ReferentAssigned` and the care plans' referents; one per patient.
use crate::{
    codes,
    patient::professional,
    resource::Body,
    resource::{fhir_id, meta, patient_ref},
    Resource,
};
use journey_proto::v1::{Event, Professional};
use serde_json::{json, Value};

#[derive(Default)]
pub struct Team<'a> {
    /// (role, professional), each once, in the order they were named.
    members: Vec<(i32, &'a Professional)>,
    last: Option<&'a Event>,
}

impl<'a> Team<'a> {
    pub fn name(&mut self, e: &'a Event, role: i32, p: &'a Professional) {
        let known = self
            .members
            .iter()
            .any(|(r, q)| *r == role && q.id == p.id && q.name == p.name);
        if !known && (!p.id.is_empty() || !p.name.is_empty()) {
            self.members.push((role, p));
        }
        self.last = Some(e);
    }

    /// The CareTeam's id, once someone is in it.
    pub fn id(&self, patient_id: &str) -> Option<String> {
        (!self.members.is_empty()).then(|| fhir_id("CareTeam", &format!("{patient_id}.team")))
    }

    pub fn build(self, patient_id: &str) -> Option<Resource> {
        let id = self.id(patient_id)?;
        let last = self.last?;
        let participants: Vec<Value> = self
            .members
            .iter()
            .map(|(role, p)| {
                let mut participant = json!({ "member": professional(p) });
                if let Some(r) = codes::referent_role(*role) {
                    participant["role"] = json!([{ "text": r }]);
                }
                participant
            })
            .collect();
        let body = json!({
            "resourceType": "CareTeam",
            "id": id,
            "meta": meta(last, None),
            "status": "active",
            "name": "hospital-to-home referents",
            "subject": patient_ref(patient_id),
            "participant": participants,
        });
        Some(Resource {
            kind: "CareTeam",
            id,
            body: Body::Tree(body),
        })
    }
}
