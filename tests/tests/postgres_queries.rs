//! Issue 19, item 20: every query of every read-model service runs on both backends, with the same
//! answers. Two `journey up` over the same log, one on SQLite (the default), one on a fresh
//! PostgreSQL database whose text order is French (ICU), not bytewise; a simulated population
//! (`journey simulate`) appended to the first, the same events in the same order to the second.
//! Then every Readmission call (Rates by every breakdown and over several periods, IndexStays paged,
//! AtRisk, PatientStays), every Coordination call (Worklist with each filter, paged; FollowUp;
//! Indicators) and the access log they fill (Audit.Accesses) is asked of both: the same answers,
//! or the same refusals. A small cohort beside the simulated one ties on everything but its
//! identifiers, which byte order and the French order sort differently.
use futures::StreamExt;
use journey_proto::{
    prost_types::Timestamp,
    v1::{
        audit_client::AuditClient, coordination_client::CoordinationClient, event::Payload,
        readmission_client::ReadmissionClient, AccessesRequest, AdmitType, Admitted, AtRiskRequest,
        Code as Diagnosis, Discharged, Disposition, Event, Facility, FollowUpRequest, GroupBy,
        HeadRequest, IndexStay, IndexStaysRequest, IndicatorsRequest, IndicatorsResponse,
        PatientStaysRequest, Period, RatesRequest, ReadAllRequest, Setting, WorklistItem,
        WorklistRequest,
    },
};
use journey_tests::*;
use std::{collections::BTreeSet, fmt::Debug, future::Future, process::Command};
use tonic::{transport::Channel, Code, Response, Status};

/// The same client type connected to each server: (SQLite, PostgreSQL).
type Pair<C> = (C, C);

/// Where two debug renderings part, with some context before: what an assertion shows.
fn difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let window =
        |l: &[&str]| l[at.saturating_sub(15).min(l.len())..(at + 3).min(l.len())].join("\n");
    format!(
        "first difference at line {at}\n--- SQLite:\n{}\n--- PostgreSQL:\n{}",
        window(&a),
        window(&b)
    )
}

/// Asks `req` of both servers through `call`: both must answer the same, or refuse alike (same
/// code, same message). Returns the answer (or the refusal).
async fn both<C, Q, R, F, Fut>(clients: &Pair<C>, req: Q, call: F) -> Result<R, Status>
where
    C: Clone,
    Q: Clone + Debug,
    R: PartialEq + Debug,
    F: Fn(C, Q) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let what = format!("{req:?}");
    let lite = call(clients.0.clone(), req.clone())
        .await
        .map(Response::into_inner);
    let post = call(clients.1.clone(), req).await.map(Response::into_inner);
    match (lite, post) {
        (Ok(a), Ok(b)) => {
            if a != b {
                panic!(
                    "{what}: SQLite and PostgreSQL answer differently; {}",
                    difference(&format!("{a:#?}"), &format!("{b:#?}"))
                );
            }
            Ok(a)
        }
        (Err(a), Err(b)) => {
            assert_eq!(
                (a.code(), a.message()),
                (b.code(), b.message()),
                "{what}: SQLite and PostgreSQL refuse differently"
            );
            Err(a)
        }
        (a, b) => panic!("{what}: SQLite answered {a:?}\nPostgreSQL answered {b:?}"),
    }
}

/// [`both`], where the call must succeed.
async fn ok<C, Q, R, F, Fut>(clients: &Pair<C>, req: Q, call: F) -> R
where
    C: Clone,
    Q: Clone + Debug,
    R: PartialEq + Debug,
    F: Fn(C, Q) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let what = format!("{req:?}");
    both(clients, req, call)
        .await
        .unwrap_or_else(|s| panic!("{what} refused on both: {s:?}"))
}

