//! Dashboard sessions: the dashboard asks for a token once (`/login`), then keeps the caller in a
//! session cookie (HttpOnly, SameSite=Strict; `Secure` and the `__Host-` prefix when the HTTP
//! server runs under TLS). Coordinators and admins may use it. A session ends on sign-out
//! (`POST /logout`), after 30 minutes without a page, 12 hours after sign-in, or when the JWT it
//! was opened with expires, whichever comes first ([`store`]); a page asked for with a session
//! that ended says so, with a sign-in link. Sign-in and sign-out refuse a form sent from another
//! site (`Origin`, `Sec-Fetch-Site`), and sign-in turns a peer away after repeated refused tokens
//! ([`throttle`]). Sessions live in memory, so a restart asks again.
use crate::{
    auth::Authenticator,
    html::{document, esc, t, Lang},
    principal::{Principal, Role},
    tls::ServedOverTls,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, request::Parts, Extensions, HeaderMap, StatusCode, Uri},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Form, Router,
};
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

mod store;
mod throttle;

pub struct Sessions {
    auth: Arc<Authenticator>,
    open: Mutex<store::Store>,
    failures: Mutex<throttle::Throttle>,
    /// The key the sessions' CSRF tokens are derived with (random per process, as the sessions).
    csrf_key: [u8; 32],
}

/// The signed-in session's CSRF token, put in each request's extensions beside the principal:
/// every form that changes something carries it, and the action is refused when the form's
/// token is not this one. It is derived from the session id with a key of this process, so it
/// names the session without giving its id away in the page.
#[derive(Clone, Debug)]
pub struct Csrf(blake3::Hash);

impl Csrf {
    fn of(key: &[u8; 32], session_id: &str) -> Csrf {
        Csrf(blake3::keyed_hash(key, session_id.as_bytes()))
    }

    /// The token, for a form's hidden field.
    pub fn token(&self) -> String {
        self.0.to_hex().to_string()
    }

    /// Whether `sent` is this session's token (`blake3::Hash` compares in constant time).
    pub fn matches(&self, sent: &str) -> bool {
        blake3::Hash::from_hex(sent).is_ok_and(|h| h == self.0)
    }
}

impl Sessions {
    pub fn new(auth: Arc<Authenticator>) -> Arc<Sessions> {
        Arc::new(Sessions {
            auth,
            open: Mutex::new(store::Store::new(store::CAPACITY)),
            failures: Mutex::new(throttle::Throttle::new(throttle::CAPACITY)),
            csrf_key: rand::random(),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, store::Store> {
        self.open.lock().expect("sessions lock")
    }

    fn throttle(&self) -> std::sync::MutexGuard<'_, throttle::Throttle> {
        self.failures.lock().expect("sign-in failures lock")
    }
}

/// The session cookie: its name, and how it is set and cleared. Under TLS it is `Secure` and
/// `__Host-` prefixed (the browser then refuses it from plain HTTP, or for another host or path).
struct Cookie {
    tls: bool,
}

impl Cookie {
    fn of(extensions: &Extensions) -> Cookie {
        Cookie {
            tls: extensions.get::<ServedOverTls>().is_some(),
        }
    }

    fn name(&self) -> &'static str {
        if self.tls {
            "__Host-journey_session"
        } else {
            "journey_session"
        }
    }

    fn attributes(&self, max_age: u64) -> String {
        let secure = if self.tls { "; Secure" } else { "" };
        format!("HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}")
    }

    fn set(&self, id: &str) -> String {
        let max_age = store::LIFETIME.as_secs();
        format!("{}={id}; {}", self.name(), self.attributes(max_age))
    }

    fn clear(&self) -> String {
        format!("{}=; {}", self.name(), self.attributes(0))
    }

    /// The session id the request carries, if any.
    fn id(&self, headers: &HeaderMap) -> Option<String> {
        crate::html::cookie(headers, self.name()).map(str::to_string)
    }
}

/// Whether a form comes from this server's own pages: a browser names the page's origin
/// (`Origin`) and, lately, whether it is another site (`Sec-Fetch-Site`); a client that says
/// neither (curl, a script) is not a browser tricked by another site.
pub(crate) fn from_this_site(parts: &Parts) -> bool {
    let site = parts.headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if matches!(site, Some(b"cross-site" | b"same-site")) {
        return false;
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return true;
    };
    // Under `Referrer-Policy: no-referrer` (every page of this server) a browser names the
    // origin of its own form posts "null"; the browser's `Sec-Fetch-Site` then says whose page
    // it was, and a page cannot set it.
    if origin.as_bytes() == b"null" {
        return site == Some(b"same-origin");
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()));
    let scheme = if Cookie::of(&parts.extensions).tls {
        "https"
    } else {
        "http"
    };
    host.is_some_and(|host| {
        origin
            .as_bytes()
            .eq_ignore_ascii_case(format!("{scheme}://{host}").as_bytes())
    })
}

