//! TLS: with a certificate, gRPC and the HTTP side are served over TLS (rustls); clients that
//! trust the CA (`JOURNEY_CA_CERT`) connect to `https://`, plain-text clients are refused.
use journey_tests::*;
use std::process::Command;

#[tokio::test]
async fn grpc_and_http_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let server = Server::start(
        &dir.path().join("data"),
        &["--tls-cert", &cert, "--tls-key", &key],
    );
    let port = |url: &str| url.rsplit(':').next().unwrap().to_string();
    let grpc = format!("https://localhost:{}", port(&server.grpc));
    let verify = |server: &str, ca: Option<&str>| {
        let mut c = Command::new(journey_bin());
        c.args(["verify", "--server", server])
            .env_remove("JOURNEY_CA_CERT");
        if let Some(ca) = ca {
            c.env("JOURNEY_CA_CERT", ca);
        }
        c.output().unwrap()
    };
    let ok = verify(&grpc, Some(&ca));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Without trusting the certificate, or in plain text, nothing goes through.
    assert!(
        !verify(&grpc, None).status.success(),
        "an unknown CA is refused"
    );
    assert!(
        !verify(&server.grpc, None).status.success(),
        "plain text is refused"
    );

    // The HTTP side (status, metrics, dashboard) over TLS too.
    let http = format!("https://localhost:{}/status", port(&server.http));
    let out = Command::new("curl")
        .args(["-sS", "--cacert", &ca, &http])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["head_position"].is_u64(), "{status}");
    let plain = Command::new("curl")
        .args([
            "-sS",
            &format!("http://localhost:{}/status", port(&server.http)),
        ])
        .output()
        .unwrap();
    assert!(
        !plain.status.success() || plain.stdout.is_empty(),
        "plain HTTP is not served"
    );
}

/// A certificate that cannot be read refuses the start before anything is opened: no data
/// folder, no log, no listener.
#[test]
fn an_unreadable_certificate_refuses_the_start_and_opens_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let missing = dir.path().join("missing.pem").display().to_string();
    let out = log_only_up(&data)
        .args(["--tls-cert", &missing, "--tls-key", &missing])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");
    assert!(!data.exists(), "the log was opened before the refusal");
}
