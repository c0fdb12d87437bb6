//! The indicators page's section on the HAS discharge-letter indicator QLS over the discharges of
//! the weeks shown (`IndicatorsResponse.letter_quality`, `journey_projections::coordination::qls`):
//! the mean score, the share of stays whose letter was found and dated the day of discharge (score
//! above 0), the share meeting all 14 criteria.
use super::planning::say;
use crate::html::Lang;
use journey_projections::coordination::qls::CRITERIA;
use journey_proto::v1::LetterQuality;
use std::fmt::Write;

/// `v` with one decimal, a decimal comma in French.
fn decimal(lang: Lang, v: f64) -> String {
    let s = format!("{v:.1}");
    match lang {
        Lang::Fr => s.replace('.', ","),
        Lang::En => s,
    }
}

/// "n/of (p %)", or "—" without stays.
fn share(lang: Lang, n: u64, of: u64) -> String {
    if of == 0 {
        return "—".into();
    }
    format!(
        "{} % ({n}/{of})",
        decimal(lang, 100.0 * n as f64 / of as f64)
    )
}

/// The section, as HTML (`None`: an older server's answer, without the figure).
pub(super) fn section(lang: Lang, s: Option<&LetterQuality>) -> String {
    let s = s.cloned().unwrap_or_default();
    let mean = if s.stays == 0 {
        "—".into()
    } else {
        format!("{} / 100", decimal(lang, s.mean_score))
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<h2>{}</h2><table id=\"qls-indicators\"><tbody>\
         <tr data-indicator=\"qls-stays\"><th>{}</th><td>{}</td></tr>\
         <tr data-indicator=\"qls-mean\"><th>{}</th><td>{mean}</td></tr>\
         <tr data-indicator=\"qls-scored\"><th>{}</th><td>{}</td></tr>\
         <tr data-indicator=\"qls-complete\"><th>{}</th><td>{}</td></tr></tbody></table><p class=\"muted\">{}</p>",
        say(
            lang,
            "Qualité de la lettre de liaison à la sortie (indicateur QLS de la HAS)",
            "Quality of the discharge letter (HAS QLS indicator)"
        ),
        say(lang, "Séjours évalués", "Stays scored"),
        s.stays,
        say(lang, "Score moyen", "Mean score"),
        say(
            lang,
            "Lettre retrouvée et datée du jour de la sortie (score supérieur à 0)",
            "Letter found and dated the day of discharge (score above 0)"
        ),
        share(lang, s.scored, s.stays),
        match lang {
            Lang::Fr => format!("Lettres complètes ({n} critères sur {n})", n = CRITERIA.len()),
            Lang::En => format!("Complete letters ({n} criteria of {n})", n = CRITERIA.len()),
        },
        share(lang, s.complete, s.stays),
        say(
            lang,
            "Sorties suivies des semaines ci-dessus, chacune notée par sa meilleure lettre ; sans lettre ou sans lettre datée du jour de la sortie, la note est 0.",
            "Followed discharges of the weeks above, each scored by its best letter; without a letter, or without one dated the day of discharge, the score is 0."
        ),
    );
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_and_english_figures() {
        let s = LetterQuality {
            stays: 3,
            mean_score: 50.0,
            scored: 2,
            complete: 1,
        };
        let fr = section(Lang::Fr, Some(&s));
        assert!(fr.contains("<td>50,0 / 100</td>"), "{fr}");
        assert!(fr.contains("<td>66,7 % (2/3)</td>"), "{fr}");
        assert!(
            fr.contains("Lettres complètes (14 critères sur 14)</th><td>33,3 % (1/3)"),
            "{fr}"
        );
        let en = section(Lang::En, Some(&s));
        assert!(en.contains("<td>50.0 / 100</td>"), "{en}");
        assert!(
            en.contains("Complete letters (14 criteria of 14)</th><td>33.3 % (1/3)"),
            "{en}"
        );
        let none = section(Lang::Fr, None);
        assert!(
            none.contains("<td>0</td>") && none.contains("<td>—</td>"),
            "{none}"
        );
    }
}
