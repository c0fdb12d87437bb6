//! `journey audit …`: the audit trail read through the `Audit` service (timeline, as-of,
//! verification against the anchor, FHIR export, the access log and its verification), printed
//! for people or as JSON.
use crate::{
    args::{AuditWhat, ClientArgs},
    verbs::refused,
};
use anyhow::Context;
use futures::StreamExt;
use journey_log_access::{Token, MAX_MESSAGE};
use journey_proto::{
    hex::unhex,
    json::rfc3339,
    prost_types::Timestamp,
    v1::{self, audit_client::AuditClient as AuditClientOf, *},
};
use journey_services::fhir_audit::role_name;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

type AuditClient = AuditClientOf<InterceptedService<Channel, Token>>;

async fn audit_client(args: &ClientArgs) -> anyhow::Result<AuditClient> {
    let remote = args.remote()?;
    Ok(
        AuditClientOf::with_interceptor(remote.channel().await?, remote.token())
            .max_decoding_message_size(MAX_MESSAGE),
    )
}

fn parse_time(flag: &str, text: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    let Some(text) = text else { return Ok(None) };
    if text == "now" {
        return Ok(None);
    }
    let t = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("--{flag} {text:?}: not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z)")
    })?;
    Ok(Some(Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }))
}

/// "3d 4h", "2h 5m", "12s"; negative = recorded before it occurred (clock skew).
fn delay_text(secs: i64) -> String {
    let (sign, s) = if secs < 0 { ("-", -secs) } else { ("", secs) };
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, m) => format!("{m}m {}s", s % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    };
    format!("{sign}{text}")
}

fn time_text(t: &Option<Timestamp>) -> String {
    t.as_ref().map_or("?".into(), rfc3339)
}

