//! The coordination projection's tables and fold: encounters with their discharge follow-up facts
//! (letter, reconciliation, first home contact), appointments, alerts, referents and patients.
//! Only facts are stored; what is overdue depends on the time of the query (see `followup.rs`).
use crate::runtime::Projection;
use journey_proto::v1::{event::Payload, Event, Professional};
use sqlx::AnyConnection;

pub struct Coordination;

const TABLES: &[&str] = &[
    "patients",
    "encounters",
    "contacts",
    "appointments",
    "alerts",
    "referents",
    "consents",
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
        2
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn ddl(&self, p: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE {p}patients (patient_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, birth_date TEXT NOT NULL,
                 died_at BIGINT, consent BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE {p}encounters (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, facility_id TEXT NOT NULL,
                 facility_name TEXT NOT NULL, territory TEXT NOT NULL, unit TEXT NOT NULL, setting BIGINT NOT NULL,
                 had_group BIGINT NOT NULL, admit_type BIGINT NOT NULL, admitted_at BIGINT NOT NULL, discharged_at BIGINT,
                 disposition BIGINT NOT NULL, admit_event_id TEXT NOT NULL, discharge_event_id TEXT, letter_sent_at BIGINT,
                 letter_items BIGINT NOT NULL, reconciled_at BIGINT, first_contact_at BIGINT,
                 PRIMARY KEY (patient_id, encounter_id))"
            ),
            format!("CREATE INDEX {p}encounters_discharged ON {p}encounters (discharged_at)"),
            format!("CREATE INDEX {p}encounters_admit_event ON {p}encounters (admit_event_id)"),
            format!("CREATE TABLE {p}contacts (event_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, at BIGINT NOT NULL)"),
            format!("CREATE INDEX {p}contacts_patient ON {p}contacts (patient_id, at)"),
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
                 name TEXT NOT NULL, PRIMARY KEY (patient_id, role))"
            ),
            format!("CREATE INDEX {p}referents_professional ON {p}referents (professional_id)"),
            format!(
                "CREATE TABLE {p}consents (patient_id TEXT NOT NULL, organisation TEXT NOT NULL, revoked BIGINT NOT NULL,
                 at BIGINT NOT NULL, PRIMARY KEY (patient_id, organisation))"
            ),
        ]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        p: &str,
        events: &[Event],
    ) -> anyhow::Result<()> {
        for e in events {
            apply_one(conn, p, e).await?;
        }
        Ok(())
    }
}

/// Runs one statement with text/integer binds (`$1`, `$2`, … in order).
async fn exec(conn: &mut AnyConnection, sql: &str, binds: &[Bind<'_>]) -> anyhow::Result<()> {
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match b {
            Bind::T(s) => q.bind(*s),
            Bind::I(i) => q.bind(*i),
            Bind::N(i) => q.bind(*i),
        };
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

enum Bind<'a> {
    T(&'a str),
    I(i64),
    N(Option<i64>),
}
use Bind::{I, N, T};

fn display_name(family: &str, given: &str) -> String {
    format!("{} {}", family.to_uppercase(), given)
        .trim()
        .to_string()
}

async fn upsert_patient(
    conn: &mut AnyConnection,
    p: &str,
    pid: &str,
    name: &str,
    birth: &str,
) -> anyhow::Result<()> {
    exec(
        conn,
        &format!(
            "INSERT INTO {p}patients (patient_id, display_name, birth_date, died_at, consent) VALUES ($1, $2, $3, NULL, 0)
             ON CONFLICT (patient_id) DO UPDATE SET display_name = $2, birth_date = $3"
        ),
        &[T(pid), T(name), T(birth)],
    )
    .await
}

async fn referent(
    conn: &mut AnyConnection,
    p: &str,
    pid: &str,
    role: i32,
    pro: &Professional,
) -> anyhow::Result<()> {
    let role = if role == 0 { pro.role } else { role };
    exec(
        conn,
        &format!(
            "INSERT INTO {p}referents (patient_id, role, professional_id, name) VALUES ($1, $2, $3, $4)
             ON CONFLICT (patient_id, role) DO UPDATE SET professional_id = $3, name = $4"
        ),
        &[T(pid), I(role as i64), T(&pro.id), T(&pro.name)],
    )
    .await
}

/// The encounter an event without an encounter id belongs to: the patient's latest admission
/// at or before `at`.
async fn encounter_at(
    conn: &mut AnyConnection,
    p: &str,
    pid: &str,
    at: i64,
) -> anyhow::Result<String> {
    use sqlx::Row;
    let row = sqlx::query(&format!(
        "SELECT encounter_id FROM {p}encounters WHERE patient_id = $1 AND admitted_at <= $2 ORDER BY admitted_at DESC LIMIT 1"
    ))
    .bind(pid)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?.unwrap_or_default())
}

/// First home contact of a discharge: the earliest contact at or after it.
async fn refresh_first_contact(conn: &mut AnyConnection, p: &str, pid: &str) -> anyhow::Result<()> {
    exec(
        conn,
        &format!(
            "UPDATE {p}encounters SET first_contact_at = (SELECT MIN(c.at) FROM {p}contacts c
               WHERE c.patient_id = {p}encounters.patient_id AND c.at >= {p}encounters.discharged_at)
             WHERE patient_id = $1 AND discharged_at IS NOT NULL"
        ),
        &[T(pid)],
    )
    .await
}

