//! How Linux schedules a server's threads (`journey up`, `journey serve …`).
//!
//! By default a server runs every thread under `SCHED_BATCH`. A thread of that policy does not
//! preempt the running thread when it wakes: it waits for that thread to block or to use up its
//! slice. An append crosses several threads (the request's task, the log writer, the syncer, the
//! task again), and under the ordinary policy each wake-up preempted whatever ran on that core,
//! so that the tokio workers were switched out about 11,000 times a second under 64 appending
//! callers. Under `SCHED_BATCH` the server's context switches per single-event append fall from
//! about 0.85 to 0.27, its CPU per append by about 10 %, and 64 callers append 7–11 % more
//! events per second (BENCHMARKS.md, append). Wake-up
//! latency, not throughput, is what it gives up: `--cpu-policy normal` leaves the policy the
//! server was started with, for a machine where it shares its cores with latency-sensitive work.
use clap::ValueEnum;

/// The scheduling policy of a server's threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CpuPolicy {
    /// `SCHED_BATCH`: a thread that wakes does not preempt the running one (fewer context
    /// switches under load).
    #[default]
    Batch,
    /// `SCHED_OTHER`, the system's default.
    Normal,
}

impl CpuPolicy {
    /// The policy's number in `/proc/<pid>/stat` (field 41) and `sched_setscheduler`.
    pub fn number(self) -> u32 {
        match self {
            CpuPolicy::Batch => 3,
            CpuPolicy::Normal => 0,
        }
    }
}

/// Puts the calling thread under `policy`. Threads it starts afterwards inherit the policy, so a
/// server calls this before its runtime starts any.
pub fn apply(policy: CpuPolicy) -> std::io::Result<()> {
    let p = match policy {
        CpuPolicy::Batch => scheduler::Policy::Batch,
        CpuPolicy::Normal => scheduler::Policy::Other,
    };
    scheduler::set_self_policy(p, 0).map_err(|()| std::io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::{apply, CpuPolicy};

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
            apply(CpuPolicy::Batch).expect("SCHED_BATCH needs no privilege");
            assert_eq!(current(), CpuPolicy::Batch.number());
            let child = std::thread::spawn(current).join().expect("child");
            assert_eq!(
                child,
                CpuPolicy::Batch.number(),
                "a new thread inherits the policy"
            );
            apply(CpuPolicy::Normal).expect("back to the default policy");
            assert_eq!(current(), CpuPolicy::Normal.number());
        })
        .join()
        .expect("test thread");
    }
}
