//! The movements of a patient's encounters (docs/design.md §3): admission, transfers, leaves of
//! absence, class changes, discharge; their cancellations and corrections, the latest one or,
//! when the sender flags the correction as historic (IHE PAM-FR `ZBE-5 = Y`), a past one.
//!
//! A movement's place in its encounter is its clinical time (then its log position): a historic
//! transfer inserted late sits where it happened, and "the latest movement" is the latest in that
//! order, so that the state is the one the corrected history would have given had it been sent
//! first.
use super::{refuse, Instant, PatientState, Refusal, Rule};
use journey_proto::v1::{Disposition, MovementCorrected, Setting};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum Kind {
    Admission,
    Transfer,
    Discharge,
    LeaveStart,
    LeaveEnd,
    ClassChange,
}

impl Kind {
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Admission => "admission",
            Kind::Transfer => "transfer",
            Kind::Discharge => "discharge",
            Kind::LeaveStart => "leave of absence",
            Kind::LeaveEnd => "return from leave",
            Kind::ClassChange => "class change",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Movement {
    pub(super) kind: Kind,
    pub(super) encounter_id: String,
    pub(super) cancelled: bool,
    /// Clinical time, then log position: the movement's place in its encounter.
    at: Instant,
    position: u64,
    /// The class it sets (an admission, a class change), as a `Setting`.
    setting: i32,
    /// A discharge's disposition.
    disposition: i32,
    /// It opened the encounter: an admission, or the class change that made an emergency visit a
    /// stay.
    #[serde(default)]
    opens: bool,
}

impl Movement {
    fn order(&self) -> (Instant, u64) {
        (self.at, self.position)
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Encounter {
    /// The organisation that opened it (its admission's actor).
    pub(super) organisation: String,
    pub(super) inpatient: bool,
    pub(super) open: bool,
    /// Event ids of the live (non-cancelled) movements, in log order.
    movements: Vec<String>,
}

/// One movement as an event brings it.
pub(super) struct New<'a> {
    pub(super) event_id: &'a str,
    pub(super) encounter_id: &'a str,
    pub(super) kind: Kind,
    pub(super) at: Instant,
    pub(super) position: u64,
    pub(super) historic: bool,
    pub(super) setting: i32,
    pub(super) disposition: i32,
}

/// The name with its indefinite article.
fn a(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

fn inpatient(setting: i32) -> bool {
    setting == Setting::Inpatient as i32
}

impl PatientState {
    pub(super) fn other_open_inpatient(&self, except: &str) -> Option<&str> {
        self.encounters
            .iter()
            .find(|(id, e)| e.open && e.inpatient && id.as_str() != except)
            .map(|(id, _)| id.as_str())
    }

    fn live<'s>(&'s self, enc: &'s Encounter) -> impl Iterator<Item = (&'s str, &'s Movement)> {
        enc.movements
            .iter()
            .filter_map(|id| self.movements.get(id).map(|m| (id.as_str(), m)))
    }

    /// The live movement of `kind` of an encounter (its discharge).
    fn first_of<'s>(&'s self, enc: &'s Encounter, kind: Kind) -> Option<&'s Movement> {
        self.live(enc).map(|(_, m)| m).find(|m| m.kind == kind)
    }

    /// The live movement that opened the encounter.
    fn opener<'s>(&'s self, enc: &'s Encounter) -> Option<&'s Movement> {
        self.live(enc).map(|(_, m)| m).find(|m| m.opens)
    }

    /// The encounter's latest live movement, in clinical order.
    fn latest<'s>(&'s self, enc: &'s Encounter) -> Option<&'s str> {
        self.live(enc)
            .max_by_key(|(_, m)| m.order())
            .map(|(id, _)| id)
    }

    /// The encounter's class: its latest class change's, else its admission's.
    fn refresh_class(&mut self, encounter_id: &str) {
        let Some(enc) = self.encounters.get(encounter_id) else {
            return;
        };
        let setting = self
            .live(enc)
            .map(|(_, m)| m)
            .filter(|m| matches!(m.kind, Kind::Admission | Kind::ClassChange))
            .max_by_key(|m| m.order())
            .map(|m| m.setting);
        if let (Some(s), Some(enc)) = (setting, self.encounters.get_mut(encounter_id)) {
            enc.inpatient = inpatient(s);
        }
    }

    /// When the patient died, if the death came from this discharge.
    fn death_from(&self, discharge: &str) -> bool {
        self.death
            .as_ref()
            .and_then(|d| d.discharge_event_id.as_deref())
            == Some(discharge)
    }
}

/// An admission, or a class change making an emergency visit a stay: a new encounter.
pub(super) fn admit(
    st: &mut PatientState,
    pid: &str,
    m: New,
    organisation: &str,
    check: bool,
) -> Result<(), Refusal> {
    let is_inpatient = inpatient(m.setting);
    if check {
        if st.encounters.contains_key(m.encounter_id) {
            return Err(refuse(
                Rule::EncounterAlreadyAdmitted,
                format!(
                    "encounter admitted twice: encounter {} of patient {pid} was already admitted",
                    m.encounter_id
                ),
            ));
        }
        if is_inpatient {
            if let Some(other) = st.other_open_inpatient(m.encounter_id) {
                return Err(refuse(
                    Rule::SecondOpenInpatientStay,
                    format!(
                        "second open inpatient stay: patient {pid} is still admitted as inpatient in encounter {other}"
                    ),
                ));
            }
        }
    }
    st.encounters.insert(
        m.encounter_id.to_owned(),
        Encounter {
            organisation: organisation.to_owned(),
            inpatient: is_inpatient,
            open: true,
            movements: vec![m.event_id.to_owned()],
        },
    );
    record(st, &m, true);
    Ok(())
}

fn record(st: &mut PatientState, m: &New, opens: bool) {
    st.movements.insert(
        m.event_id.to_owned(),
        Movement {
            kind: m.kind,
            encounter_id: m.encounter_id.to_owned(),
            cancelled: false,
            at: m.at,
            position: m.position,
            setting: m.setting,
            disposition: m.disposition,
            opens,
        },
    );
}

/// Whether `at` lies within the encounter's stay: not before its admission, and (for a historic
/// movement of a closed stay) not after its discharge.
fn within_stay(
    st: &PatientState,
    enc: &Encounter,
    what: &str,
    encounter_id: &str,
    at: Instant,
) -> Result<(), Refusal> {
    if let Some(adm) = st.opener(enc) {
        if at < adm.at {
            return Err(refuse(
                Rule::BeforeAdmission,
                format!("{what} before admission: {what} of encounter {encounter_id} occurs before its admission"),
            ));
        }
    }
    if let Some(dis) = st.first_of(enc, Kind::Discharge) {
        if at > dis.at {
            return Err(refuse(
                Rule::AfterDischarge,
                format!("{what} after discharge: {what} of encounter {encounter_id} occurs after its discharge"),
            ));
        }
    }
    Ok(())
}

/// A transfer, a leave or its end, a class change, or a discharge. Outside a historic
/// correction the encounter must be open; a historic one may be closed, the movement then
/// within the stay.
pub(super) fn movement(
    st: &mut PatientState,
    pid: &str,
    m: New,
    check: bool,
) -> Result<(), Refusal> {
    let what = m.kind.name();
    if check {
        match st.encounters.get(m.encounter_id) {
            Some(e) if e.open || (m.historic && m.kind != Kind::Discharge) => {
                within_stay(st, e, what, m.encounter_id, m.at)?;
                if m.kind == Kind::ClassChange && inpatient(m.setting) && e.open {
                    if let Some(other) = st.other_open_inpatient(m.encounter_id) {
                        return Err(refuse(
                            Rule::SecondOpenInpatientStay,
                            format!(
                                "{what}: encounter {} would be a second open inpatient stay with {other}",
                                m.encounter_id
                            ),
                        ));
                    }
                }
            }
            _ => {
                return Err(refuse(
                    Rule::NoOpenAdmission,
                    format!(
                        "{what} without open admission: encounter {} of patient {pid} is not open",
                        m.encounter_id
                    ),
                ))
            }
        }
    }
    let Some(enc) = st.encounters.get_mut(m.encounter_id) else {
        record(st, &m, false);
        return Ok(());
    };
    enc.movements.push(m.event_id.to_owned());
    if m.kind == Kind::Discharge {
        enc.open = false;
    }
    record(st, &m, false);
    if m.kind == Kind::ClassChange {
        st.refresh_class(m.encounter_id);
    }
    Ok(())
}

/// A cancellation of `target`, which must be a movement of the `allowed` kinds; the latest live
/// one of its encounter, or any when `historic` (an admission only once its later movements are
/// cancelled).
pub(super) fn cancel(
    st: &mut PatientState,
    pid: &str,
    target: &str,
    allowed: &[Kind],
    historic: bool,
    check: bool,
) -> Result<(), Refusal> {
    let what = format!("{} cancellation", allowed[0].name());
    let what = if allowed.len() > 1 {
        "movement cancellation".to_owned()
    } else {
        what
    };
    let Some(m) = st.movements.get(target) else {
        return if check {
            Err(refuse(
                Rule::CancelledEventUnknown,
                format!("{what}: event {target} is not a movement of patient {pid}"),
            ))
        } else {
            Ok(())
        };
    };
    let (kind, opens) = (m.kind, m.opens);
    let encounter_id = m.encounter_id.clone();
    if check {
        if !allowed.contains(&kind) {
            let expected: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
            return Err(refuse(
                Rule::CancelledKindMismatch,
                format!(
                    "{what}: event {target} is {}, not {}",
                    a(kind.name()),
                    expected
                        .iter()
                        .map(|k| a(k))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ));
        }
        if m.cancelled {
            return Err(refuse(
                Rule::AlreadyCancelled,
                format!("{what}: event {target} is already cancelled"),
            ));
        }
        if let Some(enc) = st.encounters.get(&encounter_id) {
            let latest = st.latest(enc);
            if opens && st.live(enc).count() > 1 {
                return Err(refuse(
                    Rule::NotLatestMovement,
                    format!(
                        "{what}: event {target} is not the latest movement of encounter {encounter_id}: cancel its later movements first"
                    ),
                ));
            }
            if !historic && latest != Some(target) {
                return Err(refuse(
                    Rule::NotLatestMovement,
                    format!(
                        "{what}: event {target} is not the latest movement of encounter {encounter_id} (a correction of a past movement is flagged historic)"
                    ),
                ));
            }
            if kind == Kind::Discharge && enc.inpatient {
                if let Some(other) = st.other_open_inpatient(&encounter_id) {
                    return Err(refuse(
                        Rule::SecondOpenInpatientStay,
                        format!(
                            "{what}: re-opening encounter {encounter_id} would make a second open inpatient stay with {other}"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(m) = st.movements.get_mut(target) {
        m.cancelled = true;
    }
    if opens {
        st.encounters.remove(&encounter_id);
        return Ok(());
    }
    if let Some(e) = st.encounters.get_mut(&encounter_id) {
        e.movements.retain(|id| id != target);
        if kind == Kind::Discharge {
            e.open = true;
        }
    }
    if kind == Kind::ClassChange {
        st.refresh_class(&encounter_id);
    }
    if kind == Kind::Discharge && st.death_from(target) {
        st.death = None;
    }
    Ok(())
}

/// A correction of a recorded movement (PAM-FR Z99): its time, unit, class or disposition. The
/// movement keeps its place rules: an admission stays first, a discharge last, any other within
/// the stay.
pub(super) fn correct(
    st: &mut PatientState,
    pid: &str,
    c: &MovementCorrected,
    check: bool,
) -> Result<(), Refusal> {
    let target = c.corrected_event_id.as_str();
    let Some(m) = st.movements.get(target).filter(|m| !m.cancelled) else {
        return if check {
            Err(refuse(
                Rule::CorrectedEventUnknown,
                format!(
                    "movement correction: event {target} is not a live movement of patient {pid}"
                ),
            ))
        } else {
            Ok(())
        };
    };
    let (kind, opens, encounter_id) = (m.kind, m.opens, m.encounter_id.clone());
    let at = c.moved_at.as_ref().map(|t| (t.seconds, t.nanos));
    if check {
        let what = format!("correction of the {}", kind.name());
        let mismatch = |field: &str| {
            Err(refuse(
                Rule::CorrectionMismatch,
                format!("{what} {target}: {} has no {field}", a(kind.name())),
            ))
        };
        if (c.disposition != 0 || !c.destination_facility_id.is_empty()) && kind != Kind::Discharge
        {
            return mismatch("disposition or destination");
        }
        if c.setting != 0 && !matches!(kind, Kind::Admission | Kind::ClassChange) {
            return mismatch("class");
        }
        if !c.unit.is_empty() && kind == Kind::Discharge {
            return mismatch("unit");
        }
        if c.setting == Setting::Outpatient as i32 && kind == Kind::Admission {
            return mismatch("outpatient class (an admission opens a stay)");
        }
        if let (Some(at), Some(enc)) = (at, st.encounters.get(&encounter_id)) {
            let others = st.live(enc).filter(|(id, _)| *id != target);
            for (_, o) in others {
                let wrong = if opens {
                    o.at < at
                } else if kind == Kind::Discharge {
                    o.at > at
                } else {
                    (o.opens && at < o.at) || (o.kind == Kind::Discharge && at > o.at)
                };
                if wrong {
                    let rule = if kind == Kind::Discharge || o.kind == Kind::Discharge {
                        Rule::AfterDischarge
                    } else {
                        Rule::BeforeAdmission
                    };
                    return Err(refuse(
                        rule,
                        format!(
                            "{what} {target}: the new time would put a {} of encounter {encounter_id} out of order",
                            o.kind.name()
                        ),
                    ));
                }
            }
        }
        if inpatient(c.setting) {
            if let Some(other) = st
                .encounters
                .get(&encounter_id)
                .filter(|e| e.open && !e.inpatient)
                .and_then(|_| st.other_open_inpatient(&encounter_id))
            {
                return Err(refuse(
                    Rule::SecondOpenInpatientStay,
                    format!(
                        "{what} {target}: encounter {encounter_id} would be a second open inpatient stay with {other}"
                    ),
                ));
            }
        }
    }
    let m = st.movements.get_mut(target).expect("checked above");
    if let Some(at) = at {
        m.at = at;
    }
    if c.setting != 0 {
        m.setting = c.setting;
    }
    let was_deceased = m.disposition == Disposition::Deceased as i32;
    if c.disposition != 0 {
        m.disposition = c.disposition;
    }
    let (now_deceased, m_at) = (m.disposition == Disposition::Deceased as i32, m.at);
    if matches!(kind, Kind::Admission | Kind::ClassChange) {
        st.refresh_class(&encounter_id);
    }
    if kind == Kind::Discharge {
        if st.death_from(target) {
            if now_deceased {
                if let Some(d) = st.death.as_mut() {
                    d.at = m_at;
                }
            } else if was_deceased {
                st.death = None;
            }
        } else if now_deceased && st.death.is_none() {
            st.death = Some(super::Death {
                at: m_at,
                declared: false,
                discharge_event_id: Some(target.to_owned()),
            });
        }
    }
    Ok(())
}
