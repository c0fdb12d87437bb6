//! Telemonitoring alert rules: which `ObservationRecorded` events raise an `AlertRaised`.
//!
//! Pure and synchronous: the state of each patient is folded from the events of the log, in log
//! order, and each observation is judged against it. The reactor (`services::reactor`) feeds the
//! events and appends what this module decides.
//!
//! # Rules
//!
//! | rule | applies to | outside the band when | severity |
//! |---|---|---|---|
//! | [`RULE_HF_WEIGHT_GAIN`] | patients with heart failure | the weight is ≥ 2 kg above the lowest weight of the 3 days before it (by clinical time) | ≥ 2 kg moderate, ≥ 3 kg high |
//! | [`RULE_SPO2_LOW`] | every patient, unless a care plan sets an SpO2 bound | SpO2 < 90 % | < 90 moderate, < 88 high, < 85 critical |
//! | `care_plan.<measure>` ([`care_plan_rule`]) | patients whose care plan sets a threshold for the measure | value < `low` or value > `high` | the threshold's severity (unspecified = moderate); the worst threshold crossed |
//!
//! **Heart failure** is known once any diagnosis of the patient (`ConditionRecorded`, `Admitted`,
//! `Discharged`, `EmergencyVisit`) is one of: ICD-10 `I50*` (heart failure), `I11.0` and `I13.0`,
//! `I13.2` (hypertensive heart/renal disease with heart failure), `I09.81` (rheumatic heart
//! failure, ICD-10-CM), `P29.0` (neonatal cardiac failure); or SNOMED CT 84114007 heart failure,
//! 42343007 congestive heart failure, 88805009 chronic congestive heart failure, 48447003 chronic
//! heart failure, 56675007 acute heart failure, 10633002 acute congestive heart failure, 85232009
//! left heart failure, 128404006 right heart failure, 417996009 systolic heart failure, 418304008
//! diastolic heart failure, 703272007 heart failure with reduced ejection fraction, 446221000
//! heart failure with normal ejection fraction. It is a chronic condition: once known it stays
//! (a cancelled admission does not withdraw it).
//!
//! **Care-plan thresholds.** A `CarePlanEstablished` sets, for each measure it names, the
//! thresholds of that measure (replacing those an earlier plan set for the same measure; measures
//! it does not name keep theirs). `low = 0` / `high = 0` mean "no bound" (proto3 cannot tell unset
//! from zero, and no monitored measure has a meaningful bound at 0). A plan with at least one
//! SpO2 bound replaces the default SpO2 rule (individual targets, e.g. 88 % in COPD); the heart
//! failure weight-trend rule stays beside absolute weight bounds.
//!
//! # One alert per crossing
//!
//! Each rule keeps, per patient, its *excursion*: `None` while the measure is inside the band,
//! otherwise the highest severity already alerted since it left the band. An alert is raised when
//! a reading takes the measure from inside to outside the band, or when, while outside, a reading
//! reaches a *higher severity* than any already alerted in this excursion (an escalation, e.g.
//! SpO2 89 % then 83 %: a coordinator must hear about the second one). A run of readings that stay
//! outside at the same or a lower severity raises nothing more; a reading back inside closes the
//! excursion, and the next crossing raises a new alert.
//!
//! Decisions depend only on the events, in log order: a replay of the log makes the same
//! decisions, and [`alert_event`] derives the alert's event id from the observation's id and the
//! rule, so that the log's idempotency turns a repeated decision into a no-op.
//!
//! **Late observations** (recorded more than [`LATE_AFTER_SECS`] after they occurred: imported
//! history, a device that stayed offline) join the history the weight trend looks at, but raise
//! no alert and leave the excursions as they are: an alert is a call to act now.
use std::collections::HashMap;

use journey_proto::v1::event::Payload;
use journey_proto::v1::{
    Actor, AlertRaised, CarePlanEstablished, Code, Event, ObservationRecorded, Role, Severity,
};
use prost_types::Timestamp;
use uuid::Uuid;

/// Heart failure: weight gain within 3 days.
pub const RULE_HF_WEIGHT_GAIN: &str = "heart_failure.weight_gain_3d";
/// Default SpO2 floor.
pub const RULE_SPO2_LOW: &str = "spo2.low";
/// Observations recorded later than this after they occurred raise no alert.
pub const LATE_AFTER_SECS: i64 = 7 * DAY;
/// The actor id of alerts raised by these rules.
pub const ACTOR_ID: &str = "journey-alert-rules";
/// The `source` of alerts raised by these rules.
pub const SOURCE: &str = "journey-reactor";

const DAY: i64 = 86_400;
/// Window of the heart-failure weight trend.
const WEIGHT_WINDOW_SECS: i64 = 3 * DAY;
/// Readings kept per patient and measure (within the window).
const MAX_READINGS: usize = 64;
/// Float tolerance on the kilogram thresholds (71.3 − 69.3 is 1.9999999999999).
const EPSILON: f64 = 1e-6;
/// Namespace of the UUID v5 of raised alerts.
const ALERT_NAMESPACE: Uuid = Uuid::from_u128(0x6a0f_3c52_8e1d_4b7a_9c25_d41e_77b0_a3f1);

/// The rule name of a care-plan threshold on `measure` (normalized, see [`measure_key`]).
pub fn care_plan_rule(measure: &str) -> String {
    format!("care_plan.{measure}")
}