/// [`both`], where the call must be refused with `code`.
async fn refused<C, Q, R, F, Fut>(clients: &Pair<C>, req: Q, code: Code, call: F)
where
    C: Clone,
    Q: Clone + Debug,
    R: PartialEq + Debug,
    F: Fn(C, Q) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let what = format!("{req:?}");
    match both(clients, req, call).await {
        Err(s) => assert_eq!(s.code(), code, "{what}: {s:?}"),
        Ok(r) => panic!("{what}: answered {r:?}, expected {code:?}"),
    }
}

async fn pair<C>(servers: &Pair<Server>, make: impl Fn(Channel) -> C) -> Pair<C> {
    (
        make(client::channel(&servers.0.grpc).await.unwrap()),
        make(client::channel(&servers.1.grpc).await.unwrap()),
    )
}

/// "YYYY-MM-DD" of `days` days before today (UTC).
fn day(days_ago: i64) -> String {
    (chrono::Utc::now().date_naive() - chrono::Duration::days(days_ago))
        .format("%Y-%m-%d")
        .to_string()
}

fn period(from: &str, to: &str) -> Option<Period> {
    Some(Period {
        from_date: from.into(),
        to_date: to.into(),
    })
}

/// The cohort's patients, encounters, facilities, territories, units: French (ICU) order and byte
/// order differ on case (`SIM` before `sim` bytewise, after in French) and punctuation (`-`
/// before `_` bytewise, after in French).
const COHORT: [(&str, &str, &str, &str, &str); 6] = [
    ("sim-3-zoe", "enc-B", "fac-b", "t-1", "cardio"),
    ("SIM-3-eric", "enc-a", "FAC-A", "T-2", "Cardio"),
    ("sim-3-Bob", "ENC-c", "fac_c", "t_1", "pneumo"),
    ("sim_3_alice", "enc_d", "fac-b", "t-1", "Pneumo"),
    ("Sim-3-carl", "enc-e", "FAC-A", "T-2", "cardio"),
    ("sim.3.dan", "Enc-F", "fac_c", "t_1", "neuro"),
];

/// The cohort's stays: admitted as emergencies 20 days ago, discharged home 15 days ago, all at
/// the same second, with diagnoses that weigh nothing in the Charlson index (the same LACE).
fn cohort(now: i64) -> Vec<Event> {
    let midnight = now.div_euclid(86_400) * 86_400;
    let at = |seconds| Timestamp { seconds, nanos: 0 };
    let dx = ["J18.9", "S72.0", "K35.8"];
    COHORT
        .iter()
        .enumerate()
        .flat_map(|(i, (patient, enc, fac, territory, unit))| {
            [
                event(
                    patient,
                    at(midnight - 20 * 86_400 + 8 * 3_600),
                    Payload::Admitted(Admitted {
                        encounter_id: enc.to_string(),
                        facility: Some(Facility {
                            id: fac.to_string(),
                            name: format!("Hôpital {fac}"),
                            territory: territory.to_string(),
                            time_zone: "Europe/Paris".into(),
                        }),
                        unit: unit.to_string(),
                        setting: Setting::Inpatient as i32,
                        admit_type: AdmitType::Emergency as i32,
                        diagnoses: vec![Diagnosis {
                            system: "ICD-10".into(),
                            code: dx[i % dx.len()].into(),
                            display: String::new(),
                        }],
                        ..Default::default()
                    }),
                ),
                event(
                    patient,
                    at(midnight - 15 * 86_400 + 12 * 3_600),
                    Payload::Discharged(Discharged {
                        encounter_id: enc.to_string(),
                        disposition: Disposition::Home as i32,
                        ..Default::default()
                    }),
                ),
            ]
        })
        .collect()
}

