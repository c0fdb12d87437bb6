//! An encounter's movements, as the read models keep them: the live (not cancelled) admission,
//! transfers, leaves, class changes and discharge, each with its clinical time and its corrections
//! applied. What a stay is (admitted when, in which unit and class at the end, discharged when
//! and how) is derived from them in clinical order, so that a historic movement inserted late, a
//! past movement cancelled or a corrected one (IHE PAM-FR `ZBE-5 = Y`, Z99; docs/design.md §3)
//! gives exactly the stay the corrected history would have given had it been sent first.
//!
//! Both the readmission and the coordination projections store an encounter's movements beside
//! its row (`movements`, a short JSON list) and re-derive the row's stay fields after each change.
use journey_proto::v1::{event::Payload, Event, MovementCorrected};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Admission,
    Transfer,
    Discharge,
    LeaveStart,
    LeaveEnd,
    ClassChange,
}

/// One live movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub id: String,
    pub kind: Kind,
    /// Clinical time (Unix seconds), then log position: the movement's place in its encounter.
    pub at: i64,
    pub pos: u64,
    /// The unit it leads to (admission, transfer, class change); empty when unsaid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
    /// The class it sets (admission, class change), as a `Setting`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub setting: i32,
    /// A discharge's disposition.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub disposition: i32,
    /// It opened the encounter: the admission, or the class change that made an emergency visit
    /// a stay.
    #[serde(default, skip_serializing_if = "is_false")]
    pub opens: bool,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !v
}

/// A stay as its movements say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stay {
    pub admitted_at: i64,
    pub admit_event_id: String,
    /// The unit of the latest movement that names one (the unit at discharge, once discharged).
    pub unit: String,
    /// The class of the latest admission or class change.
    pub setting: i32,
    pub discharged_at: Option<i64>,
    pub discharge_event_id: Option<String>,
    pub disposition: i32,
}

/// The live movements of one encounter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movements(Vec<Movement>);

/// What an event does to the movements of an encounter.
pub enum Change<'e> {
    /// A new movement of this encounter.
    Add(&'e str, Movement),
    /// Cancels the movement with this event id (whichever encounter holds it).
    Cancel(&'e str),
    /// Corrects the movement it names.
    Correct(&'e MovementCorrected),
}

fn secs(e: &Event) -> i64 {
    e.occurred_at.as_ref().map_or(0, |t| t.seconds)
}

/// The change `e` makes to some encounter's movements, if it is a movement event.
pub fn change(e: &Event) -> Option<Change<'_>> {
    let m = |kind, unit: &str, setting, disposition| Movement {
        id: e.event_id.clone(),
        kind,
        at: secs(e),
        pos: e.position,
        unit: unit.to_owned(),
        setting,
        disposition,
        opens: false,
    };
    Some(match e.payload.as_ref()? {
        Payload::Admitted(a) => {
            Change::Add(&a.encounter_id, m(Kind::Admission, &a.unit, a.setting, 0))
        }
        Payload::Transferred(t) => {
            Change::Add(&t.encounter_id, m(Kind::Transfer, &t.to_unit, 0, 0))
        }
        Payload::Discharged(d) => {
            Change::Add(&d.encounter_id, m(Kind::Discharge, "", 0, d.disposition))
        }
        // A leave does not move the patient out of the stay's unit.
        Payload::LeaveStarted(l) => Change::Add(&l.encounter_id, m(Kind::LeaveStart, "", 0, 0)),
        Payload::LeaveEnded(l) => Change::Add(&l.encounter_id, m(Kind::LeaveEnd, "", 0, 0)),
        Payload::ClassChanged(c) => {
            Change::Add(&c.encounter_id, m(Kind::ClassChange, &c.unit, c.setting, 0))
        }
        Payload::AdmissionCancelled(c) => Change::Cancel(&c.cancelled_event_id),
        Payload::TransferCancelled(c) => Change::Cancel(&c.cancelled_event_id),
        Payload::DischargeCancelled(c) => Change::Cancel(&c.cancelled_event_id),
        Payload::MovementCancelled(c) => Change::Cancel(&c.cancelled_event_id),
        Payload::MovementCorrected(c) => Change::Correct(c),
        _ => return None,
    })
}

/// Finds the row among a patient's encounter rows that `change` concerns (the encounter it names,
/// or the one holding the movement it cancels or corrects) and applies the change to that row's
/// movements; the row, when the change applied.
pub fn apply<'r, R>(
    rows: &'r mut [R],
    change: Change<'_>,
    encounter_id: impl Fn(&R) -> &str,
    movements: impl Fn(&mut R) -> &mut Movements,
) -> Option<&'r mut R> {
    let i = rows.iter_mut().position(|r| match &change {
        Change::Add(encounter, _) => encounter_id(r) == *encounter,
        Change::Cancel(id) => movements(r).holds(id),
        Change::Correct(c) => movements(r).holds(&c.corrected_event_id),
    })?;
    let row = &mut rows[i];
    let m = movements(row);
    let applied = match change {
        Change::Add(_, movement) => {
            m.add(movement);
            true
        }
        Change::Cancel(id) => m.cancel(id),
        Change::Correct(c) => m.correct(c),
    };
    applied.then_some(row)
}

impl Movements {
    /// The stored form (empty text for none).
    pub fn from_text(text: &str) -> Movements {
        if text.is_empty() {
            return Movements::default();
        }
        Movements(serde_json::from_str(text).unwrap_or_default())
    }

