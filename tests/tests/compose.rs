//! `docker-compose.yml` cannot run here (no Docker engine), so this keeps it correct: every journey
//! service's command, flags, environment variables, ports, health checks and dependencies are
//! checked against the real binary and against each other; every `journey serve` service is
//! deployed. And it is closed by default: no trust authentication, only the public doors
//! published, TLS everywhere, every secret from a file `deploy/make-keys` writes (run here, and
//! its files used for real: NATS with `deploy/nats.conf`, the log and a read side over TLS).
use journey_tests::journey_bin;
use serde_yaml::Value;
use std::{collections::BTreeMap, path::PathBuf, process::Command};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn help(verb: &[String]) -> String {
    let out = Command::new(journey_bin())
        .args(verb)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "journey {} --help failed",
        verb.join(" ")
    );
    String::from_utf8(out.stdout).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("a string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn port_of(addr: &str) -> String {
    addr.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

/// Variables the binary reads without a clap flag (telemetry, the CA its clients trust).
const OTHER_ENV: &[(&str, &str)] = &[
    ("JOURNEY_CA_CERT", "log-access/src/remote.rs"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "services/src/telemetry.rs"),
    ("OTEL_SERVICE_NAME", "services/src/telemetry.rs"),
    ("RUST_LOG", "services/src/telemetry.rs"),
];

#[test]
fn compose_matches_the_binary() {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).expect("docker-compose.yml is YAML");
    doc.apply_merge().unwrap();
    let services = doc["services"].as_mapping().expect("services").clone();
    let names: Vec<String> = services
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let init = std::fs::read_to_string(root().join("deploy/postgres-init.sql")).unwrap();

    // Grpc port of each journey service, for the URLs the others use.
    let mut grpc_ports = BTreeMap::new();
    let mut served = Vec::new();
    for (name, svc) in &services {
        let name = name.as_str().unwrap();
        if svc.get("build").is_none() {
            continue;
        }
        let command = strings(&svc["command"]);
        let verb: Vec<String> = command
            .iter()
            .take_while(|a| !a.starts_with("--"))
            .cloned()
            .collect();
        assert!(!verb.is_empty(), "{name}: no command");
        let h = help(&verb);
        if verb[0] == "serve" {
            served.push(verb[1].clone());
        }
        for flag in command.iter().filter(|a| a.starts_with("--")) {
            assert!(
                h.contains(&format!("{flag} ")),
                "{name}: `journey {}` has no flag {flag}",
                verb.join(" ")
            );
        }
        let mut env: BTreeMap<String, String> = svc["environment"]
            .as_mapping()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().unwrap().to_string(),
                            v.as_str().map(str::to_string).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        for key in env.keys() {
            let other = OTHER_ENV.iter().any(|(k, _)| k == key);
            if key.starts_with("JOURNEY_") && !other {
                assert!(
                    h.contains(&format!("[env: {key}")),
                    "{name}: `journey {}` reads no {key}",
                    verb.join(" ")
                );
            } else {
                let (_, file) = OTHER_ENV
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("{name}: unknown variable {key}"));
                let src = std::fs::read_to_string(root().join(file)).unwrap();
                assert!(
                    src.contains(key.as_str()) || key == "RUST_LOG",
                    "{file} does not read {key}"
                );
            }
        }
        // Flags given on the command line count like their variables.
        for pair in command
            .windows(2)
            .filter(|p| p[0].starts_with("--") && !p[1].starts_with("--"))
        {
            let key = format!(
                "JOURNEY_{}",
                pair[0]
                    .trim_start_matches("--")
                    .to_uppercase()
                    .replace('-', "_")
            );
            env.insert(key, pair[1].clone());
        }
        // Published ports are the ones the service listens on.
        let listens: Vec<String> = [
            "JOURNEY_GRPC_ADDR",
            "JOURNEY_HTTP_ADDR",
            "JOURNEY_MLLP_ADDR",
        ]
        .iter()
        .filter_map(|k| env.get(*k))
        .map(|a| {
            assert!(
                a.starts_with("0.0.0.0:"),
                "{name}: {a} is not reachable from other containers"
            );
            port_of(a)
        })
        .collect();
        for mapping in strings(&svc["ports"]) {
            let inside = mapping.rsplit(':').next().unwrap().to_string();
            assert!(
                listens.contains(&inside),
                "{name}: port {mapping} is not one it listens on ({listens:?})"
            );
        }
        if let Some(grpc) = env.get("JOURNEY_GRPC_ADDR") {
            grpc_ports.insert(name.to_string(), port_of(grpc));
        }
        // Dependencies exist.
        if let Some(deps) = svc["depends_on"].as_mapping() {
            for d in deps.keys() {
                assert!(
                    names.contains(&d.as_str().unwrap().to_string()),
                    "{name}: depends on unknown {d:?}"
                );
            }
        }
        // Databases exist.
        if let Some(db) = env.get("JOURNEY_DATABASE_URL") {
            let db_name = db.rsplit('/').next().unwrap();
            assert!(
                init.contains(&format!("CREATE DATABASE {db_name};")),
                "{name}: database {db_name} is not created"
            );
        }
    }
    for (name, svc) in &services {
        let name = name.as_str().unwrap();
        if svc.get("build").is_none() {
            continue;
        }
        let command = strings(&svc["command"]);
        let log_flag = command
            .iter()
            .skip_while(|a| *a != "--log-url")
            .nth(1)
            .map(String::as_str);
        if let Some(url) = svc["environment"]["JOURNEY_LOG_URL"].as_str().or(log_flag) {
            let host = url.split("://").nth(1).unwrap().split(':').next().unwrap();
            assert_eq!(
                grpc_ports.get(host),
                Some(&port_of(url)),
                "{name}: JOURNEY_LOG_URL {url}"
            );
        }
        let hc = strings(&svc["healthcheck"]["test"]);
        if !hc.is_empty() {
            assert_eq!(
                &hc[..3],
                ["CMD", "journey", "health"],
                "{name}: health check"
            );
            let server = hc
                .iter()
                .skip_while(|a| *a != "--server")
                .nth(1)
                .expect("--server");
            assert_eq!(
                Some(&port_of(server)),
                grpc_ports.get(name),
                "{name}: health check port"
            );
        }
    }
    // Variables of the generated env file are read by the services that load it.
    let make_keys = std::fs::read_to_string(root().join("deploy/make-keys")).unwrap();
    let generated: Vec<&str> = make_keys
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| {
            k.starts_with("JOURNEY_") && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        })
        .collect();
    assert!(!generated.is_empty());
    for (name, svc) in &services {
        if strings(&svc["env_file"]).is_empty() || svc.get("build").is_none() {
            continue;
        }
        let command = strings(&svc["command"]);
        let verb: Vec<String> = command
            .iter()
            .take_while(|a| !a.starts_with("--"))
            .cloned()
            .collect();
        let h = help(&verb);
        assert!(
            generated.iter().any(|k| h.contains(&format!("[env: {k}"))),
            "{name:?} loads deploy/journey.env but reads none of {generated:?}"
        );
    }
    // Every `journey serve` service is deployed.
    let serve = help(&["serve".to_string()]);
    let commands = serve
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap();
    for line in commands.lines() {
        let Some(cmd) = line.split_whitespace().next() else {
            continue;
        };
        if cmd != "help" {
            assert!(
                served.contains(&cmd.to_string()),
                "`journey serve {cmd}` is not in docker-compose.yml"
            );
        }
    }
}

