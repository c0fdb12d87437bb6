//! The coordination projection's tables and fold: encounters with their discharge follow-up facts
//! (letter, reconciliation, first home contact), appointments, alerts, referents and patients.
//! Facts are stored, and with each encounter what of its follow-up does not depend on the time of
//! the query (`urgency.rs`), so that SQL can rank the worklist at any `now`.
//!
//! A batch is folded in three steps, so that the number of statements depends on the number of
//! patients and rows, not of events: (1) load the rows of every patient the batch concerns (a few
//! `IN (…)` queries); (2) apply the events in order to those rows in memory, with the meaning one
//! statement per event would have (first admission of an encounter wins, updates of a missing row
//! do nothing, the first letter / reconciliation / acknowledgement time wins, …); (3) write the
//! changed rows back with multi-row upserts (`rows.rs`).
use super::{
    directory, letters, pathway_facts, pathways,
    rows::{self, AlertRow, AppointmentRow, Care, Changes, Contact, EncounterRow, PatientRow},
    urgency,
};
use crate::movements;
use crate::{runtime::Projection, sql};
use journey_proto::v1::{event::Payload, AdmitType, Event, Professional};
use sqlx::AnyConnection;
use std::collections::HashMap;

pub struct Coordination;

const TABLES: &[&str] = &[
    "patients",
    "encounters",
    "contacts",
    "appointments",
    "alerts",
    "referents",
    "consents",
    letters::TABLE,
    pathway_facts::TABLE,
    urgency::KEPT_TABLE,
    directory::PLACES,
    directory::PROFESSIONALS,
];

/// The organisation of a consent that names none: every organisation.
pub const ANY_ORGANISATION: &str = "*";

pub const APPT_SCHEDULED: i64 = 0;
pub const APPT_COMPLETED: i64 = 1;
pub const APPT_MISSED: i64 = 2;

fn secs(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds)
}

