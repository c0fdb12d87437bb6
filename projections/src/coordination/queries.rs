//! Queries over the coordination tables of the live generation: the worklist, what its rows and
//! a patient's page share (a discharge's columns, [`attach`]), finding a patient. Rows come from SQL; the follow-up of each discharge
//! returned is derived in Rust at the time of the query (`followup::follow_up`); the worklist is
//! filtered, ordered and paged in SQL by the same rules (`urgency.rs`).
use super::{
    directory,
    fold::{APPT_COMPLETED, APPT_MISSED},
    followup::{self, Alert, Appointment, AppointmentState, Facts, FollowUp},
    urgency,
};
use crate::sql::{bytewise, contains_pattern, key_pattern, select_in, Q};
use chrono::NaiveDate;
use journey_proto::v1::IdentityStatus;
use sqlx::{any::AnyRow, AnyConnection, AnyPool, Row};
use std::collections::HashMap;

/// Dispositions after which a patient is followed at home or in a care home: not death, not a
/// transfer to another acute hospital, not against medical advice with nobody to follow.
/// (Used with an `e.` alias in front.)
pub const FOLLOWED: &str = "disposition IN (1, 2, 3, 4, 7, 8)";
/// Inpatient and HAD stays (day surgery is not followed).
pub const FOLLOWED_SETTINGS: &str = "setting IN (1, 3)";

