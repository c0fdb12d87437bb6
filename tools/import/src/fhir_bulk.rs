//! Reading FHIR R4 resources into a [`Population`]: a folder of Bulk Data NDJSON files (one
//! resource a line, any file names ending in `.ndjson`) or of Bundles (`.json`: a `Bundle` of any
//! type, e.g. Synthea's default transaction Bundles, or a single resource), or one such file.
//!
//! | resource | read as | fields used |
//! |---|---|---|
//! | `Patient` | a patient | id, birthDate, gender, deceasedDateTime (its UTC day), name (official or first: family, first given, FR Core's `birth-list-given-name` extension), FR Core's `birthPlace` extension (its address's `inseeCode`) |
//! | `Encounter` | an encounter | id, subject, period, class (`IMP` inpatient, or skilled nursing with the SNF admission type 449411000124106; `EMER` emergency; `AMB` ambulatory, or urgent care with type 702927004; `HH` home or hospice; `VR` virtual), type (code, display), reasonCode, serviceProvider, the first participant's individual |
//! | `Condition` | a condition | subject, encounter, code (SNOMED CT first), onsetDateTime (else recordedDate) |
//! | `MedicationRequest` | a medication | subject, encounter, medicationCodeableConcept, authoredOn, dispenseRequest.validityPeriod.end (the stop) |
//! | `Observation` | an observation | subject, encounter, code (LOINC), effectiveDateTime (else issued), valueQuantity (value, UCUM code or unit); any other value: non-numeric |
//! | `CarePlan` | a care plan | id, subject, encounter, period.start, the SNOMED CT category (goal), the first addressed Condition's code, else that reference's display (symptom to watch) |
//! | `Organization` | a facility name | id, name, identifiers |
//! | `Practitioner`, `PractitionerRole` | a professional | id, identifiers, name; the role's specialty (General Practice → GP, any other → specialist) |
//!
//! References may be relative (`Patient/x`), absolute, `urn:uuid:x` (Bundles) or conditional on
//! an identifier (`Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|999…`, as Synthea's
//! Bulk output writes them): an identifier is resolved to the id of the resource of the export
//! that carries it, else kept as the id.
//!
//! Bad input: a line that is not JSON or not an object, a resource without `resourceType`, or
//! whose `resourceType` is not a FHIR R4 resource type, or missing a field the mapping needs, is
//! malformed (reported with file, line or Bundle entry, and id; nothing appended for it). A
//! resource of an R4 type the mapping does not use (`Procedure`, `Immunization`, `Claim`, …) is
//! counted by type under "not imported" and skipped: a Bulk export holds many of them and a data
//! team expects the import to take what it can use (`--strict` does not stop for them). An NDJSON
//! file whose first line is JSON without `resourceType` (an export's `log.ndjson`) is skipped
//! whole and counted. References to resources absent from the export are reported by the
//! mapping.
use crate::{
    parse_time,
    records::{
        Class, ClinicalKind, ClinicalRec, EncounterRec, ObservationRec, PatientRec, Population,
        ICD10, LOINC, RXNORM, SNOMED,
    },
    Origin, Problem,
};
use anyhow::Context;
use journey_proto::{
    prost_types::Timestamp,
    v1::{Code, Role, Sex},
};
use serde_json::Value;
use std::{
    collections::HashMap,
    io::BufRead,
    path::{Path, PathBuf},
    sync::Arc,
};

const DAY: i64 = 86_400;
/// Encounter types that tell classes FHIR merges apart (module doc).
/// FR Core Patient's birth place (an Address whose `inseeCode` extension codes the commune or
/// the country of birth) and the list of birth given names of its official name.
const BIRTH_PLACE: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";
const INSEE_CODE: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code";
const BIRTH_LIST_GIVEN_NAME: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name";
const SNF_ADMISSION: &str = "449411000124106";
const URGENT_CARE: &str = "702927004";

/// The resource types of FHIR R4 (4.0.1).
const R4_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// One resource and where it was read.
struct Resource {
    origin: Origin,
    value: Value,
}

