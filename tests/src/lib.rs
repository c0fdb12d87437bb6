//! End-to-end test harness: the real `journey` binary as a child process, a private `nats-server`
//! on a free port with its own JetStream folder, and synthetic events. Everything is killed on drop.
use journey_proto::{
    prost_types::Timestamp,
    v1::{self, event::Payload, Actor, Event},
};
use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime},
};

/// The `journey` binary built by `cargo build` (the README's test command builds it first).
pub fn journey_bin() -> PathBuf {
    if let Ok(p) = std::env::var("JOURNEY_BIN") {
        return p.into();
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/journey");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p journey-services` first (scripts/test does)",
        bin.display()
    );
    bin
}

/// Runs `journey args…` (a client verb) to its end: (exit code, stdout, stderr).
pub fn journey(args: &[&str]) -> (i32, String, String) {
    let out = output_within(
        Command::new(journey_bin())
            .args(args)
            .env("RUST_LOG", "error"),
        COMMAND_DEADLINE,
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// How long a command of a test may run before it is killed and the test fails: none takes a
/// tenth of it, and a command that hangs must fail its test rather than hold CI for hours.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `command` to its end, its output captured, like [`Command::output`]; kills it and panics,
/// saying which command, when it runs longer than `deadline`.
pub fn output_within(command: &mut Command, deadline: Duration) -> std::process::Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(deadline) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{command:?}: {e}")),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{command:?} still ran after {deadline:?}: killed");
        }
    }
}

/// The Python of the virtual environment `.ci/run` makes (`target/fhir-venv`, or
/// `JOURNEY_FHIR_PYTHON`), which holds the tests' independent checkers: `fhir.resources` (the
/// FHIR validator) and `hl7apy` (the HL7 v2 parser). Panics, saying what to run, when that Python
/// is missing or cannot import `module`; `packages` are what pip installs for it.
pub fn checker_python(module: &str, packages: &str) -> PathBuf {
    let python = std::env::var("JOURNEY_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fhir-venv/bin/python")
        });
    let imports = python.exists()
        && Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        imports,
        "{} cannot import {module}, which this test checks against: run .ci/run, or: \
         python3 -m venv target/fhir-venv && target/fhir-venv/bin/pip install {packages} \
         (or point JOURNEY_FHIR_PYTHON at a Python that has it)",
        python.display()
    );
    python
}

