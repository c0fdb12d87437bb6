//! The coordination rows a batch reads and writes: loaded for the patients the batch concerns
//! (a few `IN (…)` queries), changed in memory by the fold, written back with multi-row upserts.
//! Each encounter is written with its [`Standing`] (what SQL ranks the worklist by), derived from
//! the patient's rows as they stand at the end of the batch.
use super::{
    directory,
    fold::{APPT_COMPLETED, APPT_MISSED},
    followup::{self, AppointmentState, Facts},
    pathway_facts::PatientFacts,
    pathways::Pathways,
    queries::name_key,
    urgency::{self, Standing},
};
use crate::movements::Movements;
use crate::sql::{insert_rows, select_in, SqlRow, Q};
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Default)]
pub struct PatientRow {
    pub display_name: String,
    pub birth_date: String,
    pub sex: i64,
    /// The INS as last said, and the identity's status (`IdentityStatus`): the INS is shown only
    /// once the identity is validated.
    pub ins: String,
    pub identity_status: i64,
    /// The patient's id at its hospital (IPP), as registered.
    pub local_id: String,
    pub died_at: Option<i64>,
    pub consent: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncounterRow {
    pub encounter_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub territory: String,
    /// The facility's time zone (IANA name; empty: none said).
    pub time_zone: String,
    pub unit: String,
    pub setting: i64,
    pub had_group: i64,
    pub admit_type: i64,
    pub admitted_at: i64,
    pub discharged_at: Option<i64>,
    pub disposition: i64,
    pub admit_event_id: String,
    pub discharge_event_id: Option<String>,
    pub letter_sent_at: Option<i64>,
    pub letter_items: i64,
    pub reconciled_at: Option<i64>,
    pub first_contact_at: Option<i64>,
    /// The live movements the stay fields are derived from (`crate::movements`).
    pub movements: Movements,
}

#[derive(Debug, Clone)]
pub struct Contact {
    pub event_id: String,
    pub at: i64,
}

#[derive(Debug, Clone)]
pub struct AppointmentRow {
    pub appointment_id: String,
    pub encounter_id: String,
    pub kind: String,
    pub due_at: i64,
    pub state: i64,
    pub with_name: String,
}

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub alert_id: String,
    pub severity: i64,
    pub rule: String,
    pub reason: String,
    pub raised_at: i64,
    pub acknowledged_at: Option<i64>,
    pub resolved_at: Option<i64>,
}

/// An encounter as written: its row, whether it is the patient's latest, whether the patient
/// died, its standing.
type Written = (EncounterRow, bool, bool, Standing);

/// One patient's care rows (encounters, contacts, appointments, alerts), loaded together.
#[derive(Debug, Default)]
pub struct Care {
    pub encounters: Vec<EncounterRow>,
    /// The encounters as loaded (only those that differ at the end are written back).
    stored: HashMap<String, Written>,
    pub contacts: Vec<Contact>,
    pub appointments: Vec<AppointmentRow>,
    pub alerts: Vec<AlertRow>,
    /// What the care pathway's steps are derived from (`pathway_facts.rs`).
    pub pathway: PatientFacts,
}

impl Care {
    pub fn encounter(&mut self, id: &str) -> Option<&mut EncounterRow> {
        self.encounters.iter_mut().find(|r| r.encounter_id == id)
    }

    /// First home contact of each discharge: the earliest contact at or after it (the patient's
    /// contacts must have been loaded).
    pub fn refresh_first_contacts(&mut self) {
        for e in &mut self.encounters {
            if let Some(d) = e.discharged_at {
                e.first_contact_at = self
                    .contacts
                    .iter()
                    .map(|c| c.at)
                    .filter(|at| *at >= d)
                    .min();
            }
        }
    }

    /// The follow-up facts of encounter `e` (appointments of the encounter, alerts of the patient,
    /// the steps of its care pathway under `templates`).
    fn facts(&self, e: &EncounterRow, templates: &Pathways) -> Facts {
        Facts {
            discharged_at: e.discharged_at.unwrap_or_default(),
            letter_sent_at: e.letter_sent_at,
            letter_items: e.letter_items as u32,
            reconciled_at: e.reconciled_at,
            first_contact_at: e.first_contact_at,
            appointments: self
                .appointments
                .iter()
                .filter(|a| a.encounter_id == e.encounter_id)
                .map(appointment)
                .collect(),
            alerts: self.alerts.iter().map(alert).collect(),
            pathway: e.discharged_at.map_or_else(Vec::new, |d| {
                self.pathway.dues(templates, &e.encounter_id, d)
            }),
        }
    }
}

