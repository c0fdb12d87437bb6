//! A small Synthea population written by the test itself in the three forms the importer reads:
//! Synthea CSV, FHIR Bulk NDJSON (conditional references, as Synthea's Bulk output) and FHIR
//! transaction Bundles (one per patient, `urn:uuid:` references, as Synthea's default output).
//!
//! Three patients, built to exercise the mapping's clinical rules:
//! - `pat-a`: a ward stay with an overlapping ICU encounter at the same hospital (one stay, two
//!   transfers), an ED visit 16 days after discharge whose reason is COPD, a readmission 21 days
//!   after, an outpatient visit whose reason is type 2 diabetes, a home visit, a teleconsultation,
//!   a condition, a medication with a stop, a numeric and a non-numeric observation, a care plan;
//! - `pat-b`: a hospice visit, then two overlapping inpatient encounters at one hospital, the
//!   patient dying on the day before the second ends (dies in hospital);
//! - `pat-c`: an urgent-care visit, a stay at one hospital overlapped by a stay at another (a
//!   transfer between hospitals), a skilled-nursing stay, a wellness visit.
use journey_proto::prost_types::Timestamp;
use serde_json::{json, Value};
use std::path::Path;

pub const PATIENTS: [&str; 3] = ["pat-a", "pat-b", "pat-c"];

fn secs(t: &str) -> i64 {
    t.parse::<Timestamp>().unwrap().seconds
}

/// The instant `t` (UTC) written with a +02:00 offset, as a FHIR server in Paris would.
fn offset(t: &str) -> String {
    let shifted = Timestamp {
        seconds: secs(t) + 7200,
        nanos: 0,
    };
    shifted.to_string().replace('Z', "+02:00")
}

pub struct Enc {
    pub id: &'static str,
    pub patient: &'static str,
    pub org: &'static str,
    pub provider: &'static str,
    /// Synthea's ENCOUNTERCLASS.
    pub class: &'static str,
    pub code: &'static str,
    pub desc: &'static str,
    pub start: &'static str,
    pub stop: &'static str,
    pub reason: Option<(&'static str, &'static str)>,
}

const HOSPITAL_ADMISSION: (&str, &str) = ("32485007", "Hospital admission (procedure)");
const ICU: (&str, &str) = ("305351004", "Admission to intensive care unit (procedure)");
const HEART_FAILURE: (&str, &str) = ("84114007", "Heart failure (disorder)");