fn enum_text<E: TryFrom<i32>>(v: i32, name: impl Fn(E) -> &'static str) -> &'static str {
    E::try_from(v).map_or("?", name)
}

fn print_as_of(r: &AsOfResponse) {
    println!(
        "patient {}: clinical time {}, as known at {}",
        r.patient_id,
        time_text(&r.clinical_time),
        time_text(&r.recorded_time)
    );
    println!(
        "  registered: {}   deceased: {}",
        if r.registered { "yes" } else { "no" },
        if r.deceased {
            format!("yes ({})", time_text(&r.died_at))
        } else {
            "no".into()
        }
    );
    let stay = |s: &v1::AsOfStay| {
        let facility = s.facility.as_ref().map_or("?", |f| f.id.as_str());
        let setting = enum_text(s.setting, |e: v1::Setting| e.as_str_name());
        format!(
            "{}  {facility} / {}  {setting}  admitted {} ({})",
            s.encounter_id,
            if s.unit.is_empty() { "-" } else { &s.unit },
            time_text(&s.admitted_at),
            enum_text(s.admit_type, |e: v1::AdmitType| e.as_str_name()),
        )
    };
    println!(
        "  open stays: {}",
        if r.open_stays.is_empty() { "none" } else { "" }
    );
    for s in &r.open_stays {
        println!("    {}", stay(s));
    }
    println!(
        "  discharged stays: {}",
        if r.discharged_stays.is_empty() {
            "none"
        } else {
            ""
        }
    );
    for s in &r.discharged_stays {
        println!(
            "    {}, discharged {} ({})",
            stay(s),
            time_text(&s.discharged_at),
            enum_text(s.disposition, |e: v1::Disposition| e.as_str_name())
        );
    }
    match r
        .care_plan
        .as_ref()
        .and_then(|c| c.plan.as_ref().map(|p| (c, p)))
    {
        None => println!("  care plan: none"),
        Some((c, p)) => {
            println!(
                "  care plan {} (established {}):",
                p.care_plan_id,
                time_text(&c.established_at)
            );
            println!("    goals: {}", p.goals.join("; "));
            if !p.symptoms_to_watch.is_empty() {
                println!("    watch: {}", p.symptoms_to_watch.join("; "));
            }
            for t in &p.thresholds {
                println!(
                    "    threshold {}: {}..{} ({})",
                    t.measure,
                    t.low,
                    t.high,
                    enum_text(t.severity, |e: v1::Severity| e.as_str_name())
                );
            }
            for p in &p.referents {
                println!("    referent {} {} ({})", role_name(p.role), p.name, p.id);
            }
        }
    }
    println!(
        "  open alerts: {}",
        if r.open_alerts.is_empty() { "none" } else { "" }
    );
    for a in &r.open_alerts {
        println!(
            "    {} {} raised {}{}: {} {}",
            a.alert_id,
            enum_text(a.severity, |e: v1::Severity| e.as_str_name()),
            time_text(&a.raised_at),
            if a.acknowledged {
                " (acknowledged)"
            } else {
                ""
            },
            a.rule,
            a.reason
        );
    }
    println!(
        "  referents: {}",
        if r.referents.is_empty() { "none" } else { "" }
    );
    for x in &r.referents {
        let p = x.professional.clone().unwrap_or_default();
        println!(
            "    {} {} ({}) since {}",
            role_name(x.role),
            p.name,
            p.id,
            time_text(&x.assigned_at)
        );
    }
    println!(
        "  consents: {}",
        if r.consents.is_empty() { "none" } else { "" }
    );
    for c in &r.consents {
        println!(
            "    {}: {} {} (since {})",
            c.scope,
            if c.given { "given to" } else { "revoked" },
            if c.given && c.organisations.is_empty() {
                "every organisation".to_string()
            } else {
                c.organisations.join(", ")
            },
            time_text(&c.at)
        );
    }
    if !r.merged_patient_ids.is_empty() {
        println!("  merged from: {}", r.merged_patient_ids.join(", "));
    }
    println!("  based on {} events", r.event_ids.len());
    if !r.cancelled_event_ids.is_empty() {
        println!(
            "  cancelled (ignored): {}",
            r.cancelled_event_ids.join(", ")
        );
    }
    if !r.known_later_event_ids.is_empty() {
        println!(
            "  recorded after that time (not known then): {}",
            r.known_later_event_ids.join(", ")
        );
    }
}

/// The anchor `--anchor-hash` names with its position, when both are given.
fn anchor_arg(position: Option<u64>, hash: Option<String>) -> anyhow::Result<Option<AuditAnchor>> {
    let (Some(position), Some(hash)) = (position, hash) else {
        return Ok(None);
    };
    Ok(Some(AuditAnchor {
        position,
        hash: unhex(hash.trim())
            .filter(|b| b.len() == 32)
            .context("--anchor-hash must be 64 hex digits")?,
    }))
}

/// One answer on standard output: as JSON (the message `full_name`) or for people.
fn show<M: journey_proto::prost::Message>(json: bool, message: &M, full_name: &str, print: fn(&M)) {
    if json {
        println!(
            "{}",
            journey_proto::json::message_to_json(message, full_name)
        );
    } else {
        print(message);
    }
}

/// `journey audit …`: Ok(false) when verification failed (exit code 1).
pub async fn run(what: AuditWhat) -> anyhow::Result<bool> {
    match what {
        AuditWhat::Timeline {
            patient,
            from_version,
            json,
            client,
        } => timeline(patient, from_version, json, &client).await,
        AuditWhat::AsOf {
            patient,
            clinical_time,
            recorded_time,
            json,
            client,
        } => {
            let req = AsOfRequest {
                patient_id: patient,
                clinical_time: parse_time("clinical-time", clinical_time.as_deref())?,
                recorded_time: parse_time("recorded-time", recorded_time.as_deref())?,
            };
            let mut c = audit_client(&client).await?;
            let r = c.as_of(req).await.map_err(refused("as-of"))?.into_inner();
            show(json, &r, "journey.v1.AsOfResponse", print_as_of);
            Ok(true)
        }
        AuditWhat::Verify {
            range,
            anchor_position,
            anchor_hash,
            json,
            client,
        } => {
            let anchor = anchor_arg(anchor_position, anchor_hash)?;
            let mut c = audit_client(&client).await?;
            let r = c
                .verify(AuditVerifyRequest {
                    from_position: range.from,
                    to_position: range.to,
                    anchor,
                })
                .await
                .map_err(refused("verify"))?
                .into_inner();
            show(json, &r, "journey.v1.AuditVerifyResponse", print_verify);
            Ok(r.ok)
        }
        AuditWhat::Export {
            patient,
            out,
            client,
        } => export(patient, out, &client).await,
        AuditWhat::Accesses {
            patient,
            subject,
            outcome,
            from,
            to,
            limit,
            page_token,
            all,
            json,
            client,
        } => {
            let mut req = AccessesRequest {
                patient_id: patient,
                limit,
                subject,
                outcome,
                from: parse_time("from", from.as_deref())?,
                to: parse_time("to", to.as_deref())?,
                page_token,
            };
            let mut c = audit_client(&client).await?;
            loop {
                let r = c
                    .accesses(req.clone())
                    .await
                    .map_err(refused("accesses"))?
                    .into_inner();
                for a in &r.records {
                    show(json, a, "journey.v1.AccessRecord", print_access);
                }
                if r.next_page_token.is_empty() {
                    break;
                }
                if !all {
                    if !json {
                        println!("more: --page-token {}", r.next_page_token);
                    }
                    break;
                }
                req.page_token = r.next_page_token;
            }
            Ok(true)
        }
        AuditWhat::VerifyAccesses {
            anchor_seq,
            anchor_hash,
            json,
            client,
        } => {
            let anchor = anchor_arg(anchor_seq, anchor_hash)?;
            let mut c = audit_client(&client).await?;
            let r = c
                .verify_accesses(VerifyAccessesRequest { anchor })
                .await
                .map_err(refused("verify-accesses"))?
                .into_inner();
            show(
                json,
                &r,
                "journey.v1.VerifyAccessesResponse",
                print_verify_accesses,
            );
            Ok(r.ok)
        }
    }
}

/// One access record on one line, in local time.
fn print_access(a: &AccessRecord) {
    let at =
        a.at.as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32))
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|| "?".into());
    let who = match (a.role.is_empty(), a.organisation.is_empty()) {
        (true, _) => a.subject.clone(),
        (false, true) => format!("{} ({})", a.subject, a.role),
        (false, false) => format!("{} ({}, {})", a.subject, a.role, a.organisation),
    };
    let about = match (a.patient_id.is_empty(), a.patients.len()) {
        (false, _) => format!("patient {}", a.patient_id),
        (true, 0) => "no patient".into(),
        (true, n) => format!("{n} patient(s): {}", a.patients.join(", ")),
    };
    let mut line = format!("{at}  {who}  {}  {about}  {}", a.call, a.outcome);
    if a.calls > 1 {
        line.push_str(&format!("  ×{}", a.calls));
    }
    if !a.peer.is_empty() {
        line.push_str(&format!("  from {}", a.peer));
    }
    if !a.purpose.is_empty() {
        line.push_str(&format!("  purpose: {}", a.purpose));
    }
    if !a.detail.is_empty() {
        line.push_str(&format!("  ({})", a.detail));
    }
    println!("{line}");
}