/// `docker-compose.yml`, merges applied: every service by name.
fn compose_services() -> serde_yaml::Mapping {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mut doc: Value = serde_yaml::from_str(&text).expect("docker-compose.yml is YAML");
    doc.apply_merge().unwrap();
    doc["services"].as_mapping().expect("services").clone()
}

/// A service's environment as name → value.
fn environment(svc: &Value) -> BTreeMap<String, String> {
    svc["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => serde_yaml::to_string(other).unwrap().trim().to_string(),
                    };
                    (k.as_str().unwrap().to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The doors a deployment opens to the outside: partners' gRPC (event log, readmission,
/// coordination, audit), the dashboard, and hospitals' HL7 feeds (MLLP over TLS). Everything else
/// stays on the compose network.
const PUBLIC: &[(&str, &[&str])] = &[
    ("event-log", &["50051"]),
    ("event-log-standby", &["50051"]),
    ("hl7", &["2575"]),
    ("readmission", &["50052"]),
    ("coordination", &["50053", "8080"]),
    ("audit", &["50054"]),
    ("fhir", &["8087"]),
];

/// Runs `deploy/make-keys` into `dir`: (exit code, stderr).
fn make_keys(dir: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(root().join("deploy/make-keys"))
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// The files `deploy/make-keys` says it writes (its header: `#   <file>  …`).
fn promised() -> Vec<String> {
    let script = std::fs::read_to_string(root().join("deploy/make-keys")).unwrap();
    let files: Vec<String> = script
        .lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|f| f.contains('.'))
        .map(str::to_string)
        .collect();
    assert!(
        files.len() >= 5,
        "make-keys names what it writes: {files:?}"
    );
    files
}

/// `KEY=value` lines of an env file.
fn env_file(path: &std::path::Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Whether `.gitignore` names `rel` (a path of the repository), or a folder holding it.
fn ignored(rel: &str) -> bool {
    std::fs::read_to_string(root().join(".gitignore"))
        .unwrap()
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .any(|l| l == rel || rel.starts_with(&format!("{l}/")))
}

#[test]
fn compose_is_closed_by_default() {
    let services = compose_services();
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    // `scheme://user:password@host`: a user alone is no secret.
    let credentials_in_url = |s: &str| {
        s.split("://").skip(1).any(|rest| {
            let authority = rest.split('/').next().unwrap_or("");
            authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
        })
    };
    for (name, svc) in &services {
        let name = name.as_str().unwrap();
        let env = environment(svc);
        // No trust authentication, no secret written here: every password and token comes from
        // an env file or a mounted file that make-keys writes.
        for (k, v) in &env {
            assert!(
                !v.contains("trust"),
                "{name}: {k}={v}: no trust authentication"
            );
            assert!(!credentials_in_url(v), "{name}: {k} carries credentials");
            let secret = ["PASSWORD", "TOKEN", "SECRET"]
                .iter()
                .any(|w| k.contains(w) && !k.ends_with("_FILE"));
            assert!(
                !secret,
                "{name}: the secret {k} is written in docker-compose.yml"
            );
        }
        // Published ports: the public doors only; anything else bound to this machine at most.
        let public = PUBLIC
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[][..], |(_, p)| *p);
        for mapping in strings(&svc["ports"]) {
            let parts: Vec<&str> = mapping.split(':').collect();
            let local_only = parts.len() == 3 && parts[0] == "127.0.0.1";
            let inside = parts.last().unwrap();
            assert!(
                local_only || public.contains(inside),
                "{name}: port {mapping} is published, and is no public door"
            );
        }
        if svc.get("build").is_none() {
            continue;
        }
        // Every journey server serves TLS, trusts the deployment's CA and calls the others over TLS.
        let command = strings(&svc["command"]);
        if command.first().map(String::as_str) == Some("serve") {
            for k in ["JOURNEY_TLS_CERT", "JOURNEY_TLS_KEY", "JOURNEY_CA_CERT"] {
                assert!(
                    env.contains_key(k),
                    "{name}: no {k}: gRPC and HTTP in plaintext"
                );
            }
        }
        for v in env.values().chain(command.iter()) {
            assert!(
                !v.starts_with("http://") || v.starts_with("http://jaeger:"),
                "{name}: {v} is plaintext"
            );
        }
        assert!(
            !env.contains_key("JOURNEY_NATS_URL"),
            "{name}: the NATS URL (with its password) belongs in deploy/journey.env"
        );
    }
    for closed in ["postgres", "nats"] {
        assert!(
            strings(&services[closed]["ports"]).is_empty(),
            "{closed} publishes a port"
        );
    }
    let pg = environment(&services["postgres"]);
    assert_eq!(pg["POSTGRES_HOST_AUTH_METHOD"], "scram-sha-256");
    assert!(!text.contains("nats://"), "NATS in plaintext somewhere");
    let nats_conf = std::fs::read_to_string(root().join("deploy/nats.conf")).unwrap();
    for needed in [
        "tls {",
        "authorization {",
        "password: $NATS_JOURNEY_PASSWORD",
    ] {
        assert!(
            nats_conf.contains(needed),
            "deploy/nats.conf has no {needed:?}"
        );
    }

    // Every file under ./deploy the deployment reads is in the repository or made by make-keys.
    let made = promised();
    for (name, svc) in &services {
        let mut paths = strings(&svc["env_file"]);
        paths.extend(
            strings(&svc["volumes"])
                .iter()
                .filter(|v| v.starts_with("./"))
                .map(|v| v.split(':').next().unwrap().to_string()),
        );
        for p in paths {
            let rel = p.trim_start_matches("./");
            let Some(in_deploy) = rel.strip_prefix("deploy/") else {
                panic!("{name:?}: {p} is outside deploy/");
            };
            let made_here = made
                .iter()
                .any(|m| m == in_deploy || m.starts_with(&format!("{in_deploy}/")));
            let committed = root().join(rel).exists() && !ignored(rel);
            assert!(
                made_here || committed,
                "{name:?}: {p} is neither in the repository nor made by deploy/make-keys"
            );
            if made_here {
                assert!(ignored(rel), "{p} holds secrets: .gitignore must name it");
            }
        }
    }
}

#[test]
fn make_keys_writes_every_secret_private_and_once() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deploy");
    let (code, err) = make_keys(&out, &[]);
    assert_eq!(code, 0, "{err}");
    for f in promised() {
        let meta = std::fs::metadata(out.join(&f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o600,
            "{f} is not private"
        );
    }
    let tls = std::fs::metadata(out.join("tls")).unwrap();
    assert_eq!(tls.permissions().mode() & 0o777, 0o700);

    // The env files hold what the compose services read, consistent with each other.
    let journey = env_file(&out.join("journey.env"));
    let postgres = env_file(&out.join("postgres.env"));
    let nats = env_file(&out.join("nats.env"));
    let hl7 = env_file(&out.join("hl7.env"));
    let tools = env_file(&out.join("tools.env"));
    assert_eq!(journey["PGPASSWORD"], postgres["POSTGRES_PASSWORD"]);
    assert_eq!(
        journey["JOURNEY_NATS_URL"],
        format!("tls://journey:{}@nats:4222", nats["NATS_JOURNEY_PASSWORD"])
    );
    for secret in [
        &journey["PGPASSWORD"],
        &nats["NATS_JOURNEY_PASSWORD"],
        &journey["JOURNEY_LOG_TOKEN"],
    ] {
        assert!(secret.len() >= 32, "a short secret: {secret}");
    }
    let keys = std::fs::read_to_string(out.join("api-keys.txt")).unwrap();
    let role_of = |key: &str| {
        keys.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        role_of(&journey["JOURNEY_LOG_TOKEN"]).as_deref(),
        Some("service backbone backbone")
    );
    let services = compose_services();
    let hl7_org = environment(&services["hl7"])["JOURNEY_MLLP_ORGANISATION"].clone();
    assert_eq!(
        role_of(&hl7["JOURNEY_LOG_TOKEN"]),
        Some(format!("partner hospital-1 {hl7_org}")),
        "the HL7 listener writes with a partner key of its organisation"
    );
    assert_eq!(
        role_of(&tools["JOURNEY_TOKEN"]).as_deref(),
        Some("admin admin backbone"),
        "the simulator appends every kind of event: an admin key (a service key writes alerts only)"
    );
    assert!(
        strings(&services["simulate"]["env_file"]).contains(&"deploy/tools.env".to_string()),
        "the simulator loads the tools' key"
    );

    // One certificate, signed by the CA, valid for every service name the others call.
    let pem = |f: &str| out.join("tls").join(f).display().to_string();
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", &pem("ca.pem"), &pem("server.pem")])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    let text = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            &pem("server.pem"),
        ])
        .output()
        .unwrap();
    let san = String::from_utf8_lossy(&text.stdout).to_string();
    for (name, svc) in &services {
        if svc.get("build").is_some() || name.as_str() == Some("nats") {
            let name = name.as_str().unwrap();
            if strings(&svc["command"]).first().map(String::as_str) == Some("serve")
                || name == "nats"
            {
                assert!(san.contains(&format!("DNS:{name},")), "no {name} in {san}");
            }
        }
    }
    assert!(
        san.contains("DNS:localhost") && san.contains("IP Address:127.0.0.1"),
        "{san}"
    );

    // Made once: a second run changes nothing and says why; --force makes new ones.
    let (code, err) = make_keys(&out, &[]);
    assert_eq!(code, 1);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(env_file(&out.join("journey.env")), journey);
    let (code, err) = make_keys(&out, &["--force"]);
    assert_eq!(code, 0, "{err}");
    assert_ne!(env_file(&out.join("journey.env")), journey);
}

