//! The readmission definitions of docs/design.md §5, as a pure function of one patient's facts.
//!
//! Everything is recomputed per patient from the facts the fold keeps (encounters as they stand
//! after cancellations, ED visits, diagnoses), so that late events, cancellations and transfers
//! all come out the same however the events arrived.
use super::{charlson, lace};

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;

/// Calendar day number (days since 1970-01-01) in the facility's time zone (UTC when none is set).
pub type Day = i64;

pub const DISP_OTHER_ACUTE: i32 = 5;
pub const DISP_DECEASED: i32 = 6;
pub const DISP_AMA: i32 = 7;
pub const SETTING_INPATIENT: i32 = 1;
pub const ADMIT_EMERGENCY: i32 = 1;
pub const ADMIT_ELECTIVE: i32 = 2;
pub const ED_OUTCOME_ADMITTED: i32 = 5;

/// One encounter as it stands (cancelled admissions removed, cancelled discharges reopened).
#[derive(Debug, Clone, PartialEq)]
pub struct Encounter {
    pub encounter_id: String,
    pub facility_id: String,
    pub territory: String,
    pub unit: String,
    pub setting: i32,
    pub admit_type: i32,
    /// Seconds since the epoch.
    pub admitted_at: i64,
    pub discharged_at: Option<i64>,
    pub disposition: i32,
    /// Primary diagnosis (system, code) when known.
    pub primary_diagnosis: Option<(String, String)>,
    /// The facility's time zone: its calendar dates are the ones counted.
    pub tz: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EdVisit {
    pub at: i64,
    pub outcome: i32,
    /// The emergency department's time zone.
    pub tz: Tz,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    pub system: String,
    pub code: String,
    pub at: i64,
}

/// An index stay and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexStay {
    /// The encounter whose discharge is the index discharge (last of a transfer chain).
    pub encounter_id: String,
    pub first_encounter_id: String,
    pub facility_id: String,
    pub territory: String,
    pub unit: String,
    pub disposition: i32,
    pub admit_day: Day,
    pub discharge_day: Day,
    pub discharged_at: i64,
    pub length_of_stay: i64,
    pub emergency: bool,
    pub charlson: u32,
    pub ed_visits_182: u32,
    pub lace: u32,
    pub diagnosis_chapter: String,
    pub readmission: Option<Readmission>,
    pub ed_revisit: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Readmission {
    pub encounter_id: String,
    pub admit_day: Day,
    pub days: i64,
    pub unplanned: bool,
}

/// The calendar day of an instant in a time zone.
pub fn day(secs: i64, tz: Tz) -> Day {
    let offset = match tz {
        Tz::UTC => 0,
        _ => tz
            .offset_from_utc_datetime(
                &chrono::DateTime::from_timestamp(secs, 0)
                    .unwrap_or_default()
                    .naive_utc(),
            )
            .fix()
            .local_minus_utc() as i64,
    };
    (secs + offset).div_euclid(86_400)
}

/// A facility's time zone from its IANA name; empty (or unknown: ingest refuses those) means UTC.
pub fn zone(name: &str) -> Tz {
    name.parse().unwrap_or(Tz::UTC)
}

/// A stay: one inpatient encounter, or a chain of them linked by transfers to another acute hospital.
struct Stay<'a> {
    encounters: Vec<&'a Encounter>,
}

impl Stay<'_> {
    fn first(&self) -> &Encounter {
        self.encounters[0]
    }
    fn last(&self) -> &Encounter {
        self.encounters[self.encounters.len() - 1]
    }
}

/// A discharge to another acute hospital followed by an inpatient admission within 1 day continues the stay.
fn continues(prev: &Encounter, next: &Encounter) -> bool {
    match prev.discharged_at {
        // Calendar days: the receiving hospital may timestamp the admission before the sender's discharge.
        Some(d) => {
            prev.disposition == DISP_OTHER_ACUTE
                && (0..=1).contains(&(day(next.admitted_at, next.tz) - day(d, prev.tz)))
        }
        None => false,
    }
}

fn stays_of<'a>(inpatient: &[&'a Encounter]) -> Vec<Stay<'a>> {
    let mut out: Vec<Stay<'a>> = Vec::new();
    for e in inpatient {
        match out.last_mut() {
            Some(s) if continues(s.last(), e) => s.encounters.push(e),
            _ => out.push(Stay {
                encounters: vec![e],
            }),
        }
    }
    out
}

fn is_index(stay: &Stay, death: Option<i64>) -> bool {
    let last = stay.last();
    let Some(discharged) = last.discharged_at else {
        return false;
    };
    if matches!(
        last.disposition,
        DISP_DECEASED | DISP_AMA | DISP_OTHER_ACUTE
    ) {
        return false;
    }
    // Alive at discharge.
    death.is_none_or(|d| d > discharged)
}

