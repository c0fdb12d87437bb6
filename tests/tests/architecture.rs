//! The invariants of ARCHITECTURE.md that the compiler cannot see: the crate graph (who may
//! depend on whom), the size of the crates, and the one place where gRPC statuses are built.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Each workspace crate: its folder and the names of its normal (non-dev) dependencies.
fn crates() -> BTreeMap<String, (PathBuf, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let dir = Path::new(p["manifest_path"].as_str().unwrap())
                .parent()
                .unwrap()
                .to_path_buf();
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), (dir, deps))
        })
        .collect()
}

fn assert_none_of(krate: &str, forbidden: &[&str]) {
    let all = crates();
    let (_, deps) = &all[krate];
    let found: Vec<_> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(found.is_empty(), "{krate} must not depend on {found:?}");
}

#[test]
fn the_crate_graph_keeps_each_role_in_its_place() {
    // The log knows no rules, no network, no SQL.
    assert_none_of(
        "journey-event-log",
        &["journey-domain", "tonic", "async-nats", "sqlx", "axum"],
    );
    // The rules do no IO and do not know the log.
    assert_none_of(
        "journey-domain",
        &[
            "journey-event-log",
            "tokio",
            "tonic",
            "async-nats",
            "sqlx",
            "sled",
        ],
    );
    // Read models know no gRPC server, no HTTP.
    assert_none_of("journey-projections", &["journey-services", "axum"]);
    // The services know nothing of their composition, the command line or the tools.
    assert_none_of(
        "journey-services",
        &[
            "journey-node",
            "journey-cli",
            "journey-import",
            "journey-simulate",
            "journey-bench",
            "clap_complete",
        ],
    );
    // The tools reach the log as any partner does, through log-access.
    for tool in ["journey-import", "journey-simulate", "journey-bench"] {
        assert_none_of(tool, &["journey-cli"]);
    }
    // The HL7 door knows the event catalogue only: it appends through a sink the node gives it.
    assert_none_of(
        "journey-hl7",
        &[
            "journey-event-log",
            "journey-domain",
            "journey-services",
            "journey-node",
            "sqlx",
            "async-nats",
        ],
    );
    for tool in ["journey-import", "journey-simulate"] {
        assert_none_of(tool, &["journey-services", "journey-event-log"]);
    }
    // The FHIR mapping is pure: events in, resources out; the services serve it.
    assert_none_of(
        "journey-fhir",
        &[
            "journey-event-log",
            "journey-domain",
            "journey-log-access",
            "journey-projections",
            "journey-services",
            "journey-node",
            "sqlx",
            "async-nats",
            "axum",
            "tokio",
        ],
    );
}

fn rust_lines(dir: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && path.file_name().unwrap() != "target" {
            n += rust_lines(&path);
        } else if path.extension().is_some_and(|e| e == "rs") {
            n += std::fs::read_to_string(&path).unwrap().lines().count();
        }
    }
    n
}

#[test]
fn no_crate_holds_a_quarter_of_the_code() {
    // The system's own crates; the end-to-end suite grows with every feature and is no role of
    // the system.
    let sizes: BTreeMap<String, usize> = crates()
        .into_iter()
        .filter(|(name, _)| name != "journey-tests")
        .map(|(name, (dir, _))| (name, rust_lines(&dir)))
        .collect();
    let total: usize = sizes.values().sum();
    for (name, lines) in &sizes {
        assert!(
            lines * 4 < total,
            "{name} holds {lines} of {total} lines of Rust: split it ({sizes:?})"
        );
    }
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_grpc_status_is_built_in_errors_rs() {
    let constructors = [
        "Status::new(",
        "Status::invalid_argument(",
        "Status::not_found(",
        "Status::permission_denied(",
        "Status::unauthenticated(",
        "Status::internal(",
        "Status::unavailable(",
        "Status::failed_precondition(",
        "Status::resource_exhausted(",
        "Status::already_exists(",
        "Status::aborted(",
        "Status::with_error_details(",
    ];
    let mut files = Vec::new();
    sources(&workspace().join("services/src"), &mut files);
    let mut found = Vec::new();
    for file in files.iter().filter(|f| !f.ends_with("errors.rs")) {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, line) in text.lines().enumerate() {
            if constructors.iter().any(|c| line.contains(c)) {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "build these statuses in services/src/errors.rs:\n{}",
        found.join("\n")
    );
}

/// For each top-level module of a crate, the top-level modules it names (`crate::x`,
/// `use crate::{x, …}`) outside its tests.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        let top = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // A module's own tests may use anything.
        let text = text.split("#[cfg(test)]").next().unwrap();
        let mut names = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find("};").unwrap_or(group.len())];
                for part in group.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    names.insert(name);
                }
            } else {
                names.insert(
                    rest.chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect(),
                );
            }
        }
        names.retain(|n| !n.is_empty() && *n != top);
        graph.entry(top).or_default().extend(names);
    }
    graph
}

#[test]
fn no_module_imports_another_that_imports_it_back() {
    for krate in [
        "services",
        "node",
        "projections",
        "domain",
        "event-log",
        "log-access",
        "cli",
        "tools/import",
        "tools/simulate",
        "tools/bench",
        "hl7",
        "fhir",
    ] {
        let graph = module_graph(&workspace().join(krate).join("src"));
        let reaches = |from: &str, to: &str| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![from.to_string()];
            while let Some(m) = stack.pop() {
                for next in graph.get(&m).into_iter().flatten() {
                    if next == to {
                        return true;
                    }
                    if seen.insert(next.clone()) {
                        stack.push(next.clone());
                    }
                }
            }
            false
        };
        let loops: Vec<_> = graph
            .iter()
            .flat_map(|(a, uses)| uses.iter().map(move |b| (a.clone(), b.clone())))
            .filter(|(a, b)| reaches(b, a))
            .collect();
        assert!(
            loops.is_empty(),
            "{krate}: modules that import each other (directly or through others): {loops:?}"
        );
    }
}
