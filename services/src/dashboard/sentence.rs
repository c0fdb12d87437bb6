//! A patient's timeline as sentences a nurse reads, in French or English: "Admis(e) en
//! cardio à Hôpital F1, en urgence", "Lettre de liaison envoyée par MSSanté, 11/11 éléments";
//! enum values as words, times in the facility's time zone (the last facility the patient was
//! seen at; Europe/Paris before any), and the raw event only behind a "details" toggle.
use super::row::role_words;
use crate::html::{channel_label, esc, t, Lang};
use chrono_tz::Tz;
use journey_proto::{
    json,
    v1::{
        event::Payload, AdmitType, ContactChannel, Disposition, EdOutcome, Event, LetterChannel,
        Setting, Severity,
    },
    EventType,
};
use std::fmt::Write;

/// One word or phrase in the reader's language.
fn say(lang: Lang, fr: &str, en: &str) -> String {
    match lang {
        Lang::Fr => fr.to_string(),
        Lang::En => en.to_string(),
    }
}

fn setting(lang: Lang, s: i32) -> String {
    match Setting::try_from(s) {
        Ok(Setting::Had) => say(lang, "en HAD", "in home hospitalisation (HAD)"),
        Ok(Setting::DaySurgery) => say(lang, "en ambulatoire", "as a day case"),
        Ok(Setting::Outpatient) => say(lang, "en consultation externe", "as an outpatient"),
        _ => String::new(),
    }
}

fn admit_type(lang: Lang, a: i32) -> String {
    match AdmitType::try_from(a) {
        Ok(AdmitType::Emergency) => say(lang, ", en urgence", ", as an emergency"),
        Ok(AdmitType::Elective) => say(lang, ", programmé", ", planned"),
        Ok(AdmitType::TransferIn) => say(
            lang,
            ", transféré(e) d'un autre établissement",
            ", transferred in",
        ),
        _ => String::new(),
    }
}

fn disposition(lang: Lang, d: i32) -> String {
    let (fr, en) = match Disposition::try_from(d) {
        Ok(Disposition::Home) => ("à domicile", "home"),
        Ok(Disposition::HomeWithHad) => ("à domicile avec HAD", "home with HAD"),
        Ok(Disposition::NursingHome) => ("en EHPAD", "to a nursing home"),
        Ok(Disposition::Rehab) => ("en soins de suite et réadaptation", "to rehabilitation"),
        Ok(Disposition::OtherAcuteHospital) => ("vers un autre hôpital", "to another hospital"),
        Ok(Disposition::Deceased) => ("décès", "deceased"),
        Ok(Disposition::AgainstMedicalAdvice) => ("contre avis médical", "against medical advice"),
        _ => ("", ""),
    };
    say(lang, fr, en)
}

fn ed_outcome(lang: Lang, o: i32) -> String {
    let (fr, en) = match EdOutcome::try_from(o) {
        Ok(EdOutcome::DischargedHome) => ("retour à domicile", "sent home"),
        Ok(EdOutcome::LeftWithoutBeingSeen) => {
            ("parti(e) sans être vu(e)", "left without being seen")
        }
        Ok(EdOutcome::Transferred) => ("transféré(e)", "transferred"),
        Ok(EdOutcome::Deceased) => ("décès", "deceased"),
        Ok(EdOutcome::Admitted) => ("hospitalisé(e)", "admitted"),
        _ => ("", ""),
    };
    say(lang, fr, en)
}

fn letter_channel(lang: Lang, c: i32) -> String {
    match LetterChannel::try_from(c) {
        Ok(LetterChannel::Mssante) => "MSSanté".into(),
        Ok(LetterChannel::Dmp) => say(lang, "le DMP", "the DMP"),
        Ok(LetterChannel::Paper) => say(lang, "courrier papier", "paper"),
        _ => say(lang, "un canal non précisé", "an unstated channel"),
    }
}

pub(super) fn severity(lang: Lang, s: i32) -> String {
    let (fr, en) = match Severity::try_from(s) {
        Ok(Severity::Critical) => ("critique", "critical"),
        Ok(Severity::High) => ("élevée", "high"),
        Ok(Severity::Moderate) => ("modérée", "moderate"),
        Ok(Severity::Low) => ("faible", "low"),
        _ => ("", ""),
    };
    say(lang, fr, en)
}

fn channel(lang: Lang, c: i32) -> String {
    let name = match ContactChannel::try_from(c) {
        Ok(ContactChannel::Phone) => "phone",
        Ok(ContactChannel::Visit) => "visit",
        Ok(ContactChannel::Teleconsultation) => "teleconsultation",
        _ => return say(lang, "contact", "contact"),
    };
    channel_label(lang, name)
}