/// The encounters the worklist may list, whatever the time (an SQL condition on `e`): each
/// patient's latest, discharged alive to a followed disposition from a followed setting. The
/// worklist's indexes hold these rows only.
pub fn followed_rows() -> String {
    format!(
        "e.latest = 1 AND e.discharged_at IS NOT NULL AND e.deceased = 0 AND e.{FOLLOWED} AND e.{FOLLOWED_SETTINGS}"
    )
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub facility_id: String,
    pub territory: String,
    pub referent_id: String,
    /// Hide the patients who revoked their consent for this organisation (or for all).
    pub organisation: Option<String>,
    pub overdue_only: bool,
    pub min_alert_severity: i32,
    pub window_days: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Referent {
    pub role: i32,
    pub professional_id: String,
    pub name: String,
    pub phone: String,
}

/// The referent in the columns `role, professional_id, name, phone` from `at`.
pub(super) fn referent(r: &AnyRow, at: usize) -> Result<Referent, sqlx::Error> {
    Ok(Referent {
        role: r.try_get::<i64, _>(at)? as i32,
        professional_id: r.try_get(at + 1)?,
        name: r.try_get(at + 2)?,
        phone: r.try_get(at + 3)?,
    })
}

#[derive(Debug, Clone)]
pub struct Discharge {
    pub patient_id: String,
    pub display_name: String,
    /// YYYY-MM-DD, as the patient's identity gives it.
    pub birth_date: String,
    pub sex: i32,
    /// The INS, once the identity is validated; else empty.
    pub ins: String,
    pub encounter_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub territory: String,
    pub unit: String,
    pub setting: i32,
    pub disposition: i32,
    pub consent: bool,
    pub facts: Facts,
    pub referents: Vec<Referent>,
    /// The care pathway of the stay and the care its steps are done by ([`attach`]), from
    /// which the steps are derived at the time of a query (`pathways::steps`).
    pub pathway: Option<(&'static super::pathways::Pathway, super::pathways::Care)>,
}

/// A discharge with its state at the time of the query.
#[derive(Debug, Clone)]
pub struct Item {
    pub discharge: Discharge,
    pub follow_up: FollowUp,
}

/// A discharge's own columns (its patient's name and consent are read by [`attach`]).
pub(super) const DISCHARGE_COLUMNS: &str = "e.patient_id, e.encounter_id, e.facility_id, e.facility_name, e.territory, e.unit, e.setting,
    e.disposition, e.discharged_at, e.letter_sent_at, e.letter_items, e.reconciled_at, e.first_contact_at";
const DISCHARGE_COLUMNS_N: usize = 13;

pub(super) fn discharge(r: &AnyRow) -> Result<Discharge, sqlx::Error> {
    Ok(Discharge {
        patient_id: r.try_get(0)?,
        display_name: String::new(),
        birth_date: String::new(),
        sex: 0,
        ins: String::new(),
        encounter_id: r.try_get(1)?,
        facility_id: r.try_get(2)?,
        facility_name: r.try_get(3)?,
        territory: r.try_get(4)?,
        unit: r.try_get(5)?,
        setting: r.try_get::<i64, _>(6)? as i32,
        disposition: r.try_get::<i64, _>(7)? as i32,
        consent: false,
        facts: Facts {
            discharged_at: r.try_get(8)?,
            letter_sent_at: r.try_get(9)?,
            letter_items: r.try_get::<i64, _>(10)? as u32,
            reconciled_at: r.try_get(11)?,
            first_contact_at: r.try_get(12)?,
            appointments: Vec::new(),
            alerts: Vec::new(),
            pathway: Vec::new(),
        },
        referents: Vec::new(),
        pathway: None,
    })
}

pub(super) fn appointment(
    r: &AnyRow,
) -> Result<(String, String, Appointment, String), sqlx::Error> {
    let state = match r.try_get::<i64, _>(5)? {
        APPT_COMPLETED => AppointmentState::Completed,
        APPT_MISSED => AppointmentState::Missed,
        _ => AppointmentState::Scheduled,
    };
    Ok((
        r.try_get(0)?,
        r.try_get(1)?,
        Appointment {
            appointment_id: r.try_get(2)?,
            kind: r.try_get(3)?,
            due_at: r.try_get(4)?,
            state,
        },
        r.try_get(6)?,
    ))
}

pub(super) fn alert(r: &AnyRow) -> Result<(String, Alert, String), sqlx::Error> {
    Ok((
        r.try_get(0)?,
        Alert {
            alert_id: r.try_get(1)?,
            severity: r.try_get::<i64, _>(2)? as i32,
            reason: r.try_get(4)?,
            raised_at: r.try_get(5)?,
            acknowledged_at: r.try_get(6)?,
            resolved_at: r.try_get(7)?,
        },
        r.try_get(3)?,
    ))
}

/// A bound value of a query built at run time.
enum Arg {
    I(i64),
    T(String),
}

fn bind_all<'q>(mut q: Q<'q>, args: &'q [Arg]) -> Q<'q> {
    for a in args {
        q = match a {
            Arg::I(i) => q.bind(*i),
            Arg::T(t) => q.bind(t.as_str()),
        };
    }
    q
}

/// The SQL selecting followed discharges: each patient's latest encounter, discharged (alive,
/// followed disposition) at or after `$1` and at or before `$2` (the time of the query), patient
/// not deceased; then the filters of `f` (text values bound from `$3` on, returned), overdue and
/// alert severity included; a place and a referent found through the directory
/// (`directory.rs`). Of
/// these, `rows`: those whose urgency is kept at `$2` (their open task and overdue state read as
/// kept with it), or the others (derived from their standing). (`+e.…`, `|| ''`: the window bounds
/// and a territory match many rows, so that SQLite scans [`worklist_index_ddl`] in its order rather
/// than look up each row from another index.)
/// How a query reaches the rows of a filter by place, referent or alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Through the indexes led by those columns ([`LOOKUP_INDEXES`]): a count, or a page of a
    /// filter matching few rows, which are then sorted.
    Lookup,
    /// In the worklist's order, each row checked (`+`, `|| ''`: no other index): a page of a
    /// filter matching many rows, which stops once full.
    InOrder,
}

/// Rows of a filter a page reads through [`Reach::Lookup`] and sorts, at most, per row of the
/// page and those before it: beyond, reading the worklist's index in order until the page is full
/// costs less (a filter keeping one row in `k` reads about `k` index entries per row of the page).
const LOOKUP_PER_PAGE_ROW: i64 = 40;

fn followed_sql(p: &str, f: &Filter, rows: urgency::Rows, reach: Reach) -> (String, Vec<String>) {
    let text = |column: &str| match reach {
        Reach::Lookup => column.to_string(),
        Reach::InOrder => format!("({column} || '')"),
    };
    let (open_task, overdue, which) = match rows {
        urgency::Rows::Kept => (
            "e.kept_open_task = 1".to_string(),
            "e.kept_overdue = 1".to_string(),
            urgency::kept_sql("$2"),
        ),
        urgency::Rows::NotKept { any_later } => (
            urgency::open_task_sql("$2"),
            urgency::overdue_sql("$2"),
            urgency::not_kept_sql("$2", any_later),
        ),
    };
    let mut sql = format!(
        "FROM {p}encounters e
         WHERE {} AND {which} AND +e.discharged_at <= $2 AND (+e.discharged_at >= $1 OR {open_task})",
        followed_rows(),
    );
    let mut binds = Vec::new();
    if !f.facility_id.is_empty() {
        let (id, pattern) = typed(&mut binds, &f.facility_id);
        let place = format!(
            "({}, {}, {})",
            text("e.facility_id"),
            text("e.facility_name"),
            text("e.unit")
        );
        sql += &format!(
            " AND {place} IN {}",
            directory::places_sql(p, &id, &pattern)
        );
    }
    if !f.territory.is_empty() {
        // `|| ''`: read in the worklist's order, not the territory's index then sorted.
        binds.push(f.territory.clone());
        sql += &format!(" AND e.territory || '' = ${}", binds.len() + 2);
    }
    if let Some(org) = &f.organisation {
        binds.push(org.clone());
        // The refusing patients read once, not looked up for every row.
        sql += &format!(
            " AND e.patient_id NOT IN (SELECT co.patient_id FROM {p}consents co WHERE {})",
            refusing(&format!("${}", binds.len() + 2))
        );
    }
    if !f.referent_id.is_empty() {
        let (id, pattern) = typed(&mut binds, &f.referent_id);
        sql += &format!(
            " AND {} IN ({})",
            text("e.patient_id"),
            directory::referent_patients_sql(p, &id, &pattern)
        );
    }
    if f.overdue_only {
        sql += &format!(" AND {overdue}");
    }
    if f.min_alert_severity > 0 {
        // An integer of the request, checked by the caller's type: a literal. `> 0`, as it is
        // written in the index of the encounters with an open alert, which a lookup reads.
        sql += &match reach {
            Reach::Lookup => format!(
                " AND e.alert_max_severity >= {} AND e.alert_max_severity > 0",
                f.min_alert_severity
            ),
            Reach::InOrder => format!(" AND +e.alert_max_severity >= {}", f.min_alert_severity),
        };
    }
    (sql, binds)
}

/// The indexes the worklist reads instead of the encounters table, both of the followed
/// discharges only ([`followed_rows`]). The first is in the worklist's order by the urgency kept
/// (`urgency::maintain`), holding every column the worklist's filters read ([`urgency::COLUMNS`]
/// included, and the columns of its condition: SQLite counts an index as covering only with
/// them): a page reads it from the most urgent on and stops once the page is full, then reads
/// only its own rows from the table; the count scans it whole. The second finds the
/// encounters whose kept urgency ended, to be ranked at the time of the query.
fn worklist_index_ddl(p: &str) -> Vec<String> {
    let only = format!(
        "WHERE latest = 1 AND discharged_at IS NOT NULL AND deceased = 0 AND {FOLLOWED} AND {FOLLOWED_SETTINGS}"
    );
    vec![
        format!(
            "CREATE INDEX {p}encounters_worklist ON {p}encounters (urgency DESC, discharged_at, patient_id, \
             encounter_id, urgency_since, urgency_until, kept_open_task, kept_overdue, territory, {}, \
             first_contact_at, letter_sent_at, \
             reconciled_at, facility_id, facility_name, unit, latest, deceased, disposition, setting) {only}",
            urgency::COLUMNS
        ),
        format!("CREATE INDEX {p}encounters_unkept ON {p}encounters (urgency_until) {only}"),
    ]
}

/// The columns a count of the rows whose urgency is kept reads, but the leading ones of
/// [`LOOKUP_INDEXES`] (with those of the indexes' condition, so that SQLite reads them alone).
const COUNTED: &str = "discharged_at, urgency_since, urgency_until, kept_open_task, kept_overdue, \
     territory, latest, deceased, disposition, setting";

/// The indexes a [`Reach::Lookup`] reads, of the followed discharges only, each led by what a
/// filter names: a patient (a referent's), a place, an open alert's severity (the few
/// encounters with an open alert); then the columns a count reads.
const LOOKUP_INDEXES: [(&str, &str, &str); 3] = [
    (
        "by_patient",
        "patient_id",
        "alert_max_severity, facility_id, facility_name, unit",
    ),
    (
        "by_place",
        "facility_id, facility_name, unit",
        "alert_max_severity, patient_id",
    ),
    (
        "by_alert",
        "alert_max_severity",
        "patient_id, facility_id, facility_name, unit",
    ),
];

/// The worklist's indexes (created after the tables, with the indicators' own:
/// [`super::indicators::indexes_ddl`]).
pub fn indexes_ddl(p: &str) -> Vec<String> {
    let only = format!(
        "WHERE latest = 1 AND discharged_at IS NOT NULL AND deceased = 0 AND {FOLLOWED} AND {FOLLOWED_SETTINGS}"
    );
    let lookups = LOOKUP_INDEXES.iter().map(|(name, lead, rest)| {
        let open_alert = if *name == "by_alert" {
            " AND alert_max_severity > 0"
        } else {
            ""
        };
        format!(
            "CREATE INDEX {p}encounters_{name} ON {p}encounters ({lead}, {COUNTED}, {rest}) {only}{open_alert}"
        )
    });
    worklist_index_ddl(p).into_iter().chain(lookups).collect()
}

/// What a reader typed, bound after `binds` (whose first number is 3) as it is (an id) and as a
/// pattern finding it in a name: the two placeholders.
fn typed(binds: &mut Vec<String>, text: &str) -> (String, String) {
    binds.push(text.to_string());
    binds.push(key_pattern(text));
    (
        format!("${}", binds.len() + 1),
        format!("${}", binds.len() + 2),
    )
}

/// The facilities a reader may mean by `text`: the one with that id, or those whose name contains
/// it (any case), as (id, name) by name.
pub async fn facilities_named(
    pool: &AnyPool,
    p: &str,
    text: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT DISTINCT facility_id, facility_name FROM {p}{}
         WHERE facility_id = $1 OR facility_key LIKE $2 ESCAPE '\\'
         ORDER BY facility_name, facility_id",
        directory::PLACES
    );
    let rows = sqlx::query(&sql)
        .bind(text)
        .bind(key_pattern(text))
        .fetch_all(pool)
        .await?;
    let found: Vec<(String, String)> = rows
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(match found.iter().find(|(id, _)| id == text) {
        Some(exact) => vec![exact.clone()],
        None => found,
    })
}

