//! Who the message is about: the patient id (PID-3 or MRG-1 by assigning authority), the identity
//! (PID-5/7/8, PD1-4), the INS with its OID, kept only for a validated identity (PID-32, table 0445
//! as PAM-FR specialises it), the INS referential's birth place (PID-11 of type BDL) and list of
//! birth given names (PID-5.3 of the legal name), and A47's change or removal of the INS.
use crate::ack::{ErrorCode, Problem};
use crate::message::{Message, Segment};
use chrono::NaiveDate;
use journey_proto::v1::{
    IdentityStatus, IdentityUpdated, PatientRegistered, Professional, Role, Sex,
};

use super::Settings;

/// The INS (Identité Nationale de Santé) assigning authorities in PID-3, by OID: the NIR, the NIA,
/// and the test and demonstration NIRs.
const INS_OIDS: &[&str] = &[
    "1.2.250.1.213.1.4.8",
    "1.2.250.1.213.1.4.9",
    "1.2.250.1.213.1.4.10",
    "1.2.250.1.213.1.4.11",
];

/// HL7's explicit null: a field sent as `""` deletes the value (A47 removing an INS).
const NULL: &str = "\"\"";

/// The PID-3 identifier of the configured assigning authority (CX-4: its namespace id or its
/// universal id), or the first repetition when none is configured. Never a guess between two.
pub(super) fn patient_id(m: &Message, s: &Settings) -> Result<String, Problem> {
    pid3_of(m, "PID", s).and_then(|id| checked_id(id, "PID-3"))
}

/// MRG-1, the retired identifier of a merge, chosen as PID-3 is.
pub(super) fn retired_patient(m: &Message, s: &Settings) -> Result<String, Problem> {
    let id = pid3_of(m, "MRG", s).map_err(|mut p| {
        p.field = Some("MRG-1".into());
        p.text = p.text.replace("PID-3", "MRG-1");
        p
    })?;
    checked_id(id, "MRG-1")
}

/// PID-3 (or MRG-1) by authority.
fn pid3_of(m: &Message, seg: &str, s: &Settings) -> Result<String, Problem> {
    let field = if seg == "MRG" { 1 } else { 3 };
    let segment = required_segment(m, seg)?;
    let reps = segment.repetitions(m, field);
    let found = match &s.patient_id_authority {
        None => (reps > 0).then(|| segment.get(m, field, 1, 1, 1)),
        Some(authority) => (1..=reps)
            .find(|r| {
                segment.get(m, field, *r, 4, 1) == *authority
                    || segment.get(m, field, *r, 4, 2) == *authority
            })
            .map(|r| segment.get(m, field, r, 1, 1)),
    };
    match found.filter(|id| !id.is_empty()) {
        Some(id) => Ok(id),
        None => Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            "PID-3",
            match &s.patient_id_authority {
                Some(a) => format!(
                    "PID-3 holds no identifier of the assigning authority {a:?} (--hl7-patient-id-authority)"
                ),
                None => "PID-3 holds no patient identifier".to_string(),
            },
        )),
    }
}

fn required_segment<'a>(m: &'a Message, seg: &str) -> Result<&'a Segment, Problem> {
    m.segment(seg).ok_or_else(|| {
        Problem::new(
            ErrorCode::SegmentSequence,
            seg,
            format!("the {seg} segment is required in this message"),
        )
    })
}

fn checked_id(id: String, field: &str) -> Result<String, Problem> {
    let ok = id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(Problem::new(
            ErrorCode::DataType,
            field,
            format!("{field} identifier {id:?} must be at most 64 letters, digits or . _ : -"),
        ))
    }
}

