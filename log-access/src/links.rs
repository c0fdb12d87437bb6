//! Whether events read from an untrusted carrier (NATS) continue the log's chain: each one at the
//! next position, its `prev_hash` the hash of the event before it. Pure: the caller supplies the
//! hash it trusts for the position before the first event, and checks the last one's hash against
//! the log, which together vouch for every byte in between (BLAKE3 links).
use journey_proto::v1::Event;

/// Checks that `events` are positions `from, from + 1, …`, the first linking to `prev` (the hash
/// of the event at `from - 1`) and each next one to the one before it. `hash` must be the hash of
/// the bytes each event was decoded from. The error says which position breaks and how.
pub fn check(from: u64, prev: &[u8], events: &[Event]) -> Result<(), String> {
    let mut expected_prev = prev;
    for (expected_position, e) in (from..).zip(events) {
        if e.position != expected_position {
            return Err(format!(
                "position {} where {expected_position} was due",
                e.position
            ));
        }
        if e.prev_hash.as_slice() != expected_prev {
            return Err(format!(
                "the event at position {} does not link to the event before it (prev_hash differs)",
                e.position
            ));
        }
        expected_prev = &e.hash;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(from: u64, prev: &[u8], n: usize) -> Vec<Event> {
        let mut prev = prev.to_vec();
        (0..n as u64)
            .map(|i| {
                let e = Event {
                    position: from + i,
                    prev_hash: prev.clone(),
                    hash: vec![(from + i) as u8; 32],
                    ..Default::default()
                };
                prev = e.hash.clone();
                e
            })
            .collect()
    }

    #[test]
    fn a_chain_that_links_passes() {
        let events = chain(5, &[4; 32], 3);
        assert_eq!(check(5, &[4; 32], &events), Ok(()));
        assert_eq!(check(5, &[4; 32], &[]), Ok(()));
    }

    #[test]
    fn a_first_event_linking_elsewhere_is_refused() {
        let events = chain(5, &[9; 32], 2);
        let e = check(5, &[4; 32], &events).unwrap_err();
        assert!(e.contains("position 5") && e.contains("prev_hash"), "{e}");
    }

    #[test]
    fn an_altered_middle_event_breaks_the_next_link() {
        let mut events = chain(5, &[4; 32], 3);
        events[1].hash = vec![0xee; 32]; // its bytes changed, so its hash did
        let e = check(5, &[4; 32], &events).unwrap_err();
        assert!(e.contains("position 7"), "{e}");
    }

    #[test]
    fn a_position_out_of_turn_is_refused() {
        let events = chain(6, &[4; 32], 1);
        let e = check(5, &[4; 32], &events).unwrap_err();
        assert!(e.contains("position 6 where 5 was due"), "{e}");
    }
}