/// A facility's name (its id when unnamed).
fn facility(f: Option<&journey_proto::v1::Facility>) -> String {
    f.map_or(String::new(), |f| {
        if f.name.is_empty() {
            f.id.clone()
        } else {
            f.name.clone()
        }
    })
}

/// The event as a sentence (plain text, not escaped).
pub(super) fn sentence(lang: Lang, e: &Event) -> String {
    let Some(p) = &e.payload else {
        return say(lang, "Événement sans contenu", "Event without content");
    };
    let note = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!(" : « {s} »")
        }
    };
    match (lang, p) {
        (Lang::Fr, Payload::PatientRegistered(x)) => {
            format!("Patient(e) enregistré(e){}", born(lang, &x.birth_date))
        }
        (Lang::En, Payload::PatientRegistered(x)) => {
            format!("Patient registered{}", born(lang, &x.birth_date))
        }
        (_, Payload::IdentityUpdated(_)) => say(lang, "Identité mise à jour", "Identity updated"),
        (_, Payload::PatientsMerged(_)) => say(lang, "Dossiers fusionnés", "Records merged"),
        (Lang::Fr, Payload::Admitted(x)) => format!(
            "Admis(e) en {} à {}{}{}",
            x.unit,
            facility(x.facility.as_ref()),
            spaced(setting(lang, x.setting)),
            admit_type(lang, x.admit_type)
        ),
        (Lang::En, Payload::Admitted(x)) => format!(
            "Admitted to {} at {}{}{}",
            x.unit,
            facility(x.facility.as_ref()),
            spaced(setting(lang, x.setting)),
            admit_type(lang, x.admit_type)
        ),
        (Lang::Fr, Payload::Transferred(x)) => {
            format!("Transféré(e) de {} vers {}", x.from_unit, x.to_unit)
        }
        (Lang::En, Payload::Transferred(x)) => {
            format!("Moved from {} to {}", x.from_unit, x.to_unit)
        }
        (Lang::Fr, Payload::Discharged(x)) => {
            format!("Sortie {}", disposition(lang, x.disposition))
        }
        (Lang::En, Payload::Discharged(x)) => {
            format!("Discharged {}", disposition(lang, x.disposition))
        }
        (_, Payload::AdmissionCancelled(_)) => {
            say(lang, "Admission annulée", "Admission cancelled")
        }
        (_, Payload::TransferCancelled(_)) => say(lang, "Mutation annulée", "Transfer cancelled"),
        (_, Payload::DischargeCancelled(_)) => say(lang, "Sortie annulée", "Discharge cancelled"),
        (Lang::Fr, Payload::EmergencyVisit(x)) => format!(
            "Passage aux urgences à {} : {}",
            facility(x.facility.as_ref()),
            ed_outcome(lang, x.outcome)
        ),
        (Lang::En, Payload::EmergencyVisit(x)) => format!(
            "Emergency visit at {}: {}",
            facility(x.facility.as_ref()),
            ed_outcome(lang, x.outcome)
        ),
        (Lang::Fr, Payload::DischargeLetterSent(x)) => format!(
            "Lettre de liaison envoyée par {}, {}/{} éléments",
            letter_channel(lang, x.channel),
            x.items_present.len(),
            journey_projections::coordination::followup::LETTER_ITEMS_REQUIRED
        ),
        (Lang::En, Payload::DischargeLetterSent(x)) => format!(
            "Discharge letter sent by {}, {}/{} items",
            letter_channel(lang, x.channel),
            x.items_present.len(),
            journey_projections::coordination::followup::LETTER_ITEMS_REQUIRED
        ),
        (Lang::Fr, Payload::PrescriptionIssued(x)) => format!(
            "Prescription : {}",
            x.medication.as_ref().map_or("", |m| m.display.as_str())
        ),
        (Lang::En, Payload::PrescriptionIssued(x)) => format!(
            "Prescription: {}",
            x.medication.as_ref().map_or("", |m| m.display.as_str())
        ),
        (Lang::Fr, Payload::MedicationReconciled(x)) => format!(
            "Conciliation médicamenteuse faite, {} divergence(s)",
            x.discrepancies_found
        ),
        (Lang::En, Payload::MedicationReconciled(x)) => format!(
            "Medication reconciled, {} discrepancy(ies)",
            x.discrepancies_found
        ),
        (_, Payload::CarePlanEstablished(_)) => {
            say(lang, "Plan de soins établi", "Care plan established")
        }
        (Lang::Fr, Payload::ReferentAssigned(x)) => format!(
            "Référent désigné : {} ({})",
            x.professional.as_ref().map_or("", |p| p.name.as_str()),
            role_words(lang, x.role)
        ),
        (Lang::En, Payload::ReferentAssigned(x)) => format!(
            "Referent assigned: {} ({})",
            x.professional.as_ref().map_or("", |p| p.name.as_str()),
            role_words(lang, x.role)
        ),
        (Lang::Fr, Payload::AppointmentScheduled(x)) => format!("Rendez-vous prévu : {}", x.kind),
        (Lang::En, Payload::AppointmentScheduled(x)) => format!("Appointment booked: {}", x.kind),
        (_, Payload::AppointmentCompleted(_)) => {
            say(lang, "Rendez-vous honoré", "Appointment kept")
        }
        (Lang::Fr, Payload::AppointmentMissed(x)) => {
            format!("Rendez-vous manqué{}", note(&x.reason))
        }
        (Lang::En, Payload::AppointmentMissed(x)) => {
            format!("Appointment missed{}", note(&x.reason))
        }
        (Lang::Fr, Payload::HomeVisitRecorded(x)) => {
            format!("Visite à domicile ({} min)", x.duration_minutes)
        }
        (Lang::En, Payload::HomeVisitRecorded(x)) => {
            format!("Home visit ({} min)", x.duration_minutes)
        }
        (Lang::Fr, Payload::ContactMade(x)) => format!(
            "Contact par {}{}",
            channel(lang, x.channel),
            note(&x.reason)
        ),
        (Lang::En, Payload::ContactMade(x)) => {
            format!("Contact by {}{}", channel(lang, x.channel), note(&x.reason))
        }
        (Lang::Fr, Payload::ObservationRecorded(x)) => {
            format!("Mesure : {} {} {}", x.measure, x.value, x.unit)
        }
        (Lang::En, Payload::ObservationRecorded(x)) => {
            format!("Reading: {} {} {}", x.measure, x.value, x.unit)
        }
        (Lang::Fr, Payload::ConditionRecorded(x)) => format!(
            "Diagnostic : {}",
            x.diagnosis.as_ref().map_or("", |d| d.display.as_str())
        ),
        (Lang::En, Payload::ConditionRecorded(x)) => format!(
            "Diagnosis: {}",
            x.diagnosis.as_ref().map_or("", |d| d.display.as_str())
        ),
        (Lang::Fr, Payload::AlertRaised(x)) => {
            let reason = super::alert_words::reason(lang, &x.rule, &x.reason);
            format!("Alerte {} : {reason}", severity(lang, x.severity))
        }
        (Lang::En, Payload::AlertRaised(x)) => {
            format!("Alert, {}: {}", severity(lang, x.severity), x.reason)
        }
        (_, Payload::AlertAcknowledged(_)) => {
            say(lang, "Alerte prise en compte", "Alert acknowledged")
        }
        (Lang::Fr, Payload::AlertResolved(x)) => format!("Alerte close{}", note(&x.resolution)),
        (Lang::En, Payload::AlertResolved(x)) => format!("Alert resolved{}", note(&x.resolution)),
        (_, Payload::ConsentGiven(_)) => say(
            lang,
            "Consentement au partage donné",
            "Consent to sharing given",
        ),
        (_, Payload::ConsentRevoked(_)) => say(
            lang,
            "Consentement au partage retiré",
            "Consent to sharing withdrawn",
        ),
        (_, Payload::PatientDeceased(_)) => say(lang, "Décès", "Death"),
        (_, Payload::LeaveStarted(_)) => {
            say(lang, "Permission ou absence provisoire", "Leave of absence")
        }
        (_, Payload::LeaveEnded(_)) => say(lang, "Retour de permission", "Back from leave"),
        (_, Payload::ClassChanged(x)) => {
            let to = setting(lang, x.setting);
            let to = if to.is_empty() {
                say(lang, "en hospitalisation complète", "as an inpatient")
            } else {
                to
            };
            match lang {
                Lang::Fr => format!("Dossier basculé {to}"),
                Lang::En => format!("Encounter changed to {to}"),
            }
        }
        (_, Payload::MovementCancelled(_)) => say(lang, "Mouvement annulé", "Movement cancelled"),
        (_, Payload::MovementCorrected(_)) => say(lang, "Mouvement corrigé", "Movement corrected"),
        (_, Payload::DischargeExpected(x)) => match &x.expected_at {
            Some(_) => say(
                lang,
                "Date de sortie prévue renseignée",
                "Expected discharge date set",
            ),
            None => say(
                lang,
                "Date de sortie prévue retirée",
                "Expected discharge date withdrawn",
            ),
        },
        (_, Payload::ChecklistItemSet(x)) => {
            if x.done {
                say(
                    lang,
                    "Élément de la check-list de sortie fait",
                    "Discharge checklist item done",
                )
            } else {
                say(
                    lang,
                    "Élément de la check-list de sortie décoché",
                    "Discharge checklist item unticked",
                )
            }
        }
        (_, Payload::ComplexDischargeFlagged(x)) => {
            if x.reasons.is_empty() {
                say(
                    lang,
                    "Sortie complexe levée",
                    "Complex discharge flag cleared",
                )
            } else {
                say(
                    lang,
                    "Sortie signalée complexe",
                    "Flagged as a complex discharge",
                )
            }
        }
    }
}

