//! What the benchmarks share: the server under test (this binary's own `journey up` as a child
//! process), filling a log with simulated journeys, latency histograms, progress lines and tables.
use anyhow::Context;
use hdrhistogram::Histogram;
use journey_event_log::{AppendRequest, EventLog, LogOptions, SledStorage};
use journey_log_access::{LogClient, Remote};
use journey_projections::{
    db,
    runtime::{Projection, Runner},
};
use journey_proto::{
    prost::Message,
    prost_types::Timestamp,
    v1::{self, event::Payload, Event},
};
use sqlx::Connection;
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant, SystemTime},
};

/// A ≈300-byte event, as in the reference figures.
pub fn sample_event(patient: &str, i: u64) -> Event {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let mut e = Event {
        event_id: uuid::Uuid::new_v4().to_string(),
        patient_id: patient.to_string(),
        occurred_at: Some(Timestamp {
            seconds: now - 60,
            nanos: 0,
        }),
        actor: Some(v1::Actor {
            id: "bench-device".into(),
            role: v1::Role::System as i32,
            organisation: "bench".into(),
            ..Default::default()
        }),
        source: "journey-bench".into(),
        correlation_id: format!("bench-{i}"),
        payload: Some(Payload::ObservationRecorded(v1::ObservationRecorded {
            measure: "weight".into(),
            value: 70.0 + (i % 100) as f64 / 10.0,
            unit: "kg".into(),
            code: Some(v1::Code {
                system: "LOINC".into(),
                code: "29463-7".into(),
                display: "Body weight".into(),
            }),
            device_id: String::new(),
        })),
        ..Default::default()
    };
    // Pad to the reference size once the log fields (position, hashes, times) are added.
    let target = 300usize.saturating_sub(110);
    let len = e.encoded_len();
    if let Some(Payload::ObservationRecorded(o)) = e.payload.as_mut() {
        o.device_id = "d".repeat(target.saturating_sub(len).max(1));
    }
    e
}

/// An `EventLog` client of the server at `url`, presenting no token (servers under test run
/// `--insecure`, or the caller adds its own token per request).
pub async fn log_client(url: &str) -> anyhow::Result<LogClient> {
    Remote::new(url, None)?.client().await
}

/// A connected channel to the server at `url`, without a token.
pub async fn channel(url: &str) -> anyhow::Result<tonic::transport::Channel> {
    Remote::new(url, None)?.channel().await
}

/// The server under test: `journey up` as a child process, killed when dropped.
pub struct ServerChild {
    pub child: Child,
    /// `http://host:port`, for gRPC clients.
    pub grpc: String,
    /// `host:port` of the status page.
    pub http: String,
}

impl ServerChild {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An `EventLog` client (the server runs `--insecure`: no token).
    pub async fn log_client(&self) -> anyhow::Result<LogClient> {
        log_client(&self.grpc).await
    }

    /// A connected channel to the server, for its other gRPC services (no token).
    pub async fn channel(&self) -> anyhow::Result<tonic::transport::Channel> {
        channel(&self.grpc).await
    }

