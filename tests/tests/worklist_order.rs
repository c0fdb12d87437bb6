//! The worklist filtered, ordered and paged in SQL gives exactly what the reference gives: every
//! followed discharge loaded with its facts, its follow-up derived in Rust
//! (`followup::follow_up`), filtered, then sorted by urgency (most urgent first), discharge time,
//! patient. A varied population (letters, contacts, appointments, alerts in every state, weekend
//! and holiday discharges, readmissions, cancellations, deaths, revoked consents) is folded in
//! batches, then queried at several times, with several filters, page by page, on SQLite and on
//! a fresh PostgreSQL database. The batched fold is also checked against a fold of one event per
//! batch.
use journey_projections::{
    coordination::{
        followup::{self, Alert, Appointment, AppointmentState, Facts, FollowUp},
        queries::{self, Filter},
        Coordination,
    },
    db::{self, Db},
    runtime::{prefix, Projection, Runner},
};
use journey_proto::{
    prost_types::Timestamp,
    v1::{self, event::Payload, Event},
};
use sqlx::{AnyPool, Row};
use std::collections::HashMap;

const H: i64 = 3_600;
const D: i64 = 86_400;

fn utc(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

/// Friday 27 November 2026, noon UTC; the discharges surround it (11 November, a holiday, too).
fn t0() -> i64 {
    utc("2026-11-27T12:00:00Z")
}

/// A small deterministic generator (xorshift), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

struct Log {
    events: Vec<Event>,
    seq: u64,
}

impl Log {
    fn push(&mut self, patient: &str, at: i64, payload: Payload) -> String {
        self.seq += 1;
        let event_id = format!("ev-{:06}", self.seq);
        self.events.push(Event {
            event_id: event_id.clone(),
            patient_id: patient.into(),
            occurred_at: Some(Timestamp {
                seconds: at,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        });
        event_id
    }
}

fn facility(r: &mut Rng) -> v1::Facility {
    let (id, territory) = if r.chance(30) {
        ("F2", "T2")
    } else {
        ("F1", "T1")
    };
    v1::Facility {
        id: id.into(),
        name: format!("Hôpital {id}"),
        territory: territory.into(),
        ..Default::default()
    }
}

/// One patient's journey around a discharge at `d`.
fn journey(log: &mut Log, r: &mut Rng, pid: &str, d: i64) {
    if r.chance(85) {
        log.push(
            pid,
            d - 20 * D,
            Payload::PatientRegistered(v1::PatientRegistered {
                family_name: format!("Nom{}", r.below(50)),
                given_name: "Prénom".into(),
                birth_date: "1950-01-01".into(),
                gp: r.chance(50).then(|| v1::Professional {
                    id: format!("gp-{}", r.below(5)),
                    name: "Dr Généraliste".into(),
                    role: v1::Role::Gp as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        );
    }
    let fac = facility(r);
    let enc = format!("{pid}-E1");
    let admitted = d - (1 + r.below(10)) * D - r.below(12) * H;
    let setting = match r.below(20) {
        0 => v1::Setting::DaySurgery,
        1 | 2 => v1::Setting::Had,
        _ => v1::Setting::Inpatient,
    } as i32;
    let admit_id = log.push(
        pid,
        admitted,
        Payload::Admitted(v1::Admitted {
            encounter_id: enc.clone(),
            facility: Some(fac.clone()),
            unit: "cardio".into(),
            setting,
            admit_type: v1::AdmitType::Emergency as i32,
            ..Default::default()
        }),
    );
    if r.chance(3) {
        log.push(
            pid,
            admitted + H,
            Payload::AdmissionCancelled(v1::AdmissionCancelled {
                cancelled_event_id: admit_id,
                ..Default::default()
            }),
        );
    }
    if r.chance(8) {
        return; // still in hospital
    }
    let disposition = match r.below(30) {
        0 => v1::Disposition::OtherAcuteHospital,
        1 => v1::Disposition::Deceased,
        2 => v1::Disposition::AgainstMedicalAdvice,
        3 => v1::Disposition::NursingHome,
        4 => v1::Disposition::Rehab,
        5 => v1::Disposition::HomeWithHad,
        6 => v1::Disposition::Other,
        _ => v1::Disposition::Home,
    } as i32;
    let discharged = |log: &mut Log, at: i64| {
        log.push(
            pid,
            at,
            Payload::Discharged(v1::Discharged {
                encounter_id: enc.clone(),
                disposition,
                ..Default::default()
            }),
        )
    };
    let discharge_id = discharged(log, d);
    if r.chance(5) {
        log.push(
            pid,
            d + 2 * H,
            Payload::DischargeCancelled(v1::DischargeCancelled {
                cancelled_event_id: discharge_id,
                ..Default::default()
            }),
        );
        if r.chance(50) {
            discharged(log, d + 5 * H);
        }
    }
    // Contacts, some before the discharge (they do not count).
    for _ in 0..r.below(4) {
        let at = d - 24 * H + r.below(120) * H;
        let payload = if r.chance(50) {
            Payload::ContactMade(v1::ContactMade::default())
        } else {
            Payload::HomeVisitRecorded(v1::HomeVisitRecorded::default())
        };
        log.push(pid, at, payload);
    }
    // Letters: none, same day, late; complete or not; sometimes a second one.
    for _ in 0..[0, 1, 1, 2][r.below(4) as usize] {
        let at = d + r.below(72) * H;
        let n = 5 + r.below(7) as i32;
        log.push(
            pid,
            at,
            Payload::DischargeLetterSent(v1::DischargeLetterSent {
                encounter_id: enc.clone(),
                items_present: (1..=n).collect(),
                ..Default::default()
            }),
        );
    }
    if r.chance(50) {
        log.push(
            pid,
            d + r.below(10 * 24) * H,
            Payload::MedicationReconciled(v1::MedicationReconciled {
                encounter_id: enc.clone(),
                ..Default::default()
            }),
        );
    }
    for k in 0..r.below(4) {
        let id = format!("{pid}-A{k}");
        let at = d + r.below(48) * H;
        let scheduled = |log: &mut Log, r: &mut Rng, at: i64| {
            log.push(
                pid,
                at,
                Payload::AppointmentScheduled(v1::AppointmentScheduled {
                    appointment_id: id.clone(),
                    kind: "J+7 GP".into(),
                    due_at: Some(Timestamp {
                        seconds: d + (1 + r.below(14)) * D + r.below(24) * H,
                        nanos: 0,
                    }),
                    encounter_id: if r.chance(50) {
                        enc.clone()
                    } else {
                        String::new()
                    },
                    ..Default::default()
                }),
            );
        };
        scheduled(log, r, at);
        if r.chance(15) {
            scheduled(log, r, at + 6 * H);
        }
        match r.below(10) {
            0..=2 => {
                log.push(
                    pid,
                    at + 5 * D,
                    Payload::AppointmentCompleted(v1::AppointmentCompleted {
                        appointment_id: id.clone(),
                    }),
                );
            }
            3 | 4 => {
                log.push(
                    pid,
                    at + 6 * D,
                    Payload::AppointmentMissed(v1::AppointmentMissed {
                        appointment_id: id.clone(),
                        ..Default::default()
                    }),
                );
            }
            _ => {}
        }
    }
    for k in 0..[0, 0, 1, 1, 2, 3][r.below(6) as usize] {
        let id = format!("{pid}-AL{k}");
        let at = d + r.below(96) * H;
        log.push(
            pid,
            at,
            Payload::AlertRaised(v1::AlertRaised {
                alert_id: id.clone(),
                severity: r.below(5) as i32,
                rule: "weight".into(),
                reason: "gain".into(),
            }),
        );
        if r.chance(40) {
            log.push(
                pid,
                at + r.below(24) * H,
                Payload::AlertAcknowledged(v1::AlertAcknowledged {
                    alert_id: id.clone(),
                }),
            );
        }
        if r.chance(30) {
            log.push(
                pid,
                at + 30 * H,
                Payload::AlertResolved(v1::AlertResolved {
                    alert_id: id.clone(),
                    ..Default::default()
                }),
            );
        }
    }
    if r.chance(10) {
        // Readmitted: only the latest encounter is followed.
        let enc2 = format!("{pid}-E2");
        let at = d + (1 + r.below(8)) * D;
        log.push(
            pid,
            at,
            Payload::Admitted(v1::Admitted {
                encounter_id: enc2.clone(),
                facility: Some(fac),
                unit: "med".into(),
                setting: v1::Setting::Inpatient as i32,
                ..Default::default()
            }),
        );
        if r.chance(60) {
            log.push(
                pid,
                at + 2 * D,
                Payload::Discharged(v1::Discharged {
                    encounter_id: enc2,
                    disposition: v1::Disposition::Home as i32,
                    ..Default::default()
                }),
            );
        }
    }
    if r.chance(4) {
        log.push(
            pid,
            d + 3 * D,
            Payload::PatientDeceased(v1::PatientDeceased::default()),
        );
    }
    if r.chance(6) {
        log.push(
            pid,
            d - D,
            Payload::ConsentRevoked(v1::ConsentRevoked {
                organisations: if r.chance(50) {
                    vec!["ORG1".into()]
                } else {
                    Vec::new()
                },
                ..Default::default()
            }),
        );
    }
    if r.chance(10) {
        log.push(
            pid,
            d + H,
            Payload::ReferentAssigned(v1::ReferentAssigned {
                professional: Some(v1::Professional {
                    id: "nurse-7".into(),
                    name: "IDE".into(),
                    ..Default::default()
                }),
                role: v1::Role::HomeNurse as i32,
            }),
        );
    }
}

/// The population's events in time order. Identifiers mix cases and punctuation (their order
/// is bytewise), discharge times repeat across patients (ties are ordered by patient).
fn population(patients: usize) -> Vec<Event> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut log = Log {
        events: Vec::new(),
        seq: 0,
    };
    let prefixes = ["p", "P", "p-", "Pa", "p_", "b"];
    for i in 0..patients {
        let pid = format!("{}{}", prefixes[i % prefixes.len()], i / 3);
        // Every 3 hours from 17 days before t0 to 2 days after: weekends and 11 November.
        let d = t0() - 17 * D + r.below(19 * 8) * 3 * H;
        journey(&mut log, &mut r, &pid, d);
    }
    log.events
        .sort_by_key(|e| e.occurred_at.as_ref().map(|t| t.seconds));
    for (i, e) in log.events.iter_mut().enumerate() {
        e.position = i as u64 + 1;
    }
    log.events
}

/// Folds `events` into the first generation of the coordination tables, `batch` events per
/// transaction; returns the table prefix.
async fn fold(db: &Db, events: &[Event], batch: usize) -> String {
    let (_runner, _) = Runner::open(db.clone(), Coordination).await.unwrap();
    let p = prefix("coordination", 1);
    for chunk in events.chunks(batch) {
        let mut tx = db.pool.begin().await.unwrap();
        Coordination.apply(&mut tx, &p, chunk).await.unwrap();
        tx.commit().await.unwrap();
    }
    p
}

/// Keeps each encounter's urgency at `at` (the writer's upkeep); returns when it is next due.
async fn maintain(db: &Db, p: &str, at: i64) -> Option<i64> {
    let mut tx = db.pool.begin().await.unwrap();
    let next = Coordination.maintain(&mut tx, p, at).await.unwrap();
    tx.commit().await.unwrap();
    next
}

/// The worklist answers as the reference whatever the urgencies kept: none (every row ranked at
/// the time of the query); kept at t0, then half of the events folded over them (the fold
/// drops what it changes); kept again five days later, the earlier kept urgencies ending on the
/// way (queries before that instant read none of them).
async fn check_with_upkeep(db: &Db, events: &[Event], batch: usize) -> String {
    let half = events.len() / 2;
    let p = fold(db, &events[..half], batch).await;
    let next = maintain(db, &p, t0()).await;
    assert!(next.is_some_and(|at| at > t0()), "next upkeep {next:?}");
    let kept: i64 = sqlx::query(&format!(
        "SELECT COUNT(*) FROM {p}encounters WHERE urgency_since = $1 AND urgency_until > $1"
    ))
    .bind(t0())
    .fetch_one(&db.pool)
    .await
    .unwrap()
    .get(0);
    assert!(kept > 100, "{kept} urgencies kept");
    for chunk in events[half..].chunks(batch) {
        let mut tx = db.pool.begin().await.unwrap();
        Coordination.apply(&mut tx, &p, chunk).await.unwrap();
        tx.commit().await.unwrap();
    }
    check_variety(db, &p).await;
    check_against_reference(db, &p).await;
    let next = maintain(db, &p, t0() + 5 * D).await;
    assert!(
        next.is_some_and(|at| at > t0() + 5 * D),
        "next upkeep {next:?}"
    );
    check_against_reference(db, &p).await;
    p
}

/// The reference: every followed discharge (each patient's latest encounter, discharged in the
/// window or with a task still open whatever its date, followed disposition and setting, alive,
/// consent not revoked), its facts loaded whole, its follow-up derived, filtered and sorted in
/// Rust.
async fn reference(
    pool: &AnyPool,
    p: &str,
    f: &Filter,
    now: i64,
) -> Vec<(String, String, FollowUp)> {
    let window = f.window_days.max(1) * D;
    let mut sql = format!(
        "SELECT e.patient_id, e.encounter_id, e.discharged_at, e.letter_sent_at, e.letter_items, e.reconciled_at,
         e.first_contact_at FROM {p}encounters e LEFT JOIN {p}patients pt ON pt.patient_id = e.patient_id
         WHERE e.discharged_at IS NOT NULL AND e.discharged_at <= $2 AND $1 <= $2
           AND e.{} AND e.{} AND pt.died_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM {p}encounters later WHERE later.patient_id = e.patient_id
                           AND later.admitted_at > e.admitted_at)",
        queries::FOLLOWED,
        queries::FOLLOWED_SETTINGS
    );
    let mut texts = Vec::new();
    if !f.territory.is_empty() {
        texts.push(f.territory.clone());
        sql += &format!(" AND e.territory = ${}", texts.len() + 2);
    }
    // What a reader types: an id, or a part of a name in any case (no wildcard in these tests).
    let part = |text: &str| format!("%{}%", text.to_lowercase());
    if !f.facility_id.is_empty() {
        texts.push(f.facility_id.clone());
        texts.push(part(&f.facility_id));
        sql += &format!(
            " AND (e.facility_id = ${} OR LOWER(e.facility_name) LIKE ${n} OR LOWER(e.unit) LIKE ${n})",
            texts.len() + 1,
            n = texts.len() + 2
        );
    }
    if !f.referent_id.is_empty() {
        texts.push(f.referent_id.clone());
        texts.push(part(&f.referent_id));
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM {p}referents r WHERE r.patient_id = e.patient_id
               AND (r.professional_id = ${} OR LOWER(r.name) LIKE ${}))",
            texts.len() + 1,
            texts.len() + 2
        );
    }
    if let Some(org) = &f.organisation {
        texts.push(org.clone());
        sql += &format!(
            " AND NOT EXISTS (SELECT 1 FROM {p}consents c WHERE c.patient_id = e.patient_id AND c.revoked = 1
               AND (c.organisation = ${} OR c.organisation = '*'))",
            texts.len() + 2
        );
    }
    // The window's start is bound but applied in Rust below, with the open tasks.
    let mut q = sqlx::query(&sql).bind(now - window).bind(now);
    for t in &texts {
        q = q.bind(t.as_str());
    }
    let mut found: Vec<(String, String, Facts)> = Vec::new();
    for r in q.fetch_all(pool).await.unwrap() {
        found.push((
            r.get(0),
            r.get(1),
            Facts {
                discharged_at: r.get(2),
                letter_sent_at: r.get(3),
                letter_items: r.get::<i64, _>(4) as u32,
                reconciled_at: r.get(5),
                first_contact_at: r.get(6),
                ..Default::default()
            },
        ));
    }
    let index: HashMap<(String, String), usize> = found
        .iter()
        .enumerate()
        .map(|(i, (pid, enc, _))| ((pid.clone(), enc.clone()), i))
        .collect();
    let by_patient: HashMap<String, usize> = found
        .iter()
        .enumerate()
        .map(|(i, (pid, _, _))| (pid.clone(), i))
        .collect();
    let sql = format!(
        "SELECT patient_id, encounter_id, appointment_id, kind, due_at, state FROM {p}appointments"
    );
    for r in sqlx::query(&sql).fetch_all(pool).await.unwrap() {
        if let Some(&i) = index.get(&(r.get(0), r.get(1))) {
            found[i].2.appointments.push(Appointment {
                appointment_id: r.get(2),
                kind: r.get(3),
                due_at: r.get(4),
                state: match r.get::<i64, _>(5) {
                    1 => AppointmentState::Completed,
                    2 => AppointmentState::Missed,
                    _ => AppointmentState::Scheduled,
                },
            });
        }
    }
    let sql = format!(
        "SELECT patient_id, alert_id, severity, reason, raised_at, acknowledged_at FROM {p}alerts WHERE resolved_at IS NULL"
    );
    for r in sqlx::query(&sql).fetch_all(pool).await.unwrap() {
        if let Some(&i) = by_patient.get(&r.get::<String, _>(0)) {
            found[i].2.alerts.push(Alert {
                alert_id: r.get(1),
                severity: r.get::<i64, _>(2) as i32,
                reason: r.get(3),
                raised_at: r.get(4),
                acknowledged_at: r.get(5),
                resolved_at: None,
            });
        }
    }
    let mut items: Vec<(String, String, FollowUp, i64)> = found
        .into_iter()
        .filter_map(|(pid, enc, facts)| {
            let fu = followup::follow_up(&facts, now);
            let listed = facts.discharged_at >= now - window || followup::open_task(&facts, &fu);
            listed.then_some((pid, enc, fu, facts.discharged_at))
        })
        .filter(|(_, _, fu, _)| !f.overdue_only || fu.overdue)
        .filter(|(_, _, fu, _)| {
            f.min_alert_severity <= 0 || fu.max_open_severity >= f.min_alert_severity
        })
        .collect();
    items.sort_by(|a, b| {
        b.2.urgency
            .cmp(&a.2.urgency)
            .then(a.3.cmp(&b.3))
            .then(a.0.cmp(&b.0))
    });
    items
        .into_iter()
        .map(|(pid, enc, fu, _)| (pid, enc, fu))
        .collect()
}

fn filters() -> Vec<(&'static str, Filter)> {
    let base = Filter {
        window_days: 30,
        ..Default::default()
    };
    vec![
        ("all", base.clone()),
        (
            "overdue",
            Filter {
                overdue_only: true,
                ..base.clone()
            },
        ),
        (
            "moderate alerts and up",
            Filter {
                min_alert_severity: 2,
                ..base.clone()
            },
        ),
        (
            "critical alerts",
            Filter {
                min_alert_severity: 4,
                ..base.clone()
            },
        ),
        (
            "T2 overdue with a high alert",
            Filter {
                territory: "T2".into(),
                overdue_only: true,
                min_alert_severity: 3,
                ..base.clone()
            },
        ),
        (
            "a facility by id",
            Filter {
                facility_id: "F1".into(),
                ..base.clone()
            },
        ),
        (
            "a facility by part of its name",
            Filter {
                facility_id: "ital f2".into(),
                ..base.clone()
            },
        ),
        (
            "a unit by part of its name, overdue",
            Filter {
                facility_id: "CARD".into(),
                overdue_only: true,
                ..base.clone()
            },
        ),
        (
            "a referent by id",
            Filter {
                referent_id: "nurse-7".into(),
                ..base.clone()
            },
        ),
        (
            "a referent by part of a name",
            Filter {
                referent_id: "id".into(),
                ..base.clone()
            },
        ),
        (
            "shared with ORG1",
            Filter {
                organisation: Some("ORG1".into()),
                ..base.clone()
            },
        ),
        (
            "last 5 days",
            Filter {
                window_days: 5,
                ..base
            },
        ),
    ]
}

/// Query times: around t0, and exactly at (and just before) due times of discharges with
/// nothing else to do, where the instant decides whether they are overdue.
async fn times(pool: &AnyPool, p: &str) -> Vec<i64> {
    let mut out = vec![
        t0() - 7 * D,
        t0() - 2 * D + 13 * H,
        t0(),
        t0() + 36 * H,
        t0() + 5 * D,
    ];
    let quiet = "latest = 1 AND discharged_at IS NOT NULL AND alerts_critical + alerts_high + alerts_other = 0
                 AND appointments_missed = 0";
    for (due, rest) in [
        (
            "earliest_scheduled_at",
            "letter_sent_at IS NOT NULL AND reconciled_at IS NOT NULL AND first_contact_at IS NOT NULL",
        ),
        (
            "first_contact_due_at",
            "letter_sent_at IS NOT NULL AND earliest_scheduled_at IS NULL",
        ),
        (
            "letter_due_at",
            "first_contact_at IS NOT NULL AND earliest_scheduled_at IS NULL",
        ),
        (
            "reconciliation_due_at",
            "letter_sent_at IS NOT NULL AND first_contact_at IS NOT NULL AND earliest_scheduled_at IS NULL",
        ),
    ] {
        let sql = format!(
            "SELECT {due} FROM {p}encounters WHERE {quiet} AND {rest} AND {due} IS NOT NULL
             ORDER BY discharged_at, patient_id LIMIT 3"
        );
        let found = sqlx::query(&sql).fetch_all(pool).await.unwrap();
        assert!(!found.is_empty(), "no quiet discharge to test {due} with");
        for r in found {
            let t: i64 = r.get(0);
            out.extend([t - 1, t]);
        }
    }
    out
}

async fn check_against_reference(db: &Db, p: &str) {
    let pool = &db.pool;
    let mut pages = 0;
    for now in times(pool, p).await {
        for (name, f) in filters() {
            let want = reference(pool, p, &f, now).await;
            let size = if name == "all" { 7 } else { 50 };
            let mut got = Vec::new();
            let mut offset = 0;
            loop {
                let page = queries::worklist(pool, p, &f, now, offset, size)
                    .await
                    .unwrap();
                assert_eq!(page.total, want.len() as u64, "{name} at {now}: total");
                pages += 1;
                if page.items.is_empty() {
                    break;
                }
                assert!(page.items.len() as u64 <= size);
                got.extend(page.items.into_iter().map(|i| {
                    (
                        i.discharge.patient_id,
                        i.discharge.encounter_id,
                        i.follow_up,
                    )
                }));
                offset += size;
            }
            let keys = |v: &[(String, String, FollowUp)]| -> Vec<(String, String, i64)> {
                v.iter()
                    .map(|(p, e, fu)| (p.clone(), e.clone(), fu.urgency))
                    .collect()
            };
            assert_eq!(keys(&got), keys(&want), "{name} at {now}: order");
            assert_eq!(got, want, "{name} at {now}: follow-ups");
            // Small pages of a filter matching many rows read the worklist's index in order
            // rather than every matching row sorted: the same rows
            for (offset, size) in [(0, 1), (2, 2)] {
                let page = queries::worklist(pool, p, &f, now, offset, size)
                    .await
                    .unwrap();
                let shown: Vec<_> = page
                    .items
                    .into_iter()
                    .map(|i| {
                        (
                            i.discharge.patient_id,
                            i.discharge.encounter_id,
                            i.follow_up,
                        )
                    })
                    .collect();
                let from = (offset as usize).min(want.len());
                let to = (from + size as usize).min(want.len());
                assert_eq!(
                    shown,
                    want[from..to],
                    "{name} at {now}: page {offset}+{size}"
                );
            }
        }
    }
    assert!(pages > 100, "{pages} pages checked");
}

/// The population is varied enough to test something: every kind of task happens somewhere.
async fn check_variety(db: &Db, p: &str) {
    let all = reference(&db.pool, p, &filters()[0].1, t0()).await;
    assert!(all.len() > 200, "{} followed", all.len());
    for task in [
        "critical_alert_open",
        "high_alert_open",
        "alert_open",
        "alert_acknowledged",
        "first_contact_overdue",
        "appointment_missed",
        "appointment_unconfirmed",
        "letter_overdue",
        "reconciliation_overdue",
        "letter_incomplete",
        "first_contact_due",
    ] {
        assert!(
            all.iter().any(|(_, _, fu)| fu.tasks.contains(&task)),
            "no discharge with {task}"
        );
    }
    assert!(all.iter().any(|(_, _, fu)| !fu.overdue));
    // Every filter finds somebody, and leaves somebody out.
    for (name, f) in filters().into_iter().skip(1) {
        let found = reference(&db.pool, p, &f, t0()).await.len();
        assert!(
            found > 0 && found < all.len(),
            "{name}: {found} of {}",
            all.len()
        );
    }
}

const PATIENTS: usize = 600;

#[tokio::test]
async fn sqlite_worklist_matches_the_rust_order() {
    let dir = tempfile::tempdir().unwrap();
    let events = population(PATIENTS);
    let db = db::connect(&format!("sqlite://{}/batched.sqlite", dir.path().display()))
        .await
        .unwrap();
    let p = fold(&db, &events, 61).await;
    check_variety(&db, &p).await;
    check_against_reference(&db, &p).await;
    let kept = db::connect(&format!("sqlite://{}/kept.sqlite", dir.path().display()))
        .await
        .unwrap();
    check_with_upkeep(&kept, &events, 61).await;

    // One event per batch leaves the same rows as batches of many patients' events.
    let single = db::connect(&format!("sqlite://{}/single.sqlite", dir.path().display()))
        .await
        .unwrap();
    fold(&single, &events, 1).await;
    for (table, key) in [
        ("patients", "patient_id"),
        ("encounters", "patient_id, encounter_id"),
        ("contacts", "patient_id, event_id"),
        ("appointments", "patient_id, appointment_id"),
        ("alerts", "patient_id, alert_id"),
        ("referents", "patient_id, role"),
        ("consents", "patient_id, organisation"),
    ] {
        let dump = |pool: AnyPool| {
            let sql = format!("SELECT * FROM {p}{table} ORDER BY {key}");
            async move {
                sqlx::query(&sql)
                    .fetch_all(&pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                r.try_get::<Option<i64>, _>(i)
                                    .map(|v| format!("{v:?}"))
                                    .or_else(|_| {
                                        r.try_get::<Option<String>, _>(i).map(|v| format!("{v:?}"))
                                    })
                                    .unwrap()
                            })
                            .collect::<Vec<_>>()
                            .join("|")
                    })
                    .collect::<Vec<_>>()
            }
        };
        let (a, b) = (dump(db.pool.clone()).await, dump(single.pool.clone()).await);
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a, b, "{table}: batched and one-by-one folds differ");
    }
}

#[tokio::test]
async fn postgres_worklist_matches_the_rust_order() {
    // Its text order is French (ICU), not bytewise: the worklist must not depend on the
    // database's locale.
    let pg = journey_tests::PgDb::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'",
    );
    let db = db::connect(&pg.url).await.unwrap();
    let events = population(PATIENTS);
    check_with_upkeep(&db, &events, 61).await;
    db.pool.close().await;
}
