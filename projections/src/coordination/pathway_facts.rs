//! What the care pathways' steps are derived from (`pathway_facts` table, one or more rows per
//! event, never changed): the diagnoses sent with a stay's admission and discharge, contacts and
//! visits with the professional's role, appointments with the professional's role and their
//! completion. Only facts are stored: the templates (`pathways.rs`) are applied at the time of the
//! query, so a new templates file changes the due items without a rebuild.
use super::{
    followup::PathwayDue,
    pathways::{self, Care, Pathway, Pathways},
};
use crate::sql::{insert_rows, select_in, SqlRow, Q};
use journey_proto::v1::{event::Payload, Code, Event};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;

pub const TABLE: &str = "pathway_facts";

const DIAGNOSIS: i64 = 1;
const CONTACT: i64 = 2;
const APPOINTMENT_SCHEDULED: i64 = 3;
const APPOINTMENT_COMPLETED: i64 = 4;

pub fn ddl(p: &str) -> String {
    format!(
        "CREATE TABLE {p}pathway_facts (patient_id TEXT NOT NULL, event_id TEXT NOT NULL, seq BIGINT NOT NULL,
         position BIGINT NOT NULL, kind BIGINT NOT NULL, encounter_id TEXT NOT NULL, ref_id TEXT NOT NULL,
         code TEXT NOT NULL, role BIGINT NOT NULL, at BIGINT NOT NULL,
         PRIMARY KEY (patient_id, event_id, seq))"
    )
}

#[derive(Default, Clone, Copy)]
struct FactRow<'e> {
    patient_id: &'e str,
    event_id: &'e str,
    seq: i64,
    position: i64,
    kind: i64,
    encounter_id: &'e str,
    ref_id: &'e str,
    code: &'e str,
    role: i64,
    at: i64,
}

impl SqlRow for FactRow<'_> {
    const COLS: usize = 10;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.patient_id)
            .bind(self.event_id)
            .bind(self.seq)
            .bind(self.position)
            .bind(self.kind)
            .bind(self.encounter_id)
            .bind(self.ref_id)
            .bind(self.code)
            .bind(self.role)
            .bind(self.at)
    }
}

/// One row per diagnosis of a movement.
fn diagnoses<'e>(rows: &mut Vec<FactRow<'e>>, base: &FactRow<'e>, enc: &'e str, codes: &'e [Code]) {
    for (i, c) in codes.iter().enumerate() {
        rows.push(FactRow {
            seq: i as i64,
            kind: DIAGNOSIS,
            encounter_id: enc,
            code: &c.code,
            ..*base
        });
    }
}

/// Records the batch's facts (an event seen again is left as it is).
pub async fn write(conn: &mut AnyConnection, p: &str, events: &[Event]) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for e in events {
        let base = FactRow {
            patient_id: &e.patient_id,
            event_id: &e.event_id,
            position: e.position as i64,
            at: e.occurred_at.as_ref().map_or(0, |t| t.seconds),
            ..Default::default()
        };
        match &e.payload {
            Some(Payload::Admitted(a)) => {
                diagnoses(&mut rows, &base, &a.encounter_id, &a.diagnoses)
            }
            Some(Payload::Discharged(d)) => {
                diagnoses(&mut rows, &base, &d.encounter_id, &d.diagnoses)
            }
            Some(Payload::HomeVisitRecorded(v)) => rows.push(FactRow {
                kind: CONTACT,
                role: v.professional.as_ref().map_or(0, |p| p.role.into()),
                ..base
            }),
            Some(Payload::ContactMade(c)) => rows.push(FactRow {
                kind: CONTACT,
                role: c.professional.as_ref().map_or(0, |p| p.role.into()),
                ..base
            }),
            Some(Payload::AppointmentScheduled(a)) => rows.push(FactRow {
                kind: APPOINTMENT_SCHEDULED,
                encounter_id: &a.encounter_id,
                ref_id: &a.appointment_id,
                role: a.with.as_ref().map_or(0, |p| p.role.into()),
                at: a.due_at.as_ref().map_or(0, |t| t.seconds),
                ..base
            }),
            Some(Payload::AppointmentCompleted(a)) => rows.push(FactRow {
                kind: APPOINTMENT_COMPLETED,
                ref_id: &a.appointment_id,
                ..base
            }),
            _ => {}
        }
    }
    insert_rows(
        conn,
        &format!("{p}pathway_facts"),
        "patient_id, event_id, seq, position, kind, encounter_id, ref_id, code, role, at",
        "ON CONFLICT (patient_id, event_id, seq) DO NOTHING",
        &rows,
    )
    .await?;
    Ok(())
}