/// `s` after a space, or nothing.
fn spaced(s: String) -> String {
    if s.is_empty() {
        s
    } else {
        format!(" {s}")
    }
}

fn born(lang: Lang, birth_date: &str) -> String {
    match chrono::NaiveDate::parse_from_str(birth_date, "%Y-%m-%d") {
        Ok(d) => match lang {
            Lang::Fr => format!(", né(e) le {}", d.format("%d/%m/%Y")),
            Lang::En => format!(", born {}", d.format("%-d %b %Y")),
        },
        Err(_) => String::new(),
    }
}

/// The time zone an event's facility sets, if it names one.
fn zone_of(e: &Event) -> Option<Tz> {
    let f = match &e.payload {
        Some(Payload::Admitted(x)) => x.facility.as_ref(),
        Some(Payload::EmergencyVisit(x)) => x.facility.as_ref(),
        _ => None,
    }?;
    f.time_zone.parse().ok()
}

/// A time in `zone`, as the reader writes it.
fn local(lang: Lang, ts: Option<&journey_proto::prost_types::Timestamp>, zone: Tz) -> String {
    let Some(d) = ts.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0)) else {
        return String::new();
    };
    let d = d.with_timezone(&zone);
    match lang {
        Lang::Fr => d.format("%d/%m/%Y %H:%M").to_string(),
        Lang::En => d.format("%-d %b %Y %H:%M").to_string(),
    }
}