/// The referents of the patients `keys`, (patient, referent), by role (the rows of one role in
/// the order SQL gave them): [`attach`] gives them to a patient's last discharge, the first of
/// them taking the first home contact.
pub(super) async fn referents_of(
    conn: &mut AnyConnection,
    p: &str,
    keys: &[&str],
) -> Result<Vec<(String, Referent)>, sqlx::Error> {
    let mut referents = select_in(conn, keys, |ph| {
        format!("SELECT patient_id, role, professional_id, name, phone FROM {p}referents WHERE patient_id IN ({ph})")
    })
    .await?
    .iter()
    .map(|r| Ok((r.try_get::<String, _>(0)?, referent(r, 1)?)))
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    referents.sort_by_key(|(_, r)| r.role);
    Ok(referents)
}

/// A patient's discharges in the order they are shown: newest first, those of the same second by
/// encounter; `a` and `b` are (discharged at, encounter id).
pub(super) fn newest_first(a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
    (b.0, a.1).cmp(&(a.0, b.1))
}

/// Fills in the patient's name and consent, the appointments, open alerts and referents of `out`
/// (discharges read with [`DISCHARGE_COLUMNS`]). A patient's open alerts and referents go to the
/// last of their discharges in `out`: its order must not depend on the database.
pub(super) async fn attach(
    conn: &mut AnyConnection,
    p: &str,
    out: &mut [Discharge],
) -> Result<(), sqlx::Error> {
    let mut by_key: HashMap<(String, String), usize> = HashMap::with_capacity(out.len());
    let mut by_patient: HashMap<String, usize> = HashMap::with_capacity(out.len());
    for (i, d) in out.iter().enumerate() {
        by_key.insert((d.patient_id.clone(), d.encounter_id.clone()), i);
        by_patient.insert(d.patient_id.clone(), i);
    }
    let mut keys: Vec<&str> = by_patient.keys().map(String::as_str).collect();
    keys.sort_unstable();
    for r in select_in(conn, &keys, |ph| {
        format!(
            "SELECT patient_id, display_name, consent, birth_date, sex, ins, identity_status FROM {p}patients
             WHERE patient_id IN ({ph})"
        )
    })
    .await?
    {
        let pid: String = r.try_get(0)?;
        let (name, consent): (String, i64) = (r.try_get(1)?, r.try_get(2)?);
        let born: String = r.try_get(3)?;
        let sex = r.try_get::<i64, _>(4)? as i32;
        let validated = r.try_get::<i64, _>(6)? == IdentityStatus::Validated as i64;
        let ins: String = if validated { r.try_get(5)? } else { String::new() };
        for d in out.iter_mut().filter(|d| d.patient_id == pid) {
            d.display_name = name.clone();
            d.birth_date = born.clone();
            d.sex = sex;
            d.ins = ins.clone();
            d.consent = consent > 0;
        }
    }
    let appointments = select_in(conn, &keys, |ph| {
        format!(
            "SELECT patient_id, encounter_id, appointment_id, kind, due_at, state, with_name
             FROM {p}appointments WHERE patient_id IN ({ph})"
        )
    })
    .await?;
    let alerts = select_in(conn, &keys, |ph| {
        format!(
            "SELECT patient_id, alert_id, severity, rule, reason, raised_at, acknowledged_at, resolved_at
             FROM {p}alerts WHERE resolved_at IS NULL AND patient_id IN ({ph})"
        )
    })
    .await?;
    let referents = referents_of(conn, p, &keys).await?;
    for r in &appointments {
        let (pid, enc, a, _) = appointment(r)?;
        if let Some(&i) = by_key.get(&(pid, enc)) {
            out[i].facts.appointments.push(a);
        }
    }
    for r in &alerts {
        let (pid, a, _) = alert(r)?;
        if let Some(&i) = by_patient.get(&pid) {
            out[i].facts.alerts.push(a);
        }
    }
    for (pid, r) in referents {
        if let Some(&i) = by_patient.get(&pid) {
            out[i].referents.push(r);
        }
    }
    // The care pathways' steps, as the fold derived the standing from them.
    let templates = super::pathways::active().map_err(|e| sqlx::Error::Configuration(e.into()))?;
    let pathway = super::pathway_facts::load(conn, p, &keys).await?;
    let none = super::pathway_facts::PatientFacts::default();
    for d in out.iter_mut() {
        let f = pathway.get(&d.patient_id).unwrap_or(&none);
        let (pathway, care) = f.pathway(templates, &d.encounter_id);
        d.facts.pathway = super::pathway_facts::dues(pathway, &care, d.facts.discharged_at);
        d.pathway = Some((pathway, care));
    }
    Ok(())
}

