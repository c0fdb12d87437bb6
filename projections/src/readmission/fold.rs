//! The readmission projection's tables and fold. Facts (encounters as they stand, ED visits,
//! diagnoses, deaths) are kept per event; then each patient the batch touched has its index stays
//! recomputed from its facts by [`model::index_stays`].
//!
//! A batch is folded in three steps, so that the number of statements depends on the number of
//! patients and rows, not of events: (1) load the facts of every patient the batch concerns (a few
//! `IN (…)` queries); (2) apply the events in order to those facts in memory, with the same
//! meaning as one statement per event would have (first admission of an encounter wins, updates
//! of a missing encounter do nothing, …), noting which rows changed; (3) write the changed rows
//! back with multi-row statements, and replace the index stays of the patients touched.
use super::model::{self, zone, Diagnosis, EdVisit, Encounter};
use crate::movements::{self, Change, Movements};
use crate::{
    runtime::Projection,
    sql::{self, execute_in, insert_rows, select_in, SqlRow, Q},
};
use journey_proto::v1::{event::Payload, Event};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub struct Readmission;

const TABLES: &[&str] = &[
    "encounters",
    "ed_visits",
    "diagnoses",
    "deaths",
    "index_stays",
];

fn secs(t: Option<&prost_types::Timestamp>) -> i64 {
    t.map_or(0, |t| t.seconds)
}

impl Projection for Readmission {
    fn name(&self) -> &'static str {
        "readmission"
    }

    fn schema_version(&self) -> i64 {
        // 2: ed_visits and diagnoses keyed by patient first.
        // 3: facility time zones (calendar days are the facility's); index of day-surgery and
        //    HAD discharges.
        // 4: encounters keep their live movements (historic movements, corrections, class
        //    changes); the transfers table is gone.
        // 5: index stays covered for the indicators (`indexes`).
        5
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn ddl(&self, p: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE {p}encounters (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, facility_id TEXT NOT NULL,
                 territory TEXT NOT NULL, unit TEXT NOT NULL, setting BIGINT NOT NULL, admit_type BIGINT NOT NULL,
                 admitted_at BIGINT NOT NULL, discharged_at BIGINT, disposition BIGINT NOT NULL, dx_system TEXT, dx_code TEXT,
                 admit_event_id TEXT NOT NULL, discharge_event_id TEXT, time_zone TEXT NOT NULL, movements TEXT NOT NULL,
                 PRIMARY KEY (patient_id, encounter_id))"
            ),
            // Keyed by patient first: a patient's facts are read together, and a batch's new rows
            // land together in the index instead of at random places (event ids are random).
            format!(
                "CREATE TABLE {p}ed_visits (event_id TEXT NOT NULL, patient_id TEXT NOT NULL, facility_id TEXT NOT NULL, at BIGINT NOT NULL,
                 outcome BIGINT NOT NULL, time_zone TEXT NOT NULL, PRIMARY KEY (patient_id, event_id))"
            ),
            format!(
                "CREATE TABLE {p}diagnoses (event_id TEXT NOT NULL, idx BIGINT NOT NULL, patient_id TEXT NOT NULL, code_system TEXT NOT NULL,
                 code TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (patient_id, event_id, idx))"
            ),
            format!("CREATE TABLE {p}deaths (patient_id TEXT PRIMARY KEY, died_at BIGINT NOT NULL, event_id TEXT NOT NULL)"),
            format!(
                "CREATE TABLE {p}index_stays (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, first_encounter_id TEXT NOT NULL,
                 facility_id TEXT NOT NULL, territory TEXT NOT NULL, unit TEXT NOT NULL, disposition BIGINT NOT NULL,
                 admit_day BIGINT NOT NULL, discharge_day BIGINT NOT NULL, discharge_month TEXT NOT NULL, discharged_at BIGINT NOT NULL,
                 length_of_stay BIGINT NOT NULL, emergency BIGINT NOT NULL, charlson BIGINT NOT NULL, ed_visits_182 BIGINT NOT NULL,
                 lace BIGINT NOT NULL, diagnosis_chapter TEXT NOT NULL, readmitted BIGINT NOT NULL, readmit_encounter_id TEXT,
                 readmit_day BIGINT, days_to_readmission BIGINT, unplanned BIGINT NOT NULL, ed_revisit BIGINT NOT NULL,
                 PRIMARY KEY (patient_id, encounter_id))"
            ),
            format!("CREATE INDEX {p}index_stays_discharge ON {p}index_stays (discharge_day)"),
            // Day-surgery and HAD discharges, counted beside the rates.
            format!(
                "CREATE INDEX {p}encounters_other_discharges ON {p}encounters (discharged_at) WHERE setting IN (2, 3)"
            ),
        ]
    }

    /// The index stays with what the indicators read of them: by stay (the discharge-planning
    /// figures join them) and by discharge time (the readmissions by week).
    fn indexes(&self, p: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE INDEX {p}index_stays_key ON {p}index_stays (patient_id, encounter_id, discharged_at, readmitted)"
            ),
            format!(
                "CREATE INDEX {p}index_stays_time ON {p}index_stays (discharged_at, readmitted, ed_revisit, facility_id, territory)"
            ),
        ]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        p: &str,
        events: &[Event],
    ) -> anyhow::Result<()> {
        sql::begin_batch(conn).await?;
        let mut batch = Batch::load(conn, p, events).await?;
        for e in events {
            batch.apply(e);
        }
        batch.write(conn, p).await
    }
}