pub fn encounters() -> Vec<Enc> {
    let e = |id,
             patient,
             org,
             provider,
             class,
             (code, desc): (&'static str, &'static str),
             start,
             stop,
             reason| Enc {
        id,
        patient,
        org,
        provider,
        class,
        code,
        desc,
        start,
        stop,
        reason,
    };
    vec![
        e(
            "enc-a0",
            "pat-a",
            "org-1",
            "prov-1",
            "ambulatory",
            ("185347001", "Encounter for problem (procedure)"),
            "2020-01-05T09:00:00Z",
            "2020-01-05T09:30:00Z",
            Some(("44054006", "Diabetes mellitus type 2 (disorder)")),
        ),
        e(
            "enc-a1",
            "pat-a",
            "org-1",
            "prov-2",
            "inpatient",
            HOSPITAL_ADMISSION,
            "2020-01-10T08:00:00Z",
            "2020-01-20T10:00:00Z",
            Some(HEART_FAILURE),
        ),
        e(
            "enc-a2",
            "pat-a",
            "org-1",
            "prov-2",
            "inpatient",
            ICU,
            "2020-01-12T00:00:00Z",
            "2020-01-14T00:00:00Z",
            Some(HEART_FAILURE),
        ),
        e(
            "enc-a3",
            "pat-a",
            "org-1",
            "prov-1",
            "home",
            ("439708006", "Home visit (procedure)"),
            "2020-01-25T14:00:00Z",
            "2020-01-25T14:45:00Z",
            None,
        ),
        e(
            "enc-a4",
            "pat-a",
            "org-1",
            "prov-2",
            "emergency",
            ("50849002", "Emergency room admission (procedure)"),
            "2020-02-05T10:00:00Z",
            "2020-02-05T12:00:00Z",
            Some(("13645005", "Chronic obstructive lung disease (disorder)")),
        ),
        e(
            "enc-a5",
            "pat-a",
            "org-1",
            "prov-2",
            "inpatient",
            HOSPITAL_ADMISSION,
            "2020-02-10T09:00:00Z",
            "2020-02-12T11:00:00Z",
            Some(HEART_FAILURE),
        ),
        e(
            "enc-a6",
            "pat-a",
            "org-1",
            "prov-1",
            "virtual",
            ("185317003", "Telephone encounter (procedure)"),
            "2020-03-01T10:00:00Z",
            "2020-03-01T10:15:00Z",
            None,
        ),
        e(
            "enc-b0",
            "pat-b",
            "org-2",
            "prov-1",
            "hospice",
            ("305336008", "Admission to hospice (procedure)"),
            "2021-02-01T10:00:00Z",
            "2021-02-01T11:00:00Z",
            Some(("254637007", "Non-small cell lung cancer (disorder)")),
        ),
        e(
            "enc-b1",
            "pat-b",
            "org-2",
            "prov-2",
            "inpatient",
            HOSPITAL_ADMISSION,
            "2021-03-01T10:00:00Z",
            "2021-03-05T10:00:00Z",
            Some(("22298006", "Myocardial infarction (disorder)")),
        ),
        e(
            "enc-b2",
            "pat-b",
            "org-2",
            "prov-2",
            "inpatient",
            ICU,
            "2021-03-04T00:00:00Z",
            "2021-03-09T00:00:00Z",
            None,
        ),
        e(
            "enc-c0",
            "pat-c",
            "org-1",
            "prov-1",
            "urgentcare",
            ("702927004", "Urgent care clinic (procedure)"),
            "2022-04-20T10:00:00Z",
            "2022-04-20T11:00:00Z",
            None,
        ),
        e(
            "enc-c1",
            "pat-c",
            "org-1",
            "prov-2",
            "inpatient",
            HOSPITAL_ADMISSION,
            "2022-05-01T08:00:00Z",
            "2022-05-06T08:00:00Z",
            Some(("49436004", "Atrial fibrillation (disorder)")),
        ),
        e(
            "enc-c2",
            "pat-c",
            "org-2",
            "prov-2",
            "inpatient",
            HOSPITAL_ADMISSION,
            "2022-05-03T12:00:00Z",
            "2022-05-10T12:00:00Z",
            None,
        ),
        e(
            "enc-c3",
            "pat-c",
            "org-2",
            "prov-2",
            "snf",
            (
                "449411000124106",
                "Admission to skilled nursing facility (procedure)",
            ),
            "2022-05-10T14:00:00Z",
            "2022-05-20T14:00:00Z",
            None,
        ),
        e(
            "enc-c4",
            "pat-c",
            "org-1",
            "prov-1",
            "wellness",
            ("410620009", "Well child visit (procedure)"),
            "2022-06-01T09:00:00Z",
            "2022-06-01T09:20:00Z",
            None,
        ),
    ]
}

