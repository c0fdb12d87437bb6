//! A progress line on stderr for long copies: count, share of the total, rate, once a second.
use std::{
    io::Write,
    time::{Duration, Instant},
};

pub struct Progress {
    what: &'static str,
    total: u64,
    start: Instant,
    shown: Instant,
}

impl Progress {
    pub fn new(what: &'static str, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            what,
            total,
            start: now,
            shown: now,
        }
    }

    /// Shows `done` at most once a second.
    pub fn tick(&mut self, done: u64) {
        if self.shown.elapsed() < Duration::from_secs(1) {
            return;
        }
        self.shown = Instant::now();
        let pct = if self.total > 0 {
            100.0 * done as f64 / self.total as f64
        } else {
            100.0
        };
        let rate = done as f64 / self.start.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{}: {done:>10}/{} events ({pct:5.1}%), {rate:.0} events/s   ",
            self.what, self.total
        );
        let _ = std::io::stderr().flush();
    }

    /// Ends the line, if one was shown.
    pub fn done(&self) {
        if self.shown != self.start {
            eprintln!();
        }
    }
}
