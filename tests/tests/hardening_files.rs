//! Hardening (issue 19): patient data on disk is its owner's only whatever the umask (the log
//! folder, sled's files, the journal, the read models, the anchor file), and a server refuses to
//! start on secrets that are too short or readable by others (an empty HS256 secret let anyone
//! sign an admin JWT).
use journey_proto::v1::{event_log_client::EventLogClient, HeadRequest};
use journey_tests::*;
use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const UP: [&str; 5] = [
    "up",
    "--grpc-addr",
    "127.0.0.1:0",
    "--http-addr",
    "127.0.0.1:0",
];

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every folder under `dir` (itself included) and every file, with its mode.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, bool, u32)>) {
    let is_dir = std::fs::symlink_metadata(dir).unwrap().is_dir();
    out.push((dir.to_path_buf(), is_dir, mode(dir)));
    if is_dir {
        for entry in std::fs::read_dir(dir).unwrap() {
            walk(&entry.unwrap().path(), out);
        }
    }
}

/// `journey up` (secure) on `data`, started under `umask 000`; the `ready` line read as the
/// harness does.
fn up_with_umask_000(data: &Path) -> Server {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"umask 000; exec "$0" "$@""#)
        .arg(journey_bin())
        .args(UP)
        .arg("--data-dir")
        .arg(data)
        .env("JOURNEY_INSECURE", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("ready line");
    let addr = |key: &str| {
        line.split_whitespace()
            .find_map(|p| p.strip_prefix(key))
            .map(|a| format!("http://{a}"))
            .unwrap_or_else(|| panic!("no ready line: {line:?}"))
    };
    Server {
        grpc: addr("grpc="),
        http: addr("http="),
        child,
    }
}

#[tokio::test]
async fn patient_data_is_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = up_with_umask_000(&data);
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let mut client = client::connect(&server.grpc, Some(admin.trim()))
        .await
        .unwrap();
    let head = append_batch(
        &mut client,
        vec![
            admitted("FILES-1", "E-FILES-1", 3600),
            observation("FILES-1", 1.0),
        ],
    )
    .await;
    wait_projected_as(&server.grpc, head, Some(admin.trim())).await;
    drop(client);
    // Lets the dropped connections close (the server would wait 5 s for them).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.terminate().success(), "clean shutdown");

    let anchor = tmp.path().join("data.anchor.json");
    for must in [
        data.join("journal"),
        data.join("db"),
        data.join("read-models.sqlite"),
        anchor.clone(),
    ] {
        assert!(must.exists(), "{} is missing", must.display());
    }
    let mut found = Vec::new();
    walk(&data, &mut found);
    found.push((anchor.clone(), false, mode(&anchor)));
    let exposed: Vec<String> = found
        .iter()
        .filter(|(_, is_dir, m)| *m != if *is_dir { 0o700 } else { 0o600 })
        .map(|(p, is_dir, m)| {
            let want = if *is_dir { "0700" } else { "0600" };
            format!("{} is {m:04o}, not {want}", p.display())
        })
        .collect();
    assert!(
        exposed.is_empty(),
        "patient data readable by others (umask 000):\n{}",
        exposed.join("\n")
    );
}

/// Writes `text` to `dir/name` with `mode`; returns the path.
fn secret(dir: &Path, name: &str, text: &str, mode: u32) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p.display().to_string()
}

/// A secure `journey up` with `flags`, expected to refuse to start before it touches its data
/// folder: its exit code and stderr.
fn refused(dir: &Path, flags: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(journey_bin())
        .args(UP)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(flags)
        .env("JOURNEY_INSECURE", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn journey");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "journey up {flags:?} started instead of refusing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        !dir.join("data").exists(),
        "a refused start created the data folder"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD_KEYS: &str = "\
# key role subject organisation
svc-0123456789abcdef service projector backbone
";
const GOOD_SECRET: &str = "0123456789abcdef0123456789abcdef\n";

#[test]
fn weak_or_exposed_secrets_refuse_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // A whitespace-only HS256 secret: anyone could sign an admin JWT with the empty key.
    let blank = secret(dir, "blank.secret", " \n\t\n", 0o600);
    let (code, err) = refused(dir, &["--jwt-hs256-secret-file", &blank]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&blank) && err.contains("at least 32"), "{err}");
    let short = secret(dir, "short.secret", "a shared secret\n", 0o600);
    let (code, err) = refused(dir, &["--jwt-hs256-secret-file", &short]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&short) && err.contains("15 bytes"), "{err}");

    // A short API key: the file and its line are named.
    let keys = secret(
        dir,
        "short-keys.txt",
        &format!("{GOOD_KEYS}k-partner partner hospital-a chu-a\n"),
        0o600,
    );
    let (code, err) = refused(dir, &["--api-keys-file", &keys]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("{keys}:3:")) && err.contains("at least 16"),
        "{err}"
    );

    // Secret files readable by group or others.
    let open_keys = secret(dir, "open-keys.txt", GOOD_KEYS, 0o644);
    let (code, err) = refused(dir, &["--api-keys-file", &open_keys]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("chmod 600 {open_keys}")), "{err}");
    let group_secret = secret(dir, "group.secret", GOOD_SECRET, 0o640);
    let (code, err) = refused(dir, &["--jwt-hs256-secret-file", &group_secret]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("chmod 600 {group_secret}")), "{err}");
}

#[tokio::test]
async fn compliant_secrets_start_and_the_empty_key_signs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keys = secret(dir, "keys.txt", GOOD_KEYS, 0o600);
    let hs256 = secret(dir, "hs256.secret", GOOD_SECRET, 0o400);
    let data = dir.join("data").display().to_string();
    let mut args = UP.to_vec();
    args.extend([
        "--data-dir",
        &data,
        "--api-keys-file",
        &keys,
        "--jwt-hs256-secret-file",
        &hs256,
    ]);
    let server = spawn_ready_with_env(&args, &[("JOURNEY_INSECURE", "false")]);
    let jwt = |key: &[u8]| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({"sub": "x", "role": "admin", "org": "x", "exp": jsonwebtoken::get_current_timestamp() + 3600}),
            &jsonwebtoken::EncodingKey::from_secret(key),
        )
        .unwrap()
    };
    let head = |token: String| {
        let grpc = server.grpc.clone();
        async move {
            EventLogClient::with_interceptor(
                client::channel(&grpc).await.unwrap(),
                client::token(Some(&token)).unwrap(),
            )
            .head(HeadRequest {})
            .await
            .map(|_| ())
            .map_err(|s| s.code())
        }
    };
    assert_eq!(head(jwt(b"")).await, Err(tonic::Code::Unauthenticated));
    assert_eq!(head(jwt(GOOD_SECRET.trim().as_bytes())).await, Ok(()));
    assert_eq!(head("svc-0123456789abcdef".into()).await, Ok(()));
}