fn chapter(dx: Option<&(String, String)>) -> String {
    match dx {
        Some((system, code)) if system.to_ascii_uppercase().contains("ICD") => code
            .chars()
            .next()
            .map(|c| c.to_ascii_uppercase().to_string())
            .unwrap_or_default(),
        Some((system, _)) => system.clone(),
        None => String::new(),
    }
}

/// Index stays of one patient with their readmission, ED revisit and LACE.
pub fn index_stays(
    encounters: &[Encounter],
    ed: &[EdVisit],
    diagnoses: &[Diagnosis],
    death: Option<i64>,
) -> Vec<IndexStay> {
    let mut inpatient: Vec<&Encounter> = encounters
        .iter()
        .filter(|e| e.setting == SETTING_INPATIENT)
        .collect();
    inpatient.sort_by(|a, b| {
        a.admitted_at
            .cmp(&b.admitted_at)
            .then_with(|| a.encounter_id.cmp(&b.encounter_id))
    });
    let all = stays_of(&inpatient);
    let mut out = Vec::new();
    for (i, stay) in all.iter().enumerate() {
        if !is_index(stay, death) {
            continue;
        }
        let first = stay.first();
        let last = stay.last();
        let discharged_at = last.discharged_at.expect("index stays are discharged");
        let (admit_day, discharge_day) = (
            day(first.admitted_at, first.tz),
            day(discharged_at, last.tz),
        );
        // The first inpatient admission after the index discharge, whatever its facility.
        let next = all[i + 1..]
            .iter()
            .map(Stay::first)
            .find(|e| e.admitted_at >= discharged_at);
        let readmission = next.and_then(|n| {
            let admit_day = day(n.admitted_at, n.tz);
            let days = admit_day - discharge_day;
            (days <= 30).then(|| Readmission {
                encounter_id: n.encounter_id.clone(),
                admit_day,
                days,
                unplanned: n.admit_type != ADMIT_ELECTIVE,
            })
        });
        let ed_revisit = ed.iter().any(|v| {
            v.outcome != ED_OUTCOME_ADMITTED
                && v.at >= discharged_at
                && day(v.at, v.tz) - discharge_day <= 30
        });
        let ed_visits_182 = ed
            .iter()
            .filter(|v| {
                v.outcome != ED_OUTCOME_ADMITTED
                    && v.at < first.admitted_at
                    && admit_day - day(v.at, v.tz) <= 182
            })
            .count() as u32;
        let mut codes: Vec<(&str, &str)> = diagnoses
            .iter()
            .filter(|d| d.at <= discharged_at)
            .map(|d| (d.system.as_str(), d.code.as_str()))
            .collect();
        for e in &stay.encounters {
            if let Some((s, c)) = &e.primary_diagnosis {
                codes.push((s.as_str(), c.as_str()));
            }
        }
        let charlson = charlson::charlson_index(codes);
        let los = discharge_day - admit_day;
        let emergency = first.admit_type == ADMIT_EMERGENCY;
        let score = lace::lace(los, emergency, charlson, ed_visits_182);
        out.push(IndexStay {
            encounter_id: last.encounter_id.clone(),
            first_encounter_id: first.encounter_id.clone(),
            facility_id: last.facility_id.clone(),
            territory: last.territory.clone(),
            unit: last.unit.clone(),
            disposition: last.disposition,
            admit_day,
            discharge_day,
            discharged_at,
            length_of_stay: los,
            emergency,
            charlson,
            ed_visits_182,
            lace: score.total,
            diagnosis_chapter: chapter(first.primary_diagnosis.as_ref()),
            readmission,
            ed_revisit,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: i64 = 86_400;
    /// 2026-01-01T00:00:00Z
    const T0: i64 = 1_767_225_600;

    fn enc(id: &str, admit_day: i64, discharge_day: Option<i64>, disposition: i32) -> Encounter {
        Encounter {
            encounter_id: id.into(),
            facility_id: "F1".into(),
            territory: "T".into(),
            unit: "cardio".into(),
            setting: SETTING_INPATIENT,
            admit_type: ADMIT_EMERGENCY,
            admitted_at: T0 + admit_day * D + 10 * 3600,
            discharged_at: discharge_day.map(|d| T0 + d * D + 14 * 3600),
            disposition,
            primary_diagnosis: None,
            tz: Tz::UTC,
        }
    }
    const HOME: i32 = 1;

    fn elective(mut e: Encounter) -> Encounter {
        e.admit_type = ADMIT_ELECTIVE;
        e
    }
    fn setting(mut e: Encounter, s: i32) -> Encounter {
        e.setting = s;
        e
    }

    /// (name, encounters, death day, expected: per index stay (encounter id, readmitted after days, unplanned))
    #[allow(clippy::type_complexity)]
    fn cases() -> Vec<(
        &'static str,
        Vec<Encounter>,
        Option<i64>,
        Vec<(&'static str, Option<(i64, bool)>)>,
    )> {
        vec![
            ("readmitted on day 10, emergency = unplanned", vec![enc("A", 0, Some(3), HOME), enc("B", 13, Some(15), HOME)], None,
                vec![("A", Some((10, true))), ("B", None)]),
            ("day 30 counts", vec![enc("A", 0, Some(3), HOME), enc("B", 33, Some(35), HOME)], None, vec![("A", Some((30, true))), ("B", None)]),
            ("day 31 does not", vec![enc("A", 0, Some(3), HOME), enc("B", 34, Some(35), HOME)], None, vec![("A", None), ("B", None)]),
            ("same day is day 0 and counts", vec![enc("A", 0, Some(3), HOME), {
                let mut b = enc("B", 3, Some(5), HOME);
                b.admitted_at = T0 + 3 * D + 20 * 3600;
                b
            }], None, vec![("A", Some((0, true))), ("B", None)]),
            ("elective readmission is planned", vec![enc("A", 0, Some(3), HOME), elective(enc("B", 10, Some(12), HOME))], None,
                vec![("A", Some((7, false))), ("B", None)]),
            ("only the first admission after discharge", vec![enc("A", 0, Some(3), HOME), elective(enc("B", 5, Some(6), HOME)), enc("C", 8, Some(9), HOME)], None,
                vec![("A", Some((2, false))), ("B", Some((2, true))), ("C", None)]),
            ("first admission beyond 30 days: none, even if a later one", vec![enc("A", 0, Some(3), HOME), enc("B", 40, Some(41), HOME)], None,
                vec![("A", None), ("B", None)]),
            ("transfer continues the stay, never a readmission", vec![enc("A", 0, Some(5), DISP_OTHER_ACUTE), enc("B", 5, Some(9), HOME), enc("C", 20, Some(21), HOME)], None,
                vec![("B", Some((11, true))), ("C", None)]),
            ("transfer admission the next day still continues", vec![enc("A", 0, Some(5), DISP_OTHER_ACUTE), enc("B", 6, Some(9), HOME)], None,
                vec![("B", None)]),
            ("discharge to another acute hospital with no admission is not an index stay", vec![enc("A", 0, Some(5), DISP_OTHER_ACUTE), enc("B", 9, Some(12), HOME)], None,
                vec![("B", None)]),
            ("death at discharge is not an index stay", vec![enc("A", 0, Some(5), DISP_DECEASED)], Some(5), vec![]),
            ("against medical advice is not an index stay, but its readmission target counts for nobody", vec![enc("A", 0, Some(2), DISP_AMA), enc("B", 5, Some(7), HOME)], None,
                vec![("B", None)]),
            ("died after discharge: still an index stay", vec![enc("A", 0, Some(2), HOME)], Some(10), vec![("A", None)]),
            ("not yet discharged: no index stay", vec![enc("A", 0, None, 0)], None, vec![]),
            ("day surgery and HAD are neither index stays nor readmissions",
                vec![enc("A", 0, Some(3), HOME), setting(enc("S", 5, Some(5), HOME), 2), setting(enc("H", 6, Some(20), HOME), 3)], None,
                vec![("A", None)]),
            ("month boundary: Jan 31 to Mar 2 is 30 days", vec![enc("A", 28, Some(30), HOME), enc("B", 60, Some(61), HOME)], None,
                vec![("A", Some((30, true))), ("B", None)]),
        ]
    }

    #[test]
    fn readmission_rules() {
        for (name, encounters, death, expected) in cases() {
            let got: Vec<(String, Option<(i64, bool)>)> =
                index_stays(&encounters, &[], &[], death.map(|d| T0 + d * D + 15 * 3600))
                    .into_iter()
                    .map(|s| (s.encounter_id, s.readmission.map(|r| (r.days, r.unplanned))))
                    .collect();
            let expected: Vec<(String, Option<(i64, bool)>)> = expected
                .into_iter()
                .map(|(e, r)| (e.to_string(), r))
                .collect();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn month_boundary_is_in_calendar_days() {
        // 2026-01-31 is day 30 from T0, 2026-03-02 day 60.
        assert_eq!(day(T0 + 30 * D, Tz::UTC), day(T0, Tz::UTC) + 30);
        let late_evening = Encounter {
            discharged_at: Some(T0 + 30 * D + 23 * 3600 + 59 * 60),
            ..enc("A", 28, Some(30), HOME)
        };
        let s = index_stays(
            &[late_evening, enc("B", 60, Some(61), HOME)],
            &[],
            &[],
            None,
        );
        assert_eq!(s[0].readmission.as_ref().map(|r| r.days), Some(30));
    }

    #[test]
    fn calendar_days_are_the_facility_time_zone() {
        let paris = zone("Europe/Paris");
        assert_eq!(zone(""), Tz::UTC);
        // Discharged 2026-01-31 at 23:30 UTC: still Jan 31 in UTC, already Feb 1 in Paris (UTC+1).
        let discharge = T0 + 30 * D + 23 * 3600 + 30 * 60;
        assert_eq!(day(discharge, Tz::UTC), day(T0, Tz::UTC) + 30);
        assert_eq!(day(discharge, paris), day(T0, Tz::UTC) + 31);
        // Summer time: 2026-07-01 22:30 UTC is 00:30 on July 2 in Paris (UTC+2), 23:30 in London.
        let july = 1_782_945_000; // 2026-07-01T22:30:00Z
        assert_eq!(day(july, paris), day(july, Tz::UTC) + 1);
        assert_eq!(day(july, zone("Europe/London")), day(july, Tz::UTC));
        // Readmitted on 2026-03-03 at 10:00 (day 61): 31 days after a Jan 31 discharge in UTC,
        // 30 days after a Feb 1 discharge in Paris.
        let stays = |tz: Tz| {
            let index = Encounter {
                discharged_at: Some(discharge),
                tz,
                ..enc("A", 28, Some(30), HOME)
            };
            let next = Encounter {
                tz,
                ..enc("B", 61, Some(62), HOME)
            };
            index_stays(&[index, next], &[], &[], None)[0]
                .readmission
                .as_ref()
                .map(|r| r.days)
        };
        assert_eq!(stays(Tz::UTC), None);
        assert_eq!(stays(paris), Some(30));
    }

    #[test]
    fn length_of_stay_spans_the_transfer_chain() {
        let s = index_stays(
            &[
                enc("A", 0, Some(5), DISP_OTHER_ACUTE),
                enc("B", 5, Some(9), HOME),
            ],
            &[],
            &[],
            None,
        );
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].first_encounter_id.as_str(), s[0].length_of_stay),
            ("A", 9)
        );
    }

    #[test]
    fn ed_revisits_within_30_days_without_admission() {
        let stays = [enc("A", 0, Some(3), HOME)];
        let at = |d: i64| T0 + d * D + 12 * 3600;
        let cases = [
            (
                vec![EdVisit {
                    at: at(10),
                    outcome: 1,
                    tz: Tz::UTC,
                }],
                true,
            ),
            (
                vec![EdVisit {
                    at: at(33),
                    outcome: 1,
                    tz: Tz::UTC,
                }],
                true,
            ),
            (
                vec![EdVisit {
                    at: at(34),
                    outcome: 1,
                    tz: Tz::UTC,
                }],
                false,
            ),
            (
                vec![EdVisit {
                    at: at(10),
                    outcome: ED_OUTCOME_ADMITTED,
                    tz: Tz::UTC,
                }],
                false,
            ),
            (
                vec![EdVisit {
                    at: at(-5),
                    outcome: 1,
                    tz: Tz::UTC,
                }],
                false,
            ),
        ];
        for (visits, expected) in cases {
            assert_eq!(
                index_stays(&stays, &visits, &[], None)[0].ed_revisit,
                expected,
                "{visits:?}"
            );
        }
    }

    #[test]
    fn lace_at_discharge() {
        // LOS 5 → 4; emergency → 3; CHF (I50) → Charlson 1; 2 ED visits in the 182 days before → 2: 10, high risk.
        let mut a = enc("A", 200, Some(205), HOME);
        a.primary_diagnosis = Some(("ICD-10".into(), "I50.0".into()));
        let ed = [
            EdVisit {
                at: T0 + 100 * D,
                outcome: 1,
                tz: Tz::UTC,
            },
            EdVisit {
                at: T0 + 190 * D,
                outcome: 1,
                tz: Tz::UTC,
            },
            EdVisit {
                at: T0 + 10 * D,
                outcome: 1,
                tz: Tz::UTC,
            }, // more than 182 days before
            EdVisit {
                at: T0 + 150 * D,
                outcome: ED_OUTCOME_ADMITTED,
                tz: Tz::UTC,
            },
        ];
        let later_dx = Diagnosis {
            system: "ICD-10".into(),
            code: "C78.0".into(),
            at: T0 + 300 * D,
        };
        let s = &index_stays(&[a], &ed, &[later_dx], None)[0];
        assert_eq!(
            (
                s.length_of_stay,
                s.emergency,
                s.charlson,
                s.ed_visits_182,
                s.lace
            ),
            (5, true, 1, 2, 10)
        );
        assert_eq!(s.diagnosis_chapter, "I");
    }
}
