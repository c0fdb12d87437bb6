//! `journey import synthea|fhir <path> [--strict]`: read, map, append, report.
//!
//! The report (stdout) is the same for both forms: a table per file (records read, events built,
//! appended, already present, records refused), then the totals: `patients:`, `events
//! appended:`, `already present:`, `refused rows:` (with the count per reason), `malformed
//! rows:`, `codes dropped:` and what was read but not imported. Every malformed record, dropped
//! code and refused event is written to stderr with its file, line (or Bundle entry) and id.
//! `--strict` stops before appending anything when a record is malformed or a code dropped, and
//! stops appending at the first refused record (exit code 1).
use crate::{
    append::{append_all, rate, Stats},
    fhir_bulk,
    mapping::{self, Built},
    records::Population,
    synthea_csv, Severity,
};
use journey_log_access::Remote;
use std::{path::PathBuf, time::Instant};

/// The form of the population.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Synthea CSV export folder.
    SyntheaCsv,
    /// FHIR R4: a folder of Bulk Data NDJSON files or of Bundles, or one such file.
    Fhir,
}

/// What `journey import …` is asked to do.
pub struct Options {
    pub path: PathBuf,
    pub format: Format,
    /// Stop at the first malformed or refused record.
    pub strict: bool,
    /// The server the events are appended to, with the token to present.
    pub remote: Remote,
}

/// Reads the population at `path` (no network).
pub fn read(path: &std::path::Path, format: Format) -> anyhow::Result<Population> {
    match format {
        Format::SyntheaCsv => synthea_csv::read(path),
        Format::Fhir => fhir_bulk::read(path),
    }
}

/// The events' source: `synthea:<folder name>`, whichever the form.
pub fn source_of(path: &std::path::Path) -> String {
    let name = path
        .canonicalize()
        .ok()
        .and_then(|p| {
            let p = if p.is_file() {
                p.parent()?.to_path_buf()
            } else {
                p
            };
            p.file_name().map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| path.display().to_string());
    format!("synthea:{name}")
}

/// Runs the import; `Ok(false)` when `--strict` stopped it.
pub async fn run(opts: Options) -> anyhow::Result<bool> {
    let path = opts.path.clone();
    if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    if opts.format == Format::SyntheaCsv && !path.is_dir() {
        anyhow::bail!("{} is not a folder", path.display());
    }
    let source = source_of(&path);
    let started = Instant::now();
    let (read_path, format, src) = (path.clone(), opts.format, source.clone());
    let mut built = tokio::task::spawn_blocking(move || {
        read(&read_path, format).map(|pop| mapping::map(pop, src))
    })
    .await??;
    let read_time = started.elapsed();
    let rows: u64 = built.rows.values().sum();
    let total: u64 = built.patients.values().map(|v| v.len() as u64).sum();
    eprintln!(
        "read {rows} records from {} in {:.2} s ({:.0} records/s): {} patients, {total} events to append",
        path.display(),
        read_time.as_secs_f64(),
        rate(rows, read_time),
        built.patients.len(),
    );
    for p in &built.problems {
        eprintln!("{p}");
    }
    if opts.strict && !built.problems.is_empty() {
        eprintln!(
            "stopped (--strict): {} malformed record(s) or dropped code(s); nothing appended",
            built.problems.len()
        );
        return Ok(false);
    }

    let client = opts.remote.client().await?;
    let patients = std::mem::take(&mut built.patients);
    let append_started = Instant::now();
    let (stats, stopped) = append_all(client, patients, opts.strict, total).await?;
    let append_time = append_started.elapsed();

    let what = match opts.format {
        Format::SyntheaCsv => "synthea import",
        Format::Fhir => "FHIR import",
    };
    println!("{what} of {} (source {source})", path.display());
    print_report(&built, &stats);
    println!(
        "time: read {:.2} s, append {:.2} s ({:.0} events/s)",
        read_time.as_secs_f64(),
        append_time.as_secs_f64(),
        rate(stats.appended + stats.present, append_time)
    );
    if stopped {
        eprintln!("stopped (--strict) at the first refused record");
        return Ok(false);
    }
    Ok(true)
}

/// The per-file table and the totals.
fn print_report(built: &Built, stats: &Stats) {
    println!(
        "  {:<30} {:>8} {:>8} {:>9} {:>8} {:>8}",
        "file", "rows", "events", "appended", "present", "refused"
    );
    for (file, rows) in &built.rows {
        let events = built.events.get(file).copied().unwrap_or_default();
        let a = stats.files.get(file).copied().unwrap_or_default();
        println!(
            "  {file:<30} {rows:>8} {events:>8} {:>9} {:>8} {:>8}",
            a.appended, a.present, a.refused
        );
    }
    println!("patients: {}", built.registered);
    println!("events appended: {}", stats.appended);
    println!("already present: {}", stats.present);
    println!(
        "refused rows: {} ({} events refused, {} events skipped with their admission)",
        stats.refused_rows.len(),
        stats.refused_events,
        stats.skipped_dependent
    );
    for (reason, n) in &stats.by_reason {
        println!("  {reason}: {n}");
    }
    let count = |s: Severity| built.problems.iter().filter(|p| p.severity == s).count();
    println!("malformed rows: {}", count(Severity::Malformed));
    println!("codes dropped: {}", count(Severity::CodeDropped));
    println!(
        "not imported: {}",
        if built.skipped.is_empty() {
            "none".to_string()
        } else {
            built
                .skipped
                .iter()
                .map(|(what, n)| format!("{what} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
}
