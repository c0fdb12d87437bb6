//! The code systems and value sets the mapping emits, one function per journey enumeration, and
//! the telemonitoring measures' LOINC codes and UCUM units (docs/fhir.md).
use journey_proto::v1::{
    AdmitType, Code, ContactChannel, Disposition, EdOutcome, LetterChannel, LetterItem, Role,
    Setting, Severity, Sex,
};
use serde_json::{json, Value};

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const ADMIT_SOURCE: &str = "http://terminology.hl7.org/CodeSystem/admit-source";
pub const DISCHARGE_DISPOSITION: &str =
    "http://terminology.hl7.org/CodeSystem/discharge-disposition";
pub const ACT_PRIORITY: &str = "http://terminology.hl7.org/CodeSystem/v3-ActPriority";
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The URI of a journey code system name (`Code.system`: "ICD-10", "SNOMED-CT", "ATC"...); a
/// system we do not know keeps its name under our own URN rather than being dropped.
pub fn system_uri(system: &str) -> String {
    match system
        .to_ascii_uppercase()
        .replace(['_', ' '], "-")
        .as_str()
    {
        "ICD-10" | "ICD10" | "CIM-10" => "http://hl7.org/fhir/sid/icd-10".into(),
        "SNOMED-CT" | "SNOMED" | "SCT" => "http://snomed.info/sct".into(),
        "ATC" => "http://www.whocc.no/atc".into(),
        "RXNORM" => "http://www.nlm.nih.gov/research/umls/rxnorm".into(),
        "LOINC" => LOINC.into(),
        other => format!("urn:journey:code-system:{}", other.to_ascii_lowercase()),
    }
}

/// A journey code as a CodeableConcept (`None` when it carries no code).
pub fn concept(c: Option<&Code>) -> Option<Value> {
    let c = c.filter(|c| !c.code.trim().is_empty())?;
    let mut coding = json!({ "system": system_uri(&c.system), "code": c.code });
    if !c.display.is_empty() {
        coding["display"] = json!(c.display);
    }
    Some(json!({ "coding": [coding] }))
}

/// One coding as a CodeableConcept, with a text for the reader.
pub fn coded(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": code, "display": display }], "text": display })
}

/// `Patient.gender`.
pub fn gender(sex: i32) -> Option<&'static str> {
    match Sex::try_from(sex).ok()? {
        Sex::Female => Some("female"),
        Sex::Male => Some("male"),
        Sex::Other => Some("other"),
        Sex::Unknown => Some("unknown"),
        Sex::Unspecified => None,
    }
}

/// `Encounter.class` of a stay (v3 ActCode): inpatient, day surgery (short stay), HAD (home
/// health).
pub fn stay_class(setting: i32) -> Value {
    let (code, display) = match Setting::try_from(setting).unwrap_or(Setting::Unspecified) {
        Setting::DaySurgery => ("SS", "short stay"),
        Setting::Had => ("HH", "home health"),
        Setting::Outpatient => ("AMB", "ambulatory"),
        Setting::Inpatient | Setting::Unspecified => ("IMP", "inpatient encounter"),
    };
    json!({ "system": ACT_CODE, "code": code, "display": display })
}

/// `Encounter.class` of an emergency visit.
pub fn emergency_class() -> Value {
    json!({ "system": ACT_CODE, "code": "EMER", "display": "emergency" })
}

/// `Encounter.class` of a home visit or contact: home health (HH) at the patient's home, virtual
/// (VR) by phone or teleconsultation: its code and display (the system is [`ACT_CODE`]).
pub fn contact_class(channel: i32, visit: bool) -> (&'static str, &'static str) {
    let virtual_ = match ContactChannel::try_from(channel).unwrap_or(ContactChannel::Unspecified) {
        ContactChannel::Phone | ContactChannel::Teleconsultation => true,
        ContactChannel::Visit => false,
        ContactChannel::Unspecified => !visit,
    };
    match virtual_ {
        true => ("VR", "virtual"),
        false => ("HH", "home health"),
    }
}

