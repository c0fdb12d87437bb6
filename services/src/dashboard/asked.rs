//! What every dashboard page reads of its request before its own work: the signed-in caller
//! (none when the server runs `--insecure`), the reader's language and the query, with the
//! refusals a page answers in those words (a query it does not take, a status from a view).
use super::{bad_request, check_query, lang_of, worklist_request, Params};
use crate::html::Lang;
use crate::principal::Principal;
use axum::{
    extract::{FromRequestParts, Query},
    http::request::Parts,
    response::{IntoResponse, Response},
};
use journey_proto::v1::WorklistRequest;

/// A page's request: who asks, in which language, and the query as written and as read.
pub(super) struct Asked {
    pub(super) lang: Lang,
    caller: Option<Principal>,
    /// The raw query (a key no page takes is refused, and `Params` would drop it).
    query: Option<String>,
    pub(super) p: Params,
}

impl Asked {
    pub(super) fn caller(&self) -> Option<&Principal> {
        self.caller.as_ref()
    }

    /// The query checked against the page's `keys`; else the refusal page (boxed: a response
    /// is large beside `()`).
    pub(super) fn check(&self, keys: &[&str]) -> Result<(), Box<Response>> {
        check_query(self.query.as_deref(), &self.p, keys).map_err(|m| self.bad_request(&m))
    }

    /// The worklist's filters as the query gives them; else the refusal page.
    pub(super) fn worklist(&self) -> Result<WorklistRequest, Box<Response>> {
        worklist_request(self.query.as_deref(), &self.p).map_err(|m| self.bad_request(&m))
    }

    /// A request the page cannot answer as asked, in the reader's words.
    fn bad_request(&self, message: &str) -> Box<Response> {
        Box::new(bad_request(self.lang, self.caller(), message))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Asked {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Query(p) = Query::<Params>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Asked {
            lang: lang_of(&p, &parts.headers),
            caller: parts.extensions.get::<Principal>().cloned(),
            query: parts.uri.query().map(str::to_string),
            p,
        })
    }
}