pub fn appointment(a: &AppointmentRow) -> followup::Appointment {
    followup::Appointment {
        appointment_id: a.appointment_id.clone(),
        kind: a.kind.clone(),
        due_at: a.due_at,
        state: match a.state {
            APPT_COMPLETED => AppointmentState::Completed,
            APPT_MISSED => AppointmentState::Missed,
            _ => AppointmentState::Scheduled,
        },
    }
}

pub fn alert(a: &AlertRow) -> followup::Alert {
    followup::Alert {
        alert_id: a.alert_id.clone(),
        severity: a.severity as i32,
        reason: a.reason.clone(),
        raised_at: a.raised_at,
        acknowledged_at: a.acknowledged_at,
        resolved_at: a.resolved_at,
    }
}

/// The `patients` rows of `keys` (absent ones are not in the map): those of the batch's patient
/// events, and those of its care events (whether the patient died is written with encounters).
pub async fn load_patients(
    conn: &mut AnyConnection,
    p: &str,
    keys: &[&str],
) -> anyhow::Result<HashMap<String, PatientRow>> {
    let mut out = HashMap::with_capacity(keys.len());
    for r in select_in(conn, keys, |ph| {
        format!("SELECT patient_id, display_name, birth_date, died_at, consent, sex, ins, identity_status, local_id FROM {p}patients WHERE patient_id IN ({ph})")
    })
    .await?
    {
        out.insert(
            r.try_get(0)?,
            PatientRow {
                display_name: r.try_get(1)?,
                birth_date: r.try_get(2)?,
                died_at: r.try_get(3)?,
                consent: r.try_get(4)?,
                sex: r.try_get(5)?,
                ins: r.try_get(6)?,
                identity_status: r.try_get(7)?,
                local_id: r.try_get(8)?,
            },
        );
    }
    Ok(out)
}

/// The care rows of `keys` (every key gets an entry, empty if the patient has none); contacts
/// only for `contact_keys`, the patients whose first contact the batch may change.
pub async fn load_care<'k>(
    conn: &mut AnyConnection,
    p: &str,
    keys: &[&'k str],
    contact_keys: &[&str],
) -> anyhow::Result<HashMap<&'k str, Care>> {
    let mut out: HashMap<&'k str, Care> = keys.iter().map(|k| (*k, Care::default())).collect();
    for r in select_in(conn, keys, |ph| {
        format!(
            "SELECT patient_id, encounter_id, facility_id, facility_name, territory, unit, setting, had_group, admit_type,
             admitted_at, discharged_at, disposition, admit_event_id, discharge_event_id, letter_sent_at, letter_items,
             reconciled_at, first_contact_at, latest, deceased, movements, {}, time_zone FROM {p}encounters WHERE patient_id IN ({ph})",
            urgency::COLUMNS
        )
    })
    .await?
    {
        let pid: String = r.try_get(0)?;
        if let Some(c) = out.get_mut(pid.as_str()) {
            let e = EncounterRow {
                encounter_id: r.try_get(1)?,
                facility_id: r.try_get(2)?,
                facility_name: r.try_get(3)?,
                territory: r.try_get(4)?,
                unit: r.try_get(5)?,
                setting: r.try_get(6)?,
                had_group: r.try_get(7)?,
                admit_type: r.try_get(8)?,
                admitted_at: r.try_get(9)?,
                discharged_at: r.try_get(10)?,
                disposition: r.try_get(11)?,
                admit_event_id: r.try_get(12)?,
                discharge_event_id: r.try_get(13)?,
                letter_sent_at: r.try_get(14)?,
                letter_items: r.try_get(15)?,
                reconciled_at: r.try_get(16)?,
                first_contact_at: r.try_get(17)?,
                movements: Movements::from_text(&r.try_get::<String, _>(20)?),
                // After the standing's columns.
                time_zone: r.try_get(21 + urgency::COLUMNS.split(", ").count())?,
            };
            let latest = r.try_get::<i64, _>(18)? == 1;
            let deceased = r.try_get::<i64, _>(19)? == 1;
            let standing = Standing::from_row(&r, 21)?;
            c.stored.insert(
                e.encounter_id.clone(),
                (e.clone(), latest, deceased, standing),
            );
            c.encounters.push(e);
        }
    }
    for r in select_in(conn, contact_keys, |ph| {
        format!("SELECT patient_id, event_id, at FROM {p}contacts WHERE patient_id IN ({ph})")
    })
    .await?
    {
        let pid: String = r.try_get(0)?;
        if let Some(c) = out.get_mut(pid.as_str()) {
            c.contacts.push(Contact {
                event_id: r.try_get(1)?,
                at: r.try_get(2)?,
            });
        }
    }
    for r in select_in(conn, keys, |ph| {
        format!(
            "SELECT patient_id, appointment_id, encounter_id, kind, due_at, state, with_name FROM {p}appointments
             WHERE patient_id IN ({ph})"
        )
    })
    .await?
    {
        let pid: String = r.try_get(0)?;
        if let Some(c) = out.get_mut(pid.as_str()) {
            c.appointments.push(AppointmentRow {
                appointment_id: r.try_get(1)?,
                encounter_id: r.try_get(2)?,
                kind: r.try_get(3)?,
                due_at: r.try_get(4)?,
                state: r.try_get(5)?,
                with_name: r.try_get(6)?,
            });
        }
    }
    for r in select_in(conn, keys, |ph| {
        format!(
            "SELECT patient_id, alert_id, severity, rule, reason, raised_at, acknowledged_at, resolved_at FROM {p}alerts
             WHERE patient_id IN ({ph})"
        )
    })
    .await?
    {
        let pid: String = r.try_get(0)?;
        if let Some(c) = out.get_mut(pid.as_str()) {
            c.alerts.push(AlertRow {
                alert_id: r.try_get(1)?,
                severity: r.try_get(2)?,
                rule: r.try_get(3)?,
                reason: r.try_get(4)?,
                raised_at: r.try_get(5)?,
                acknowledged_at: r.try_get(6)?,
                resolved_at: r.try_get(7)?,
            });
        }
    }
    Ok(out)
}

