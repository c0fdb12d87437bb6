//! The tamper-evident chain: each event's stored encoding carries the hash of the previous event
//! (`prev_hash`), and its own hash is BLAKE3 of that encoding. Altering, removing or reordering a
//! stored event breaks a link; truncating the tail is caught against an anchor kept elsewhere.
use crate::{error::StorageError, storage::Storage};
use journey_proto::{prost::Message, v1::Event};

/// `prev_hash` of the event at position 1.
pub const ZERO_HASH: [u8; 32] = [0; 32];

/// BLAKE3 of an event's stored encoding.
pub fn hash_of(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    /// The first position at fault and what is wrong there; `None` when the range verifies.
    pub first_bad: Option<(u64, String)>,
}

const VERIFY_BATCH: usize = 4096;

/// Verifies positions `from..=to` (stop at the first bad one). `to` is the head the caller trusts
/// (the durable watermark); `anchor` is an externally kept (position, hash).
pub fn verify(
    storage: &dyn Storage,
    from: u64,
    to: u64,
    anchor: Option<(u64, [u8; 32])>,
) -> Result<VerifyReport, StorageError> {
    let from = from.max(1);
    let mut checked = 0;
    let bad = |checked, pos, msg: String| {
        Ok(VerifyReport {
            checked,
            first_bad: Some((pos, msg)),
        })
    };
    if let Some((pos, hash)) = anchor {
        match storage.read(pos, pos, 1)?.first() {
            None => {
                return bad(
                    0,
                    pos,
                    format!("anchored event at position {pos} is missing (truncated log?)"),
                )
            }
            Some(e) if e.hash != hash => {
                return bad(
                    0,
                    pos,
                    format!("event at position {pos} does not match the anchored hash"),
                )
            }
            Some(_) => {}
        }
    }
    let mut expected_prev = if from == 1 {
        ZERO_HASH
    } else {
        match storage.read(from - 1, from - 1, 1)?.first() {
            Some(e) => e.hash,
            None => return bad(0, from - 1, "event missing".into()),
        }
    };
    let mut next = from;
    while next <= to {
        let batch = storage.read(next, to, VERIFY_BATCH)?;
        if batch.is_empty() {
            return bad(checked, next, "event missing".into());
        }
        for stored in batch {
            let pos = stored.position;
            if pos != next {
                return bad(checked, next, "event missing".into());
            }
            if hash_of(&stored.bytes) != stored.hash {
                return bad(
                    checked,
                    pos,
                    "stored bytes do not match their hash (altered)".into(),
                );
            }
            let event = match Event::decode(stored.bytes.as_slice()) {
                Ok(e) => e,
                Err(e) => return bad(checked, pos, format!("undecodable event: {e}")),
            };
            if event.position != pos {
                return bad(
                    checked,
                    pos,
                    format!("event claims position {} (moved)", event.position),
                );
            }
            if event.prev_hash.as_slice() != expected_prev {
                return bad(
                    checked,
                    pos,
                    "prev_hash does not link to the previous event".into(),
                );
            }
            expected_prev = stored.hash;
            checked += 1;
            next = pos + 1;
        }
    }
    Ok(VerifyReport {
        checked,
        first_bad: None,
    })
}
