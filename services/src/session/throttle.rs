//! Refused sign-ins per peer: after [`MAX_FAILURES`] refused tokens within [`WINDOW`], the peer
//! is turned away until the window is over, so that tokens cannot be guessed at speed. An IPv6
//! peer counts by its /64 (one host holds a whole /64). At most [`CAPACITY`] peers are remembered
//! (the oldest windows go first). Pure: time is an argument.
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

/// What failures are counted under: an IPv4 address, or an IPv6 address's /64.
fn source(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

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
        let peer = source(peer);
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
        let peer = source(peer);
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
        self.peers.remove(&source(peer));
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
    fn an_ipv6_host_counts_as_its_64() {
        let t0 = Instant::now();
        let mut t = Throttle::new(100);
        for n in 0..MAX_FAILURES {
            let addr: IpAddr = format!("2001:db8:1:2::{n:x}").parse().unwrap();
            t.failed(addr, t0);
        }
        assert!(t
            .wait("2001:db8:1:2:ffff::1".parse().unwrap(), t0)
            .is_some());
        assert!(t.wait("2001:db8:1:3::1".parse().unwrap(), t0).is_none());
        assert_eq!(source("::ffff:10.0.0.1".parse().unwrap()), ip(1));
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
