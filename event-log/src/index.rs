//! In-memory indexes derived from the log: event id → position (idempotency) and patient →
//! positions (per-patient reads). Rebuilt by the scan at open, like the gate's state, so the
//! storage holds one record per event (a third of the writes and of the bytes on disk).
use std::collections::HashMap;
use uuid::Uuid;

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Index {
    by_id: HashMap<Uuid, u64>,
    /// Positions of a patient's events; version v is at index v - 1.
    by_patient: HashMap<String, Vec<u64>>,
}

impl Index {
    pub fn insert(&mut self, id: Uuid, patient_id: &str, position: u64) {
        self.by_id.insert(id, position);
        match self.by_patient.get_mut(patient_id) {
            Some(v) => v.push(position),
            None => {
                self.by_patient
                    .insert(patient_id.to_string(), vec![position]);
            }
        }
    }

    pub fn position_of(&self, id: &Uuid) -> Option<u64> {
        self.by_id.get(id).copied()
    }

    /// Positions of versions `from_version..`, at most `limit`.
    pub fn patient_positions(&self, patient_id: &str, from_version: u64, limit: usize) -> Vec<u64> {
        let skip = from_version.max(1) as usize - 1;
        self.by_patient
            .get(patient_id)
            .map(|v| v.iter().skip(skip).take(limit).copied().collect())
            .unwrap_or_default()
    }
}
