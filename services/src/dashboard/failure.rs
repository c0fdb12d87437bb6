//! The page of an unexpected failure (HTTP 500): a read model's query that failed for another
//! reason than an unreachable database, a panic in a handler. The reader gets the dashboard's
//! own page in their language, saying what happened and what to do, with the way back to the
//! worklist and an error number; the error itself (a driver's text, SQL, a panic's message)
//! goes to the server log under that number and never to the page.
use super::planning::say;
use crate::html::{esc, Lang};
use crate::principal::Principal;
use crate::session::{signed_in, Sessions};
use axum::{
    extract::Request,
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use futures::FutureExt;
use std::fmt::Display;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// A short number naming one failure in the server log, for the reader to quote ("E-3F9A12C0").
fn error_id() -> String {
    format!("E-{:08X}", rand::random::<u32>())
}

/// The failure page for `error` (logged with the number the page shows, never shown).
pub(super) fn page(lang: Lang, caller: Option<&Principal>, error: &dyn Display) -> Response {
    let id = error_id();
    tracing::error!(error_id = %id, error = %error, "dashboard page failed");
    let sentence = say(
        lang,
        "Une erreur inattendue a empêché d'afficher cette page. Réessayez dans un instant ; \
         si l'erreur revient, signalez-la à l'équipe technique en donnant ce numéro\u{a0}:",
        "An unexpected error stopped this page from being shown. Try again in a moment; \
         if it comes back, report it to the technical team with this number:",
    );
    let body = format!(
        "<p class=\"notice refused\" role=\"alert\" id=\"failure\">{sentence} <b id=\"error-id\">{}</b></p>{}",
        esc(&id),
        super::way_back(lang)
    );
    let title = say(lang, "Erreur inattendue", "Unexpected error");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        super::page(lang, caller, &title, &body),
    )
        .into_response()
}

/// Middleware around every dashboard route: a handler that panics gets the failure page in the
/// reader's language (the query's `lang`, else the one chosen last) instead of a dropped
/// connection.
pub(crate) async fn catch_panics(
    axum::extract::State(sessions): axum::extract::State<Option<Arc<Sessions>>>,
    request: Request,
    next: Next,
) -> Response {
    let lang = Lang::of_request(request.uri(), request.headers());
    let caller = sessions.and_then(|s| signed_in(&s, &request));
    match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            page(lang, caller.as_ref(), &format_args!("panic: {message}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, routing::get, Router};
    use tower::ServiceExt;

    async fn answer(router: Router, uri: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn panicking() -> Router {
        Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("index out of bounds in SELECT secret FROM t");
                    }
                    "never"
                }),
            )
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn_with_state(None, catch_panics))
    }

    #[tokio::test]
    async fn a_panic_is_the_failure_page_in_the_readers_language_without_its_message() {
        let (status, fr) = answer(panicking(), "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            fr.contains("Erreur inattendue") && fr.contains("id=\"error-id\">E-"),
            "{fr}"
        );
        assert!(fr.contains("id=\"back\" href=\"/?lang=fr\""), "{fr}");
        assert!(!fr.contains("SELECT") && !fr.contains("panic"), "{fr}");
        let (status, en) = answer(panicking(), "/boom?lang=en").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            en.contains("Unexpected error") && en.contains("this number"),
            "{en}"
        );
        assert_eq!(
            answer(panicking(), "/fine").await,
            (StatusCode::OK, "fine".into())
        );
    }

    #[test]
    fn each_failure_has_its_own_number() {
        let ids: std::collections::HashSet<String> = (0..20).map(|_| error_id()).collect();
        assert!(ids.len() > 1, "{ids:?}");
        assert!(ids.iter().all(|id| id.len() == 10 && id.starts_with("E-")));
    }
}
