//! `journey fhir export`: a FHIR Bulk Data export through the server's own endpoints (kick-off,
//! status polling with a progress line, then each NDJSON file of the manifest, its error files
//! too), into a folder.
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::{
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

#[derive(Debug, Subcommand)]
pub enum FhirVerbs {
    /// FHIR R4: export patients as Bulk Data NDJSON files (docs/fhir.md).
    Fhir {
        #[command(subcommand)]
        what: FhirWhat,
    },
}

#[derive(Debug, Subcommand)]
pub enum FhirWhat {
    /// Export every patient (admin, auditor) or a territory (`--group`; a coordinator its own)
    /// as one NDJSON file per resource type, with the server's manifest, into `--to`.
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The folder to write the files and `manifest.json` into (created 0700; files 0600).
    #[arg(long)]
    to: PathBuf,
    /// Only the resources changed from this instant on (RFC 3339 with its zone).
    #[arg(long)]
    since: Option<String>,
    /// Only these resource types (comma-separated, or the flag repeated).
    #[arg(long = "type", value_delimiter = ',')]
    types: Vec<String>,
    /// Only the resources a FHIR search selects, as Bulk Data's `_typeFilter` takes it, e.g.
    /// `Observation?code=http://loinc.org|29463-7&date=ge2024-01-01` (the flag repeated: any of
    /// them).
    #[arg(long = "type-filter")]
    type_filters: Vec<String>,
    /// The patients of this territory (`Group/{territory}/$export`).
    #[arg(long)]
    group: Option<String>,
    /// The HTTP address of the server (`journey up`'s dashboard port).
    #[arg(
        long,
        env = "JOURNEY_HTTP_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Access token (default: `JOURNEY_TOKEN`, else, for a server on this machine only, the
    /// local admin token).
    #[arg(long, env = "JOURNEY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// `local_token`: the token to send to a server on this machine when none is given (the local
/// admin token), or `None` for a server elsewhere.
pub async fn run(verb: FhirVerbs, local_token: fn(&str) -> Option<String>) -> anyhow::Result<bool> {
    let FhirVerbs::Fhir {
        what: FhirWhat::Export(args),
    } = verb;
    let token = args.token.clone().or_else(|| local_token(&args.url));
    export(args, token).await.map(|()| true)
}

/// An answer: status, headers (names in lower case), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// What the server said, for an error: its OperationOutcome's diagnostics, or the body.
    fn said(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["issue"][0]["diagnostics"].as_str().map(str::to_string))
            .unwrap_or_else(|| body.chars().take(300).collect())
    }
}

/// The server's address: `(host:port, path prefix)` of an `http://` URL.
fn authority(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("{url:?}: give the server's plain http:// address (its --http-addr); https is not supported by this verb yet, use a FHIR Bulk Data client");
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    Ok((
        host.to_string(),
        if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        },
    ))
}