/// A `journey up` child process.
pub struct Server {
    pub child: Child,
    pub grpc: String,
    pub http: String,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_env(data_dir, extra, &[])
    }

    /// [`Server::start`] with these environment variables.
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let args = Server::up_args(data_dir, extra);
        spawn_ready_with_env(&args.iter().map(String::as_str).collect::<Vec<_>>(), env)
    }

    /// [`Server::start`], its log (stderr) written to `log` for the test to read.
    pub fn start_logging(data_dir: &Path, extra: &[&str], log: &Path) -> Server {
        let args = Server::up_args(data_dir, extra);
        spawn_ready_logging(&args.iter().map(String::as_str).collect::<Vec<_>>(), log)
    }

    /// `journey up` on `data_dir` with `extra`, on free ports.
    fn up_args(data_dir: &Path, extra: &[&str]) -> Vec<String> {
        let dir = data_dir.to_str().expect("utf-8 path");
        let mut args = vec![
            "up",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            dir,
        ];
        // The anchored chain head goes inside the test's folder (the default, next to the data
        // folder, would leave files behind in the temporary directory).
        let anchor = data_dir.join("anchor.json");
        let anchor = anchor.to_str().expect("utf-8 path");
        if !extra.contains(&"--anchor-file") {
            args.extend_from_slice(&["--anchor-file", anchor]);
        }
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    }

    /// `journey up` on `data_dir`, publishing to `nats` in a stream of its own.
    pub fn publishing(data_dir: &Path, nats: &Nats, stream: &str) -> Server {
        Server::start(
            data_dir,
            &["--nats-url", &nats.url(), "--nats-stream", stream],
        )
    }

    pub async fn client(&self) -> crate::client::LogClient {
        crate::client::connect(&self.grpc, None)
            .await
            .expect("connect")
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `text` as a URL's query value: every byte but letters, digits and `-._~` percent-encoded,
/// as a browser's form or a Bulk Data client sends it.
pub fn query_value(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private nats-server with JetStream, on a free port, with its own store folder.
pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Nats {
        let mut n = Nats {
            child: None,
            port: free_port(),
            store: tempfile::tempdir().unwrap(),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// (Re)starts the server on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        let bin =
            std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "/usr/sbin/nats-server".into());
        let child = Command::new(&bin)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (install nats-server): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn ts(secs_ago: i64) -> Timestamp {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Timestamp {
        seconds: now - secs_ago,
        nanos: 0,
    }
}

/// The instant an RFC 3339 date-time names.
pub fn instant(rfc3339: &str) -> Timestamp {
    Timestamp {
        seconds: chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp(),
        nanos: 0,
    }
}

/// [`event`] at an RFC 3339 date-time.
pub fn event_at(patient: &str, rfc3339: &str, payload: Payload) -> Event {
    event(patient, instant(rfc3339), payload)
}

pub fn event(patient: &str, occurred: Timestamp, payload: Payload) -> Event {
    Event {
        event_id: uuid::Uuid::new_v4().to_string(),
        patient_id: patient.into(),
        occurred_at: Some(occurred),
        actor: Some(Actor {
            id: "nurse-1".into(),
            role: v1::Role::HomeNurse as i32,
            ..Default::default()
        }),
        source: "e2e-test".into(),
        payload: Some(payload),
        ..Default::default()
    }
}

/// A weight reading of `60 + value` kg, `value` counted modulo 400: `value` only varies the payload
/// (tests pass counters from 0, which may run into the thousands under load), and ingest refuses
/// impossible weights (zero or negative, or over 500 kg).
pub fn observation(patient: &str, value: f64) -> Event {
    event(
        patient,
        ts(60),
        Payload::ObservationRecorded(v1::ObservationRecorded {
            measure: "weight".into(),
            value: 60.0 + value.rem_euclid(400.0),
            unit: "kg".into(),
            ..Default::default()
        }),
    )
}

pub fn admitted(patient: &str, encounter: &str, secs_ago: i64) -> Event {
    event(
        patient,
        ts(secs_ago),
        Payload::Admitted(v1::Admitted {
            encounter_id: encounter.into(),
            facility: Some(v1::Facility {
                id: "CHU-1".into(),
                territory: "T1".into(),
                ..Default::default()
            }),
            unit: "cardio".into(),
            setting: v1::Setting::Inpatient as i32,
            admit_type: v1::AdmitType::Emergency as i32,
            ..Default::default()
        }),
    )
}

pub fn discharged(patient: &str, encounter: &str, secs_ago: i64) -> Event {
    event(
        patient,
        ts(secs_ago),
        Payload::Discharged(v1::Discharged {
            encounter_id: encounter.into(),
            disposition: v1::Disposition::Home as i32,
            ..Default::default()
        }),
    )
}

pub fn batch(events: Vec<Event>) -> v1::AppendRequest {
    v1::AppendRequest {
        events,
        expected_versions: Default::default(),
    }
}

/// GET `path` on the server's HTTP side; returns the body.
pub async fn http_get(base: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("http connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The server's `/status` as JSON.
pub async fn status(server: &Server) -> serde_json::Value {
    serde_json::from_str(&http_get(&server.http, "/status").await).expect("status json")
}

/// A fresh PostgreSQL database for one test (dropped on drop); fails loudly if PostgreSQL is down.
pub struct PgDb {
    pub url: String,
    name: String,
}

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl PgDb {
    pub fn create() -> PgDb {
        PgDb::create_with("")
    }

    /// With `options` after `CREATE DATABASE name` (a template, a collation…).
    pub fn create_with(options: &str) -> PgDb {
        let name = format!("journey_test_{}", uuid::Uuid::new_v4().simple());
        let out = Command::new("psql")
            .args([
                PG_ADMIN,
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE DATABASE {name} {options}"),
            ])
            .output()
            .expect("psql (install postgresql-client)");
        assert!(
            out.status.success(),
            "PostgreSQL unreachable at {PG_ADMIN}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PgDb {
            url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                PG_ADMIN,
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// Waits until every projection of the server has applied the log up to `log_head`.
pub async fn wait_projected(grpc: &str, log_head: u64) {
    wait_projected_as(grpc, log_head, None).await
}

/// [`wait_projected`] with a token, for secure servers.
pub async fn wait_projected_as(grpc: &str, log_head: u64, token: Option<&str>) {
    use journey_proto::v1::{projections_client::ProjectionsClient, ProjectionStatusRequest};
    let mut c = ProjectionsClient::with_interceptor(
        crate::client::channel(grpc).await.unwrap(),
        crate::client::token(token).unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = c
            .status(ProjectionStatusRequest {})
            .await
            .unwrap()
            .into_inner();
        let slowest = s
            .projections
            .iter()
            .map(|p| p.checkpoint)
            .min()
            .unwrap_or(0);
        if slowest >= log_head {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "projections stuck at {:?} of {log_head}",
            s.projections
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A spawned `journey serve …` child, parsed like `Server`.
pub fn spawn_ready(args: &[&str]) -> Server {
    spawn_ready_with_env(args, &[])
}

/// `journey serve <side>` (readmission, coordination…) as its own process: catch-up from the log
/// service at `log_grpc`, then live from the NATS stream `stream`, into `database_url`.
pub fn serve_over_nats(
    side: &str,
    log_grpc: &str,
    nats_url: &str,
    stream: &str,
    database_url: &str,
) -> Server {
    spawn_ready(&[
        "serve",
        side,
        "--log-url",
        log_grpc,
        "--nats-url",
        nats_url,
        "--nats-stream",
        stream,
        "--database-url",
        database_url,
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
    ])
}

/// The readmission total over the default period, once the read model at `grpc` has projected
/// the log up to `log_head`.
pub async fn rates_total(grpc: &str, log_head: u64) -> journey_proto::v1::RateRow {
    wait_projected(grpc, log_head).await;
    journey_proto::v1::readmission_client::ReadmissionClient::new(
        crate::client::channel(grpc).await.unwrap(),
    )
    .rates(journey_proto::v1::RatesRequest::default())
    .await
    .unwrap()
    .into_inner()
    .total
    .unwrap()
}

/// Like [`spawn_ready`], with extra environment variables.
pub fn spawn_ready_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
    spawn_ready_into(args, env, Stdio::inherit())
}

/// Like [`spawn_ready`], its log (stderr) written to `log` for the test to read.
pub fn spawn_ready_logging(args: &[&str], log: &Path) -> Server {
    let file = std::fs::File::create(log).expect("create the log file");
    spawn_ready_into(args, &[], Stdio::from(file))
}

fn spawn_ready_into(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
    // Servers run secure by default; the tests of other features use `--insecure` (tests/tests/auth.rs
    // covers the secure path), unless they ask for security with `JOURNEY_INSECURE=false`.
    let serves = matches!(
        args,
        ["up", ..] | ["serve", "event-log" | "readmission" | "coordination", ..]
    );
    let secure = env
        .iter()
        .any(|(k, v)| *k == "JOURNEY_INSECURE" && *v == "false");
    let mut args = args.to_vec();
    if serves && !secure {
        args.push("--insecure");
    }
    let mut child = Command::new(journey_bin())
        .args(&args)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn journey");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(read.map(|_| line));
    });
    let line = match rx.recv_timeout(COMMAND_DEADLINE) {
        Ok(line) => line.expect("ready line"),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("journey {args:?} printed no ready line within {COMMAND_DEADLINE:?}: killed");
        }
    };
    let mut grpc = String::new();
    let mut http = String::new();
    for part in line.trim().trim_start_matches("ready ").split(' ') {
        if let Some(a) = part.strip_prefix("grpc=") {
            grpc = format!("http://{a}");
        } else if let Some(a) = part.strip_prefix("http=") {
            http = format!("http://{a}");
        }
    }
    assert!(!grpc.is_empty(), "no ready line: {line:?}");
    Server { child, grpc, http }
}

/// Stays for the patients `<prefix>-<p>` of `range`, every third one readmitted: something for the
/// read models to hold.
pub async fn load_stays(server: &Server, prefix: &str, range: std::ops::Range<usize>) {
    let mut c = server.client().await;
    for p in range {
        let patient = format!("{prefix}-{p}");
        let mut events = vec![
            admitted(&patient, &format!("E-{p}-1"), 40 * 86_400),
            discharged(&patient, &format!("E-{p}-1"), 35 * 86_400),
        ];
        if p % 3 == 0 {
            events.push(admitted(&patient, &format!("E-{p}-2"), 20 * 86_400));
            events.push(discharged(&patient, &format!("E-{p}-2"), 15 * 86_400));
        }
        append_batch(&mut c, events).await;
    }
}

/// Every index stay, read in pages of `page_size` (small pages exercise the paging).
pub async fn all_stays_paged(grpc: &str, page_size: u32) -> Vec<journey_proto::v1::IndexStay> {
    let mut c = journey_proto::v1::readmission_client::ReadmissionClient::new(
        crate::client::channel(grpc).await.unwrap(),
    );
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .index_stays(journey_proto::v1::IndexStaysRequest {
                period: None,
                page_size,
                page_token: token,
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.stays);
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
}

pub mod cdp;
pub mod dashboard;

pub mod nats_cluster;
pub mod replicated;

/// gRPC connections to the servers under test, through the same code the `journey` verbs use.
pub mod client {
    use journey_log_access::Remote;
    pub use journey_log_access::{LogClient, Token};
    use tonic::transport::Channel;

    /// An `EventLog` client of `url` presenting `token`.
    pub async fn connect(url: &str, token: Option<&str>) -> anyhow::Result<LogClient> {
        Remote::new(url, token)?.client().await
    }

    /// A connected channel to `url`.
    pub async fn channel(url: &str) -> anyhow::Result<Channel> {
        Remote::new(url, None)?.channel().await
    }

    /// The interceptor presenting `token` (none: an insecure server).
    pub fn token(token: Option<&str>) -> anyhow::Result<Token> {
        Token::bearer(token)
    }
}

/// Rewrites the stored bytes of the event at `position` (its `source` gets `suffix`) while keeping
/// its stored hash, as an attacker with access to the files would: the chain must catch it. The
/// server must be stopped.
pub fn tamper(data_dir: &Path, position: u64, suffix: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    use journey_event_log::{Record, SledStorage, Storage, WriteBatch};
    use journey_proto::{prost::Message, v1::Event};
    let storage = SledStorage::open(data_dir)
        .with_context(|| format!("cannot open {} (stop the server first)", data_dir.display()))?;
    let stored = storage
        .read(position, position, 1)?
        .pop()
        .with_context(|| format!("no event at position {position}"))?;
    let mut event = Event::decode(stored.bytes.as_slice())?;
    event.source.push_str(suffix);
    let record = Record {
        position,
        event_id: uuid::Uuid::parse_str(&event.event_id)?,
        patient_id: event.patient_id.clone(),
        stream_version: event.stream_version,
        hash: stored.hash,
        bytes: event.encode_to_vec(),
    };
    storage.write(&WriteBatch {
        records: vec![record],
    })?;
    storage.sync()?;
    Ok(())
}

/// A test CA and a certificate for localhost signed by it (openssl command); returns
/// (CA certificate, server certificate, server key).
pub fn certificate(dir: &Path) -> (String, String, String) {
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
        let out = std::process::Command::new("openssl")
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

/// One HTTP/1.1 exchange with `base` (`http://HOST:PORT`); returns the raw response, status line
/// and headers included.
pub async fn http_exchange(
    base: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Appends `events` as one batch through `client`; the position of the last one.
pub async fn append_batch(client: &mut crate::client::LogClient, events: Vec<Event>) -> u64 {
    client
        .append(batch(events))
        .await
        .expect("append")
        .into_inner()
        .appended
        .last()
        .expect("appended events")
        .position
}

/// Signs in on the dashboard at `base` with `token`: the raw response and, when it succeeded,
/// the `Cookie: …` header line that carries the session.
pub async fn dashboard_sign_in(base: &str, token: &str) -> (String, Option<String>) {
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let r = http_exchange(base, "POST", "/login", form, &format!("token={token}")).await;
    let cookie = r
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .map(|c| format!("Cookie: {c}\r\n"));
    (r, cookie)
}

/// `journey up --insecure` with the log alone on `data`, on free ports, not started: for tests
/// that watch how a start ends (its exit code and stderr).
pub fn log_only_up(data: &Path) -> Command {
    let mut command = Command::new(journey_bin());
    command
        .args([
            "up",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .args(["--no-reactor", "--no-read-models", "--insecure"])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn");
    command
}

/// The status code of a raw HTTP response (`HTTP/1.1 303 See Other` → 303).
pub fn http_status(raw: &str) -> u16 {
    raw.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"))
}

/// The value of header `name` in a raw HTTP response (names compared without case).
pub fn http_header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    let head = raw.split("\r\n\r\n").next().unwrap_or("");
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The body of a raw HTTP response.
pub fn http_body(raw: &str) -> &str {
    raw.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The HS256 secret [`secure_up`] gives the server.
pub const HS256_SECRET: &[u8] = b"a shared secret of at least 32 bytes";

/// An HS256 JWT of `claims`, signed with [`HS256_SECRET`].
pub fn hs256_jwt(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(HS256_SECRET),
    )
    .unwrap()
}

/// A secure `journey up` (no `--insecure`) in `dir`: the API keys `keys` (one line each, as in the
/// API-key file), HS256 JWTs signed with [`HS256_SECRET`], and `extra` flags.
pub fn secure_up(dir: &Path, keys: &str, extra: &[&str]) -> Server {
    let keys_file = private_file(&dir.join("keys.txt"), keys);
    let secret = private_file(&dir.join("hs256.secret"), HS256_SECRET);
    let anchor = dir.join("anchor.json").display().to_string();
    let flags = [
        "--anchor-file",
        &anchor,
        "--api-keys-file",
        &keys_file,
        "--jwt-hs256-secret-file",
        &secret,
    ];
    Server::start_with_env(
        &dir.join("data"),
        &[&flags, extra].concat(),
        &[("JOURNEY_INSECURE", "false")],
    )
}

/// Whether the server at `addr` (`HOST:PORT`) closes, within `within`, a connection on which
/// the client sends `sent` and then nothing more.
pub async fn closes_idle_connection(addr: &str, sent: &[u8], within: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(sent).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let closed = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // a refusal the server wrote before closing
            }
        }
    };
    tokio::time::timeout(within, closed).await.is_ok()
}

/// Writes `contents` to `path`, readable and writable by its owner only (as the server wants its
/// key and secret files); returns the path as text, for a flag.
pub fn private_file(path: &Path, contents: impl AsRef<[u8]>) -> String {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// The local admin token `journey up` wrote in `data_dir` (`<dir>/data` for [`secure_up`]).
pub fn admin_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// A secure `journey <args>` (a server verb: `serve event-log`, `serve coordination`…) on free
/// ports, with the API keys of `keys_file` (see [`private_file`]).
pub fn secure_serve(args: &[&str], keys_file: &str) -> Server {
    let flags = [
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--api-keys-file",
        keys_file,
    ];
    spawn_ready_with_env(&[args, &flags].concat(), &[("JOURNEY_INSECURE", "false")])
}

/// A secure `journey serve <side>` (readmission, coordination…) over the secured log at
/// `log_grpc`, read with `log_token`, into `database_url`, with the API keys of `keys_file`.
pub fn secure_read_side(
    side: &str,
    log_grpc: &str,
    log_token: &str,
    database_url: &str,
    keys_file: &str,
) -> Server {
    secure_serve(
        &[
            "serve",
            side,
            "--log-url",
            log_grpc,
            "--log-token",
            log_token,
            "--database-url",
            database_url,
        ],
        keys_file,
    )
}

/// `journey simulate <args>` into the log at `grpc` (as `token`, when given), waited for; panics
/// with what it wrote on standard error when it fails.
pub fn simulate_into(grpc: &str, token: Option<&str>, args: &[&str]) {
    let mut command = Command::new(journey_bin());
    command
        .arg("simulate")
        .args(args)
        .args(["--server", grpc])
        .env("RUST_LOG", "error");
    if let Some(token) = token {
        command.args(["--token", token]);
    }
    let out = output_within(&mut command, COMMAND_DEADLINE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every event of the log at `grpc` (read as `token`, when given), oldest first.
pub async fn read_log(grpc: &str, token: Option<&str>) -> Vec<Event> {
    use futures::StreamExt;
    let mut stream = crate::client::connect(grpc, token)
        .await
        .unwrap()
        .read_all(v1::ReadAllRequest {
            from_position: 1,
            to_position: 0,
            batch_size: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(batch) = stream.next().await {
        events.extend(batch.unwrap().events);
    }
    events
}

/// Every event of `patient`, in stream order, read with `client`.
pub async fn patient_events(client: &mut crate::client::LogClient, patient: &str) -> Vec<Event> {
    let mut stream = client
        .read_stream(v1::ReadStreamRequest {
            patient_id: patient.into(),
            from_version: 1,
            batch_size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut events = Vec::new();
    while let Some(batch) = stream.message().await.unwrap() {
        events.extend(batch.events);
    }
    events
}

/// `events` by patient, each patient's in their order.
pub fn by_patient(events: Vec<Event>) -> std::collections::BTreeMap<String, Vec<Event>> {
    let mut by_patient = std::collections::BTreeMap::<String, Vec<Event>>::new();
    for e in events {
        by_patient.entry(e.patient_id.clone()).or_default().push(e);
    }
    by_patient
}

/// The access records `request` selects on the server at `grpc`, read as `token` (an auditor's or
/// admin's; `None` on an `--insecure` server), newest first.
pub async fn access_records(
    grpc: &str,
    token: Option<&str>,
    request: v1::AccessesRequest,
) -> Vec<v1::AccessRecord> {
    v1::audit_client::AuditClient::with_interceptor(
        client::channel(grpc).await.unwrap(),
        client::token(token).unwrap(),
    )
    .accesses(request)
    .await
    .unwrap()
    .into_inner()
    .records
}

/// `Audit.Accesses`: the records of `patient`'s reads.
pub fn of_patient(patient: &str) -> v1::AccessesRequest {
    v1::AccessesRequest {
        patient_id: patient.into(),
        ..Default::default()
    }
}

/// Who made each call and what came of it: (subject, call, outcome) of each of `records`, to
/// compare with a list of `[&str; 3]`.
pub fn who_called<'a>(records: impl IntoIterator<Item = &'a v1::AccessRecord>) -> Vec<[String; 3]> {
    records
        .into_iter()
        .map(|r| [r.subject.clone(), r.call.clone(), r.outcome.clone()])
        .collect()
}
