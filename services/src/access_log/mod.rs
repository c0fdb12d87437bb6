//! The access log: who read which patient's data, when, from where, through which call, for what
//! purpose, and with what outcome (the IHE Basic Audit Log Patterns fields), in the read-model
//! database (`journey_access_log`, append-only). A read is recorded before its data is returned:
//! no record, no data.
//!
//! The records are stored by `journey_projections::access_log` (every free-text field bounded,
//! chained, verified, paged; refused calls without an identity counted per source, call and
//! minute, and a known caller's refusals beyond a rate counted likewise); the head is anchored
//! outside the database by `anchor.rs`. Here: what each call records, and when.

pub use journey_projections::access_log::{bounded, Hash, Page, Query, Record, Verified};

use crate::{errors, principal::Principal};
use journey_projections::access_log::{self as store, SHORT};
use journey_projections::access_log::{Caller, Refusals, Refused};
use sqlx::AnyPool;
use std::{
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};
use tonic::Status;

#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    /// One writer at a time in this process moves the chain's head (the database orders the
    /// writers of several processes: see `chain.rs`).
    writer: tokio::sync::Mutex<()>,
    refusals: Refusals,
}

/// One access to record.
#[derive(Default)]
pub struct Access<'a> {
    pub caller: Option<&'a Principal>,
    pub call: &'a str,
    /// Empty for a query over many patients (`patients` says which it returned).
    pub patient_id: &'a str,
    /// The patients a list read returned.
    pub patients: &'a [String],
    pub purpose: &'a str,
    pub outcome: &'a str,
    pub detail: String,
    /// Where the call came from.
    pub peer: Option<SocketAddr>,
}

/// The purpose a caller declares in the `x-journey-purpose` header (e.g. "treatment", "audit").
pub fn purpose<T>(request: &tonic::Request<T>) -> String {
    request
        .metadata()
        .get("x-journey-purpose")
        .and_then(|v| v.to_str().ok())
        .map(|p| bounded(p, SHORT))
        .unwrap_or_default()
}

/// The address a call came from (over TLS or not), from the request's extensions.
pub fn peer_of(extensions: &tonic::codegen::http::Extensions) -> Option<SocketAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    extensions
        .get::<TcpConnectInfo>()
        .and_then(|i| i.remote_addr())
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|i| i.get_ref().remote_addr())
        })
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as i64
}

impl AccessLog {
    /// The access log in `pool`'s database; refusals counted in memory are written each minute
    /// (by a task of the current runtime, when there is one) and before every read of the log.
    pub fn new(pool: AnyPool) -> Self {
        let log = AccessLog {
            inner: Arc::new(Inner {
                pool,
                writer: tokio::sync::Mutex::new(()),
                refusals: Refusals::default(),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(flush_every_minute(Arc::downgrade(&log.inner)));
        }
        log
    }

    pub async fn record(&self, a: Access<'_>) -> Result<(), Status> {
        let (subject, role, organisation) = match a.caller {
            Some(p) => (
                p.subject.clone(),
                format!("{:?}", p.role).to_lowercase(),
                p.organisation.clone(),
            ),
            None => ("(no identity)".into(), String::new(), String::new()),
        };
        let record = Record {
            at_micros: now_micros(),
            subject,
            role,
            organisation,
            call: a.call.to_string(),
            patient_id: a.patient_id.to_string(),
            patients: a.patients.to_vec(),
            purpose: a.purpose.to_string(),
            outcome: a.outcome.to_string(),
            detail: a.detail,
            peer: a.peer.map(|p| p.ip().to_string()).unwrap_or_default(),
            ..Default::default()
        };
        self.append(vec![record]).await
    }

    async fn append(&self, records: Vec<Record>) -> Result<(), Status> {
        let records = records.into_iter().map(Record::bounded_fields).collect();
        let _writer = self.inner.writer.lock().await;
        store::append(&self.inner.pool, records)
            .await
            .map_err(errors::access_log_unwritable)
    }

    /// A call refused before it reached its service: `true` when it was counted into its
    /// source's record of the minute (no identity, or a caller beyond its rate of refusals),
    /// `false` when it is to be recorded on its own.
    pub fn refusal_counted(
        &self,
        caller: Option<&Principal>,
        peer: Option<SocketAddr>,
        call: &str,
        status: &Status,
    ) -> bool {
        let role = caller.map(|p| format!("{:?}", p.role).to_lowercase());
        let outcome = format!("{:?}", status.code()).to_lowercase();
        let refused = Refused {
            caller: caller.map(|p| Caller {
                subject: &p.subject,
                role: role.as_deref().unwrap_or_default(),
                organisation: &p.organisation,
            }),
            peer,
            call: match crate::request_patient::is_known(call) {
                true => call.trim_start_matches("/journey.v1."),
                false => "(unknown method)",
            },
            outcome: &outcome,
            reason: status.message(),
        };
        let (counted, flush_due) = self.inner.refusals.count(refused, now_micros());
        if flush_due {
            let log = self.clone();
            tokio::spawn(async move { log.flush_refusals(false).await });
        }
        counted
    }

    /// Writes the counted refusals: of the minutes past, or (`all`) also of the current one.
    pub async fn flush_refusals(&self, all: bool) {
        let rows = self.inner.refusals.take(all, now_micros());
        if rows.is_empty() {
            return;
        }
        if let Err(e) = self.append(rows).await {
            tracing::warn!(error = %e.message(), "counted refusals could not be recorded");
        }
    }

    /// The records `q` selects, newest first, a page at a time: the page after the previous
    /// page's `next_page_token` (`page_token`, "" for the first page).
    pub async fn query(&self, mut q: Query, page_token: &str) -> Result<Page, Status> {
        self.flush_refusals(true).await;
        q.after = match page_token {
            "" => None,
            token => Some(store::parse_token(token).ok_or_else(errors::bad_page_token)?),
        };
        store::query(&self.inner.pool, &q)
            .await
            .map_err(errors::access_log_unreadable)
    }

    /// Checks the whole chain (and the anchored head, when given); reports the first problem.
    pub async fn verify(&self, anchor: Option<(u64, Hash)>) -> Result<Verified, Status> {
        self.flush_refusals(true).await;
        store::verify(&self.inner.pool, anchor)
            .await
            .map_err(errors::access_log_unreadable)
    }

    /// The chain's head: (position, hash).
    pub async fn head(&self) -> Result<(u64, Hash), sqlx::Error> {
        store::head(&self.inner.pool).await
    }

    /// Whether the chain still holds the anchored (position, hash); what is wrong if not.
    pub async fn holds(&self, anchor: (u64, Hash)) -> Result<(), String> {
        store::holds(&self.inner.pool, anchor).await
    }
}

/// Writes the past minutes' counted refusals once a minute, while the access log is in use.
async fn flush_every_minute(inner: Weak<Inner>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(15));
    loop {
        ticker.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        AccessLog { inner }.flush_refusals(false).await;
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
    let outcome = outcome_of(&result);
    log.record(Access {
        outcome: &outcome,
        ..access
    })
    .await?;
    result
}

/// "ok", or a refusal's code ("permissiondenied", "notfound"...).
pub fn outcome_of<T>(result: &Result<T, Status>) -> String {
    match result {
        Ok(_) => "ok".to_string(),
        Err(s) => format!("{:?}", s.code()).to_lowercase(),
    }
}
