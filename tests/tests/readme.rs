//! README.md's commands, run as a newcomer types them.
//!
//! `readme_demo_and_tour`: the first command of "On a fresh machine" (`scripts/demo`) runs in a copy
//! of the clone (symlinks to the repository's files, its own `data` folder, and
//! `target/release/journey` pointing at the debug binary `scripts/test` built: no release build
//! here), on free ports; then every command of the fenced ```sh blocks of "A 2-minute tour" runs
//! as written, in one shell, from the copy's root, with `journey` reachable only through the
//! tour's own `export PATH=…` line. Each command must exit 0, except one whose sample output
//! (the `# ` lines under it) starts with `error:`: that one must exit 2 (the CLI's status for an
//! error) with the sample in its stderr. A sample must appear in what the command prints (`…`
//! stands for any text). The only rewriting: the default addresses 127.0.0.1:50051 and
//! 127.0.0.1:8080 become the demo's free ports (`JOURNEY_SERVER` for the verbs, the URL text for
//! curl). The dashboard URLs of the tour's text answer once signed in with `data/admin.token`, as
//! the tour says.
//!
//! `readme_journey_commands_exist`: every `journey …` the README names (code spans and ```sh
//! lines) is a verb of the binary, with the flags it shows; every script path it runs exists.
use journey_tests::journey_bin;
use std::{
    io::{BufRead, BufReader},
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

const README: &str = include_str!("../../README.md");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The text of the `## heading` section, up to the next `## `.
fn section(heading: &str) -> &'static str {
    let start = README
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README.md has no section \"## {heading}\""));
    let body = &README[start + 1..];
    let end = body[3..].find("\n## ").map_or(body.len(), |e| e + 3);
    &body[..end]
}

/// The contents of the fenced ```sh blocks of `text`, and `text` without its fenced blocks.
fn sh_blocks(text: &str) -> (Vec<String>, String) {
    let (mut blocks, mut prose) = (Vec::new(), String::new());
    let mut current: Option<(bool, String)> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(lang)) => current = Some((lang.trim() == "sh", String::new())),
            (Some((sh, block)), Some(_)) => {
                if *sh {
                    blocks.push(std::mem::take(block));
                }
                current = None;
            }
            (Some((_, block)), None) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, None) => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    (blocks, prose)
}

/// One command of a block (continuation lines included) and the sample output under it.
#[derive(Debug)]
struct Cmd {
    text: String,
    samples: Vec<String>,
}

fn commands(block: &str) -> Vec<Cmd> {
    let mut out: Vec<Cmd> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if continued {
            let last = out.last_mut().unwrap();
            last.text.push('\n');
            last.text.push_str(line);
        } else if let Some(sample) = line.trim_start().strip_prefix('#') {
            if let Some(last) = out.last_mut() {
                last.samples.push(sample.trim().to_string());
            }
        } else if !line.trim().is_empty() {
            out.push(Cmd {
                text: line.to_string(),
                samples: Vec::new(),
            });
        }
        continued = line.ends_with('\\');
    }
    out
}

/// Whether `text` holds `sample`, where `…` in the sample stands for any text.
fn shows(text: &str, sample: &str) -> bool {
    let mut rest = text;
    for piece in sample.split('…').map(str::trim).filter(|p| !p.is_empty()) {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

/// A copy of the clone in a temporary folder: symlinks to the repository's entries, its own
/// `data` folder, and `target/release/journey` → the debug binary.
fn clone_copy(root: &Path) {
    for entry in std::fs::read_dir(repo()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == "target" || n == ".git" || n == "data" || n.starts_with("data.") {
            continue;
        }
        std::os::unix::fs::symlink(entry.path(), root.join(&name)).unwrap();
    }
    std::fs::create_dir_all(root.join("target/release")).unwrap();
    std::os::unix::fs::symlink(journey_bin(), root.join("target/release/journey")).unwrap();
}

/// PATH without any folder holding a `journey` (an installed one must not stand in for the
/// tour's own PATH line).
fn path_without_journey() -> String {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty() && !Path::new(d).join("journey").exists())
        .collect::<Vec<_>>()
        .join(":")
}

/// A command with the test's environment cleared of `JOURNEY_*` and `NO_COLOR`.
fn shell(script: &str, cwd: &Path) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c").arg(script).current_dir(cwd).env("PWD", cwd);
    for (k, _) in std::env::vars() {
        if k.starts_with("JOURNEY_") || k == "NO_COLOR" {
            c.env_remove(k);
        }
    }
    c.env("PATH", path_without_journey());
    c
}

/// `scripts/demo` (as the README gives it), in its own process group, killed with it on drop.
struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: PathBuf,
    seen: Vec<String>,
}

