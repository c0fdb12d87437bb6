//! Charlson comorbidity index (docs/design.md §5).
//!
//! Diagnoses are mapped to the 17 Charlson conditions with the ICD-10 coding algorithm of
//! Quan H, Sundararajan V, Halfon P, et al. "Coding algorithms for defining comorbidities in
//! ICD-9-CM and ICD-10 administrative data", Med Care 2005;43(11):1130-9 (table 1, ICD-10 column),
//! and weighted with the original weights of Charlson ME et al., J Chronic Dis 1987;40(5):373-83.
//! The SNOMED CT codes that Synthea records for the same conditions map too.
//!
//! The index applies the Charlson hierarchy: diabetes with chronic complication supersedes diabetes
//! without, moderate/severe liver disease supersedes mild liver disease, and metastatic solid tumour
//! supersedes any malignancy. Each condition counts once. Pure functions, no IO.

/// One of the 17 Charlson comorbid conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Comorbidity {
    MyocardialInfarction,
    CongestiveHeartFailure,
    PeripheralVascular,
    Cerebrovascular,
    Dementia,
    ChronicPulmonary,
    Rheumatic,
    PepticUlcer,
    MildLiver,
    DiabetesUncomplicated,
    DiabetesComplicated,
    HemiplegiaParaplegia,
    Renal,
    Malignancy,
    ModerateSevereLiver,
    MetastaticTumour,
    Hiv,
}

impl Comorbidity {
    /// Every condition, in declaration order.
    pub const ALL: [Comorbidity; 17] = [
        Comorbidity::MyocardialInfarction,
        Comorbidity::CongestiveHeartFailure,
        Comorbidity::PeripheralVascular,
        Comorbidity::Cerebrovascular,
        Comorbidity::Dementia,
        Comorbidity::ChronicPulmonary,
        Comorbidity::Rheumatic,
        Comorbidity::PepticUlcer,
        Comorbidity::MildLiver,
        Comorbidity::DiabetesUncomplicated,
        Comorbidity::DiabetesComplicated,
        Comorbidity::HemiplegiaParaplegia,
        Comorbidity::Renal,
        Comorbidity::Malignancy,
        Comorbidity::ModerateSevereLiver,
        Comorbidity::MetastaticTumour,
        Comorbidity::Hiv,
    ];

    /// The Charlson 1987 weight.
    pub const fn weight(self) -> u32 {
        match self {
            Comorbidity::MyocardialInfarction
            | Comorbidity::CongestiveHeartFailure
            | Comorbidity::PeripheralVascular
            | Comorbidity::Cerebrovascular
            | Comorbidity::Dementia
            | Comorbidity::ChronicPulmonary
            | Comorbidity::Rheumatic
            | Comorbidity::PepticUlcer
            | Comorbidity::MildLiver
            | Comorbidity::DiabetesUncomplicated => 1,
            Comorbidity::DiabetesComplicated
            | Comorbidity::HemiplegiaParaplegia
            | Comorbidity::Renal
            | Comorbidity::Malignancy => 2,
            Comorbidity::ModerateSevereLiver => 3,
            Comorbidity::MetastaticTumour | Comorbidity::Hiv => 6,
        }
    }