fn print_verify_accesses(r: &VerifyAccessesResponse) {
    if !r.ok {
        let at = match r.first_bad_seq {
            0 => String::new(),
            n => format!(" at record {n}"),
        };
        println!(
            "FAILED{at}: {} ({} records verified before it)",
            r.problem, r.checked
        );
        return;
    }
    println!(
        "ok: {} access records verified; head record {} hash {}",
        r.checked, r.head_seq, r.head_hash_hex
    );
    let found = (r.anchor_seq > 0).then(|| format!("record {} found with its hash", r.anchor_seq));
    print_anchor(&r.anchor_source, found);
}

/// The anchor a verification checked (`found`: what it found), or that it checked none.
fn print_anchor(source: &str, found: Option<String>) {
    match found {
        Some(found) => println!("anchor ({source}): {found}"),
        None => println!("no anchor checked ({source}): a truncated tail would go unnoticed"),
    }
}

/// `journey audit timeline`: one block per event, or one JSON object per line.
async fn timeline(
    patient: String,
    from_version: u64,
    as_json: bool,
    client: &ClientArgs,
) -> anyhow::Result<bool> {
    let mut c = audit_client(client).await?;
    let mut stream = c
        .timeline(TimelineRequest {
            patient_id: patient,
            from_version,
        })
        .await
        .map_err(refused("timeline"))?
        .into_inner();
    while let Some(e) = stream.next().await {
        let e = e.map_err(refused("timeline"))?;
        show(
            as_json,
            &e,
            "journey.v1.TimelineEntry",
            print_timeline_entry,
        );
    }
    Ok(true)
}

