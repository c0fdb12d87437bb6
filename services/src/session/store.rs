//! The open sessions: each ends after [`IDLE`] without a page, [`LIFETIME`] after sign-in, or
//! when the token it was opened with expires, whichever comes first; at most [`CAPACITY`] are
//! kept (the ended ones go first, then the least recently used). Pure: time is an argument.
use crate::principal::Principal;
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// A session without a page for this long ends.
pub const IDLE: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after sign-in, however busy.
pub const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once.
pub const CAPACITY: usize = 10_000;

struct Session {
    principal: Principal,
    /// When it ends at the latest: sign-in + [`LIFETIME`], or the token's expiry if sooner.
    ends: Instant,
    last_seen: Instant,
}

impl Session {
    fn open_at(&self, now: Instant) -> bool {
        now < self.ends && now.duration_since(self.last_seen) < IDLE
    }
}

pub struct Store {
    open: HashMap<String, Session>,
    capacity: usize,
}

impl Store {
    pub fn new(capacity: usize) -> Store {
        Store {
            open: HashMap::new(),
            capacity,
        }
    }

    /// Opens session `id` for `principal` at `now`; `token_ends`: when its token expires.
    pub fn open(
        &mut self,
        id: String,
        principal: Principal,
        token_ends: Option<Instant>,
        now: Instant,
    ) {
        self.open.retain(|_, s| s.open_at(now));
        if self.open.len() >= self.capacity {
            let least_recent = self
                .open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(id, _)| id.clone());
            if let Some(evicted) = least_recent {
                tracing::info!("dashboard sessions full; the least recently used one is closed");
                self.open.remove(&evicted);
            }
        }
        let lifetime_ends = now + LIFETIME;
        let ends = token_ends.map_or(lifetime_ends, |t| t.min(lifetime_ends));
        self.open.insert(
            id,
            Session {
                principal,
                ends,
                last_seen: now,
            },
        );
    }

    /// The caller of session `id` at `now`, which counts as activity; `None` when there is no
    /// such session or it has ended (it is then forgotten).
    pub fn touch(&mut self, id: &str, now: Instant) -> Option<Principal> {
        let session = self.open.get_mut(id)?;
        if !session.open_at(now) {
            self.open.remove(id);
            return None;
        }
        session.last_seen = now;
        Some(session.principal.clone())
    }

    /// The caller of session `id` at `now` without counting as activity (a page refreshing
    /// itself: a screen left open still idles out); `None` as for [`Store::touch`].
    pub fn peek(&mut self, id: &str, now: Instant) -> Option<Principal> {
        if !self.open.get(id)?.open_at(now) {
            self.open.remove(id);
            return None;
        }
        self.open.get(id).map(|s| s.principal.clone())
    }

    /// Ends session `id` (signing out).
    pub fn close(&mut self, id: &str) {
        self.open.remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Role;

    fn nurse(n: u32) -> Principal {
        Principal {
            subject: format!("nurse-{n}"),
            role: Role::Coordinator,
            organisation: "cpts".into(),
            territory: Some("T1".into()),
        }
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn a_session_ends_when_idle_for_too_long() {
        let t0 = Instant::now();
        let mut s = Store::new(10);
        s.open("a".into(), nurse(1), None, t0);
        assert_eq!(s.touch("a", t0 + 29 * MIN), Some(nurse(1)));
        // Activity moves the idle deadline.
        assert_eq!(s.touch("a", t0 + 58 * MIN), Some(nurse(1)));
        assert_eq!(s.touch("a", t0 + 88 * MIN), None);
        // Ended means forgotten: no coming back.
        assert_eq!(s.touch("a", t0 + 88 * MIN), None);
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_page_refreshing_itself_does_not_keep_a_session_open() {
        let t0 = Instant::now();
        let mut s = Store::new(10);
        s.open("a".into(), nurse(1), None, t0);
        assert_eq!(s.peek("a", t0 + 29 * MIN), Some(nurse(1)));
        assert_eq!(s.peek("a", t0 + 31 * MIN), None);
        assert_eq!(s.touch("a", t0 + 31 * MIN), None);
        assert_eq!(s.peek("never-opened", t0), None);
    }

    #[test]
    fn a_busy_session_ends_after_its_lifetime_or_its_token() {
        let t0 = Instant::now();
        let mut s = Store::new(10);
        s.open("busy".into(), nurse(1), None, t0);
        s.open("jwt".into(), nurse(2), Some(t0 + 45 * MIN), t0);
        let mut now = t0;
        while now < t0 + LIFETIME - 20 * MIN {
            now += 20 * MIN;
            assert!(s.touch("busy", now).is_some(), "{:?}", now - t0);
            let jwt_alive = now < t0 + 45 * MIN;
            assert_eq!(s.touch("jwt", now).is_some(), jwt_alive, "{:?}", now - t0);
        }
        assert_eq!(s.touch("busy", t0 + LIFETIME), None);
        // A token outliving the session's lifetime does not extend it.
        s.open("long".into(), nurse(3), Some(t0 + 2 * LIFETIME), t0);
        assert_eq!(s.touch("long", t0 + LIFETIME + MIN), None);
    }

    #[test]
    fn sign_out_ends_the_session() {
        let t0 = Instant::now();
        let mut s = Store::new(10);
        s.open("a".into(), nurse(1), None, t0);
        s.close("a");
        assert_eq!(s.touch("a", t0), None);
        s.close("never-opened");
    }

    #[test]
    fn a_full_store_drops_ended_sessions_then_the_least_recently_used() {
        let t0 = Instant::now();
        let mut s = Store::new(3);
        s.open("old".into(), nurse(1), None, t0);
        s.open("b".into(), nurse(2), None, t0 + 20 * MIN);
        s.open("c".into(), nurse(3), None, t0 + 25 * MIN);
        // "old" has been idle 31 minutes: it goes, nobody else does.
        s.open("d".into(), nurse(4), None, t0 + 31 * MIN);
        assert_eq!(s.len(), 3);
        assert!(s.touch("b", t0 + 32 * MIN).is_some());
        // Full of live sessions: the least recently used ("c") makes room.
        s.open("e".into(), nurse(5), None, t0 + 33 * MIN);
        assert_eq!(s.len(), 3);
        assert_eq!(s.touch("c", t0 + 33 * MIN), None);
        for id in ["b", "d", "e"] {
            assert!(s.touch(id, t0 + 34 * MIN).is_some(), "{id}");
        }
    }
}