/// The `lang` the address asks for.
fn asked_lang(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="))
}

fn lang_of(parts: &Parts) -> Lang {
    Lang::of(asked_lang(&parts.uri), &parts.headers)
}

/// A page of the sign-in flow: a title, then `body`.
fn page(lang: Lang, status: StatusCode, title: &str, body: &str) -> Response {
    (status, Html(document(lang, title, "", body))).into_response()
}

/// The page a sign-in lands on: `next` when it is an address of this server (a path, not
/// `//host` or `/\\host`, which a browser reads as another site), else the worklist; in the
/// language of the sign-in when `next` does not ask for one.
fn landing(lang: Lang, next: Option<&str>) -> String {
    let local = next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.starts_with("/\\")
            && !n.contains(['\r', '\n'])
            && !n.starts_with("/login")
            && !n.starts_with("/logout")
    });
    match local {
        None => format!("/?lang={}", lang.code()),
        Some(n) if asked_lang_of(n).is_some() => n.to_string(),
        Some(n) if n.contains('?') => format!("{n}&lang={}", lang.code()),
        Some(n) => format!("{n}?lang={}", lang.code()),
    }
}

/// The `lang` an address (path and query) asks for.
fn asked_lang_of(address: &str) -> Option<&str> {
    address
        .split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="))
}