/// Does this event change the facts (and so need its patient's facts loaded)?
fn concerns(e: &Event) -> bool {
    matches!(
        &e.payload,
        Some(
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
                | Payload::EmergencyVisit(_)
                | Payload::PatientDeceased(_)
        )
    ) || matches!(&e.payload, Some(Payload::ConditionRecorded(c)) if c.diagnosis.is_some())
}

/// One encounter row as stored.
#[derive(Debug, Clone)]
struct EncounterRow {
    e: Encounter,
    admit_event_id: String,
    discharge_event_id: Option<String>,
    movements: Movements,
}

/// One patient's facts: loaded, then changed by the batch.
#[derive(Debug, Default)]
struct Facts {
    encounters: Vec<EncounterRow>,
    ed: Vec<EdVisit>,
    dx: Vec<Diagnosis>,
    /// The event each of `dx` came from (same order): a movement's diagnoses go with it when it
    /// is cancelled or its time corrected.
    dx_from: Vec<String>,
    /// (died_at, event_id)
    death: Option<(i64, String)>,
}

impl Facts {
    fn encounter(&mut self, id: &str) -> Option<&mut EncounterRow> {
        self.encounters.iter_mut().find(|r| r.e.encounter_id == id)
    }
}

struct NewEd<'e> {
    event_id: &'e str,
    patient_id: &'e str,
    facility_id: &'e str,
    at: i64,
    outcome: i64,
    time_zone: &'e str,
}

struct NewDx<'e> {
    event_id: &'e str,
    idx: i64,
    patient_id: &'e str,
    system: &'e str,
    code: &'e str,
    at: i64,
}

