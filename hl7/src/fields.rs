//! The fields the mapping reads, as the parser extracts them: what `journey hl7 map --fields`
//! prints and what the differential test (tests/tests/hl7_differential.rs) compares with an
//! independent parser, Python `hl7apy`.
use crate::message::Message;

/// The fields compared: MSH-9/10/12/18, EVN-2/3/6, PID-3/5/7/8/11/32, PV1-2/3/4/6/19/36/37/44/45,
/// PV2-9/47, MRG-1, ZBE-1…9 (IHE PAM's movement segment) and ZFM-1…5 (PAM-FR's PMSI modes), each
/// of the first segment of its name.
pub const COMPARED: &[(&str, &[usize])] = &[
    ("MSH", &[9, 10, 12, 18]),
    ("EVN", &[2, 3, 6]),
    ("PID", &[3, 5, 7, 8, 11, 32]),
    ("PV1", &[2, 3, 4, 6, 19, 36, 37, 44, 45]),
    ("PV2", &[9, 47]),
    ("MRG", &[1]),
    ("ZBE", &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
    ("ZFM", &[1, 2, 3, 4, 5]),
];

/// One field: its repetitions, components and subcomponents, unescaped.
pub type Tree = Vec<Vec<Vec<String>>>;

/// Every compared field that holds something (`PID-3` → its tree), in [`COMPARED`] order,
/// trailing empty subcomponents, components and repetitions left out (a sender may send them or
/// not: the same value).
pub fn extracted(m: &Message) -> Vec<(String, Tree)> {
    let mut out = Vec::new();
    for (name, fields) in COMPARED {
        let Some(segment) = m.segment(name) else {
            continue;
        };
        for &field in *fields {
            let tree = trimmed(segment.tree(m, field));
            if !tree.is_empty() {
                out.push((format!("{name}-{field}"), tree));
            }
        }
    }
    out
}

fn trimmed(tree: Tree) -> Tree {
    let mut reps: Tree = tree
        .into_iter()
        .map(|rep| {
            let mut comps: Vec<Vec<String>> = rep
                .into_iter()
                .map(|mut subs| {
                    trim_end(&mut subs, |s| s.is_empty());
                    subs
                })
                .collect();
            trim_end(&mut comps, Vec::is_empty);
            comps
        })
        .collect();
    trim_end(&mut reps, Vec::is_empty);
    reps
}

fn trim_end<T>(items: &mut Vec<T>, empty: impl Fn(&T) -> bool) {
    while items.last().is_some_and(&empty) {
        items.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_components_and_escapes_trailing_empties_left_out() {
        let m = Message::parse(
            b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|42|P|2.5\rPID|1||7^^^H&1.2&ISO~8^^^N||Dup\\S\\ont^Jean^^|||\r",
        )
        .unwrap();
        let got = extracted(&m);
        assert_eq!(got[0].0, "MSH-9");
        assert_eq!(
            got[0].1,
            vec![vec![vec!["ADT"], vec!["A01"], vec!["ADT_A01"]]]
        );
        let pid3 = &got.iter().find(|(n, _)| n == "PID-3").unwrap().1;
        assert_eq!(
            pid3,
            &vec![
                vec![vec!["7"], vec![], vec![], vec!["H", "1.2", "ISO"]],
                vec![vec!["8"], vec![], vec![], vec!["N"]],
            ]
        );
        let pid5 = &got.iter().find(|(n, _)| n == "PID-5").unwrap().1;
        assert_eq!(pid5, &vec![vec![vec!["Dup^ont"], vec!["Jean"]]]);
        assert!(!got.iter().any(|(n, _)| n == "PID-7"));
    }
}