/// What a batch changed, keyed by patient, to be written back.
#[derive(Default)]
pub struct Changes<'e> {
    pub patients: BTreeSet<&'e str>,
    /// Patients whose encounters are all written back (with their standing recomputed).
    pub care: BTreeSet<&'e str>,
    /// Encounters cancelled (deleted unless admitted again later in the batch).
    pub encounters_gone: BTreeSet<(&'e str, String)>,
    pub contacts: Vec<(&'e str, &'e str, i64)>,
    pub appointments: BTreeSet<(&'e str, String)>,
    pub alerts: BTreeSet<(&'e str, String)>,
    /// (patient, role) → (professional id, name): the last word wins.
    pub referents: BTreeMap<(&'e str, i64), (&'e str, &'e str, &'e str)>,
    /// (patient, organisation) → (revoked, at): the last word wins.
    pub consents: BTreeMap<(&'e str, &'e str), (i64, i64)>,
}

/// Writes back what changed.
pub async fn write(
    conn: &mut AnyConnection,
    p: &str,
    patients: &HashMap<String, PatientRow>,
    care: &HashMap<&str, Care>,
    changes: &Changes<'_>,
    templates: &Pathways,
) -> anyhow::Result<()> {
    let rows: Vec<PatientOut> = changes
        .patients
        .iter()
        .filter_map(|pid| patients.get(*pid).map(|r| PatientOut { pid, r }))
        .collect();
    insert_rows(
        conn,
        &format!("{p}patients"),
        "patient_id, display_name, birth_date, died_at, consent, sex, ins, identity_status, local_id, name_key",
        "ON CONFLICT (patient_id) DO UPDATE SET display_name = excluded.display_name, \
         birth_date = excluded.birth_date, died_at = excluded.died_at, consent = excluded.consent, \
         sex = excluded.sex, ins = excluded.ins, identity_status = excluded.identity_status, \
         local_id = excluded.local_id, name_key = excluded.name_key",
        &rows,
    )
    .await?;

    for (pid, enc) in &changes.encounters_gone {
        if care[pid].encounters.iter().all(|e| e.encounter_id != *enc) {
            sqlx::query(&format!(
                "DELETE FROM {p}encounters WHERE patient_id = $1 AND encounter_id = $2"
            ))
            .bind(*pid)
            .bind(enc.as_str())
            .execute(&mut *conn)
            .await?;
        }
    }
    let mut rows = Vec::new();
    for pid in &changes.care {
        let c = &care[pid];
        let latest = c.encounters.iter().map(|e| e.admitted_at).max();
        let deceased = patients.get(*pid).is_some_and(|r| r.died_at.is_some());
        for e in &c.encounters {
            let out = EncounterOut {
                pid,
                e,
                latest: Some(e.admitted_at) == latest,
                deceased,
                standing: Standing::of(&c.facts(e, templates), e.discharged_at.is_some()),
            };
            let unchanged =
                c.stored
                    .get(&e.encounter_id)
                    .is_some_and(|(row, latest, deceased, standing)| {
                        row == e
                            && *latest == out.latest
                            && *deceased == out.deceased
                            && *standing == out.standing
                    });
            if !unchanged {
                rows.push(out);
            }
        }
    }
    insert_rows(
        conn,
        &format!("{p}encounters"),
        &format!(
            "patient_id, encounter_id, facility_id, facility_name, territory, unit, setting, had_group, admit_type, \
             admitted_at, discharged_at, disposition, admit_event_id, discharge_event_id, letter_sent_at, letter_items, \
             reconciled_at, first_contact_at, latest, deceased, movements, {}, time_zone",
            urgency::COLUMNS
        ),
        &format!(
            "ON CONFLICT (patient_id, encounter_id) DO UPDATE SET facility_id = excluded.facility_id, \
             facility_name = excluded.facility_name, territory = excluded.territory, unit = excluded.unit, \
             setting = excluded.setting, had_group = excluded.had_group, admit_type = excluded.admit_type, \
             admitted_at = excluded.admitted_at, discharged_at = excluded.discharged_at, \
             disposition = excluded.disposition, admit_event_id = excluded.admit_event_id, \
             discharge_event_id = excluded.discharge_event_id, letter_sent_at = excluded.letter_sent_at, \
             letter_items = excluded.letter_items, reconciled_at = excluded.reconciled_at, \
             first_contact_at = excluded.first_contact_at, latest = excluded.latest, \
             deceased = excluded.deceased, movements = excluded.movements, time_zone = excluded.time_zone, \
             urgency_until = 0, {}",
            urgency::COLUMNS
                .split(", ")
                .map(|c| format!("{c} = excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        &rows,
    )
    .await?;
    let places: BTreeSet<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r.e.facility_id.as_str(),
                r.e.facility_name.as_str(),
                r.e.unit.as_str(),
            )
        })
        .collect();
    let professionals: BTreeSet<(&str, &str)> = changes
        .referents
        .values()
        .map(|&(id, name, _)| (id, name))
        .collect();
    directory::write(conn, p, &places, &professionals).await?;

    insert_rows(
        conn,
        &format!("{p}contacts"),
        "patient_id, event_id, at",
        "ON CONFLICT (patient_id, event_id) DO NOTHING",
        &changes.contacts,
    )
    .await?;

    let rows: Vec<AppointmentOut> = changes
        .appointments
        .iter()
        .filter_map(|(pid, id)| {
            care[pid]
                .appointments
                .iter()
                .find(|a| a.appointment_id == *id)
                .map(|a| AppointmentOut { pid, a })
        })
        .collect();
    insert_rows(
        conn,
        &format!("{p}appointments"),
        "patient_id, appointment_id, encounter_id, kind, due_at, state, with_name",
        "ON CONFLICT (patient_id, appointment_id) DO UPDATE SET encounter_id = excluded.encounter_id, \
         kind = excluded.kind, due_at = excluded.due_at, state = excluded.state, with_name = excluded.with_name",
        &rows,
    )
    .await?;

    let rows: Vec<AlertOut> = changes
        .alerts
        .iter()
        .filter_map(|(pid, id)| {
            care[pid]
                .alerts
                .iter()
                .find(|a| a.alert_id == *id)
                .map(|a| AlertOut { pid, a })
        })
        .collect();
    insert_rows(
        conn,
        &format!("{p}alerts"),
        "patient_id, alert_id, severity, rule, reason, raised_at, acknowledged_at, resolved_at",
        "ON CONFLICT (patient_id, alert_id) DO UPDATE SET severity = excluded.severity, rule = excluded.rule, \
         reason = excluded.reason, raised_at = excluded.raised_at, acknowledged_at = excluded.acknowledged_at, \
         resolved_at = excluded.resolved_at",
        &rows,
    )
    .await?;

    let rows: Vec<_> = changes.referents.iter().collect();
    insert_rows(
        conn,
        &format!("{p}referents"),
        "patient_id, role, professional_id, name, phone",
        "ON CONFLICT (patient_id, role) DO UPDATE SET professional_id = excluded.professional_id, name = excluded.name, \
         phone = excluded.phone",
        &rows,
    )
    .await?;
    let rows: Vec<_> = changes.consents.iter().collect();
    insert_rows(
        conn,
        &format!("{p}consents"),
        "patient_id, organisation, revoked, at",
        "ON CONFLICT (patient_id, organisation) DO UPDATE SET revoked = excluded.revoked, at = excluded.at",
        &rows,
    )
    .await?;
    Ok(())
}

struct PatientOut<'a> {
    pid: &'a str,
    r: &'a PatientRow,
}

impl SqlRow for PatientOut<'_> {
    const COLS: usize = 10;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.pid)
            .bind(self.r.display_name.as_str())
            .bind(self.r.birth_date.as_str())
            .bind(self.r.died_at)
            .bind(self.r.consent)
            .bind(self.r.sex)
            .bind(self.r.ins.as_str())
            .bind(self.r.identity_status)
            .bind(self.r.local_id.as_str())
            .bind(name_key(&self.r.display_name))
    }
}