/// Monitored measures this crate knows (plausibility checks, default rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    Weight,
    Spo2,
    HeartRate,
    BpSystolic,
    BpDiastolic,
    RespiratoryRate,
    Glucose,
    Temperature,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::Weight => "weight",
            Measure::Spo2 => "spo2",
            Measure::HeartRate => "heart_rate",
            Measure::BpSystolic => "bp_systolic",
            Measure::BpDiastolic => "bp_diastolic",
            Measure::RespiratoryRate => "respiratory_rate",
            Measure::Glucose => "glucose",
            Measure::Temperature => "temperature",
        }
    }

    fn from_name(normalized: &str) -> Option<Measure> {
        Some(match normalized {
            "weight" | "body_weight" => Measure::Weight,
            "spo2" | "sp_o2" | "oxygen_saturation" | "o2_saturation" | "sao2" => Measure::Spo2,
            "heart_rate" | "pulse" | "pulse_rate" | "hr" => Measure::HeartRate,
            "bp_systolic" | "systolic_bp" | "systolic_blood_pressure" => Measure::BpSystolic,
            "bp_diastolic" | "diastolic_bp" | "diastolic_blood_pressure" => Measure::BpDiastolic,
            "respiratory_rate" | "rr" => Measure::RespiratoryRate,
            "glucose" | "blood_glucose" => Measure::Glucose,
            "temperature" | "body_temperature" => Measure::Temperature,
            _ => return None,
        })
    }

    fn from_loinc(code: &str) -> Option<Measure> {
        Some(match code {
            "29463-7" | "3141-9" => Measure::Weight,
            "59408-5" | "2708-6" => Measure::Spo2,
            "8867-4" => Measure::HeartRate,
            "8480-6" => Measure::BpSystolic,
            "8462-4" => Measure::BpDiastolic,
            "9279-1" => Measure::RespiratoryRate,
            "2339-0" | "2345-7" => Measure::Glucose,
            "8310-5" => Measure::Temperature,
            _ => return None,
        })
    }

    /// The measure of an observation: by its name, else by its LOINC code.
    pub fn of(o: &ObservationRecorded) -> Option<Measure> {
        Measure::from_name(&normalize(&o.measure)).or_else(|| {
            o.code
                .as_ref()
                .filter(|c| is_loinc(&c.system))
                .and_then(|c| Measure::from_loinc(c.code.trim()))
        })
    }
}

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace([' ', '-'], "_")
}

fn is_loinc(system: &str) -> bool {
    let s = system.trim().to_ascii_lowercase();
    s == "loinc" || s.contains("loinc.org")
}

/// The key thresholds and readings are filed under: the known measure's name, else the
/// normalized name (lowercase, `_` for spaces and dashes).
pub fn measure_key(measure: &str) -> String {
    let n = normalize(measure);
    Measure::from_name(&n).map_or(n, |m| m.name().to_string())
}

fn observation_key(o: &ObservationRecorded) -> String {
    Measure::of(o).map_or_else(|| normalize(&o.measure), |m| m.name().to_string())
}

/// The value in the unit the rules and bounds use (kg, %, °C), when the unit is one this crate
/// converts; other measures are taken as sent.
fn canonical(measure: Measure, value: f64, unit: &str) -> Option<f64> {
    let u = unit.trim().to_ascii_lowercase();
    match measure {
        Measure::Weight => match u.as_str() {
            "" | "kg" => Some(value),
            "g" => Some(value / 1000.0),
            "[lb_av]" | "lb" | "lbs" => Some(value * 0.453_592_37),
            _ => None,
        },
        Measure::Spo2 => matches!(u.as_str(), "" | "%").then_some(value),
        Measure::Temperature => match u.as_str() {
            "" | "cel" | "°c" | "c" => Some(value),
            "[degf]" | "°f" | "f" => Some((value - 32.0) * 5.0 / 9.0),
            _ => None,
        },
        Measure::BpSystolic | Measure::BpDiastolic => {
            matches!(u.as_str(), "" | "mm[hg]" | "mmhg").then_some(value)
        }
        Measure::HeartRate | Measure::RespiratoryRate | Measure::Glucose => Some(value),
    }
}

/// Why the value of an observation of a known measure cannot be real, if it cannot (checked at
/// ingest). Unknown measures, and bounds in units this crate does not convert, pass.
pub(crate) fn implausible(o: &ObservationRecorded) -> Option<String> {
    let m = Measure::of(o)?;
    let v = o.value;
    // Messages are only built for a refusal: this runs for every observation appended.
    let shown = || {
        if o.unit.is_empty() {
            format!("{v}")
        } else {
            format!("{v} {}", o.unit)
        }
    };
    let name = m.name();
    if v < 0.0 {
        return Some(format!(
            "{} is impossible: a {name} cannot be negative",
            shown()
        ));
    }
    let c = canonical(m, v, &o.unit);
    let (ok, bounds) = match m {
        Measure::Weight => (
            v > 0.0 && c.is_none_or(|kg| kg <= 500.0),
            "more than 0 and at most 500 kg",
        ),
        Measure::Spo2 => (c.is_none_or(|p| p <= 100.0), "between 0 and 100 %"),
        Measure::HeartRate => (v <= 300.0, "between 0 and 300 /min"),
        Measure::BpSystolic | Measure::BpDiastolic => {
            (c.is_none_or(|p| p <= 400.0), "between 0 and 400 mm[Hg]")
        }
        Measure::RespiratoryRate => (v <= 150.0, "between 0 and 150 /min"),
        Measure::Glucose => (true, ""),
        Measure::Temperature => (
            c.is_none_or(|t| (10.0..=50.0).contains(&t)),
            "between 10 and 50 °C",
        ),
    };
    (!ok).then(|| format!("{} is impossible: a {name} must be {bounds}", shown()))
}

/// One alert to raise, as decided by a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDecision {
    /// The rule that fired (stable: it names the alert's event id).
    pub rule: String,
    pub severity: Severity,
    /// Human-readable reason, with the values that crossed.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    /// Clinical time, seconds.
    at: i64,
    /// In the canonical unit when known.
    value: f64,
}