    /// SIGTERM, then waits: the server closes its log cleanly.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `journey up` on `dir` (any free ports) and waits for its `ready` line.
pub fn start_server(dir: &Path, extra: &[&str]) -> anyhow::Result<ServerChild> {
    // The log's own paths are measured here; authentication has its own benchmark.
    start_server_with(dir, &[&["--insecure"], extra].concat())
}

/// Starts `journey up` on `dir` with exactly these extra flags (secure unless they say otherwise).
pub fn start_server_with(dir: &Path, extra: &[&str]) -> anyhow::Result<ServerChild> {
    let dir_arg = dir.display().to_string();
    // The anchor goes inside the run's temporary folder, removed with it (its default place,
    // next to the data folder, would outlive the run).
    let anchor = dir.join("anchor.json").display().to_string();
    let anchor_arg: &[&str] = if extra.contains(&"--anchor-file") {
        &[]
    } else {
        &["--anchor-file", &anchor]
    };
    let args = [
        &[
            "up",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            &dir_arg,
        ],
        anchor_arg,
        extra,
    ]
    .concat();
    spawn_ready(&args)
}

/// Runs this binary with `args` (a `journey up` or `journey serve …`) and waits for its
/// `ready grpc=… http=…` line.
pub fn spawn_ready(args: &[&str]) -> anyhow::Result<ServerChild> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        // `JOURNEY_BENCH_SERVER_LOG=info`: the server's own account of where its time went
        // (e.g. each FHIR export's stages), on this process's standard error.
        .env(
            "RUST_LOG",
            std::env::var("JOURNEY_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("JOURNEY_INSECURE")
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `journey {}`", args.join(" ")))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let mut grpc = String::new();
    let mut http = String::new();
    for part in line.trim().split(' ') {
        if let Some(a) = part.strip_prefix("grpc=") {
            grpc = format!("http://{a}");
        }
        if let Some(a) = part.strip_prefix("http=") {
            http = a.to_string();
        }
    }
    anyhow::ensure!(
        !grpc.is_empty(),
        "`journey {}` did not report ready ({line:?}); run it by hand to see why",
        args.join(" ")
    );
    Ok(ServerChild { child, grpc, http })
}

/// A database created for the run on the server of `server_url`, dropped at the end.
pub struct FreshPg {
    admin_url: String,
    name: String,
    pub url: String,
}

impl FreshPg {
    /// `journey_bench_<purpose>_<pid>` on the server of `server_url`.
    pub async fn create(server_url: &str, purpose: &str) -> anyhow::Result<FreshPg> {
        let (base, query) = match server_url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (server_url, String::new()),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let name = format!("journey_bench_{purpose}_{}", std::process::id());
        let url = match base[scheme_end..].find('/') {
            Some(i) => format!("{}/{name}{query}", &base[..scheme_end + i]),
            None => format!("{base}/{name}{query}"),
        };
        let mut admin = sqlx::PgConnection::connect(server_url)
            .await
            .with_context(|| {
                format!(
                    "cannot reach PostgreSQL at {}: start it or set --database-url",
                    db::redact(server_url)
                )
            })?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .with_context(|| {
                format!(
                    "cannot create a database on {}: the user needs CREATEDB",
                    db::redact(server_url)
                )
            })?;
        admin.close().await?;
        Ok(FreshPg {
            admin_url: server_url.to_string(),
            name,
            url,
        })
    }

    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {}", self.name))
            .execute(&mut admin)
            .await
            .with_context(|| format!("dropping the bench database {}", self.name))?;
        Ok(())
    }
}

/// CPU time (user + system, in seconds) that process `pid` has used so far, its finished threads
/// included; "self" for this process. 0 if it cannot be read.
pub fn cpu_seconds(pid: &str) -> f64 {
    // /proc counts in USER_HZ, 100 per second on Linux whatever the kernel's tick.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command (which may hold spaces), from field 3 on.
            let rest = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
            Some((ticks(11)? + ticks(12)?) / 100.0)
        })
        .unwrap_or(0.0)
}

/// The processes of this machine listening on any of these TCP ports (a local NATS cluster, to
/// count its CPU time): the sockets in LISTEN state in `/proc/net/tcp{,6}`, then the processes
/// holding them. Empty where that cannot be read (servers elsewhere, no /proc).
pub fn listening_pids(ports: &[u16]) -> Vec<u32> {
    let inodes: std::collections::HashSet<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
                    // State 0A: LISTEN; field 10: the socket's inode.
                    (f.get(3) == Some(&"0A") && ports.contains(&port))
                        .then(|| f.get(9).map(|i| i.to_string()))?
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .filter_map(Result::ok)
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
                fds.filter_map(Result::ok).any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| {
                        let l = l.to_string_lossy();
                        l.strip_prefix("socket:[")
                            .and_then(|r| r.strip_suffix(']'))
                            .is_some_and(|i| inodes.contains(i))
                    })
                })
            })
        })
        .collect()
}