/// A `nats-server` run with `deploy/nats.conf`, its container paths pointed at `deploy`'s files.
struct SecureNats {
    child: std::process::Child,
    port: u16,
}

impl SecureNats {
    fn start(deploy: &std::path::Path, store: &std::path::Path) -> SecureNats {
        let port = journey_tests::free_port();
        let monitor = journey_tests::free_port();
        let conf = std::fs::read_to_string(root().join("deploy/nats.conf"))
            .unwrap()
            .replace("/etc/nats/tls", deploy.join("tls").to_str().unwrap())
            .replace("\"/data\"", &format!("{:?}", store.to_str().unwrap()))
            .replace("port: 4222", &format!("port: {port}"))
            .replace("127.0.0.1:8222", &format!("127.0.0.1:{monitor}"));
        let path = store.join("nats.conf");
        std::fs::write(&path, conf).unwrap();
        let bin =
            std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .envs(env_file(&deploy.join("nats.env")))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        SecureNats { child, port }
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_secrets_secure_a_real_log_and_read_side() {
    use journey_proto::v1::HeadRequest;
    let dir = tempfile::tempdir().unwrap();
    let deploy = dir.path().join("deploy");
    assert_eq!(make_keys(&deploy, &[]).0, 0);
    let store = dir.path().join("nats");
    std::fs::create_dir(&store).unwrap();
    let nats = SecureNats::start(&deploy, &store);
    let tls = |f: &str| deploy.join("tls").join(f).display().to_string();
    // What every service of the compose file gets: its TLS files, the CA, the keys, journey.env
    // (the NATS URL pointed at this test's server instead of the `nats` service).
    let mut env: BTreeMap<String, String> = env_file(&deploy.join("journey.env"));
    let nats_url =
        env["JOURNEY_NATS_URL"].replace("@nats:4222", &format!("@localhost:{}", nats.port));
    env.insert("JOURNEY_NATS_URL".into(), nats_url.clone());
    env.remove("PGPASSWORD");
    for (k, v) in [
        ("JOURNEY_TLS_CERT", tls("server.pem")),
        ("JOURNEY_TLS_KEY", tls("server.key")),
        ("JOURNEY_CA_CERT", tls("ca.pem")),
        (
            "JOURNEY_API_KEYS_FILE",
            deploy.join("api-keys.txt").display().to_string(),
        ),
        ("JOURNEY_INSECURE", "false".into()),
        ("JOURNEY_NATS_STREAM", "SECURE".into()),
    ] {
        env.insert(k.into(), v);
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let data = dir.path().join("log");
    let log = journey_tests::spawn_ready_with_env(
        &[
            "serve",
            "event-log",
            "--data-dir",
            data.to_str().unwrap(),
            "--anchor-file",
            dir.path().join("anchor.json").to_str().unwrap(),
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &env,
    );
    let https = |server: &journey_tests::Server| {
        server.grpc.replace("http://127.0.0.1", "https://localhost")
    };
    let log_url = https(&log);
    let db = format!("sqlite://{}/r.sqlite", dir.path().display());
    let read_side = journey_tests::spawn_ready_with_env(
        &[
            "serve",
            "readmission",
            "--log-url",
            &log_url,
            "--database-url",
            &db,
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ],
        &env,
    );

    // This test trusts the deployment's CA, as the services do.
    let ca = std::fs::read(tls("ca.pem")).unwrap();
    let channel = |url: String| {
        let ca = ca.clone();
        async move {
            tonic::transport::Endpoint::from_shared(url)
                .unwrap()
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                )
                .unwrap()
                .connect()
                .await
                .unwrap()
        }
    };
    let keys = std::fs::read_to_string(deploy.join("api-keys.txt")).unwrap();
    let admin = keys
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("admin"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let token = journey_tests::client::token(Some(&admin)).unwrap();
    let mut c = journey_proto::v1::event_log_client::EventLogClient::with_interceptor(
        channel(log_url.clone()).await,
        token.clone(),
    );
    let head =
        journey_tests::append_batch(&mut c, vec![journey_tests::admitted("S1", "SE1", 60)]).await;
    // Published on NATS over TLS with the generated password, and followed from there by the
    // read side, which calls the log over TLS with the generated service key.
    let mut projections =
        journey_proto::v1::projections_client::ProjectionsClient::with_interceptor(
            channel(https(&read_side)).await,
            token,
        );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = projections
            .status(journey_proto::v1::ProjectionStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if status.projections.iter().all(|p| p.checkpoint >= head) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not projected: {status:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The doors are shut to anyone without the secrets.
    let nats_client = |url: String| {
        let ca = tls("ca.pem");
        async move {
            journey_log_access::broker::options(&url)
                .unwrap()
                .add_root_certificates(ca.into())
                .connect(url)
                .await
        }
    };
    assert!(
        nats_client(format!("tls://localhost:{}", nats.port))
            .await
            .is_err(),
        "NATS took a client without a password"
    );
    assert!(
        nats_client(format!("tls://journey:guess@localhost:{}", nats.port))
            .await
            .is_err(),
        "NATS took a wrong password"
    );
    assert!(
        nats_client(nats_url.clone()).await.is_ok(),
        "the generated NATS URL is refused"
    );
    let plaintext = journey_tests::client::connect(&log.grpc, Some(&admin)).await;
    let refused = match plaintext {
        Err(_) => true,
        Ok(mut c) => c.head(HeadRequest {}).await.is_err(),
    };
    assert!(refused, "the log answered in plaintext");
}
