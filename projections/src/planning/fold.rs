//! The planning projection's tables and fold: per stay (open or ended), where it is, its latest
//! expected discharge, its complex-discharge flag, and the checklist items with who set them and
//! when; with each ended stay the items done when the patient left.
//!
//! Only the events of discharge planning and the movements they hang on are folded, one or two
//! statements each, in the batch's transaction: an item or date for a stay the view does not
//! know (never admitted, or its admission cancelled) changes nothing.
use super::checklist::reason_bits;
use crate::movements::{self, Movements};
use crate::runtime::Projection;
use journey_proto::v1::{event::Payload, Event};
use sqlx::{AnyConnection, Row};

pub struct Planning;

const TABLES: &[&str] = &["patients", "stays", "checklist"];

fn secs(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds)
}

fn display_name(family: &str, given: &str) -> String {
    format!("{} {}", family.to_uppercase(), given)
        .trim()
        .to_string()
}

/// Who did it, as the event's actor names them.
fn actor_name(e: &Event) -> String {
    e.actor
        .as_ref()
        .map(|a| {
            if a.display_name.is_empty() {
                a.id.clone()
            } else {
                a.display_name.clone()
            }
        })
        .unwrap_or_default()
}

impl Projection for Planning {
    fn name(&self) -> &'static str {
        "planning"
    }

    fn schema_version(&self) -> i64 {
        // 2: patients carry their sex (the pages write "née" or "né").
        // 3: stays keep their movements and are derived from them (corrections, cancellations,
        //    historic movements, class changes), as the other read models' are.
        // 4: ended stays indexed with what the indicators count (`stays_discharged`).
        4
    }

    fn tables(&self) -> &'static [&'static str] {
        TABLES
    }

    fn ddl(&self, p: &str) -> Vec<String> {
        vec![
            format!(
                "CREATE TABLE {p}patients (patient_id TEXT PRIMARY KEY, display_name TEXT NOT NULL, birth_date TEXT NOT NULL,
                 sex BIGINT NOT NULL)"
            ),
            format!(
                "CREATE TABLE {p}stays (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, facility_id TEXT NOT NULL,
                 facility_name TEXT NOT NULL, territory TEXT NOT NULL, time_zone TEXT NOT NULL, unit TEXT NOT NULL,
                 admitted_at BIGINT NOT NULL, admit_event_id TEXT NOT NULL, discharged_at BIGINT, discharge_event_id TEXT,
                 expected_at BIGINT, expected_reason TEXT NOT NULL, expected_by TEXT NOT NULL, complex BIGINT NOT NULL,
                 complex_note TEXT NOT NULL, done_at_discharge BIGINT, movements TEXT NOT NULL,
                 PRIMARY KEY (patient_id, encounter_id))"
            ),
            // The in-hospital worklist reads open stays by expected discharge.
            format!("CREATE INDEX {p}stays_expected ON {p}stays (expected_at) WHERE discharged_at IS NULL"),
            // The indicators count ended stays by discharge time from this index alone (the
            // stays are wide: their movements).
            format!(
                "CREATE INDEX {p}stays_discharged ON {p}stays (discharged_at, done_at_discharge, territory, facility_id,
                 patient_id, encounter_id)"
            ),
            format!(
                "CREATE TABLE {p}checklist (patient_id TEXT NOT NULL, encounter_id TEXT NOT NULL, item BIGINT NOT NULL,
                 done BIGINT NOT NULL, by_name TEXT NOT NULL, at BIGINT NOT NULL, detail TEXT NOT NULL,
                 PRIMARY KEY (patient_id, encounter_id, item))"
            ),
        ]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        p: &str,
        events: &[Event],
    ) -> anyhow::Result<()> {
        for e in events {
            apply(conn, p, e).await?;
        }
        Ok(())
    }
}

