//! `journey hl7 …`: an MLLP client that sends message files in order and prints each ACK, and
//! `map`, which prints the events a message maps to without appending anything.
use anyhow::Context;
use clap::{Args, Subcommand};
use journey_hl7::{message::Message, mllp, Settings};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

#[derive(Debug, Subcommand)]
pub enum Hl7What {
    /// Send HL7 v2 messages (one per file; a folder: its files in name order) over MLLP, one at a
    /// time, and print each ACK. Exit code 1 when any is not accepted (AA/CA).
    Send {
        /// Message files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The listener (`journey up --mllp-addr`, `journey serve hl7`).
        #[arg(long, env = "JOURNEY_MLLP_ADDR", default_value = "127.0.0.1:2575")]
        mllp_addr: String,
        /// Seconds to wait for each ACK.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Over TLS (a listener started with --tls-cert), trusting the CA in JOURNEY_CA_CERT.
        #[arg(long)]
        tls: bool,
    },
    /// Print the events a message maps to, as JSON (one per line); appends nothing.
    Map {
        file: PathBuf,
        /// Print instead the fields the mapping reads (MSH-9/10/12/18, EVN-2/3/6,
        /// PID-3/5/7/8/32, PV1-2/3/4/6/19/36/37/44/45, PV2-9/47, MRG-1, ZBE-1…9, ZFM-1…5) as one
        /// JSON object: each field's repetitions, components
        /// and subcomponents, unescaped, trailing empty ones left out.
        #[arg(long)]
        fields: bool,
        #[command(flatten)]
        settings: MapSettings,
    },
}

/// The listener's mapping settings, for `map` to answer as the listener would.
#[derive(Debug, Args)]
pub struct MapSettings {
    /// The organisation the events are written as.
    #[arg(long, env = "JOURNEY_MLLP_ORGANISATION", default_value = "hl7-sender")]
    mllp_organisation: String,
    /// The PID-3 assigning authority whose identifier becomes the patient id.
    #[arg(long, env = "JOURNEY_HL7_PATIENT_ID_AUTHORITY")]
    hl7_patient_id_authority: Option<String>,
    /// Time zone of times sent without an offset.
    #[arg(long, env = "JOURNEY_HL7_TIME_ZONE", default_value = "Europe/Paris")]
    hl7_time_zone: String,
}

pub async fn run(what: Hl7What) -> anyhow::Result<bool> {
    match what {
        Hl7What::Send {
            paths,
            mllp_addr,
            timeout,
            tls,
        } => {
            let files = files(&paths)?;
            let tcp = TcpStream::connect(&mllp_addr).await.with_context(|| {
                format!("cannot reach the MLLP listener at {mllp_addr} (--mllp-addr)")
            })?;
            let timeout = Duration::from_secs(timeout);
            if tls {
                send(tls_connect(tcp, &mllp_addr).await?, &files, timeout).await
            } else {
                send(tcp, &files, timeout).await
            }
        }
        Hl7What::Map {
            file, fields: true, ..
        } => print_fields(&file),
        Hl7What::Map { file, settings, .. } => map(&file, settings),
    }
}

fn map(file: &Path, s: MapSettings) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let settings = Settings {
        organisation: s.mllp_organisation,
        patient_id_authority: s.hl7_patient_id_authority,
        time_zone: s.hl7_time_zone.parse().map_err(|_| {
            anyhow::anyhow!(
                "--hl7-time-zone {:?} is not an IANA time zone name",
                s.hl7_time_zone
            )
        })?,
    };
    match journey_hl7::listener::events_of(&bytes, &settings) {
        Ok((_, events)) => {
            for e in &events {
                if !print(&journey_proto::json::event_to_json(e).to_string())? {
                    break;
                }
            }
            Ok(true)
        }
        Err(ack) => {
            eprintln!("{}: {}", file.display(), describe(&ack));
            Ok(false)
        }
    }
}