impl Projection for Coordination {
    fn name(&self) -> &'static str {
        "coordination"
    }

    fn schema_version(&self) -> i64 {
        // 3: encounters carry their standing (due times, missed and earliest scheduled
        //    appointments, the patient's open alerts), whether they are the patient's latest and
        //    whether the patient died; contacts keyed by patient first.
        // 4: encounters keep their live movements (historic movements, corrections, class
        //    changes) and derive their stay from them.
        // 5: referents' phones.
        // 6: patients' sex, INS and identity status; an identity update changes what it says.
        // 7: every discharge letter kept (`letters.rs`), for the QLS indicator; the facts the
        //    care pathways' steps are derived from (`pathway_facts.rs`).
        // 8: patients' local id and a name key to find them by; encounters' facility time zone.
        // 9: encounters carry the earliest deadline of a care pathway step not done; the
        //    templates in use (`pathways.rs`) are part of the version: other templates, a rebuild.
        // 10: the indexes of the worklist and the indicators (`queries::indexes_ddl`).
        // 11: encounters keep their urgency with the instants it is valid between
        //    (`urgency::maintain`); the worklist's index is in urgency order.
        // 12: the places and professionals seen (`directory.rs`).
        // 13: the worklist's indexes led by a patient, a place and an open alert's severity; the
        //     referents' index holds the name and the patient; the places' and professionals'
        //     name keys.
        13 + (i64::from(pathways::active().map_or(0, |t| t.fingerprint())) << 8)
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn ddl(&self, p: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE {p}patients (patient_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, birth_date TEXT NOT NULL,
                 sex BIGINT NOT NULL, ins TEXT NOT NULL, identity_status BIGINT NOT NULL,
                 died_at BIGINT, consent BIGINT NOT NULL, local_id TEXT NOT NULL, name_key TEXT NOT NULL)"
            ),
            format!(
                "CREATE TABLE {p}encounters (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, facility_id TEXT NOT NULL,
                 facility_name TEXT NOT NULL, territory TEXT NOT NULL, unit TEXT NOT NULL, setting BIGINT NOT NULL,
                 had_group BIGINT NOT NULL, admit_type BIGINT NOT NULL, admitted_at BIGINT NOT NULL, discharged_at BIGINT,
                 disposition BIGINT NOT NULL, admit_event_id TEXT NOT NULL, discharge_event_id TEXT, letter_sent_at BIGINT,
                 letter_items BIGINT NOT NULL, reconciled_at BIGINT, first_contact_at BIGINT, latest BIGINT NOT NULL,
                 deceased BIGINT NOT NULL, movements TEXT NOT NULL, time_zone TEXT NOT NULL,
                 {}, {}, PRIMARY KEY (patient_id, encounter_id))",
                urgency::COLUMNS_DDL,
                urgency::KEPT_DDL
            ),
            format!("CREATE INDEX {p}encounters_discharged ON {p}encounters (discharged_at)"),
            // A coordinator's search reads the patients with a stay in the territory.
            format!("CREATE INDEX {p}encounters_territory ON {p}encounters (territory, patient_id)"),
            // The worklist reads each patient's latest encounter, discharged in a window.
            format!("CREATE INDEX {p}encounters_latest ON {p}encounters (discharged_at) WHERE latest = 1"),
            // Keyed by patient first: a patient's contacts are read together.
            format!(
                "CREATE TABLE {p}contacts (patient_id TEXT NOT NULL, event_id TEXT NOT NULL, at BIGINT NOT NULL,
                 PRIMARY KEY (patient_id, event_id))"
            ),
            format!(
                "CREATE TABLE {p}appointments (patient_id TEXT NOT NULL, appointment_id TEXT NOT NULL, encounter_id TEXT NOT NULL,
                 kind TEXT NOT NULL, due_at BIGINT NOT NULL, state BIGINT NOT NULL, with_name TEXT NOT NULL,
                 PRIMARY KEY (patient_id, appointment_id))"
            ),
            format!("CREATE INDEX {p}appointments_due ON {p}appointments (due_at)"),
            format!(
                "CREATE TABLE {p}alerts (patient_id TEXT NOT NULL, alert_id TEXT NOT NULL, severity BIGINT NOT NULL, rule TEXT NOT NULL,
                 reason TEXT NOT NULL, raised_at BIGINT NOT NULL, acknowledged_at BIGINT, resolved_at BIGINT,
                 PRIMARY KEY (patient_id, alert_id))"
            ),
            format!("CREATE INDEX {p}alerts_raised ON {p}alerts (raised_at)"),
            format!(
                "CREATE TABLE {p}referents (patient_id TEXT NOT NULL, role BIGINT NOT NULL, professional_id TEXT NOT NULL,
                 name TEXT NOT NULL, phone TEXT NOT NULL, PRIMARY KEY (patient_id, role))"
            ),
            // With the name and the patient: a referent filter (`directory::referent_patients_sql`)
            // reads its patients from the index alone.
            format!(
                "CREATE INDEX {p}referents_professional ON {p}referents (professional_id, name, patient_id)"
            ),
            format!(
                "CREATE TABLE {p}consents (patient_id TEXT NOT NULL, organisation TEXT NOT NULL, revoked BIGINT NOT NULL,
                 at BIGINT NOT NULL, PRIMARY KEY (patient_id, organisation))"
            ),
            letters::ddl(p),
            pathway_facts::ddl(p),
            urgency::kept_ddl(p),
        ]
        .into_iter()
        .chain(directory::ddl(p))
        .collect()
    }

    fn indexes(&self, p: &str) -> Vec<String> {
        super::queries::indexes_ddl(p)
            .into_iter()
            .chain(super::indicators::indexes_ddl(p))
            .collect()
    }

    fn maintained(&self) -> bool {
        true
    }

    async fn maintain(
        &self,
        conn: &mut AnyConnection,
        p: &str,
        now: i64,
    ) -> anyhow::Result<Option<i64>> {
        Ok(urgency::maintain(conn, p, now).await?)
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        p: &str,
        events: &[Event],
    ) -> anyhow::Result<()> {
        let templates = pathways::active().map_err(|e| anyhow::anyhow!("{e}"))?;
        sql::begin_batch(conn).await?;
        // First, so that the batch's own facts are loaded with its patients' rows.
        pathway_facts::write(conn, p, events).await?;
        let mut batch = Batch::load(conn, p, events).await?;
        for e in events {
            batch.apply(e);
        }
        rows::write(
            conn,
            p,
            &batch.patients,
            &batch.care,
            &batch.changes,
            templates,
        )
        .await?;
        letters::write(conn, p, events).await
    }
}

/// What an event changes: the patient's own row, its care rows (encounters, contacts,
/// appointments, alerts; their patient's rows are loaded with them), both, or only rows written
/// blindly (referents, consents: the last word wins).
struct Concerns {
    patient: bool,
    care: bool,
}