/// The sign-in form, after `notice` (markup: why the last attempt was refused, if it was);
/// `next`: the page asked for before signing in, where a sign-in lands.
fn sign_in_page(lang: Lang, status: StatusCode, notice: &str, next: Option<&str>) -> Response {
    let l = lang.code();
    let (other, other_name) = match lang {
        Lang::Fr => ("en", "English"),
        Lang::En => ("fr", "Français"),
    };
    let next_field = next.map_or(String::new(), |n| {
        format!("<input type=\"hidden\" name=\"next\" value=\"{}\">", esc(n))
    });
    let next_query = next.map_or(String::new(), |n| format!("&next={}", encode(n)));
    let nav = format!(
        "<nav><a id=\"other-language\" href=\"/login?lang={other}{}\">{other_name}</a></nav>",
        esc(&next_query)
    );
    let body = format!(
        "{notice}<form method=\"post\" action=\"/login?lang={l}\">{next_field}<label>{} \
         <input type=\"password\" name=\"token\" autocomplete=\"off\" autofocus></label> \
         <button type=\"submit\">{}</button></form><p class=\"muted\">{}</p>",
        t(lang, "token"),
        t(lang, "sign_in"),
        t(lang, "token_hint"),
    );
    (
        status,
        Html(document(lang, t(lang, "sign_in"), &nav, &body)),
    )
        .into_response()
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// A refusal, as a sentence above the sign-in form (which still lands on `next`).
fn refused(lang: Lang, status: StatusCode, sentence: &str, next: Option<&str>) -> Response {
    let notice =
        format!("<p class=\"notice refused\" role=\"alert\" id=\"refused\">{sentence}</p>");
    sign_in_page(lang, status, &notice, next)
}

/// A sentence and a link to sign in again (a session that ended, a sign-out).
fn ended_page(lang: Lang, status: StatusCode, title: &str, sentence: &str) -> Response {
    let body = format!(
        "<p class=\"notice\" id=\"ended\">{sentence}</p><p><a id=\"sign-in\" href=\"/login?lang={}\">{}</a></p>",
        lang.code(),
        t(lang, "sign_in_again"),
    );
    page(lang, status, title, &body)
}

#[derive(serde::Deserialize)]
struct Login {
    token: String,
    /// The page asked for before signing in.
    next: Option<String>,
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_form(parts: Parts) -> Response {
    let next = axum::extract::Query::<LoginQuery>::try_from_uri(&parts.uri)
        .ok()
        .and_then(|q| q.0.next);
    sign_in_page(lang_of(&parts), StatusCode::OK, "", next.as_deref())
}

async fn login(State(s): State<Arc<Sessions>>, parts: Parts, Form(f): Form<Login>) -> Response {
    let lang = lang_of(&parts);
    let next = f.next.as_deref().filter(|n| !n.is_empty());
    let refused = |lang, status, sentence: &str| refused(lang, status, sentence, next);
    if !from_this_site(&parts) {
        return refused(lang, StatusCode::FORBIDDEN, t(lang, "other_site"));
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let now = Instant::now();
    let wait = s.throttle().wait(peer, now);
    if let Some(wait) = wait {
        tracing::warn!(%peer, "sign-in turned away: too many refused tokens");
        let minutes = wait.as_secs().div_ceil(60);
        let sentence = format!("{} {minutes}).", t(lang, "too_many_failures"));
        let mut r = refused(lang, StatusCode::TOO_MANY_REQUESTS, &sentence);
        r.headers_mut()
            .insert(header::RETRY_AFTER, wait.as_secs().max(1).into());
        return r;
    }
    let (principal, token_ends) = match s
        .auth
        .authenticate_until(Some(&format!("Bearer {}", f.token.trim())))
    {
        Ok(found) => found,
        Err(e) => {
            s.throttle().failed(peer, now);
            tracing::info!(%peer, reason = e.message(), "sign-in refused");
            let sentence = format!("{} {}", t(lang, "token_refused"), esc(e.message()));
            return refused(lang, StatusCode::UNAUTHORIZED, &sentence);
        }
    };
    if !matches!(
        principal.role,
        Role::Coordinator | Role::Admin | Role::Gp | Role::LiaisonNurse
    ) {
        return refused(lang, StatusCode::FORBIDDEN, t(lang, "not_for_dashboard"));
    }
    s.throttle().succeeded(peer);
    let id = session_id();
    let token_ends = token_ends.map(|exp| now + until(exp));
    s.store().open(id.clone(), principal, token_ends, now);
    let cookie = Cookie::of(&parts.extensions);
    (
        [(header::SET_COOKIE, cookie.set(&id))],
        Redirect::to(&landing(lang, next)),
    )
        .into_response()
}

/// A new session id: 32 random letters and digits (190 bits).
fn session_id() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// How long from now until `exp` (seconds since the epoch); zero when it is past.
fn until(exp: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp).saturating_sub(now)
}

async fn logout(State(s): State<Arc<Sessions>>, parts: Parts) -> Response {
    let lang = lang_of(&parts);
    if !from_this_site(&parts) {
        return refused(lang, StatusCode::FORBIDDEN, t(lang, "other_site"), None);
    }
    let cookie = Cookie::of(&parts.extensions);
    if let Some(id) = cookie.id(&parts.headers) {
        s.store().close(&id);
    }
    let mut r = ended_page(
        lang,
        StatusCode::OK,
        t(lang, "signed_out"),
        t(lang, "signed_out_text"),
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        cookie.clear().parse().expect("a valid cookie header"),
    );
    r
}

/// `/login` (GET: the form; POST: check the token, open a session) and `/logout` (POST).
pub fn routes(sessions: Arc<Sessions>) -> Router {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .with_state(sessions)
}

/// The person signed in on the session `request` carries, if it is still open (a page outside
/// the dashboard's routes, the one of an unknown address, offers them the sign-out too).
pub fn signed_in(s: &Sessions, request: &Request) -> Option<Principal> {
    let id = Cookie::of(request.extensions()).id(request.headers())?;
    s.store().touch(&id, Instant::now())
}

/// Where the pages' own refreshes go (`dashboard/live.rs`): a request there does not count as
/// activity, so that a screen left open ends its session after [`store::IDLE`] all the same.
pub const QUIET: &str = "/live/";

/// Middleware for the dashboard pages: the session's principal goes into the request's
/// extensions; without a session, to `/login`; with a session that ended, a page saying so.
pub async fn require(State(s): State<Arc<Sessions>>, mut request: Request, next: Next) -> Response {
    let cookie = Cookie::of(request.extensions());
    let asked = asked_lang(request.uri());
    let lang = Lang::of(asked, request.headers());
    let Some(id) = cookie.id(request.headers()) else {
        // The sign-in page speaks the language of the page asked for, and lands on it after.
        let uri = request.uri();
        let asked_page = match uri.query() {
            Some(q) => format!("{}?{q}", uri.path()),
            None => uri.path().to_string(),
        };
        let next = match (
            request.method() == axum::http::Method::GET,
            asked_page.as_str(),
        ) {
            (true, page) if page != "/" => format!("&next={}", encode(page)),
            _ => String::new(),
        };
        return Redirect::to(&format!("/login?lang={}{next}", lang.code())).into_response();
    };
    // A page refreshing itself is no sign of a person at the screen.
    let found: Option<Principal> = if request.uri().path().starts_with(QUIET) {
        s.store().peek(&id, Instant::now())
    } else {
        s.store().touch(&id, Instant::now())
    };
    match found {
        Some(p) => {
            request.extensions_mut().insert(p);
            request.extensions_mut().insert(Csrf::of(&s.csrf_key, &id));
            next.run(request).await
        }
        None => {
            let mut r = ended_page(
                lang,
                StatusCode::UNAUTHORIZED,
                t(lang, "session_ended"),
                t(lang, "session_ended_text"),
            );
            r.headers_mut().insert(
                header::SET_COOKIE,
                cookie.clear().parse().expect("a valid cookie header"),
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)], tls: bool) -> Parts {
        let mut b = axum::http::Request::builder().method("POST").uri("/login");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        if tls {
            parts.extensions.insert(ServedOverTls);
        }
        parts
    }

    #[test]
    fn a_sign_in_lands_only_on_a_page_of_this_server() {
        assert_eq!(landing(Lang::Fr, None), "/?lang=fr");
        assert_eq!(
            landing(Lang::Fr, Some("/patients/P1")),
            "/patients/P1?lang=fr"
        );
        assert_eq!(
            landing(Lang::Fr, Some("/?facility=CHU&lang=en")),
            "/?facility=CHU&lang=en"
        );
        assert_eq!(
            landing(Lang::En, Some("/?overdue=on")),
            "/?overdue=on&lang=en"
        );
        for away in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "javascript:alert(1)",
            "/logout",
            "/x\r\nSet-Cookie: a=b",
        ] {
            assert_eq!(landing(Lang::En, Some(away)), "/?lang=en", "{away}");
        }
    }

    #[test]
    fn a_form_from_another_site_is_refused() {
        let host = ("host", "127.0.0.1:8080");
        assert!(from_this_site(&parts(&[host], false)));
        assert!(from_this_site(&parts(
            &[host, ("origin", "http://127.0.0.1:8080")],
            false
        )));
        assert!(!from_this_site(&parts(
            &[host, ("origin", "http://127.0.0.1:8080")],
            true
        )));
        assert!(from_this_site(&parts(
            &[host, ("origin", "https://127.0.0.1:8080")],
            true
        )));
        for origin in ["https://evil.example", "null", "http://127.0.0.1:8081"] {
            assert!(
                !from_this_site(&parts(&[host, ("origin", origin)], false)),
                "{origin}"
            );
        }
        assert!(!from_this_site(&parts(
            &[host, ("sec-fetch-site", "cross-site")],
            false
        )));
        assert!(from_this_site(&parts(
            &[host, ("sec-fetch-site", "same-origin")],
            false
        )));
        // A real browser's own form under `Referrer-Policy: no-referrer`.
        assert!(from_this_site(&parts(
            &[host, ("origin", "null"), ("sec-fetch-site", "same-origin")],
            false
        )));
        assert!(!from_this_site(&parts(
            &[host, ("origin", "null"), ("sec-fetch-site", "cross-site")],
            false
        )));
    }

    /// The page of a session that ended names the limits the store applies.
    #[test]
    fn the_ended_page_tells_the_real_limits() {
        let (idle, lifetime) = (store::IDLE.as_secs() / 60, store::LIFETIME.as_secs() / 3600);
        let en = t(Lang::En, "session_ended_text");
        assert!(
            en.contains(&format!("{idle} minutes")) && en.contains(&format!("{lifetime} hours"))
        );
        let fr = t(Lang::Fr, "session_ended_text");
        assert!(
            fr.contains(&format!("{idle} minutes")) && fr.contains(&format!("{lifetime} heures"))
        );
    }

    #[test]
    fn the_cookie_is_secure_and_host_bound_under_tls() {
        let plain = Cookie { tls: false };
        let tls = Cookie { tls: true };
        assert_eq!(
            plain.set("abc"),
            "journey_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200"
        );
        assert_eq!(
            tls.set("abc"),
            "__Host-journey_session=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200; Secure"
        );
        assert!(
            tls.clear().starts_with("__Host-journey_session=; ")
                && tls.clear().contains("Max-Age=0")
        );
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; journey_session=xyz".parse().unwrap());
        assert_eq!(plain.id(&h).as_deref(), Some("xyz"));
        // Under TLS only the prefixed cookie counts (a plain-HTTP one could be planted).
        assert_eq!(tls.id(&h), None);
        h.append(
            header::COOKIE,
            "__Host-journey_session=sec".parse().unwrap(),
        );
        assert_eq!(tls.id(&h).as_deref(), Some("sec"));
    }
}