/// One HTTP/1.0 exchange (the server closes after the answer); with `to`, the body is written
/// to that file as it comes instead of kept.
async fn exchange(
    host: &str,
    method: &str,
    target: &str,
    token: Option<&str>,
    extra: &str,
    to: Option<&Path>,
) -> anyhow::Result<Answer> {
    let stream = TcpStream::connect(host).await.with_context(|| {
        format!("cannot reach {host}: is the server running, and is this its HTTP address?")
    })?;
    let mut stream = BufReader::new(stream);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {target} HTTP/1.0\r\nHost: {host}\r\nAccept: application/fhir+json\r\n{auth}{extra}\r\n"
    );
    stream.get_mut().write_all(request.as_bytes()).await?;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{host} did not answer in HTTP: {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).await?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    match to {
        Some(path) if status == 200 => {
            let mut file = private_file(path)?;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                file.write_all(&buf[..n])?;
            }
            file.sync_all()?;
        }
        _ => {
            stream.read_to_end(&mut body).await?;
        }
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn private_file(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The path and query of an absolute URL the server gave (it names itself as the client reached
/// it).
fn target_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/".into(), |i| rest[i..].to_string())
}

async fn export(args: ExportArgs, token: Option<String>) -> anyhow::Result<()> {
    let (host, prefix) = authority(&args.url)?;
    let token = token.as_deref();
    let mut query = Vec::new();
    if let Some(s) = &args.since {
        query.push(format!("_since={}", s.replace('+', "%2B")));
    }
    if !args.types.is_empty() {
        query.push(format!("_type={}", args.types.join(",")));
    }
    for f in &args.type_filters {
        query.push(format!("_typeFilter={}", journey_services::html::enc(f)));
    }
    let path = match &args.group {
        Some(t) => format!("{prefix}/fhir/Group/{t}/$export"),
        None => format!("{prefix}/fhir/$export"),
    };
    let target = match query.is_empty() {
        true => path,
        false => format!("{path}?{}", query.join("&")),
    };
    let started = exchange(
        &host,
        "GET",
        &target,
        token,
        "Prefer: respond-async\r\n",
        None,
    )
    .await?;
    if started.status != 202 {
        bail!(
            "the export was refused ({}): {}",
            started.status,
            started.said()
        );
    }
    let status_url = started
        .header("content-location")
        .context("the server gave no status address (Content-Location)")?
        .to_string();
    let status_target = target_of(&status_url);
    let manifest = loop {
        let a = exchange(&host, "GET", &status_target, token, "", None).await?;
        match a.status {
            202 => {
                eprint!(
                    "\rexporting: {:<60}",
                    a.header("x-progress").unwrap_or("running")
                );
                let _ = std::io::stderr().flush();
                let wait = a
                    .header("retry-after")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(1u64)
                    .clamp(1, 10);
                tokio::time::sleep(Duration::from_millis(250 * wait)).await;
            }
            200 => break a,
            s => bail!("the export failed ({s}): {}", a.said()),
        }
    };
    eprintln!("\rexporting: done{:<60}", "");
    let manifest: serde_json::Value =
        serde_json::from_slice(&manifest.body).context("the manifest is not JSON")?;
    journey_services::files::create_dirs(&args.to)
        .with_context(|| format!("cannot create {}", args.to.display()))?;
    let listed = |key: &str| manifest[key].as_array().cloned().unwrap_or_default();
    // The resources, then the error files (OperationOutcome lines: what could not be exported).
    let (outputs, errors) = (listed("output"), listed("error"));
    let files: Vec<&serde_json::Value> = outputs.iter().chain(&errors).collect();
    for (n, out) in files.iter().enumerate() {
        let kind = out["type"].as_str().unwrap_or("unknown");
        let url = out["url"]
            .as_str()
            .context("a manifest entry without url")?;
        let name = url.rsplit('/').next().unwrap_or(kind);
        eprint!("\rdownloading {}/{}: {name:<40}", n + 1, files.len());
        let _ = std::io::stderr().flush();
        let file = args.to.join(name);
        let a = exchange(&host, "GET", &target_of(url), token, "", Some(&file)).await?;
        if a.status != 200 {
            bail!(
                "{name} could not be downloaded ({}): {}",
                a.status,
                a.said()
            );
        }
    }
    eprintln!();
    let tmp = args.to.join("manifest.json.part");
    private_file(&tmp)?.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
    std::fs::rename(&tmp, args.to.join("manifest.json"))?;
    for out in &outputs {
        println!(
            "{:<18} {:>9}",
            out["type"].as_str().unwrap_or(""),
            out["count"].as_u64().unwrap_or(0)
        );
    }
    let lost: u64 = errors.iter().filter_map(|e| e["count"].as_u64()).sum();
    if lost > 0 {
        let names: Vec<&str> = errors
            .iter()
            .filter_map(|e| e["url"].as_str()?.rsplit('/').next())
            .collect();
        println!(
            "errors in {}: {lost} OperationOutcome (what could not be exported, and why)",
            names.join(", ")
        );
    }
    println!("written to {}", args.to.display());
    Ok(())
}