/// (id, birth date, death instant, first, last, gender)
type Person = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
);
const PEOPLE: [Person; 3] = [
    ("pat-a", "1950-02-01", None, "Ada", "Lovelace", "F"),
    (
        "pat-b",
        "1940-06-15",
        Some("2021-03-08T15:00:00Z"),
        "Blaise",
        "Pascal",
        "M",
    ),
    ("pat-c", "1960-09-30", None, "Camille", "Claudel", "F"),
];
/// (id, name)
const ORGS: [(&str, &str); 2] = [("org-1", "HOPITAL NORD"), ("org-2", "CLINIQUE SUD")];
/// (id, NPI, first, last, speciality)
const PROVIDERS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "prov-1",
        "9999000001",
        "Jeanne",
        "Martin",
        "GENERAL PRACTICE",
    ),
    ("prov-2", "9999000002", "Paul", "Durand", "CARDIOLOGY"),
];
/// (id, patient, encounter, onset, code, description)
const CONDITIONS: [(&str, &str, &str, &str, &str, &str); 2] = [
    (
        "cond-a1",
        "pat-a",
        "enc-a0",
        "2020-01-05T00:00:00Z",
        "55822004",
        "Hyperlipidemia (disorder)",
    ),
    (
        "cond-c1",
        "pat-c",
        "enc-c1",
        "2022-05-01T00:00:00Z",
        "49436004",
        "Atrial fibrillation (disorder)",
    ),
];
/// (id, patient, encounter, start, stop, code, description)
const MEDICATIONS: [(&str, &str, &str, &str, &str, &str, &str); 2] = [
    (
        "med-a1",
        "pat-a",
        "enc-a1",
        "2020-01-20T10:00:00Z",
        "2020-03-20T10:00:00Z",
        "314076",
        "lisinopril 10 MG Oral Tablet",
    ),
    (
        "med-c1",
        "pat-c",
        "enc-c2",
        "2022-05-10T12:00:00Z",
        "",
        "197361",
        "amlodipine 5 MG Oral Tablet",
    ),
];

fn write(dir: &Path, file: &str, text: String) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

/// The population as a Synthea CSV export in `dir`.
pub fn write_csv(dir: &Path) {
    let mut t = String::from("Id,BIRTHDATE,DEATHDATE,SSN,FIRST,LAST,GENDER\n");
    for (id, birth, death, first, last, gender) in PEOPLE {
        let death = death.map_or(String::new(), |d| d[..10].to_string());
        t += &format!("{id},{birth},{death},999-00-0000,{first},{last},{gender}\n");
    }
    write(dir, "patients.csv", t);
    let mut t = String::from("Id,NAME\n");
    for (id, name) in ORGS {
        t += &format!("{id},{name}\n");
    }
    write(dir, "organizations.csv", t);
    let mut t = String::from("Id,ORGANIZATION,NAME,GENDER,SPECIALITY\n");
    for (id, _, first, last, spec) in PROVIDERS {
        t += &format!("{id},org-1,{first} {last},F,{spec}\n");
    }
    write(dir, "providers.csv", t);
    let mut t = String::from(
        "Id,START,STOP,PATIENT,ORGANIZATION,PROVIDER,PAYER,ENCOUNTERCLASS,CODE,DESCRIPTION,REASONCODE,REASONDESCRIPTION\n",
    );
    for e in encounters() {
        let (rc, rd) = e.reason.unwrap_or(("", ""));
        t += &format!(
            "{},{},{},{},{},{},payer-1,{},{},{},{rc},{rd}\n",
            e.id, e.start, e.stop, e.patient, e.org, e.provider, e.class, e.code, e.desc
        );
    }
    write(dir, "encounters.csv", t);
    let mut t = String::from("START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION\n");
    for (_, p, enc, onset, code, desc) in CONDITIONS {
        t += &format!("{},,{p},{enc},{code},{desc}\n", &onset[..10]);
    }
    write(dir, "conditions.csv", t);
    let mut t = String::from("START,STOP,PATIENT,PAYER,ENCOUNTER,CODE,DESCRIPTION\n");
    for (_, p, enc, start, stop, code, desc) in MEDICATIONS {
        t += &format!("{start},{stop},{p},payer-1,{enc},{code},{desc}\n");
    }
    write(dir, "medications.csv", t);
    write(
        dir,
        "observations.csv",
        "DATE,PATIENT,ENCOUNTER,CATEGORY,CODE,DESCRIPTION,VALUE,UNITS,TYPE\n\
         2020-01-10T09:00:00Z,pat-a,enc-a1,vital-signs,29463-7,Body Weight,80.5,kg,numeric\n\
         2020-01-05T09:10:00Z,pat-a,enc-a0,survey,72166-2,Tobacco smoking status,Never smoked tobacco (finding),,text\n"
            .into(),
    );
    write(
        dir,
        "careplans.csv",
        "Id,START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION,REASONCODE,REASONDESCRIPTION\n\
         cp-a1,2020-01-05,,pat-a,enc-a0,736285004,Hyperlipidemia clinical management plan,55822004,Hyperlipidemia (disorder)\n"
            .into(),
    );
}

