//! The patient's identity as the French core profiles carry it (`FRCorePatientINSProfile`,
//! `hl7.fhir.fr.core`): the INS (Identité Nationale de Santé) as the profile's identifier slice
//! of its assigning authority, only for a validated identity, and how far the identity was
//! checked as the identity reliability extension (RNIV statuses; docs/fhir.md).
use journey_proto::v1::IdentityStatus;
use serde_json::{json, Value};

/// The identity reliability extension (`fr-core-identity-reliability`).
pub const RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";
/// The RNIV's identity statuses (`identityStatus`: PROV, VALI, RECUP, QUAL).
pub const STATUS_SYSTEM: &str = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status";
/// The attributes of an identity (`comment`: DOUT, FICT…).
pub const COMMENT_SYSTEM: &str =
    "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-identity-status-comment";
/// The French identifier types (INS-NIR, INS-NIA…).
pub const FR_V2_0203: &str = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203";
/// The NIR's assigning authority: the INS of an identity whose OID was not said.
pub const NIR_OID: &str = "1.2.250.1.213.1.4.8";

/// An INS authority's slice of the profile: its identifier type and `use`.
fn slice(oid: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match oid {
        "" | NIR_OID => ("INS-NIR", "NIR définitif", "official"),
        "1.2.250.1.213.1.4.9" => ("INS-NIA", "NIR temporaire", "temp"),
        "1.2.250.1.213.1.4.10" => ("INS-NIR-TEST", "NIR TEST", "official"),
        "1.2.250.1.213.1.4.11" => ("INS-NIR-DEMO", "NIR DEMO", "official"),
        _ => return None,
    })
}

/// The INS identifier of a validated identity (`None` otherwise, or for an OID that is not an
/// INS authority): the profile's slice of its authority (`INS-NIR` when the OID was not said).
pub fn ins(status: i32, ins: &str, oid: &str) -> Option<Value> {
    if status != IdentityStatus::Validated as i32 || ins.is_empty() {
        return None;
    }
    let (code, display, usage) = slice(oid)?;
    let oid = if oid.is_empty() { NIR_OID } else { oid };
    Some(json!({
        "use": usage,
        "type": { "coding": [{ "system": FR_V2_0203, "code": code, "display": display }] },
        "system": format!("urn:oid:{oid}"),
        "value": ins,
    }))
}

/// The identity reliability extension of an identity whose status was said: validated `VALI`;
/// provisional `PROV`; doubtful and fictitious `PROV` with the attribute `DOUT` or `FICT` (the
/// RNIV allows such an identity no other status).
pub fn reliability(status: i32) -> Option<Value> {
    let (code, display, attribute) = match IdentityStatus::try_from(status).ok()? {
        IdentityStatus::Unspecified => return None,
        IdentityStatus::Validated => ("VALI", "Identité validée", None),
        IdentityStatus::Provisional => ("PROV", "Identité provisoire", None),
        IdentityStatus::Doubtful => (
            "PROV",
            "Identité provisoire",
            Some(("DOUT", "Identité douteuse")),
        ),
        IdentityStatus::Fictitious => (
            "PROV",
            "Identité provisoire",
            Some(("FICT", "Identité fictive")),
        ),
    };
    let mut parts = vec![json!({
        "url": "identityStatus",
        "valueCoding": { "system": STATUS_SYSTEM, "code": code, "display": display },
    })];
    if let Some((code, display)) = attribute {
        parts.push(json!({
            "url": "comment",
            "valueCodeableConcept": {
                "coding": [{ "system": COMMENT_SYSTEM, "code": code, "display": display }],
            },
        }));
    }
    Some(json!({ "url": RELIABILITY, "extension": parts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ins_is_carried_for_a_validated_identity_only_in_its_authority_slice() {
        let vali = IdentityStatus::Validated as i32;
        let nir = ins(vali, "279035121518989", "").unwrap();
        assert_eq!(nir["system"], "urn:oid:1.2.250.1.213.1.4.8");
        assert_eq!(
            (
                nir["use"].as_str(),
                nir["type"]["coding"][0]["code"].as_str()
            ),
            (Some("official"), Some("INS-NIR"))
        );
        let nia = ins(vali, "1", "1.2.250.1.213.1.4.9").unwrap();
        assert_eq!(
            (
                nia["use"].as_str(),
                nia["type"]["coding"][0]["code"].as_str()
            ),
            (Some("temp"), Some("INS-NIA"))
        );
        assert!(ins(vali, "1", "1.2.250.1.71.4.2.2").is_none());
        for other in [
            IdentityStatus::Unspecified,
            IdentityStatus::Provisional,
            IdentityStatus::Doubtful,
            IdentityStatus::Fictitious,
        ] {
            assert!(ins(other as i32, "279035121518989", NIR_OID).is_none());
        }
    }

    #[test]
    fn a_doubtful_or_fictitious_identity_is_provisional_with_its_attribute() {
        let r = reliability(IdentityStatus::Fictitious as i32).unwrap();
        assert_eq!(r["extension"][0]["valueCoding"]["code"], "PROV");
        assert_eq!(
            r["extension"][1]["valueCodeableConcept"]["coding"][0]["code"],
            "FICT"
        );
        assert!(reliability(IdentityStatus::Unspecified as i32).is_none());
    }
}
