//! The indicators page's section on the HAS discharge-letter indicator QLS over the discharges of
//! the weeks shown: the mean score, the share of stays whose letter was found and dated the day of
//! discharge (score above 0), the share meeting all 14 criteria
//! (`journey_projections::coordination::qls`).
use super::{planning::say, Dashboard};
use crate::{errors, html::Lang};
use journey_projections::coordination::{
    letters::{self, Scope},
    qls::{Summary, CRITERIA},
};
use std::fmt::Write;
use tonic::Status;

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

/// The section, as HTML.
pub(super) fn section(lang: Lang, s: &Summary) -> String {
    let mean = s
        .mean()
        .map_or("—".into(), |m| format!("{} / 100", decimal(lang, m)));
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

/// The section for the discharges in `[from, to)` (a territory and a facility id, empty: all).
pub(super) async fn indicators_section(
    d: &Dashboard,
    lang: Lang,
    from: i64,
    to: i64,
    territory: &str,
    facility_id: &str,
) -> Result<String, Status> {
    let runner = &d.coordination.runner;
    let summary = letters::qls_summary(
        &runner.db.pool,
        &runner.live_prefix(),
        Scope {
            from,
            to,
            facility_id,
            territory,
        },
    )
    .await
    .map_err(errors::read_model_error)?;
    Ok(section(lang, &summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_and_english_figures() {
        let mut s = Summary::default();
        for met in [14, 7, 0] {
            s.add(journey_projections::coordination::qls::Score { met });
        }
        let fr = section(Lang::Fr, &s);
        assert!(fr.contains("<td>50,0 / 100</td>"), "{fr}");
        assert!(fr.contains("<td>66,7 % (2/3)</td>"), "{fr}");
        assert!(
            fr.contains("Lettres complètes (14 critères sur 14)</th><td>33,3 % (1/3)"),
            "{fr}"
        );
        let en = section(Lang::En, &s);
        assert!(en.contains("<td>50.0 / 100</td>"), "{en}");
        assert!(
            en.contains("Complete letters (14 criteria of 14)</th><td>33.3 % (1/3)"),
            "{en}"
        );
        let none = section(Lang::Fr, &Summary::default());
        assert!(
            none.contains("<td>0</td>") && none.contains("<td>—</td>"),
            "{none}"
        );
    }
}