const SNOMED: &str = "http://snomed.info/sct";
const SYNTHEA: &str = "https://github.com/synthetichealth/synthea";
const NPI: &str = "http://hl7.org/fhir/sid/us-npi";

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

/// How one resource refers to another.
#[derive(Clone, Copy)]
enum Refs {
    /// `Patient/x` and conditional references (Synthea's Bulk output).
    Bulk,
    /// `urn:uuid:x` (a transaction Bundle).
    Bundle,
}

impl Refs {
    fn to(self, ty: &str, id: &str) -> Value {
        match self {
            Refs::Bulk => json!({"reference": format!("{ty}/{id}")}),
            Refs::Bundle => json!({"reference": format!("urn:uuid:{id}")}),
        }
    }
}

fn directory() -> Vec<Value> {
    let mut out = Vec::new();
    for (id, name) in ORGS {
        out.push(json!({"resourceType": "Organization", "id": id,
            "identifier": [{"system": SYNTHEA, "value": id}], "name": name}));
    }
    for (id, npi, first, last, spec) in PROVIDERS {
        out.push(json!({"resourceType": "Practitioner", "id": id,
            "identifier": [{"system": NPI, "value": npi}],
            "name": [{"family": last, "given": [first], "prefix": ["Dr."]}]}));
        let spec = if spec == "GENERAL PRACTICE" {
            "General Practice Physician"
        } else {
            "Cardiology"
        };
        out.push(
            json!({"resourceType": "PractitionerRole", "id": format!("role-{id}"),
            "practitioner": {"identifier": {"system": NPI, "value": npi}},
            "specialty": [concept("http://nucc.org/provider-taxonomy", "x", spec)]}),
        );
    }
    out
}