/// `Encounter.priority` and `hospitalization.admitSource` of an admission type.
pub fn admission(admit_type: i32) -> (Option<Value>, Option<Value>) {
    match AdmitType::try_from(admit_type).unwrap_or(AdmitType::Unspecified) {
        AdmitType::Emergency => (
            Some(coded(ACT_PRIORITY, "EM", "emergency")),
            Some(coded(
                ADMIT_SOURCE,
                "emd",
                "From accident/emergency department",
            )),
        ),
        AdmitType::Elective => (Some(coded(ACT_PRIORITY, "EL", "elective")), None),
        AdmitType::TransferIn => (
            None,
            Some(coded(
                ADMIT_SOURCE,
                "hosp-trans",
                "Transferred from other hospital",
            )),
        ),
        AdmitType::Unspecified => (None, None),
    }
}

/// `hospitalization.dischargeDisposition` (HL7 discharge-disposition; the French wording of the
/// journey's dispositions as text).
pub fn discharge_disposition(disposition: i32) -> Option<Value> {
    let (code, display, text) = match Disposition::try_from(disposition).ok()? {
        Disposition::Home => ("home", "Home", "home"),
        Disposition::HomeWithHad => (
            "other-hcf",
            "Other healthcare facility",
            "home with hospital-at-home (HAD)",
        ),
        Disposition::NursingHome => ("long", "Long-term care", "nursing home"),
        Disposition::Rehab => ("rehab", "Rehabilitation", "rehabilitation"),
        Disposition::OtherAcuteHospital => (
            "other-hcf",
            "Other healthcare facility",
            "other acute hospital",
        ),
        Disposition::Deceased => ("exp", "Expired", "deceased"),
        Disposition::AgainstMedicalAdvice => {
            ("aadvice", "Left against advice", "against medical advice")
        }
        Disposition::Other => ("oth", "Other", "other"),
        Disposition::Unspecified => return None,
    };
    Some(json!({
        "coding": [{ "system": DISCHARGE_DISPOSITION, "code": code, "display": display }],
        "text": text,
    }))
}

/// Where an emergency visit ended, in the discharge-disposition codes.
pub fn ed_disposition(outcome: i32) -> Option<Value> {
    let (code, display, text) = match EdOutcome::try_from(outcome).ok()? {
        EdOutcome::DischargedHome => ("home", "Home", "discharged home"),
        EdOutcome::LeftWithoutBeingSeen => {
            ("aadvice", "Left against advice", "left without being seen")
        }
        EdOutcome::Transferred => ("other-hcf", "Other healthcare facility", "transferred"),
        EdOutcome::Deceased => ("exp", "Expired", "deceased"),
        EdOutcome::Admitted | EdOutcome::Unspecified => return None,
    };
    Some(json!({
        "coding": [{ "system": DISCHARGE_DISPOSITION, "code": code, "display": display }],
        "text": text,
    }))
}

/// A referent's role, in words (`CareTeam.participant.role` text).
pub fn referent_role(role: i32) -> Option<&'static str> {
    Some(match Role::try_from(role).ok()? {
        Role::Gp => "general practitioner",
        Role::HomeNurse => "home nurse",
        Role::Pharmacist => "pharmacist",
        Role::LiaisonNurse => "liaison nurse",
        Role::HadCoordinator => "hospital-at-home coordinator",
        Role::HospitalPhysician => "hospital physician",
        Role::Specialist => "specialist",
        Role::Physiotherapist => "physiotherapist",
        Role::Coordinator => "care coordinator",
        Role::Patient => "patient",
        Role::Auditor | Role::System | Role::Administrative | Role::Unspecified => return None,
    })
}

