//! What the rosters (`had.rs`, `gp.rs`) show of a patient and a stay, in the reader's words: the
//! patient as on the worklist (the name linking to the page; under it birth date and age, sex and
//! validated INS), a stay's kind of HAD, its dates. Each list is recorded in the access log under
//! every patient it shows before it is shown.
use super::{enc, identity, planning::say, when};
use crate::access_log::{audited, Access};
use crate::html::{esc, Lang};
use crate::principal::Principal;
use journey_projections::coordination::rosters::Person;
use journey_proto::v1::HadGroup;
use std::fmt::Write;
use tonic::Status;

/// The patient's cell: the name as a link to the page, the identity under it.
pub(super) fn person_cell(lang: Lang, p: &Person) -> String {
    let name = if p.display_name.is_empty() {
        &p.patient_id
    } else {
        &p.display_name
    };
    let who = identity::line(
        lang,
        &identity::Identity::listed(&p.birth_date, p.sex, &p.ins),
    );
    let mut cell = format!(
        "<a href=\"/patients/{}?lang={}\">{}</a>",
        enc(&p.patient_id),
        lang.code(),
        esc(name)
    );
    if !who.is_empty() {
        let _ = write!(cell, "<br><span class=\"muted identity\">{who}</span>");
    }
    cell
}

/// The kind of HAD (the event catalogue's `HadGroup`) in words; "—" when not said.
pub(super) fn had_group_words(lang: Lang, group: i32) -> String {
    let (fr, en) = match HadGroup::try_from(group) {
        Ok(HadGroup::Palliative) => ("soins palliatifs", "palliative care"),
        Ok(HadGroup::AcuteChronic) => ("aigu ou chronique", "acute or chronic"),
        Ok(HadGroup::NursingHomeSupport) => ("appui en EHPAD", "nursing-home support"),
        _ => ("—", "—"),
    };
    say(lang, fr, en)
}

/// An instant as a date and time on Paris time ([`when`]) from seconds since the epoch.
pub(super) fn at(lang: Lang, seconds: i64) -> String {
    let ts = journey_proto::prost_types::Timestamp { seconds, nanos: 0 };
    when(lang, Some(&ts))
}

/// Records a roster read by `caller` under `call` with each patient it returned, then returns it.
pub(super) async fn recorded<T>(
    d: &super::Dashboard,
    caller: Option<&Principal>,
    call: &str,
    detail: String,
    result: Result<Vec<T>, Status>,
    patient_of: impl Fn(&T) -> &str,
) -> Result<Vec<T>, Status> {
    let ids: Vec<String> = result
        .as_ref()
        .map(|rows| rows.iter().map(|r| patient_of(r).to_string()).collect())
        .unwrap_or_default();
    let access = Access {
        caller,
        call,
        patients: &ids,
        detail,
        ..Default::default()
    };
    audited(d.coordination.access.as_ref(), access, result).await
}