/// A page of the worklist, and how many discharges match in all.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Item>,
    pub total: u64,
}

/// The followed discharges matching `f` at `now`, most urgent first (as [`followup::follow_up`]
/// ranks them), `limit` of them from `offset` on, and how many match in all. SQL filters, orders
/// and pages on what the fold stores with each encounter (`urgency.rs`); the follow-up is derived
/// for the page's rows only.
pub async fn worklist(
    pool: &AnyPool,
    p: &str,
    f: &Filter,
    now: i64,
    offset: u64,
    limit: u64,
) -> Result<Page, sqlx::Error> {
    // The count, the page and its rows from one snapshot of the tables (SQLite: a read
    // transaction; PostgreSQL: repeatable read), so that the total matches the page.
    let mut conn = pool.begin().await?;
    let postgres = conn.backend_name() == "PostgreSQL";
    if postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *conn)
            .await?;
    }
    // Identifiers in byte order, as Rust compares strings (PostgreSQL would follow the locale).
    let bytewise = bytewise(&conn);
    // The rows whose urgency is kept at `now`, and the few others (written by the fold since the
    // last upkeep, or a due time passed): those are ranked here.
    let any_later = urgency::kept_at(&mut conn, p)
        .await?
        .is_some_and(|at| at > now);
    let not_kept_rows = urgency::Rows::NotKept { any_later };
    let (kept, texts) = followed_sql(p, f, urgency::Rows::Kept, Reach::Lookup);
    let (not_kept, _) = followed_sql(p, f, not_kept_rows, Reach::Lookup);
    let window = f.window_days.max(1) * 86_400;
    let mut args = vec![Arg::I(now - window), Arg::I(now)];
    args.extend(texts.into_iter().map(Arg::T));
    let counts = bind_all(
        sqlx::query(&format!(
            "SELECT (SELECT COUNT(*) {kept}), (SELECT COUNT(*) {not_kept})"
        )),
        &args,
    )
    .fetch_one(&mut *conn)
    .await?;
    let (kept_total, not_kept_total): (i64, i64) = (counts.try_get(0)?, counts.try_get(1)?);
    let total = kept_total + not_kept_total;
    // A page of a filter matching few rows reads them through their own index and sorts them;
    // one matching many reads the worklist's index in order.
    let rows_to_read = offset.saturating_add(limit).min(i64::MAX as u64) as i64;
    let reach = if kept_total <= LOOKUP_PER_PAGE_ROW.saturating_mul(rows_to_read) {
        Reach::Lookup
    } else {
        Reach::InOrder
    };
    let (kept, _) = followed_sql(p, f, urgency::Rows::Kept, reach);
    let (not_kept, _) = followed_sql(p, f, not_kept_rows, reach);
    let n = args.len();
    args.push(Arg::I(limit.min(i64::MAX as u64) as i64));
    args.push(Arg::I(offset.min(i64::MAX as u64) as i64));
    args.push(Arg::I(
        offset.saturating_add(limit).min(i64::MAX as u64) as i64
    ));
    // The page's keys from the indexes alone ([`worklist_index_ddl`]): the first `offset +
    // limit` of the rows whose urgency is kept, in urgency order, and the others ranked here;
    // then the page's rows.
    let order = |a: &str| {
        format!("{a}.urgency DESC, {a}.discharged_at, {a}.patient_id{bytewise}, {a}.encounter_id{bytewise}")
    };
    let sql = format!(
        "SELECT {DISCHARGE_COLUMNS}, pg.urgency FROM
           (SELECT u.patient_id, u.encounter_id, u.discharged_at, u.urgency FROM
              (SELECT k.* FROM
                 (SELECT e.patient_id, e.encounter_id, e.discharged_at, e.urgency {kept}
                  ORDER BY {order_e} LIMIT ${all}) k
               UNION ALL
               SELECT e.patient_id, e.encounter_id, e.discharged_at, CAST({urgency} AS BIGINT) {not_kept}) u
            ORDER BY {order_u} LIMIT ${limit} OFFSET ${offset}) pg
         JOIN {p}encounters e ON e.patient_id = pg.patient_id AND e.encounter_id = pg.encounter_id
         ORDER BY {order_pg}",
        urgency = urgency::urgency_sql("$2"),
        order_e = order("e"),
        order_u = order("u"),
        order_pg = order("pg"),
        all = n + 3,
        limit = n + 1,
        offset = n + 2,
    );
    let rows = bind_all(sqlx::query(&sql), &args)
        .fetch_all(&mut *conn)
        .await?;
    let mut discharges: Vec<Discharge> = rows.iter().map(discharge).collect::<Result<_, _>>()?;
    attach(&mut conn, p, &mut discharges).await?;
    let mut items = Vec::with_capacity(discharges.len());
    for (d, r) in discharges.into_iter().zip(&rows) {
        let follow_up = followup::follow_up(&d.facts, now);
        debug_assert_eq!(
            follow_up.urgency,
            r.try_get::<i64, _>(DISCHARGE_COLUMNS_N)?,
            "SQL and Rust urgency of {}/{}",
            d.patient_id,
            d.encounter_id
        );
        items.push(Item {
            follow_up,
            discharge: d,
        });
    }
    conn.commit().await?;
    Ok(Page {
        items,
        total: total as u64,
    })
}