    pub fn to_text(&self) -> String {
        serde_json::to_string(&self.0).expect("movements serialise")
    }

    pub fn holds(&self, id: &str) -> bool {
        self.0.iter().any(|m| m.id == id)
    }

    /// Adds a movement (a second one with the same event id changes nothing); the first one
    /// opens the encounter.
    pub fn add(&mut self, mut m: Movement) {
        if !self.holds(&m.id) {
            m.opens = self.0.is_empty();
            self.0.push(m);
        }
    }

    /// Removes the movement with this id; whether it was here.
    pub fn cancel(&mut self, id: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|m| m.id != id);
        self.0.len() != before
    }

    /// Applies a correction to the movement it names; whether it was here.
    pub fn correct(&mut self, c: &MovementCorrected) -> bool {
        let Some(m) = self.0.iter_mut().find(|m| m.id == c.corrected_event_id) else {
            return false;
        };
        if let Some(t) = &c.moved_at {
            m.at = t.seconds;
        }
        if !c.unit.is_empty() {
            m.unit = c.unit.clone();
        }
        if c.setting != 0 {
            m.setting = c.setting;
        }
        if c.disposition != 0 {
            m.disposition = c.disposition;
        }
        true
    }

    /// The stay the movements make; `None` without a live admission.
    pub fn stay(&self) -> Option<Stay> {
        let mut ordered: Vec<&Movement> = self.0.iter().collect();
        ordered.sort_by_key(|m| (m.at, m.pos));
        let admission = ordered.iter().find(|m| m.opens)?;
        let discharge = ordered.iter().find(|m| m.kind == Kind::Discharge);
        let latest = |pick: &dyn Fn(&Movement) -> bool| ordered.iter().rev().find(|m| pick(m));
        let unit = latest(&|m| {
            matches!(m.kind, Kind::Admission | Kind::Transfer | Kind::ClassChange)
                && !m.unit.is_empty()
        })
        .map_or(admission.unit.clone(), |m| m.unit.clone());
        let setting = latest(&|m| matches!(m.kind, Kind::Admission | Kind::ClassChange))
            .map_or(admission.setting, |m| m.setting);
        Some(Stay {
            admitted_at: admission.at,
            admit_event_id: admission.id.clone(),
            unit,
            setting,
            discharged_at: discharge.map(|d| d.at),
            discharge_event_id: discharge.map(|d| d.id.clone()),
            disposition: discharge.map_or(0, |d| d.disposition),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::Timestamp;

    fn mv(id: &str, kind: Kind, at: i64, pos: u64, unit: &str) -> Movement {
        Movement {
            id: id.into(),
            kind,
            at,
            pos,
            unit: unit.into(),
            setting: if kind == Kind::Admission { 1 } else { 0 },
            disposition: if kind == Kind::Discharge { 1 } else { 0 },
            opens: false,
        }
    }

    fn stay(ms: &[Movement]) -> Option<Stay> {
        let mut m = Movements::default();
        for x in ms {
            m.add(x.clone());
        }
        Movements::from_text(&m.to_text()).stay()
    }

    #[test]
    fn a_forgotten_transfer_sent_late_gives_the_stay_sent_in_order() {
        // given PAM-FR §5.3.7: cardio, bloc, (réa forgotten), cardio, discharge
        let in_order = [
            mv("1", Kind::Admission, 0, 1, "cardio"),
            mv("2", Kind::Transfer, 10, 2, "bloc"),
            mv("5", Kind::Transfer, 20, 3, "rea"),
            mv("3", Kind::Transfer, 30, 4, "cardio"),
            mv("4", Kind::Discharge, 40, 5, ""),
        ];
        let late = [
            mv("1", Kind::Admission, 0, 1, "cardio"),
            mv("2", Kind::Transfer, 10, 2, "bloc"),
            mv("3", Kind::Transfer, 30, 3, "cardio"),
            mv("4", Kind::Discharge, 40, 4, ""),
            mv("5", Kind::Transfer, 20, 5, "rea"),
        ];
        // then the derived stays are equal (positions differ, order by time decides)
        assert_eq!(stay(&in_order), stay(&late));
        assert_eq!(stay(&late).unwrap().unit, "cardio");
    }

    #[test]
    fn cancelling_a_past_transfer_keeps_the_unit_of_the_latest() {
        let mut m = Movements::default();
        for x in [
            mv("1", Kind::Admission, 0, 1, "cardio"),
            mv("2", Kind::Transfer, 10, 2, "rea"),
            mv("3", Kind::Transfer, 20, 3, "bloc"),
        ] {
            m.add(x);
        }
        assert!(m.cancel("2"));
        assert_eq!(m.stay().unwrap().unit, "bloc");
        assert!(m.cancel("3"));
        assert_eq!(m.stay().unwrap().unit, "cardio");
        assert!(m.cancel("1"));
        assert_eq!(m.stay(), None);
        assert!(!m.cancel("1"));
    }

    #[test]
    fn a_corrected_discharge_time_moves_the_discharge() {
        let mut m = Movements::default();
        m.add(mv("1", Kind::Admission, 0, 1, "cardio"));
        m.add(mv("2", Kind::Discharge, 100, 2, ""));
        let c = MovementCorrected {
            corrected_event_id: "2".into(),
            moved_at: Some(Timestamp {
                seconds: 50,
                nanos: 0,
            }),
            disposition: 6,
            ..Default::default()
        };
        assert!(m.correct(&c));
        let s = m.stay().unwrap();
        assert_eq!((s.discharged_at, s.disposition), (Some(50), 6));
    }
}
