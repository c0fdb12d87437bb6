//! The pages' words in French and English (the dashboard, sign-in and sign-out): one row a
//! phrase, `(key, French, English)`. The tests below check that every row has both languages,
//! that no key is listed twice, and that every key the pages, the worklist's tasks and the
//! timeliness states use has a row.
use super::Lang;

type Table = [(&'static str, &'static str, &'static str)];

/// Headings, labels and sentences of the pages, looked up by [`t`].
#[rustfmt::skip]
const WORDS: &Table = &[
    ("title", "Parcours patient — coordination", "Patient journey — coordination"),
    ("worklist", "Liste de travail", "Worklist"),
    ("indicators", "Indicateurs", "Indicators"),
    ("patient", "Patient", "Patient"),
    ("facility", "Établissement", "Facility"),
    ("territory", "Territoire", "Territory"),
    ("referent", "Référent (nom ou identifiant)", "Referent (name or id)"),
    ("facility_or_unit", "Établissement ou service", "Facility or unit"),
    ("overdue_only", "En retard seulement", "Overdue only"),
    ("severity", "Alerte au moins", "Alert at least"),
    ("any", "toutes", "any"),
    ("filter", "Filtrer", "Filter"),
    ("discharged", "Sortie", "Discharged"),
    ("letter", "Lettre de liaison", "Discharge letter"),
    ("first_contact", "Premier contact", "First contact"),
    ("appointments", "Rendez-vous", "Appointments"),
    ("alerts", "Alertes", "Alerts"),
    ("todo", "À faire", "To do"),
    ("none", "Aucun patient ne correspond.", "No patient matches."),
    ("next", "Page suivante", "Next page"),
    ("timeline", "Chronologie", "Timeline"),
    ("followup", "Suivi après sortie", "Follow-up after discharge"),
    ("referents", "Référents", "Referents"),
    ("week", "Semaine", "Week"),
    ("readmission_rate", "Taux de réhospitalisation à 30 j", "30-day readmission rate"),
    ("contact_delay", "Délai du premier contact en heures (médiane / 90e centile)", "First-contact delay in hours (median / 90th percentile)"),
    ("same_day", "Lettres le jour même", "Same-day letters"),
    ("completeness", "Complétude des lettres", "Letter completeness"),
    ("missed", "Rendez-vous manqués", "Missed appointments"),
    ("ed", "Passages aux urgences ≤ 30 j", "ED visits ≤ 30 d"),
    ("open_alerts", "Alertes ouvertes (âge médian en heures)", "Open alerts (median age in hours)"),
    ("had", "HAD (palliatif / aigu-chronique / EHPAD)", "HAD (palliative / acute-chronic / nursing home)"),
    ("discharges", "Sorties", "Discharges"),
    ("patient_one", "patient", "patient"),
    ("patient_many", "patients", "patients"),
    ("up_to_date_at", "à jour à", "up to date at"),
    ("updating", "mise à jour en cours", "updating"),
    ("update_one", "événement à prendre en compte", "event to take in"),
    ("update_many", "événements à prendre en compte", "events to take in"),
    ("hours", "heures", "hours"),
    ("median", "médiane", "median"),
    ("p90", "90e centile", "90th percentile"),
    ("appointments_word", "rendez-vous", "appointments"),
    ("not_over", "30 jours pas encore écoulés", "30 days not over yet"),
    ("no_figure", "Aucune donnée sur cette période.", "No figure over this period."),
    ("no_facility", "Aucun établissement ne porte ce nom : vérifiez-le, ou videz le champ pour tout le territoire.", "No facility has this name: check it, or clear the field for the whole territory."),
    ("several_facilities", "Plusieurs établissements portent ce nom ; choisissez :", "Several facilities have this name; choose:"),
    ("back_to_worklist", "Retour à la liste de travail", "Back to the worklist"),
    ("no_page", "Page introuvable", "Page not found"),
    ("no_page_text", "Cette adresse ne correspond à aucune page. Le lien est peut-être incomplet.", "No page has this address. The link may be incomplete."),
    ("from", "Du", "From"),
    ("to", "au", "to"),
    ("deceased", "Décédé", "Deceased"),
    ("not_found", "Patient inconnu", "Unknown patient"),
    ("not_found_text", "Aucun patient de votre périmètre ne porte cet identifiant. Vérifiez-le, ou revenez à la liste de travail.", "No patient you follow has this identifier. Check it, or go back to the worklist."),
    ("bad_address", "Adresse incorrecte", "Incorrect address"),
    ("refused", "Accès refusé", "Access refused"),
    ("refused_text", "Cette page ne vous est pas ouverte :", "This page is not open to you:"),
    ("unavailable", "Service indisponible", "Service unavailable"),
    ("unavailable_text", "Les données ne peuvent pas être lues pour le moment ; réessayez dans un instant, et prévenez l'équipe technique si cela dure :", "The data cannot be read right now; try again in a moment, and tell the technical team if this lasts:"),
    ("bad_address_text", "Cette adresse contient un filtre qui ne peut pas être appliqué :", "This address holds a filter that cannot be applied:"),
    ("sign_in", "Connexion", "Sign in"),
    ("token", "Jeton d'accès", "Access token"),
    ("token_hint", "Sur la machine qui exécute « journey up », le jeton administrateur est dans le fichier data/admin.token.", "On the machine running “journey up”, the admin token is in the file data/admin.token."),
    ("token_refused", "Ce jeton n'est pas accepté :", "This token is not accepted:"),
    ("not_for_dashboard", "Ce jeton ne donne pas accès au tableau de coordination : il est réservé aux coordinateurs, aux médecins traitants et aux administrateurs.", "This token does not open the coordination dashboard: it is for coordinators, GPs and administrators."),
    ("other_site", "Demande refusée : le formulaire a été envoyé depuis un autre site. Ouvrez la page de connexion de ce serveur et recommencez.", "Request refused: the form was sent from another site. Open this server's sign-in page and try again."),
    ("too_many_failures", "Trop de jetons refusés depuis ce poste. Réessayez dans quelques minutes (minutes restantes :", "Too many refused tokens from this computer. Try again in a few minutes (minutes left:"),
    ("sign_out", "Se déconnecter", "Sign out"),
    ("signed_out", "Déconnecté", "Signed out"),
    ("signed_out_text", "Vous êtes déconnecté. Fermez cette fenêtre si d'autres personnes utilisent ce poste.", "You are signed out. Close this window if other people use this computer."),
    ("session_ended", "Session terminée", "Session ended"),
    ("session_ended_text", "Votre session est terminée : elle est restée inactive plus de 30 minutes, a duré plus de 12 heures, ou son jeton a expiré. Reconnectez-vous pour continuer.", "Your session has ended: it was inactive for more than 30 minutes, lasted more than 12 hours, or its token expired. Sign in again to continue."),
    ("sign_in_again", "Se reconnecter", "Sign in again"),
    ("due", "Échéance", "Due"),
    ("days", "jours", "days"),
    ("day", "jour", "day"),
    ("working_day", "jour ouvré", "working day"),
    ("working_days", "jours ouvrés", "working days"),
    ("late_since_weekend", "en retard (depuis le dernier jour ouvré)", "late (since the last working day)"),
    ("by_day", "au plus tard le", "by"),
    ("late_by", "en retard de", "late by"),
    ("appointments_kept", "honoré(s)", "kept"),
    ("appointments_to_come", "à venir", "to come"),
    ("appointments_missed_or_unknown", "manqué(s) ou sans nouvelles", "missed or unconfirmed"),
    ("appointments_past_due", "rendez-vous passés sans nouvelles", "appointments past due, unconfirmed"),
    ("severity_critical", "critique", "critical"),
    ("severity_high", "élevée", "high"),
    ("severity_moderate", "modérée", "moderate"),
    ("severity_low", "faible", "low"),
    ("all_acknowledged", "toutes prises en compte", "all acknowledged"),
    ("to_acknowledge", "à prendre en compte", "to acknowledge"),
    ("details", "détails", "details"),
    ("recorded_automatically", "enregistré automatiquement", "recorded automatically"),
    ("alert_resolved", "close", "resolved"),
    ("alert_acknowledged", "prise en compte", "acknowledged"),
    ("alert_unacknowledged", "à prendre en compte", "to acknowledge"),
    ("act", "Agir", "Act"),
    ("contact_made", "Enregistrer un contact", "Record a contact"),
    ("channel", "Par", "By"),
    ("note", "Note", "Note"),
    ("record", "Enregistrer", "Record"),
    ("acknowledge", "Prendre en compte", "Acknowledge"),
    ("resolution", "Ce qui a été fait", "What was done"),
    ("resolve", "Clore l'alerte", "Resolve the alert"),
    ("appointment_completed", "Rendez-vous honoré", "Appointment kept"),
    ("appointment_missed", "Rendez-vous manqué", "Appointment missed"),
    ("reason", "Motif", "Reason"),
    ("assign_referent", "Désigner un référent", "Assign a referent"),
    ("referent_role", "Rôle", "Role"),
    ("referent_name", "Nom", "Name"),
    ("professional_id", "Identifiant (RPPS ou local)", "Identifier (RPPS or local)"),
    ("assign", "Désigner", "Assign"),
    ("action_refused", "Action non enregistrée", "Action not recorded"),
    ("action_refused_text", "Rien n'a été enregistré :", "Nothing was recorded:"),
    ("action_recorded", "C'est enregistré : la page le montre.", "Recorded: the page shows it."),
    ("action_lagging", "C'est enregistré, mais le suivi n'est pas encore à jour : rechargez la page dans un instant pour le voir.", "Recorded, but the follow-up is not up to date yet: reload the page in a moment to see it."),
];

/// The contact channels of the action forms, looked up by [`channel_label`].
#[rustfmt::skip]
const CHANNELS: &Table = &[
    ("phone", "téléphone", "phone"),
    ("visit", "visite", "visit"),
    ("teleconsultation", "téléconsultation", "teleconsultation"),
];

/// The professionals' roles, by the names the forms give them, looked up by [`role_label`].
#[rustfmt::skip]
const ROLES: &Table = &[
    ("gp", "médecin traitant", "GP"),
    ("home_nurse", "infirmier(e) à domicile", "home nurse"),
    ("pharmacist", "pharmacien(ne)", "pharmacist"),
    ("liaison_nurse", "infirmier(e) de liaison", "liaison nurse"),
    ("had_coordinator", "coordinateur(trice) HAD", "HAD coordinator"),
    ("hospital_physician", "médecin hospitalier", "hospital physician"),
    ("specialist", "spécialiste", "specialist"),
    ("physiotherapist", "kinésithérapeute", "physiotherapist"),
    ("coordinator", "coordinateur(trice) de parcours", "care coordinator"),
];

/// The worklist's tasks, by the names `journey_projections` gives them, looked up by
/// [`task_label`].
#[rustfmt::skip]
const TASKS: &Table = &[
    ("critical_alert_open", "alerte critique", "critical alert"),
    ("high_alert_open", "alerte élevée", "high alert"),
    ("alert_open", "alerte à prendre en compte", "alert to acknowledge"),
    ("alert_acknowledged", "alerte prise en compte, à clore", "alert acknowledged, to resolve"),
    ("first_contact_overdue", "premier contact en retard", "first contact overdue"),
    ("appointment_missed", "rendez-vous manqué", "missed appointment"),
    ("appointment_unconfirmed", "rendez-vous non confirmé", "appointment not confirmed"),
    ("letter_overdue", "lettre non envoyée", "letter not sent"),
    ("reconciliation_overdue", "conciliation à faire", "reconciliation overdue"),
    ("letter_incomplete", "lettre incomplète", "letter incomplete"),
    ("pathway_step_overdue", "étape du parcours en retard", "pathway step overdue"),
    ("first_contact_due", "premier contact à venir", "first contact due"),
];

/// A step's timeliness (`Timeliness::as_str`), looked up by [`timeliness_label`].
#[rustfmt::skip]
const TIMELINESS: &Table = &[
    ("on_time", "à l'heure", "on time"),
    ("late", "en retard", "late"),
    ("pending", "attendu", "pending"),
    ("overdue", "EN RETARD", "OVERDUE"),
];

fn lookup(table: &Table, lang: Lang, key: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|row| row.0 == key)
        .map(|&(_, fr, en)| match lang {
            Lang::Fr => fr,
            Lang::En => en,
        })
}

/// A word of the pages; an unknown key is shown as itself.
pub(crate) fn t(lang: Lang, key: &str) -> &str {
    lookup(WORDS, lang, key).unwrap_or(key)
}

/// A worklist task; an unknown task is shown by its name.
pub(crate) fn task_label(lang: Lang, task: &str) -> String {
    lookup(TASKS, lang, task).unwrap_or(task).to_string()
}

/// A contact channel; an unknown one is shown by its name.
pub(crate) fn channel_label(lang: Lang, channel: &str) -> String {
    lookup(CHANNELS, lang, channel)
        .unwrap_or(channel)
        .to_string()
}

/// A professional's role; an unknown one is shown by its name.
pub(crate) fn role_label(lang: Lang, role: &str) -> String {
    lookup(ROLES, lang, role).unwrap_or(role).to_string()
}

/// A step's timeliness; an unknown state is shown as `?`.
pub(crate) fn timeliness_label(lang: Lang, s: &str) -> &'static str {
    lookup(TIMELINESS, lang, s).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_projections::coordination::followup::Timeliness;
    use std::collections::BTreeSet;

    /// The string literals that follow `prefix` in `source`, in order.
    fn literals_after<'a>(source: &'a str, prefix: &str) -> Vec<&'a str> {
        source
            .match_indices(prefix)
            .filter_map(|(at, _)| {
                let rest = &source[at + prefix.len()..];
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_row_has_both_languages_and_a_key_of_its_own() {
        for (name, table) in [
            ("WORDS", WORDS),
            ("TASKS", TASKS),
            ("TIMELINESS", TIMELINESS),
            ("CHANNELS", CHANNELS),
            ("ROLES", ROLES),
        ] {
            let mut keys = BTreeSet::new();
            for &(key, fr, en) in table {
                assert!(!key.is_empty(), "{name}: a row without a key");
                assert!(keys.insert(key), "{name}: {key:?} listed twice");
                assert!(!fr.trim().is_empty(), "{name}: {key:?} has no French");
                assert!(!en.trim().is_empty(), "{name}: {key:?} has no English");
            }
        }
    }

    #[test]
    fn every_word_exists_in_both_languages() {
        for key in [
            "title",
            "worklist",
            "indicators",
            "letter",
            "first_contact",
            "timeline",
            "readmission_rate",
            "had",
        ] {
            assert_ne!(t(Lang::En, key), key);
            assert_ne!(t(Lang::Fr, key), t(Lang::En, key), "{key} untranslated");
        }
        assert_eq!(t(Lang::Fr, "no such word"), "no such word");
        assert_eq!(task_label(Lang::Fr, "new_task"), "new_task");
        assert_eq!(timeliness_label(Lang::En, "unheard_of"), "?");
    }

    /// Every `t(…)` call of the pages names its word with a literal, and that word has a row;
    /// every row is used.
    #[test]
    fn every_word_the_pages_use_has_a_row() {
        let mut used = BTreeSet::new();
        for source in [
            include_str!("../dashboard.rs"),
            include_str!("../session.rs"),
            include_str!("../html.rs"),
            include_str!("../dashboard/actions.rs"),
            include_str!("../dashboard/address.rs"),
            include_str!("../dashboard/charts.rs"),
            include_str!("../dashboard/row.rs"),
            include_str!("../dashboard/sentence.rs"),
        ] {
            words_used(source, &mut used);
        }
        for &(key, _, _) in WORDS {
            assert!(used.contains(key), "WORDS: {key:?} is not used");
        }
    }

    /// Adds to `used` the words the `t(…)` calls of `source` name.
    fn words_used<'a>(source: &'a str, used: &mut BTreeSet<&'a str>) {
        for (at, _) in source.match_indices("t(") {
            let before = source[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // `sort(`, `format(`, …
            }
            let args = &source[at + 2..];
            let args = &args[..args.find(')').expect("t( … ) closes")];
            let key = args
                .split_once(',')
                .map(|(_, key)| key.trim())
                .and_then(|key| key.strip_prefix('"'))
                .and_then(|key| key.split_once('"'))
                .map(|(key, _)| key);
            let key = key.unwrap_or_else(|| {
                panic!("t({args}): name the word with a string literal, so this test can see it")
            });
            assert!(
                WORDS.iter().any(|row| row.0 == key),
                "t(…, {key:?}) has no row in WORDS"
            );
            used.insert(key);
        }
    }

    /// The tasks are the literals `journey_projections` pushes in its follow-up; each has a label,
    /// and each label a task.
    #[test]
    fn every_task_has_a_label() {
        let followup = include_str!("../../../projections/src/coordination/followup.rs");
        let tasks: BTreeSet<&str> = literals_after(followup, "tasks.push(\"")
            .into_iter()
            .collect();
        assert!(tasks.len() >= 10, "found only {tasks:?}");
        let labelled: BTreeSet<&str> = TASKS.iter().map(|row| row.0).collect();
        assert_eq!(
            labelled, tasks,
            "TASKS (left) against the tasks journey_projections pushes (right)"
        );
    }

    #[test]
    fn every_timeliness_has_a_label() {
        let states = [
            Timeliness::OnTime,
            Timeliness::Late,
            Timeliness::Pending,
            Timeliness::Overdue,
        ];
        // A new state makes this match fail to compile, so that it joins `states` above.
        for s in states {
            match s {
                Timeliness::OnTime
                | Timeliness::Late
                | Timeliness::Pending
                | Timeliness::Overdue => {}
            }
        }
        let labelled: BTreeSet<&str> = TIMELINESS.iter().map(|row| row.0).collect();
        let states: BTreeSet<&str> = states.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            labelled, states,
            "TIMELINESS (left) against Timeliness (right)"
        );
    }
}