async fn apply_one(conn: &mut AnyConnection, p: &str, e: &Event) -> anyhow::Result<()> {
    let Some(payload) = &e.payload else {
        return Ok(());
    };
    let at = secs(e.occurred_at.as_ref());
    let pid = e.patient_id.as_str();
    match payload {
        Payload::PatientRegistered(r) => {
            let name = display_name(&r.family_name, &r.given_name);
            upsert_patient(conn, p, pid, &name, &r.birth_date).await?;
            if let Some(gp) = &r.gp {
                referent(conn, p, pid, gp.role, gp).await?;
            }
        }
        Payload::IdentityUpdated(r) => {
            let name = display_name(&r.family_name, &r.given_name);
            upsert_patient(conn, p, pid, &name, &r.birth_date).await?;
            if let Some(gp) = &r.gp {
                referent(conn, p, pid, gp.role, gp).await?;
            }
        }
        Payload::Admitted(a) => {
            let f = a.facility.clone().unwrap_or_default();
            exec(
                conn,
                &format!(
                    "INSERT INTO {p}encounters (patient_id, encounter_id, facility_id, facility_name, territory, unit, setting,
                     had_group, admit_type, admitted_at, discharged_at, disposition, admit_event_id, discharge_event_id,
                     letter_sent_at, letter_items, reconciled_at, first_contact_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, 0, $11, NULL, NULL, 0, NULL, NULL)
                     ON CONFLICT (patient_id, encounter_id) DO NOTHING"
                ),
                &[
                    T(pid),
                    T(&a.encounter_id),
                    T(&f.id),
                    T(&f.name),
                    T(&f.territory),
                    T(&a.unit),
                    I(a.setting as i64),
                    I(a.had_group as i64),
                    I(a.admit_type as i64),
                    I(at),
                    T(&e.event_id),
                ],
            )
            .await?;
        }
        Payload::Transferred(t) => {
            exec(
                conn,
                &format!("UPDATE {p}encounters SET unit = $1 WHERE patient_id = $2 AND encounter_id = $3"),
                &[T(&t.to_unit), T(pid), T(&t.encounter_id)],
            )
            .await?;
        }
        Payload::Discharged(d) => {
            exec(
                conn,
                &format!(
                    "UPDATE {p}encounters SET discharged_at = $1, disposition = $2, discharge_event_id = $3
                     WHERE patient_id = $4 AND encounter_id = $5"
                ),
                &[I(at), I(d.disposition as i64), T(&e.event_id), T(pid), T(&d.encounter_id)],
            )
            .await?;
            refresh_first_contact(conn, p, pid).await?;
        }
        Payload::AdmissionCancelled(c) => {
            exec(
                conn,
                &format!("DELETE FROM {p}encounters WHERE patient_id = $1 AND admit_event_id = $2"),
                &[T(pid), T(&c.cancelled_event_id)],
            )
            .await?;
        }
        Payload::DischargeCancelled(c) => {
            exec(
                conn,
                &format!(
                    "UPDATE {p}encounters SET discharged_at = NULL, disposition = 0, discharge_event_id = NULL, first_contact_at = NULL
                     WHERE patient_id = $1 AND discharge_event_id = $2"
                ),
                &[T(pid), T(&c.cancelled_event_id)],
            )
            .await?;
        }
        Payload::DischargeLetterSent(l) => {
            let items = l
                .items_present
                .iter()
                .filter(|i| (1..=30).contains(*i))
                .fold(0i64, |m, i| m | 1 << i);
            exec(
                conn,
                &format!(
                    "UPDATE {p}encounters SET letter_sent_at = COALESCE(letter_sent_at, $1), letter_items = $2
                     WHERE patient_id = $3 AND encounter_id = $4"
                ),
                &[I(at), I(items), T(pid), T(&l.encounter_id)],
            )
            .await?;
        }
        Payload::MedicationReconciled(m) => {
            exec(
                conn,
                &format!(
                    "UPDATE {p}encounters SET reconciled_at = COALESCE(reconciled_at, $1) WHERE patient_id = $2 AND encounter_id = $3"
                ),
                &[I(at), T(pid), T(&m.encounter_id)],
            )
            .await?;
        }
        Payload::HomeVisitRecorded(_) | Payload::ContactMade(_) => {
            exec(
                conn,
                &format!("INSERT INTO {p}contacts (event_id, patient_id, at) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING"),
                &[T(&e.event_id), T(pid), I(at)],
            )
            .await?;
            refresh_first_contact(conn, p, pid).await?;
        }
        Payload::AppointmentScheduled(a) => {
            let encounter = if a.encounter_id.is_empty() {
                encounter_at(conn, p, pid, at).await?
            } else {
                a.encounter_id.clone()
            };
            let with = a.with.as_ref().map(|w| w.name.as_str()).unwrap_or("");
            exec(
                conn,
                &format!(
                    "INSERT INTO {p}appointments (patient_id, appointment_id, encounter_id, kind, due_at, state, with_name)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (patient_id, appointment_id) DO UPDATE SET due_at = $5, kind = $4, with_name = $7"
                ),
                &[
                    T(pid),
                    T(&a.appointment_id),
                    T(&encounter),
                    T(&a.kind),
                    I(secs(a.due_at.as_ref())),
                    I(APPT_SCHEDULED),
                    T(with),
                ],
            )
            .await?;
        }
        Payload::AppointmentCompleted(a) => {
            appointment_state(conn, p, pid, &a.appointment_id, APPT_COMPLETED).await?
        }
        Payload::AppointmentMissed(a) => {
            appointment_state(conn, p, pid, &a.appointment_id, APPT_MISSED).await?
        }
        Payload::AlertRaised(a) => {
            exec(
                conn,
                &format!(
                    "INSERT INTO {p}alerts (patient_id, alert_id, severity, rule, reason, raised_at, acknowledged_at, resolved_at)
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL) ON CONFLICT (patient_id, alert_id) DO NOTHING"
                ),
                &[T(pid), T(&a.alert_id), I(a.severity as i64), T(&a.rule), T(&a.reason), I(at)],
            )
            .await?;
        }
        Payload::AlertAcknowledged(a) => {
            exec(
                conn,
                &format!(
                    "UPDATE {p}alerts SET acknowledged_at = COALESCE(acknowledged_at, $1) WHERE patient_id = $2 AND alert_id = $3"
                ),
                &[I(at), T(pid), T(&a.alert_id)],
            )
            .await?;
        }
        Payload::AlertResolved(a) => {
            exec(
                conn,
                &format!(
                    "UPDATE {p}alerts SET resolved_at = COALESCE(resolved_at, $1) WHERE patient_id = $2 AND alert_id = $3"
                ),
                &[I(at), T(pid), T(&a.alert_id)],
            )
            .await?;
        }
        Payload::ReferentAssigned(r) => {
            if let Some(pro) = &r.professional {
                referent(conn, p, pid, r.role, pro).await?;
            }
        }
        Payload::CarePlanEstablished(c) => {
            for pro in &c.referents {
                referent(conn, p, pid, pro.role, pro).await?;
            }
        }
        Payload::ConsentGiven(_) | Payload::ConsentRevoked(_) => {
            let (given, orgs) = match payload {
                Payload::ConsentGiven(c) => (true, &c.organisations),
                Payload::ConsentRevoked(c) => (false, &c.organisations),
                _ => unreachable!(),
            };
            exec(
                conn,
                &format!(
                    "INSERT INTO {p}patients (patient_id, display_name, birth_date, died_at, consent) VALUES ($1, '', '', NULL, $2)
                     ON CONFLICT (patient_id) DO UPDATE SET consent = $2"
                ),
                &[T(pid), I(if given { 1 } else { -1 })],
            )
            .await?;
            // Per organisation ("*" = every organisation): the last word wins.
            let all = [String::from(ANY_ORGANISATION)];
            let orgs = if orgs.is_empty() { &all[..] } else { &orgs[..] };
            for org in orgs {
                exec(
                    conn,
                    &format!(
                        "INSERT INTO {p}consents (patient_id, organisation, revoked, at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (patient_id, organisation) DO UPDATE SET revoked = $3, at = $4"
                    ),
                    &[T(pid), T(org), I(i64::from(!given)), I(at)],
                )
                .await?;
            }
        }
        Payload::PatientDeceased(d) => {
            let died = d.died_at.as_ref().map_or(at, |t| t.seconds);
            exec(
                conn,
                &format!(
                    "INSERT INTO {p}patients (patient_id, display_name, birth_date, died_at, consent) VALUES ($1, '', '', $2, 0)
                     ON CONFLICT (patient_id) DO UPDATE SET died_at = $2"
                ),
                &[T(pid), N(Some(died))],
            )
            .await?;
        }
        _ => {}
    }
    Ok(())
}

async fn appointment_state(
    conn: &mut AnyConnection,
    p: &str,
    pid: &str,
    appointment_id: &str,
    state: i64,
) -> anyhow::Result<()> {
    exec(
        conn,
        &format!(
            "UPDATE {p}appointments SET state = $1 WHERE patient_id = $2 AND appointment_id = $3"
        ),
        &[I(state), T(pid), T(appointment_id)],
    )
    .await
}
