//! The worklist keeps itself up to date. The server sends the coordination view's position as
//! server-sent events (`/live/events`) each time it moves; the page's one script, a same-origin
//! file (`/live.js`: the Content-Security-Policy allows scripts from this server only, none
//! inline), then fetches the list as the page's filters select it (`/live/worklist`, recorded in
//! the access log as the page is) and puts it in place of the one shown, without a reload; the
//! page's title carries the count of overdue items, "(3) Liste de travail". Without the script
//! the page is the same, only still.
use super::{list_section, Asked, Dashboard};
use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use futures::{Stream, StreamExt};
use std::{convert::Infallible, time::Duration};

/// Where the view's positions are sent; like the list, under the session's quiet prefix
/// (`session::QUIET`): the page's own refreshes do not keep a session open.
pub(super) const EVENTS_PATH: &str = "/live/events";
/// Where the script fetches the list.
pub(super) const LIST_PATH: &str = "/live/worklist";
/// Where the script is served.
pub(super) const SCRIPT_PATH: &str = "/live.js";
/// The worklist page's reference to it.
pub(super) const SCRIPT_TAG: &str = "<script src=\"/live.js\" defer></script>";

/// How long one stream of events lasts: the browser then opens another (after [`RETRY`]), which
/// passes the session check again. A stream also ends when the server stops, which it does not
/// hold up.
const LIFETIME: Duration = Duration::from_secs(300);
/// The least time between two events of a stream.
const GAP: Duration = Duration::from_secs(3);
/// How soon the browser reconnects after a stream ends or breaks.
const RETRY: Duration = Duration::from_secs(2);

/// The script: refreshes `#list` when the view's position differs from the one it shows (a
/// refresh at a time, the last position asked once more after it) and every five minutes (what
/// is late changes with the time), sets the title's count, and
/// reloads the whole page when the list or the events are refused (a session ended: the page
/// saying so takes the patients off the screen).
const SCRIPT: &str = r#""use strict";
(() => {
  let list = document.getElementById("list");
  if (!list || !window.EventSource || !window.fetch) return;
  const base = document.title.replace(/^\(\d+\) /, "");
  const title = () => {
    const n = Number(list.dataset.overdue || 0);
    document.title = n > 0 ? "(" + n + ") " + base : base;
  };
  title();
  let busy = false, wanted = null;
  const refresh = async (position) => {
    if (busy) { if (position !== null) wanted = position; return; }
    busy = true;
    try {
      const r = await fetch("/live/worklist" + location.search, { credentials: "same-origin" });
      if (r.status !== 200) { location.reload(); return; }
      const t = document.createElement("template");
      t.innerHTML = await r.text();
      const fresh = t.content.getElementById("list");
      if (fresh) { list.replaceWith(fresh); list = fresh; title(); }
    } finally {
      busy = false;
    }
    if (wanted !== null && wanted !== list.dataset.position) {
      const next = wanted; wanted = null; refresh(next);
    }
  };
  const events = new EventSource("/live/events");
  events.onmessage = (e) => { if (e.data !== list.dataset.position) refresh(e.data); };
  events.onerror = () => { if (events.readyState === EventSource.CLOSED) location.reload(); };
  // Time alone makes a step late: the list is read again every five minutes all the same.
  setInterval(() => refresh(null), 300000);
  window.addEventListener("pagehide", () => events.close());
})();
"#;

/// The script, served like the style sheet (open: it holds nothing of a patient).
pub(super) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// The coordination view's position now and each time it moves, at most one every [`GAP`] (a
/// view taking in a stream of events would otherwise have every open page re-read its list, and
/// each reading recorded, many times a second), for [`LIFETIME`] or until the server stops;
/// comments keep the connection open meanwhile.
pub(super) async fn events(
    State(d): State<Dashboard>,
    stopping: Option<axum::Extension<crate::http_server::Stopping>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let watch = d.coordination.runner.watch();
    let positions = futures::stream::unfold((watch, true), |(mut watch, first)| async move {
        if !first {
            tokio::time::sleep(GAP).await;
            // A move during the pause is seen at once; several are one.
            watch.changed().await.ok()?;
        }
        let position = watch.borrow_and_update().checkpoint.to_string();
        let event = Event::default()
            .id(position.clone())
            .data(position)
            .retry(RETRY);
        Some((Ok(event), (watch, false)))
    })
    .take_until(async move {
        let stopped = async {
            match stopping {
                Some(axum::Extension(crate::http_server::Stopping(mut stop))) => {
                    let _ = stop.wait_for(|s| *s).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(LIFETIME) => {}
            _ = stopped => {}
        }
    });
    Sse::new(positions).keep_alive(KeepAlive::default())
}

/// The list alone, as the worklist page with the same query shows it.
pub(super) async fn list(State(d): State<Dashboard>, asked: Asked) -> Response {
    let (lang, caller) = (asked.lang, asked.caller());
    let req = match asked.worklist() {
        Ok(r) => r,
        Err(refused) => return *refused,
    };
    match list_section(&d, lang, caller, &req).await {
        Ok(list) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            list,
        )
            .into_response(),
        Err(s) => super::status_response(lang, caller, s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refreshes_do_not_count_as_activity() {
        for path in [EVENTS_PATH, LIST_PATH] {
            assert!(path.starts_with(crate::session::QUIET), "{path}");
        }
        assert!(SCRIPT.contains(EVENTS_PATH) && SCRIPT.contains(LIST_PATH));
        assert_eq!(
            SCRIPT_TAG,
            format!("<script src=\"{SCRIPT_PATH}\" defer></script>")
        );
    }
}