/// Context switches (voluntary and not) of every thread of a process (`self` or a pid) so far.
pub fn context_switches(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

pub fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

pub fn step(s: &str) {
    eprintln!("bench: {s}…");
}

/// A latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// A latency as a readable figure: µs below 10 ms, ms above.
pub fn fmt_us(us: u64) -> String {
    if us < 10_000 {
        format!("{us} µs")
    } else {
        format!("{:.1} ms", us as f64 / 1000.0)
    }
}

/// The median and 99th percentile of a latency histogram (µs): `p50 / p99`, readable.
pub fn p50_p99(h: &Histogram<u64>) -> String {
    format!(
        "{} / {}",
        fmt_us(h.value_at_quantile(0.5)),
        fmt_us(h.value_at_quantile(0.99))
    )
}

/// The median and 99th percentile of `h` over those of `base`: `p50 / p99` with `decimals`
/// decimals.
pub fn p50_p99_ratio(h: &Histogram<u64>, base: &Histogram<u64>, decimals: usize) -> String {
    let q = |q: f64| h.value_at_quantile(q) as f64 / base.value_at_quantile(q) as f64;
    format!("{:.*} / {:.*}", decimals, q(0.5), decimals, q(0.99))
}

/// Prints a line to stderr at most every `every`, for long phases.
pub struct Ticker {
    every: Duration,
    last: std::sync::Mutex<Instant>,
}

impl Ticker {
    pub fn new(every: Duration) -> Ticker {
        Ticker {
            every,
            last: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Prints what `line` returns when the period has passed (or `force`).
    pub fn tick(&self, force: bool, line: impl FnOnce() -> String) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if force || last.elapsed() >= self.every {
            *last = Instant::now();
            eprintln!("bench:   {}", line());
        }
    }
}

/// The simulated window: the last `days` days up to now (as `journey simulate` does by default).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub seed: u64,
    pub start: i64,
    pub days: u32,
    pub horizon: i64,
}

impl Window {
    pub fn last_days(seed: u64, days: u32) -> Window {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let start = (now.div_euclid(86_400) - days as i64) * 86_400;
        Window {
            seed,
            start,
            days,
            horizon: now,
        }
    }

    /// Patient `index`'s whole journey, in append order.
    pub fn patient(&self, index: u64) -> Vec<Event> {
        journey_simulate::patient_events(self.seed, index, self.start, self.days, self.horizon)
    }
}

/// How far to fill.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// At least this many events (whole journeys: a few more).
    Events(u64),
    /// Patients `from..to`.
    Patients(u64),
}

#[derive(Debug, Clone, Copy)]
pub struct Filled {
    /// Events appended by this call.
    pub events: u64,
    /// The next patient index not yet appended.
    pub next_patient: u64,
    /// The log's head after the fill.
    pub head: u64,
}

/// Opens the log in `dir` in this process, with the journey rules, as `journey up` does.
pub async fn open_log(dir: &Path) -> anyhow::Result<Arc<EventLog>> {
    open_log_with(dir, None).await
}

/// [`open_log`], saving and reading back its state at `checkpoint` (as `journey up` does in its
/// data folder).
pub async fn open_log_with(
    dir: &Path,
    checkpoint: Option<std::path::PathBuf>,
) -> anyhow::Result<Arc<EventLog>> {
    let dir = dir.to_path_buf();
    let log = tokio::task::spawn_blocking(move || -> anyhow::Result<EventLog> {
        let storage = SledStorage::open(&dir)
            .with_context(|| format!("cannot open a bench log in {}", dir.display()))?;
        let options = LogOptions {
            checkpoint,
            ..LogOptions::default()
        };
        Ok(EventLog::open(
            Arc::new(storage),
            journey_services::gate::journey_rules(),
            options,
        )?)
    })
    .await??;
    Ok(Arc::new(log))
}

/// Appends `sample_event`s number `numbers` of `patient` straight into `log`, 100 a batch.
pub async fn append_patient_events(
    log: &EventLog,
    patient: &str,
    numbers: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    let mut events = numbers.map(|i| sample_event(patient, i)).peekable();
    while events.peek().is_some() {
        log.append(AppendRequest {
            events: events.by_ref().take(100).collect(),
            expected_versions: Default::default(),
            writer: None,
        })
        .await
        .with_context(|| format!("appending the events of {patient}"))?;
    }
    Ok(())
}