/// PID-5/7/8, PD1-4 (the GP), PID-32 (the identity status) and the INS with its OID.
pub(super) fn registration(m: &Message) -> Result<PatientRegistered, Problem> {
    let birth = m.value("PID", 7);
    let birth_date = if birth.len() >= 8 {
        let d = &birth[..8];
        NaiveDate::parse_from_str(d, "%Y%m%d")
            .map(|d| d.format("%Y-%m-%d").to_string())
            .map_err(|_| {
                Problem::new(
                    ErrorCode::DataType,
                    "PID-7",
                    format!("PID-7 {birth:?} is not a date (YYYYMMDD)"),
                )
            })?
    } else {
        String::new()
    };
    let gp_id = m.get("PD1", 4, 1, 1, 1);
    let gp = (!gp_id.is_empty()).then(|| Professional {
        id: gp_id,
        role: Role::Gp as i32,
        name: [m.get("PD1", 4, 1, 3, 1), m.get("PD1", 4, 1, 2, 1)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        organisation: String::new(),
        ..Default::default()
    });
    let status = identity_status(m);
    let (ins, ins_oid) = match pid_ins(m) {
        Some((ins, oid)) if status == IdentityStatus::Validated && ins != NULL => (ins, oid),
        _ => Default::default(),
    };
    Ok(PatientRegistered {
        ins,
        local_id: m.get("PID", 3, 1, 1, 1),
        birth_date,
        sex: match m.value("PID", 8).as_str() {
            "F" => Sex::Female,
            "M" => Sex::Male,
            "O" | "A" => Sex::Other,
            "U" | "N" => Sex::Unknown,
            _ => Sex::Unspecified,
        } as i32,
        gp,
        family_name: m.get("PID", 5, 1, 1, 1),
        given_name: m.get("PID", 5, 1, 2, 1),
        ins_oid,
        identity_status: status as i32,
        birth_place_code: birth_place(m),
        birth_given_names: birth_given_names(m),
    })
}

/// Whether the message follows IHE PAM-FR (MSH-17 = FRA, or FRA as MSH-12's country): only
/// there do XAD-9 and XPN-3 hold the INS referential's birth place and given names.
fn pam_fr(m: &Message) -> bool {
    m.value("MSH", 17) == "FRA" || m.get("MSH", 12, 1, 2, 1) == "FRA"
}

/// The birth place as PAM-FR carries it: the PID-11 repetition of address type BDL (birth
/// delivery location, XAD-7), its XAD-9 the INSEE code of the commune of birth, or of the
/// country for a birth abroad. Checked by the log (a malformed code is refused, ERR naming
/// PID-11: [`source_field`]). PID-23 (birth place as free text) is not read.
fn birth_place(m: &Message) -> String {
    let Some(pid) = m.segment("PID").filter(|_| pam_fr(m)) else {
        return String::new();
    };
    (1..=pid.repetitions(m, 11))
        .find(|r| pid.get(m, 11, *r, 7, 1) == "BDL")
        .map(|r| pid.get(m, 11, r, 9, 1))
        .filter(|code| code != NULL)
        .unwrap_or_default()
}

/// The list of birth given names as PAM-FR carries it: PID-5.3 of the legal name, the PID-5
/// repetition of name type L (XPN-7), every given name of the birth certificate in their order,
/// separated by spaces. Only there: elsewhere XPN-3 holds the second and further names alone.
fn birth_given_names(m: &Message) -> String {
    let Some(pid) = m.segment("PID").filter(|_| pam_fr(m)) else {
        return String::new();
    };
    (1..=pid.repetitions(m, 5))
        .find(|r| pid.get(m, 5, *r, 7, 1) == "L")
        .map(|r| pid.get(m, 5, r, 3, 1))
        .filter(|names| names != NULL)
        .map(|names| names.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The message field an identity event's field was read from, for the ERR segment of a refusal
/// by the log (`patient_registered.birth_place_code` → `PID-11`): the event fields this module
/// fills from one field of the message.
pub fn source_field(event_field: &str) -> Option<&'static str> {
    let (event, field) = event_field.rsplit_once('.')?;
    if !(event.ends_with("patient_registered") || event.ends_with("identity_updated")) {
        return None;
    }
    Some(match field {
        "birth_date" => "PID-7",
        "sex" => "PID-8",
        "identity_status" => "PID-32",
        "birth_place_code" => "PID-11",
        "birth_given_names" => "PID-5",
        _ => return None,
    })
}

/// The identity as a registration reads it, as an update (A31, A08).
pub(super) fn update(m: &Message) -> Result<IdentityUpdated, Problem> {
    let r = registration(m)?;
    Ok(IdentityUpdated {
        ins: r.ins,
        birth_date: r.birth_date,
        sex: r.sex,
        gp: r.gp,
        family_name: r.family_name,
        given_name: r.given_name,
        ins_oid: r.ins_oid,
        identity_status: r.identity_status,
        ins_removed: false,
        birth_place_code: r.birth_place_code,
        birth_given_names: r.birth_given_names,
    })
}

/// A47 (PAM-FR §4.4.2–4.4.4): MRG-1 holds the INS being replaced; PID-3 the new INS (kept only
/// for a validated identity, else removed: an INS is held for a validated identity only), or `""`
/// with the INS's OID to remove a wrongly attributed INS. The rest of the identity as in A31.
/// Another identifier in MRG-1 (an IPP) is not changed here: that is a merge (A40).
pub(super) fn ins_change(m: &Message) -> Result<IdentityUpdated, Problem> {
    let mrg = required_segment(m, "MRG")?;
    if ins_repetition(m, mrg, 1).is_none() {
        return Err(Problem::new(
            ErrorCode::UnsupportedEventCode,
            "MRG-1",
            "ADT^A47 is mapped for a change or removal of the INS (MRG-1 holding an identifier of an INS authority, 1.2.250.1.213.1.4.8 to .11); another identifier is not changed here: merge patients with A40",
        ));
    }
    let Some((ins, oid)) = pid_ins(m) else {
        return Err(Problem::new(
            ErrorCode::RequiredFieldMissing,
            "PID-3",
            "an A47 of an INS carries in PID-3 the new INS, or \"\" with the INS's OID to remove it (PAM-FR §4.4)",
        ));
    };
    let mut u = update(m)?;
    if ins == NULL || u.identity_status != IdentityStatus::Validated as i32 {
        u.ins = String::new();
        u.ins_oid = String::new();
        u.ins_removed = true;
    } else {
        u.ins = ins;
        u.ins_oid = oid;
    }
    Ok(u)
}

/// The INS of PID-3 and its OID (the repetition whose assigning authority, CX-4.2, is an INS
/// OID), whatever the identity status.
fn pid_ins(m: &Message) -> Option<(String, String)> {
    let pid = m.segment("PID")?;
    let r = ins_repetition(m, pid, 3)?;
    let value = pid.get(m, 3, r, 1, 1);
    (!value.is_empty()).then(|| (value, pid.get(m, 3, r, 4, 2)))
}

fn ins_repetition(m: &Message, segment: &Segment, field: usize) -> Option<usize> {
    (1..=segment.repetitions(m, field))
        .find(|r| INS_OIDS.contains(&segment.get(m, field, *r, 4, 2).as_str()))
}

/// PID-32, table 0445 as PAM-FR specialises it: `PROV` provisional, `VALI` validated, `FICT` (an
/// attribute, in any repetition) fictitious, a doubt (`DOUT`, a potential or proven duplicate
/// `DPOT`/`DOUA`/`DOUB`, a collision `COLP`/`COLV`, a usurpation `USUR`) doubtful; `VIDE`, nothing
/// or another value: not said.
fn identity_status(m: &Message) -> IdentityStatus {
    let Some(pid) = m.segment("PID") else {
        return IdentityStatus::Unspecified;
    };
    let values: Vec<String> = (1..=pid.repetitions(m, 32))
        .map(|r| pid.get(m, 32, r, 1, 1))
        .collect();
    let has = |codes: &[&str]| values.iter().any(|v| codes.contains(&v.as_str()));
    if has(&["FICT"]) {
        IdentityStatus::Fictitious
    } else if has(&["DOUT", "DPOT", "DOUA", "DOUB", "COLP", "COLV", "USUR"]) {
        IdentityStatus::Doubtful
    } else if has(&["VALI"]) {
        IdentityStatus::Validated
    } else if has(&["PROV"]) {
        IdentityStatus::Provisional
    } else {
        IdentityStatus::Unspecified
    }
}
