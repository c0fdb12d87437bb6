//! Who a patient is, as the pages tell two patients of the same name apart: the birth date with
//! the age, the sex, and the INS (Identité Nationale de Santé) once the identity is validated
//! (an INS of a provisional or doubtful identity is not one to rely on, so it is not shown).
use crate::html::{esc, Lang};
use journey_proto::v1::{event::Payload, Event, IdentityStatus, Sex};

#[derive(Debug, Default, PartialEq)]
pub(super) struct Identity {
    pub birth_date: String,
    pub sex: i32,
    pub ins: String,
    pub status: i32,
}

impl Identity {
    /// The identity as a list's row carries it: an INS given there is taken as validated.
    pub(super) fn listed(birth_date: &str, sex: i32, ins: &str) -> Identity {
        Identity {
            birth_date: birth_date.into(),
            sex,
            ins: ins.into(),
            status: if ins.is_empty() {
                0
            } else {
                IdentityStatus::Validated as i32
            },
        }
    }
}

/// The patient's identity as their events last set it (registration, then updates).
pub(super) fn of(events: &[Event]) -> Identity {
    let mut id = Identity::default();
    for e in events {
        match &e.payload {
            Some(Payload::PatientRegistered(r)) => {
                id = Identity {
                    birth_date: r.birth_date.clone(),
                    sex: r.sex,
                    ins: r.ins.clone(),
                    status: r.identity_status,
                };
            }
            Some(Payload::IdentityUpdated(u)) => {
                if !u.birth_date.is_empty() {
                    id.birth_date = u.birth_date.clone();
                }
                if u.sex != 0 {
                    id.sex = u.sex;
                }
                if u.ins_removed {
                    id.ins.clear();
                } else if !u.ins.is_empty() {
                    id.ins = u.ins.clone();
                }
                if u.identity_status != 0 {
                    id.status = u.identity_status;
                }
            }
            _ => {}
        }
    }
    id
}

/// "née le 02/03/1941 (85 ans)", "born 2 Mar 1941 (85)"; empty without a readable date.
pub(super) fn born(lang: Lang, birth_date: &str, sex: i32) -> String {
    let Ok(d) = chrono::NaiveDate::parse_from_str(birth_date, "%Y-%m-%d") else {
        return String::new();
    };
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive();
    let age = today.years_since(d).unwrap_or(0);
    match lang {
        Lang::Fr => {
            let born = match Sex::try_from(sex) {
                Ok(Sex::Female) => "née",
                Ok(Sex::Male) => "né",
                _ => "né(e)",
            };
            format!("{born} le {} ({age} ans)", d.format("%d/%m/%Y"))
        }
        Lang::En => format!("born {} ({age})", d.format("%-d %b %Y")),
    }
}

/// The sex in words; nothing when it is not said.
pub(super) fn sex_words(lang: Lang, sex: i32) -> &'static str {
    match (Sex::try_from(sex), lang) {
        (Ok(Sex::Female), Lang::Fr) => "femme",
        (Ok(Sex::Female), Lang::En) => "female",
        (Ok(Sex::Male), Lang::Fr) => "homme",
        (Ok(Sex::Male), Lang::En) => "male",
        (Ok(Sex::Other), Lang::Fr) => "autre",
        (Ok(Sex::Other), Lang::En) => "other",
        _ => "",
    }
}

/// The identity in one line of markup: birth date and age, sex, validated INS.
pub(super) fn line(lang: Lang, id: &Identity) -> String {
    let mut parts = Vec::new();
    let born = born(lang, &id.birth_date, id.sex);
    if !born.is_empty() {
        parts.push(format!("<span class=\"born\">{}</span>", esc(&born)));
    }
    let sex = sex_words(lang, id.sex);
    if !sex.is_empty() {
        parts.push(format!("<span class=\"sex\">{sex}</span>"));
    }
    if !id.ins.is_empty() && id.status == IdentityStatus::Validated as i32 {
        parts.push(format!("<span class=\"ins\">INS {}</span>", esc(&id.ins)));
    }
    parts.join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{IdentityUpdated, PatientRegistered};

    fn ev(p: Payload) -> Event {
        Event {
            payload: Some(p),
            ..Default::default()
        }
    }

    #[test]
    fn the_ins_shows_once_the_identity_is_validated() {
        let mut events = vec![ev(Payload::PatientRegistered(PatientRegistered {
            ins: "241037512345678".into(),
            birth_date: "1941-03-02".into(),
            sex: Sex::Female as i32,
            identity_status: IdentityStatus::Provisional as i32,
            ..Default::default()
        }))];
        let fr = line(Lang::Fr, &of(&events));
        assert!(
            fr.starts_with("<span class=\"born\">née le 02/03/1941 ("),
            "{fr}"
        );
        assert!(fr.contains("femme") && !fr.contains("INS"), "{fr}");
        events.push(ev(Payload::IdentityUpdated(IdentityUpdated {
            identity_status: IdentityStatus::Validated as i32,
            ..Default::default()
        })));
        let en = line(Lang::En, &of(&events));
        assert!(
            en.contains("born 2 Mar 1941") && en.contains("female"),
            "{en}"
        );
        assert!(en.contains("INS 241037512345678"), "{en}");
        events.push(ev(Payload::IdentityUpdated(IdentityUpdated {
            ins_removed: true,
            ..Default::default()
        })));
        assert!(!line(Lang::En, &of(&events)).contains("INS"));
    }
}