/// Reads the folder (or file) `path`.
pub fn read(path: &Path) -> anyhow::Result<Population> {
    let mut pop = Population::default();
    let mut files: Vec<PathBuf> = Vec::new();
    if path.is_dir() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))?
        {
            let p = entry?.path();
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if p.is_file() && (name.ends_with(".ndjson") || name.ends_with(".json")) {
                files.push(p);
            } else {
                pop.skip("files neither .ndjson nor .json");
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut by_type: HashMap<String, Vec<Resource>> = HashMap::new();
    for file in &files {
        read_file(file, &mut pop, &mut by_type)?;
    }
    let mut reader = Reader {
        pop,
        ids: HashMap::new(),
    };
    reader.resources(by_type);
    Ok(reader.pop)
}

/// Reads one file's resources into `by_type`, reporting what is not a resource.
fn read_file(
    path: &Path,
    pop: &mut Population,
    by_type: &mut HashMap<String, Vec<Resource>>,
) -> anyhow::Result<()> {
    let name: Arc<str> = Arc::from(path.file_name().unwrap_or_default().to_string_lossy());
    let mut count = 0u64;
    let mut add = |pop: &mut Population, origin: Origin, value: Value| {
        let Some(ty) = value.get("resourceType").and_then(Value::as_str) else {
            pop.problems.push(Problem::malformed(
                origin,
                "no resourceType: not a FHIR resource",
            ));
            return;
        };
        let ty = ty.to_owned();
        if !R4_TYPES.contains(&ty.as_str()) {
            pop.problems.push(Problem::malformed(
                origin,
                format!("unknown resource type {ty:?} (not a FHIR R4 resource)"),
            ));
            return;
        }
        by_type
            .entry(ty)
            .or_default()
            .push(Resource { origin, value });
    };
    if name.ends_with(".ndjson") {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            let n = i as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let origin = Origin::line(&name, n, "");
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v.is_object() => {
                    if count == 0 && v.get("resourceType").is_none() {
                        pop.skip(format!("files without FHIR resources ({name})"));
                        return Ok(());
                    }
                    let origin = Origin {
                        id: resource_label(&v),
                        ..origin
                    };
                    count += 1;
                    add(pop, origin, v);
                }
                Ok(_) => {
                    count += 1;
                    pop.problems
                        .push(Problem::malformed(origin, "not a JSON object"));
                }
                Err(e) => {
                    count += 1;
                    pop.problems
                        .push(Problem::malformed(origin, format!("not JSON: {e}")));
                }
            }
        }
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") => {
                let entries = v.get("entry").and_then(Value::as_array);
                for (i, entry) in entries.into_iter().flatten().enumerate() {
                    let mut origin = Origin {
                        file: name.clone(),
                        line: i as u64 + 1,
                        entry: true,
                        id: String::new(),
                    };
                    match entry.get("resource") {
                        Some(r) if r.is_object() => {
                            origin.id = resource_label(r);
                            count += 1;
                            add(pop, origin, r.clone());
                        }
                        _ => {
                            count += 1;
                            pop.problems
                                .push(Problem::malformed(origin, "entry without a resource"));
                        }
                    }
                }
            }
            Ok(v) if v.is_object() => {
                let origin = Origin::line(&name, 1, resource_label(&v));
                count += 1;
                add(pop, origin, v);
            }
            Ok(_) => {
                count += 1;
                pop.problems.push(Problem::malformed(
                    Origin::line(&name, 1, ""),
                    "not a JSON object",
                ))
            }
            Err(e) => {
                count += 1;
                pop.problems.push(Problem::malformed(
                    Origin::line(&name, e.line() as u64, ""),
                    format!("not JSON: {e}"),
                ))
            }
        }
    }
    *pop.rows.entry(name).or_default() += count;
    Ok(())
}

/// `Type/id` for reports.
fn resource_label(v: &Value) -> String {
    let ty = v.get("resourceType").and_then(Value::as_str).unwrap_or("");
    match v.get("id").and_then(Value::as_str) {
        Some(id) if ty.is_empty() => id.to_owned(),
        Some(id) => format!("{ty}/{id}"),
        None => ty.to_owned(),
    }
}

/// The extension of `url` on an element, if any.
fn extension<'a>(v: &'a Value, url: &str) -> Option<&'a Value> {
    v["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"].as_str() == Some(url))
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut v = v;
    for key in path {
        v = match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[*key],
        };
    }
    v.as_str().unwrap_or_default()
}

/// The project's name of a FHIR code system.
fn system_name(uri: &str) -> String {
    match uri {
        "http://snomed.info/sct" => SNOMED.into(),
        "http://www.nlm.nih.gov/research/umls/rxnorm" => RXNORM.into(),
        "http://loinc.org" => LOINC.into(),
        "http://hl7.org/fhir/sid/icd-10" | "http://hl7.org/fhir/sid/icd-10-cm" => ICD10.into(),
        other => other.into(),
    }
}