/// That a consent row `co` refuses the organisation `org` (an SQL value): revoked for it, or for
/// every organisation (`*`). The one rule every read of the view applies.
pub(super) fn refusing(org: &str) -> String {
    format!("co.revoked = 1 AND (co.organisation = {org} OR co.organisation = '*')")
}

/// That the patient in `patient` (an SQL column) refused the organisation `org` ([`refusing`]).
pub(super) fn refused(p: &str, patient: &str, org: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM {p}consents co WHERE co.patient_id = {patient} AND {})",
        refusing(org)
    )
}

/// Whether `patient_id` revoked its consent for `organisation` (or for every organisation).
pub async fn consent_revoked(
    pool: &AnyPool,
    p: &str,
    patient_id: &str,
    organisation: &str,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT 1 FROM {p}consents co WHERE co.patient_id = $1 AND {} LIMIT 1",
        refusing("$2")
    ))
    .bind(patient_id)
    .bind(organisation)
    .fetch_optional(pool)
    .await?;
    Ok(row.is_some())
}

pub use crate::sql::name_key;

/// What a coordinator typed to find a patient, read word by word: a date (02/03/1941,
/// 1941-03-02, 02.03.1941) is the birth date; a word with a digit is an identifier (the INS, the
/// hospital's local id or the patient's id; an INS typed with spaces is one word); other words
/// are parts of the name. A patient is found when every word matches.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Search {
    pub names: Vec<String>,
    /// YYYY-MM-DD.
    pub birth_date: Option<String>,
    pub identifiers: Vec<String>,
}

