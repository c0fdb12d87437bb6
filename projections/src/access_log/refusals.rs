//! Refused calls, counted rather than written one by one where a flood could come from.
//!
//! A call refused without an identity (no token, an unknown token, a JWT that does not verify)
//! writes no record of its own: it is counted per source address, call and reason, and each
//! minute's counts become one record per source (`calls` = how many). A known caller refused
//! (a role that may not make the call) gets a record per call up to [`ALONE_PER_MINUTE`] a
//! minute from one address; beyond, its refusals are counted likewise. Memory is bounded: at most
//! [`MAX_KEYS`] counters and [`MAX_CALLERS`] callers a minute; beyond, sources are counted
//! together as "(other sources)".
use super::record::{bounded, Record as Row, DETAIL, SHORT};
use std::{collections::HashMap, net::SocketAddr, sync::Mutex};

/// A known caller: subject, role, organisation.
pub struct Caller<'a> {
    pub subject: &'a str,
    pub role: &'a str,
    pub organisation: &'a str,
}

/// A refused call: who (if known), from where, which call (one of the methods served, else
/// "(unknown method)": a caller cannot make a counter per path it invents), the outcome
/// ("unauthenticated", "permissiondenied") and why.
pub struct Refused<'a> {
    pub caller: Option<Caller<'a>>,
    pub peer: Option<SocketAddr>,
    pub call: &'a str,
    pub outcome: &'a str,
    pub reason: &'a str,
}

/// Refusals of one known caller from one address recorded one by one in a minute.
pub const ALONE_PER_MINUTE: u32 = 20;
/// Counters kept at once (sources × calls × reasons of the minutes not yet written).
const MAX_KEYS: usize = 4_096;
/// Known callers whose refusals are counted in the current minute.
const MAX_CALLERS: usize = 4_096;
const MINUTE: i64 = 60_000_000;

#[derive(Default)]
pub struct Refusals {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    minute: i64,
    /// Refusals recorded alone this minute, per (address, subject).
    alone: HashMap<(String, String), u32>,
    counted: HashMap<Key, Count>,
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct Key {
    minute: i64,
    peer: String,
    subject: String,
    role: String,
    organisation: String,
    call: String,
    outcome: String,
    reason: String,
}

struct Count {
    first_micros: i64,
    last_micros: i64,
    calls: i64,
}

impl Refusals {
    /// Counts a refusal at `now` (Unix microseconds); returns (counted, a past minute's counts
    /// are waiting to be written). `counted` false: the caller records the refusal on its own.
    pub fn count(&self, r: Refused<'_>, now: i64) -> (bool, bool) {
        let mut st = self.state.lock().expect("refusals lock");
        let minute = now.div_euclid(MINUTE);
        let mut flush_due = false;
        if minute != st.minute {
            st.minute = minute;
            st.alone.clear();
            flush_due = !st.counted.is_empty();
        }
        let peer = r.peer.map(|p| p.ip().to_string()).unwrap_or_default();
        if let Some(c) = &r.caller {
            let who = (peer.clone(), c.subject.to_string());
            let room = st.alone.len() < MAX_CALLERS || st.alone.contains_key(&who);
            if room {
                let n = st.alone.entry(who).or_default();
                if *n < ALONE_PER_MINUTE {
                    *n += 1;
                    return (false, flush_due);
                }
            }
        }
        let (subject, role, organisation) = match &r.caller {
            Some(c) => (
                bounded(c.subject, SHORT),
                bounded(c.role, SHORT),
                bounded(c.organisation, SHORT),
            ),
            None => ("(no identity)".into(), String::new(), String::new()),
        };
        let mut key = Key {
            minute,
            peer,
            subject,
            role,
            organisation,
            call: bounded(r.call, SHORT),
            outcome: bounded(r.outcome, SHORT),
            reason: bounded(r.reason, SHORT),
        };
        if st.counted.len() >= MAX_KEYS && !st.counted.contains_key(&key) {
            key = Key {
                peer: "(other sources)".into(),
                subject: "(several)".into(),
                role: String::new(),
                organisation: String::new(),
                call: "(several)".into(),
                reason: "(several)".into(),
                ..key
            };
        }
        let c = st.counted.entry(key).or_insert(Count {
            first_micros: now,
            last_micros: now,
            calls: 0,
        });
        c.calls += 1;
        c.last_micros = now;
        (true, flush_due)
    }

