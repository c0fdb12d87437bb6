//! Figures computed from read models, kept while those read models stand where they stood, and
//! for a few seconds after they moved on: the indicators page's counts cost a scan of every
//! discharge of its weeks (up to a second at 100k followed patients), while the log may grow
//! every few milliseconds.
//!
//! An answer is keyed by what was asked and by the stand of each read model it reads (which
//! runner, its generation and checkpoint), read **before** computing it: the answer may hold
//! events past that stand, never fewer. A runner is told apart by its allocation, which the
//! entry keeps (a `Weak`), so that no other runner can take its address while the entry lives.
//!
//! Asked at a newer stand (events folded since), an answer that took at least [`SLOW`] to work
//! out, worked out less than [`REFRESHED_WITHIN`] ago, is given at once while the new one is
//! worked out in the background (one at a time per question); a quicker or older one is worked
//! out again before answering. So figures that are slow to work out (a large territory) lag the
//! read models by at most that much plus one computation, and a reader waits for one only when
//! nobody asked the same question lately; quick ones are always at the reader's stand.
use journey_projections::runtime::{Projection, Runner, State};
use std::{
    any::Any,
    future::Future,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

/// How many answers a memo keeps (the oldest goes first): a few filters of the page at once.
const CAPACITY: usize = 16;

/// How long after it was worked out an answer is still given while the read models moved on.
pub const REFRESHED_WITHIN: Duration = Duration::from_secs(5);

/// An answer that took less to work out is worked out again before answering, rather than
/// given while the read models moved on.
pub const SLOW: Duration = Duration::from_millis(200);

/// One read model's stand: which runner, and its live generation and checkpoint.
#[derive(Clone)]
pub struct Stand {
    runner: Weak<dyn Any + Send + Sync>,
    state: State,
}

impl PartialEq for Stand {
    fn eq(&self, other: &Self) -> bool {
        Weak::ptr_eq(&self.runner, &other.runner) && self.state == other.state
    }
}

impl Stand {
    /// Where `runner` stands now.
    pub fn of<P: Projection>(runner: &Arc<Runner<P>>) -> Stand {
        let state = *runner.watch().borrow();
        let runner: Arc<dyn Any + Send + Sync> = runner.clone();
        Stand {
            runner: Arc::downgrade(&runner),
            state,
        }
    }

    /// Whether `self` is the same runner's same generation as `older`, at its checkpoint or past
    /// it.
    fn moved_on_from(&self, older: &Stand) -> bool {
        Weak::ptr_eq(&self.runner, &older.runner)
            && self.state.generation == older.state.generation
            && self.state.checkpoint >= older.state.checkpoint
    }
}

/// Whether each stand of `newer` moved on from the same one of `older`.
fn all_moved_on(newer: &[Stand], older: &[Stand]) -> bool {
    newer.len() == older.len() && newer.iter().zip(older).all(|(n, o)| n.moved_on_from(o))
}

/// An answer kept, with its question, the stands of the read models it read and when it was
/// worked out.
struct Entry<K, V> {
    key: K,
    stands: Vec<Stand>,
    value: Arc<V>,
    at: Instant,
    /// How long it took to work out.
    took: Duration,
    /// A newer answer is being worked out in the background.
    refreshing: bool,
}

/// What a memo holds for a question at a stand.
enum Found<V> {
    /// The answer at that very stand.
    Exact(Arc<V>),
    /// A recent answer at an older stand: to be given while a new one is worked out (`true`:
    /// this caller starts that).
    Recent(Arc<V>, bool),
    Nothing,
}

/// Answers of type `V` to questions `K`.
pub struct Memo<K, V> {
    entries: Mutex<Vec<Entry<K, V>>>,
    /// [`REFRESHED_WITHIN`], but in tests.
    within: Duration,
    /// [`SLOW`], but in tests.
    slow: Duration,
}

impl<K, V> Memo<K, V>
where
    K: PartialEq + Send + 'static,
    V: Send + Sync + 'static,
{
    pub const fn new() -> Self {
        Self::within(REFRESHED_WITHIN, SLOW)
    }

    /// A memo giving answers that took at least `slow` to work out, worked out less than
    /// `within` ago, while the read models moved on.
    const fn within(within: Duration, slow: Duration) -> Self {
        Memo {
            entries: Mutex::new(Vec::new()),
            within,
            slow,
        }
    }

    fn find(&self, key: &K, stands: &[Stand]) -> Found<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Some(e) = entries.iter_mut().find(|e| &e.key == key) else {
            return Found::Nothing;
        };
        if e.stands == stands {
            return Found::Exact(e.value.clone());
        }
        if e.took >= self.slow && e.at.elapsed() < self.within && all_moved_on(stands, &e.stands) {
            let start = !e.refreshing;
            e.refreshing = true;
            return Found::Recent(e.value.clone(), start);
        }
        Found::Nothing
    }

    /// Keeps `value`, the answer to `key` at `stands`, unless a newer answer is kept already.
    fn keep(&self, key: K, stands: Vec<Stand>, value: Arc<V>, at: Instant) {
        let took = at.elapsed();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .iter()
            .any(|e| e.key == key && e.stands != stands && all_moved_on(&e.stands, &stands))
        {
            return;
        }
        // An answer at an older stand of the same question will not be asked again.
        entries.retain(|e| e.key != key && e.stands.iter().all(|s| s.runner.strong_count() > 0));
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push(Entry {
            key,
            stands,
            value,
            at,
            took,
            refreshing: false,
        });
    }

    /// A failed background computation: the next caller tries again.
    fn refresh_failed(&self, key: &K) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for e in entries.iter_mut().filter(|e| &e.key == key) {
            e.refreshing = false;
        }
    }

    /// The answer to `key` at `stands` (read by the caller before this call), computed by
    /// `compute` unless kept, or given from a recent answer while `compute` runs in the
    /// background. Two callers missing at once both compute it.
    pub async fn get_or<E, F>(
        &'static self,
        key: K,
        stands: Vec<Stand>,
        compute: F,
    ) -> Result<Arc<V>, E>
    where
        F: Future<Output = Result<V, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        match self.find(&key, &stands) {
            Found::Exact(v) => Ok(v),
            Found::Recent(v, start) => {
                if start {
                    tokio::spawn(async move {
                        let at = Instant::now();
                        match compute.await {
                            Ok(fresh) => self.keep(key, stands, Arc::new(fresh), at),
                            Err(e) => {
                                tracing::warn!(error = %e, "figures not worked out again; the next reader tries");
                                self.refresh_failed(&key);
                            }
                        }
                    });
                }
                Ok(v)
            }
            Found::Nothing => {
                let at = Instant::now();
                let v = Arc::new(compute.await?);
                self.keep(key, stands, v.clone(), at);
                Ok(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Runner = Arc<dyn Any + Send + Sync>;

    fn stand_of(runner: &Runner, generation: i64, checkpoint: u64) -> Stand {
        Stand {
            runner: Arc::downgrade(runner),
            state: State {
                generation,
                checkpoint,
            },
        }
    }

    fn stand(runner: &Runner, checkpoint: u64) -> Stand {
        stand_of(runner, 1, checkpoint)
    }

    /// A memo whose every answer counts as slow to work out.
    fn memo(within: Duration) -> &'static Memo<&'static str, u64> {
        Box::leak(Box::new(Memo::within(within, Duration::ZERO)))
    }

    /// Asks `key` at `stands`; the answer worked out would be `n`, and counts in `computed`.
    async fn ask(
        memo: &'static Memo<&'static str, u64>,
        key: &'static str,
        stands: Vec<Stand>,
        n: u64,
        computed: &'static AtomicUsize,
    ) -> u64 {
        *memo
            .get_or(key, stands, async move {
                computed.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(n)
            })
            .await
            .unwrap()
    }

    fn counter() -> &'static AtomicUsize {
        Box::leak(Box::new(AtomicUsize::new(0)))
    }

    /// Waits for the background computations to be done.
    async fn settle(computed: &AtomicUsize, n: usize) {
        for _ in 0..1000 {
            if computed.load(Ordering::SeqCst) >= n {
                // Kept right after it is computed.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("no background computation");
    }

    #[tokio::test]
    async fn an_answer_holds_while_every_read_model_stands_still() {
        // Given an answer computed for a question at a read model's checkpoint 7
        let (memo, computed) = (memo(REFRESHED_WITHIN), counter());
        let runner: Runner = Arc::new(());
        let other: Runner = Arc::new(());
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 7)], 1, computed).await,
            1
        );
        // When the same question is asked at the same stand, it is not computed again
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 7)], 2, computed).await,
            1
        );
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        // But another question, or the same at another runner's, is
        assert_eq!(
            ask(memo, "month", vec![stand(&runner, 7)], 3, computed).await,
            3
        );
        assert_eq!(
            ask(memo, "week", vec![stand(&other, 7)], 4, computed).await,
            4
        );
        // And a new generation (a rebuild swapped in) is never answered from the old one's
        assert_eq!(
            ask(memo, "month", vec![stand_of(&runner, 2, 9)], 5, computed).await,
            5
        );
    }

    #[tokio::test]
    async fn a_recent_answer_is_given_while_the_new_one_is_worked_out() {
        // Given an answer at checkpoint 7
        let (memo, computed) = (memo(REFRESHED_WITHIN), counter());
        let runner: Runner = Arc::new(());
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 7)], 1, computed).await,
            1
        );
        // When the read model moved on and the question is asked again twice
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 8)], 2, computed).await,
            1
        );
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 9)], 3, computed).await,
            1
        );
        // Then both got the recent answer at once, and one new answer was worked out behind them
        settle(computed, 2).await;
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        // Which the next reader gets, without a new computation at its stand
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 8)], 4, computed).await,
            2
        );
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        // An answer worked out at an older stand does not replace a newer one
        memo.keep("week", vec![stand(&runner, 7)], Arc::new(9), Instant::now());
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 8)], 5, computed).await,
            2
        );
    }

    #[tokio::test]
    async fn an_answer_older_than_the_bound_is_worked_out_before_answering() {
        let (memo, computed) = (memo(Duration::ZERO), counter());
        let runner: Runner = Arc::new(());
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 7)], 1, computed).await,
            1
        );
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 7)], 2, computed).await,
            1
        );
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 8)], 3, computed).await,
            3
        );
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_quick_answer_is_worked_out_again_before_answering() {
        // Given the memo of the service, and an answer that took no time to work out
        let memo: &'static Memo<&'static str, u64> = Box::leak(Box::new(Memo::new()));
        let computed = counter();
        let runner: Runner = Arc::new(());
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 7)], 1, computed).await,
            1
        );
        // When the read model moved on, the reader gets the new answer at once
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 8)], 2, computed).await,
            2
        );
        assert_eq!(computed.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let (memo, computed) = (memo(REFRESHED_WITHIN), counter());
        let runner: Runner = Arc::new(());
        let failed = memo
            .get_or("week", vec![stand(&runner, 1)], async {
                Err::<u64, _>("down".to_string())
            })
            .await;
        assert_eq!(failed.err().as_deref(), Some("down"));
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 1)], 9, computed).await,
            9
        );
        // A background computation that fails leaves the recent answer, and the next reader
        // starts another
        let failing = memo.get_or("week", vec![stand(&runner, 2)], async {
            Err::<u64, _>("down".to_string())
        });
        assert_eq!(*failing.await.unwrap(), 9);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 2)], 10, computed).await,
            9
        );
        settle(computed, 2).await;
        assert_eq!(
            ask(memo, "week", vec![stand(&runner, 2)], 11, computed).await,
            10
        );
    }
}
