//! The indicators page's weekly figures: which week has a figure at all (a week without
//! discharges has none, a week whose 30 days are not over has no readmission rate yet: "—", never
//! 0 %), the same figures in the table and in the charts (rates as percentages), and the charts as
//! inline SVG with a labelled y axis (its unit, 0 and the top value) and every series drawn (the
//! first-contact delay's median and 90th percentile), gaps where a week has no figure.
use crate::html::{esc, t, Lang};
use journey_proto::v1::WeekIndicators;
use std::fmt::Write;

const DAY: i64 = 86_400;

/// The week's Monday (Paris midnight, UTC seconds).
fn monday(w: &WeekIndicators) -> Option<i64> {
    chrono::NaiveDate::parse_from_str(&w.week, "%Y-%m-%d")
        .ok()
        .map(journey_projections::coordination::calendar::paris_midnight)
}

/// The 30-day readmission rate of the week's index stays, in %: none without index stays, none
/// while the 30 days after the week's last discharge are not over at `now`.
pub(super) fn readmission(w: &WeekIndicators, now: i64) -> Option<f64> {
    let over = monday(w).is_some_and(|m| m + 7 * DAY + 30 * DAY <= now);
    (w.index_stays > 0 && over).then_some(100.0 * w.readmission_rate)
}

/// The share of the week's discharges whose letter left the same day, in %.
pub(super) fn same_day(w: &WeekIndicators) -> Option<f64> {
    (w.discharges > 0).then_some(100.0 * w.letter_same_day_rate)
}

/// The mean completeness of the week's letters, in %.
pub(super) fn completeness(w: &WeekIndicators) -> Option<f64> {
    (w.letters > 0).then_some(100.0 * w.letter_completeness)
}

/// Hours (the view's −1: none).
pub(super) fn hours(v: i64) -> Option<f64> {
    (v >= 0).then_some(v as f64)
}

/// The missed appointments of the week, when any were due.
pub(super) fn missed(w: &WeekIndicators) -> Option<f64> {
    (w.appointments_due > 0).then_some(w.appointments_missed as f64)
}

/// A figure for the table in the reader's language ("25,0 %" in French, "25.0 %" in English):
/// "—" when there is none.
pub(super) fn figure(lang: Lang, v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if unit == "%" && lang == Lang::Fr => format!("{v:.1} %").replace('.', ","),
        Some(v) if unit == "%" => format!("{v:.1} %"),
        Some(v) => format!("{v:.0}{unit}"),
        None => "—".into(),
    }
}

/// One line of a chart: its name (in the legend), its colour, a value per week.
pub(super) struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub values: Vec<Option<f64>>,
}

/// A line chart of weekly series: `y_label` names the unit of the y axis.
pub(super) fn chart(
    lang: Lang,
    id: &str,
    title: &str,
    y_label: &str,
    weeks: &[WeekIndicators],
    series: &[Series],
) -> String {
    let (w, h, left, pad) = (380.0, 170.0, 52.0, 22.0);
    let top = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let top = if top <= 0.0 { 1.0 } else { top };
    let n = weeks.len().max(2) - 1;
    let xy = |i: usize, v: f64| {
        (
            left + (w - left - pad) * i as f64 / n as f64,
            h - pad - (h - 2.0 * pad) * v / top,
        )
    };
    let fmt = |v: f64| {
        if top < 10.0 {
            format!("{v:.1}").replace('.', if lang == Lang::Fr { "," } else { "." })
        } else {
            format!("{v:.0}")
        }
    };
    let mut s = format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption><svg id=\"{id}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">\
         <text class=\"y-label\" x=\"12\" y=\"{}\" font-size=\"10\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{}</text>\
         <line x1=\"{left}\" y1=\"{pad}\" x2=\"{left}\" y2=\"{y0}\" stroke=\"#99a\"/>\
         <line x1=\"{left}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\" stroke=\"#99a\"/>\
         <text x=\"{tx}\" y=\"{ty}\" font-size=\"10\" text-anchor=\"end\">{}</text><text x=\"{tx}\" y=\"{y0}\" font-size=\"10\" text-anchor=\"end\">0</text>",
        esc(title),
        esc(title),
        h / 2.0,
        h / 2.0,
        esc(y_label),
        fmt(top),
        y0 = h - pad,
        x1 = w - pad,
        tx = left - 4.0,
        ty = pad + 4.0,
    );
    for line in series {
        // A gap where a week has no figure: one polyline per run of weeks with one.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (i, v) in line.values.iter().enumerate() {
            match v {
                Some(v) => runs.last_mut().expect("a run").push(xy(i, *v)),
                None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
                None => {}
            }
        }
        for run in runs.iter().filter(|r| r.len() > 1) {
            let points: Vec<String> = run.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = write!(
                s,
                "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
                esc(line.name),
                line.colour,
                points.join(" ")
            );
        }
        for (i, v) in line.values.iter().enumerate() {
            if let Some(v) = v {
                let (x, y) = xy(i, *v);
                let _ = write!(
                    s,
                    "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"{}\"><title>{} · {}: {} {}</title></circle>",
                    line.colour,
                    esc(&weeks[i].week),
                    esc(line.name),
                    fmt(*v),
                    esc(y_label)
                );
            }
        }
    }
    if let (Some(first), Some(last)) = (weeks.first(), weeks.last()) {
        let _ = write!(
            s,
            "<text x=\"{left}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            h - 6.0,
            esc(&week_words(lang, &first.week)),
            w - pad,
            h - 6.0,
            esc(&week_words(lang, &last.week))
        );
    }
    s.push_str("</svg>");
    if series.len() > 1 {
        s.push_str("<p class=\"legend\">");
        for line in series {
            let _ = write!(
                s,
                "<span class=\"key\"><svg width=\"14\" height=\"4\" aria-hidden=\"true\"><rect width=\"14\" height=\"4\" fill=\"{}\"/></svg> {}</span> ",
                line.colour,
                esc(line.name)
            );
        }
        s.push_str("</p>");
    }
    if series.iter().all(|l| l.values.iter().all(Option::is_none)) {
        let _ = write!(s, "<p class=\"muted\">{}</p>", t(lang, "no_figure"));
    }
    s.push_str("</figure>");
    s
}