    /// The records of the counts of past minutes, or (`all`) of every minute, taken out.
    pub fn take(&self, all: bool, now: i64) -> Vec<Row> {
        let minute = now.div_euclid(MINUTE);
        let mut st = self.state.lock().expect("refusals lock");
        let keys: Vec<Key> = st
            .counted
            .keys()
            .filter(|k| all || k.minute < minute)
            .cloned()
            .collect();
        let mut rows: Vec<Row> = keys
            .into_iter()
            .filter_map(|k| st.counted.remove(&k).map(|c| row(k, c)))
            .collect();
        rows.sort_by_key(|r| r.at_micros);
        rows
    }
}

fn row(k: Key, c: Count) -> Row {
    let time = |micros: i64| {
        chrono::DateTime::from_timestamp_micros(micros)
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default()
    };
    let from = if k.peer.is_empty() {
        "an unknown address".to_string()
    } else {
        k.peer.clone()
    };
    Row {
        at_micros: c.first_micros,
        detail: bounded(
            &format!(
                "{} call(s) refused from {from} between {} and {} UTC: {}",
                c.calls,
                time(c.first_micros),
                time(c.last_micros),
                k.reason
            ),
            DETAIL,
        ),
        subject: k.subject,
        role: k.role,
        organisation: k.organisation,
        call: k.call,
        outcome: k.outcome,
        peer: k.peer,
        calls: c.calls,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused<'a>(
        caller: Option<Caller<'a>>,
        peer: Option<SocketAddr>,
        call: &'a str,
    ) -> Refused<'a> {
        let outcome = match caller {
            Some(_) => "permissiondenied",
            None => "unauthenticated",
        };
        Refused {
            caller,
            peer,
            call,
            outcome,
            reason: "missing token",
        }
    }

    fn eve() -> Option<Caller<'static>> {
        Some(Caller {
            subject: "eve",
            role: "partner",
            organisation: "x",
        })
    }

    #[test]
    fn unauthenticated_refusals_are_counted_per_source_and_minute() {
        let r = Refusals::default();
        let peer: SocketAddr = "10.0.0.7:5000".parse().unwrap();
        for i in 0..10_000 {
            let (counted, _) = r.count(refused(None, Some(peer), "Audit/Accesses"), i);
            assert!(counted);
        }
        for i in 0..100 {
            r.count(refused(None, Some(peer), "(unknown method)"), i);
        }
        let rows = r.take(true, 0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().map(|r| r.calls).sum::<i64>(), 10_100);
        assert!(rows.iter().all(|r| r.peer == "10.0.0.7"));
        assert!(r.take(true, 0).is_empty());
    }

    #[test]
    fn a_known_caller_is_recorded_alone_up_to_its_rate() {
        let r = Refusals::default();
        let alone = (0..100)
            .filter(|i| !r.count(refused(eve(), None, "Audit/Timeline"), *i).0)
            .count();
        assert_eq!(alone, ALONE_PER_MINUTE as usize);
        // Not written before the minute is over, unless all is asked.
        assert!(r.take(false, 10).is_empty());
        let rows = r.take(false, MINUTE + 1);
        assert_eq!(rows[0].calls, 100 - ALONE_PER_MINUTE as i64);
        assert_eq!(rows[0].role, "partner");
        // A new minute: alone again; the past minute's counts are due.
        assert!(
            !r.count(refused(eve(), None, "Audit/Timeline"), 2 * MINUTE)
                .0
        );
        assert!(r.count(refused(None, None, "Audit/Timeline"), 3 * MINUTE).0);
        let (_, due) = r.count(refused(None, None, "Audit/Timeline"), 4 * MINUTE);
        assert!(due);
    }

    #[test]
    fn counters_are_bounded() {
        let r = Refusals::default();
        for i in 0..(MAX_KEYS as u32 + 500) {
            let peer = SocketAddr::from((std::net::Ipv4Addr::from(i), 1));
            r.count(refused(None, Some(peer), "Audit/Timeline"), 0);
        }
        let rows = r.take(true, 0);
        assert_eq!(rows.len(), MAX_KEYS + 1);
        assert_eq!(
            rows.iter().map(|r| r.calls).sum::<i64>(),
            MAX_KEYS as i64 + 500
        );
    }
}
