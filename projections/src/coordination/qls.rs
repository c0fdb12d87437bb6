//! The HAS discharge-letter indicator QLS ("Qualité de la lettre de liaison à la sortie", an
//! IQSS indicator; contents of CSP art. R1112-1-2): a score per discharged stay out of 14 criteria,
//! pure. Two criteria are indispensable: a letter is found for the stay and it is dated the day of
//! discharge (its clinical time, on the discharge's calendar date in Europe/Paris); without both
//! the stay scores 0. Otherwise the score is the share of the 14 criteria met. A stay with several
//! letters scores its best one. docs/design.md §5 lists the criteria and how each is recorded.
use super::calendar::paris_date;
use journey_proto::v1::LetterItem;

/// One criterion of the indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// Indispensable: a letter is found for the stay.
    Found,
    /// Indispensable: it is dated the day of discharge.
    DatedDayOfDischarge,
    /// One of the content items of `DischargeLetterSent.items_present`.
    Item(LetterItem),
    /// Given to the patient on leaving (`DischargeLetterSent.handed_to_patient`).
    HandedToPatient,
}

/// The 14 criteria, the two indispensable ones first.
pub const CRITERIA: [Criterion; 14] = [
    Criterion::Found,
    Criterion::DatedDayOfDischarge,
    Criterion::Item(LetterItem::Identification),
    Criterion::Item(LetterItem::RecipientDoctor),
    Criterion::Item(LetterItem::Signatory),
    Criterion::Item(LetterItem::Dates),
    Criterion::Item(LetterItem::Destination),
    Criterion::Item(LetterItem::ReasonForStay),
    Criterion::Item(LetterItem::MedicalSummary),
    Criterion::Item(LetterItem::Risks),
    Criterion::Item(LetterItem::ProceduresAndTests),
    Criterion::Item(LetterItem::Medications),
    Criterion::Item(LetterItem::CarePlan),
    Criterion::HandedToPatient,
];

/// A letter as the read model keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letter {
    /// Its clinical time (UTC seconds).
    pub at: i64,
    /// The `LetterItem` values present, as bits (`1 << item`).
    pub items: i64,
    pub handed_to_patient: bool,
}

/// A stay's score: how many of the 14 criteria its letter meets (0 when an indispensable one is
/// missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Score {
    pub met: u32,
}

impl Score {
    /// Out of 100.
    pub fn percent(self) -> f64 {
        100.0 * f64::from(self.met) / CRITERIA.len() as f64
    }

    pub fn complete(self) -> bool {
        self.met as usize == CRITERIA.len()
    }
}

/// Whether `letter` of a stay discharged at `discharged_at` meets `c`.
pub fn meets(c: Criterion, discharged_at: i64, letter: &Letter) -> bool {
    match c {
        Criterion::Found => true,
        Criterion::DatedDayOfDischarge => paris_date(letter.at) == paris_date(discharged_at),
        Criterion::Item(item) => {
            let bit = item as i32;
            (1..=62).contains(&bit) && letter.items & (1i64 << bit) != 0
        }
        Criterion::HandedToPatient => letter.handed_to_patient,
    }
}

/// The score of one letter of a stay discharged at `discharged_at`.
pub fn score(discharged_at: i64, letter: &Letter) -> Score {
    let indispensable = [Criterion::Found, Criterion::DatedDayOfDischarge];
    if !indispensable
        .iter()
        .all(|c| meets(*c, discharged_at, letter))
    {
        return Score::default();
    }
    Score {
        met: CRITERIA
            .iter()
            .filter(|c| meets(**c, discharged_at, letter))
            .count() as u32,
    }
}

/// The score of a stay: its best letter's (0 without any).
pub fn stay_score(discharged_at: i64, letters: &[Letter]) -> Score {
    letters
        .iter()
        .map(|l| score(discharged_at, l))
        .max_by_key(|s| s.met)
        .unwrap_or_default()
}

/// The indicator over a set of stays.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Summary {
    pub stays: u64,
    /// Stays scoring above 0: a letter found, dated the day of discharge.
    pub scored: u64,
    /// Stays meeting all 14 criteria.
    pub complete: u64,
    /// The criteria met, summed over the stays (whole numbers: the mean does not depend on the
    /// order the stays are added in).
    pub met_sum: u64,
}

impl Summary {
    pub fn add(&mut self, s: Score) {
        self.stays += 1;
        self.scored += u64::from(s.met > 0);
        self.complete += u64::from(s.complete());
        self.met_sum += u64::from(s.met);
    }

