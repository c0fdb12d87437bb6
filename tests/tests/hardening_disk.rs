//! A log whose disk fills up: appends are refused from the failure on, the server stops in order
//! and exits saying what to do (not SERVING a log that takes no writes), and once there is space
//! again it starts and holds every event it acknowledged.
//!
//! The disk is a tmpfs of a few MiB mounted for the test (the test machine runs the tests as
//! root, as CI does).
use journey_proto::v1::{HeadRequest, VerifyRequest};
use journey_tests::*;
use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs and needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_path_buf())
    }

    fn grow(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// `journey up` with the log alone on `data`, anchored in `anchor`, on free ports.
fn up(data: &Path, anchor: &Path) -> Command {
    let mut command = log_only_up(data);
    command.arg("--anchor-file").arg(anchor);
    command
}

/// `journey up` on `data`, its stderr kept; the gRPC address once it is ready.
fn start(data: &Path, anchor: &Path) -> (std::process::Child, String) {
    let mut child = up(data, anchor)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let grpc = line
        .split(' ')
        .find_map(|p| p.strip_prefix("grpc="))
        .unwrap_or_else(|| panic!("no ready line: {line:?}"))
        .trim()
        .to_string();
    (child, format!("http://{grpc}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_log_in_order_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mount = Mount::tmpfs(&dir.path().join("disk"), "12m");
    let data = dir.path().join("disk/data");
    let anchor = dir.path().join("anchor.json");
    let (mut child, grpc) = start(&data, &anchor);

    // Fill the disk: every acknowledged position is remembered.
    let mut log = client::connect(&grpc, None).await.unwrap();
    let mut acknowledged = 0u64;
    let mut refusal = None;
    for i in 0..10_000 {
        let events: Vec<_> = (0..20)
            .map(|j| {
                let mut e = observation(&format!("DISK-{i}-{j}"), 1.0);
                e.source = "x".repeat(8_000);
                e
            })
            .collect();
        match log.append(batch(events)).await {
            Ok(r) => acknowledged = r.into_inner().appended.last().unwrap().position,
            Err(status) => {
                refusal = Some(status);
                break;
            }
        }
    }
    let refusal = refusal.expect("the disk never filled up");
    assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
    assert!(
        acknowledged > 0,
        "nothing was acknowledged before the disk filled up"
    );

    // The server stops by itself, and says why and what to do.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| {
        panic!("the server kept running on a log that cannot write (the append was refused with {refusal:?}): {stderr}")
    });
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot write") && stderr.contains("Free disk space"),
        "{stderr}"
    );

    // With space again, the log starts and holds every acknowledged event, its chain whole.
    mount.grow("64m");
    let (mut child, grpc) = start(&data, &anchor);
    let mut log = client::connect(&grpc, None).await.unwrap();
    let head = log
        .head(HeadRequest {})
        .await
        .unwrap()
        .into_inner()
        .position;
    assert!(
        head >= acknowledged,
        "head {head} < acknowledged {acknowledged}"
    );
    let v = log
        .verify(VerifyRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.checked, head);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
}

/// A start that cannot open the log says why: a full disk (and how much space the log needs), or
/// a folder another server holds, never the one for the other.
#[test]
fn a_start_that_cannot_open_the_log_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let start = |data: &Path| up(data, &dir.path().join("anchor.json")).output().unwrap();

    let _small = Mount::tmpfs(&dir.path().join("small"), "4m");
    let out = start(&dir.path().join("small/data"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is full") && stderr.contains("16 MiB") && !stderr.contains("another"),
        "{stderr}"
    );

    let data = dir.path().join("data");
    let running = Server::start(&data, &["--no-reactor", "--no-read-models"]);
    let out = start(&data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("in use by another process") && !stderr.contains("full"),
        "{stderr}"
    );
    drop(running);
}