struct EncounterOut<'a> {
    pid: &'a str,
    e: &'a EncounterRow,
    latest: bool,
    deceased: bool,
    standing: Standing,
}

impl SqlRow for EncounterOut<'_> {
    const COLS: usize = 34;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        let (e, s) = (self.e, &self.standing);
        q.bind(self.pid)
            .bind(e.encounter_id.as_str())
            .bind(e.facility_id.as_str())
            .bind(e.facility_name.as_str())
            .bind(e.territory.as_str())
            .bind(e.unit.as_str())
            .bind(e.setting)
            .bind(e.had_group)
            .bind(e.admit_type)
            .bind(e.admitted_at)
            .bind(e.discharged_at)
            .bind(e.disposition)
            .bind(e.admit_event_id.as_str())
            .bind(e.discharge_event_id.as_deref())
            .bind(e.letter_sent_at)
            .bind(e.letter_items)
            .bind(e.reconciled_at)
            .bind(e.first_contact_at)
            .bind(i64::from(self.latest))
            .bind(i64::from(self.deceased))
            .bind(e.movements.to_text())
            .bind(s.letter_due_at)
            .bind(s.first_contact_due_at)
            .bind(s.reconciliation_due_at)
            .bind(i64::from(s.letter_complete))
            .bind(i64::from(s.appointments_missed))
            .bind(s.earliest_scheduled_at)
            .bind(i64::from(s.alerts_critical))
            .bind(i64::from(s.alerts_high))
            .bind(i64::from(s.alerts_other))
            .bind(i64::from(s.alerts_unacknowledged))
            .bind(i64::from(s.alert_max_severity))
            .bind(s.pathway_due_at)
            .bind(e.time_zone.as_str())
    }
}

