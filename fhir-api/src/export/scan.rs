//! The log scanned for the patients of an export: of each event, its position, its patient and
//! its recorded time (what `_since` compares), in batches. The log of this process is read as
//! stored, each event's three fields picked from its encoding without decoding the rest (a whole
//! decode allocates every string of the payload, which the scan throws away); a remote log
//! through the node's event source.
use journey_event_log::EventLog;
use journey_log_access::EventSource;
use journey_proto::{
    prost::{
        bytes::Buf,
        encoding::{decode_key, message, skip_field, string, DecodeContext},
        DecodeError,
    },
    prost_types::Timestamp,
    v1::Event,
};
use journey_services::{errors, log_handle::Source};
use std::sync::Arc;
use tonic::Status;

/// `Event.patient_id`'s and `Event.recorded_at`'s field numbers.
const PATIENT_ID: u32 = 2;
const RECORDED_AT: u32 = 6;

pub(super) enum Scan {
    Local(Arc<EventLog>),
    Remote(Box<Source>),
}

impl Scan {
    /// The next events from `from` up to `to`, at most `max`: position, patient and recorded
    /// time only for the log of this process.
    pub(super) async fn range(
        &mut self,
        from: u64,
        to: u64,
        max: usize,
    ) -> Result<Vec<Event>, Status> {
        use errors::fhir_export_failed as failed;
        match self {
            Scan::Remote(source) => source.range(from, to, max).await.map_err(failed),
            Scan::Local(log) => {
                let log = log.clone();
                tokio::task::spawn_blocking(move || {
                    let stored = log.read_range(from, to, max).map_err(|e| failed(e.0))?;
                    stored
                        .iter()
                        .map(|s| {
                            let mut e = head(&s.bytes).map_err(failed)?;
                            e.position = s.position;
                            Ok(e)
                        })
                        .collect()
                })
                .await
                .map_err(failed)?
            }
        }
    }
}

/// An encoded event's patient and recorded time (the other fields left default).
fn head(mut buf: &[u8]) -> Result<Event, DecodeError> {
    let mut e = Event::default();
    while buf.has_remaining() {
        let (tag, wire_type) = decode_key(&mut buf)?;
        let ctx = DecodeContext::default();
        match tag {
            PATIENT_ID => string::merge(wire_type, &mut e.patient_id, &mut buf, ctx)?,
            RECORDED_AT => {
                let at = e.recorded_at.get_or_insert_with(Timestamp::default);
                message::merge(wire_type, at, &mut buf, ctx)?
            }
            _ => skip_field(wire_type, tag, &mut buf, ctx)?,
        }
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use journey_proto::{
        prost::Message,
        v1::{event::Payload, ObservationRecorded},
    };

    #[test]
    fn the_head_is_the_patient_and_the_recorded_time_of_the_whole_event() {
        let whole = Event {
            event_id: "e-1".into(),
            patient_id: "P-7".into(),
            recorded_at: Some(Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            occurred_at: Some(Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            payload: Some(Payload::ObservationRecorded(ObservationRecorded {
                measure: "weight".into(),
                value: 80.0,
                ..Default::default()
            })),
            ..Default::default()
        };
        let e = head(&whole.encode_to_vec()).unwrap();
        assert_eq!(
            (e.patient_id.as_str(), e.recorded_at),
            ("P-7", whole.recorded_at)
        );
        assert!(e.payload.is_none() && e.event_id.is_empty());
    }
}