#[derive(Debug, Clone, PartialEq)]
struct PlanThreshold {
    care_plan_id: String,
    low: Option<f64>,
    high: Option<f64>,
    severity: Severity,
}

/// What the alert rules know of one patient.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatientAlertState {
    heart_failure: bool,
    /// Measure key → thresholds of the latest care plan that named the measure.
    thresholds: HashMap<String, Vec<PlanThreshold>>,
    /// Measure key → recent readings (timely and late), ascending by arrival.
    recent: HashMap<String, Vec<Reading>>,
    /// Rule → highest severity alerted in the current excursion outside the band.
    excursions: HashMap<String, Severity>,
}

/// A rule's judgement of one reading: outside the band at `severity`, because `reason`.
struct Level {
    severity: Severity,
    reason: String,
}

impl PatientAlertState {
    /// Whether a heart-failure diagnosis is known.
    pub fn heart_failure(&self) -> bool {
        self.heart_failure
    }

    /// Folds one event of this patient (an observation included: its readings and excursions).
    pub fn fold(&mut self, event: &Event) {
        let Some(payload) = &event.payload else {
            return;
        };
        match payload {
            Payload::Admitted(a) => self.diagnoses(&a.diagnoses),
            Payload::Discharged(d) => self.diagnoses(&d.diagnoses),
            Payload::EmergencyVisit(v) => self.diagnoses(&v.diagnoses),
            Payload::ConditionRecorded(c) => {
                if let Some(code) = &c.diagnosis {
                    self.diagnoses(std::slice::from_ref(code));
                }
            }
            Payload::CarePlanEstablished(p) => self.care_plan(p),
            Payload::ObservationRecorded(o) => {
                if timely(event) {
                    for (rule, level) in self.assess(event, o) {
                        match level {
                            None => {
                                self.excursions.remove(&rule);
                            }
                            Some(l) => {
                                let e = self.excursions.entry(rule).or_insert(l.severity);
                                *e = (*e).max(l.severity);
                            }
                        }
                    }
                }
                self.remember(event, o);
            }
            _ => {}
        }
    }

    fn diagnoses(&mut self, codes: &[Code]) {
        if codes.iter().any(is_heart_failure) {
            self.heart_failure = true;
        }
    }

    fn care_plan(&mut self, p: &CarePlanEstablished) {
        let mut by_measure: HashMap<String, Vec<PlanThreshold>> = HashMap::new();
        for t in &p.thresholds {
            let bound = |v: f64| (v != 0.0 && v.is_finite()).then_some(v);
            by_measure
                .entry(measure_key(&t.measure))
                .or_default()
                .push(PlanThreshold {
                    care_plan_id: p.care_plan_id.clone(),
                    low: bound(t.low),
                    high: bound(t.high),
                    severity: match Severity::try_from(t.severity) {
                        Ok(Severity::Unspecified) | Err(_) => Severity::Moderate,
                        Ok(s) => s,
                    },
                });
        }
        self.thresholds.extend(by_measure);
    }

    fn remember(&mut self, event: &Event, o: &ObservationRecorded) {
        let Some(at) = event.occurred_at.as_ref().map(|t| t.seconds) else {
            return;
        };
        let value = Measure::of(o)
            .and_then(|m| canonical(m, o.value, &o.unit))
            .unwrap_or(o.value);
        let readings = self.recent.entry(observation_key(o)).or_default();
        readings.push(Reading { at, value });
        let newest = readings.iter().map(|r| r.at).max().unwrap_or(at);
        readings.retain(|r| r.at >= newest - WEIGHT_WINDOW_SECS);
        if readings.len() > MAX_READINGS {
            let extra = readings.len() - MAX_READINGS;
            readings.drain(..extra);
        }
    }

    /// Every rule that applies to the observation, with its judgement (`None` = inside the band).
    fn assess(&self, event: &Event, o: &ObservationRecorded) -> Vec<(String, Option<Level>)> {
        let mut out = Vec::new();
        let key = observation_key(o);
        let measure = Measure::of(o);
        let value = measure.and_then(|m| canonical(m, o.value, &o.unit));
        let plan = self.thresholds.get(&key);
        let plan_has_bounds =
            plan.is_some_and(|ts| ts.iter().any(|t| t.low.is_some() || t.high.is_some()));

        if measure == Some(Measure::Weight) && self.heart_failure {
            if let (Some(kg), Some(at)) = (value, event.occurred_at.as_ref().map(|t| t.seconds)) {
                out.push((RULE_HF_WEIGHT_GAIN.to_string(), self.weight_gain(at, kg)));
            }
        }
        if measure == Some(Measure::Spo2) && !plan_has_bounds {
            if let Some(p) = value {
                out.push((RULE_SPO2_LOW.to_string(), spo2_level(p)));
            }
        }
        if let Some(ts) = plan.filter(|_| plan_has_bounds) {
            let v = value.unwrap_or(o.value);
            let mut worst: Option<Level> = None;
            for t in ts {
                let crossed = match (t.low, t.high) {
                    (Some(low), _) if v < low => Some(("below", low)),
                    (_, Some(high)) if v > high => Some(("above", high)),
                    _ => None,
                };
                if let Some((side, bound)) = crossed {
                    if worst.as_ref().is_none_or(|w| t.severity > w.severity) {
                        worst = Some(Level {
                            severity: t.severity,
                            reason: format!(
                                "{key} {} is {side} the care plan's threshold {bound} (care plan {})",
                                shown(o),
                                t.care_plan_id
                            ),
                        });
                    }
                }
            }
            out.push((care_plan_rule(&key), worst));
        }
        out
    }