impl Demo {
    /// Waits for a line of the demo's output starting with `prefix`.
    fn line(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.starts_with(prefix) {
                        return l;
                    }
                }
                Err(e) => panic!(
                    "scripts/demo printed no line starting with {prefix:?} ({e:?}); its output:\n{}\nits stderr:\n{}",
                    self.seen.join("\n"),
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                ),
            }
        }
    }

    /// Ctrl-C as a user would (the whole process group), then SIGKILL if it lingers.
    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let kill = |signal: &str| {
            let _ = Command::new("kill")
                .args([signal, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        if let Ok(Some(_)) = self.child.try_wait() {
            // The script is gone; its server (same group), if any, goes too.
            kill("-KILL");
            return;
        }
        kill("-INT");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("-KILL");
        let _ = self.child.wait();
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_demo(root: &Path, stderr: &Path) -> Demo {
    let (blocks, _) = sh_blocks(section("On a fresh machine"));
    let first = blocks
        .first()
        .and_then(|b| commands(b).into_iter().next())
        .expect("\"On a fresh machine\" starts with a ```sh block");
    assert!(
        first.text.contains("scripts/demo"),
        "the README's first command runs the demo: {first:?}"
    );
    let mut child = shell(&first.text, root)
        // scripts/demo's own switches: the debug binary instead of a release build, fewer patients.
        .env("JOURNEY_BIN", root.join("target/release/journey"))
        .env("DEMO_PATIENTS", "20")
        // Free ports rather than the defaults (other tests, a running demo).
        .env("JOURNEY_GRPC_ADDR", "127.0.0.1:0")
        .env("JOURNEY_HTTP_ADDR", "127.0.0.1:0")
        .env("JOURNEY_MLLP_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(stderr).unwrap())
        .process_group(0)
        .spawn()
        .expect("bash");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Demo {
        child,
        lines,
        stderr: stderr.to_path_buf(),
        seen: Vec::new(),
    }
}

fn curl(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("curl")
        .args(["-s", "-o", "body", "-w", "%{http_code} %{redirect_url}"])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into()
}

#[test]
fn readme_demo_and_tour() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("clone");
    std::fs::create_dir(&root).unwrap();
    clone_copy(&root);

    let stderr = work.path().join("demo.stderr");
    let mut demo = run_demo(&root, &stderr);
    let ready = demo.line("ready ", Duration::from_secs(60));
    let addr = |key: &str| {
        ready
            .split(' ')
            .find_map(|p| p.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {ready:?}"))
            .to_string()
    };
    let (grpc, http) = (addr("grpc="), addr("http="));
    let try_line = demo.line("try:", Duration::from_secs(120));
    demo.line("Ctrl-C stops", Duration::from_secs(10));

    // The demo prints the token the README tells the reader to sign in with.
    let token = std::fs::read_to_string(root.join("data/admin.token"))
        .expect("journey up wrote ./data/admin.token, where the README says");
    let token = token.trim();
    assert!(
        demo.seen
            .iter()
            .any(|l| l.contains("sign in") && l.contains(token)),
        "scripts/demo prints the admin token to sign in with: {:#?}",
        demo.seen
    );
    // Its suggestion runs and finds a simulated patient.
    let suggested = shell(try_line.trim_start_matches("try:").trim(), &root)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&suggested.stdout);
    assert!(
        suggested.status.success() && printed.contains(" by ") && !printed.contains("no events"),
        "{try_line}: {suggested:?}"
    );

    // The tour, every command as written, in one shell.
    let tour = section("A 2-minute tour");
    let (blocks, prose) = sh_blocks(tour);
    let cmds: Vec<Cmd> = blocks.iter().flat_map(|b| commands(b)).collect();
    assert!(cmds.len() >= 5, "the tour's commands: {cmds:#?}");
    let outputs = work.path().join("out");
    std::fs::create_dir(&outputs).unwrap();
    let o = outputs.display();
    let mut script = String::from("set -o pipefail\n");
    for (i, c) in cmds.iter().enumerate() {
        let text = c
            .text
            .replace("127.0.0.1:8080", &http)
            .replace("127.0.0.1:50051", &grpc);
        script.push_str(&format!(
            "{{ {text}\n}} > {o}/{i}.out 2> {o}/{i}.err < /dev/null; echo $? > {o}/{i}.rc\n"
        ));
    }
    let ran = shell(&script, &root)
        .env("JOURNEY_SERVER", format!("http://{grpc}"))
        .output()
        .unwrap();
    assert!(ran.status.success(), "{ran:?}");
    for (i, c) in cmds.iter().enumerate() {
        let read = |ext: &str| std::fs::read_to_string(outputs.join(format!("{i}.{ext}")));
        let rc: i32 = read("rc")
            .unwrap_or_else(|_| panic!("`{}` did not run", c.text))
            .trim()
            .parse()
            .unwrap();
        let (out, err) = (read("out").unwrap(), read("err").unwrap());
        let refusal = c.samples.first().is_some_and(|s| s.starts_with("error:"));
        let context = || {
            format!(
                "README command:\n{}\nexit {rc}\nstdout:\n{out}\nstderr:\n{err}",
                c.text
            )
        };
        assert_eq!(rc, if refusal { 2 } else { 0 }, "{}", context());
        for sample in &c.samples {
            let shown = if refusal {
                err.clone()
            } else {
                format!("{out}{err}")
            };
            assert!(
                shows(&shown, sample),
                "the README shows {sample:?}; {}",
                context()
            );
        }
    }

    // The dashboard pages the tour points at: the sign-in form first, then the page once signed in
    // with the admin token from data/admin.token.
    let urls: Vec<String> = prose
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("http://127.0.0.1:8080"))
        .map(|p| p.trim_end_matches(['.', ',', ':', ';', ')']).to_string())
        .collect();
    assert!(!urls.is_empty(), "the tour points at the dashboard");
    for path in urls {
        let url = format!("http://{http}{path}");
        let anonymous = curl(&[&url], work.path());
        assert!(
            anonymous.starts_with("303 ") && anonymous.contains("/login"),
            "{url} without a session: {anonymous}"
        );
        let login = format!("http://{http}/login");
        let signed_in = curl(
            &[
                "-c",
                "jar",
                "--data-urlencode",
                &format!("token={token}"),
                &login,
            ],
            work.path(),
        );
        assert!(signed_in.starts_with("303 "), "sign-in: {signed_in}");
        let page = curl(&["-b", "jar", &url], work.path());
        let body = std::fs::read_to_string(work.path().join("body")).unwrap();
        assert!(page.starts_with("200 "), "{url} signed in: {page}\n{body}");
        if path.contains("demo-patient-1") {
            assert!(body.contains("demo-patient-1"), "{url}: {body}");
        }
    }

    // Logs written to a file carry no colour codes.
    demo.stop();
    let logs = std::fs::read_to_string(&stderr).unwrap();
    assert!(logs.contains("INFO"), "the server's logs: {logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "escape codes in a log file: {logs}"
    );
}

/// `journey` then the words naming a verb (alternatives `a|b` expanded) and the flags shown.
fn verb_and_flags(command: &str) -> Option<(Vec<Vec<String>>, Vec<String>)> {
    let mut tokens = command.split_whitespace();
    if tokens.next() != Some("journey") {
        return None;
    }
    let mut paths: Vec<Vec<String>> = vec![Vec::new()];
    let mut flags = Vec::new();
    let mut words_done = false;
    for t in tokens {
        if t == "#" {
            break;
        }
        if let Some(flag) = t.strip_prefix("--") {
            words_done = true;
            let name: String = flag
                .split('=')
                .next()
                .unwrap()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flags.push(format!("--{name}"));
        } else if words_done
            || !t
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '|')
        {
            words_done = true;
        } else {
            paths = paths
                .iter()
                .flat_map(|p| {
                    t.split('|').map(move |alt| {
                        let mut p = p.clone();
                        p.push(alt.to_string());
                        p
                    })
                })
                .collect();
        }
    }
    Some((paths, flags))
}

#[test]
fn readme_journey_commands_exist() {
    let (blocks, prose) = sh_blocks(README);
    let mut named: Vec<String> = prose
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|span| span.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for block in &blocks {
        for c in commands(block) {
            let line = c.text.replace("\\\n", " ");
            let first = line.split_whitespace().next().unwrap_or("");
            if first.contains('/') && !first.contains('$') {
                let path = repo().join(first);
                let mode = std::fs::metadata(&path)
                    .unwrap_or_else(|_| panic!("README runs {first}, which is missing"))
                    .permissions()
                    .mode();
                assert!(mode & 0o111 != 0, "README runs {first}, not executable");
            }
            for part in line.split(['|', '&', ';']) {
                named.push(part.trim().to_string());
            }
        }
    }
    let mut checked = 0;
    for command in named {
        let Some((paths, flags)) = verb_and_flags(&command) else {
            continue;
        };
        for path in paths {
            let out = Command::new(journey_bin())
                .args(&path)
                .arg("--help")
                .output()
                .unwrap();
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "README names `{command}`: `journey {} --help` fails: {}",
                path.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            for flag in &flags {
                let whole = help.match_indices(flag.as_str()).any(|(at, _)| {
                    !help[at + flag.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
                });
                assert!(
                    whole,
                    "README names `{command}`: `journey {}` has no {flag}",
                    path.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 10,
        "only {checked} `journey …` commands found in README.md"
    );

    // The demo shows cargo's progress, and the README says how long the first build takes.
    let demo = std::fs::read_to_string(repo().join("scripts/demo")).unwrap();
    for line in demo
        .lines()
        .filter(|l| l.trim_start().starts_with("cargo build"))
    {
        assert!(
            !line.contains(" -q") && !line.contains("--quiet"),
            "scripts/demo hides cargo's progress: {line}"
        );
    }
    assert!(
        section("On a fresh machine").contains("minutes on 2 cores"),
        "README.md says how long the first build takes"
    );
}

#[test]
fn samples_match() {
    assert!(shows(
        "ok: 2 events verified; head position 2 hash ab",
        "ok: … events verified; head position … hash …"
    ));
    assert!(!shows("FAILED at position 2", "ok: … events verified"));
    assert!(shows("x error: a (b): c\n", "error: a (b): c"));
    assert!(!shows("error: a (b): d", "error: a (b): c"));
}
