//! Backup and restore (issue 16, point 3) through the real binary: a backup taken while appends go
//! on restores to a log with its manifest's head that `journey up` serves, verifies and projects
//! as a rebuild does; an incremental backup continues a full one; a damaged backup, a backup older
//! than the anchor, or a used folder is refused with what is wrong, and nothing is written; a log
//! rebuilt from the NATS stream alone has the live log's head, and a stream with a hole is refused.
use journey_proto::{hex::hex, prost::Message};
use journey_tests::{replicated::head, *};
use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The events of the log at `grpc` up to position `to`.
async fn read_all(grpc: &str, to: u64) -> Vec<journey_proto::v1::Event> {
    let mut events = read_log(grpc, None).await;
    events.truncate(to as usize);
    events
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Appends observations from 4 callers until `stop`; counts them.
fn append_until(
    server: &Server,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..4)
        .map(|k| {
            let grpc = server.grpc.clone();
            let (stop, count) = (stop.clone(), count.clone());
            tokio::spawn(async move {
                let mut c = journey_tests::client::connect(&grpc, None).await.unwrap();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let events = (0..5)
                        .map(|j| observation(&format!("B-{k}"), (i * 5 + j) as f64))
                        .collect();
                    c.append(batch(events)).await.unwrap();
                    count.fetch_add(5, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect()
}

/// Waits until the appenders counted `n` events; fails, rather than waiting for ever, when one of
/// them stopped (its refusal is printed above) or after a minute.
async fn appended_at_least(count: &AtomicU64, n: u64, appenders: &[tokio::task::JoinHandle<()>]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) < n {
        assert!(
            appenders.iter().all(|a| !a.is_finished()),
            "an appender stopped at {} events of {n}",
            count.load(Ordering::Relaxed)
        );
        assert!(
            Instant::now() < deadline,
            "{} events appended of {n} after a minute",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_appends_restores_to_its_head_and_serves_what_a_rebuild_gives() {
    let dir = tempfile::tempdir().unwrap();
    let live = Server::start(&dir.path().join("live"), &[]);
    load_stays(&live, "B", 0..30).await;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let appenders = append_until(&live, stop.clone(), count.clone());
    // Appends are going on before and while the backup runs.
    appended_at_least(&count, 500, &appenders).await;
    let full = dir.path().join("backup-1");
    let args = ["backup", "--to", s(&full), "--server", &live.grpc].map(String::from);
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        journey(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let appended_during = count.load(Ordering::Relaxed);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("backup written to"), "{out}");
    let m = manifest(&full);
    let p = m["head_position"].as_u64().unwrap();
    // Appends went on after the backup's head was taken: the copy is a prefix, not the whole log.
    appended_at_least(&count, appended_during + 200, &appenders).await;
    stop.store(true, Ordering::Relaxed);
    for a in appenders {
        a.await.unwrap();
    }
    let (live_head, _) = head(&live.grpc).await;
    assert!(
        p >= 500 && p < live_head,
        "backup head {p}, live head {live_head}"
    );
    assert_eq!(m["from_position"], 1);
    assert_eq!(m["events"].as_u64(), Some(p));
    assert!(
        m["program"].as_str().unwrap().starts_with("journey "),
        "{m}"
    );
    assert!(m["taken_at"].as_str().unwrap().ends_with('Z'), "{m}");
    assert!(!full.join("manifest.json.tmp").exists());
    // Patient data: the folder and its files are the owner's only.
    assert_eq!(mode(&full), 0o700);
    assert_eq!(mode(&full.join("events.log")), 0o600);
    assert_eq!(mode(&full.join("manifest.json")), 0o600);

    // Restored: the same head as the manifest, the same events as the live log up to it.
    let restored = dir.path().join("restored");
    let (code, out, err) = journey(&["restore", s(&full), "--data-dir", s(&restored)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "head position {p} hash {}",
            m["head_hash"].as_str().unwrap()
        )),
        "{out}"
    );
    assert_eq!(mode(&restored), 0o700);
    let served = Server::start(&restored, &[]);
    let (h, hash) = head(&served.grpc).await;
    assert_eq!(
        (h, hex(&hash)),
        (p, m["head_hash"].as_str().unwrap().to_string())
    );
    assert_eq!(
        read_all(&served.grpc, p).await,
        read_all(&live.grpc, p).await,
        "the same stored events"
    );
    let (code, out, err) = journey(&["verify", "--server", &served.grpc]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("ok: {p} events verified")), "{out}");

    // Its read models, projected from the restored log, equal a rebuild and the live log's.
    wait_projected(&served.grpc, p).await;
    let projected = all_stays_paged(&served.grpc, 7).await;
    assert_eq!(projected.len(), 40, "30 stays and 10 readmissions");
    let (code, out, err) = journey(&["rebuild", "readmission", "--server", &served.grpc]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        all_stays_paged(&served.grpc, 7).await,
        projected,
        "rebuild = projected"
    );
    wait_projected(&live.grpc, live_head).await;
    assert_eq!(
        all_stays_paged(&live.grpc, 7).await,
        projected,
        "the live log's read model"
    );

    // An incremental backup continues the full one; restored together they end at its head.
    let next = dir.path().join("backup-2");
    let (code, _, err) = journey(&[
        "backup",
        "--to",
        s(&next),
        "--since",
        s(&full),
        "--server",
        &live.grpc,
    ]);
    assert_eq!(code, 0, "{err}");
    let m2 = manifest(&next);
    assert_eq!(m2["from_position"].as_u64(), Some(p + 1));
    assert_eq!(m2["head_position"].as_u64(), Some(live_head));
    let both = dir.path().join("restored-2");
    let (code, out, err) = journey(&["restore", s(&full), s(&next), "--data-dir", s(&both)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "head position {live_head} hash {}",
            hex(&head(&live.grpc).await.1)
        )),
        "{out}"
    );
    // An incremental backup alone is refused: it does not start the chain.
    let alone = dir.path().join("restored-3");
    let (code, _, err) = journey(&["restore", s(&next), "--data-dir", s(&alone)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is an incremental backup") && err.contains("give the full backup"),
        "{err}"
    );
    assert!(!alone.exists());
}

/// A copy of the backup folder `from` at `to`.
fn copy_dir(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
    to.to_path_buf()
}

/// `journey restore backup --data-dir target` is refused: (stderr), and neither the target nor a
/// temporary folder beside it exists afterwards.
fn refused(backup: &Path, target: &Path, extra: &[&str]) -> String {
    let mut args = vec!["restore", s(backup), "--data-dir", s(target)];
    args.extend_from_slice(extra);
    let (code, out, err) = journey(&args);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(!target.exists(), "{} written", target.display());
    let parent = target.parent().unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_backup_an_outdated_one_or_a_used_folder_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let live = Server::start(&dir.path().join("live"), &[]);
    load_stays(&live, "B", 0..12).await;
    let good = dir.path().join("good");
    let (code, _, err) = journey(&["backup", "--to", s(&good), "--server", &live.grpc]);
    assert_eq!(code, 0, "{err}");
    let m = manifest(&good);
    let p = m["head_position"].as_u64().unwrap();
    let events_len = std::fs::metadata(good.join("events.log")).unwrap().len();
    let target = dir.path().join("target");

    // One byte changed in the last event's stored bytes.
    let altered = copy_dir(&good, &dir.path().join("altered"));
    let mut bytes = std::fs::read(altered.join("events.log")).unwrap();
    *bytes.last_mut().unwrap() ^= 0x01;
    std::fs::write(altered.join("events.log"), bytes).unwrap();
    let err = refused(&altered, &target, &[]);
    assert!(
        err.contains(&format!(
            "position {p}: the event's bytes do not match its hash"
        )),
        "{err}"
    );
    assert!(err.contains("nothing was written"), "{err}");

    // The events file cut short.
    let cut = copy_dir(&good, &dir.path().join("cut"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(cut.join("events.log"))
        .unwrap();
    file.set_len(events_len - 10).unwrap();
    let err = refused(&cut, &target, &[]);
    assert!(
        err.contains(&format!(
            "is truncated: it holds {} bytes, its manifest says {events_len}",
            events_len - 10
        )),
        "{err}"
    );

    // A manifest that names another head hash.
    let other = copy_dir(&good, &dir.path().join("other-head"));
    let mut m2 = m.clone();
    m2["head_hash"] = serde_json::json!("ab".repeat(32));
    std::fs::write(other.join("manifest.json"), m2.to_string()).unwrap();
    let err = refused(&other, &target, &[]);
    assert!(
        err.contains("does not match its manifest") && err.contains(&"ab".repeat(32)),
        "{err}"
    );

    // A folder without a manifest is an unfinished backup.
    let unfinished = copy_dir(&good, &dir.path().join("unfinished"));
    std::fs::remove_file(unfinished.join("manifest.json")).unwrap();
    let err = refused(&unfinished, &target, &[]);
    assert!(err.contains("it is not a finished backup"), "{err}");

    // An anchor past the backup's head: restoring it would lose anchored events.
    let anchor = dir.path().join("anchor.json");
    let a = serde_json::json!({"position": p + 5, "hash": "cd".repeat(32)});
    std::fs::write(&anchor, a.to_string()).unwrap();
    let err = refused(&good, &target, &["--anchor", s(&anchor)]);
    assert!(
        err.contains(&format!(
            "the anchor says the log reached position {}",
            p + 5
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("events {} to {} would be lost", p + 1, p + 5)),
        "{err}"
    );
    // An anchor on a position of the backup with another hash: not this log's backup.
    let a = serde_json::json!({"position": p - 1, "hash": "cd".repeat(32)});
    std::fs::write(&anchor, a.to_string()).unwrap();
    let err = refused(&good, &target, &["--anchor", s(&anchor)]);
    assert!(err.contains("is not of the anchored log"), "{err}");

    // A folder that holds anything is never written over.
    let used = dir.path().join("used");
    std::fs::create_dir(&used).unwrap();
    std::fs::write(used.join("keep"), "x").unwrap();
    let (code, _, err) = journey(&["restore", s(&good), "--data-dir", s(&used)]);
    assert_eq!(code, 2);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&used).unwrap().count(), 1);
    // And a backup is never written into a used folder either.
    let (code, _, err) = journey(&["backup", "--to", s(&used), "--server", &live.grpc]);
    assert_eq!(code, 2);
    assert!(err.contains("is not empty"), "{err}");

    // The good backup, with the live log's anchor, restores into an empty folder.
    let anchor = dir.path().join("live").join("anchor.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !anchor.exists() {
        assert!(Instant::now() < deadline, "no anchor written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::create_dir(&target).unwrap();
    let (code, out, err) = journey(&[
        "restore",
        s(&good),
        "--data-dir",
        s(&target),
        "--anchor",
        s(&anchor),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("restored {p} events")), "{out}");
}

/// `journey restore --from-nats … --stream stream --data-dir target`.
fn from_nats(nats: &Nats, stream: &str, target: &Path, extra: &[&str]) -> (i32, String, String) {
    let url = nats.url();
    let mut args = vec![
        "restore",
        "--from-nats",
        &url,
        "--stream",
        stream,
        "--data-dir",
        s(target),
    ];
    args.extend_from_slice(extra);
    journey(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_rebuilt_from_the_nats_stream_alone_has_the_live_head() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let live = Server::publishing(&dir.path().join("live"), &nats, "BACKUPS");
    load_stays(&live, "B", 0..20).await;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let appenders = append_until(&live, stop.clone(), count.clone());
    appended_at_least(&count, 1_000, &appenders).await;
    stop.store(true, Ordering::Relaxed);
    for a in appenders {
        a.await.unwrap();
    }
    let (p, hash) = head(&live.grpc).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&live).await["nats_published"].as_u64() != Some(p) {
        assert!(Instant::now() < deadline, "outbox stuck");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The live log's anchor: the stream must hold its event, with its hash.
    let anchor = dir.path().join("live").join("anchor.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !anchor.exists() {
        assert!(Instant::now() < deadline, "no anchor written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rebuilt = dir.path().join("from-nats");
    let (code, out, err) = from_nats(&nats, "BACKUPS", &rebuilt, &["--anchor", s(&anchor)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("head position {p} hash {}", hex(&hash))),
        "{out}"
    );
    let served = Server::start(&rebuilt, &[]);
    assert_eq!(head(&served.grpc).await, (p, hash));
    let (code, out, err) = journey(&["verify", "--server", &served.grpc]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        read_all(&served.grpc, p).await,
        read_all(&live.grpc, p).await
    );

    // A stream with a hole (an event two positions past the head, well formed and published
    // there) is refused, and nothing is written.
    let mut forged = read_all(&live.grpc, p).await.pop().unwrap();
    forged.hash.clear();
    forged.position = p + 2;
    forged.event_id = uuid::Uuid::new_v4().to_string();
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish(
        "journey.v1.observation_recorded",
        forged.encode_to_vec().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let target = dir.path().join("from-forged");
    let (code, _, err) = from_nats(&nats, "BACKUPS", &target, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("position {} is missing", p + 1))
            && err.contains("nothing was written"),
        "{err}"
    );
    assert!(!target.exists());
    // An anchor whose event the stream holds with another hash: not this log's stream.
    let other = dir.path().join("other-anchor.json");
    let a = serde_json::json!({"position": p - 1, "hash": "cd".repeat(32)});
    std::fs::write(&other, a.to_string()).unwrap();
    let (code, _, err) = from_nats(&nats, "BACKUPS", &target, &["--anchor", s(&other)]);
    assert_eq!(code, 2);
    assert!(
        err.contains("this stream is not of the anchored log"),
        "{err}"
    );
    assert!(!target.exists());
    // A stream that is not there is named.
    let (code, _, err) = from_nats(&nats, "NOSUCH", &target, &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no JetStream stream NOSUCH"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_log_is_copied_with_its_admin_token_and_refuses_a_wrong_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let anchor = dir.path().join("anchor.json");
    let server = spawn_ready_with_env(
        &[
            "up",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--no-reactor",
            "--no-read-models",
            "--data-dir",
            s(&data),
            "--anchor-file",
            s(&anchor),
        ],
        &[("JOURNEY_INSECURE", "false")],
    );
    let admin = admin_token(&data);
    let mut c = journey_tests::client::connect(&server.grpc, Some(&admin))
        .await
        .unwrap();
    append_batch(
        &mut c,
        vec![observation("S-1", 1.0), observation("S-2", 2.0)],
    )
    .await;

    // A wrong token is refused by the server, and no unfinished backup is left behind.
    let refused_to = dir.path().join("refused");
    let (code, _, err) = journey(&[
        "backup",
        "--to",
        s(&refused_to),
        "--server",
        &server.grpc,
        "--token",
        "not-a-token",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("head refused (Unauthenticated)"), "{err}");
    assert!(!refused_to.exists());

    // The local admin token, read from the data folder as every verb does.
    let to = dir.path().join("copy");
    let out = Command::new(journey_bin())
        .args(["backup", "--to", s(&to), "--server", &server.grpc])
        .env("JOURNEY_DATA_DIR", &data)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(manifest(&to)["head_position"], 2);
}
