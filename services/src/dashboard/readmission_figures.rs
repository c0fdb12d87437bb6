//! The readmission figures of the territory on the indicators page, from the readmission read
//! model's rates (the `Readmission.Rates` figures, by territory) over the page's weeks: index
//! stays, readmissions within 30 days (all and unplanned) with their rates, and emergency visits
//! without admission. A coordinator sees its own territory's row; an admin every territory's and
//! the total (or the territory it asked for). Counts only, no patient: nothing to record.
use super::{planning::say, table_head, Dashboard};
use crate::html::{esc, Lang};
use crate::principal::Principal;
use crate::{
    coordination_service::memo::{Memo, Stand},
    errors,
};
use chrono::NaiveDate;
use journey_projections::readmission::queries::{self, GroupBy, RateRow};
use std::fmt::Write;
use tonic::Status;

/// The rates by territory of the days asked, kept while the readmission view stands still.
static RATES: Memo<(i64, i64), Vec<RateRow>> = Memo::new();

/// The section for discharges from `from` to `to` (both included) in `territory` (empty: every
/// territory, an admin's view); empty when the readmission view does not run in this process.
pub(super) async fn section(
    d: &Dashboard,
    lang: Lang,
    caller: Option<&Principal>,
    (from, to): (NaiveDate, NaiveDate),
    territory: &str,
) -> Result<String, Status> {
    let Some(runner) = &d.coordination.readmission else {
        return Ok(String::new());
    };
    let day = |d: NaiveDate| d.signed_duration_since(NaiveDate::default()).num_days();
    let (from_day, to_day) = (day(from), day(to));
    let (stands, runner) = (vec![Stand::of(runner)], runner.clone());
    let compute = async move {
        let p = runner.live_prefix();
        queries::rates(&runner.db.pool, &p, from_day, to_day, GroupBy::Territory).await
    };
    let rows = RATES
        .get_or((from_day, to_day), stands, compute)
        .await
        .map_err(errors::read_model_error)?;
    let rows = rows.as_ref().clone();
    // A coordinator's territory is its own whatever it asked (`territory_for` decided it).
    let coordinator = caller.is_some_and(|c| c.territory.is_some());
    let shown: Vec<RateRow> = if territory.is_empty() && !coordinator {
        let total = RateRow::total(&rows);
        rows.into_iter().chain(std::iter::once(total)).collect()
    } else {
        let own = rows.into_iter().find(|r| r.key == territory);
        vec![own.unwrap_or(RateRow {
            key: territory.to_string(),
            index_stays: 0,
            readmissions: 0,
            unplanned_readmissions: 0,
            ed_revisits: 0,
        })]
    };
    Ok(render(lang, (from, to), &shown))
}

fn render(lang: Lang, (from, to): (NaiveDate, NaiveDate), rows: &[RateRow]) -> String {
    let date = |d: NaiveDate| match lang {
        Lang::Fr => d.format("%d/%m/%Y").to_string(),
        Lang::En => d.format("%-d %b %Y").to_string(),
    };
    let mut b = format!(
        "<section id=\"readmission-figures\"><h2>{}</h2><p class=\"muted\">{} {} {} {}. {}</p>",
        say(
            lang,
            "Réhospitalisations du territoire",
            "Readmissions in the territory"
        ),
        say(
            lang,
            "Séjours index sortis du",
            "Index stays discharged from"
        ),
        date(from),
        say(lang, "au", "to"),
        date(to),
        say(
            lang,
            "Un séjour sorti depuis moins de 30 jours peut encore être suivi d'une réhospitalisation",
            "A stay discharged less than 30 days ago may still be followed by a readmission"
        ),
    );
    let _ = write!(
        b,
        "<div class=\"wide\"><table>{}",
        table_head(&[
            say(lang, "Territoire", "Territory"),
            say(lang, "Séjours index", "Index stays"),
            say(
                lang,
                "Réhospitalisés à 30 jours",
                "Readmitted within 30 days"
            ),
            say(lang, "dont non programmées", "of which unplanned"),
            say(
                lang,
                "Passages aux urgences sans hospitalisation",
                "Emergency visits without admission"
            ),
        ]),
    );
    for r in rows {
        let name = match r.key.as_str() {
            "all" => say(lang, "Tous les territoires", "Every territory"),
            "" => say(lang, "Territoire non renseigné", "Territory not given"),
            k => k.to_string(),
        };
        let _ = write!(
            b,
            "<tr data-territory=\"{}\"><td>{}</td><td class=\"index-stays\">{}</td><td class=\"readmitted\">{}</td><td class=\"unplanned\">{}</td><td class=\"ed\">{}</td></tr>",
            esc(&r.key),
            esc(&name),
            r.index_stays,
            share(lang, r.readmissions, r.index_stays),
            share(lang, r.unplanned_readmissions, r.index_stays),
            r.ed_revisits,
        );
    }
    b.push_str("</tbody></table></div></section>");
    b
}

/// "12,5 % (3/24)" in French, "12.5 % (3/24)" in English (as the page's other rates); "—"
/// without a stay to count from.
fn share(lang: Lang, n: i64, of: i64) -> String {
    if of <= 0 {
        return "—".into();
    }
    let pct = super::charts::figure(lang, Some(n as f64 * 100.0 / of as f64), "%");
    format!("{pct} ({n}/{of})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_reads_as_the_other_rates() {
        assert_eq!(share(Lang::Fr, 1, 8), "12,5 % (1/8)");
        assert_eq!(share(Lang::En, 1, 8), "12.5 % (1/8)");
        assert_eq!(share(Lang::Fr, 0, 0), "—");
    }
}