    /// The condition this one supersedes under the Charlson hierarchy, if any.
    pub const fn supersedes(self) -> Option<Comorbidity> {
        match self {
            Comorbidity::DiabetesComplicated => Some(Comorbidity::DiabetesUncomplicated),
            Comorbidity::ModerateSevereLiver => Some(Comorbidity::MildLiver),
            Comorbidity::MetastaticTumour => Some(Comorbidity::Malignancy),
            _ => None,
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

use Comorbidity::*;

/// An inclusive range of ICD-10 category/subcategory prefixes (no dot, uppercase), all of the
/// same length: a code matches when its first `from.len()` characters lie in `from..=to`.
/// A range with `from == to` is a single prefix.
struct IcdRange {
    from: &'static str,
    to: &'static str,
    condition: Comorbidity,
}

const fn r(from: &'static str, to: &'static str, condition: Comorbidity) -> IcdRange {
    IcdRange {
        from,
        to,
        condition,
    }
}

const fn p(prefix: &'static str, condition: Comorbidity) -> IcdRange {
    IcdRange {
        from: prefix,
        to: prefix,
        condition,
    }
}

/// Quan et al. 2005, table 1, enhanced ICD-10 Charlson coding algorithm ("x" = any subcode).
/// No prefix of one condition is a prefix of another condition's (checked by a test), so a code
/// maps to at most one condition.
const ICD10: &[IcdRange] = &[
    // Myocardial infarction: I21.x, I22.x, I25.2
    p("I21", MyocardialInfarction),
    p("I22", MyocardialInfarction),
    p("I252", MyocardialInfarction),
    // Congestive heart failure: I09.9, I11.0, I13.0, I13.2, I25.5, I42.0, I42.5–I42.9, I43.x,
    // I50.x, P29.0
    p("I099", CongestiveHeartFailure),
    p("I110", CongestiveHeartFailure),
    p("I130", CongestiveHeartFailure),
    p("I132", CongestiveHeartFailure),
    p("I255", CongestiveHeartFailure),
    p("I420", CongestiveHeartFailure),
    r("I425", "I429", CongestiveHeartFailure),
    p("I43", CongestiveHeartFailure),
    p("I50", CongestiveHeartFailure),
    p("P290", CongestiveHeartFailure),
    // Peripheral vascular disease: I70.x, I71.x, I73.1, I73.8, I73.9, I77.1, I79.0, I79.2, K55.1,
    // K55.8, K55.9, Z95.8, Z95.9
    p("I70", PeripheralVascular),
    p("I71", PeripheralVascular),
    p("I731", PeripheralVascular),
    p("I738", PeripheralVascular),
    p("I739", PeripheralVascular),
    p("I771", PeripheralVascular),
    p("I790", PeripheralVascular),
    p("I792", PeripheralVascular),
    p("K551", PeripheralVascular),
    p("K558", PeripheralVascular),
    p("K559", PeripheralVascular),
    p("Z958", PeripheralVascular),
    p("Z959", PeripheralVascular),
    // Cerebrovascular disease: G45.x, G46.x, H34.0, I60.x–I69.x
    p("G45", Cerebrovascular),
    p("G46", Cerebrovascular),
    p("H340", Cerebrovascular),
    r("I60", "I69", Cerebrovascular),
    // Dementia: F00.x–F03.x, F05.1, G30.x, G31.1
    r("F00", "F03", Dementia),
    p("F051", Dementia),
    p("G30", Dementia),
    p("G311", Dementia),
    // Chronic pulmonary disease: I27.8, I27.9, J40.x–J47.x, J60.x–J67.x, J68.4, J70.1, J70.3
    p("I278", ChronicPulmonary),
    p("I279", ChronicPulmonary),
    r("J40", "J47", ChronicPulmonary),
    r("J60", "J67", ChronicPulmonary),
    p("J684", ChronicPulmonary),
    p("J701", ChronicPulmonary),
    p("J703", ChronicPulmonary),
    // Rheumatic disease: M05.x, M06.x, M31.5, M32.x–M34.x, M35.1, M35.3, M36.0
    p("M05", Rheumatic),
    p("M06", Rheumatic),
    p("M315", Rheumatic),
    r("M32", "M34", Rheumatic),
    p("M351", Rheumatic),
    p("M353", Rheumatic),
    p("M360", Rheumatic),
    // Peptic ulcer disease: K25.x–K28.x
    r("K25", "K28", PepticUlcer),
    // Mild liver disease: B18.x, K70.0–K70.3, K70.9, K71.3–K71.5, K71.7, K73.x, K74.x, K76.0,
    // K76.2–K76.4, K76.8, K76.9, Z94.4
    p("B18", MildLiver),
    r("K700", "K703", MildLiver),
    p("K709", MildLiver),
    r("K713", "K715", MildLiver),
    p("K717", MildLiver),
    p("K73", MildLiver),
    p("K74", MildLiver),
    p("K760", MildLiver),
    r("K762", "K764", MildLiver),
    p("K768", MildLiver),
    p("K769", MildLiver),
    p("Z944", MildLiver),
    // Diabetes without chronic complication: E10.0, E10.1, E10.6, E10.8, E10.9 and the same
    // subcodes of E11, E12, E13, E14
    p("E100", DiabetesUncomplicated),
    p("E101", DiabetesUncomplicated),
    p("E106", DiabetesUncomplicated),
    p("E108", DiabetesUncomplicated),
    p("E109", DiabetesUncomplicated),
    p("E110", DiabetesUncomplicated),
    p("E111", DiabetesUncomplicated),
    p("E116", DiabetesUncomplicated),
    p("E118", DiabetesUncomplicated),
    p("E119", DiabetesUncomplicated),
    p("E120", DiabetesUncomplicated),
    p("E121", DiabetesUncomplicated),
    p("E126", DiabetesUncomplicated),
    p("E128", DiabetesUncomplicated),
    p("E129", DiabetesUncomplicated),
    p("E130", DiabetesUncomplicated),
    p("E131", DiabetesUncomplicated),
    p("E136", DiabetesUncomplicated),
    p("E138", DiabetesUncomplicated),
    p("E139", DiabetesUncomplicated),
    p("E140", DiabetesUncomplicated),
    p("E141", DiabetesUncomplicated),
    p("E146", DiabetesUncomplicated),
    p("E148", DiabetesUncomplicated),
    p("E149", DiabetesUncomplicated),
    // Diabetes with chronic complication: E10.2–E10.5, E10.7 and the same subcodes of E11, E12,
    // E13, E14
    r("E102", "E105", DiabetesComplicated),
    p("E107", DiabetesComplicated),
    r("E112", "E115", DiabetesComplicated),
    p("E117", DiabetesComplicated),
    r("E122", "E125", DiabetesComplicated),
    p("E127", DiabetesComplicated),
    r("E132", "E135", DiabetesComplicated),
    p("E137", DiabetesComplicated),
    r("E142", "E145", DiabetesComplicated),
    p("E147", DiabetesComplicated),
    // Hemiplegia or paraplegia: G04.1, G11.4, G80.1, G80.2, G81.x, G82.x, G83.0–G83.4, G83.9
    p("G041", HemiplegiaParaplegia),
    p("G114", HemiplegiaParaplegia),
    p("G801", HemiplegiaParaplegia),
    p("G802", HemiplegiaParaplegia),
    p("G81", HemiplegiaParaplegia),
    p("G82", HemiplegiaParaplegia),
    r("G830", "G834", HemiplegiaParaplegia),
    p("G839", HemiplegiaParaplegia),
    // Renal disease: I12.0, I13.1, N03.2–N03.7, N05.2–N05.7, N18.x, N19.x, N25.0, Z49.0–Z49.2,
    // Z94.0, Z99.2
    p("I120", Renal),
    p("I131", Renal),
    r("N032", "N037", Renal),
    r("N052", "N057", Renal),
    p("N18", Renal),
    p("N19", Renal),
    p("N250", Renal),
    r("Z490", "Z492", Renal),
    p("Z940", Renal),
    p("Z992", Renal),
    // Any malignancy, including lymphoma and leukaemia, except malignant neoplasm of skin:
    // C00.x–C26.x, C30.x–C34.x, C37.x–C41.x, C43.x, C45.x–C58.x, C60.x–C76.x, C81.x–C85.x, C88.x,
    // C90.x–C97.x
    r("C00", "C26", Malignancy),
    r("C30", "C34", Malignancy),
    r("C37", "C41", Malignancy),
    p("C43", Malignancy),
    r("C45", "C58", Malignancy),
    r("C60", "C76", Malignancy),
    r("C81", "C85", Malignancy),
    p("C88", Malignancy),
    r("C90", "C97", Malignancy),
    // Moderate or severe liver disease: I85.0, I85.9, I86.4, I98.2, K70.4, K71.1, K72.1, K72.9,
    // K76.5, K76.6, K76.7
    p("I850", ModerateSevereLiver),
    p("I859", ModerateSevereLiver),
    p("I864", ModerateSevereLiver),
    p("I982", ModerateSevereLiver),
    p("K704", ModerateSevereLiver),
    p("K711", ModerateSevereLiver),
    p("K721", ModerateSevereLiver),
    p("K729", ModerateSevereLiver),
    r("K765", "K767", ModerateSevereLiver),
    // Metastatic solid tumour: C77.x–C80.x
    r("C77", "C80", MetastaticTumour),
    // AIDS/HIV: B20.x–B22.x, B24.x
    r("B20", "B22", Hiv),
    p("B24", Hiv),
];

/// SNOMED CT codes recorded by Synthea (its module catalogue, the condition files in
/// shared/data/synthea-*, and the HL7 v2 samples) for the same conditions. Only codes whose meaning
/// clearly falls within one of Quan's ICD-10 sets are mapped.
///
/// Deliberately not mapped: 53741008 Coronary arteriosclerosis / Coronary heart disease (I25.1, not
/// old MI); 414545008 Ischemic heart disease; 4557003 Preinfarction syndrome (I20.0);
/// 15777000 / 714628002 Prediabetes; 80394007 Hyperglycemia; 237602007 Metabolic syndrome X;
/// 126906006 Neoplasm of prostate (benign or malignant); 92691004 Carcinoma in situ of prostate
/// (D07.5); 200936003 Lupus erythematosus (cutaneous or systemic: not only M32);
/// 128188000 Cerebral palsy (only G80.1/G80.2 count); 190905008 Cystic fibrosis (E84);
/// 204949001 Renal dysplasia (Q61.4); 698306007 Awaiting transplantation of kidney;
/// 213150003 Kidney transplant failure and rejection (T86.1); 40055000 Chronic sinusitis (J32);
/// 410429000 Cardiac arrest; 49436004 Atrial fibrillation; 59621000 Hypertension.
const SNOMED: &[(&str, Comorbidity)] = &[
    // Myocardial infarction
    ("22298006", MyocardialInfarction), // Myocardial infarction (disorder)
    ("401303003", MyocardialInfarction), // Acute ST segment elevation myocardial infarction (disorder)
    ("401314000", MyocardialInfarction), // Acute non-ST segment elevation myocardial infarction (disorder)
    ("129574000", MyocardialInfarction), // Postoperative myocardial infarction (disorder)
    ("399211009", MyocardialInfarction), // History of myocardial infarction (situation) — I25.2 old MI
    // Congestive heart failure
    ("88805009", CongestiveHeartFailure), // Chronic congestive heart failure (disorder)
    ("84114007", CongestiveHeartFailure), // Heart failure (disorder)
    // Cerebrovascular disease
    ("230690007", Cerebrovascular), // Cerebrovascular accident / Stroke (disorder)
    ("422504002", Cerebrovascular), // Ischemic stroke (disorder) — HL7 v2 samples
    // Dementia
    ("26929004", Dementia),  // Alzheimer's disease (disorder)
    ("230265002", Dementia), // Familial Alzheimer's disease of early onset (disorder)
    // Chronic pulmonary disease
    ("13645005", ChronicPulmonary), // Chronic obstructive lung disease (disorder)
    ("185086009", ChronicPulmonary), // Chronic obstructive bronchitis (disorder)
    ("87433001", ChronicPulmonary), // Pulmonary emphysema (disorder)
    ("195967001", ChronicPulmonary), // Asthma (disorder) — J45
    ("233678006", ChronicPulmonary), // Childhood asthma (disorder) — J45
    // Rheumatic disease
    ("69896004", Rheumatic), // Rheumatoid arthritis (disorder)
    // Mild liver disease
    ("128302006", MildLiver), // Chronic hepatitis C (disorder) — B18.2
    ("61977001", MildLiver),  // Chronic type B viral hepatitis (disorder) — B18.1
    // Diabetes without chronic complication
    ("44054006", DiabetesUncomplicated), // Diabetes mellitus type 2 (disorder)
    ("46635009", DiabetesUncomplicated), // Diabetes mellitus type 1 (disorder)
    ("427089005", DiabetesUncomplicated), // Diabetes mellitus due to cystic fibrosis (disorder) — E13
    // Diabetes with chronic complication
    ("127013003", DiabetesComplicated), // Disorder of kidney due to diabetes mellitus / Diabetic renal disease (disorder)
    ("90781000119102", DiabetesComplicated), // Microalbuminuria due to type 2 diabetes mellitus (disorder)
    ("157141000119108", DiabetesComplicated), // Proteinuria due to type 2 diabetes mellitus (disorder)
    ("368581000119106", DiabetesComplicated), // Neuropathy due to type 2 diabetes mellitus (disorder)
    ("422034002", DiabetesComplicated), // Diabetic retinopathy associated with type II diabetes mellitus (disorder)
    ("1551000119108", DiabetesComplicated), // Nonproliferative diabetic retinopathy due to type 2 diabetes mellitus (disorder)
    ("1501000119109", DiabetesComplicated), // Proliferative diabetic retinopathy due to type II diabetes mellitus (disorder)
    ("97331000119101", DiabetesComplicated), // Macular edema and retinopathy due to type 2 diabetes mellitus (disorder)
    ("60951000119105", DiabetesComplicated), // Blindness due to type 2 diabetes mellitus (disorder)
    // Hemiplegia or paraplegia
    ("698754002", HemiplegiaParaplegia), // Chronic paralysis due to lesion of spinal cord (disorder) — G82
    // Renal disease
    ("431855005", Renal), // Chronic kidney disease stage 1 (disorder)
    ("431856006", Renal), // Chronic kidney disease stage 2 (disorder)
    ("433144002", Renal), // Chronic kidney disease stage 3 (disorder)
    ("431857002", Renal), // Chronic kidney disease stage 4 (disorder)
    ("46177005", Renal),  // End-stage renal disease (disorder)
    ("709044004", Renal), // Chronic kidney disease (disorder)
    ("161665007", Renal), // History of renal transplant (situation) — Z94.0
    // Any malignancy
    ("254637007", Malignancy),      // Non-small cell lung cancer (disorder)
    ("424132000", Malignancy),      // Non-small cell carcinoma of lung, TNM stage 1 (disorder)
    ("425048006", Malignancy),      // Non-small cell carcinoma of lung, TNM stage 2 (disorder)
    ("422968005", Malignancy),      // Non-small cell carcinoma of lung, TNM stage 3 (disorder)
    ("423121009", Malignancy), // Non-small cell carcinoma of lung, TNM stage 4 (disorder) — primary, C34
    ("254632001", Malignancy), // Small cell carcinoma of lung (disorder)
    ("67811000119102", Malignancy), // Primary small cell malignant neoplasm of lung, TNM stage 1 (disorder)
    ("67821000119109", Malignancy), // Primary small cell malignant neoplasm of lung, TNM stage 2 (disorder)
    ("67831000119107", Malignancy), // Primary small cell malignant neoplasm of lung, TNM stage 3 (disorder)
    ("67841000119103", Malignancy), // Primary small cell malignant neoplasm of lung, TNM stage 4 (disorder)
    ("254837009", Malignancy),      // Malignant neoplasm of breast (disorder)
    ("363406005", Malignancy), // Malignant neoplasm of colon / Malignant tumor of colon (disorder)
    ("93761005", Malignancy),  // Primary malignant neoplasm of colon (disorder)
    ("109838007", Malignancy), // Overlapping malignant neoplasm of colon (disorder)
    ("91861009", Malignancy),  // Acute myeloid leukemia (disorder) — C92.0
    ("93143009", Malignancy),  // Leukemia, disease (disorder)
    ("109989006", Malignancy), // Multiple myeloma (disorder) — C90.0
    // Metastatic solid tumour
    ("94260004", MetastaticTumour), // Metastatic malignant neoplasm to colon / Secondary malignant neoplasm of colon (disorder)
    ("94503003", MetastaticTumour), // Metastatic malignant neoplasm to prostate (disorder)
    ("314994000", MetastaticTumour), // Metastasis from malignant tumor of prostate (disorder)
    // AIDS/HIV
    ("86406008", Hiv), // Human immunodeficiency virus infection (disorder)
    ("62479008", Hiv), // Acquired immune deficiency syndrome (disorder)
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum System {
    Icd10,
    Snomed,
}

fn system_of(system: &str) -> Option<System> {
    let s = system.trim().to_ascii_lowercase();
    match s.as_str() {
        "icd-10"
        | "icd10"
        | "icd-10-cm"
        | "icd10cm"
        | "i10"
        | "http://hl7.org/fhir/sid/icd-10"
        | "http://hl7.org/fhir/sid/icd-10-cm" => Some(System::Icd10),
        "snomed-ct" | "snomed" | "sct" | "snomedct" | "snomed ct" | "http://snomed.info/sct" => {
            Some(System::Snomed)
        }
        _ => None,
    }
}

/// An ICD-10 code without dot or blanks, uppercase.
fn normalise_icd10(code: &str) -> String {
    code.chars()
        .filter(|c| *c != '.' && !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn icd10_condition(code: &str) -> Option<Comorbidity> {
    let code = normalise_icd10(code);
    ICD10.iter().find_map(|range| {
        let head = code.get(..range.from.len())?;
        (range.from <= head && head <= range.to).then_some(range.condition)
    })
}

fn snomed_condition(code: &str) -> Option<Comorbidity> {
    let code = code.trim();
    SNOMED
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, condition)| *condition)
}

/// The Charlson condition a diagnosis code belongs to, if any.
///
/// `system` is matched case-insensitively: ICD-10 as "ICD-10", "ICD10", "ICD-10-CM", "ICD10CM",
/// "I10" (HL7 v2) or "http://hl7.org/fhir/sid/icd-10[-cm]"; SNOMED CT as "SNOMED-CT", "SNOMED",
/// "SNOMEDCT", "SNOMED CT", "SCT" or "http://snomed.info/sct". ICD-10 codes are compared with or
/// without the dot, in any case. Unknown systems and codes give `None`.
pub fn comorbidity_of(system: &str, code: &str) -> Option<Comorbidity> {
    match system_of(system)? {
        System::Icd10 => icd10_condition(code),
        System::Snomed => snomed_condition(code),
    }
}

/// The Charlson conditions present among `(system, code)` diagnoses, each once, with the hierarchy
/// applied (a superseded condition is dropped), in declaration order.
pub fn comorbidities<'a>(codes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<Comorbidity> {
    let mut present = [false; Comorbidity::ALL.len()];
    for (system, code) in codes {
        if let Some(condition) = comorbidity_of(system, code) {
            present[condition.index()] = true;
        }
    }
    for condition in Comorbidity::ALL {
        if present[condition.index()] {
            if let Some(lower) = condition.supersedes() {
                present[lower.index()] = false;
            }
        }
    }
    Comorbidity::ALL
        .into_iter()
        .filter(|c| present[c.index()])
        .collect()
}

/// The Charlson comorbidity index (without age) of `(system, code)` diagnoses: the sum of the
/// weights of the conditions present, each counted once, hierarchy applied.
pub fn charlson_index<'a>(codes: impl IntoIterator<Item = (&'a str, &'a str)>) -> u32 {
    comorbidities(codes)
        .into_iter()
        .map(Comorbidity::weight)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ICD: &str = "ICD-10";
    const SCT: &str = "http://snomed.info/sct";

    #[test]
    fn weights_are_charlson_1987() {
        let expected = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 6, 6];
        let got: Vec<u32> = Comorbidity::ALL.iter().map(|c| c.weight()).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn each_condition_by_an_icd10_code_dotted_and_undotted() {
        let cases: &[(&str, Comorbidity)] = &[
            ("I21.4", MyocardialInfarction),
            ("I22.0", MyocardialInfarction),
            ("I25.2", MyocardialInfarction),
            ("I50.9", CongestiveHeartFailure),
            ("I09.9", CongestiveHeartFailure),
            ("I42.0", CongestiveHeartFailure),
            ("I42.7", CongestiveHeartFailure),
            ("P29.0", CongestiveHeartFailure),
            ("I70.2", PeripheralVascular),
            ("K55.1", PeripheralVascular),
            ("Z95.8", PeripheralVascular),
            ("I63.9", Cerebrovascular),
            ("I60.0", Cerebrovascular),
            ("I69.3", Cerebrovascular),
            ("G45.9", Cerebrovascular),
            ("H34.0", Cerebrovascular),
            ("F03.9", Dementia),
            ("G30.1", Dementia),
            ("F05.1", Dementia),
            ("J44.1", ChronicPulmonary),
            ("J45.9", ChronicPulmonary),
            ("J67.0", ChronicPulmonary),
            ("I27.8", ChronicPulmonary),
            ("M05.3", Rheumatic),
            ("M32.1", Rheumatic),
            ("M31.5", Rheumatic),
            ("K25.0", PepticUlcer),
            ("K28.9", PepticUlcer),
            ("B18.2", MildLiver),
            ("K70.3", MildLiver),
            ("K74.6", MildLiver),
            ("Z94.4", MildLiver),
            ("E11.9", DiabetesUncomplicated),
            ("E10.9", DiabetesUncomplicated),
            ("E14.1", DiabetesUncomplicated),
            ("E11.65", DiabetesUncomplicated),
            ("E11.2", DiabetesComplicated),
            ("E11.21", DiabetesComplicated),
            ("E10.5", DiabetesComplicated),
            ("E13.7", DiabetesComplicated),
            ("G81.9", HemiplegiaParaplegia),
            ("G82.2", HemiplegiaParaplegia),
            ("G04.1", HemiplegiaParaplegia),
            ("G83.9", HemiplegiaParaplegia),
            ("N18.3", Renal),
            ("N19", Renal),
            ("I12.0", Renal),
            ("Z99.2", Renal),
            ("Z49.1", Renal),
            ("C34.1", Malignancy),
            ("C00.0", Malignancy),
            ("C43.9", Malignancy),
            ("C50.9", Malignancy),
            ("C76.0", Malignancy),
            ("C92.0", Malignancy),
            ("C97", Malignancy),
            ("K72.1", ModerateSevereLiver),
            ("I85.0", ModerateSevereLiver),
            ("K70.4", ModerateSevereLiver),
            ("K76.6", ModerateSevereLiver),
            ("C78.0", MetastaticTumour),
            ("C77.9", MetastaticTumour),
            ("C80.1", MetastaticTumour),
            ("B20", Hiv),
            ("B22.7", Hiv),
            ("B24", Hiv),
        ];
        for (dotted, expected) in cases {
            let undotted = dotted.replace('.', "");
            assert_eq!(comorbidity_of(ICD, dotted), Some(*expected), "{dotted}");
            assert_eq!(
                comorbidity_of(ICD, &undotted),
                Some(*expected),
                "{undotted}"
            );
            assert_eq!(
                comorbidity_of(ICD, &dotted.to_ascii_lowercase()),
                Some(*expected),
                "lowercase {dotted}"
            );
        }
        // Every condition is reachable by some ICD-10 code.
        for condition in Comorbidity::ALL {
            assert!(
                cases.iter().any(|(_, c)| *c == condition),
                "{condition:?} untested"
            );
        }
    }

    #[test]
    fn codes_just_outside_the_sets_do_not_map() {
        let cases = [
            "I20.0", // unstable angina
            "I25.1", // atherosclerotic heart disease
            "I10",   // essential hypertension
            "I13.9", // hypertensive heart and CKD, unspecified
            "I42.1", // obstructive hypertrophic cardiomyopathy
            "I73.0", // Raynaud
            "F04",   // amnesic syndrome
            "F05.0", // delirium not superimposed on dementia
            "J39.9", // upper respiratory disease
            "J48",   // not a code, just after J47
            "J68.0", // chemical bronchitis
            "M35.0", // Sjögren
            "K29.7", // gastritis
            "K70.5", // not in either liver set
            "K71.0", // toxic liver disease with cholestasis
            "K76.1", // chronic passive congestion of liver
            "E10",   // category alone: complication unknown
            "E11", "E15",   // non-diabetic hypoglycaemic coma
            "E66.9", // obesity
            "G80.0", // spastic quadriplegic cerebral palsy
            "G83.5", // locked-in state
            "N03.1", // chronic nephritic syndrome, focal lesions
            "N17.9", // acute kidney failure
            "Z49.3", "C44.9", // skin cancer, excluded
            "C27", "C35", "C42", "C59", "C86", "C98", "D05.1", // carcinoma in situ of breast
            "B23",   // not in Quan's HIV set
            "Z21",   // asymptomatic HIV
            "R69", "", "I2", "X",
        ];
        for code in cases {
            assert_eq!(comorbidity_of(ICD, code), None, "{code}");
        }
    }

    #[test]
    fn system_names_are_case_insensitive() {
        for system in [
            "ICD-10",
            "icd-10",
            "ICD10",
            "Icd10",
            "ICD-10-CM",
            "icd-10-cm",
            "I10",
            "http://hl7.org/fhir/sid/icd-10",
            "HTTP://HL7.ORG/FHIR/SID/ICD-10",
            "http://hl7.org/fhir/sid/icd-10-cm",
        ] {
            assert_eq!(
                comorbidity_of(system, "I21.0"),
                Some(MyocardialInfarction),
                "{system}"
            );
        }
        for system in [
            "SNOMED-CT",
            "snomed-ct",
            "SNOMED",
            "SCT",
            "sct",
            "http://snomed.info/sct",
        ] {
            assert_eq!(
                comorbidity_of(system, "22298006"),
                Some(MyocardialInfarction),
                "{system}"
            );
        }
        // A code read in the wrong system does not map.
        assert_eq!(comorbidity_of("SNOMED-CT", "I21.0"), None);
        assert_eq!(comorbidity_of("ICD-10", "22298006"), None);
        assert_eq!(comorbidity_of("ICD-9-CM", "410.1"), None);
        assert_eq!(comorbidity_of("LOINC", "I21.0"), None);
        assert_eq!(comorbidity_of("", "I21.0"), None);
    }

    #[test]
    fn snomed_mappings() {
        let cases: &[(&str, Option<Comorbidity>)] = &[
            ("22298006", Some(MyocardialInfarction)),
            ("399211009", Some(MyocardialInfarction)),
            ("401303003", Some(MyocardialInfarction)),
            ("88805009", Some(CongestiveHeartFailure)),
            ("84114007", Some(CongestiveHeartFailure)),
            ("230690007", Some(Cerebrovascular)),
            ("422504002", Some(Cerebrovascular)),
            ("26929004", Some(Dementia)),
            ("230265002", Some(Dementia)),
            ("13645005", Some(ChronicPulmonary)),
            ("185086009", Some(ChronicPulmonary)),
            ("87433001", Some(ChronicPulmonary)),
            ("233678006", Some(ChronicPulmonary)),
            ("69896004", Some(Rheumatic)),
            ("128302006", Some(MildLiver)),
            ("44054006", Some(DiabetesUncomplicated)),
            ("127013003", Some(DiabetesComplicated)),
            ("90781000119102", Some(DiabetesComplicated)),
            ("368581000119106", Some(DiabetesComplicated)),
            ("698754002", Some(HemiplegiaParaplegia)),
            ("433144002", Some(Renal)),
            ("46177005", Some(Renal)),
            ("254637007", Some(Malignancy)),
            ("254837009", Some(Malignancy)),
            ("363406005", Some(Malignancy)),
            ("94503003", Some(MetastaticTumour)),
            ("94260004", Some(MetastaticTumour)),
            ("86406008", Some(Hiv)),
            ("62479008", Some(Hiv)),
            (" 22298006 ", Some(MyocardialInfarction)),
            // not Charlson conditions
            ("53741008", None),  // Coronary heart disease
            ("15777000", None),  // Prediabetes
            ("59621000", None),  // Hypertension
            ("49436004", None),  // Atrial fibrillation
            ("40055000", None),  // Chronic sinusitis
            ("126906006", None), // Neoplasm of prostate
            ("840539006", None), // COVID-19
            ("0", None),
            ("", None),
        ];
        for (code, expected) in cases {
            assert_eq!(comorbidity_of("SNOMED-CT", code), *expected, "{code}");
        }
    }

    #[test]
    fn tables_are_consistent() {
        // Ranges are well formed.
        for range in ICD10 {
            assert_eq!(range.from.len(), range.to.len(), "{}", range.from);
            assert!(range.from <= range.to, "{}", range.from);
            assert!((3..=4).contains(&range.from.len()), "{}", range.from);
        }
        // No prefix of one entry matches a code of another entry: each code maps to at most one
        // condition, so lookup order does not matter.
        for (i, a) in ICD10.iter().enumerate() {
            for (j, b) in ICD10.iter().enumerate() {
                if i == j {
                    continue;
                }
                let (short, long) = if a.from.len() <= b.from.len() {
                    (a, b)
                } else {
                    (b, a)
                };
                let n = short.from.len();
                let overlap = short.from <= &long.to[..n] && &long.from[..n] <= short.to;
                assert!(
                    !overlap,
                    "{}..{} overlaps {}..{}",
                    a.from, a.to, b.from, b.to
                );
            }
        }
        // SNOMED codes are unique and numeric.
        for (i, (a, _)) in SNOMED.iter().enumerate() {
            assert!(a.bytes().all(|b| b.is_ascii_digit()), "{a}");
            assert!(SNOMED[i + 1..].iter().all(|(b, _)| a != b), "{a} twice");
        }
    }

    #[test]
    fn index_table() {
        let cases: &[(&[(&str, &str)], u32)] = &[
            (&[], 0),
            (&[(ICD, "R69"), (SCT, "840539006"), ("LOINC", "I21.0")], 0),
            (&[(ICD, "I21.0")], 1),
            // duplicates and several codes of one condition count once
            (
                &[
                    (ICD, "I21.0"),
                    (ICD, "I210"),
                    (ICD, "I22.1"),
                    (SCT, "22298006"),
                ],
                1,
            ),
            (&[(ICD, "I50.9"), (ICD, "I50.9"), (ICD, "I50.1")], 1),
            // diabetes: complicated supersedes uncomplicated
            (&[(ICD, "E11.9")], 1),
            (&[(ICD, "E11.2")], 2),
            (&[(ICD, "E11.9"), (ICD, "E11.2")], 2),
            (&[(SCT, "44054006"), (SCT, "127013003")], 2),
            (&[(SCT, "44054006"), (SCT, "90781000119102")], 2),
            // liver: moderate/severe supersedes mild
            (&[(ICD, "K70.3")], 1),
            (&[(ICD, "K72.1")], 3),
            (&[(ICD, "K70.3"), (ICD, "K72.1")], 3),
            // cancer: metastatic supersedes any malignancy
            (&[(ICD, "C34.1")], 2),
            (&[(ICD, "C78.0")], 6),
            (&[(ICD, "C34.1"), (ICD, "C78.0")], 6),
            (&[(SCT, "254637007"), (SCT, "94503003")], 6),
            // all three hierarchies at once
            (
                &[
                    (ICD, "E11.9"),
                    (ICD, "E11.4"),
                    (ICD, "B18.2"),
                    (ICD, "I85.0"),
                    (ICD, "C18.7"),
                    (ICD, "C79.5"),
                ],
                2 + 3 + 6,
            ),
            // independent conditions add up
            (
                &[(ICD, "I21.0"), (ICD, "I50.9"), (ICD, "N18.4"), (ICD, "B20")],
                1 + 1 + 2 + 6,
            ),
            (
                &[(SCT, "88805009"), (SCT, "13645005"), (SCT, "433144002")],
                1 + 1 + 2,
            ),
            (
                &[
                    (SCT, "26929004"),
                    (SCT, "230690007"),
                    (ICD, "F01.5"),
                    (ICD, "I63.4"),
                ],
                2,
            ),
            // unknown codes contribute nothing
            (&[(ICD, "I21.0"), (ICD, "Z00.0"), (SCT, "59621000")], 1),
        ];
        for (codes, expected) in cases {
            assert_eq!(
                charlson_index(codes.iter().copied()),
                *expected,
                "{codes:?}"
            );
        }
    }

    #[test]
    fn every_condition_once_gives_the_hierarchical_maximum() {
        let all: Vec<(&str, &str)> = vec![
            (ICD, "I21.0"),
            (ICD, "I50.0"),
            (ICD, "I70.0"),
            (ICD, "I63.0"),
            (ICD, "F00.0"),
            (ICD, "J44.0"),
            (ICD, "M05.0"),
            (ICD, "K25.0"),
            (ICD, "K70.0"),
            (ICD, "E11.9"),
            (ICD, "E11.2"),
            (ICD, "G81.0"),
            (ICD, "N18.5"),
            (ICD, "C50.0"),
            (ICD, "K72.9"),
            (ICD, "C79.0"),
            (ICD, "B21.0"),
        ];
        let present = comorbidities(all.iter().copied());
        assert!(!present.contains(&DiabetesUncomplicated));
        assert!(!present.contains(&MildLiver));
        assert!(!present.contains(&Malignancy));
        assert_eq!(present.len(), 14);
        // 8 ones + complicated diabetes 2 + hemiplegia 2 + renal 2 + severe liver 3
        // + metastatic 6 + HIV 6
        assert_eq!(
            charlson_index(all.iter().copied()),
            8 + 2 + 2 + 2 + 3 + 6 + 6
        );
    }

    #[test]
    fn accepts_owned_strings_by_reference() {
        let diagnoses: Vec<(String, String)> = vec![
            ("ICD-10".to_owned(), "I21.0".to_owned()),
            ("SNOMED-CT".to_owned(), "88805009".to_owned()),
        ];
        let index = charlson_index(diagnoses.iter().map(|(s, c)| (s.as_str(), c.as_str())));
        assert_eq!(index, 2);
    }
}
