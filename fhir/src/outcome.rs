//! OperationOutcome: every refusal of the FHIR API, a sentence saying what is wrong and what to
//! do.
use serde_json::{json, Value};

/// The issue types the API answers with (FHIR `issue-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// 400: a request the server cannot answer as asked.
    Invalid,
    /// 400: a search parameter or type the server does not support.
    NotSupported,
    /// 401: no token, or a token that does not authenticate.
    Login,
    /// 403: a caller whose role may not read.
    Forbidden,
    /// 404: nothing the caller may see.
    NotFound,
    /// 429: too many exports at once.
    Throttled,
    /// 503: the log or the database cannot be read now.
    Transient,
    /// 500.
    Exception,
}

impl Issue {
    fn code(self) -> &'static str {
        match self {
            Issue::Invalid => "invalid",
            Issue::NotSupported => "not-supported",
            Issue::Login => "login",
            Issue::Forbidden => "forbidden",
            Issue::NotFound => "not-found",
            Issue::Throttled => "throttled",
            Issue::Transient => "transient",
            Issue::Exception => "exception",
        }
    }
}

pub fn outcome(issue: Issue, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "error", "code": issue.code(), "diagnostics": diagnostics }],
    })
}
