//! The head of a stored event read without decoding it whole: its id and its type. Publishing an
//! event needs only these; a full decode allocates every string of the payload.
use crate::EventType;
use prost::{
    bytes::Buf,
    encoding::{decode_key, skip_field, string, DecodeContext},
    DecodeError,
};

/// `Event.event_id`'s field number.
const EVENT_ID: u32 = 1;

/// An encoded event's id and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHead {
    pub event_id: String,
    /// `None` when the payload is missing or of a type this catalogue does not know.
    pub event_type: Option<EventType>,
}

impl EventHead {
    /// Reads the id and the payload's type of an encoded `Event`, skipping every other field.
    pub fn peek(mut buf: &[u8]) -> Result<EventHead, DecodeError> {
        let mut head = EventHead {
            event_id: String::new(),
            event_type: None,
        };
        while buf.has_remaining() {
            let (tag, wire_type) = decode_key(&mut buf)?;
            if tag == EVENT_ID {
                string::merge(
                    wire_type,
                    &mut head.event_id,
                    &mut buf,
                    DecodeContext::default(),
                )?;
                continue;
            }
            if let Some(t) = EventType::of_tag(tag) {
                head.event_type = Some(t);
            }
            skip_field(wire_type, tag, &mut buf, DecodeContext::default())?;
        }
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{prost::Message, v1::Event};

    #[test]
    fn peek_finds_the_id_and_type_of_every_event_type() {
        for t in EventType::ALL {
            let e = Event {
                event_id: "0192f0c4-7b1e-7cc0-9a55-3f2d8e4b1a01".into(),
                patient_id: "p-1".into(),
                position: 42,
                prev_hash: vec![7; 32],
                payload: Some(t.empty_payload()),
                ..Default::default()
            };
            let bytes = e.encode_to_vec();
            let head = EventHead::peek(&bytes).expect("peek");
            assert_eq!(head.event_id, e.event_id);
            assert_eq!(head.event_type, Some(*t), "{t}");
            assert_eq!(EventType::of(e.payload.as_ref().expect("payload")), *t);
        }
    }

    #[test]
    fn peek_without_payload_or_id() {
        let bytes = Event {
            patient_id: "p-1".into(),
            ..Default::default()
        }
        .encode_to_vec();
        let head = EventHead::peek(&bytes).expect("peek");
        assert_eq!((head.event_id.as_str(), head.event_type), ("", None));
    }

    #[test]
    fn peek_refuses_truncated_bytes() {
        let bytes = Event {
            event_id: "0192f0c4-7b1e-7cc0-9a55-3f2d8e4b1a01".into(),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(EventHead::peek(&bytes[..bytes.len() - 3]).is_err());
        assert!(EventHead::peek(&[0xff]).is_err());
    }
}
