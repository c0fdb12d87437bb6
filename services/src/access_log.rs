//! The access log: who read which patient's data, when, through which call, for what purpose, and
//! with what outcome (the IHE Basic Audit Log Patterns fields), in the read-model database
//! (`journey_access_log`, append-only). A read is recorded before its data is returned: no record,
//! no data.
use crate::{errors, principal::Principal};
use sqlx::{AnyPool, Row};
use tonic::Status;

#[derive(Clone)]
pub struct AccessLog {
    pool: AnyPool,
}

/// One access to record.
pub struct Access<'a> {
    pub caller: Option<&'a Principal>,
    pub call: &'a str,
    /// Empty for a query over many patients (the detail says which).
    pub patient_id: &'a str,
    pub purpose: &'a str,
    pub outcome: &'a str,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub at_micros: i64,
    pub subject: String,
    pub role: String,
    pub organisation: String,
    pub call: String,
    pub patient_id: String,
    pub purpose: String,
    pub outcome: String,
    pub detail: String,
}

/// The purpose a caller declares in the `x-journey-purpose` header (e.g. "treatment", "audit").
pub fn purpose<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get("x-journey-purpose")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

impl AccessLog {
    pub fn new(pool: AnyPool) -> Self {
        AccessLog { pool }
    }

    pub async fn record(&self, a: Access<'_>) -> Result<(), Status> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        let (subject, role, organisation) = match a.caller {
            Some(p) => (
                p.subject.clone(),
                format!("{:?}", p.role).to_lowercase(),
                p.organisation.clone(),
            ),
            None => ("(no identity)".into(), String::new(), String::new()),
        };
        sqlx::query(
            "INSERT INTO journey_access_log (id, at_micros, subject, role, organisation, call, patient_id, purpose, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(at)
        .bind(subject)
        .bind(role)
        .bind(organisation)
        .bind(a.call)
        .bind(a.patient_id)
        .bind(a.purpose)
        .bind(a.outcome)
        .bind(a.detail)
        .execute(&self.pool)
        .await
        .map_err(errors::access_log_unwritable)?;
        Ok(())
    }

    /// Accesses to one patient's data (or every access with `patient_id` empty), newest first.
    pub async fn of_patient(&self, patient_id: &str, limit: i64) -> Result<Vec<Record>, Status> {
        let rows = sqlx::query(
            "SELECT at_micros, subject, role, organisation, call, patient_id, purpose, outcome, detail FROM journey_access_log
             WHERE patient_id = $1 ORDER BY at_micros DESC LIMIT $2",
        )
        .bind(patient_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(errors::access_log_unreadable)?;
        rows.iter()
            .map(|r| {
                Ok(Record {
                    at_micros: r.try_get(0)?,
                    subject: r.try_get(1)?,
                    role: r.try_get(2)?,
                    organisation: r.try_get(3)?,
                    call: r.try_get(4)?,
                    patient_id: r.try_get(5)?,
                    purpose: r.try_get(6)?,
                    outcome: r.try_get(7)?,
                    detail: r.try_get(8)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(errors::access_log_malformed)
    }
}

/// Records the access `result` answers (its outcome: ok, or the refusal's code), then returns it.
pub async fn audited<T>(
    log: Option<&AccessLog>,
    access: Access<'_>,
    result: Result<T, Status>,
) -> Result<T, Status> {
    let Some(log) = log else {
        return result;
    };
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(s) => format!("{:?}", s.code()).to_lowercase(),
    };
    log.record(Access {
        outcome: &outcome,
        ..access
    })
    .await?;
    result
}
