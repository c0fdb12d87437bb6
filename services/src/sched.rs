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

/// Puts the calling thread under `SCHED_BATCH`. Threads it starts afterwards inherit the policy,
/// so a server calls this before its runtime starts any.
pub fn batch_this_thread() -> std::io::Result<()> {
    scheduler::set_self_policy(scheduler::Policy::Batch, 0)
        .map_err(|()| std::io::Error::last_os_error())
}

/// Each thread of a process (a pid, or `self`) with its name and its scheduling policy (field
/// 41 of `/proc/<pid>/task/<tid>/stat`).
pub fn thread_policies(pid: &str) -> std::io::Result<Vec<(String, u32)>> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/task"))?
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        .filter_map(|stat| {
            let (open, close) = (stat.find('(')?, stat.rfind(')')?);
            // Field 3 is the first after the name, which may hold spaces and parentheses.
            let policy = stat.get(close + 2..)?.split_whitespace().nth(41 - 3)?;
            Some((stat[open + 1..close].to_string(), policy.parse().ok()?))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{batch_this_thread, thread_policies, CpuPolicy, SCHED_BATCH};

    #[test]
    fn a_thread_takes_the_policy_and_the_threads_it_starts_inherit_it() {
        let policy_of = |name: &str| {
            thread_policies("self")
                .expect("/proc")
                .into_iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p)
        };
        std::thread::Builder::new()
            .name("sched-parent".into())
            .spawn(move || {
                batch_this_thread().expect("SCHED_BATCH needs no privilege");
                assert_eq!(policy_of("sched-parent"), Some(SCHED_BATCH));
                // The child looks itself up: its name is set once it runs.
                let inherited = std::thread::Builder::new()
                    .name("sched-child".into())
                    .spawn(move || policy_of("sched-child"))
                    .expect("child")
                    .join()
                    .expect("child");
                assert_eq!(
                    inherited,
                    Some(SCHED_BATCH),
                    "a new thread inherits the policy"
                );
            })
            .expect("parent")
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
