//! Dashboard sessions: the dashboard asks for a token once (`/login`), then keeps the caller in a
//! session cookie (HttpOnly, SameSite=Strict). Coordinators and admins may use it; sessions live
//! in memory, so a restart asks again.
use crate::{
    auth::Authenticator,
    html::esc,
    principal::{Principal, Role},
};
use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
    Form, Router,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

pub struct Sessions {
    auth: Arc<Authenticator>,
    open: Mutex<HashMap<String, Principal>>,
}

const COOKIE: &str = "journey_session";

impl Sessions {
    pub fn new(auth: Arc<Authenticator>) -> Arc<Sessions> {
        Arc::new(Sessions {
            auth,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn of(&self, request: &Request) -> Option<Principal> {
        let cookies = request.headers().get(header::COOKIE)?.to_str().ok()?;
        let id = cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)?
            .1;
        self.open.lock().expect("sessions lock").get(id).cloned()
    }
}

const FORM: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>journey — sign in</title></head><body>\
<h1>Patient journey — coordination</h1><form method=\"post\" action=\"/login\"><label>Token \
<input type=\"password\" name=\"token\" autofocus></label> <button type=\"submit\">Sign in</button></form>\
<p>On the machine running <code>journey up</code>, the admin token is in <code>data/admin.token</code>.</p></body></html>";

#[derive(serde::Deserialize)]
struct Login {
    token: String,
}

async fn login(State(s): State<Arc<Sessions>>, Form(f): Form<Login>) -> Response {
    let principal = match s
        .auth
        .authenticate(Some(&format!("Bearer {}", f.token.trim())))
    {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::UNAUTHORIZED,
                Html(format!("{FORM}<p role=\"alert\">{}</p>", esc(e.message()))),
            )
                .into_response()
        }
    };
    if !matches!(principal.role, Role::Coordinator | Role::Admin) {
        return (
            StatusCode::FORBIDDEN,
            format!(
                "{} ({:?}) may not use the coordination dashboard\n",
                principal.subject, principal.role
            ),
        )
            .into_response();
    }
    use rand::Rng;
    let id: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    s.open
        .lock()
        .expect("sessions lock")
        .insert(id.clone(), principal);
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/"),
        )],
        Redirect::to("/"),
    )
        .into_response()
}

/// `/login` (GET: the form; POST: check the token, open a session).
pub fn routes(sessions: Arc<Sessions>) -> Router {
    Router::new()
        .route("/login", get(|| async { Html(FORM) }).post(login))
        .with_state(sessions)
}

/// Middleware for the dashboard pages: the session's principal goes into the request's
/// extensions; without a session, to `/login`.
pub async fn require(State(s): State<Arc<Sessions>>, mut request: Request, next: Next) -> Response {
    match s.of(&request) {
        Some(p) => {
            request.extensions_mut().insert(p);
            next.run(request).await
        }
        None => Redirect::to("/login").into_response(),
    }
}
