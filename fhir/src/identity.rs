//! The patient's identity as the French core profiles carry it (`FRCorePatientINSProfile`,
//! `hl7.fhir.fr.core`): the INS (Identité Nationale de Santé) as the profile's identifier slice
//! of its assigning authority, only for a validated identity, how far the identity was checked
//! as the identity reliability extension (RNIV statuses), the INS referential's birth place
//! (`birthPlace` with its INSEE code) and list of birth given names, and when a Patient may claim
//! the INS profile ([`Traits::complete`]; docs/fhir.md).
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

/// The INS profile (`fr-core-patient-ins`), claimed beside `fr-core-patient` by a Patient that
/// holds every trait it requires.
pub const INS_PROFILE: &str = "fr-core-patient-ins";
/// The international birth place extension FR Core Patient slices as `birthPlace` (an Address).
pub const BIRTH_PLACE: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";
/// The INSEE code of an address (`inseeCode`, a Coding).
pub const INSEE_CODE: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code";
/// The list of given names of the birth certificate, on the official name (a string).
pub const BIRTH_LIST_GIVEN_NAME: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-birth-list-given-name";
/// The INSEE codes of the communes (with overseas), the binding of `inseeCode`.
pub const COMMUNE_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM";
/// The INSEE codes of the countries (99xxx): the birth place of a birth abroad.
pub const COUNTRY_SYSTEM: &str = "https://mos.esante.gouv.fr/NOS/TRE_R20-Pays/FHIR/TRE-R20-Pays";

/// The `birthPlace` extension of an INSEE code (empty: none): the address holds the code alone,
/// a commune's from TRE-R13, a country's (`99…`, a birth abroad) from TRE-R20.
pub fn birth_place(code: &str) -> Option<Value> {
    if code.is_empty() {
        return None;
    }
    let system = if code.starts_with("99") {
        COUNTRY_SYSTEM
    } else {
        COMMUNE_SYSTEM
    };
    Some(json!({
        "url": BIRTH_PLACE,
        "valueAddress": {
            "extension": [{
                "url": INSEE_CODE,
                "valueCoding": { "system": system, "code": code },
            }],
        },
    }))
}

/// The `birth-list-given-name` extension of the official name (empty list: none).
pub fn birth_given_names(list: &str) -> Option<Value> {
    (!list.trim().is_empty()).then(|| json!({ "url": BIRTH_LIST_GIVEN_NAME, "valueString": list }))
}

/// What the INS profile requires of a Patient beyond FR Core Patient, as the identity gives it.
pub struct Traits<'a> {
    /// The INS identifier ([`ins`]): a validated identity with an INS of an INS authority.
    pub ins: Option<&'a Value>,
    pub family: &'a str,
    pub given: &'a str,
    pub birth_given_names: &'a str,
    pub birth_date: &'a str,
    pub birth_place: &'a str,
    /// The Patient's `gender`.
    pub gender: Option<&'a str>,
}

impl Traits<'_> {
    /// Whether the Patient holds every element the INS profile requires: an INS slice (the
    /// identity validated), `gender` male, female or unknown (`fr-core-vs-patient-gender-INS`),
    /// `birthDate`, the official name's family, one given name and the list of birth given
    /// names, and the birth place's INSEE code.
    pub fn complete(&self) -> bool {
        self.ins.is_some()
            && matches!(self.gender, Some("male" | "female" | "unknown"))
            && [
                self.family,
                self.given,
                self.birth_given_names,
                self.birth_date,
                self.birth_place,
            ]
            .iter()
            .all(|t| !t.trim().is_empty())
    }
}

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
    fn a_birth_place_codes_a_commune_or_a_country() {
        let ajaccio = birth_place("2A004").unwrap();
        assert_eq!(ajaccio["url"], BIRTH_PLACE);
        let coding = &ajaccio["valueAddress"]["extension"][0];
        assert_eq!(coding["url"], INSEE_CODE);
        assert_eq!(coding["valueCoding"]["system"], COMMUNE_SYSTEM);
        assert_eq!(coding["valueCoding"]["code"], "2A004");
        let morocco = birth_place("99350").unwrap();
        assert_eq!(
            morocco["valueAddress"]["extension"][0]["valueCoding"]["system"],
            COUNTRY_SYSTEM
        );
        assert!(birth_place("").is_none());
        assert!(birth_given_names(" ").is_none());
    }

    #[test]
    fn the_ins_profile_wants_every_trait() {
        let nir = ins(IdentityStatus::Validated as i32, "279035121518989", "").unwrap();
        let full = || Traits {
            ins: Some(&nir),
            family: "MARTIN",
            given: "Jeanne",
            birth_given_names: "Jeanne Marie",
            birth_date: "1941-03-02",
            birth_place: "75056",
            gender: Some("female"),
        };
        assert!(full().complete());
        assert!(!Traits {
            ins: None,
            ..full()
        }
        .complete());
        assert!(!Traits {
            birth_place: "",
            ..full()
        }
        .complete());
        assert!(!Traits {
            birth_given_names: "",
            ..full()
        }
        .complete());
        assert!(!Traits {
            birth_date: "",
            ..full()
        }
        .complete());
        assert!(!Traits {
            gender: Some("other"),
            ..full()
        }
        .complete());
        assert!(!Traits {
            gender: None,
            ..full()
        }
        .complete());
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