/// `map --fields`: the fields the mapping reads, as the parser extracts them (the differential
/// test compares them with an independent parser's).
fn print_fields(file: &Path) -> anyhow::Result<bool> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    match Message::parse(&bytes) {
        Ok(m) => {
            let fields: serde_json::Map<String, serde_json::Value> =
                journey_hl7::fields::extracted(&m)
                    .into_iter()
                    .map(|(name, tree)| (name, serde_json::json!(tree)))
                    .collect();
            print(&serde_json::Value::Object(fields).to_string())?;
            Ok(true)
        }
        Err(e) => {
            eprintln!("{}: {}: {}", file.display(), e.field, e.message);
            Ok(false)
        }
    }
}

/// The files to send, in order: each path as given, a folder's files by name.
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot read the folder {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            out.extend(inside);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// TLS to the listener at `addr`, its certificate checked against the CA in `JOURNEY_CA_CERT`
/// (as the gRPC verbs do) and the host name of `addr`.
async fn tls_connect(
    tcp: TcpStream,
    addr: &str,
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    let ca = std::env::var_os("JOURNEY_CA_CERT").context(
        "--tls needs JOURNEY_CA_CERT: the CA certificate (PEM) the listener's certificate is signed by",
    )?;
    let pem = std::fs::read(&ca)
        .with_context(|| format!("cannot read JOURNEY_CA_CERT {}", Path::new(&ca).display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.context("JOURNEY_CA_CERT: not a PEM certificate")?)
            .context("JOURNEY_CA_CERT: not a usable CA certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let host = addr
        .rsplit_once(':')
        .map_or(addr, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_string())
        .with_context(|| format!("{host:?} is not a host name or address"))?;
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS with the MLLP listener at {addr} failed"))
}

/// Sends `files` in order over `io`, one at a time, printing each ACK.
async fn send<C>(io: C, files: &[PathBuf], timeout: Duration) -> anyhow::Result<bool>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(io);
    let mut reader = mllp::Reader::new(read, 16 * 1024 * 1024);
    let mut all_accepted = true;
    let total = files.len();
    for (i, file) in files.iter().enumerate() {
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        write.write_all(&mllp::frame(&bytes)).await?;
        let frame = tokio::time::timeout(timeout, reader.next())
            .await
            .with_context(|| {
                format!(
                    "no ACK for {} within {} s; stopping here (messages after it not sent)",
                    file.display(),
                    timeout.as_secs()
                )
            })??;
        let mllp::Frame::Message(ack) = frame else {
            anyhow::bail!(
                "the listener closed the connection without an ACK for {}; messages after it not sent",
                file.display()
            );
        };
        let line = describe(&ack);
        all_accepted &= line.starts_with("AA") || line.starts_with("CA");
        if total > 1 {
            print(&format!("[{}/{total}] {}: {line}", i + 1, file.display()))?;
        } else {
            print(&format!("{}: {line}", file.display()))?;
        }
    }
    Ok(all_accepted)
}

/// One line on stdout. `false` when the reader has gone (`journey hl7 map FILE | head -1`): the
/// rest is not wanted, which is no error (no panic, as `println!` would on a broken pipe).
fn print(line: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}").and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

/// An ACK in one line: its code, the message it answers, and the error when there is one.
fn describe(ack: &[u8]) -> String {
    let Ok(m) = Message::parse(ack) else {
        return format!("unreadable ACK: {}", String::from_utf8_lossy(ack));
    };
    let mut line = format!("{} {}", m.value("MSA", 1), m.value("MSA", 2));
    if m.segment("ERR").is_some() {
        let field = m.components("ERR", 2);
        let field = match field.as_slice() {
            [seg, _, n, ..] if !seg.is_empty() => format!("{seg}-{n} "),
            _ => String::new(),
        };
        let rule = m.get("ERR", 5, 1, 1, 1);
        let rule = if rule.is_empty() {
            String::new()
        } else {
            format!("[{rule}] ")
        };
        line.push_str(&format!(
            " (HL7 {}) {field}{rule}{}",
            m.get("ERR", 3, 1, 1, 1),
            m.value("ERR", 8)
        ));
    }
    line
}