/// The facts of the patients a batch concerns, and what the batch changed.
struct Batch<'e> {
    patients: HashMap<&'e str, Facts>,
    new_ed: Vec<NewEd<'e>>,
    new_dx: Vec<NewDx<'e>>,
    /// Diagnoses of a cancelled movement (patient, event), deleted; of a corrected one, moved to
    /// the corrected time.
    dx_gone: BTreeSet<(&'e str, String)>,
    dx_moved: BTreeMap<(&'e str, String), i64>,
    /// Encounters changed (written back as they stand at the end, or deleted if gone).
    encounters_changed: BTreeSet<(&'e str, String)>,
    deaths_changed: BTreeSet<&'e str>,
    /// Patients whose index stays are recomputed.
    touched: BTreeSet<&'e str>,
}

impl<'e> Batch<'e> {
    /// Loads the facts of every patient `events` concern, and the transfers they cancel.
    async fn load(
        conn: &mut AnyConnection,
        p: &str,
        events: &'e [Event],
    ) -> anyhow::Result<Batch<'e>> {
        let mut patients: HashMap<&'e str, Facts> = HashMap::new();
        for e in events.iter().filter(|e| concerns(e)) {
            patients.entry(e.patient_id.as_str()).or_default();
        }
        let mut keys: Vec<&'e str> = patients.keys().copied().collect();
        keys.sort_unstable();
        for r in select_in(conn, &keys, |ph| {
            format!(
                "SELECT patient_id, encounter_id, facility_id, territory, unit, setting, admit_type, admitted_at, discharged_at,
                 disposition, dx_system, dx_code, admit_event_id, discharge_event_id, time_zone, movements FROM {p}encounters WHERE patient_id IN ({ph})"
            )
        })
        .await?
        {
            let id: String = r.try_get(0)?;
            let system: Option<String> = r.try_get(10)?;
            let code: Option<String> = r.try_get(11)?;
            if let Some(f) = patients.get_mut(id.as_str()) {
                f.encounters.push(EncounterRow {
                    e: Encounter {
                        encounter_id: r.try_get(1)?,
                        facility_id: r.try_get(2)?,
                        territory: r.try_get(3)?,
                        unit: r.try_get(4)?,
                        setting: r.try_get::<i64, _>(5)? as i32,
                        admit_type: r.try_get::<i64, _>(6)? as i32,
                        admitted_at: r.try_get(7)?,
                        discharged_at: r.try_get(8)?,
                        disposition: r.try_get::<i64, _>(9)? as i32,
                        primary_diagnosis: system.zip(code),
                        tz: zone(r.try_get(14)?),
                    },
                    admit_event_id: r.try_get(12)?,
                    discharge_event_id: r.try_get(13)?,
                    movements: Movements::from_text(&r.try_get::<String, _>(15)?),
                });
            }
        }
        for r in select_in(conn, &keys, |ph| {
            format!("SELECT patient_id, at, outcome, time_zone FROM {p}ed_visits WHERE patient_id IN ({ph})")
        })
        .await?
        {
            let id: String = r.try_get(0)?;
            if let Some(f) = patients.get_mut(id.as_str()) {
                f.ed.push(EdVisit {
                    at: r.try_get(1)?,
                    outcome: r.try_get::<i64, _>(2)? as i32,
                    tz: zone(r.try_get(3)?),
                });
            }
        }
        for r in select_in(conn, &keys, |ph| {
            format!(
                "SELECT patient_id, code_system, code, at, event_id FROM {p}diagnoses WHERE patient_id IN ({ph})"
            )
        })
        .await?
        {
            let id: String = r.try_get(0)?;
            if let Some(f) = patients.get_mut(id.as_str()) {
                f.dx.push(Diagnosis {
                    system: r.try_get(1)?,
                    code: r.try_get(2)?,
                    at: r.try_get(3)?,
                });
                f.dx_from.push(r.try_get(4)?);
            }
        }
        for r in select_in(conn, &keys, |ph| {
            format!(
                "SELECT patient_id, died_at, event_id FROM {p}deaths WHERE patient_id IN ({ph})"
            )
        })
        .await?
        {
            let id: String = r.try_get(0)?;
            if let Some(f) = patients.get_mut(id.as_str()) {
                f.death = Some((r.try_get(1)?, r.try_get(2)?));
            }
        }
        Ok(Batch {
            patients,
            new_ed: Vec::new(),
            new_dx: Vec::new(),
            dx_gone: BTreeSet::new(),
            dx_moved: BTreeMap::new(),
            encounters_changed: BTreeSet::new(),
            deaths_changed: BTreeSet::new(),
            touched: BTreeSet::new(),
        })
    }

    fn diagnoses(
        &mut self,
        e: &'e Event,
        codes: impl Iterator<Item = (&'e String, &'e String)>,
        at: i64,
    ) {
        let facts = self
            .patients
            .get_mut(e.patient_id.as_str())
            .expect("loaded");
        for (i, (system, code)) in codes.enumerate() {
            facts.dx.push(Diagnosis {
                system: system.clone(),
                code: code.clone(),
                at,
            });
            facts.dx_from.push(e.event_id.clone());
            self.new_dx.push(NewDx {
                event_id: &e.event_id,
                idx: i as i64,
                patient_id: &e.patient_id,
                system,
                code,
                at,
            });
        }
    }

    /// A death is recorded once (the first wins).
    fn death(&mut self, pid: &'e str, at: i64, event_id: &str) {
        let facts = self.patients.get_mut(pid).expect("loaded");
        if facts.death.is_none() {
            facts.death = Some((at, event_id.to_string()));
            self.deaths_changed.insert(pid);
        }
    }

    /// Applies a movement event to the encounter it concerns and re-derives that stay from its
    /// live movements (`crate::movements`); a death recorded by a discharge follows the discharge.
    fn movement(&mut self, e: &'e Event) {
        let Some(change) = movements::change(e) else {
            return;
        };
        let pid = e.patient_id.as_str();
        let (cancelled, moved) = match &change {
            Change::Cancel(id) => (Some(id.to_string()), None),
            Change::Correct(c) => (
                None,
                c.moved_at
                    .map(|t| (c.corrected_event_id.clone(), t.seconds)),
            ),
            Change::Add(..) => (None, None),
        };
        let facts = self.patients.get_mut(pid).expect("loaded");
        let rows = &mut facts.encounters;
        let Some(row) = movements::apply(rows, change, |r| &r.e.encounter_id, |r| &mut r.movements)
        else {
            return;
        };
        let encounter_id = row.e.encounter_id.clone();
        let old_discharge = row.discharge_event_id.clone();
        // The movement's diagnoses go with it: gone with a cancelled one, at the corrected time.
        if let Some(id) = cancelled {
            let (dx, from) = std::mem::take(&mut facts.dx)
                .into_iter()
                .zip(std::mem::take(&mut facts.dx_from))
                .filter(|(_, from)| *from != id)
                .unzip();
            (facts.dx, facts.dx_from) = (dx, from);
            self.dx_gone.insert((pid, id));
        }
        if let Some((id, at)) = moved {
            for (d, from) in facts.dx.iter_mut().zip(&facts.dx_from) {
                if *from == id {
                    d.at = at;
                }
            }
            self.dx_moved.insert((pid, id), at);
        }
        let row = facts
            .encounters
            .iter_mut()
            .find(|r| r.e.encounter_id == encounter_id)
            .expect("the row the change applied to");
        let stay = row.movements.stay();
        match &stay {
            Some(s) => {
                row.e.admitted_at = s.admitted_at;
                row.e.unit = s.unit.clone();
                row.e.setting = s.setting;
                row.e.discharged_at = s.discharged_at;
                row.e.disposition = s.disposition;
                row.admit_event_id = s.admit_event_id.clone();
                row.discharge_event_id = s.discharge_event_id.clone();
            }
            None => facts
                .encounters
                .retain(|r| r.e.encounter_id != encounter_id),
        }
        self.encounters_changed.insert((pid, encounter_id));
        let died_in = stay.filter(|s| s.disposition == model::DISP_DECEASED);
        let died_in = died_in.and_then(|s| Some((s.discharged_at?, s.discharge_event_id?)));
        let changed = match (died_in, &mut facts.death) {
            (Some(d), None) => {
                facts.death = Some(d);
                true
            }
            (Some((at, id)), Some(death)) if death.1 == id && death.0 != at => {
                death.0 = at;
                true
            }
            (None, Some(death)) if Some(&death.1) == old_discharge.as_ref() => {
                facts.death = None;
                true
            }
            _ => false,
        };
        if changed {
            self.deaths_changed.insert(pid);
        }
    }

    /// Applies one event to the facts in memory.
    fn apply(&mut self, e: &'e Event) {
        if !concerns(e) {
            return;
        }
        let Some(payload) = &e.payload else {
            return;
        };
        let at = secs(e.occurred_at.as_ref());
        let pid = e.patient_id.as_str();
        let facts = self.patients.get_mut(pid).expect("loaded");
        match payload {
            Payload::Admitted(a) => {
                if facts.encounter(&a.encounter_id).is_none() {
                    let facility = a.facility.clone().unwrap_or_default();
                    facts.encounters.push(EncounterRow {
                        e: Encounter {
                            encounter_id: a.encounter_id.clone(),
                            facility_id: facility.id,
                            territory: facility.territory,
                            unit: a.unit.clone(),
                            setting: a.setting,
                            admit_type: a.admit_type,
                            admitted_at: at,
                            discharged_at: None,
                            disposition: 0,
                            primary_diagnosis: a
                                .diagnoses
                                .first()
                                .map(|d| (d.system.clone(), d.code.clone())),
                            tz: zone(&facility.time_zone),
                        },
                        admit_event_id: e.event_id.clone(),
                        discharge_event_id: None,
                        movements: Movements::default(),
                    });
                    // first admission of an encounter wins
                    self.movement(e);
                }
                self.diagnoses(e, a.diagnoses.iter().map(|d| (&d.system, &d.code)), at);
            }
            Payload::Discharged(d) => {
                self.movement(e);
                self.diagnoses(e, d.diagnoses.iter().map(|d| (&d.system, &d.code)), at);
            }
            // A class change that makes an emergency visit a stay opens its encounter.
            Payload::ClassChanged(c) => {
                let known = facts.encounter(&c.encounter_id).is_some();
                if let (false, Some(facility)) = (known, &c.facility) {
                    facts.encounters.push(EncounterRow {
                        e: Encounter {
                            encounter_id: c.encounter_id.clone(),
                            facility_id: facility.id.clone(),
                            territory: facility.territory.clone(),
                            unit: c.unit.clone(),
                            setting: c.setting,
                            admit_type: match c.admit_type {
                                0 => model::ADMIT_EMERGENCY,
                                t => t,
                            },
                            admitted_at: at,
                            discharged_at: None,
                            disposition: 0,
                            primary_diagnosis: None,
                            tz: zone(&facility.time_zone),
                        },
                        admit_event_id: e.event_id.clone(),
                        discharge_event_id: None,
                        movements: Movements::default(),
                    });
                }
                self.movement(e);
            }
            Payload::Transferred(_)
            | Payload::LeaveStarted(_)
            | Payload::LeaveEnded(_)
            | Payload::AdmissionCancelled(_)
            | Payload::TransferCancelled(_)
            | Payload::DischargeCancelled(_)
            | Payload::MovementCancelled(_)
            | Payload::MovementCorrected(_) => self.movement(e),
            Payload::EmergencyVisit(v) => {
                let outcome = v.outcome;
                let facility = v.facility.as_ref();
                let time_zone = facility.map_or("", |f| f.time_zone.as_str());
                facts.ed.push(EdVisit {
                    at,
                    outcome,
                    tz: zone(time_zone),
                });
                self.new_ed.push(NewEd {
                    event_id: &e.event_id,
                    patient_id: pid,
                    facility_id: facility.map_or("", |f| f.id.as_str()),
                    at,
                    outcome: outcome as i64,
                    time_zone,
                });
                // The visit's diagnoses count for the Charlson index like any other (DESIGN §5).
                self.diagnoses(e, v.diagnoses.iter().map(|d| (&d.system, &d.code)), at);
            }
            Payload::ConditionRecorded(c) => {
                if let Some(code) = &c.diagnosis {
                    self.diagnoses(e, std::iter::once((&code.system, &code.code)), at);
                }
            }
            Payload::PatientDeceased(d) => {
                let died = d.died_at.as_ref().map_or(at, |t| t.seconds);
                self.death(pid, died, &e.event_id);
            }
            _ => return,
        }
        self.touched.insert(pid);
    }

    /// Writes the changed facts and the recomputed index stays.
    async fn write(self, conn: &mut AnyConnection, p: &str) -> anyhow::Result<()> {
        let mut upserts = Vec::new();
        for (pid, enc) in &self.encounters_changed {
            let row = self.patients[pid]
                .encounters
                .iter()
                .find(|r| r.e.encounter_id == *enc);
            match row {
                Some(r) => upserts.push(EncounterOut { pid, r }),
                None => {
                    sqlx::query(&format!(
                        "DELETE FROM {p}encounters WHERE patient_id = $1 AND encounter_id = $2"
                    ))
                    .bind(*pid)
                    .bind(enc.as_str())
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        insert_rows(
            conn,
            &format!("{p}encounters"),
            "patient_id, encounter_id, facility_id, territory, unit, setting, admit_type, admitted_at, discharged_at, \
             disposition, dx_system, dx_code, admit_event_id, discharge_event_id, time_zone, movements",
            "ON CONFLICT (patient_id, encounter_id) DO UPDATE SET facility_id = excluded.facility_id, \
             territory = excluded.territory, unit = excluded.unit, setting = excluded.setting, \
             admit_type = excluded.admit_type, admitted_at = excluded.admitted_at, \
             discharged_at = excluded.discharged_at, disposition = excluded.disposition, \
             dx_system = excluded.dx_system, dx_code = excluded.dx_code, \
             admit_event_id = excluded.admit_event_id, discharge_event_id = excluded.discharge_event_id, \
             time_zone = excluded.time_zone, movements = excluded.movements",
            &upserts,
        )
        .await?;
        insert_rows(
            conn,
            &format!("{p}ed_visits"),
            "event_id, patient_id, facility_id, at, outcome, time_zone",
            "ON CONFLICT (patient_id, event_id) DO NOTHING",
            &self.new_ed,
        )
        .await?;
        insert_rows(
            conn,
            &format!("{p}diagnoses"),
            "event_id, idx, patient_id, code_system, code, at",
            "ON CONFLICT (patient_id, event_id, idx) DO NOTHING",
            &self.new_dx,
        )
        .await?;
        for (pid, event_id) in &self.dx_gone {
            sqlx::query(&format!(
                "DELETE FROM {p}diagnoses WHERE patient_id = $1 AND event_id = $2"
            ))
            .bind(*pid)
            .bind(event_id.as_str())
            .execute(&mut *conn)
            .await?;
        }
        for ((pid, event_id), at) in &self.dx_moved {
            sqlx::query(&format!(
                "UPDATE {p}diagnoses SET at = $3 WHERE patient_id = $1 AND event_id = $2"
            ))
            .bind(*pid)
            .bind(event_id.as_str())
            .bind(*at)
            .execute(&mut *conn)
            .await?;
        }
        let mut deaths = Vec::new();
        for pid in &self.deaths_changed {
            match &self.patients[pid].death {
                Some((at, event_id)) => deaths.push(DeathOut {
                    pid,
                    at: *at,
                    event_id,
                }),
                None => {
                    sqlx::query(&format!("DELETE FROM {p}deaths WHERE patient_id = $1"))
                        .bind(*pid)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
        insert_rows(
            conn,
            &format!("{p}deaths"),
            "patient_id, died_at, event_id",
            "ON CONFLICT (patient_id) DO UPDATE SET died_at = excluded.died_at, event_id = excluded.event_id",
            &deaths,
        )
        .await?;

        let touched: Vec<&str> = self.touched.iter().copied().collect();
        execute_in(conn, &touched, |ph| {
            format!("DELETE FROM {p}index_stays WHERE patient_id IN ({ph})")
        })
        .await?;
        let mut stays = Vec::new();
        for pid in &touched {
            let f = &self.patients[pid];
            let encounters: Vec<Encounter> = f.encounters.iter().map(|r| r.e.clone()).collect();
            for s in model::index_stays(&encounters, &f.ed, &f.dx, f.death.as_ref().map(|d| d.0)) {
                stays.push(StayOut {
                    pid,
                    month: month_of(s.discharge_day),
                    s,
                });
            }
        }
        insert_rows(
            conn,
            &format!("{p}index_stays"),
            "patient_id, encounter_id, first_encounter_id, facility_id, territory, unit, disposition, \
             admit_day, discharge_day, discharge_month, discharged_at, length_of_stay, emergency, charlson, ed_visits_182, lace, \
             diagnosis_chapter, readmitted, readmit_encounter_id, readmit_day, days_to_readmission, unplanned, ed_revisit",
            "",
            &stays,
        )
        .await?;
        Ok(())
    }
}

struct EncounterOut<'a> {
    pid: &'a str,
    r: &'a EncounterRow,
}

impl SqlRow for EncounterOut<'_> {
    const COLS: usize = 16;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        let e = &self.r.e;
        let dx = e.primary_diagnosis.as_ref();
        q.bind(self.pid)
            .bind(e.encounter_id.as_str())
            .bind(e.facility_id.as_str())
            .bind(e.territory.as_str())
            .bind(e.unit.as_str())
            .bind(e.setting as i64)
            .bind(e.admit_type as i64)
            .bind(e.admitted_at)
            .bind(e.discharged_at)
            .bind(e.disposition as i64)
            .bind(dx.map(|d| d.0.clone()))
            .bind(dx.map(|d| d.1.clone()))
            .bind(self.r.admit_event_id.as_str())
            .bind(self.r.discharge_event_id.clone())
            .bind(e.tz.name())
            .bind(self.r.movements.to_text())
    }
}

impl SqlRow for NewEd<'_> {
    const COLS: usize = 6;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.event_id)
            .bind(self.patient_id)
            .bind(self.facility_id)
            .bind(self.at)
            .bind(self.outcome)
            .bind(self.time_zone)
    }
}

impl SqlRow for NewDx<'_> {
    const COLS: usize = 6;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.event_id)
            .bind(self.idx)
            .bind(self.patient_id)
            .bind(self.system)
            .bind(self.code)
            .bind(self.at)
    }
}

