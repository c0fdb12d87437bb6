//! `journey bench import`: `journey import fhir` beside `journey import synthea` of the same
//! population in the same run.
//!
//! The population is a Synthea CSV export (`--dir`, by default `../shared/data/synthea-medium`);
//! the benchmark writes it as FHIR Bulk Data NDJSON (one file per resource type, references as
//! Synthea's Bulk output writes them), checks that both forms map to the same events, then, in
//! `--rounds` rounds, measures for each form: reading and mapping (no server), and the whole
//! import (read, map, append through gRPC to a fresh `journey up`). Figures are the best round;
//! ratios are FHIR against CSV.
use super::common::{machine, print_table, rate_row, start_server, step};
use journey_import::{
    append::append_all,
    mapping::{self, Built},
    records::{Class, ClinicalKind, Population},
    run::{read, source_of},
    Format,
};
use journey_proto::v1::{Role, Sex};
use serde_json::{json, Value};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

#[derive(Debug, clap::Args, Clone)]
pub struct BenchImportArgs {
    /// The Synthea CSV export (written as FHIR NDJSON by the benchmark).
    #[arg(long, default_value = "../shared/data/synthea-medium")]
    pub dir: PathBuf,
    /// Rounds of each measure (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
}

const SNOMED: &str = "http://snomed.info/sct";
const SYNTHEA: &str = "https://github.com/synthetichealth/synthea";

