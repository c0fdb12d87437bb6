//! The one schema of the journey backbone: the v1 event catalogue and the service APIs,
//! generated from `proto/journey/v1/*.proto`. This crate holds types only: no IO, no rules.

#[allow(clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("journey.v1");
}

/// The encoded `FileDescriptorSet` of every journey proto (for gRPC reflection and JSON).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/journey_descriptor.bin"));

pub use prost;
pub use prost_types;

mod event_type;
pub use event_type::EventType;

mod head;
pub use head::EventHead;

pub mod trace;

pub mod hex;
pub mod json;