/// A CodeableConcept's coding: of `prefer`'s system if there is one, else the first.
fn coding(concept: &Value, prefer: &str) -> Option<Code> {
    let codings = concept.get("coding")?.as_array()?;
    let c = codings
        .iter()
        .find(|c| system_name(text(c, &["system"])) == prefer)
        .or_else(|| codings.first())?;
    let code = text(c, &["code"]);
    if code.is_empty() {
        return None;
    }
    let display = match text(c, &["display"]) {
        "" => text(concept, &["text"]),
        d => d,
    };
    Some(Code {
        system: system_name(text(c, &["system"])),
        code: code.to_owned(),
        display: display.to_owned(),
    })
}

fn time_of(v: &Value, path: &[&str], name: &str) -> Result<Option<Timestamp>, String> {
    match text(v, path) {
        "" => Ok(None),
        s => parse_time(s)
            .map(Some)
            .ok_or_else(|| format!("{name} {s:?} is not a FHIR date or dateTime")),
    }
}

fn required_time(v: &Value, path: &[&str], name: &str) -> Result<Timestamp, String> {
    time_of(v, path, name)?.ok_or_else(|| format!("{name} is missing"))
}

struct Reader {
    pop: Population,
    /// "Type|identifier value" and "Type|id" → the id of the resource of the export.
    ids: HashMap<String, String>,
}

impl Reader {
    fn malformed(&mut self, origin: &Origin, reason: impl Into<String>) {
        self.pop
            .problems
            .push(Problem::malformed(origin.clone(), reason));
    }

    /// The id a reference to a `ty` resource names ("" when there is none).
    fn reference(&self, v: &Value, ty: &str) -> String {
        let r = text(v, &["reference"]);
        if let Some(id) = r.strip_prefix("urn:uuid:") {
            return id.to_owned();
        }
        if let Some(query) = r
            .strip_prefix(ty)
            .and_then(|q| q.strip_prefix("?identifier="))
        {
            let value = query.rsplit('|').next().unwrap_or(query);
            return self
                .ids
                .get(&format!("{ty}|{value}"))
                .cloned()
                .unwrap_or_else(|| value.to_owned());
        }
        if !r.is_empty() {
            let mut parts = r.split('/').collect::<Vec<_>>();
            if let Some(h) = parts.iter().position(|p| *p == "_history") {
                parts.truncate(h);
            }
            if parts.len() >= 2 && parts[parts.len() - 2] == ty {
                return parts[parts.len() - 1].to_owned();
            }
            return r.to_owned();
        }
        // A logical reference by identifier (`{"identifier": {"system", "value"}}`).
        let value = text(v, &["identifier", "value"]);
        self.ids
            .get(&format!("{ty}|{value}"))
            .cloned()
            .unwrap_or_else(|| value.to_owned())
    }

    fn resources(&mut self, mut by_type: HashMap<String, Vec<Resource>>) {
        let mut take = |ty: &str| by_type.remove(ty).unwrap_or_default();
        let (orgs, practitioners, roles) = (
            take("Organization"),
            take("Practitioner"),
            take("PractitionerRole"),
        );
        let (patients, encounters, conditions) =
            (take("Patient"), take("Encounter"), take("Condition"));
        let (medications, observations, care_plans) = (
            take("MedicationRequest"),
            take("Observation"),
            take("CarePlan"),
        );
        let mut rest: Vec<(String, usize)> =
            by_type.into_iter().map(|(t, v)| (t, v.len())).collect();
        rest.sort();
        for (ty, n) in rest {
            *self.pop.skipped.entry(ty).or_default() += n as u64;
        }
        self.directory(&orgs, &practitioners, &roles);
        for r in &patients {
            if let Err(e) = self.patient(r) {
                self.malformed(&r.origin, e);
            }
        }
        for r in &encounters {
            if let Err(e) = self.encounter(r) {
                self.malformed(&r.origin, e);
            }
        }
        for (kind, list) in [
            (ClinicalKind::Condition, &conditions),
            (ClinicalKind::Medication, &medications),
        ] {
            for r in list {
                if let Err(e) = self.clinical(r, kind) {
                    self.malformed(&r.origin, e);
                }
            }
        }
        let condition_names: HashMap<&str, String> = conditions
            .iter()
            .filter_map(|r| {
                let id = r.value.get("id")?.as_str()?;
                Some((id, coding(r.value.get("code")?, SNOMED)?.display))
            })
            .collect();
        for r in &care_plans {
            if let Err(e) = self.care_plan(r, &condition_names) {
                self.malformed(&r.origin, e);
            }
        }
        for r in &observations {
            if let Err(e) = self.observation(r) {
                self.malformed(&r.origin, e);
            }
        }
    }
}

