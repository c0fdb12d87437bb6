//! Chunks: consecutive events of one written group stored under one sled key.
//!
//! sled 0.34 splits a leaf every 16 keys and logs a delta per insert; one key per event made sled
//! the larger half of the writer's time. A chunk holds up to [`MAX_EVENTS`] events or about
//! [`MAX_BYTES`] of them, so that reading one event (an idempotent retry, a patient's stream)
//! still touches little.
//!
//! Value layout, per event: `position` (u64 LE) · `hash` (32 bytes) · `length` (u32 LE) · bytes.
use crate::{error::StorageError, storage::StoredEvent};

pub(crate) const MAX_EVENTS: usize = 64;
pub(crate) const MAX_BYTES: usize = 64 * 1024;
const HEADER: usize = 8 + 32 + 4;

/// One event as it lies in a chunk.
pub(crate) struct Entry<'a> {
    pub position: u64,
    pub hash: &'a [u8; 32],
    pub bytes: &'a [u8],
}

impl Entry<'_> {
    pub fn stored(&self) -> StoredEvent {
        StoredEvent {
            position: self.position,
            hash: *self.hash,
            bytes: self.bytes.to_vec(),
        }
    }
}

/// Splits events, in position order, into chunks: (first position, encoded value).
pub(crate) fn chunks<'a>(events: impl IntoIterator<Item = Entry<'a>>) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut in_last = 0;
    for e in events {
        let full = match out.last() {
            None => true,
            Some((_, value)) => in_last == MAX_EVENTS || value.len() >= MAX_BYTES,
        };
        if full {
            out.push((e.position, Vec::with_capacity(HEADER + e.bytes.len())));
            in_last = 0;
        }
        let value = &mut out.last_mut().expect("a chunk").1;
        value.extend_from_slice(&e.position.to_le_bytes());
        value.extend_from_slice(e.hash);
        value.extend_from_slice(&(e.bytes.len() as u32).to_le_bytes());
        value.extend_from_slice(e.bytes);
        in_last += 1;
    }
    out
}

/// The events of a chunk value, in order.
pub(crate) fn entries(value: &[u8]) -> Result<Vec<Entry<'_>>, StorageError> {
    let mut out = Vec::new();
    let mut rest = value;
    while !rest.is_empty() {
        let corrupt = || StorageError(format!("corrupt chunk of {} bytes", value.len()));
        let head = rest.get(..HEADER).ok_or_else(corrupt)?;
        let position = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let hash: &[u8; 32] = head[8..40].try_into().expect("32 bytes");
        let len = u32::from_le_bytes(head[40..].try_into().expect("4 bytes")) as usize;
        let bytes = rest.get(HEADER..HEADER + len).ok_or_else(corrupt)?;
        out.push(Entry {
            position,
            hash,
            bytes,
        });
        rest = &rest[HEADER + len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, bytes: &[u8]) -> Entry<'_> {
        Entry {
            position,
            hash: &[7; 32],
            bytes,
        }
    }

    #[test]
    fn chunks_are_capped_and_read_back_in_order() {
        let small = vec![1u8; 100];
        let events: Vec<_> = (1..=150).map(|p| entry(p, &small)).collect();
        let chunks = chunks(events);
        assert_eq!(
            chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![1, 65, 129]
        );
        let back: Vec<u64> = chunks
            .iter()
            .flat_map(|(_, v)| entries(v).unwrap().into_iter().map(|e| e.position))
            .collect();
        assert_eq!(back, (1..=150).collect::<Vec<_>>());

        // Large events: a chunk closes once it holds MAX_BYTES.
        let big = vec![2u8; 40 * 1024];
        let chunks = super::chunks((1..=5).map(|p| entry(p, &big)));
        assert_eq!(
            chunks.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![1, 3, 5]
        );
    }

    #[test]
    fn a_truncated_chunk_is_an_error() {
        let bytes = vec![3u8; 10];
        let (_, value) = chunks([entry(9, &bytes)]).remove(0);
        assert_eq!(entries(&value).unwrap()[0].bytes, &bytes[..]);
        assert!(entries(&value[..value.len() - 1]).is_err());
    }
}