struct DeathOut<'a> {
    pid: &'a str,
    at: i64,
    event_id: &'a str,
}

impl SqlRow for DeathOut<'_> {
    const COLS: usize = 3;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.pid).bind(self.at).bind(self.event_id)
    }
}

struct StayOut<'a> {
    pid: &'a str,
    month: String,
    s: model::IndexStay,
}

impl SqlRow for StayOut<'_> {
    const COLS: usize = 23;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        let s = &self.s;
        let r = s.readmission.as_ref();
        q.bind(self.pid)
            .bind(s.encounter_id.as_str())
            .bind(s.first_encounter_id.as_str())
            .bind(s.facility_id.as_str())
            .bind(s.territory.as_str())
            .bind(s.unit.as_str())
            .bind(s.disposition as i64)
            .bind(s.admit_day)
            .bind(s.discharge_day)
            .bind(self.month.as_str())
            .bind(s.discharged_at)
            .bind(s.length_of_stay)
            .bind(s.emergency as i64)
            .bind(s.charlson as i64)
            .bind(s.ed_visits_182 as i64)
            .bind(s.lace as i64)
            .bind(s.diagnosis_chapter.as_str())
            .bind(r.is_some() as i64)
            .bind(r.map(|r| r.encounter_id.clone()))
            .bind(r.map(|r| r.admit_day))
            .bind(r.map(|r| r.days))
            .bind(r.is_some_and(|r| r.unplanned) as i64)
            .bind(s.ed_revisit as i64)
    }
}

fn month_of(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map_or_else(String::new, |d| d.format("%Y-%m").to_string())
}
