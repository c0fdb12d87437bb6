//! Patients' consents as the read services apply them: a patient who revoked the consent to share
//! with an organisation (or with every one) is hidden from that organisation's callers, whatever
//! their role; admins and auditors see everyone. The consents are folded by the coordination read
//! model (`journey_projections::coordination`).
use crate::{
    errors,
    principal::{Principal, Role},
};
use journey_projections::{
    coordination::{queries, Coordination},
    runtime::Runner,
};
use std::collections::BTreeSet;
use tonic::Status;

/// The organisation whose consents apply to a caller: everyone's but an admin's or an auditor's.
pub fn scope(caller: Option<&Principal>) -> Option<String> {
    caller
        .filter(|p| !matches!(p.role, Role::Admin | Role::Auditor))
        .map(|p| p.organisation.clone())
}

/// Which of `patients` revoked the consent to share with `organisation`.
pub async fn revoked_among(
    consents: &Runner<Coordination>,
    organisation: &str,
    patients: impl IntoIterator<Item = &str>,
) -> Result<BTreeSet<String>, Status> {
    let prefix = consents.live_prefix();
    let mut out = BTreeSet::new();
    let distinct: BTreeSet<&str> = patients.into_iter().collect();
    for patient in distinct {
        let revoked = queries::consent_revoked(&consents.db.pool, &prefix, patient, organisation)
            .await
            .map_err(errors::read_model_error)?;
        if revoked {
            out.insert(patient.to_string());
        }
    }
    Ok(out)
}