async fn apply(conn: &mut AnyConnection, p: &str, e: &Event) -> anyhow::Result<()> {
    let Some(payload) = &e.payload else {
        return Ok(());
    };
    let pid = e.patient_id.as_str();
    let at = secs(e.occurred_at.as_ref()).unwrap_or(0);
    if movements::change(e).is_some() {
        return movement(conn, p, e, payload).await;
    }
    match payload {
        Payload::PatientRegistered(r) => {
            let name = display_name(&r.family_name, &r.given_name);
            patient(conn, p, pid, &name, &r.birth_date, r.sex).await?
        }
        Payload::IdentityUpdated(r) => {
            let name = display_name(&r.family_name, &r.given_name);
            patient(conn, p, pid, &name, &r.birth_date, r.sex).await?
        }
        Payload::DischargeExpected(x) => {
            sqlx::query(&format!(
                "UPDATE {p}stays SET expected_at = $3, expected_reason = $4, expected_by = $5
                 WHERE patient_id = $1 AND encounter_id = $2"
            ))
            .bind(pid)
            .bind(&x.encounter_id)
            .bind(secs(x.expected_at.as_ref()))
            .bind(&x.reason)
            .bind(actor_name(e))
            .execute(&mut *conn)
            .await?;
        }
        Payload::ChecklistItemSet(x) => {
            // Only for a stay the view knows.
            sqlx::query(&format!(
                "INSERT INTO {p}checklist (patient_id, encounter_id, item, done, by_name, at, detail)
                 SELECT patient_id, encounter_id, $3, $4, $5, $6, $7 FROM {p}stays
                 WHERE patient_id = $1 AND encounter_id = $2
                 ON CONFLICT (patient_id, encounter_id, item)
                 DO UPDATE SET done = excluded.done, by_name = excluded.by_name, at = excluded.at, detail = excluded.detail"
            ))
            .bind(pid)
            .bind(&x.encounter_id)
            .bind(x.item as i64)
            .bind(i64::from(x.done))
            .bind(actor_name(e))
            .bind(at)
            .bind(&x.detail)
            .execute(&mut *conn)
            .await?;
        }
        Payload::ComplexDischargeFlagged(x) => {
            sqlx::query(&format!(
                "UPDATE {p}stays SET complex = $3, complex_note = $4 WHERE patient_id = $1 AND encounter_id = $2"
            ))
            .bind(pid)
            .bind(&x.encounter_id)
            .bind(reason_bits(&x.reasons))
            .bind(&x.note)
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

/// A stay row as a movement changes it.
struct StayRow {
    encounter_id: String,
    movements: Movements,
    discharged_at: Option<i64>,
}

/// Opens the stay an admission (or a class change making an emergency visit a stay) names,
/// unless it exists.
async fn open_stay(
    conn: &mut AnyConnection,
    p: &str,
    e: &Event,
    payload: &Payload,
) -> anyhow::Result<()> {
    let (encounter_id, facility, unit) = match payload {
        Payload::Admitted(a) => (&a.encounter_id, a.facility.clone(), &a.unit),
        Payload::ClassChanged(c) if c.facility.is_some() => {
            (&c.encounter_id, c.facility.clone(), &c.unit)
        }
        _ => return Ok(()),
    };
    let f = facility.unwrap_or_default();
    sqlx::query(&format!(
        "INSERT INTO {p}stays (patient_id, encounter_id, facility_id, facility_name, territory, time_zone, unit,
         admitted_at, admit_event_id, expected_reason, expected_by, complex, complex_note, movements)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, '', '', 0, '', '')
         ON CONFLICT (patient_id, encounter_id) DO NOTHING"
    ))
    .bind(&e.patient_id)
    .bind(encounter_id)
    .bind(&f.id)
    .bind(&f.name)
    .bind(&f.territory)
    .bind(&f.time_zone)
    .bind(unit)
    .bind(secs(e.occurred_at.as_ref()).unwrap_or(0))
    .bind(&e.event_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Applies a movement event to the stay it concerns (`crate::movements`) and re-derives the
/// stay: admission, unit, discharge. The checklist's state is kept as the plan at discharge when
/// the stay ends, and dropped when the discharge is undone; a stay whose admission is cancelled
/// goes with its checklist.
async fn movement(
    conn: &mut AnyConnection,
    p: &str,
    e: &Event,
    payload: &Payload,
) -> anyhow::Result<()> {
    let Some(change) = movements::change(e) else {
        return Ok(());
    };
    let pid = e.patient_id.as_str();
    open_stay(conn, p, e, payload).await?;
    let mut rows: Vec<StayRow> = sqlx::query(&format!(
        "SELECT encounter_id, movements, discharged_at FROM {p}stays WHERE patient_id = $1"
    ))
    .bind(pid)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(StayRow {
            encounter_id: r.try_get(0)?,
            movements: Movements::from_text(&r.try_get::<String, _>(1)?),
            discharged_at: r.try_get(2)?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    let Some(r) = movements::apply(&mut rows, change, |r| &r.encounter_id, |r| &mut r.movements)
    else {
        return Ok(());
    };
    let Some(stay) = r.movements.stay() else {
        for table in ["stays", "checklist"] {
            sqlx::query(&format!(
                "DELETE FROM {p}{table} WHERE patient_id = $1 AND encounter_id = $2"
            ))
            .bind(pid)
            .bind(&r.encounter_id)
            .execute(&mut *conn)
            .await?;
        }
        return Ok(());
    };
    let done_at_discharge = match (r.discharged_at, stay.discharged_at) {
        (_, None) => None,
        // Leaving now: what was done.
        (None, Some(_)) => Some(done_items(conn, p, pid, &r.encounter_id).await?),
        (Some(_), Some(_)) => sqlx::query(&format!(
            "SELECT done_at_discharge FROM {p}stays WHERE patient_id = $1 AND encounter_id = $2"
        ))
        .bind(pid)
        .bind(&r.encounter_id)
        .fetch_one(&mut *conn)
        .await?
        .try_get::<Option<i64>, _>(0)?,
    };
    sqlx::query(&format!(
        "UPDATE {p}stays SET admitted_at = $3, admit_event_id = $4, unit = $5, discharged_at = $6,
         discharge_event_id = $7, done_at_discharge = $8, movements = $9
         WHERE patient_id = $1 AND encounter_id = $2"
    ))
    .bind(pid)
    .bind(&r.encounter_id)
    .bind(stay.admitted_at)
    .bind(&stay.admit_event_id)
    .bind(&stay.unit)
    .bind(stay.discharged_at)
    .bind(stay.discharge_event_id)
    .bind(done_at_discharge)
    .bind(r.movements.to_text())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The checklist items of a stay done now, as bits.
async fn done_items(
    conn: &mut AnyConnection,
    p: &str,
    pid: &str,
    encounter_id: &str,
) -> Result<i64, sqlx::Error> {
    Ok(sqlx::query(&format!(
        "SELECT item FROM {p}checklist WHERE patient_id = $1 AND encounter_id = $2 AND done = 1"
    ))
    .bind(pid)
    .bind(encounter_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get::<i64, _>(0))
    .collect::<Result<Vec<_>, _>>()?
    .into_iter()
    .filter(|i| (0..=62).contains(i))
    .fold(0, |m, i| m | 1 << i))
}

/// The patient's name, birth date and sex as the registration or an update sets them (what an
/// update leaves unset stays as known).
async fn patient(
    conn: &mut AnyConnection,
    p: &str,
    pid: &str,
    name: &str,
    birth_date: &str,
    sex: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO {p}patients (patient_id, display_name, birth_date, sex) VALUES ($1, $2, $3, $4)
         ON CONFLICT (patient_id) DO UPDATE SET
         display_name = CASE WHEN excluded.display_name = '' THEN {p}patients.display_name ELSE excluded.display_name END,
         birth_date = CASE WHEN excluded.birth_date = '' THEN {p}patients.birth_date ELSE excluded.birth_date END,
         sex = CASE WHEN excluded.sex = 0 THEN {p}patients.sex ELSE excluded.sex END"
    ))
    .bind(pid)
    .bind(name)
    .bind(birth_date)
    .bind(i64::from(sex))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::queries::{self, DueFilter};
    use crate::{db, runtime::Runner};
    use journey_proto::v1::{
        AdmissionCancelled, Admitted, ChecklistItem, ChecklistItemSet, DischargeCancelled,
        Discharged, Facility,
    };

    const NOW: i64 = 1_800_000_000;

    fn event(n: u64, at: i64, payload: Payload) -> Event {
        Event {
            event_id: format!("ev-{n}"),
            patient_id: "P1".into(),
            position: n,
            occurred_at: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn admitted(n: u64, enc: &str) -> Event {
        event(
            n,
            NOW - 3 * 86_400,
            Payload::Admitted(Admitted {
                encounter_id: enc.into(),
                facility: Some(Facility {
                    id: "F1".into(),
                    name: "CHU Nord".into(),
                    territory: "T1".into(),
                    time_zone: "Europe/Paris".into(),
                }),
                unit: "cardio".into(),
                ..Default::default()
            }),
        )
    }

    fn tick(n: u64, enc: &str, item: ChecklistItem, done: bool) -> Event {
        event(
            n,
            NOW - 3600,
            Payload::ChecklistItemSet(ChecklistItemSet {
                encounter_id: enc.into(),
                item: item as i32,
                done,
                detail: String::new(),
            }),
        )
    }

    fn expected(n: u64, enc: &str, at: Option<i64>) -> Event {
        event(
            n,
            NOW - 60,
            Payload::DischargeExpected(journey_proto::v1::DischargeExpected {
                encounter_id: enc.into(),
                expected_at: at.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
                reason: String::new(),
            }),
        )
    }

    /// The planning view after `events`, folded in one batch into a fresh SQLite file.
    async fn folded(events: &[Event]) -> (tempfile::TempDir, Runner<Planning>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/planning.sqlite", dir.path().display());
        let db = db::connect(&url).await.unwrap();
        let (runner, _) = Runner::open(db, Planning).await.unwrap();
        let runner = std::sync::Arc::into_inner(runner).unwrap();
        let mut tx = runner.db.pool.begin().await.unwrap();
        Planning
            .apply(&mut tx, &runner.live_prefix(), events)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (dir, runner)
    }

    async fn stays(r: &Runner<Planning>) -> Vec<queries::Stay> {
        queries::of_patient(&r.db.pool, &r.live_prefix(), "P1")
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn given_items_ticked_when_the_patient_leaves_then_the_plan_at_discharge_is_kept() {
        let (_dir, r) = folded(&[
            admitted(1, "E1"),
            tick(2, "E1", ChecklistItem::SocialEvaluation, true),
            tick(3, "E1", ChecklistItem::LetterPrepared, true),
            tick(4, "E1", ChecklistItem::LetterPrepared, false),
            tick(5, "E1", ChecklistItem::FollowUpBooked, true),
            event(
                6,
                NOW - 600,
                Payload::Discharged(Discharged {
                    encounter_id: "E1".into(),
                    ..Default::default()
                }),
            ),
            // Ticked after the patient left: the checklist says it, the plan at discharge not.
            tick(7, "E1", ChecklistItem::ReturnKitGiven, true),
        ])
        .await;
        let s = &stays(&r).await[0];
        use crate::planning::checklist::bit;
        assert_eq!(
            s.done_at_discharge,
            Some(bit(ChecklistItem::SocialEvaluation) | bit(ChecklistItem::FollowUpBooked))
        );
        assert_eq!(crate::planning::checklist::done_count(s.plan.done), 3);
        assert_eq!(s.plan.discharged_at, Some(NOW - 600));
    }

    #[tokio::test]
    async fn given_no_such_stay_when_an_item_or_a_date_comes_then_nothing_is_kept() {
        let (_dir, r) = folded(&[
            tick(1, "E9", ChecklistItem::SocialEvaluation, true),
            expected(2, "E9", Some(NOW)),
        ])
        .await;
        assert!(stays(&r).await.is_empty());
    }

    #[tokio::test]
    async fn given_an_admission_cancelled_then_its_stay_and_checklist_are_gone() {
        let (_dir, r) = folded(&[
            admitted(1, "E1"),
            tick(2, "E1", ChecklistItem::SocialEvaluation, true),
            event(
                3,
                NOW,
                Payload::AdmissionCancelled(AdmissionCancelled {
                    cancelled_event_id: "ev-1".into(),
                    ..Default::default()
                }),
            ),
            // Admitted again under the same encounter: a fresh checklist.
            admitted(4, "E1"),
        ])
        .await;
        let s = stays(&r).await;
        assert_eq!(s.len(), 1);
        assert!(s[0].items.is_empty());
    }

    #[tokio::test]
    async fn given_a_discharge_cancelled_then_the_stay_is_open_and_due_again() {
        let (_dir, r) = folded(&[
            admitted(1, "E1"),
            expected(2, "E1", Some(NOW + 3600)),
            event(
                3,
                NOW - 60,
                Payload::Discharged(Discharged {
                    encounter_id: "E1".into(),
                    ..Default::default()
                }),
            ),
            event(
                4,
                NOW - 30,
                Payload::DischargeCancelled(DischargeCancelled {
                    cancelled_event_id: "ev-3".into(),
                    ..Default::default()
                }),
            ),
        ])
        .await;
        let due = queries::due(&r.db.pool, &r.live_prefix(), &DueFilter::default(), NOW)
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        assert!(due[0].plan.open() && due[0].done_at_discharge.is_none());
    }

    #[tokio::test]
    async fn given_movements_corrected_then_the_stay_follows_them() {
        let (_dir, r) = folded(&[
            admitted(1, "E1"),
            event(
                2,
                NOW - 86_400,
                Payload::Transferred(journey_proto::v1::Transferred {
                    encounter_id: "E1".into(),
                    to_unit: "geriatrics".into(),
                    ..Default::default()
                }),
            ),
            tick(3, "E1", ChecklistItem::SocialEvaluation, true),
            event(
                4,
                NOW - 600,
                Payload::Discharged(Discharged {
                    encounter_id: "E1".into(),
                    ..Default::default()
                }),
            ),
            // The discharge happened an hour earlier than sent.
            event(
                5,
                NOW,
                Payload::MovementCorrected(journey_proto::v1::MovementCorrected {
                    corrected_event_id: "ev-4".into(),
                    moved_at: Some(prost_types::Timestamp {
                        seconds: NOW - 4200,
                        nanos: 0,
                    }),
                    ..Default::default()
                }),
            ),
        ])
        .await;
        let s = &stays(&r).await[0];
        assert_eq!(s.unit, "geriatrics");
        assert_eq!(s.plan.discharged_at, Some(NOW - 4200));
        assert_eq!(
            s.done_at_discharge,
            Some(crate::planning::checklist::bit(
                ChecklistItem::SocialEvaluation
            ))
        );
    }

    #[tokio::test]
    async fn given_the_expected_date_withdrawn_then_the_stay_leaves_the_due_list() {
        let (_dir, r) = folded(&[
            admitted(1, "E1"),
            expected(2, "E1", Some(NOW + 3600)),
            expected(3, "E1", None),
        ])
        .await;
        let due = queries::due(&r.db.pool, &r.live_prefix(), &DueFilter::default(), NOW)
            .await
            .unwrap();
        assert!(due.is_empty());
        assert_eq!(stays(&r).await[0].plan.expected_at, None);
    }
}