fn instant(t: &journey_proto::prost_types::Timestamp) -> String {
    t.to_string()
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

fn system_uri(name: &str) -> &str {
    match name {
        "SNOMED-CT" => SNOMED,
        "RXNORM" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        "LOINC" => "http://loinc.org",
        other => other,
    }
}

/// `pop` as FHIR R4 resources, grouped by resource type.
fn as_fhir(pop: &Population) -> BTreeMap<&'static str, Vec<Value>> {
    let mut out: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let reference = |ty: &str, id: &str| json!({"reference": format!("{ty}/{id}")});
    for (id, name) in &pop.org_names {
        out.entry("Organization")
            .or_default()
            .push(json!({"resourceType": "Organization",
            "id": id, "identifier": [{"system": SYNTHEA, "value": id}], "name": name}));
    }
    for (id, (name, role)) in &pop.providers {
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        out.entry("Practitioner")
            .or_default()
            .push(json!({"resourceType": "Practitioner",
            "id": id, "name": [{"given": [given], "family": family}]}));
        let specialty = match role {
            Role::Gp => "General Practice",
            Role::Unspecified => continue,
            _ => "Specialist",
        };
        out.entry("PractitionerRole")
            .or_default()
            .push(json!({"resourceType": "PractitionerRole",
            "id": format!("role-{id}"), "practitioner": reference("Practitioner", id),
            "specialty": [coding("http://nucc.org/provider-taxonomy", "x", specialty)]}));
    }
    for p in &pop.patients {
        let mut r = json!({"resourceType": "Patient", "id": p.id, "birthDate": p.birth_date,
            "gender": match p.sex { Sex::Male => "male", Sex::Female => "female", Sex::Other => "other", _ => "unknown" },
            "name": [{"use": "official", "family": p.family, "given": [p.given]}]});
        if let Some(day) = p.death_day {
            r["deceasedDateTime"] = json!(instant(&journey_proto::prost_types::Timestamp {
                seconds: day + 12 * 3600,
                nanos: 0
            }));
        }
        out.entry("Patient").or_default().push(r);
    }
    for e in &pop.encounters {
        let (class, code) = match e.class {
            Class::Inpatient => ("IMP", e.code.as_str()),
            Class::Snf => ("IMP", "449411000124106"),
            Class::Emergency => ("EMER", e.code.as_str()),
            Class::UrgentCare => ("AMB", "702927004"),
            Class::Home => ("HH", e.code.as_str()),
            Class::Virtual => ("VR", e.code.as_str()),
            Class::Ambulatory => ("AMB", e.code.as_str()),
        };
        let mut r = json!({"resourceType": "Encounter", "id": e.id, "status": "finished",
            "class": {"code": class}, "type": [coding(SNOMED, code, &e.desc)],
            "subject": reference("Patient", &e.patient),
            "period": {"start": instant(&e.start)},
            "serviceProvider": {"reference": format!("Organization?identifier={SYNTHEA}|{}", e.org)},
            "reasonCode": e.reasons.iter().map(|c| coding(system_uri(&c.system), &c.code, &c.display)).collect::<Vec<_>>()});
        if let Some(stop) = &e.stop {
            r["period"]["end"] = json!(instant(stop));
        }
        if !e.provider.is_empty() {
            r["participant"] = json!([{"individual": reference("Practitioner", &e.provider)}]);
        }
        out.entry("Encounter").or_default().push(r);
    }
    for (i, c) in pop.clinical.iter().enumerate() {
        let mut r = match c.kind {
            ClinicalKind::Condition => json!({"resourceType": "Condition",
                "code": coding(system_uri(&c.system), &c.code, &c.desc),
                "onsetDateTime": instant(&c.start)}),
            ClinicalKind::Medication => {
                let mut m = json!({"resourceType": "MedicationRequest", "status": "active",
                    "intent": "order",
                    "medicationCodeableConcept": coding(system_uri(&c.system), &c.code, &c.desc),
                    "authoredOn": instant(&c.start)});
                if let Some(stop) = &c.stop {
                    m["dispenseRequest"] = json!({"validityPeriod": {"end": instant(stop)}});
                }
                m
            }
            ClinicalKind::CarePlan => json!({"resourceType": "CarePlan", "id": c.care_plan_id,
                "status": "active", "intent": "plan",
                "category": [coding(SNOMED, &c.code, &c.desc)],
                "period": {"start": instant(&c.start)},
                "addresses": [{"display": c.reason}]}),
        };
        if r.get("id").is_none() {
            r["id"] = json!(format!("r{i}"));
        }
        r["subject"] = reference("Patient", &c.patient);
        if !c.encounter.is_empty() {
            r["encounter"] = reference("Encounter", &c.encounter);
        }
        let ty = match c.kind {
            ClinicalKind::Condition => "Condition",
            ClinicalKind::Medication => "MedicationRequest",
            ClinicalKind::CarePlan => "CarePlan",
        };
        out.entry(ty).or_default().push(r);
    }
    for (i, o) in pop.observations.iter().enumerate() {
        let mut r = json!({"resourceType": "Observation", "id": format!("o{i}"), "status": "final",
            "code": coding("http://loinc.org", &o.code, &o.desc),
            "subject": reference("Patient", &o.patient),
            "effectiveDateTime": instant(&o.at)});
        match o.value {
            Some(v) => r["valueQuantity"] = json!({"value": v, "unit": o.unit}),
            None => r["valueString"] = json!("(not numeric)"),
        }
        if !o.encounter.is_empty() {
            r["encounter"] = reference("Encounter", &o.encounter);
        }
        out.entry("Observation").or_default().push(r);
    }
    out
}

fn write_ndjson(pop: &Population, dir: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut n = 0;
    for (ty, list) in as_fhir(pop) {
        let mut text = String::new();
        for r in list {
            text += &r.to_string();
            text.push('\n');
            n += 1;
        }
        std::fs::write(dir.join(format!("{ty}.000.ndjson")), text)?;
    }
    Ok(n)
}

/// Reads and maps the population at `dir` (no server): the events and the seconds taken.
fn read_and_map(dir: &Path, format: Format) -> anyhow::Result<(Built, f64)> {
    let started = Instant::now();
    let built = mapping::map(read(dir, format)?, source_of(dir));
    Ok((built, started.elapsed().as_secs_f64()))
}

