//! `docker-compose.yml` cannot run here (no Docker engine), so this keeps it correct: every journey
//! service's command, flags, environment variables, ports, health checks and dependencies are
//! checked against the real binary and against each other; every `journey serve` service is deployed.
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

/// Variables the binary reads without a clap flag (telemetry).
const OTHER_ENV: &[(&str, &str)] = &[
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
            if key.starts_with("JOURNEY_") {
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
        let listens: Vec<String> = ["JOURNEY_GRPC_ADDR", "JOURNEY_HTTP_ADDR"]
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
            let host = url.trim_start_matches("http://").split(':').next().unwrap();
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