/// Each patient's resources (the patient first).
fn resources(refs: Refs) -> Vec<(&'static str, Vec<Value>)> {
    let mut out = Vec::new();
    for (id, birth, death, first, last, gender) in PEOPLE {
        let mut patient = json!({"resourceType": "Patient", "id": id, "birthDate": birth,
            "gender": if gender == "F" { "female" } else { "male" },
            "name": [{"use": "official", "family": last, "given": [first, "Second"]}]});
        if let Some(d) = death {
            patient["deceasedDateTime"] = json!(offset(d));
        }
        let mut list = vec![patient];
        let npi = |p: &str| PROVIDERS.iter().find(|x| x.0 == p).unwrap().1;
        for e in encounters().into_iter().filter(|e| e.patient == id) {
            let class = match e.class {
                "inpatient" | "snf" => "IMP",
                "emergency" => "EMER",
                "home" | "hospice" => "HH",
                "virtual" => "VR",
                _ => "AMB",
            };
            let mut enc = json!({"resourceType": "Encounter", "id": e.id, "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class},
                "type": [concept(SNOMED, e.code, e.desc)],
                "subject": refs.to("Patient", id),
                "participant": [{"individual": {"reference": format!("Practitioner?identifier={NPI}|{}", npi(e.provider))}}],
                "period": {"start": offset(e.start), "end": offset(e.stop)},
                "serviceProvider": {"reference": format!("Organization?identifier={SYNTHEA}|{}", e.org)}});
            if let Some((code, desc)) = e.reason {
                enc["reasonCode"] = json!([concept(SNOMED, code, desc)]);
            }
            list.push(enc);
        }
        for (cid, p, enc, onset, code, desc) in CONDITIONS.into_iter().filter(|c| c.1 == id) {
            let _ = p;
            list.push(json!({"resourceType": "Condition", "id": cid,
                "code": concept(SNOMED, code, desc), "subject": refs.to("Patient", id),
                "encounter": refs.to("Encounter", enc), "onsetDateTime": offset(onset),
                "recordedDate": offset(onset)}));
        }
        for (mid, _, enc, start, stop, code, desc) in MEDICATIONS.into_iter().filter(|m| m.1 == id)
        {
            let mut m = json!({"resourceType": "MedicationRequest", "id": mid, "status": "active",
                "intent": "order",
                "medicationCodeableConcept": concept("http://www.nlm.nih.gov/research/umls/rxnorm", code, desc),
                "subject": refs.to("Patient", id), "encounter": refs.to("Encounter", enc),
                "authoredOn": offset(start)});
            if !stop.is_empty() {
                m["dispenseRequest"] =
                    json!({"validityPeriod": {"start": offset(start), "end": offset(stop)}});
            }
            list.push(m);
        }
        if id == "pat-a" {
            list.push(json!({"resourceType": "Observation", "id": "obs-a1", "status": "final",
                "code": concept("http://loinc.org", "29463-7", "Body Weight"),
                "subject": refs.to("Patient", id), "encounter": refs.to("Encounter", "enc-a1"),
                "effectiveDateTime": offset("2020-01-10T09:00:00Z"),
                "valueQuantity": {"value": 80.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}));
            list.push(json!({"resourceType": "Observation", "id": "obs-a2", "status": "final",
                "code": concept("http://loinc.org", "72166-2", "Tobacco smoking status"),
                "subject": refs.to("Patient", id), "encounter": refs.to("Encounter", "enc-a0"),
                "effectiveDateTime": offset("2020-01-05T09:10:00Z"),
                "valueCodeableConcept": concept(SNOMED, "266919005", "Never smoked tobacco (finding)")}));
            list.push(json!({"resourceType": "CarePlan", "id": "cp-a1", "status": "active",
                "intent": "order",
                "category": [concept("http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "assess-plan", "Assessment and Plan"),
                             concept(SNOMED, "736285004", "Hyperlipidemia clinical management plan")],
                "subject": refs.to("Patient", id), "encounter": refs.to("Encounter", "enc-a0"),
                "period": {"start": offset("2020-01-05T00:00:00Z")},
                "addresses": [refs.to("Condition", "cond-a1")]}));
            // Read by the importer, not imported: counted.
            list.push(
                json!({"resourceType": "Procedure", "id": "proc-a1", "status": "completed",
                "code": concept(SNOMED, "430193006", "Medication Reconciliation (procedure)"),
                "subject": refs.to("Patient", id)}),
            );
        }
        out.push((id, list));
    }
    out
}

/// The population as FHIR Bulk Data NDJSON files in `dir`, one file per resource type.
pub fn write_ndjson(dir: &Path) {
    let mut files: std::collections::BTreeMap<String, String> = Default::default();
    let all = directory()
        .into_iter()
        .chain(resources(Refs::Bulk).into_iter().flat_map(|(_, l)| l));
    for r in all {
        let ty = r["resourceType"].as_str().unwrap().to_string();
        *files.entry(format!("{ty}.000.ndjson")).or_default() += &format!("{r}\n");
    }
    for (file, text) in files {
        write(dir, &file, text);
    }
}

/// The population as FHIR transaction Bundles in `dir`: one per patient, and one of the
/// organisations and practitioners (as Synthea writes `hospitalInformation` and
/// `practitionerInformation`).
pub fn write_bundles(dir: &Path) {
    let bundle = |list: Vec<Value>| {
        let entries: Vec<Value> = list
            .into_iter()
            .map(|r| {
                json!({"fullUrl": format!("urn:uuid:{}", r["id"].as_str().unwrap()),
                "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]}})
            })
            .collect();
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}).to_string()
    };
    write(dir, "practitionerInformation.json", bundle(directory()));
    for (id, list) in resources(Refs::Bundle) {
        write(dir, &format!("{id}.json"), bundle(list));
    }
}