/// The whole import of `dir` into a fresh `journey up`: (events appended, seconds).
async fn import(dir: &Path, format: Format) -> anyhow::Result<(u64, f64)> {
    let data = tempfile::tempdir()?;
    let server = start_server(data.path(), &[])?;
    let client = server.log_client().await?;
    let started = Instant::now();
    let (built, _) = read_and_map(dir, format)?;
    let total = built.patients.values().map(|v| v.len() as u64).sum();
    let (stats, _) = append_all(client, built.patients, false, total).await?;
    Ok((stats.appended, started.elapsed().as_secs_f64()))
}

pub async fn run(args: BenchImportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds > 0, "--rounds must be at least 1");
    let csv = args.dir.canonicalize()?;
    let tmp = tempfile::tempdir()?;
    // The same folder name: the events' source (`synthea:<folder>`) is the same.
    let fhir = tmp.path().join(csv.file_name().unwrap_or_default());
    step(&format!(
        "reading {} and writing it as FHIR NDJSON",
        csv.display()
    ));
    let population = read(&csv, Format::SyntheaCsv)?;
    let resources = write_ndjson(&population, &fhir)?;
    drop(population);

    step("checking that both forms map to the same events");
    let (a, _) = read_and_map(&csv, Format::SyntheaCsv)?;
    let (b, _) = read_and_map(&fhir, Format::Fhir)?;
    let events: u64 = a.patients.values().map(|v| v.len() as u64).sum();
    anyhow::ensure!(
        a.patients.len() == b.patients.len(),
        "not the same patients"
    );
    for (patient, items) in &a.patients {
        let other = b
            .patients
            .get(patient)
            .ok_or_else(|| anyhow::anyhow!("patient {patient} missing from the FHIR form"))?;
        anyhow::ensure!(
            items.len() == other.len() && items.iter().zip(other).all(|(x, y)| x.event == y.event),
            "patient {patient}: the FHIR form gives other events"
        );
    }
    let rows: u64 = a.rows.values().sum();
    drop((a, b));

    let (mut map_csv, mut map_fhir, mut all_csv, mut all_fhir) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    for round in 1..=args.rounds {
        step(&format!("round {round} of {}: read and map", args.rounds));
        map_csv = map_csv.min(read_and_map(&csv, Format::SyntheaCsv)?.1);
        map_fhir = map_fhir.min(read_and_map(&fhir, Format::Fhir)?.1);
        step(&format!(
            "round {round} of {}: whole import into a fresh server",
            args.rounds
        ));
        let (n_csv, t_csv) = import(&csv, Format::SyntheaCsv).await?;
        let (n_fhir, t_fhir) = import(&fhir, Format::Fhir).await?;
        anyhow::ensure!(
            n_csv == n_fhir,
            "appended {n_csv} events from CSV, {n_fhir} from FHIR"
        );
        all_csv = all_csv.min(t_csv);
        all_fhir = all_fhir.min(t_fhir);
    }

    println!();
    println!("machine: {}", machine());
    println!(
        "population: {} ({rows} CSV rows; {resources} FHIR resources written); {events} events, the same from both forms",
        csv.display()
    );
    println!();
    let per_sec = |t: f64| events as f64 / t;
    print_table(
        ["measure (best of the rounds)", "events/s", "× CSV", "note"],
        &[
            rate_row(
                "(a) CSV: read and map",
                per_sec(map_csv),
                per_sec(map_csv),
                format!("{map_csv:.2} s; baseline"),
            ),
            rate_row(
                "(b) FHIR NDJSON: read and map",
                per_sec(map_fhir),
                per_sec(map_csv),
                format!("{map_fhir:.2} s"),
            ),
            rate_row(
                "(c) CSV: whole import (read, map, append to a fresh `journey up`)",
                per_sec(all_csv),
                per_sec(all_csv),
                format!("{all_csv:.2} s; baseline"),
            ),
            rate_row(
                "(d) FHIR NDJSON: whole import",
                per_sec(all_fhir),
                per_sec(all_csv),
                format!("{all_fhir:.2} s"),
            ),
        ],
    );
    Ok(())
}