/// Who recorded an event, as a reader knows them: a system ("recorded automatically"), a named
/// person, else their role (never an account's id).
fn who(lang: Lang, a: &journey_proto::v1::Actor) -> String {
    if a.role == journey_proto::v1::Role::System as i32 {
        t(lang, "recorded_automatically").to_string()
    } else if !a.display_name.is_empty() {
        a.display_name.clone()
    } else {
        role_words(lang, a.role)
    }
}

/// The patient page's timeline: every event, oldest first, as a sentence with its local time
/// and who recorded it; the event itself behind a "details" toggle.
pub(super) fn timeline(b: &mut String, lang: Lang, events: &[Event]) {
    let _ = write!(b, "<h2>{}</h2><ol id=\"timeline\">", t(lang, "timeline"));
    let mut zone = chrono_tz::Europe::Paris;
    for e in events {
        zone = zone_of(e).unwrap_or(zone);
        let kind = e.payload.as_ref().map_or("?", |p| EventType::of(p).name());
        let who = e.actor.as_ref().map_or(String::new(), |a| who(lang, a));
        let detail = json::event_to_json(e).to_string();
        let _ = write!(
            b,
            "<li data-kind=\"{kind}\"><b>{}</b> <span class=\"muted\">{} · {}</span>\
             <details><summary>{}</summary><code>{}</code></details></li>",
            esc(&sentence(lang, e)),
            local(lang, e.occurred_at.as_ref(), zone),
            esc(&who),
            t(lang, "details"),
            esc(&detail),
        );
    }
    b.push_str("</ol>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{Admitted, DischargeLetterSent, Facility};

    #[test]
    fn events_read_as_sentences_in_both_languages() {
        let admitted = Event {
            payload: Some(Payload::Admitted(Admitted {
                unit: "cardiologie".into(),
                facility: Some(Facility {
                    name: "CHU Nord".into(),
                    time_zone: "America/Cayenne".into(),
                    ..Default::default()
                }),
                admit_type: AdmitType::Emergency as i32,
                ..Default::default()
            })),
            occurred_at: Some(journey_proto::prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        };
        assert_eq!(
            sentence(Lang::Fr, &admitted),
            "Admis(e) en cardiologie à CHU Nord, en urgence"
        );
        assert_eq!(
            sentence(Lang::En, &admitted),
            "Admitted to cardiologie at CHU Nord, as an emergency"
        );
        let letter = Event {
            payload: Some(Payload::DischargeLetterSent(DischargeLetterSent {
                channel: LetterChannel::Mssante as i32,
                items_present: (1..=11).collect(),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert_eq!(
            sentence(Lang::Fr, &letter),
            "Lettre de liaison envoyée par MSSanté, 11/11 éléments"
        );
        // The facility's time: 22:13 UTC is 19:13 in Cayenne.
        let mut b = String::new();
        timeline(&mut b, Lang::Fr, &[admitted]);
        assert!(b.contains("14/11/2023 19:13"), "{b}");
        assert!(b.contains("<details>"), "{b}");
    }
}
