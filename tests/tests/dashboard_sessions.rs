//! Dashboard sessions through HTTP on a secure `journey up`: signing out ends the session, a
//! session opened with a JWT ends when the JWT expires, a session that ended gets a sentence and
//! a sign-in link (in the reader's language), sign-in turns a peer away after repeated refused
//! tokens and refuses a form from another site, and under TLS the cookie is `Secure` and
//! `__Host-` prefixed. (Idle and absolute expiry and the bounded store are unit-tested in
//! `services/src/session/store.rs`: 30 minutes and 12 hours are too long for a test.)
use journey_tests::*;
use std::{process::Command, time::Duration};

const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
key-0123456789-quality quality analyst dim
";

const FORM: &str = "Content-Type: application/x-www-form-urlencoded\r\n";

async fn get(base: &str, path: &str, cookie: &str) -> String {
    http_exchange(base, "GET", path, cookie, "").await
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let base = &server.http;
    let (_, cookie) = dashboard_sign_in(base, "key-0123456789-coord").await;
    let cookie = cookie.expect("a session");
    let page = get(base, "/", &cookie).await;
    assert_eq!(http_status(&page), 200, "{page}");
    assert!(page.contains("id=\"sign-out\""), "{page}");

    let out = http_exchange(base, "POST", "/logout", &cookie, "").await;
    assert_eq!(http_status(&out), 200, "{out}");
    let cleared = http_header(&out, "set-cookie").expect("the cookie is cleared");
    assert!(
        cleared.starts_with("journey_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    assert!(http_body(&out).contains("Vous êtes déconnecté"), "{out}");
    assert!(http_body(&out).contains("href=\"/login?lang=fr\""), "{out}");

    // The old cookie opens nothing any more: a sentence and a way back in, not an error code
    // (in French, unless English was chosen).
    let after = get(base, "/", &cookie).await;
    assert_eq!(http_status(&after), 401, "{after}");
    assert!(
        http_body(&after).contains("Votre session est terminée")
            && after.contains("id=\"sign-in\""),
        "{after}"
    );
    assert!(!after.contains("id=\"summary\""), "no worklist: {after}");
    let fr = get(base, "/indicators?lang=fr", &cookie).await;
    assert_eq!(http_status(&fr), 401, "{fr}");
    assert!(fr.contains("Votre session est terminée"), "{fr}");
    // A browser that prefers French gets French without asking.
    let fr = get(
        base,
        "/",
        &format!("{cookie}Accept-Language: fr-FR,fr;q=0.9\r\n"),
    )
    .await;
    assert!(fr.contains("Se reconnecter"), "{fr}");

    // Another session is not concerned by this one's sign-out.
    let (_, other) = dashboard_sign_in(base, "key-0123456789-coord").await;
    let other = other.expect("a session");
    let _ = http_exchange(base, "POST", "/logout", &cookie, "").await;
    assert_eq!(http_status(&get(base, "/", &other).await), 200);
}

#[tokio::test]
async fn a_session_ends_when_its_jwt_expires() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let base = &server.http;
    // Long enough to sign in and see a page on a busy machine, short enough to wait for.
    let exp = jsonwebtoken::get_current_timestamp() + 6;
    let jwt = hs256_jwt(&serde_json::json!({
        "sub": "nurse-jwt", "role": "coordinator", "org": "cpts-1", "territory": "T1", "exp": exp
    }));
    let (r, cookie) = dashboard_sign_in(base, &jwt).await;
    assert_eq!(http_status(&r), 303, "{r}");
    let cookie = cookie.expect("a session");
    assert_eq!(http_status(&get(base, "/", &cookie).await), 200);
    while jsonwebtoken::get_current_timestamp() <= exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = get(base, "/", &cookie).await;
    assert_eq!(http_status(&after), 401, "{after}");
    assert!(after.contains("Votre session est terminée"), "{after}");
}

#[tokio::test]
async fn refused_tokens_turn_the_peer_away_and_other_sites_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let base = &server.http;
    let host = base.trim_start_matches("http://");

    // A form posted from another site's page opens no session, even with a good token.
    for origin in ["https://evil.example", "null"] {
        let r = http_exchange(
            base,
            "POST",
            "/login?lang=en",
            &format!("{FORM}Origin: {origin}\r\n"),
            "token=key-0123456789-coord",
        )
        .await;
        assert_eq!(http_status(&r), 403, "{r}");
        assert!(http_header(&r, "set-cookie").is_none(), "{r}");
        assert!(r.contains("sent from another site"), "{r}");
    }
    let r = http_exchange(
        base,
        "POST",
        "/login?lang=en",
        &format!("{FORM}Origin: http://{host}\r\n"),
        "token=key-0123456789-coord",
    )
    .await;
    assert_eq!(http_status(&r), 303, "this server's own page: {r}");

    // A token refused says why; a valid token of another role is not a failure.
    let r = http_exchange(
        base,
        "POST",
        "/login?lang=en",
        FORM,
        "token=key-0123456789-quality",
    )
    .await;
    assert_eq!(http_status(&r), 403, "{r}");
    assert!(
        r.contains("for coordinators, GPs and administrators"),
        "{r}"
    );
    for attempt in 0..5 {
        let r = http_exchange(base, "POST", "/login?lang=en", FORM, "token=guess").await;
        assert_eq!(http_status(&r), 401, "attempt {attempt}: {r}");
        assert!(r.contains("This token is not accepted"), "{r}");
    }
    // Then even the right token waits.
    let r = http_exchange(
        base,
        "POST",
        "/login?lang=en",
        FORM,
        "token=key-0123456789-coord",
    )
    .await;
    assert_eq!(http_status(&r), 429, "{r}");
    let wait: u64 = http_header(&r, "retry-after").unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 15 * 60, "{wait}");
    assert!(http_header(&r, "set-cookie").is_none(), "{r}");
    assert!(r.contains("Too many refused tokens"), "{r}");
}

#[tokio::test]
async fn under_tls_the_cookie_is_secure_and_host_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let server = secure_up(
        dir.path(),
        KEYS,
        &["--tls-cert", cert.as_str(), "--tls-key", key.as_str()],
    );
    let port = server.http.rsplit(':').next().unwrap().to_string();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-i", "--cacert", ca.as_str()])
            .args(args)
            .output()
            .expect("curl (apt-get install curl)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let url = |path: &str| format!("https://localhost:{port}{path}");
    let r = curl(&[
        "-X",
        "POST",
        "--data",
        "token=key-0123456789-coord",
        &url("/login"),
    ]);
    let set = http_header(&r, "set-cookie").unwrap_or_else(|| panic!("{r}"));
    assert!(set.starts_with("__Host-journey_session="), "{set}");
    assert!(
        set.contains("; Secure") && set.contains("HttpOnly") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        http_header(&r, "strict-transport-security").is_some(),
        "{r}"
    );
    let session = set.split(';').next().unwrap();
    let page = curl(&["-H", &format!("Cookie: {session}"), &url("/")]);
    assert_eq!(http_status(&page), 200, "{page}");
    // The same id under the plain-HTTP name is not a session here.
    let id = session.split_once('=').unwrap().1;
    let page = curl(&["-H", &format!("Cookie: journey_session={id}"), &url("/")]);
    assert_eq!(http_status(&page), 303, "{page}");
}