fn print_timeline_entry(e: &TimelineEntry) {
    let org = if e.actor_organisation.is_empty() {
        String::new()
    } else {
        format!(", {}", e.actor_organisation)
    };
    println!(
        "v{:<3} #{:<7} {}  {:<22} by {} ({}{org}) via {}",
        e.stream_version,
        e.position,
        time_text(&e.occurred_at),
        e.event_type,
        e.actor_id,
        role_name(e.actor_role),
        e.source,
    );
    let mut links = String::new();
    if !e.correlation_id.is_empty() {
        links.push_str(&format!("  correlation {}", e.correlation_id));
    }
    if !e.causation_id.is_empty() {
        links.push_str(&format!("  causation {}", e.causation_id));
    }
    println!(
        "      recorded {} ({} after){links}  hash {}",
        time_text(&e.recorded_at),
        delay_text(e.recording_delay_seconds),
        e.hash_hex.get(..16).unwrap_or(&e.hash_hex)
    );
    println!("      {}", e.payload_json);
}

fn print_verify(r: &AuditVerifyResponse) {
    if !r.ok {
        println!(
            "FAILED at position {}: {} ({} events verified before it)",
            r.first_bad_position, r.problem, r.checked
        );
        if r.truncated {
            println!(
                "truncated: anchored head {} ({}), log head {}; first missing position {}",
                r.anchor_position, r.anchor_source, r.head_position, r.first_missing_position
            );
        }
        return;
    }
    println!(
        "ok: {} events verified; head position {} hash {}",
        r.checked, r.head_position, r.head_hash_hex
    );
    let found = (r.anchor_position > 0).then(|| {
        format!(
            "position {} found with its hash{}",
            r.anchor_position,
            r.anchored_at
                .as_ref()
                .map(|t| format!(", anchored {}", rfc3339(t)))
                .unwrap_or_default()
        )
    });
    print_anchor(&r.anchor_source, found);
}

/// `journey audit export`: the FHIR resources as NDJSON, to a file or standard output.
async fn export(
    patient: String,
    out: Option<std::path::PathBuf>,
    client: &ClientArgs,
) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut c = audit_client(client).await?;
    let mut stream = c
        .export(ExportRequest {
            patient_id: patient.clone(),
        })
        .await
        .map_err(refused("export"))?
        .into_inner();
    let mut sink: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut lines = 0u64;
    while let Some(line) = stream.next().await {
        let line = line.map_err(refused("export"))?;
        writeln!(sink, "{}", line.json)?;
        lines += 1;
    }
    sink.flush()?;
    if let Some(path) = &out {
        eprintln!(
            "{lines} FHIR resources of patient {patient} written to {}",
            path.display()
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_read_like_durations() {
        assert_eq!(delay_text(12), "12s");
        assert_eq!(delay_text(125), "2m 5s");
        assert_eq!(delay_text(7_500), "2h 5m");
        assert_eq!(delay_text(3 * 86_400 + 4 * 3600 + 60), "3d 4h");
        assert_eq!(delay_text(-5), "-5s");
    }
}