    /// The heart-failure weight trend at a new reading of `kg` at `at`.
    fn weight_gain(&self, at: i64, kg: f64) -> Option<Level> {
        let reference = self
            .recent
            .get(Measure::Weight.name())?
            .iter()
            .filter(|r| r.at >= at - WEIGHT_WINDOW_SECS && r.at <= at)
            .map(|r| r.value)
            .min_by(f64::total_cmp)?;
        let gain = kg - reference;
        let severity = if gain + EPSILON >= 3.0 {
            Severity::High
        } else if gain + EPSILON >= 2.0 {
            Severity::Moderate
        } else {
            return None;
        };
        Some(Level {
            severity,
            reason: format!(
                "weight {kg:.1} kg is {gain:.1} kg above {reference:.1} kg, the lowest of the previous 3 days (heart failure: alert at +2 kg)"
            ),
        })
    }
}

fn spo2_level(p: f64) -> Option<Level> {
    let severity = if p < 85.0 {
        Severity::Critical
    } else if p < 88.0 {
        Severity::High
    } else if p < 90.0 {
        Severity::Moderate
    } else {
        return None;
    };
    Some(Level {
        severity,
        reason: format!("SpO2 {p} % is below 90 %"),
    })
}

fn shown(o: &ObservationRecorded) -> String {
    if o.unit.is_empty() {
        format!("{}", o.value)
    } else {
        format!("{} {}", o.value, o.unit)
    }
}

/// Recorded within [`LATE_AFTER_SECS`] of its clinical time (or not yet recorded: a new event).
fn timely(event: &Event) -> bool {
    match (&event.occurred_at, &event.recorded_at) {
        (Some(o), Some(r)) => r.seconds - o.seconds <= LATE_AFTER_SECS,
        _ => true,
    }
}

/// Whether a diagnosis code means heart failure (see the module documentation for the list).
pub fn is_heart_failure(code: &Code) -> bool {
    let system: String = code
        .system
        .to_ascii_uppercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let c: String = code
        .code
        .to_ascii_uppercase()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if system.contains("ICD10") {
        c.starts_with("I50") || ["I110", "I130", "I132", "I0981", "P290"].contains(&c.as_str())
    } else if system.contains("SNOMED") {
        [
            "84114007",
            "42343007",
            "88805009",
            "48447003",
            "56675007",
            "10633002",
            "85232009",
            "128404006",
            "417996009",
            "418304008",
            "703272007",
            "446221000",
        ]
        .contains(&c.as_str())
    } else {
        false
    }
}

/// Judges an observation against a patient's state: the alerts it raises. Pure: the state is
/// not changed (fold the event afterwards with [`PatientAlertState::fold`]). Other events raise
/// nothing.
pub fn evaluate(state: &PatientAlertState, event: &Event) -> Vec<AlertDecision> {
    let Some(Payload::ObservationRecorded(o)) = &event.payload else {
        return Vec::new();
    };
    if !timely(event) {
        return Vec::new();
    }
    state
        .assess(event, o)
        .into_iter()
        .filter_map(|(rule, level)| {
            let level = level?;
            let already = state.excursions.get(&rule).copied();
            already
                .is_none_or(|s| level.severity > s)
                .then_some(AlertDecision {
                    rule,
                    severity: level.severity,
                    reason: level.reason,
                })
        })
        .collect()
}

/// Whether the event can change a patient's alert state or raise an alert.
fn relevant(event: &Event) -> bool {
    match &event.payload {
        Some(Payload::ObservationRecorded(_) | Payload::CarePlanEstablished(_)) => true,
        Some(Payload::Admitted(a)) => a.diagnoses.iter().any(is_heart_failure),
        Some(Payload::Discharged(d)) => d.diagnoses.iter().any(is_heart_failure),
        Some(Payload::EmergencyVisit(v)) => v.diagnoses.iter().any(is_heart_failure),
        Some(Payload::ConditionRecorded(c)) => c.diagnosis.as_ref().is_some_and(is_heart_failure),
        _ => false,
    }
}

/// The alert rules over every patient: fold the log in order through [`AlertRules::apply`].
#[derive(Debug, Clone, Default)]
pub struct AlertRules {
    patients: HashMap<String, PatientAlertState>,
}

impl AlertRules {
    /// Judges the event (when it is an observation), then folds it. Returns the alerts to raise.
    /// Only patients with an observation, a care plan or a heart-failure diagnosis get a state.
    pub fn apply(&mut self, event: &Event) -> Vec<AlertDecision> {
        if !relevant(event) || event.patient_id.is_empty() {
            return Vec::new();
        }
        let state = self.patients.entry(event.patient_id.clone()).or_default();
        let decisions = evaluate(state, event);
        state.fold(event);
        decisions
    }

    /// The state of one patient, if any event of theirs was seen.
    pub fn patient(&self, patient_id: &str) -> Option<&PatientAlertState> {
        self.patients.get(patient_id)
    }

    /// Patients with a state.
    pub fn len(&self) -> usize {
        self.patients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patients.is_empty()
    }
}

/// The event id of the alert `rule` raises for the observation `observation_event_id`: UUID v5,
/// so that every replay derives the same id and the log stores the alert once.
pub fn alert_event_id(observation_event_id: &str, rule: &str) -> Uuid {
    Uuid::new_v5(
        &ALERT_NAMESPACE,
        format!("{observation_event_id}/{rule}").as_bytes(),
    )
}