/// One patient's facts, gathered.
#[derive(Debug, Default)]
pub struct PatientFacts {
    /// (encounter, code)
    diagnoses: Vec<(String, String)>,
    contacts: Vec<(i64, i32)>,
    /// appointment id → (position, due time, role) of its latest scheduling.
    scheduled: HashMap<String, (i64, i64, i32)>,
    completed: Vec<String>,
}

impl PatientFacts {
    /// The pathway of the patient's encounter `enc` under `templates`, and the care its steps
    /// are done by.
    pub fn pathway<'p>(&self, templates: &'p Pathways, enc: &str) -> (&'p Pathway, Care) {
        let pathway = templates.of(self
            .diagnoses
            .iter()
            .filter(|(e, _)| e == enc)
            .map(|(_, c)| c.as_str()));
        let care = Care {
            contacts: self.contacts.clone(),
            appointments_completed: self
                .completed
                .iter()
                .filter_map(|id| self.scheduled.get(id))
                .map(|(_, due, role)| (*due, *role))
                .collect(),
        };
        (pathway, care)
    }

    /// The steps of encounter `enc` discharged at `discharged_at`, as the follow-up counts them.
    pub fn dues(&self, templates: &Pathways, enc: &str, discharged_at: i64) -> Vec<PathwayDue> {
        let (pathway, care) = self.pathway(templates, enc);
        dues(pathway, &care, discharged_at)
    }
}

/// The steps of `pathway` for a discharge at `discharged_at` whose stay's care is `care`, as the
/// follow-up counts them.
pub fn dues(pathway: &Pathway, care: &Care, discharged_at: i64) -> Vec<PathwayDue> {
    // Whether a step is done does not depend on the time: derived at the start of time.
    pathways::steps(pathway, discharged_at, care, i64::MIN)
        .into_iter()
        .map(|s| PathwayDue {
            due_at: s.due_at,
            done_at: s.done_at,
        })
        .collect()
}

/// The facts of the patients `keys` (absent ones have none).
pub async fn load(
    conn: &mut AnyConnection,
    p: &str,
    keys: &[&str],
) -> Result<HashMap<String, PatientFacts>, sqlx::Error> {
    let mut facts: HashMap<String, PatientFacts> = HashMap::new();
    for r in select_in(conn, keys, |ph| {
        format!(
            "SELECT patient_id, kind, encounter_id, ref_id, code, role, at, position FROM {p}pathway_facts
             WHERE patient_id IN ({ph})"
        )
    })
    .await?
    {
        let f = facts.entry(r.try_get(0)?).or_default();
        let role = r.try_get::<i64, _>(5)? as i32;
        let at: i64 = r.try_get(6)?;
        match r.try_get::<i64, _>(1)? {
            DIAGNOSIS => f.diagnoses.push((r.try_get(2)?, r.try_get(4)?)),
            CONTACT => f.contacts.push((at, role)),
            APPOINTMENT_SCHEDULED => {
                let position: i64 = r.try_get(7)?;
                let latest = f
                    .scheduled
                    .entry(r.try_get(3)?)
                    .or_insert((position, at, role));
                if position >= latest.0 {
                    *latest = (position, at, role);
                }
            }
            APPOINTMENT_COMPLETED => f.completed.push(r.try_get(3)?),
            _ => {}
        }
    }
    Ok(facts)
}
