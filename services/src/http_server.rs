//! The node's HTTP server (the dashboard, `/status`, `/metrics`): connections from
//! `connections.rs` (plain or TLS, silent sockets closed), each request's headers received
//! within [`HEADERS`] (an idle keep-alive connection is closed after as long), and the same
//! security headers on every response, whichever route answered (pages, sign-in, errors, 404):
//! a Content-Security-Policy allowing only the pages' own style sheet and forms, no framing, no
//! MIME sniffing, no referrer, nothing cached, and HSTS under TLS.
use crate::{connections, tls::ServedOverTls};
use axum::{
    extract::ConnectInfo,
    http::{header, HeaderValue},
    response::Response,
    Router,
};
use std::{convert::Infallible, time::Duration};
use tokio::sync::watch;
use tokio_stream::StreamExt;

/// The longest a client may take to send a request's headers, or stay idle between requests.
pub const HEADERS: Duration = Duration::from_secs(10);

/// What the pages may load: their style sheet and script files from here (the worklist's
/// `/live.js`, which reads this server's events and lists); where their forms may go: here;
/// nobody may frame them. No inline script or style.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// In every request's extensions: turns true when the server stops, so that a response that
/// would not end by itself (a stream of events) ends then, and the connection with it.
#[derive(Clone)]
pub struct Stopping(pub watch::Receiver<bool>);

/// Serves `app` on `listener` until `stop` turns true (then the connections finish their
/// requests): plain HTTP, or HTTPS with `tls`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = std::pin::pin!(connections::accept(listener, tls));
    let mut open = tokio::task::JoinSet::new();
    loop {
        let conn = tokio::select! {
            c = conns.next() => match c {
                Some(Ok(c)) => c,
                Some(Err(_)) => continue,
                None => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        open.spawn(serve_connection(conn, app.clone(), stop.clone()));
        while open.try_join_next().is_some() {}
    }
    while open.join_next().await.is_some() {}
}

async fn serve_connection(conn: connections::Conn, app: Router, mut stop: watch::Receiver<bool>) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;
    let (peer, tls) = (conn.peer(), conn.is_tls());
    let stopping = Stopping(stop.clone());
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(stopping.clone());
            if tls {
                request.extensions_mut().insert(ServedOverTls);
            }
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await?;
                Ok::<_, Infallible>(secured(response, tls))
            }
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(HEADERS);
    let connection = builder.serve_connection(TokioIo::new(conn), service);
    tokio::pin!(connection);
    let stopping = tokio::select! {
        _ = connection.as_mut() => false,
        stopped = stop.wait_for(|s| *s) => stopped.is_ok(),
    };
    if stopping {
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

/// `response` with the security headers.
fn secured(mut response: Response, tls: bool) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}