/// Every event of `from`'s log, appended in the same order and batches of at most 500 to `to`'s
/// log (the log's own fields are the receiving log's to set); the head of both.
async fn copy_log(from: &Server, to: &Server) -> u64 {
    let mut source = from.client().await;
    let mut target = to.client().await;
    let mut stream = source
        .read_all(ReadAllRequest {
            from_position: 1,
            to_position: 0,
            batch_size: 500,
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(batch) = stream.next().await {
        let events: Vec<Event> = batch
            .unwrap()
            .events
            .into_iter()
            .map(|e| Event {
                stream_version: 0,
                position: 0,
                recorded_at: None,
                schema_version: 0,
                prev_hash: Vec::new(),
                hash: Vec::new(),
                ..e
            })
            .collect();
        if !events.is_empty() {
            append_batch(&mut target, events).await;
        }
    }
    let a = source.head(HeadRequest {}).await.unwrap().into_inner();
    let b = target.head(HeadRequest {}).await.unwrap().into_inner();
    assert_eq!(a.position, b.position, "both logs hold the same events");
    a.position
}

/// Every page of the worklist `req` asks for (`page_size` items at a time), compared page by
/// page; all the items.
async fn worklist_pages(
    co: &Pair<CoordinationClient<Channel>>,
    req: WorklistRequest,
) -> Vec<WorklistItem> {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let page = ok(
            co,
            WorklistRequest {
                page_token: token,
                ..req.clone()
            },
            |mut c, r| async move { c.worklist(r).await },
        )
        .await;
        if req.page_size > 0 {
            assert!(page.items.len() <= req.page_size as usize, "{req:?}");
        }
        items.extend(page.items);
        if page.next_page_token.is_empty() {
            assert_eq!(items.len() as u64, page.total, "{req:?}: every page read");
            return items;
        }
        token = page.next_page_token;
    }
}

/// Every page of the index stays over `period`.
async fn index_stays_pages(
    rd: &Pair<ReadmissionClient<Channel>>,
    period: Option<Period>,
    page_size: u32,
) -> Vec<IndexStay> {
    let mut stays = Vec::new();
    let mut token = String::new();
    loop {
        let page = ok(
            rd,
            IndexStaysRequest {
                period: period.clone(),
                page_size,
                page_token: token,
            },
            |mut c, r| async move { c.index_stays(r).await },
        )
        .await;
        stays.extend(page.stays);
        if page.next_page_token.is_empty() {
            return stays;
        }
        token = page.next_page_token;
    }
}

/// Indicators are computed at the time of the query (ages of open alerts, in hours): the two
/// answers may straddle an hour. Asked again then, they must agree.
async fn indicators(
    co: &Pair<CoordinationClient<Channel>>,
    req: IndicatorsRequest,
) -> IndicatorsResponse {
    let ask = |c: CoordinationClient<Channel>| {
        let req = req.clone();
        async move {
            let mut c = c;
            c.indicators(req).await.unwrap().into_inner()
        }
    };
    for _ in 0..2 {
        let (a, b) = (ask(co.0.clone()).await, ask(co.1.clone()).await);
        if a == b {
            return a;
        }
    }
    ok(co, req, |mut c, r| async move { c.indicators(r).await }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_query_answers_alike_on_sqlite_and_postgres() {
    // A database whose text order is not bytewise: answers must not depend on the locale.
    let pg = PgDb::create_with(
        "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'fr-FR' LOCALE 'C.UTF-8'",
    );
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // No reactor: each would append its own alerts, and the logs would differ.
    let servers: Pair<Server> = (
        Server::start(d1.path(), &["--no-reactor"]),
        Server::start(d2.path(), &["--no-reactor", "--database-url", &pg.url]),
    );
    let out = Command::new(journey_bin())
        .args([
            "simulate",
            "--patients",
            "200",
            "--days",
            "120",
            "--seed",
            "3",
            "--server",
            &servers.0.grpc,
        ])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "simulate: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let now = chrono::Utc::now().timestamp();
    append_batch(&mut servers.0.client().await, cohort(now)).await;
    let head = copy_log(&servers.0, &servers.1).await;
    assert!(head > 2_000, "a meaningful population: {head} events");
    wait_projected(&servers.0.grpc, head).await;
    wait_projected(&servers.1.grpc, head).await;

    let rd = pair(&servers, ReadmissionClient::new).await;
    let co = pair(&servers, CoordinationClient::new).await;
    let au = pair(&servers, AuditClient::new).await;

    // --- Readmission ----------------------------------------------------------------------
    let periods = [
        None,
        // The whole simulated window and more (a wide period: the table is scanned).
        period(&day(150), &day(0)),
        // A month (a narrow period: through the discharge-day index).
        period(&day(75), &day(45)),
        period(&day(40), ""),
        period("", &day(60)),
        // Nothing discharged then.
        period("2001-01-01", "2001-12-31"),
    ];
    let groups = [
        GroupBy::None,
        GroupBy::Facility,
        GroupBy::Unit,
        GroupBy::Disposition,
        GroupBy::Month,
        GroupBy::DiagnosisChapter,
        GroupBy::Territory,
    ];
    for p in &periods {
        let mut totals = BTreeSet::new();
        for g in groups {
            let r = ok(
                &rd,
                RatesRequest {
                    period: p.clone(),
                    group_by: g as i32,
                },
                |mut c, r| async move { c.rates(r).await },
            )
            .await;
            let total = r.total.clone().unwrap();
            totals.insert(format!("{total:?}"));
            if p.is_none() {
                assert!(
                    total.index_stays > 100 && total.readmissions > 0 && total.ed_revisits > 0,
                    "a meaningful population: {total:?}"
                );
                match g {
                    GroupBy::None => assert_eq!(r.rows.len(), 1, "{r:?}"),
                    _ => assert!(r.rows.len() > 1, "{g:?}: {r:?}"),
                }
            }
            if p.as_ref().is_some_and(|p| p.from_date.starts_with("2001")) {
                assert!(r.rows.is_empty() && total.index_stays == 0, "{r:?}");
            }
        }
        // Every breakdown adds up to the same total.
        assert_eq!(totals.len(), 1, "{p:?}: {totals:?}");
    }
    refused(
        &rd,
        RatesRequest {
            period: period(&day(1), &day(2)),
            group_by: 0,
        },
        Code::InvalidArgument,
        |mut c, r| async move { c.rates(r).await },
    )
    .await;
    refused(
        &rd,
        RatesRequest {
            period: None,
            group_by: 42,
        },
        Code::InvalidArgument,
        |mut c, r| async move { c.rates(r).await },
    )
    .await;

    // Index stays, paged: small pages, the default, the largest; over all time and a month.
    let all = index_stays_pages(&rd, None, 7).await;
    assert!(all.len() > 100, "{} index stays", all.len());
    assert_eq!(index_stays_pages(&rd, None, 0).await, all);
    assert_eq!(index_stays_pages(&rd, None, 1000).await, all);
    // The cohort ties on the day of discharge: its stays come in byte order of patient.
    let tied: Vec<&str> = all
        .iter()
        .filter(|s| COHORT.iter().any(|c| c.0 == s.patient_id))
        .map(|s| s.patient_id.as_str())
        .collect();
    let mut bytewise: Vec<&str> = COHORT.iter().map(|c| c.0).collect();
    bytewise.sort();
    assert_eq!(tied, bytewise);
    let month = index_stays_pages(&rd, period(&day(75), &day(45)), 13).await;
    assert!(!month.is_empty() && month.len() < all.len());
    refused(
        &rd,
        IndexStaysRequest {
            period: None,
            page_size: 5,
            page_token: "page two".into(),
        },
        Code::InvalidArgument,
        |mut c, r| async move { c.index_stays(r).await },
    )
    .await;

    // At risk, as of several days, with several limits.
    let mut at_risk = 0;
    for as_of in [
        String::new(),
        day(10),
        day(40),
        day(90),
        "2001-06-01".into(),
    ] {
        for limit in [0, 3, 10_000] {
            let r = ok(
                &rd,
                AtRiskRequest {
                    as_of_date: as_of.clone(),
                    limit,
                },
                |mut c, r| async move { c.at_risk(r).await },
            )
            .await;
            at_risk += r.stays.len();
        }
    }
    assert!(at_risk > 0, "someone at risk");

    // Every patient's stays, someone unknown, and no one.
    let patients: BTreeSet<String> = all.iter().map(|s| s.patient_id.clone()).collect();
    for p in patients.iter().map(String::as_str).chain(["nobody"]) {
        ok(
            &rd,
            PatientStaysRequest {
                patient_id: p.into(),
            },
            |mut c, r| async move { c.patient_stays(r).await },
        )
        .await;
    }
    refused(
        &rd,
        PatientStaysRequest::default(),
        Code::InvalidArgument,
        |mut c, r| async move { c.patient_stays(r).await },
    )
    .await;

    // --- Coordination ---------------------------------------------------------------------
    let at = |secs_ago: i64| {
        Some(Timestamp {
            seconds: now - secs_ago,
            nanos: 0,
        })
    };
    let base = WorklistRequest {
        as_of: at(0),
        page_size: 9,
        ..Default::default()
    };
    let followed = worklist_pages(&co, base.clone()).await;
    assert!(followed.len() > 10, "{} followed", followed.len());
    assert_eq!(
        worklist_pages(
            &co,
            WorklistRequest {
                page_size: 0,
                ..base.clone()
            }
        )
        .await,
        followed
    );
    let facilities: BTreeSet<String> = all.iter().map(|s| s.facility_id.clone()).collect();
    let territories: BTreeSet<String> = followed.iter().map(|i| i.territory.clone()).collect();
    let referents: BTreeSet<String> = followed
        .iter()
        .flat_map(|i| i.referents.iter().map(|r| r.professional_id.clone()))
        .collect();
    assert!(facilities.len() > 1 && territories.len() > 1 && !referents.is_empty());
    let mut filters = vec![
        WorklistRequest {
            window_days: 7,
            ..base.clone()
        },
        WorklistRequest {
            window_days: 120,
            page_size: 25,
            ..base.clone()
        },
        WorklistRequest {
            overdue_only: true,
            ..base.clone()
        },
        WorklistRequest {
            as_of: at(45 * 86_400),
            window_days: 60,
            ..base.clone()
        },
        WorklistRequest {
            facility_id: "no such facility".into(),
            ..base.clone()
        },
    ];
    filters.extend((1..=4).map(|s| WorklistRequest {
        min_alert_severity: s,
        window_days: 120,
        ..base.clone()
    }));
    filters.extend(facilities.iter().map(|f| WorklistRequest {
        facility_id: f.clone(),
        window_days: 60,
        ..base.clone()
    }));
    filters.extend(territories.iter().map(|t| WorklistRequest {
        territory: t.clone(),
        overdue_only: true,
        ..base.clone()
    }));
    filters.extend(referents.iter().take(5).map(|r| WorklistRequest {
        referent_id: r.clone(),
        window_days: 120,
        ..base.clone()
    }));
    let mut seen = 0;
    for f in filters {
        seen += worklist_pages(&co, f).await.len();
    }
    assert!(seen > followed.len(), "filters that select something");
    refused(
        &co,
        WorklistRequest {
            min_alert_severity: 9,
            ..base.clone()
        },
        Code::InvalidArgument,
        |mut c, r| async move { c.worklist(r).await },
    )
    .await;
    refused(
        &co,
        WorklistRequest {
            page_token: "next".into(),
            ..base.clone()
        },
        Code::InvalidArgument,
        |mut c, r| async move { c.worklist(r).await },
    )
    .await;

    // Every patient's follow-up (now, and as it was a month ago), and someone unknown.
    let mut patients = patients;
    patients.extend(followed.iter().map(|i| i.patient_id.clone()));
    let mut discharges = 0;
    for p in &patients {
        for as_of in [at(0), at(30 * 86_400)] {
            let r = both(
                &co,
                FollowUpRequest {
                    patient_id: p.clone(),
                    as_of,
                },
                |mut c, r| async move { c.follow_up(r).await },
            )
            .await;
            match r {
                Ok(r) => discharges += r.discharges.len(),
                Err(s) => assert_eq!(s.code(), Code::NotFound, "{p}: {s:?}"),
            }
        }
    }
    assert!(
        discharges > patients.len(),
        "{discharges} discharges followed"
    );
    refused(
        &co,
        FollowUpRequest {
            patient_id: "nobody".into(),
            as_of: at(0),
        },
        Code::NotFound,
        |mut c, r| async move { c.follow_up(r).await },
    )
    .await;

    // Indicators: the last twelve weeks, the simulated window, one facility, one territory.
    let window = period(&day(120), &day(0));
    let mut requests = vec![
        IndicatorsRequest::default(),
        IndicatorsRequest {
            period: window.clone(),
            ..Default::default()
        },
        IndicatorsRequest {
            period: period(&day(40), &day(20)),
            ..Default::default()
        },
    ];
    requests.extend(facilities.iter().map(|f| IndicatorsRequest {
        period: window.clone(),
        facility_id: f.clone(),
        ..Default::default()
    }));
    requests.extend(territories.iter().map(|t| IndicatorsRequest {
        period: window.clone(),
        territory: t.clone(),
        ..Default::default()
    }));
    // A part of a unit's name, in another case; a unit nobody has.
    let discharges = |r: &IndicatorsResponse| r.weeks.iter().map(|w| w.discharges).sum::<u64>();
    let by_unit = |unit: &str| IndicatorsRequest {
        period: window.clone(),
        unit: unit.into(),
        ..Default::default()
    };
    let all = discharges(&indicators(&co, by_unit("")).await);
    let cardiology = discharges(&indicators(&co, by_unit("CARDIO")).await);
    assert!(0 < cardiology && cardiology < all, "{cardiology} of {all}");
    assert_eq!(discharges(&indicators(&co, by_unit("nulle part")).await), 0);
    for req in requests {
        let r = indicators(&co, req.clone()).await;
        assert!(!r.weeks.is_empty(), "{req:?}");
        if req.facility_id.is_empty() && req.territory.is_empty() {
            assert!(
                r.weeks
                    .iter()
                    .any(|w| w.discharges > 0 && w.index_stays > 0),
                "{req:?}: {r:?}"
            );
        }
    }
    refused(
        &co,
        IndicatorsRequest {
            period: period(&day(1), &day(9)),
            ..Default::default()
        },
        Code::InvalidArgument,
        |mut c, r| async move { c.indicators(r).await },
    )
    .await;

    // --- The access log all those reads filled -------------------------------------------------
    // The same calls in the same order on both: the same records, but for their time and seq.
    let accesses = |patient: &str| AccessesRequest {
        patient_id: patient.into(),
        limit: 10_000,
        ..Default::default()
    };
    let without_time = |mut c: AuditClient<Channel>, r: AccessesRequest| async move {
        c.accesses(r).await.map(|a| {
            a.map(|mut a| {
                // Time and the place in each backend's chain are each server's own; the copy
                // of one log into the other read the first log only (EventLog reads are
                // recorded too).
                a.records.retain(|r| !r.call.starts_with("EventLog/"));
                a.records.iter_mut().for_each(|r| (r.at, r.seq) = (None, 0));
                a
            })
        })
    };
    let lists = ok(&au, accesses(""), without_time).await;
    assert!(
        lists.records.len() > 100,
        "{} list reads",
        lists.records.len()
    );
    for p in patients.iter().take(20) {
        let r = ok(&au, accesses(p), without_time).await;
        assert!(!r.records.is_empty(), "{p}: reads recorded");
    }
    drop(servers);
}
