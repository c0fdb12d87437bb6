//! Differential parsing: on every sample of `../shared/data/hl7v2` and on hand-made PAM-FR
//! messages (ZBE, a Z99 and an A47, 8859/15, escapes, `\n` segment ends), the fields the mapping
//! reads (MSH-9/10/12/18, EVN-2/3/6, PID-3/5/7/8/11/32, PV1-2/3/4/6/19/36/37/44/45, PV2-9/47,
//! MRG-1, ZBE-1…9, ZFM-1…5) as the `journey` binary extracts them
//! (`journey hl7 map --fields`) equal those an independent parser extracts: Python `hl7apy` from
//! PyPI (`tests/tests/hl7apy_fields.py`), in the virtual environment `.ci/run` makes.
use journey_tests::*;
use serde_json::Value;
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// Hand-made messages the samples lack: a PAM-FR movement with its ZBE and a validated INS, in
/// ISO 8859-15 (é, œ, €), escapes in names, and segments ended by `\n`.
fn hand_made(dir: &Path) -> Vec<PathBuf> {
    let latin9 = [
        &b"MSH|^~\\&|GAM|CHU-A|JOURNEY|ARS|20260301101500||ADT^A02^ADT_A02|M-1|P|2.5|||||FRA|8859/15|||2.11.2\r"[..],
        b"EVN||20260301101500|||OP1^Martin\r",
        b"PID|1||IPP7^^^CHU-A&1.2.250.1.71.4.2.7&ISO^PI~1850712345678^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||C\xe9l\xe9ste^L\xbdil^L\xbdil Marie^^^^L~C\xe9l\xe9ste^^^^^^S||19850712|F|||3 rue du Four^^Orl\xe9ans^^45000^FRA^H~^^Ajaccio^^^FRA^BDL^^2A004|||||||||||||||||||||VALI\r",
        b"PV1|1|I|UF-CARDIO^12^B^CHU-A|U||UF-URG^1^A^CHU-A||||||||||||||SEJ-9^^^CHU-A^AN||||||||||||||||4\r",
        b"ZBE|MVT-2^CHU-A|20260301101500||INSERT|N||UF-CARDIO^^^^^CHU-A^UF^^^4501|Co\xfbt 12\xa4^HN|C\r",
    ]
    .concat();
    let escapes = [
        "MSH|^~\\&|APP|FAC|R|RF|20260301101500+0100||ADT^A31^ADT_A31|M-2|P|2.8|||||||UNICODE UTF-8",
        "PID|1||P\\T\\7^^^FAC^PI||Dupont\\S\\Durand\\F\\fils^Jean\\R\\Luc\\E\\||19700101|M",
        "PV1|1|O|||||||||||||||||V1~V2",
        "",
    ]
    .join("\n");
    // A PAM-FR correction (Z99) of a historic discharge: ZBE-5/6, the times of PV1-44/45, PV2-9
    // and PV2-47, the destination facility PV1-37, ZFM.
    let z99 = [
        "MSH|^~\\&|GAM|CHU-A|JOURNEY|ARS|20260304101500||ADT^Z99^ADT_A01|M-3|P|2.5|||||FRA|UNICODE UTF-8|||2.11.2",
        "EVN||20260304101500|20260305120000|||20260303110000",
        "PID|1||IPP7^^^CHU-A&1.2.250.1.71.4.2.7&ISO^PI||DURAND^Zoé||19850712|F||||||||||||||||||||||||PROV",
        "PV1|1|I|UF-REA^3^A^CHU-A|U||UF-CARDIO^12^B^CHU-A|||||||||||||SEJ-9^^^CHU-A^AN|||||||||||||||||4|750712184|||||||20260301080000|20260303110000",
        "PV2|||||||||20260305120000||||||||||||||||||||||||||||||||||||||20260302180000",
        "ZBE|MVT-9^CHU-A|20260303110000||UPDATE|Y|A03|UF-REA^^^^^CHU-A^UF^^^4502||M",
        "ZFM|8|7|1|2",
        "",
    ]
    .join("\r");
    // A PAM-FR A47 removing a wrongly attributed INS: PID-3's INS repetition is "" (§4.4.3).
    let a47 = [
        "MSH|^~\\&|Gazelle|PAM_FR|PatientManager|PAM_FR|20210318151910||ADT^A47^ADT_A30|M-4|P|2.5^FRA^2.9||||||UNICODE UTF-8",
        "EVN||20210318151910",
        "PID|1||1900068^^^&350000121&M^PI~\"\"^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||DARK^JEANNE||19600530|F||||||||||||||||||||||||VALI",
        "MRG|260058815400233^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS",
        "",
    ]
    .join("\r");
    let files = [
        ("pam-fr-a02-latin9.hl7", latin9),
        ("escapes-utf8.hl7", escapes.into_bytes()),
        ("pam-fr-z99.hl7", z99.into_bytes()),
        ("pam-fr-a47.hl7", a47.into_bytes()),
    ];
    files
        .into_iter()
        .map(|(name, bytes)| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect()
}

/// `journey hl7 map --fields FILE`, parsed.
fn ours(file: &Path) -> Value {
    let mut command = Command::new(journey_bin());
    command.args(["hl7", "map", "--fields"]).arg(file);
    json_out(command)
}

/// hl7apy's fields of every file, in one run: file → fields.
fn theirs(files: &[PathBuf]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hl7apy_fields.py");
    let mut command = Command::new(checker_python("hl7apy", "'hl7apy==1.3.5'"));
    command.arg(script).args(files);
    json_out(command)
}

/// The JSON a command prints; panics with its error output when it fails.
fn json_out(mut command: Command) -> Value {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn our_parser_extracts_the_fields_hl7apy_extracts() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/hl7v2");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&samples)
        .expect("the HL7 samples in ../shared/data/hl7v2")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hl7"))
        .collect();
    files.sort();
    assert!(files.len() > 100, "{} samples", files.len());
    let dir = tempfile::tempdir().unwrap();
    let made = hand_made(dir.path());
    files.extend(made.iter().cloned());

    let theirs = theirs(&files);
    let mut differences = Vec::new();
    for file in &files {
        let key = file.to_str().unwrap();
        let (ours, theirs) = (ours(file), &theirs[key]);
        if &ours != theirs {
            differences.push(format!("{key}:\n  ours:   {ours}\n  hl7apy: {theirs}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} messages differ:\n{}",
        differences.len(),
        files.len(),
        differences.join("\n")
    );

    // The comparison is not vacuous: the hand-made message's ZBE, INS, reliability and
    // 8859/15 letters are among the fields compared.
    let pam = ours(&made[0]);
    assert_eq!(pam["ZBE-1"], serde_json::json!([[["MVT-2"], ["CHU-A"]]]));
    assert_eq!(pam["ZBE-4"], serde_json::json!([[["INSERT"]]]));
    assert_eq!(pam["PID-32"], serde_json::json!([[["VALI"]]]));
    assert_eq!(pam["PID-5"][0][0][0], "Céléste");
    assert_eq!(pam["PID-5"][0][1][0], "Lœil");
    assert_eq!(pam["PID-5"][0][2][0], "Lœil Marie");
    assert_eq!(pam["PID-11"][1][6][0], "BDL");
    assert_eq!(pam["PID-11"][1][8][0], "2A004");
    assert_eq!(pam["ZBE-8"][0][0][0], "Coût 12€");
    let z99 = ours(&made[2]);
    assert_eq!(z99["ZBE-5"], serde_json::json!([[["Y"]]]));
    assert_eq!(z99["ZBE-6"], serde_json::json!([[["A03"]]]));
    assert_eq!(z99["PV1-37"][0][0][0], "750712184");
    assert_eq!(z99["PV1-45"][0][0][0], "20260303110000");
    assert_eq!(z99["PV2-47"][0][0][0], "20260302180000");
    assert_eq!(z99["EVN-3"][0][0][0], "20260305120000");
    assert_eq!(z99["ZFM-4"], serde_json::json!([[["2"]]]));
    let a47 = ours(&made[3]);
    assert_eq!(a47["PID-3"][1][0][0], "\"\"", "HL7's null, as sent");
    assert_eq!(a47["MRG-1"][0][0][0], "260058815400233");
    let escaped = ours(&made[1]);
    assert_eq!(escaped["PID-5"][0][0][0], "Dupont^Durand|fils");
    assert_eq!(escaped["PID-5"][0][1][0], "Jean~Luc\\");
    assert_eq!(escaped["PV1-19"], serde_json::json!([[["V1"]], [["V2"]]]));
}