impl Reader {
    /// Organisation names, professionals' names and roles, and the identifiers that resolve
    /// conditional references.
    fn directory(&mut self, orgs: &[Resource], practitioners: &[Resource], roles: &[Resource]) {
        for (ty, list) in [("Organization", orgs), ("Practitioner", practitioners)] {
            for r in list {
                let id = text(&r.value, &["id"]);
                if id.is_empty() {
                    continue;
                }
                self.ids.insert(format!("{ty}|{id}"), id.to_owned());
                for i in r.value["identifier"].as_array().into_iter().flatten() {
                    let value = text(i, &["value"]);
                    if !value.is_empty() {
                        self.ids.insert(format!("{ty}|{value}"), id.to_owned());
                    }
                }
            }
        }
        for r in orgs {
            let id = text(&r.value, &["id"]);
            self.pop
                .org_names
                .insert(id.to_owned(), text(&r.value, &["name"]).to_owned());
        }
        for r in practitioners {
            let id = text(&r.value, &["id"]);
            let name = &r.value["name"][0];
            let given = text(name, &["given", "0"]);
            let family = text(name, &["family"]);
            let full = [given, family]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            self.pop
                .providers
                .insert(id.to_owned(), (full, Role::Unspecified));
        }
        for r in roles {
            let id = self.reference(&r.value["practitioner"], "Practitioner");
            let specialty = &r.value["specialty"][0];
            let words = match text(specialty, &["coding", "0", "display"]) {
                "" => text(specialty, &["text"]),
                d => d,
            };
            if words.is_empty() {
                continue;
            }
            let role = if words.to_ascii_lowercase().contains("general practice") {
                Role::Gp
            } else {
                Role::Specialist
            };
            if let Some(p) = self.pop.providers.get_mut(&id) {
                p.1 = role;
            }
        }
    }

    fn id(&self, r: &Resource) -> Result<String, String> {
        match text(&r.value, &["id"]) {
            "" => Err("no id".into()),
            id => Ok(id.to_owned()),
        }
    }

    fn subject(&self, r: &Resource) -> Result<String, String> {
        match self.reference(&r.value["subject"], "Patient") {
            s if s.is_empty() => Err("no subject (the patient)".into()),
            s => Ok(s),
        }
    }

    fn patient(&mut self, r: &Resource) -> Result<(), String> {
        let v = &r.value;
        let id = self.id(r)?;
        let birth = required_time(v, &["birthDate"], "birthDate")?;
        let death = time_of(v, &["deceasedDateTime"], "deceasedDateTime")?;
        let sex = match text(v, &["gender"]) {
            "male" => Sex::Male,
            "female" => Sex::Female,
            "other" => Sex::Other,
            _ => Sex::Unspecified,
        };
        let names = v["name"].as_array().map(Vec::as_slice).unwrap_or_default();
        let name = names
            .iter()
            .find(|n| text(n, &["use"]) == "official")
            .or_else(|| names.first())
            .unwrap_or(&Value::Null);
        self.pop.patients.push(PatientRec {
            origin: r.origin.clone(),
            birth,
            birth_date: text(v, &["birthDate"]).chars().take(10).collect(),
            death_day: death.map(|d| d.seconds.div_euclid(DAY) * DAY),
            sex,
            family: text(name, &["family"]).to_owned(),
            given: text(name, &["given", "0"]).to_owned(),
            birth_place: extension(v, BIRTH_PLACE)
                .and_then(|place| extension(&place["valueAddress"], INSEE_CODE))
                .map_or("", |code| text(code, &["valueCoding", "code"]))
                .to_owned(),
            birth_given_names: extension(name, BIRTH_LIST_GIVEN_NAME)
                .map_or("", |list| text(list, &["valueString"]))
                .to_owned(),
            id,
        });
        Ok(())
    }