/// The SQLite file of the read models of `journey up` on `dir`.
pub fn read_models_url(dir: &Path) -> String {
    format!("sqlite://{}/read-models.sqlite", dir.display())
}

/// The rows of `table` in the live generation of `runner`'s read model.
pub async fn count_rows<P: Projection>(runner: &Runner<P>, table: &str) -> anyhow::Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {}{table}", runner.live_prefix());
    let row = sqlx::query(&sql).fetch_one(&runner.db.pool).await?;
    Ok(sqlx::Row::try_get(&row, 0)?)
}

/// Appends simulated journeys (patients `from_patient`, `from_patient + 1`, …, each whole and in
/// order) straight into `log` (the single writer and the journey rules, without gRPC), in batches
/// of 1000 from 4 tasks, with a progress line every few seconds.
pub async fn fill_log(
    log: &Arc<EventLog>,
    window: Window,
    from_patient: u64,
    until: Until,
) -> anyhow::Result<Filled> {
    const WORKERS: usize = 4;
    const BATCH: usize = 1000;
    let next = Arc::new(AtomicU64::new(from_patient));
    let appended = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let ticker = Arc::new(Ticker::new(Duration::from_secs(3)));
    let goal = match until {
        Until::Events(n) => format!("{n} events"),
        Until::Patients(n) => format!("patients up to {n}"),
    };
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (log, next, appended, ticker, goal) = (
                log.clone(),
                next.clone(),
                appended.clone(),
                ticker.clone(),
                goal.clone(),
            );
            tokio::spawn(async move {
                let mut buf: Vec<Event> = Vec::with_capacity(BATCH);
                loop {
                    let done = match until {
                        Until::Events(n) => {
                            appended.load(Ordering::Relaxed) + buf.len() as u64 >= n
                        }
                        Until::Patients(n) => next.load(Ordering::Relaxed) >= n,
                    };
                    if done {
                        break;
                    }
                    let p = next.fetch_add(1, Ordering::Relaxed);
                    if matches!(until, Until::Patients(n) if p >= n) {
                        break;
                    }
                    buf.extend(window.patient(p));
                    if buf.len() >= BATCH {
                        let n = buf.len() as u64;
                        log.append(AppendRequest {
                            events: std::mem::take(&mut buf),
                            expected_versions: Default::default(),
                            writer: None,
                        })
                        .await
                        .with_context(|| format!("filling the bench log (patient {p})"))?;
                        let total = appended.fetch_add(n, Ordering::Relaxed) + n;
                        ticker.tick(false, || {
                            format!(
                                "filled {total} events ({:.0} events/s), goal {goal}",
                                rate(total, started.elapsed())
                            )
                        });
                    }
                }
                if !buf.is_empty() {
                    let n = buf.len() as u64;
                    log.append(AppendRequest {
                        events: buf,
                        expected_versions: Default::default(),
                        writer: None,
                    })
                    .await
                    .context("filling the bench log")?;
                    appended.fetch_add(n, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let events = appended.load(Ordering::Relaxed);
    let next_patient = match until {
        Until::Patients(n) => n.max(from_patient),
        Until::Events(_) => next.load(Ordering::Relaxed),
    };
    let head = log.head().position;
    eprintln!(
        "bench:   filled {events} events of patients {from_patient}..{next_patient} in {:.1} s ({:.0} events/s); log head {head}",
        started.elapsed().as_secs_f64(),
        rate(events, started.elapsed())
    );
    Ok(Filled {
        events,
        next_patient,
        head,
    })
}

/// Which patient indexes a worker takes, so that each patient's events stay in order.
pub fn shard(worker: usize, workers: usize, from: u64) -> impl Iterator<Item = u64> {
    (0..).map(move |k: u64| from + worker as u64 + k * workers as u64)
}

/// A table row: name, figure, ratio to its baseline, notes.
pub struct Row {
    pub name: String,
    pub figure: String,
    pub ratio: String,
    pub note: String,
}

/// A row of a rate (events/s) against the rate of its baseline, `base`.
pub fn rate_row(name: impl Into<String>, per_sec: f64, base: f64, note: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        figure: format!("{per_sec:.0}"),
        ratio: format!("{:.3}", per_sec / base),
        note: note.into(),
    }
}

/// A baseline's row of latencies: p50 / p99 of `h`, ratio `1 / 1`.
pub fn baseline_row(name: impl Into<String>, h: &Histogram<u64>, note: impl Into<String>) -> Row {
    Row {
        name: name.into(),
        figure: p50_p99(h),
        ratio: "1 / 1".into(),
        note: note.into(),
    }
}

/// A row of latencies `h` against those of the baseline `base`: p50 / p99, and their ratios with
/// `decimals` decimals.
pub fn latency_row(
    name: impl Into<String>,
    h: &Histogram<u64>,
    base: &Histogram<u64>,
    decimals: usize,
    note: impl Into<String>,
) -> Row {
    Row {
        name: name.into(),
        figure: p50_p99(h),
        ratio: p50_p99_ratio(h, base, decimals),
        note: note.into(),
    }
}

pub fn print_table(headers: [&str; 4], rows: &[Row]) {
    println!(
        "| {} | {} | {} | {} |\n|---|---:|---:|---|",
        headers[0], headers[1], headers[2], headers[3]
    );
    for r in rows {
        println!("| {} | {} | {} | {} |", r.name, r.figure, r.ratio, r.note);
    }
}

/// The machine, for the report: CPU model, cores, memory.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cpu}, {cores} cores, {mem:.0} GiB")
}

/// Sequential calls after a warm-up of a tenth as many (cut short after a tenth of `budget`): at
/// most `calls`, and no more once `budget` has passed (at least 10). Latency histogram in µs.
pub async fn time_calls<F, Fut>(
    calls: u64,
    budget: Duration,
    mut call: F,
) -> anyhow::Result<Histogram<u64>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let warm = Instant::now();
    for i in 0..(calls / 10).max(1) {
        if i >= 1 && warm.elapsed() > budget / 10 {
            break;
        }
        call().await?;
    }
    let mut h = histogram();
    let started = Instant::now();
    for i in 0..calls {
        if i >= 10 && started.elapsed() > budget {
            break;
        }
        let t = Instant::now();
        call().await?;
        record(&mut h, t.elapsed());
    }
    Ok(h)
}

/// Calls `call` once for its answer (for the notes), then times it as [`time_calls`] does.
pub async fn answer_and_time<T, F, Fut>(
    calls: u64,
    budget: Duration,
    mut call: F,
) -> anyhow::Result<(T, Histogram<u64>)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let answer = call().await?;
    let h = time_calls(calls, budget, || {
        let answered = call();
        async move { answered.await.map(drop) }
    })
    .await?;
    Ok((answer, h))
}

pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("call refused ({:?}): {}", s.code(), s.message())
}

/// The do-nothing baseline: a gRPC health check, timed like the calls it is compared with.
pub async fn time_noop(
    channel: &tonic::transport::Channel,
    calls: u64,
    budget: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    time_calls(calls, budget, || {
        let mut c = health.clone();
        async move {
            c.check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .map_err(status)?;
            Ok(())
        }
    })
    .await
}

/// Runs a load generator on a runtime of its own, on one thread: the client's tasks (callers, the
/// channel's buffer, the HTTP/2 connection) hand work to each other without waking other threads,
/// so the client takes as little of the machine from the server under test as it can. (f) and the
/// loads compared with it use it alike.
pub async fn on_client_thread<T, Fut>(
    load: impl FnOnce() -> Fut + Send + 'static,
) -> anyhow::Result<T>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(load()));
            let _ = tx.send(result);
        })?;
    rx.await.context("the bench client thread stopped")?
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_listening_on_a_port_is_found_and_only_while_it_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let port = listener.local_addr().expect("its address").port();
        assert_eq!(super::listening_pids(&[port]), vec![std::process::id()]);
        // A connected socket on another port is not a listener.
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("another port");
        let _client = std::net::TcpStream::connect(other.local_addr().unwrap()).unwrap();
        drop(listener);
        assert!(super::listening_pids(&[port]).is_empty());
    }
}