/// How a discharge letter went (`Communication.medium`, v3 ParticipationMode): MSSanté is a
/// secure e-mail, the DMP an online record, paper a letter.
pub fn letter_channel(channel: i32) -> Option<Value> {
    let (code, display, text) = match LetterChannel::try_from(channel).ok()? {
        LetterChannel::Mssante => ("EMAILWRIT", "email", "MSSanté"),
        LetterChannel::Dmp => ("ONLINEWRIT", "online written", "DMP"),
        LetterChannel::Paper => ("MAILWRIT", "mail", "paper"),
        LetterChannel::Unspecified => return None,
    };
    Some(json!({
        "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": code, "display": display }],
        "text": text,
    }))
}

/// An item a discharge letter holds, in words.
pub fn letter_item(item: i32) -> Option<&'static str> {
    Some(match LetterItem::try_from(item).ok()? {
        LetterItem::ReasonForStay => "reason for stay",
        LetterItem::MedicalSummary => "medical summary",
        LetterItem::Risks => "risks",
        LetterItem::ProceduresAndTests => "procedures and tests",
        LetterItem::Medications => "medications",
        LetterItem::CarePlan => "care plan",
        LetterItem::RecipientDoctor => "recipient doctor",
        LetterItem::Identification => "identification",
        LetterItem::Dates => "dates",
        LetterItem::Signatory => "signatory",
        LetterItem::Destination => "destination",
        LetterItem::Unspecified => return None,
    })
}

/// `Flag`'s priority extension (flag-priority codes: low, medium, high).
pub fn flag_priority(severity: i32) -> Option<Value> {
    let (code, display) = match Severity::try_from(severity).ok()? {
        Severity::Low => ("PL", "Low priority"),
        Severity::Moderate => ("PM", "Medium priority"),
        Severity::High | Severity::Critical => ("PH", "High priority"),
        Severity::Unspecified => return None,
    };
    Some(json!({
        "url": "http://hl7.org/fhir/StructureDefinition/flag-priority",
        "valueCodeableConcept": {
            "coding": [{ "system": "http://hl7.org/fhir/flag-priority-code", "code": code, "display": display }]
        }
    }))
}

/// A telemonitoring measure as FHIR knows it: LOINC code and display, UCUM unit, the French
/// core profile when there is one, and whether it is a vital sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub loinc: &'static str,
    pub display: &'static str,
    pub ucum: &'static str,
    pub profile: Option<&'static str>,
    pub vital_sign: bool,
}

