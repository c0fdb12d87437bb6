//! TLS: with a certificate, gRPC and the HTTP side are served over TLS (rustls); clients that
//! trust the CA (`JOURNEY_CA_CERT`) connect to `https://`, plain-text clients are refused.
use journey_tests::*;
use std::{path::Path, process::Command};

/// A test CA and a certificate for localhost signed by it (openssl command); returns
/// (CA certificate, server certificate, server key).
fn certificate(dir: &Path) -> (String, String, String) {
    let p = |f: &str| dir.join(f).display().to_string();
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let steps: [Vec<String>; 3] = [
        [
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=journey-test-ca",
            "-keyout",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([p("ca.key"), "-out".into(), p("ca.pem")])
        .collect(),
        [
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([p("key.pem"), "-out".into(), p("leaf.csr")])
        .collect(),
        ["x509", "-req", "-days", "2", "-CAcreateserial", "-in"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                p("leaf.csr"),
                "-CA".into(),
                p("ca.pem"),
                "-CAkey".into(),
                p("ca.key"),
                "-out".into(),
                p("cert.pem"),
                "-extfile".into(),
                p("ext.cnf"),
            ])
            .collect(),
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

#[tokio::test]
async fn grpc_and_http_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificate(dir.path());
    let data = dir.path().join("data").display().to_string();
    let server = spawn_ready(&[
        "up",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        &data,
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]);
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
