//! The HTTP side's hardening on a real `journey up`: the security headers on every response
//! (pages, sign-in, status, metrics, redirects, 404), the same page for a patient nobody knows
//! and a patient the coordinator may not see, the same refusal for a bad filter value on every
//! page, JWT claims checked (`nbf`, `iss`, `aud`, lifetime, organisation) at sign-in as on gRPC,
//! and sockets that say nothing closed on both ports, plain and TLS.
use journey_proto::v1::{self, event::Payload, projections_client::ProjectionsClient};
use journey_tests::*;
use std::time::Duration;

const KEYS: &str = "\
key-0123456789-coord coordinator nurse-1 cpts-1 T1
";

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let (_, cookie) = dashboard_sign_in(&server.http, "key-0123456789-coord").await;
    let cookie = cookie.expect("a session");
    for (path, headers, status) in [
        ("/", "", 303),
        ("/", cookie.as_str(), 200),
        ("/patients/P1", cookie.as_str(), 404),
        ("/indicators?window=x", cookie.as_str(), 400),
        ("/login", "", 200),
        ("/style.css", "", 200),
        ("/status", "", 200),
        ("/metrics", "", 200),
        ("/no-such-page", "", 404),
    ] {
        let r = http_exchange(&server.http, "GET", path, headers, "").await;
        assert_eq!(http_status(&r), status, "{path}: {r}");
        let csp = http_header(&r, "content-security-policy").unwrap_or_else(|| panic!("{path}"));
        for directive in [
            "default-src 'none'",
            "style-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        for (name, value) in [
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cache-control", "no-store"),
            ("x-frame-options", "DENY"),
        ] {
            assert_eq!(http_header(&r, name), Some(value), "{path}: {name}");
        }
        // Plain HTTP: no HSTS (dashboard_sessions.rs checks it under TLS).
        assert_eq!(http_header(&r, "strict-transport-security"), None, "{path}");
    }
    // The pages carry no inline style or script for the policy to block: their only script is
    // a file of this server.
    let page = http_exchange(&server.http, "GET", "/", &cookie, "").await;
    assert!(!page.contains("<style") && !page.contains(" style="));
    let scripts: Vec<&str> = page.split("<script").skip(1).collect();
    assert!(
        scripts.iter().all(|s| s.starts_with(" src=\"/")
            && s.contains("></script>")
            && s.split('>').nth(1) == Some("</script")),
        "{page}"
    );
}

/// A stay in territory T2: outside the coordinator's T1.
fn stay_in_t2(patient: &str) -> Vec<v1::Event> {
    let mut admitted = admitted(patient, "E-T2", 7200);
    if let Some(Payload::Admitted(a)) = admitted.payload.as_mut() {
        a.facility.as_mut().unwrap().territory = "T2".into();
    }
    vec![admitted, discharged(patient, "E-T2", 3600)]
}

#[tokio::test]
async fn a_patient_not_yours_looks_like_a_patient_nobody_knows() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(dir.path(), KEYS, &[]);
    let admin = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let admin = admin.trim();
    let mut log = client::connect(&server.grpc, Some(admin)).await.unwrap();
    let head = append_batch(&mut log, stay_in_t2("PT2-0001")).await;
    wait_projected_as(&server.grpc, head, Some(admin)).await;

    let (_, cookie) = dashboard_sign_in(&server.http, "key-0123456789-coord").await;
    let cookie = cookie.expect("a session");
    let page = |id: &'static str| {
        let (base, cookie) = (server.http.clone(), cookie.clone());
        async move { http_exchange(&base, "GET", &format!("/patients/{id}"), &cookie, "").await }
    };
    let not_yours = page("PT2-0001").await;
    let unknown = page("PXX-0001").await;
    assert_eq!(http_status(&not_yours), 404, "{not_yours}");
    assert_eq!(http_status(&unknown), 404, "{unknown}");
    assert_eq!(
        http_body(&not_yours).replace("PT2-0001", "ID"),
        http_body(&unknown).replace("PXX-0001", "ID"),
        "the two answers differ"
    );
    let told = http_body(&not_yours).replace("PT2-0001", "ID");
    assert!(
        !told.contains("T2") && !told.contains("territory"),
        "{not_yours}"
    );
    // Asking for another territory's worklist is refused in a sentence, with the reason.
    let other = http_exchange(&server.http, "GET", "/?territory=T2&lang=fr", &cookie, "").await;
    assert_eq!(http_status(&other), 403, "{other}");
    assert!(
        other.contains("Accès refusé") && other.contains("id=\"reason\""),
        "{other}"
    );
    // The admin sees the patient: the refusal above was the territory's.
    let (_, admin_cookie) = dashboard_sign_in(&server.http, admin).await;
    let seen = http_exchange(
        &server.http,
        "GET",
        "/patients/PT2-0001",
        &admin_cookie.expect("an admin session"),
        "",
    )
    .await;
    assert_eq!(http_status(&seen), 200, "{seen}");
}