fn concerns(payload: &Payload) -> Concerns {
    let (patient, care) = match payload {
        Payload::PatientRegistered(_)
        | Payload::IdentityUpdated(_)
        | Payload::ConsentGiven(_)
        | Payload::ConsentRevoked(_) => (true, false),
        // Encounters carry whether their patient is alive.
        Payload::PatientDeceased(_) => (true, true),
        Payload::Admitted(_)
        | Payload::Transferred(_)
        | Payload::Discharged(_)
        | Payload::AdmissionCancelled(_)
        | Payload::DischargeCancelled(_)
        | Payload::TransferCancelled(_)
        | Payload::LeaveStarted(_)
        | Payload::LeaveEnded(_)
        | Payload::ClassChanged(_)
        | Payload::MovementCancelled(_)
        | Payload::MovementCorrected(_)
        | Payload::DischargeLetterSent(_)
        | Payload::MedicationReconciled(_)
        | Payload::HomeVisitRecorded(_)
        | Payload::ContactMade(_)
        | Payload::AppointmentScheduled(_)
        | Payload::AppointmentCompleted(_)
        | Payload::AppointmentMissed(_)
        | Payload::AlertRaised(_)
        | Payload::AlertAcknowledged(_)
        | Payload::AlertResolved(_) => (false, true),
        _ => (false, false),
    };
    Concerns { patient, care }
}

fn display_name(family: &str, given: &str) -> String {
    format!("{} {}", family.to_uppercase(), given)
        .trim()
        .to_string()
}

/// The rows of the patients a batch concerns, and what the batch changed.
struct Batch<'e> {
    patients: HashMap<String, PatientRow>,
    care: HashMap<&'e str, Care>,
    changes: Changes<'e>,
}

impl<'e> Batch<'e> {
    async fn load(
        conn: &mut AnyConnection,
        p: &str,
        events: &'e [Event],
    ) -> anyhow::Result<Batch<'e>> {
        let mut patient_keys = Vec::new();
        let mut care_keys = Vec::new();
        // Contacts matter only to the first contact, which only these events change.
        let mut contact_keys = Vec::new();
        for e in events {
            let Some(payload) = &e.payload else {
                continue;
            };
            let c = concerns(payload);
            if c.patient || c.care {
                patient_keys.push(e.patient_id.as_str());
            }
            if c.care {
                care_keys.push(e.patient_id.as_str());
            }
            // A movement may move or undo a discharge (a cancellation, a correction).
            if matches!(
                payload,
                Payload::HomeVisitRecorded(_) | Payload::ContactMade(_)
            ) || movements::change(e).is_some()
            {
                contact_keys.push(e.patient_id.as_str());
            }
        }
        for keys in [&mut patient_keys, &mut care_keys, &mut contact_keys] {
            keys.sort_unstable();
            keys.dedup();
        }
        let mut care = rows::load_care(conn, p, &care_keys, &contact_keys).await?;
        let mut pathway = pathway_facts::load(conn, p, &care_keys).await?;
        for (pid, c) in care.iter_mut() {
            if let Some(f) = pathway.remove(*pid) {
                c.pathway = f;
            }
        }
        Ok(Batch {
            patients: rows::load_patients(conn, p, &patient_keys).await?,
            care,
            changes: Changes::default(),
        })
    }

    /// The patient's row, created as an upsert would (empty names, no death, no consent word).
    fn patient(&mut self, pid: &'e str) -> &mut PatientRow {
        self.changes.patients.insert(pid);
        self.patients.entry(pid.to_string()).or_default()
    }

    fn referent(&mut self, pid: &'e str, role: i32, pro: &'e Professional) {
        let role = if role == 0 { pro.role } else { role };
        self.changes
            .referents
            .insert((pid, role as i64), (&pro.id, &pro.name, &pro.phone));
    }

    /// Applies one event to the rows in memory.
    fn apply(&mut self, e: &'e Event) {
        let Some(payload) = &e.payload else {
            return;
        };
        let at = secs(e.occurred_at.as_ref());
        let pid = e.patient_id.as_str();
        if concerns(payload).care {
            self.changes.care.insert(pid);
            let care = self.care.get_mut(pid).expect("loaded");
            apply_care(care, &mut self.changes, e, payload, at);
        }
        match payload {
            Payload::PatientRegistered(r) => {
                let row = self.patient(pid);
                row.display_name = display_name(&r.family_name, &r.given_name);
                row.birth_date = r.birth_date.clone();
                row.sex = i64::from(r.sex);
                row.ins = r.ins.clone();
                row.identity_status = i64::from(r.identity_status);
                row.local_id = r.local_id.clone();
                if let Some(gp) = &r.gp {
                    self.referent(pid, gp.role, gp);
                }
            }
            // An update says what changed: what it leaves empty stays.
            Payload::IdentityUpdated(r) => {
                let row = self.patient(pid);
                let name = display_name(&r.family_name, &r.given_name);
                if !name.is_empty() {
                    row.display_name = name;
                }
                if !r.birth_date.is_empty() {
                    row.birth_date = r.birth_date.clone();
                }
                if r.sex != 0 {
                    row.sex = i64::from(r.sex);
                }
                if r.ins_removed {
                    row.ins.clear();
                } else if !r.ins.is_empty() {
                    row.ins = r.ins.clone();
                }
                if r.identity_status != 0 {
                    row.identity_status = i64::from(r.identity_status);
                }
                if let Some(gp) = &r.gp {
                    self.referent(pid, gp.role, gp);
                }
            }
            Payload::ReferentAssigned(r) => {
                if let Some(pro) = &r.professional {
                    self.referent(pid, r.role, pro);
                }
            }
            Payload::CarePlanEstablished(c) => {
                for pro in &c.referents {
                    self.referent(pid, pro.role, pro);
                }
            }
            Payload::ConsentGiven(_) | Payload::ConsentRevoked(_) => {
                let (given, orgs) = match payload {
                    Payload::ConsentGiven(c) => (true, &c.organisations),
                    Payload::ConsentRevoked(c) => (false, &c.organisations),
                    _ => unreachable!(),
                };
                self.patient(pid).consent = if given { 1 } else { -1 };
                // Per organisation ("*" = every organisation): the last word wins.
                let revoked = (i64::from(!given), at);
                if orgs.is_empty() {
                    self.changes
                        .consents
                        .insert((pid, ANY_ORGANISATION), revoked);
                }
                for org in orgs {
                    self.changes.consents.insert((pid, org), revoked);
                }
            }
            Payload::PatientDeceased(d) => {
                self.patient(pid).died_at = Some(d.died_at.as_ref().map_or(at, |t| t.seconds));
            }
            _ => {}
        }
    }
}