/// The `AlertRaised` event of a decision on `observation`: deterministic event id and alert id
/// (the same UUID), `causation_id` = the observation, its `correlation_id` carried over (the
/// observation's id when it has none), clinical time = the observation's, actor = the rule
/// engine (role SYSTEM). Log-assigned fields are left unset.
pub fn alert_event(observation: &Event, decision: &AlertDecision) -> Event {
    let id = alert_event_id(&observation.event_id, &decision.rule).to_string();
    Event {
        event_id: id.clone(),
        patient_id: observation.patient_id.clone(),
        occurred_at: observation.occurred_at.or(Some(Timestamp::default())),
        actor: Some(Actor {
            id: ACTOR_ID.into(),
            role: Role::System as i32,
            organisation: String::new(),
            display_name: "telemonitoring alert rules".into(),
        }),
        source: SOURCE.into(),
        correlation_id: if observation.correlation_id.is_empty() {
            observation.event_id.clone()
        } else {
            observation.correlation_id.clone()
        },
        causation_id: observation.event_id.clone(),
        payload: Some(Payload::AlertRaised(AlertRaised {
            alert_id: id,
            severity: decision.severity as i32,
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
        })),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::v1::{
        Admitted, AlertThreshold, ConditionRecorded, Discharged, HomeVisitRecorded,
    };
    use Severity::{Critical, High, Low, Moderate};

    const T0: i64 = 1_700_000_000;
    const HOUR: i64 = 3_600;

    fn at(hours: i64) -> Timestamp {
        Timestamp {
            seconds: T0 + hours * HOUR,
            nanos: 0,
        }
    }

    fn ev(n: u32, hours: i64, payload: Payload) -> Event {
        Event {
            event_id: format!("00000000-0000-4000-8000-{n:012}"),
            patient_id: "P1".into(),
            occurred_at: Some(at(hours)),
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn obs(measure: &str, value: f64, unit: &str) -> Payload {
        Payload::ObservationRecorded(ObservationRecorded {
            measure: measure.into(),
            value,
            unit: unit.into(),
            ..Default::default()
        })
    }

    fn code(system: &str, code: &str) -> Code {
        Code {
            system: system.into(),
            code: code.into(),
            display: String::new(),
        }
    }

    fn condition(system: &str, c: &str) -> Payload {
        Payload::ConditionRecorded(ConditionRecorded {
            diagnosis: Some(code(system, c)),
            ..Default::default()
        })
    }

    fn hf() -> Payload {
        condition("ICD-10", "I50.0")
    }

    fn plan(id: &str, thresholds: &[(&str, f64, f64, Severity)]) -> Payload {
        Payload::CarePlanEstablished(CarePlanEstablished {
            care_plan_id: id.into(),
            thresholds: thresholds
                .iter()
                .map(|(m, low, high, s)| AlertThreshold {
                    measure: (*m).into(),
                    low: *low,
                    high: *high,
                    severity: *s as i32,
                })
                .collect(),
            ..Default::default()
        })
    }

    /// One step of a scenario: at `hours`, this event; then exactly these alerts (rule, severity).
    type Step = (i64, Payload, &'static [(&'static str, Severity)]);

    struct Scenario {
        name: &'static str,
        steps: Vec<Step>,
    }

    const NONE: &[(&str, Severity)] = &[];
    const SPO2_MOD: &[(&str, Severity)] = &[(RULE_SPO2_LOW, Moderate)];
    const SPO2_HIGH: &[(&str, Severity)] = &[(RULE_SPO2_LOW, High)];
    const SPO2_CRIT: &[(&str, Severity)] = &[(RULE_SPO2_LOW, Critical)];
    const HF_MOD: &[(&str, Severity)] = &[(RULE_HF_WEIGHT_GAIN, Moderate)];
    const HF_HIGH: &[(&str, Severity)] = &[(RULE_HF_WEIGHT_GAIN, High)];

    /// Given the earlier steps, when each step's event is applied, then exactly its alerts.
    fn run(s: &Scenario) {
        let mut rules = AlertRules::default();
        for (i, (hours, payload, expected)) in s.steps.iter().enumerate() {
            let e = ev(i as u32 + 1, *hours, payload.clone());
            let got: Vec<(String, Severity)> = rules
                .apply(&e)
                .into_iter()
                .map(|d| (d.rule, d.severity))
                .collect();
            let want: Vec<(String, Severity)> =
                expected.iter().map(|(r, s)| (r.to_string(), *s)).collect();
            assert_eq!(got, want, "{}: step {i} ({payload:?})", s.name);
        }
    }

    #[test]
    fn spo2_default_rule() {
        let cases = vec![
            Scenario {
                name: "normal readings raise nothing",
                steps: vec![
                    (0, obs("spo2", 96.0, "%"), NONE),
                    (1, obs("spo2", 90.0, "%"), NONE),
                ],
            },
            Scenario {
                name: "graded severity: 89 moderate",
                steps: vec![(0, obs("spo2", 89.0, "%"), SPO2_MOD)],
            },
            Scenario {
                name: "graded severity: 87 high",
                steps: vec![(0, obs("spo2", 87.0, "%"), SPO2_HIGH)],
            },
            Scenario {
                name: "graded severity: 84 critical",
                steps: vec![(0, obs("spo2", 84.0, "%"), SPO2_CRIT)],
            },
            Scenario {
                name: "a run of low readings raises one alert",
                steps: vec![
                    (0, obs("spo2", 95.0, "%"), NONE),
                    (1, obs("spo2", 88.5, "%"), SPO2_MOD),
                    (2, obs("spo2", 89.0, "%"), NONE),
                    (3, obs("spo2", 88.0, "%"), NONE),
                    (4, obs("spo2", 89.9, "%"), NONE),
                ],
            },
            Scenario {
                name: "a new alert only after a return inside",
                steps: vec![
                    (0, obs("spo2", 89.0, "%"), SPO2_MOD),
                    (1, obs("spo2", 89.0, "%"), NONE),
                    (2, obs("spo2", 93.0, "%"), NONE),
                    (3, obs("spo2", 89.0, "%"), SPO2_MOD),
                ],
            },
            Scenario {
                name: "escalation raises, de-escalation and re-escalation do not",
                steps: vec![
                    (0, obs("spo2", 89.0, "%"), SPO2_MOD),
                    (1, obs("spo2", 83.0, "%"), SPO2_CRIT),
                    (2, obs("spo2", 87.0, "%"), NONE),
                    (3, obs("spo2", 82.0, "%"), NONE),
                    (4, obs("spo2", 89.0, "%"), NONE),
                ],
            },
            Scenario {
                name: "alias names and LOINC codes count",
                steps: vec![
                    (0, obs("SpO2", 88.0, "%"), SPO2_MOD),
                    (1, obs("Oxygen saturation", 95.0, ""), NONE),
                    (
                        2,
                        Payload::ObservationRecorded(ObservationRecorded {
                            measure: "Oxygen saturation in Arterial blood".into(),
                            value: 86.0,
                            unit: "%".into(),
                            code: Some(code("LOINC", "2708-6")),
                            ..Default::default()
                        }),
                        SPO2_HIGH,
                    ),
                ],
            },
            Scenario {
                name: "a fraction instead of a percentage is not judged",
                steps: vec![(0, obs("spo2", 0.85, "1"), NONE)],
            },
            Scenario {
                name: "other events and measures raise nothing",
                steps: vec![
                    (
                        0,
                        Payload::HomeVisitRecorded(HomeVisitRecorded::default()),
                        NONE,
                    ),
                    (1, obs("heart_rate", 180.0, "/min"), NONE),
                    (2, obs("weight", 120.0, "kg"), NONE),
                ],
            },
        ];
        for c in &cases {
            run(c);
        }
    }

    #[test]
    fn heart_failure_weight_rule() {
        let cases = vec![
            Scenario {
                name: "no heart failure, no weight rule",
                steps: vec![
                    (0, obs("weight", 70.0, "kg"), NONE),
                    (24, obs("weight", 75.0, "kg"), NONE),
                ],
            },
            Scenario {
                name: "+2 kg within 3 days is moderate",
                steps: vec![
                    (0, hf(), NONE),
                    (0, obs("weight", 70.0, "kg"), NONE),
                    (24, obs("weight", 71.0, "kg"), NONE),
                    (48, obs("weight", 72.0, "kg"), HF_MOD),
                ],
            },
            Scenario {
                name: "+3 kg is high; float rounding does not hide +2.0",
                steps: vec![
                    (0, hf(), NONE),
                    (0, obs("weight", 69.3, "kg"), NONE),
                    (24, obs("weight", 71.3, "kg"), HF_MOD),
                    (48, obs("weight", 72.3, "kg"), HF_HIGH),
                ],
            },
            Scenario {
                name: "+2 kg over more than 3 days raises nothing",
                steps: vec![
                    (0, hf(), NONE),
                    (0, obs("weight", 70.0, "kg"), NONE),
                    (48, obs("weight", 71.0, "kg"), NONE),
                    (96, obs("weight", 72.0, "kg"), NONE),
                ],
            },
            Scenario {
                name: "reference is the lowest of the 3 days, not the last",
                steps: vec![
                    (0, hf(), NONE),
                    (0, obs("weight", 70.0, "kg"), NONE),
                    (24, obs("weight", 71.5, "kg"), NONE),
                    (25, obs("weight", 71.0, "kg"), NONE),
                    (48, obs("weight", 72.1, "kg"), HF_MOD),
                ],
            },
            Scenario {
                name: "one alert per gain; a new one after the weight settles",
                steps: vec![
                    (0, hf(), NONE),
                    (0, obs("weight", 70.0, "kg"), NONE),
                    (24, obs("weight", 72.5, "kg"), HF_MOD),
                    (30, obs("weight", 72.4, "kg"), NONE),
                    (36, obs("weight", 72.6, "kg"), NONE),
                    // The 70 kg reading leaves the window: gain 0.2 kg, back inside.
                    (80, obs("weight", 72.6, "kg"), NONE),
                    (100, obs("weight", 74.8, "kg"), HF_MOD),
                ],
            },
            Scenario {
                name: "heart failure by SNOMED code, at admission or discharge",
                steps: vec![
                    (
                        0,
                        Payload::Admitted(Admitted {
                            diagnoses: vec![code("SNOMED-CT", "88805009")],
                            ..Default::default()
                        }),
                        NONE,
                    ),
                    (1, obs("weight", 80.0, "kg"), NONE),
                    (2, obs("weight", 83.2, "kg"), HF_HIGH),
                ],
            },
            Scenario {
                name: "heart failure known at discharge applies to readings after it",
                steps: vec![
                    (0, obs("weight", 80.0, "kg"), NONE),
                    (
                        1,
                        Payload::Discharged(Discharged {
                            diagnoses: vec![code("http://snomed.info/sct", "42343007")],
                            ..Default::default()
                        }),
                        NONE,
                    ),
                    (2, obs("weight", 82.0, "kg"), HF_MOD),
                ],
            },
            Scenario {
                name: "pounds are converted",
                steps: vec![
                    (0, hf(), NONE),
                    (0, obs("weight", 154.0, "[lb_av]"), NONE),
                    (24, obs("weight", 159.0, "[lb_av]"), HF_MOD),
                ],
            },
            Scenario {
                name: "the first weight has no reference",
                steps: vec![(0, hf(), NONE), (0, obs("weight", 120.0, "kg"), NONE)],
            },
        ];
        for c in &cases {
            run(c);
        }
    }

    #[test]
    fn care_plan_thresholds() {
        let cases = vec![
            Scenario {
                name: "a plan's bounds with its severity",
                steps: vec![
                    (0, plan("CP1", &[("bp_systolic", 90.0, 160.0, High)]), NONE),
                    (1, obs("bp_systolic", 150.0, "mm[Hg]"), NONE),
                    (
                        2,
                        obs("bp_systolic", 170.0, "mm[Hg]"),
                        &[("care_plan.bp_systolic", High)],
                    ),
                    (3, obs("bp_systolic", 175.0, "mm[Hg]"), NONE),
                    (4, obs("bp_systolic", 85.0, "mm[Hg]"), NONE),
                    (5, obs("bp_systolic", 120.0, "mm[Hg]"), NONE),
                    (
                        6,
                        obs("bp_systolic", 85.0, "mm[Hg]"),
                        &[("care_plan.bp_systolic", High)],
                    ),
                ],
            },
            Scenario {
                name: "zero bounds mean none; unspecified severity is moderate",
                steps: vec![
                    (
                        0,
                        plan("CP1", &[("glucose", 0.0, 15.0, Severity::Unspecified)]),
                        NONE,
                    ),
                    (1, obs("glucose", 0.5, "mmol/L"), NONE),
                    (
                        2,
                        obs("glucose", 16.0, "mmol/L"),
                        &[("care_plan.glucose", Moderate)],
                    ),
                ],
            },
            Scenario {
                name: "graded thresholds on one measure: the worst crossed",
                steps: vec![
                    (
                        0,
                        plan(
                            "CP1",
                            &[
                                ("heart_rate", 50.0, 110.0, Low),
                                ("heart_rate", 40.0, 130.0, Critical),
                            ],
                        ),
                        NONE,
                    ),
                    (
                        1,
                        obs("heart_rate", 115.0, "/min"),
                        &[("care_plan.heart_rate", Low)],
                    ),
                    (
                        2,
                        obs("heart_rate", 140.0, "/min"),
                        &[("care_plan.heart_rate", Critical)],
                    ),
                    (3, obs("heart_rate", 120.0, "/min"), NONE),
                ],
            },
            Scenario {
                name: "a plan's SpO2 bound replaces the default rule",
                steps: vec![
                    (0, plan("COPD", &[("SpO2", 88.0, 0.0, High)]), NONE),
                    (1, obs("spo2", 89.0, "%"), NONE),
                    (2, obs("spo2", 87.0, "%"), &[("care_plan.spo2", High)]),
                ],
            },
            Scenario {
                name: "a later plan naming the measure replaces its thresholds; others stay",
                steps: vec![
                    (
                        0,
                        plan(
                            "CP1",
                            &[
                                ("weight", 0.0, 90.0, Moderate),
                                ("heart_rate", 0.0, 100.0, Low),
                            ],
                        ),
                        NONE,
                    ),
                    (1, plan("CP2", &[("weight", 0.0, 95.0, High)]), NONE),
                    (2, obs("weight", 92.0, "kg"), NONE),
                    (3, obs("weight", 96.0, "kg"), &[("care_plan.weight", High)]),
                    (
                        4,
                        obs("heart_rate", 101.0, "/min"),
                        &[("care_plan.heart_rate", Low)],
                    ),
                ],
            },
            Scenario {
                name: "plan bounds and the heart-failure trend both apply to weight",
                steps: vec![
                    (0, hf(), NONE),
                    (0, plan("HF", &[("weight", 0.0, 75.0, Moderate)]), NONE),
                    (1, obs("weight", 73.0, "kg"), NONE),
                    (
                        24,
                        obs("weight", 76.0, "kg"),
                        &[(RULE_HF_WEIGHT_GAIN, High), ("care_plan.weight", Moderate)],
                    ),
                    (30, obs("weight", 76.1, "kg"), NONE),
                ],
            },
            Scenario {
                name: "a plan without SpO2 keeps the default SpO2 rule",
                steps: vec![
                    (0, plan("CP1", &[("weight", 0.0, 90.0, Moderate)]), NONE),
                    (1, obs("spo2", 88.0, "%"), SPO2_MOD),
                ],
            },
        ];
        for c in &cases {
            run(c);
        }
    }

    #[test]
    fn late_observations_raise_nothing_and_keep_the_excursion() {
        let mut rules = AlertRules::default();
        let mut late = ev(1, 0, obs("spo2", 80.0, "%"));
        late.recorded_at = Some(at(8 * 24 + 1));
        assert!(rules.apply(&late).is_empty(), "late: no alert");
        let mut fresh = ev(2, 9 * 24, obs("spo2", 89.0, "%"));
        fresh.recorded_at = Some(at(9 * 24));
        assert_eq!(
            rules.apply(&fresh).len(),
            1,
            "the late reading opened no excursion"
        );
        let mut on_time = ev(3, 9 * 24 + 1, obs("spo2", 89.0, "%"));
        on_time.recorded_at = Some(at(9 * 24 + 1 + 6 * 24));
        assert!(
            rules.apply(&on_time).is_empty(),
            "within 7 days is timely: same excursion"
        );
    }

    #[test]
    fn late_weights_still_serve_as_reference() {
        let mut rules = AlertRules::default();
        rules.apply(&ev(1, 0, hf()));
        let mut old = ev(2, 0, obs("weight", 70.0, "kg"));
        old.recorded_at = Some(at(24 * 30));
        assert!(rules.apply(&old).is_empty());
        let d = rules.apply(&ev(3, 48, obs("weight", 72.0, "kg")));
        assert_eq!(d.len(), 1);
        assert!(d[0].reason.contains("70.0 kg"), "{}", d[0].reason);
    }

    #[test]
    fn patients_are_independent() {
        let mut rules = AlertRules::default();
        let mut a = ev(1, 0, obs("spo2", 85.0, "%"));
        a.patient_id = "A".into();
        let mut b = ev(2, 0, obs("spo2", 85.0, "%"));
        b.patient_id = "B".into();
        assert_eq!(rules.apply(&a).len(), 1);
        assert_eq!(rules.apply(&b).len(), 1);
        assert_eq!(rules.len(), 2);
        let mut visit = ev(
            3,
            0,
            Payload::HomeVisitRecorded(HomeVisitRecorded::default()),
        );
        visit.patient_id = "C".into();
        assert!(rules.apply(&visit).is_empty());
        let mut other = ev(4, 0, condition("ICD-10", "J44.1"));
        other.patient_id = "C".into();
        rules.apply(&other);
        assert!(
            rules.patient("C").is_none(),
            "no state for what the rules ignore"
        );
        let mut hf = ev(5, 0, hf());
        hf.patient_id = "C".into();
        rules.apply(&hf);
        assert!(rules.patient("C").is_some_and(|s| s.heart_failure()));
    }

    #[test]
    fn evaluate_is_pure_and_replays_decide_the_same() {
        let events: Vec<Event> = [
            (0, hf()),
            (0, obs("weight", 70.0, "kg")),
            (1, obs("spo2", 88.0, "%")),
            (24, obs("weight", 72.5, "kg")),
            (25, obs("spo2", 86.0, "%")),
            (26, obs("spo2", 95.0, "%")),
            (27, obs("spo2", 80.0, "%")),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (h, p))| ev(i as u32 + 1, h, p))
        .collect();
        let decide = || {
            let mut rules = AlertRules::default();
            events
                .iter()
                .flat_map(|e| {
                    rules
                        .apply(e)
                        .into_iter()
                        .map(|d| alert_event(e, &d))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        let first = decide();
        assert_eq!(first.len(), 4);
        assert_eq!(
            first,
            decide(),
            "a replay decides the same alerts, same ids"
        );

        let mut state = PatientAlertState::default();
        state.fold(&events[0]);
        let before = state.clone();
        let d = evaluate(&state, &ev(99, 0, obs("spo2", 80.0, "%")));
        assert_eq!(d.len(), 1);
        assert_eq!(state, before, "evaluate changes nothing");
        assert!(state.heart_failure());
    }

    #[test]
    fn alert_event_envelope() {
        let mut o = ev(7, 5, obs("spo2", 84.0, "%"));
        o.correlation_id = "corr-1".into();
        o.position = 12;
        o.recorded_at = Some(at(5));
        let d = AlertRules::default().apply(&o);
        let a = alert_event(&o, &d[0]);
        assert_eq!(
            a.event_id,
            alert_event_id(&o.event_id, RULE_SPO2_LOW).to_string()
        );
        assert_eq!(Uuid::parse_str(&a.event_id).unwrap().get_version_num(), 5);
        assert_ne!(
            a.event_id,
            alert_event_id(&o.event_id, RULE_HF_WEIGHT_GAIN).to_string()
        );
        assert_ne!(
            a.event_id,
            alert_event_id(&ev(8, 5, hf()).event_id, RULE_SPO2_LOW).to_string()
        );
        assert_eq!(a.causation_id, o.event_id);
        assert_eq!(a.correlation_id, "corr-1");
        assert_eq!(a.patient_id, "P1");
        assert_eq!(a.occurred_at, o.occurred_at);
        assert_eq!(a.actor.as_ref().unwrap().role, Role::System as i32);
        assert_eq!((a.position, a.stream_version, a.recorded_at), (0, 0, None));
        let Some(Payload::AlertRaised(r)) = &a.payload else {
            panic!("not an alert");
        };
        assert_eq!(r.alert_id, a.event_id);
        assert_eq!(r.severity, Critical as i32);
        assert_eq!(r.rule, RULE_SPO2_LOW);
        assert!(r.reason.contains("84"), "{}", r.reason);
        // Without a correlation id, the observation starts the chain.
        o.correlation_id.clear();
        assert_eq!(alert_event(&o, &d[0]).correlation_id, o.event_id);
        // And the alert passes ingest validation.
        crate::validate(&a, at(6)).unwrap();
    }

    #[test]
    fn heart_failure_codes() {
        let yes = [
            ("ICD-10", "I50"),
            ("ICD-10", "I50.9"),
            ("icd-10-cm", "I50.32"),
            ("ICD10", "I11.0"),
            ("ICD-10", "I13.2"),
            ("ICD-10-CM", "I09.81"),
            ("SNOMED-CT", "84114007"),
            ("SNOMED CT", "88805009"),
            ("http://snomed.info/sct", "42343007"),
        ];
        let no = [
            ("ICD-10", "I10"),
            ("ICD-10", "I11.9"),
            ("ICD-10", "J44"),
            ("SNOMED-CT", "38341003"),
            ("ATC", "I50"),
            ("LOINC", "84114007"),
        ];
        for (s, c) in yes {
            assert!(is_heart_failure(&code(s, c)), "{s} {c}");
        }
        for (s, c) in no {
            assert!(!is_heart_failure(&code(s, c)), "{s} {c}");
        }
    }

    #[test]
    fn measure_names() {
        assert_eq!(measure_key(" SpO2 "), "spo2");
        assert_eq!(measure_key("Body Weight"), "weight");
        assert_eq!(measure_key("Pain score"), "pain_score");
        assert_eq!(
            care_plan_rule(&measure_key("Heart-Rate")),
            "care_plan.heart_rate"
        );
    }
}