/// A week (its Monday) as the reader writes it: "sem. du 05/10/2026", "week of 5 Oct 2026".
pub(super) fn week_words(lang: Lang, week: &str) -> String {
    match chrono::NaiveDate::parse_from_str(week, "%Y-%m-%d") {
        Ok(d) => match lang {
            Lang::Fr => format!("sem. du {}", d.format("%d/%m/%Y")),
            Lang::En => format!("week of {}", d.format("%-d %b %Y")),
        },
        Err(_) => week.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(monday: &str, index_stays: u64, rate: f64) -> WeekIndicators {
        WeekIndicators {
            week: monday.into(),
            discharges: index_stays,
            index_stays,
            readmission_rate: rate,
            ..Default::default()
        }
    }

    #[test]
    fn a_week_without_its_30_days_or_its_stays_has_no_rate() {
        let now = journey_projections::coordination::calendar::paris_midnight(
            chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap(),
        );
        assert_eq!(readmission(&week("2026-10-05", 4, 0.25), now), Some(25.0));
        assert_eq!(
            readmission(&week("2026-11-02", 4, 0.0), now),
            None,
            "not over"
        );
        assert_eq!(readmission(&week("2026-09-07", 0, 0.0), now), None, "empty");
        assert_eq!(figure(Lang::Fr, None, "%"), "—");
        assert_eq!(figure(Lang::Fr, Some(25.0), "%"), "25,0 %");
        assert_eq!(figure(Lang::En, Some(25.0), "%"), "25.0 %");
        assert_eq!(same_day(&week("2026-09-07", 0, 0.0)), None);
    }

    #[test]
    fn a_chart_labels_its_axis_draws_every_series_and_leaves_gaps() {
        let weeks = vec![
            week("2026-09-07", 1, 0.0),
            week("2026-09-14", 1, 0.0),
            week("2026-09-21", 1, 0.0),
            week("2026-09-28", 1, 0.0),
        ];
        let svg = chart(
            Lang::Fr,
            "c",
            "Délai",
            "heures",
            &weeks,
            &[
                Series {
                    name: "médiane",
                    colour: "#1565c0",
                    values: vec![Some(10.0), Some(12.0), None, Some(8.0)],
                },
                Series {
                    name: "90e centile",
                    colour: "#8a5300",
                    values: vec![Some(30.0), Some(40.0), Some(20.0), Some(25.0)],
                },
            ],
        );
        assert!(
            svg.contains("class=\"y-label\"") && svg.contains(">heures</text>"),
            "{svg}"
        );
        assert!(svg.contains(">40</text>"), "the top value: {svg}");
        assert_eq!(
            svg.matches("data-series=\"médiane\"").count(),
            1,
            "the gap: {svg}"
        );
        assert_eq!(
            svg.matches("data-series=\"90e centile\"").count(),
            1,
            "{svg}"
        );
        assert!(svg.contains("sem. du 07/09/2026"), "{svg}");
    }
}
