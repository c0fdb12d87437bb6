//! Rosters: the lists of patients a role works from, read from the coordination tables — the
//! patients now in hospitalisation at home (HAD), and the patients who name a professional as
//! their GP or referent. Each list leaves out the patients who revoked the consent to share with
//! the reader's organisation, as the worklist does.
use crate::sql::bytewise;
use journey_proto::v1::{IdentityStatus, Setting};
use sqlx::{any::AnyRow, AnyPool, Row};

/// Who the patient is, as a worklist row says it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub patient_id: String,
    pub display_name: String,
    pub birth_date: String,
    pub sex: i32,
    /// The INS once the identity is validated; else empty.
    pub ins: String,
}

/// A stay of the patient: the open HAD stay of an HAD roster, the latest stay of a GP's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stay {
    pub encounter_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub territory: String,
    pub unit: String,
    pub setting: i32,
    pub had_group: i32,
    pub admitted_at: i64,
    pub discharged_at: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InHad {
    pub person: Person,
    pub stay: Stay,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Referred {
    pub person: Person,
    /// The roles (`journey.v1.Role`) the professional is named in for the patient.
    pub roles: Vec<i32>,
    /// The patient's latest stay, if any.
    pub stay: Option<Stay>,
}

const PERSON: &str = "e.patient_id, COALESCE(pa.display_name, ''), COALESCE(pa.birth_date, ''),
     COALESCE(pa.sex, 0), COALESCE(pa.ins, ''), COALESCE(pa.identity_status, 0)";
const STAY: &str = "e.encounter_id, e.facility_id, e.facility_name, e.territory, e.unit, e.setting,
     e.had_group, e.admitted_at, e.discharged_at";

/// The consent condition on `{alias}.patient_id` for the organisation bound at `$n`.
fn consented(p: &str, alias: &str, n: usize) -> String {
    format!(
        " AND NOT {}",
        super::queries::refused(p, &format!("{alias}.patient_id"), &format!("${n}"))
    )
}

fn person(r: &AnyRow) -> Result<Person, sqlx::Error> {
    let validated = r.try_get::<i64, _>(5)? == IdentityStatus::Validated as i64;
    Ok(Person {
        patient_id: r.try_get(0)?,
        display_name: r.try_get(1)?,
        birth_date: r.try_get(2)?,
        sex: r.try_get::<i64, _>(3)? as i32,
        ins: if validated {
            r.try_get(4)?
        } else {
            String::new()
        },
    })
}

/// The stay read from the columns of [`STAY`] starting at `at`.
fn stay(r: &AnyRow, at: usize) -> Result<Stay, sqlx::Error> {
    Ok(Stay {
        encounter_id: r.try_get(at)?,
        facility_id: r.try_get(at + 1)?,
        facility_name: r.try_get(at + 2)?,
        territory: r.try_get(at + 3)?,
        unit: r.try_get(at + 4)?,
        setting: r.try_get::<i64, _>(at + 5)? as i32,
        had_group: r.try_get::<i64, _>(at + 6)? as i32,
        admitted_at: r.try_get(at + 7)?,
        discharged_at: r.try_get(at + 8)?,
    })
}

/// The patients in HAD now (a stay whose setting is HAD, admitted and not discharged, the
/// patient alive) in `territory` (empty: every territory), by facility then name; with an
/// `organisation`, none who revoked the consent to share with it. At most `limit`.
pub async fn in_had(
    pool: &AnyPool,
    p: &str,
    territory: &str,
    organisation: Option<&str>,
    limit: u64,
) -> Result<Vec<InHad>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    let mut sql = format!(
        "SELECT {PERSON}, {STAY} FROM {p}encounters e LEFT JOIN {p}patients pa ON pa.patient_id = e.patient_id
         WHERE e.setting = {had} AND e.discharged_at IS NULL AND pa.died_at IS NULL
           AND (e.territory = $1 OR $1 = '')",
        had = Setting::Had as i32,
    );
    if organisation.is_some() {
        sql += &consented(p, "e", 2);
    }
    sql += &format!(
        " ORDER BY e.facility_name{c}, e.facility_id{c}, pa.name_key{c}, e.patient_id{c} LIMIT {}",
        limit.min(i64::MAX as u64)
    );
    let mut q = sqlx::query(&sql).bind(territory);
    if let Some(org) = organisation {
        q = q.bind(org);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(InHad {
                person: person(r)?,
                stay: stay(r, 6)?,
            })
        })
        .collect()
}

/// The patients who name `professional` (their id, RPPS or local) as GP or referent, by name,
/// with the roles they name them in and their latest stay; with an `organisation`, none who
/// revoked the consent to share with it. At most `limit` patients.
pub async fn referred_to(
    pool: &AnyPool,
    p: &str,
    professional: &str,
    organisation: Option<&str>,
    limit: u64,
) -> Result<Vec<Referred>, sqlx::Error> {
    if professional.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = pool.acquire().await?;
    let c = bytewise(&conn);
    // `e` is the referents' row here: [`PERSON`] reads `e.patient_id`.
    let mut sql = format!(
        "SELECT {PERSON}, e.role, s.encounter_id, s.facility_id, s.facility_name, s.territory, s.unit,
                s.setting, s.had_group, s.admitted_at, s.discharged_at
         FROM {p}referents e
         LEFT JOIN {p}patients pa ON pa.patient_id = e.patient_id
         LEFT JOIN {p}encounters s ON s.patient_id = e.patient_id AND s.latest = 1
         WHERE e.professional_id = $1"
    );
    if organisation.is_some() {
        sql += &consented(p, "e", 2);
    }
    sql += &format!(" ORDER BY pa.name_key{c}, e.patient_id{c}, e.role");
    let mut q = sqlx::query(&sql).bind(professional);
    if let Some(org) = organisation {
        q = q.bind(org);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    let mut out: Vec<Referred> = Vec::new();
    for r in &rows {
        let who = person(r)?;
        let role = r.try_get::<i64, _>(6)? as i32;
        if let Some(last) = out
            .last_mut()
            .filter(|l| l.person.patient_id == who.patient_id)
        {
            last.roles.push(role);
            continue;
        }
        if out.len() as u64 >= limit {
            break;
        }
        let stay = match r.try_get::<Option<String>, _>(7)? {
            Some(_) => Some(stay(r, 7)?),
            None => None,
        };
        out.push(Referred {
            person: who,
            roles: vec![role],
            stay,
        });
    }
    Ok(out)
}

/// Whether `patient` names `professional` as GP or referent, and has not revoked the consent to
/// share with `organisation` (when given).
pub async fn is_referent(
    pool: &AnyPool,
    p: &str,
    professional: &str,
    patient: &str,
    organisation: Option<&str>,
) -> Result<bool, sqlx::Error> {
    if professional.is_empty() {
        return Ok(false);
    }
    let mut sql =
        format!("SELECT 1 FROM {p}referents e WHERE e.professional_id = $1 AND e.patient_id = $2");
    if organisation.is_some() {
        sql += &consented(p, "e", 3);
    }
    let mut q = sqlx::query(&sql).bind(professional).bind(patient);
    if let Some(org) = organisation {
        q = q.bind(org);
    }
    Ok(q.fetch_optional(pool).await?.is_some())
}
