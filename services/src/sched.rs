//! How Linux schedules a server's threads (`journey up`, `journey serve …`).
//!
//! A server that only writes the log (`journey serve event-log`, `journey up --no-read-models`)
//! runs every thread under `SCHED_BATCH` by default. A thread of that policy does not preempt the
//! running thread when it wakes: it waits for that thread to block or to use up its slice. An
//! append crosses several threads (the request's task, the log writer, the syncer, the task
//! again), and under the ordinary policy each wake-up preempted whatever ran on that core, so
//! that the tokio workers were switched out about 11,000 times a second under 64 appending
//! callers. Under `SCHED_BATCH` the server's context switches per single-event append fall from
//! about 0.85 to 0.27, its CPU per append by about 10 %, and 64 callers append 7–11 % more
//! events per second (BENCHMARKS.md, append).
//!
//! Wake-up latency is what it gives up, and read models projected in the same process pay it:
//! from an append's acknowledgement to the event in the read model, p99 31–35 ms under
//! `SCHED_BATCH` against 19 ms (`journey bench visible`). So a server that projects read models
//! keeps the policy it was started with, unless told `--cpu-policy batch`.
use clap::ValueEnum;

/// The scheduling policy of a server's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CpuPolicy {
    /// `batch` for a server that only writes the log, `normal` for one that projects read models.
    #[default]
    Auto,
    /// `SCHED_BATCH`: a thread that wakes does not preempt the running one (fewer context
    /// switches under load, longer waits for a wake-up).
    Batch,
    /// The policy the server was started with (as a rule `SCHED_OTHER`, the system's default).
    Normal,
}

impl CpuPolicy {
    /// Whether a server runs under `SCHED_BATCH`; `writes_only`: it projects no read model.
    pub fn batch(self, writes_only: bool) -> bool {
        match self {
            CpuPolicy::Auto => writes_only,
            CpuPolicy::Batch => true,
            CpuPolicy::Normal => false,
        }
    }
}

/// `SCHED_BATCH`'s number in `/proc/<pid>/stat` (field 41) and for `sched_setscheduler`.
pub const SCHED_BATCH: u32 = 3;
/// `SCHED_OTHER`'s number.
pub const SCHED_OTHER: u32 = 0;

/// Puts the calling thread under `SCHED_BATCH` (`batch`) or `SCHED_OTHER`. Threads it starts
/// afterwards inherit the policy, so a server calls this before its runtime starts any.
pub fn apply(batch: bool) -> std::io::Result<()> {
    let policy = if batch {
        scheduler::Policy::Batch
    } else {
        scheduler::Policy::Other
    };
    scheduler::set_self_policy(policy, 0).map_err(|()| std::io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::{apply, CpuPolicy, SCHED_BATCH, SCHED_OTHER};

    /// The policy of the calling thread, from `/proc/thread-self/stat`.
    fn current() -> u32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
        // Field 41; field 3 is the first after the command.
        after_name
            .split_whitespace()
            .nth(41 - 3)
            .expect("field 41")
            .parse()
            .expect("number")
    }

    #[test]
    fn a_thread_takes_the_policy_and_the_threads_it_starts_inherit_it() {
        std::thread::spawn(|| {
            apply(true).expect("SCHED_BATCH needs no privilege");
            assert_eq!(current(), SCHED_BATCH);
            let child = std::thread::spawn(current).join().expect("child");
            assert_eq!(child, SCHED_BATCH, "a new thread inherits the policy");
            apply(false).expect("back to the default policy");
            assert_eq!(current(), SCHED_OTHER);
        })
        .join()
        .expect("test thread");
    }

    #[test]
    fn auto_batches_a_server_that_only_writes_the_log() {
        assert!(CpuPolicy::Auto.batch(true));
        assert!(!CpuPolicy::Auto.batch(false));
        assert!(CpuPolicy::Batch.batch(false));
        assert!(!CpuPolicy::Normal.batch(true));
    }
}
