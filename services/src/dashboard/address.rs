//! The address of the page being answered, for what every page links to: the other language's
//! link keeps the page and its filters (only `lang` changes), and a reader's `?lang=` choice is
//! remembered in a cookie for the pages reached without one (`html::LANG_COOKIE`). An address
//! the dashboard does not serve gets a page in the reader's language with a way back.
use super::page;
use crate::html::{lang_cookie, t, Lang};
use crate::session::{signed_in, Sessions};
use axum::{
    extract::Request,
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::sync::Arc;

tokio::task_local! {
    /// The path and query of the GET request being answered (`None` for a form post: its
    /// address is no page to show in another language).
    static ADDRESS: Option<(String, String)>;
}

/// Middleware around every dashboard route: keeps the request's address for [`other_language`]
/// and, when a page's address asks for a language, remembers it.
pub(crate) async fn remember(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let address = (request.method() == Method::GET).then(|| {
        (
            uri.path().to_string(),
            uri.query().unwrap_or_default().to_string(),
        )
    });
    // A choice is made by following a link (GET); a form post sets nothing but what it does.
    let asked = uri
        .query()
        .filter(|_| address.is_some())
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("lang=")))
        .and_then(|l| match l {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        });
    let mut response = ADDRESS.scope(address, next.run(request)).await;
    if let Some(lang) = asked {
        if let Ok(v) = HeaderValue::from_str(&lang_cookie(lang)) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// The link to this page in the other language: the same path and query, `lang` changed (the
/// worklist for a form post, or outside a request).
pub(super) fn other_language(lang: Lang) -> String {
    let other = match lang {
        Lang::Fr => "en",
        Lang::En => "fr",
    };
    let here = ADDRESS.try_with(|a| a.clone()).ok().flatten();
    let Some((path, query)) = here else {
        return format!("/?lang={other}");
    };
    with_lang(&path, &query, other)
}

/// `path?query` with `lang` set to `code` (first), every other key kept in its order.
fn with_lang(path: &str, query: &str, code: &str) -> String {
    let mut q = format!("lang={code}");
    for kv in query.split('&') {
        if !kv.is_empty() && !kv.starts_with("lang=") && kv != "lang" {
            q.push('&');
            q.push_str(kv);
        }
    }
    format!("{path}?{}", crate::html::esc(&q))
}

/// An address no page answers: the reader's language, and the way back to the worklist (and the
/// sign-out for a signed-in reader).
pub(crate) async fn not_found(sessions: Option<Arc<Sessions>>, request: Request) -> Response {
    let lang = Lang::of_request(request.uri(), request.headers());
    if request.uri().path().starts_with("/fhir/") {
        // A FHIR client's address: no page, the status says it.
        return StatusCode::NOT_FOUND.into_response();
    }
    let body = format!(
        "<p class=\"notice refused\" id=\"no-page\">{}</p>{}",
        t(lang, "no_page_text"),
        super::way_back(lang)
    );
    let title = t(lang, "no_page");
    let caller = sessions.and_then(|s| signed_in(&s, &request));
    let page = page(lang, caller.as_ref(), title, &body);
    (StatusCode::NOT_FOUND, page).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_other_language_keeps_the_page_and_its_filters() {
        assert_eq!(
            with_lang("/", "lang=fr&facility=H%C3%B4pital&page=50&window=90", "en"),
            "/?lang=en&amp;facility=H%C3%B4pital&amp;page=50&amp;window=90"
        );
        assert_eq!(with_lang("/patients/P1", "", "fr"), "/patients/P1?lang=fr");
        assert_eq!(other_language(Lang::Fr), "/?lang=en", "outside a request");
    }
}