/// Applies a movement event to the encounter it concerns and re-derives that stay from its live
/// movements (`crate::movements`): admission, unit, class, discharge; the first contact follows
/// the discharge.
fn movement<'e>(care: &mut Care, changes: &mut Changes<'e>, e: &'e Event) {
    let Some(change) = movements::change(e) else {
        return;
    };
    let rows = &mut care.encounters;
    let Some(r) = movements::apply(rows, change, |r| &r.encounter_id, |r| &mut r.movements) else {
        return;
    };
    match r.movements.stay() {
        Some(s) => {
            r.admitted_at = s.admitted_at;
            r.admit_event_id = s.admit_event_id;
            r.unit = s.unit;
            r.setting = i64::from(s.setting);
            r.discharged_at = s.discharged_at;
            r.discharge_event_id = s.discharge_event_id;
            r.disposition = i64::from(s.disposition);
            if r.discharged_at.is_none() {
                r.first_contact_at = None;
            }
        }
        None => {
            let gone = r.encounter_id.clone();
            care.encounters.retain(|r| r.encounter_id != gone);
            changes
                .encounters_gone
                .insert((e.patient_id.as_str(), gone));
        }
    }
    care.refresh_first_contacts();
}

/// Applies one event about a patient's care (encounters, contacts, appointments, alerts).
fn apply_care<'e>(
    care: &mut Care,
    changes: &mut Changes<'e>,
    e: &'e Event,
    payload: &'e Payload,
    at: i64,
) {
    let pid = e.patient_id.as_str();
    match payload {
        Payload::Admitted(a)
            if care
                .encounters
                .iter()
                .all(|r| r.encounter_id != a.encounter_id) =>
        {
            let f = a.facility.clone().unwrap_or_default();
            care.encounters.push(EncounterRow {
                encounter_id: a.encounter_id.clone(),
                facility_id: f.id,
                facility_name: f.name,
                territory: f.territory,
                time_zone: f.time_zone,
                unit: a.unit.clone(),
                setting: a.setting as i64,
                had_group: a.had_group as i64,
                admit_type: a.admit_type as i64,
                admitted_at: at,
                admit_event_id: e.event_id.clone(),
                ..Default::default()
            });
            movement(care, changes, e);
        }
        // A class change that makes an emergency visit a stay opens its encounter.
        Payload::ClassChanged(c) => {
            let known = care.encounter(&c.encounter_id).is_some();
            if let (false, Some(f)) = (known, &c.facility) {
                care.encounters.push(EncounterRow {
                    encounter_id: c.encounter_id.clone(),
                    facility_id: f.id.clone(),
                    facility_name: f.name.clone(),
                    territory: f.territory.clone(),
                    time_zone: f.time_zone.clone(),
                    unit: c.unit.clone(),
                    setting: c.setting as i64,
                    admit_type: match c.admit_type {
                        0 => AdmitType::Emergency as i64,
                        t => t as i64,
                    },
                    admitted_at: at,
                    admit_event_id: e.event_id.clone(),
                    ..Default::default()
                });
            }
            movement(care, changes, e);
        }
        Payload::Transferred(_)
        | Payload::Discharged(_)
        | Payload::LeaveStarted(_)
        | Payload::LeaveEnded(_)
        | Payload::AdmissionCancelled(_)
        | Payload::TransferCancelled(_)
        | Payload::DischargeCancelled(_)
        | Payload::MovementCancelled(_)
        | Payload::MovementCorrected(_) => movement(care, changes, e),
        Payload::DischargeLetterSent(l) => {
            let items = l
                .items_present
                .iter()
                .filter(|i| (1..=30).contains(*i))
                .fold(0i64, |m, i| m | 1 << i);
            if let Some(r) = care.encounter(&l.encounter_id) {
                r.letter_sent_at = r.letter_sent_at.or(Some(at));
                r.letter_items = items;
            }
        }
        Payload::MedicationReconciled(m) => {
            if let Some(r) = care.encounter(&m.encounter_id) {
                r.reconciled_at = r.reconciled_at.or(Some(at));
            }
        }
        Payload::HomeVisitRecorded(_) | Payload::ContactMade(_) => {
            if care.contacts.iter().all(|c| c.event_id != e.event_id) {
                care.contacts.push(Contact {
                    event_id: e.event_id.clone(),
                    at,
                });
                changes.contacts.push((pid, &e.event_id, at));
            }
            care.refresh_first_contacts();
        }
        Payload::AppointmentScheduled(a) => {
            let due_at = secs(a.due_at.as_ref());
            let with = a.with.as_ref().map(|w| w.name.as_str()).unwrap_or("");
            match care
                .appointments
                .iter_mut()
                .find(|r| r.appointment_id == a.appointment_id)
            {
                Some(r) => {
                    r.due_at = due_at;
                    r.kind = a.kind.clone();
                    r.with_name = with.to_string();
                }
                None => {
                    let encounter_id = if a.encounter_id.is_empty() {
                        encounter_at(care, at)
                    } else {
                        a.encounter_id.clone()
                    };
                    care.appointments.push(AppointmentRow {
                        appointment_id: a.appointment_id.clone(),
                        encounter_id,
                        kind: a.kind.clone(),
                        due_at,
                        state: APPT_SCHEDULED,
                        with_name: with.to_string(),
                    });
                }
            }
            changes.appointments.insert((pid, a.appointment_id.clone()));
        }
        Payload::AppointmentCompleted(a) => {
            appointment_state(care, changes, pid, &a.appointment_id, APPT_COMPLETED)
        }
        Payload::AppointmentMissed(a) => {
            appointment_state(care, changes, pid, &a.appointment_id, APPT_MISSED)
        }
        Payload::AlertRaised(a) if care.alerts.iter().all(|r| r.alert_id != a.alert_id) => {
            care.alerts.push(AlertRow {
                alert_id: a.alert_id.clone(),
                severity: a.severity as i64,
                rule: a.rule.clone(),
                reason: a.reason.clone(),
                raised_at: at,
                acknowledged_at: None,
                resolved_at: None,
            });
            changes.alerts.insert((pid, a.alert_id.clone()));
        }
        Payload::AlertAcknowledged(a) => {
            if let Some(r) = care.alerts.iter_mut().find(|r| r.alert_id == a.alert_id) {
                r.acknowledged_at = r.acknowledged_at.or(Some(at));
                changes.alerts.insert((pid, a.alert_id.clone()));
            }
        }
        Payload::AlertResolved(a) => {
            if let Some(r) = care.alerts.iter_mut().find(|r| r.alert_id == a.alert_id) {
                r.resolved_at = r.resolved_at.or(Some(at));
                changes.alerts.insert((pid, a.alert_id.clone()));
            }
        }
        _ => {}
    }
}

/// The encounter an event without an encounter id belongs to: the patient's latest admission
/// at or before `at` (none: empty).
fn encounter_at(care: &Care, at: i64) -> String {
    care.encounters
        .iter()
        .filter(|e| e.admitted_at <= at)
        .max_by_key(|e| e.admitted_at)
        .map(|e| e.encounter_id.clone())
        .unwrap_or_default()
}

fn appointment_state<'e>(
    care: &mut Care,
    changes: &mut Changes<'e>,
    pid: &'e str,
    appointment_id: &str,
    state: i64,
) {
    if let Some(r) = care
        .appointments
        .iter_mut()
        .find(|r| r.appointment_id == appointment_id)
    {
        r.state = state;
        changes
            .appointments
            .insert((pid, appointment_id.to_string()));
    }
}