/// The measure `name` (`ObservationRecorded.measure`) in `unit`; `None` for a measure the table
/// does not know (the event's own code is used then).
pub fn measure(name: &str, unit: &str) -> Option<Measure> {
    let m = |loinc, display, ucum, profile, vital_sign| Measure {
        loinc,
        display,
        ucum,
        profile,
        vital_sign,
    };
    Some(match name {
        "weight" => m(
            "29463-7",
            "Body weight",
            "kg",
            Some("fr-core-observation-body-weight"),
            true,
        ),
        "spo2" => m(
            "59408-5",
            "Oxygen saturation in Arterial blood by Pulse oximetry",
            "%",
            Some("fr-core-observation-saturation-oxygen"),
            true,
        ),
        // Each pressure comes alone in our events; the French blood-pressure profile wants the
        // panel (85354-9) with both components, so these claim no profile.
        "bp_systolic" => m("8480-6", "Systolic blood pressure", "mm[Hg]", None, true),
        "bp_diastolic" => m("8462-4", "Diastolic blood pressure", "mm[Hg]", None, true),
        "heart_rate" => m(
            "8867-4",
            "Heart rate",
            "/min",
            Some("fr-core-observation-heartrate"),
            true,
        ),
        "glucose" if unit == "mg/dL" => m(
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            "mg/dL",
            None,
            false,
        ),
        "glucose" => m(
            "15074-8",
            "Glucose [Moles/volume] in Blood",
            "mmol/L",
            None,
            false,
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measures_of_the_issue_have_their_loinc_code_and_ucum_unit() {
        let w = measure("weight", "kg").unwrap();
        assert_eq!((w.loinc, w.ucum), ("29463-7", "kg"));
        let s = measure("spo2", "%").unwrap();
        assert_eq!((s.loinc, s.ucum), ("59408-5", "%"));
        assert_eq!(measure("bp_systolic", "mm[Hg]").unwrap().loinc, "8480-6");
        assert_eq!(measure("bp_diastolic", "mm[Hg]").unwrap().loinc, "8462-4");
        assert_eq!(measure("glucose", "mmol/L").unwrap().loinc, "15074-8");
        assert_eq!(measure("glucose", "mg/dL").unwrap().loinc, "2339-0");
        assert_eq!(measure("pain", ""), None);
    }

    #[test]
    fn every_disposition_has_a_code_of_the_value_set() {
        // http://terminology.hl7.org/CodeSystem/discharge-disposition
        let value_set = [
            "home",
            "alt-home",
            "other-hcf",
            "hosp",
            "long",
            "aadvice",
            "exp",
            "psy",
            "rehab",
            "snf",
            "oth",
        ];
        for d in 1..=8 {
            let v = discharge_disposition(d).unwrap();
            let code = v["coding"][0]["code"].as_str().unwrap();
            assert!(value_set.contains(&code), "{d}: {code}");
        }
        for outcome in 1..=4 {
            let v = ed_disposition(outcome).unwrap();
            let code = v["coding"][0]["code"].as_str().unwrap();
            assert!(
                value_set.contains(&code),
                "emergency outcome {outcome}: {code}"
            );
        }
        assert_eq!(discharge_disposition(0), None);
    }

    /// The codes each enumeration maps to, against the value sets FHIR R4 binds them to (the
    /// validator checks structure and types, not value sets).
    #[test]
    fn every_enumeration_maps_into_its_value_set() {
        // v3 ActEncounterCode (Encounter.class, extensible).
        for setting in 0..=3 {
            let code = stay_class(setting)["code"].as_str().unwrap().to_string();
            assert!(["IMP", "SS", "HH", "AMB", "EMER"].contains(&code.as_str()));
        }
        assert_eq!(emergency_class()["code"], "EMER");
        for channel in 0..=3 {
            for visit in [true, false] {
                let (code, _) = contact_class(channel, visit);
                assert!(["HH", "VR"].contains(&code));
            }
        }
        // admit-source (Encounter.hospitalization.admitSource) and v3 ActPriority.
        let admit_source = [
            "hosp-trans",
            "emd",
            "outp",
            "born",
            "gp",
            "mp",
            "nursing",
            "psych",
            "rehab",
            "other",
        ];
        for t in 0..=3 {
            let (priority, source) = admission(t);
            if let Some(p) = priority {
                assert!(["EM", "EL", "UR", "R"].contains(&p["coding"][0]["code"].as_str().unwrap()));
            }
            if let Some(s) = source {
                assert!(admit_source.contains(&s["coding"][0]["code"].as_str().unwrap()));
            }
        }
        // flag-priority-code.
        for severity in 1..=4 {
            let p = flag_priority(severity).unwrap();
            let code = p["valueCodeableConcept"]["coding"][0]["code"]
                .as_str()
                .unwrap();
            assert!(["PN", "PL", "PM", "PH"].contains(&code));
        }
        assert_eq!(flag_priority(0), None);
        // v3 ParticipationMode (Communication.medium).
        for channel in 1..=3 {
            let c = letter_channel(channel).unwrap();
            let code = c["coding"][0]["code"].as_str().unwrap();
            assert!(["EMAILWRIT", "ONLINEWRIT", "MAILWRIT"].contains(&code));
        }
        // administrative-gender.
        for sex in 1..=4 {
            let g = gender(sex).unwrap();
            assert!(["male", "female", "other", "unknown"].contains(&g));
        }
    }

    #[test]
    fn code_systems_are_uris() {
        assert_eq!(system_uri("ATC"), "http://www.whocc.no/atc");
        assert_eq!(system_uri("ICD-10"), "http://hl7.org/fhir/sid/icd-10");
        assert_eq!(system_uri("SNOMED-CT"), "http://snomed.info/sct");
        assert_eq!(system_uri("Local X"), "urn:journey:code-system:local-x");
    }
}