impl SqlRow for (&str, &str, i64) {
    const COLS: usize = 3;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.0).bind(self.1).bind(self.2)
    }
}

struct AppointmentOut<'a> {
    pid: &'a str,
    a: &'a AppointmentRow,
}

impl SqlRow for AppointmentOut<'_> {
    const COLS: usize = 7;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.pid)
            .bind(self.a.appointment_id.as_str())
            .bind(self.a.encounter_id.as_str())
            .bind(self.a.kind.as_str())
            .bind(self.a.due_at)
            .bind(self.a.state)
            .bind(self.a.with_name.as_str())
    }
}

struct AlertOut<'a> {
    pid: &'a str,
    a: &'a AlertRow,
}

impl SqlRow for AlertOut<'_> {
    const COLS: usize = 8;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        q.bind(self.pid)
            .bind(self.a.alert_id.as_str())
            .bind(self.a.severity)
            .bind(self.a.rule.as_str())
            .bind(self.a.reason.as_str())
            .bind(self.a.raised_at)
            .bind(self.a.acknowledged_at)
            .bind(self.a.resolved_at)
    }
}

impl SqlRow for (&(&str, i64), &(&str, &str, &str)) {
    const COLS: usize = 5;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        let ((pid, role), (pro, name, phone)) = *self;
        q.bind(*pid).bind(*role).bind(*pro).bind(*name).bind(*phone)
    }
}

impl SqlRow for (&(&str, &str), &(i64, i64)) {
    const COLS: usize = 4;
    fn bind<'q>(&'q self, q: Q<'q>) -> Q<'q> {
        let ((pid, org), (revoked, at)) = *self;
        q.bind(*pid).bind(*org).bind(*revoked).bind(*at)
    }
}