    fn encounter(&mut self, r: &Resource) -> Result<(), String> {
        let v = &r.value;
        let id = self.id(r)?;
        let patient = self.subject(r)?;
        let start = required_time(v, &["period", "start"], "period.start")?;
        let stop = time_of(v, &["period", "end"], "period.end")?;
        let ty = v["type"]
            .get(0)
            .and_then(|t| coding(t, SNOMED))
            .unwrap_or_default();
        let class = match text(v, &["class", "code"]) {
            "" => return Err("no class".into()),
            "IMP" | "ACUTE" | "NONAC" if ty.code == SNF_ADMISSION => Class::Snf,
            "IMP" | "ACUTE" | "NONAC" => Class::Inpatient,
            "EMER" => Class::Emergency,
            "AMB" if ty.code == URGENT_CARE => Class::UrgentCare,
            "HH" => Class::Home,
            "VR" => Class::Virtual,
            _ => Class::Ambulatory,
        };
        let provider = v["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.reference(&p["individual"], "Practitioner"))
            .find(|p| !p.is_empty())
            .unwrap_or_default();
        self.pop.encounters.push(EncounterRec {
            origin: r.origin.clone(),
            id,
            start,
            stop,
            patient,
            org: self.reference(&v["serviceProvider"], "Organization"),
            provider,
            class,
            code: ty.code,
            desc: ty.display,
            reasons: v["reasonCode"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| coding(c, SNOMED))
                .collect(),
        });
        Ok(())
    }

    /// A `Condition` or a `MedicationRequest`.
    fn clinical(&mut self, r: &Resource, kind: ClinicalKind) -> Result<(), String> {
        let v = &r.value;
        let patient = self.subject(r)?;
        let (code, start, stop) = match kind {
            ClinicalKind::Medication => {
                let code = coding(&v["medicationCodeableConcept"], RXNORM).ok_or(
                    "no medicationCodeableConcept code (a medicationReference is not supported)",
                )?;
                let start = required_time(v, &["authoredOn"], "authoredOn")?;
                let stop = time_of(
                    v,
                    &["dispenseRequest", "validityPeriod", "end"],
                    "dispenseRequest.validityPeriod.end",
                )?;
                (code, start, stop)
            }
            _ => {
                let code = coding(&v["code"], SNOMED).ok_or("no code")?;
                let start = match time_of(v, &["onsetDateTime"], "onsetDateTime")? {
                    Some(t) => t,
                    None => required_time(v, &["recordedDate"], "onsetDateTime or recordedDate")?,
                };
                (code, start, None)
            }
        };
        self.pop.clinical.push(ClinicalRec {
            origin: r.origin.clone(),
            kind,
            patient,
            encounter: self.reference(&v["encounter"], "Encounter"),
            start,
            stop,
            system: code.system,
            code: code.code,
            desc: code.display,
            care_plan_id: String::new(),
            reason: String::new(),
        });
        Ok(())
    }

    fn care_plan(
        &mut self,
        r: &Resource,
        conditions: &HashMap<&str, String>,
    ) -> Result<(), String> {
        let v = &r.value;
        let id = self.id(r)?;
        let patient = self.subject(r)?;
        let start = required_time(v, &["period", "start"], "period.start")?;
        let category = v["category"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| coding(c, SNOMED))
            .find(|c| c.system == SNOMED)
            .ok_or("no SNOMED CT category")?;
        // The addressed Condition's code, else the reference's display.
        let addressed = &v["addresses"][0];
        let reason = conditions
            .get(self.reference(addressed, "Condition").as_str())
            .cloned()
            .unwrap_or_else(|| text(addressed, &["display"]).to_owned());
        self.pop.clinical.push(ClinicalRec {
            origin: r.origin.clone(),
            kind: ClinicalKind::CarePlan,
            patient,
            encounter: self.reference(&v["encounter"], "Encounter"),
            start,
            stop: None,
            system: category.system,
            code: category.code,
            desc: category.display,
            care_plan_id: id,
            reason,
        });
        Ok(())
    }

    fn observation(&mut self, r: &Resource) -> Result<(), String> {
        let v = &r.value;
        let patient = self.subject(r)?;
        let code = coding(&v["code"], LOINC).ok_or("no code")?;
        let at = match time_of(v, &["effectiveDateTime"], "effectiveDateTime")? {
            Some(t) => t,
            None => required_time(v, &["issued"], "effectiveDateTime or issued")?,
        };
        let q = &v["valueQuantity"];
        let unit = match text(q, &["code"]) {
            "" => text(q, &["unit"]),
            c => c,
        };
        self.pop.observations.push(ObservationRec {
            origin: r.origin.clone(),
            patient,
            encounter: self.reference(&v["encounter"], "Encounter"),
            at,
            code: code.code,
            desc: code.display,
            value: q["value"].as_f64().filter(|x| x.is_finite()),
            unit: unit.to_owned(),
        });
        Ok(())
    }
}
