//! HL7 v2 ADT over MLLP (crate `journey-hl7`): the door a hospital's interface engine points at
//! unchanged. It owns the wire (MLLP framing, [`mllp`]), the message ([`message`], with its
//! character sets in [`charset`]), the mapping of ADT triggers to journey events ([`mapping`],
//! docs/hl7.md) and the acknowledgement ([`ack`]), and serves them on a TCP port ([`listener`]).
//!
//! It knows the event catalogue (`journey-proto`) and nothing of the log, the rules or the
//! services: the events go to a [`listener::Sink`], the log's `Append` as the sending
//! organisation, given by the node (in process or over gRPC). Hand-written and small, as HL7
//! parsers in the field are: the grammar is separators and escapes.
pub mod ack;
pub mod charset;
pub mod fields;
pub mod listener;
pub mod mapping;
pub mod message;
pub mod mllp;

pub use chrono_tz::Tz;
pub use listener::{Config, Sink};
pub use mapping::Settings;
