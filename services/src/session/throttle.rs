//! Refused sign-ins per peer: after [`MAX_FAILURES`] refused tokens within [`WINDOW`], the peer
//! is turned away until the window is over, so that tokens cannot be guessed at speed. At most
//! [`CAPACITY`] peers are remembered (the oldest windows go first). Pure: time is an argument.
use std::{
    collections::HashMap,
    net::IpAddr,
    time::{Duration, Instant},
};

/// Refused tokens a peer may send within [`WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// How long failures are counted, from the first one.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most peers remembered at once.
pub const CAPACITY: usize = 10_000;

struct Failures {
    since: Instant,
    count: u32,
}

pub struct Throttle {
    peers: HashMap<IpAddr, Failures>,
    capacity: usize,
}

impl Throttle {
    pub fn new(capacity: usize) -> Throttle {
        Throttle {
            peers: HashMap::new(),
            capacity,
        }
    }

    /// How long `peer` must still wait before trying again; `None`: it may try now.
    pub fn wait(&mut self, peer: IpAddr, now: Instant) -> Option<Duration> {
        let f = self.peers.get(&peer)?;
        let over = f.since + WINDOW;
        if now >= over {
            self.peers.remove(&peer);
            return None;
        }
        (f.count >= MAX_FAILURES).then(|| over - now)
    }

    /// Counts a refused token from `peer`.
    pub fn failed(&mut self, peer: IpAddr, now: Instant) {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.capacity {
            self.peers.retain(|_, f| now < f.since + WINDOW);
            if self.peers.len() >= self.capacity {
                let oldest = self
                    .peers
                    .iter()
                    .min_by_key(|(_, f)| f.since)
                    .map(|(p, _)| *p);
                if let Some(p) = oldest {
                    self.peers.remove(&p);
                }
            }
        }
        let f = self.peers.entry(peer).or_insert(Failures {
            since: now,
            count: 0,
        });
        if now >= f.since + WINDOW {
            *f = Failures {
                since: now,
                count: 0,
            };
        }
        f.count += 1;
    }

    /// A peer that signed in starts afresh.
    pub fn succeeded(&mut self, peer: IpAddr) {
        self.peers.remove(&peer);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_peer_is_turned_away_after_too_many_failures_until_the_window_ends() {
        let t0 = Instant::now();
        let mut t = Throttle::new(100);
        for i in 0..MAX_FAILURES {
            assert_eq!(t.wait(ip(1), t0), None, "failure {i}");
            t.failed(ip(1), t0 + Duration::from_secs(i as u64));
        }
        assert_eq!(t.wait(ip(1), t0 + MIN), Some(WINDOW - MIN));
        // Another peer is not concerned.
        assert_eq!(t.wait(ip(2), t0 + MIN), None);
        assert_eq!(t.wait(ip(1), t0 + WINDOW), None);
        // A fresh window after that.
        t.failed(ip(1), t0 + WINDOW);
        assert_eq!(t.wait(ip(1), t0 + WINDOW), None);
    }

    #[test]
    fn a_success_clears_the_count() {
        let t0 = Instant::now();
        let mut t = Throttle::new(100);
        for _ in 0..MAX_FAILURES - 1 {
            t.failed(ip(1), t0);
        }
        t.succeeded(ip(1));
        t.failed(ip(1), t0);
        assert_eq!(t.wait(ip(1), t0), None);
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut t = Throttle::new(3);
        for n in 0..10 {
            t.failed(ip(n), t0 + Duration::from_secs(n as u64));
        }
        assert_eq!(t.len(), 3);
        // The latest peers are the ones remembered.
        for _ in 1..MAX_FAILURES {
            t.failed(ip(9), t0 + MIN);
        }
        assert!(t.wait(ip(9), t0 + MIN).is_some());
    }
}