#[tokio::test]
async fn a_bad_filter_value_is_refused_alike_on_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let reason = |raw: &str| {
        let body = http_body(raw);
        let at = body.find("id=\"reason\">").expect("a reason") + "id=\"reason\">".len();
        body[at..].split('<').next().unwrap().to_string()
    };
    for value in ["abc", "-5"] {
        let worklist =
            http_exchange(&server.http, "GET", &format!("/?window={value}"), "", "").await;
        let indicators = http_exchange(
            &server.http,
            "GET",
            &format!("/indicators?window={value}"),
            "",
            "",
        )
        .await;
        assert_eq!(http_status(&worklist), 400, "{worklist}");
        assert_eq!(http_status(&indicators), 400, "{indicators}");
        assert_eq!(reason(&worklist), reason(&indicators));
        assert_eq!(
            reason(&worklist),
            format!("window &quot;{value}&quot;: a number of days")
        );
    }
    // A well-formed window means nothing to the indicators: refused, not ignored.
    let r = http_exchange(&server.http, "GET", "/indicators?window=7", "", "").await;
    assert_eq!(http_status(&r), 400, "{r}");
    assert!(
        reason(&r).contains("unknown filter &quot;window&quot;"),
        "{r}"
    );
}

#[tokio::test]
async fn jwt_claims_are_checked_at_sign_in_as_on_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = secure_up(
        dir.path(),
        KEYS,
        &[
            "--jwt-issuer",
            "https://idp.test",
            "--jwt-audience",
            "journey",
            "--jwt-max-lifetime",
            "2h",
        ],
    );
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |extra: serde_json::Value| {
        let mut c = serde_json::json!({
            "sub": "nurse-9", "role": "coordinator", "org": "cpts-1", "territory": "T1",
            "iss": "https://idp.test", "aud": "journey", "exp": now + 600
        });
        for (k, v) in extra.as_object().unwrap() {
            match v {
                serde_json::Value::Null => c.as_object_mut().unwrap().remove(k),
                v => c.as_object_mut().unwrap().insert(k.clone(), v.clone()),
            };
        }
        hs256_jwt(&c)
    };
    let grpc_code = |token: String| {
        let grpc = server.grpc.clone();
        async move {
            ProjectionsClient::with_interceptor(
                client::channel(&grpc).await.unwrap(),
                client::token(Some(&token)).unwrap(),
            )
            .status(v1::ProjectionStatusRequest {})
            .await
            .map_or_else(|s| s.code(), |_| tonic::Code::Ok)
        }
    };
    let good = claims(serde_json::json!({}));
    assert_eq!(grpc_code(good.clone()).await, tonic::Code::Ok);
    let (r, _) = dashboard_sign_in(&server.http, &good).await;
    assert_eq!(http_status(&r), 303, "{r}");
    for (extra, why) in [
        (
            serde_json::json!({"nbf": now + 3600}),
            "not valid yet (nbf)",
        ),
        (
            serde_json::json!({"iss": "https://other.test"}),
            "issuer (iss)",
        ),
        (serde_json::json!({"iss": null}), "iss claim is missing"),
        (serde_json::json!({"aud": "elsewhere"}), "audience (aud)"),
        (
            serde_json::json!({"exp": now + 3 * 3600}),
            "--jwt-max-lifetime",
        ),
        (serde_json::json!({"org": ""}), "must name its organisation"),
    ] {
        let token = claims(extra.clone());
        assert_eq!(
            grpc_code(token.clone()).await,
            tonic::Code::Unauthenticated,
            "{extra}"
        );
        if why == "must name its organisation" {
            // A sixth refused sign-in in 15 minutes would be turned away (429), whatever the
            // token: dashboard_sessions.rs checks that; gRPC has said enough here.
            continue;
        }
        let (r, cookie) = dashboard_sign_in(&server.http, &token).await;
        assert_eq!(http_status(&r), 401, "{extra}: {r}");
        assert!(cookie.is_none(), "{extra}");
        assert!(r.contains(why), "{extra}: {r}");
    }
}

#[tokio::test]
async fn silent_sockets_are_closed_on_both_ports() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificate(dir.path());
    let plain = Server::start(&dir.path().join("plain"), &[]);
    let tls = Server::start(
        &dir.path().join("tls"),
        &["--tls-cert", cert.as_str(), "--tls-key", key.as_str()],
    );
    let addr = |url: &str| url.rsplit("//").next().unwrap().to_string();
    // The server closes after 10 s; a minute is a bound that only a server holding sockets
    // forever (as before) misses.
    let within = Duration::from_secs(60);
    let cases: Vec<(&str, String, &[u8])> = vec![
        ("HTTP, nothing sent", addr(&plain.http), b""),
        (
            "HTTP, half a request",
            addr(&plain.http),
            b"GET /status HTTP/1.1\r\nHost: x\r\n",
        ),
        (
            "HTTP, idle after a request",
            addr(&plain.http),
            b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        ("gRPC, nothing sent", addr(&plain.grpc), b""),
        ("HTTPS, no handshake", addr(&tls.http), b""),
        ("gRPC over TLS, no handshake", addr(&tls.grpc), b""),
        (
            "HTTPS, half a handshake",
            addr(&tls.http),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ),
    ];
    let checks = cases.iter().map(|(what, addr, sent)| async move {
        (*what, closes_idle_connection(addr, sent, within).await)
    });
    for (what, closed) in futures::future::join_all(checks).await {
        assert!(closed, "{what}: still open after {within:?}");
    }
    // Talking clients are served as before, on both ports.
    let r = http_exchange(&plain.http, "GET", "/status", "", "").await;
    assert_eq!(http_status(&r), 200, "{r}");
    plain
        .client()
        .await
        .head(v1::HeadRequest {})
        .await
        .expect("a gRPC call");
}