impl Search {
    pub fn parse(text: &str) -> Search {
        let mut s = Search::default();
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if (13..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit()) {
            s.identifiers.push(digits);
            return s;
        }
        for word in text.split_whitespace() {
            if let Some(d) = date(word) {
                s.birth_date = Some(d.format("%Y-%m-%d").to_string());
            } else if word.chars().any(|c| c.is_ascii_digit()) {
                s.identifiers.push(word.to_string());
            } else {
                s.names.extend(
                    name_key(word)
                        .split(' ')
                        .filter(|w| !w.is_empty())
                        .map(str::to_string),
                );
            }
        }
        s
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.birth_date.is_none() && self.identifiers.is_empty()
    }
}

/// A birth date as French and ISO write it.
fn date(word: &str) -> Option<NaiveDate> {
    ["%d/%m/%Y", "%Y-%m-%d", "%d.%m.%Y", "%d-%m-%Y"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(word, f).ok())
}

/// A patient found by a search: enough to tell namesakes apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub patient_id: String,
    pub display_name: String,
    pub birth_date: String,
    pub sex: i32,
    /// The INS once the identity is validated; else empty.
    pub ins: String,
    pub local_id: String,
    pub deceased: bool,
}

/// The patients `search` finds (at most `limit`, by name then birth date), among those the
/// caller may see: with a stay in `territory` (empty: any patient) and, with an `organisation`,
/// no consent revoked for it (as the worklist filters them).
pub async fn find_patients(
    pool: &AnyPool,
    p: &str,
    search: &Search,
    territory: &str,
    organisation: Option<&str>,
    limit: u64,
) -> Result<Vec<Found>, sqlx::Error> {
    if search.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    let mut args: Vec<Arg> = Vec::new();
    let mut bind = |a: Arg| {
        args.push(a);
        format!("${}", args.len())
    };
    let mut sql = format!(
        "SELECT pa.patient_id, pa.display_name, pa.birth_date, pa.sex, pa.ins, pa.identity_status, pa.local_id,
         pa.died_at FROM {p}patients pa WHERE 1 = 1"
    );
    for name in &search.names {
        sql += &format!(
            " AND pa.name_key LIKE {} ESCAPE '\\'",
            bind(Arg::T(contains_pattern(name)))
        );
    }
    if let Some(born) = &search.birth_date {
        sql += &format!(" AND pa.birth_date = {}", bind(Arg::T(born.clone())));
    }
    for id in &search.identifiers {
        let (exact, lower) = (bind(Arg::T(id.clone())), bind(Arg::T(id.to_lowercase())));
        sql += &format!(
            " AND (pa.ins = {exact} OR pa.patient_id = {exact} OR LOWER(pa.local_id) = {lower})"
        );
    }
    if !territory.is_empty() {
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM {p}encounters e WHERE e.patient_id = pa.patient_id AND e.territory = {})",
            bind(Arg::T(territory.to_string()))
        );
    }
    if let Some(org) = organisation {
        let org = bind(Arg::T(org.to_string()));
        sql += &format!(" AND NOT {}", refused(p, "pa.patient_id", &org));
    }
    sql += &format!(
        " ORDER BY pa.name_key{c}, pa.birth_date, pa.patient_id{c} LIMIT {}",
        bind(Arg::I(limit.min(i64::MAX as u64) as i64))
    );
    let rows = bind_all(sqlx::query(&sql), &args)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|r| {
            let validated = r.try_get::<i64, _>(5)? == IdentityStatus::Validated as i64;
            Ok(Found {
                patient_id: r.try_get(0)?,
                display_name: r.try_get(1)?,
                birth_date: r.try_get(2)?,
                sex: r.try_get::<i64, _>(3)? as i32,
                ins: if validated {
                    r.try_get(4)?
                } else {
                    String::new()
                },
                local_id: r.try_get(6)?,
                deceased: r.try_get::<Option<i64>, _>(7)?.is_some(),
            })
        })
        .collect()
}

