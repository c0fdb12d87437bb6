//! LACE readmission risk at discharge (docs/design.md §5; van Walraven et al., CMAJ 2010;182(6):551-7).
//!
//! L (length of stay): < 1 day 0, 1 day 1, 2 days 2, 3 days 3, 4–6 days 4, 7–13 days 5,
//! ≥ 14 days 7. A (acuity): emergency admission 3, else 0. C (Charlson index): 0–3 as is, ≥ 4 → 5.
//! E (ED visits without admission in the 182 days before the admission): the count, capped at 4.
//! High risk when the total is ≥ 10. Pure functions, no IO.

/// Total at or above which a discharge is high risk.
pub const HIGH_RISK_THRESHOLD: u32 = 10;

/// A LACE score and its components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lace {
    /// Length of stay points (0–7).
    pub l: u32,
    /// Acuity of admission points (0 or 3).
    pub a: u32,
    /// Comorbidity (Charlson) points (0–3 or 5).
    pub c: u32,
    /// Emergency department visits points (0–4).
    pub e: u32,
    /// `l + a + c + e` (0–19).
    pub total: u32,
}

impl Lace {
    /// Whether the score is high risk: total ≥ 10.
    pub fn high_risk(&self) -> bool {
        self.total >= HIGH_RISK_THRESHOLD
    }
}

/// Length-of-stay points for a stay of `days` calendar days (negative counts as < 1 day).
pub fn length_of_stay_points(days: i64) -> u32 {
    match days {
        i64::MIN..=0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        4..=6 => 4,
        7..=13 => 5,
        _ => 7,
    }
}

/// Acuity points: 3 for an emergency admission.
pub fn acuity_points(emergency_admission: bool) -> u32 {
    if emergency_admission {
        3
    } else {
        0
    }
}

/// Comorbidity points from a Charlson index: 0–3 as is, 4 or more gives 5.
pub fn comorbidity_points(charlson: u32) -> u32 {
    if charlson >= 4 {
        5
    } else {
        charlson
    }
}

/// ED visit points: the number of visits, capped at 4.
pub fn ed_points(ed_visits_prior_182_days: u32) -> u32 {
    ed_visits_prior_182_days.min(4)
}

/// The LACE score of a discharge.
pub fn lace(
    length_of_stay_days: i64,
    emergency_admission: bool,
    charlson: u32,
    ed_visits_prior_182_days: u32,
) -> Lace {
    let l = length_of_stay_points(length_of_stay_days);
    let a = acuity_points(emergency_admission);
    let c = comorbidity_points(charlson);
    let e = ed_points(ed_visits_prior_182_days);
    Lace {
        l,
        a,
        c,
        e,
        total: l + a + c + e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_of_stay_bands() {
        let cases: &[(i64, u32)] = &[
            (i64::MIN, 0),
            (-1, 0),
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 4),
            (6, 4),
            (7, 5),
            (10, 5),
            (13, 5),
            (14, 7),
            (15, 7),
            (365, 7),
            (i64::MAX, 7),
        ];
        for (days, points) in cases {
            assert_eq!(length_of_stay_points(*days), *points, "{days} days");
            assert_eq!(lace(*days, false, 0, 0).l, *points, "{days} days");
        }
    }

    #[test]
    fn acuity() {
        assert_eq!(lace(0, true, 0, 0).a, 3);
        assert_eq!(lace(0, false, 0, 0).a, 0);
    }

    #[test]
    fn comorbidity_mapping() {
        let cases: &[(u32, u32)] = &[
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 5),
            (5, 5),
            (12, 5),
            (u32::MAX, 5),
        ];
        for (charlson, points) in cases {
            assert_eq!(
                comorbidity_points(*charlson),
                *points,
                "charlson {charlson}"
            );
            assert_eq!(
                lace(0, false, *charlson, 0).c,
                *points,
                "charlson {charlson}"
            );
        }
    }

    #[test]
    fn ed_visits_capped_at_four() {
        let cases: &[(u32, u32)] = &[
            (0, 0),
            (1, 1),
            (2, 2),
            (3, 3),
            (4, 4),
            (5, 4),
            (40, 4),
            (u32::MAX, 4),
        ];
        for (visits, points) in cases {
            assert_eq!(ed_points(*visits), *points, "{visits} visits");
            assert_eq!(lace(0, false, 0, *visits).e, *points, "{visits} visits");
        }
    }

    #[test]
    fn totals_and_high_risk_threshold() {
        // (los, emergency, charlson, ed visits) -> (l, a, c, e, total, high risk)
        type Input = (i64, bool, u32, u32);
        type Expected = (u32, u32, u32, u32, u32, bool);
        let cases: &[(Input, Expected)] = &[
            ((0, false, 0, 0), (0, 0, 0, 0, 0, false)),
            ((14, true, 4, 4), (7, 3, 5, 4, 19, true)),
            ((99, true, 99, 99), (7, 3, 5, 4, 19, true)),
            // 9: just below the threshold
            ((7, true, 1, 0), (5, 3, 1, 0, 9, false)),
            ((4, false, 3, 2), (4, 0, 3, 2, 9, false)),
            ((3, true, 3, 0), (3, 3, 3, 0, 9, false)),
            // 10: exactly the threshold
            ((7, true, 2, 0), (5, 3, 2, 0, 10, true)),
            ((4, true, 3, 0), (4, 3, 3, 0, 10, true)),
            ((1, false, 5, 4), (1, 0, 5, 4, 10, true)),
            ((0, true, 4, 2), (0, 3, 5, 2, 10, true)),
            // 11: above
            ((14, false, 4, 0), (7, 0, 5, 0, 12, true)),
            ((2, true, 3, 3), (2, 3, 3, 3, 11, true)),
        ];
        for ((los, emergency, charlson, ed), (l, a, c, e, total, high)) in cases {
            let score = lace(*los, *emergency, *charlson, *ed);
            assert_eq!(
                score,
                Lace {
                    l: *l,
                    a: *a,
                    c: *c,
                    e: *e,
                    total: *total
                },
                "{los} {emergency} {charlson} {ed}"
            );
            assert_eq!(score.high_risk(), *high, "{score:?}");
        }
    }

    #[test]
    fn high_risk_is_total_at_least_ten() {
        for total in 0..=19 {
            let score = Lace {
                l: 0,
                a: 0,
                c: 0,
                e: 0,
                total,
            };
            assert_eq!(score.high_risk(), total >= 10, "{total}");
        }
    }
}