    /// The mean score out of 100; `None` without stays.
    pub fn mean(&self) -> Option<f64> {
        (self.stays > 0)
            .then(|| 100.0 * self.met_sum as f64 / (CRITERIA.len() as u64 * self.stays) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }
    /// Every content item of the catalogue (1..=11).
    fn all_items() -> i64 {
        (1..=11).fold(0, |m, i| m | 1 << i)
    }
    fn without(item: LetterItem) -> i64 {
        all_items() & !(1 << item as i32)
    }
    /// Discharged Tuesday 24 Nov 2026 at 11:00 Paris.
    fn discharged() -> i64 {
        utc("2026-11-24T10:00:00Z")
    }
    fn letter(at: &str, items: i64, handed: bool) -> Letter {
        Letter {
            at: utc(at),
            items,
            handed_to_patient: handed,
        }
    }

    #[test]
    fn fourteen_criteria_two_indispensable_each_content_item_once() {
        assert_eq!(CRITERIA.len(), 14);
        assert_eq!(
            &CRITERIA[..2],
            &[Criterion::Found, Criterion::DatedDayOfDischarge]
        );
        let items: Vec<i32> = CRITERIA
            .iter()
            .filter_map(|c| match c {
                Criterion::Item(i) => Some(*i as i32),
                _ => None,
            })
            .collect();
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=11).collect::<Vec<_>>(), "{items:?}");
    }

    #[test]
    fn given_no_letter_when_scored_then_zero() {
        let s = stay_score(discharged(), &[]);
        assert_eq!(s.met, 0);
        assert_eq!(s.percent(), 0.0);
    }

    #[test]
    fn given_a_complete_letter_the_same_day_when_scored_then_fourteen_of_fourteen() {
        let s = stay_score(
            discharged(),
            &[letter("2026-11-24T16:00:00Z", all_items(), true)],
        );
        assert_eq!(s.met, 14);
        assert!(s.complete());
        assert_eq!(s.percent(), 100.0);
    }

    #[test]
    fn given_a_complete_letter_dated_another_day_when_scored_then_zero() {
        // The day after, before (prepared the evening before), and late the same UTC day but
        // already the next day in Paris.
        for at in [
            "2026-11-25T08:00:00Z",
            "2026-11-23T18:00:00Z",
            "2026-11-24T23:30:00Z",
        ] {
            let s = stay_score(discharged(), &[letter(at, all_items(), true)]);
            assert_eq!(s.met, 0, "{at}");
            assert!(!s.complete());
        }
    }

    #[test]
    fn given_the_same_paris_day_across_utc_midnight_when_scored_then_dated() {
        // Discharged 00:30 Paris on 25 Nov (23:30 UTC on the 24th), letter 09:00 Paris.
        let s = stay_score(
            utc("2026-11-24T23:30:00Z"),
            &[letter("2026-11-25T08:00:00Z", all_items(), true)],
        );
        assert_eq!(s.met, 14);
    }

    #[test]
    fn given_each_content_item_missing_when_scored_then_thirteen() {
        for item in 1..=11 {
            let item = LetterItem::try_from(item).unwrap();
            let s = stay_score(
                discharged(),
                &[letter("2026-11-24T16:00:00Z", without(item), true)],
            );
            assert_eq!(s.met, 13, "{item:?}");
            assert!(!s.complete());
        }
    }

    #[test]
    fn given_a_letter_not_handed_to_the_patient_when_scored_then_thirteen() {
        let s = stay_score(
            discharged(),
            &[letter("2026-11-24T16:00:00Z", all_items(), false)],
        );
        assert_eq!(s.met, 13);
        assert!((s.percent() - 100.0 * 13.0 / 14.0).abs() < 1e-9);
    }

    #[test]
    fn given_an_empty_letter_the_same_day_when_scored_then_the_two_indispensable_only() {
        let s = stay_score(discharged(), &[letter("2026-11-24T16:00:00Z", 0, false)]);
        assert_eq!(s.met, 2);
    }

    #[test]
    fn given_unknown_items_when_scored_then_they_count_for_nothing() {
        // Item 0 (unspecified) and an item number the catalogue does not have yet.
        let s = stay_score(
            discharged(),
            &[letter("2026-11-24T16:00:00Z", 1 | 1 << 40, false)],
        );
        assert_eq!(s.met, 2);
    }

    #[test]
    fn given_several_letters_when_scored_then_the_best_counts() {
        let s = stay_score(
            discharged(),
            &[
                letter("2026-11-24T12:00:00Z", 1 << 1 | 1 << 2, false),
                letter("2026-11-26T12:00:00Z", all_items(), true),
                letter("2026-11-24T18:00:00Z", all_items(), false),
            ],
        );
        assert_eq!(s.met, 13);
    }

    #[test]
    fn given_stays_when_summarised_then_mean_scored_and_complete() {
        let mut sum = Summary::default();
        assert_eq!(sum.mean(), None);
        for met in [14, 7, 0, 0] {
            sum.add(Score { met });
        }
        assert_eq!((sum.stays, sum.scored, sum.complete), (4, 2, 1));
        assert!((sum.mean().unwrap() - 37.5).abs() < 1e-9);
    }
}