/// The time zone of the facility of each of `stays` (patient id, encounter id), as its admission
/// named it; a stay whose facility named none is left out.
pub async fn time_zones(
    pool: &AnyPool,
    p: &str,
    stays: &[(&str, &str)],
) -> Result<HashMap<(String, String), String>, sqlx::Error> {
    let mut patients: Vec<&str> = stays.iter().map(|(pid, _)| *pid).collect();
    patients.sort_unstable();
    patients.dedup();
    let mut conn = pool.acquire().await?;
    let rows = select_in(&mut conn, &patients, |ph| {
        format!(
            "SELECT patient_id, encounter_id, time_zone FROM {p}encounters
             WHERE time_zone <> '' AND patient_id IN ({ph})"
        )
    })
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let key: (String, String) = (r.try_get(0)?, r.try_get(1)?);
        if stays
            .iter()
            .any(|(pid, enc)| key.0 == *pid && key.1 == *enc)
        {
            out.insert(key, r.try_get(2)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_key_ignores_case_accents_and_punctuation() {
        assert_eq!(name_key("LEFÈVRE Zoé-Anne"), "lefevre zoe anne");
        assert_eq!(name_key("  D'ARC  Jeanne "), "d arc jeanne");
        assert_eq!(name_key("ŒUVRE Ç"), "oeuvre c");
    }

    #[test]
    fn a_search_reads_dates_identifiers_and_names() {
        assert_eq!(
            Search::parse("Martin 02/03/1941"),
            Search {
                names: vec!["martin".into()],
                birth_date: Some("1941-03-02".into()),
                identifiers: vec![],
            }
        );
        assert_eq!(
            Search::parse("1941-03-02").birth_date.as_deref(),
            Some("1941-03-02")
        );
        assert_eq!(
            Search::parse("2 41 03 75 123 456 78").identifiers,
            ["241037512345678"]
        );
        assert_eq!(Search::parse("IPP-P1").identifiers, ["IPP-P1"]);
        assert_eq!(Search::parse("Lefèvre-Durand").names, ["lefevre", "durand"]);
        assert!(Search::parse("  - ").is_empty());
        assert!(Search::parse("31/02/1941").identifiers == ["31/02/1941"]);
    }
}
