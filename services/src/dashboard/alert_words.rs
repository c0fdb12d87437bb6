//! An alert's reason in the reader's language. The alert reactor's rules
//! (`journey_domain::alert_rules`) write their reasons in English, in three known forms (the heart
//! failure weight gain, the low SpO2, a care plan's threshold); a French page says them in French,
//! decimal commas included. Any other reason (a nurse's words, a partner's) is shown as written.

use crate::html::Lang;

/// The reason of an alert raised by `rule`, for a reader of `lang`.
pub(super) fn reason(lang: Lang, rule: &str, reason: &str) -> String {
    if lang == Lang::En || rule.is_empty() {
        return reason.to_string();
    }
    french(reason).unwrap_or_else(|| reason.to_string())
}

/// A number as French writes it: "75,3".
fn comma(n: &str) -> String {
    n.replace('.', ",")
}

fn french(reason: &str) -> Option<String> {
    weight_gain(reason)
        .or_else(|| low_spo2(reason))
        .or_else(|| care_plan(reason))
}

/// "weight 75.3 kg is 2.1 kg above 73.2 kg, the lowest of the previous 3 days (heart failure:
/// alert at +2 kg)"
fn weight_gain(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("weight ")?;
    let (kg, rest) = rest.split_once(" kg is ")?;
    let (gain, rest) = rest.split_once(" kg above ")?;
    let (reference, _) = rest.split_once(" kg, the lowest of the previous 3 days")?;
    Some(format!(
        "poids {} kg, {} kg au-dessus de {} kg, le plus bas des 3 jours précédents (insuffisance cardiaque : alerte à +2 kg)",
        comma(kg),
        comma(gain),
        comma(reference)
    ))
}

/// "SpO2 87 % is below 90 %"
fn low_spo2(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("SpO2 ")?;
    let (p, bound) = rest.split_once(" % is below ")?;
    Some(format!("SpO2 {} % sous {}", comma(p), comma(bound)))
}

/// "{measure} {value} is above the care plan's threshold {bound} (care plan {id})"
fn care_plan(reason: &str) -> Option<String> {
    let (what, rest) = reason.split_once(" is ")?;
    let (side, rest) = rest.split_once(" the care plan's threshold ")?;
    let (bound, plan) = rest.split_once(" (care plan ")?;
    let side = match side {
        "above" => "au-dessus du",
        "below" => "en dessous du",
        _ => return None,
    };
    let (measure, value) = what.split_once(' ')?;
    let measure = match measure {
        "weight" => "poids",
        "spo2" => "SpO2",
        "heart_rate" => "fréquence cardiaque",
        "temperature" => "température",
        "glucose" => "glycémie",
        other => other,
    };
    Some(format!(
        "{measure} {} {side} seuil du plan de soins {} (plan {}",
        comma(value),
        comma(bound),
        plan
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reactors_reasons_in_french() {
        let fr = |r: &str| reason(Lang::Fr, "rule", r);
        assert_eq!(
            fr("weight 75.3 kg is 2.1 kg above 73.2 kg, the lowest of the previous 3 days (heart failure: alert at +2 kg)"),
            "poids 75,3 kg, 2,1 kg au-dessus de 73,2 kg, le plus bas des 3 jours précédents (insuffisance cardiaque : alerte à +2 kg)"
        );
        assert_eq!(fr("SpO2 87 % is below 90 %"), "SpO2 87 % sous 90 %");
        assert_eq!(
            fr("weight 81.5 kg is above the care plan's threshold 80 (care plan CP-1)"),
            "poids 81,5 kg au-dessus du seuil du plan de soins 80 (plan CP-1)"
        );
        // A person's words, or an English page: as written.
        assert_eq!(reason(Lang::Fr, "", "chute à domicile"), "chute à domicile");
        assert_eq!(
            reason(Lang::En, "rule", "SpO2 87 % is below 90 %"),
            "SpO2 87 % is below 90 %"
        );
        assert_eq!(fr("something else"), "something else");
    }
}
