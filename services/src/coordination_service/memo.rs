//! Figures computed from read models, kept while those read models stand where they stood: the
//! indicators page's counts cost a scan of every discharge of its weeks, and until a read model
//! folds another event (or swaps generation) the same question has the same answer.
//!
//! An answer is keyed by what was asked and by the stand of each read model it reads (which
//! runner, its generation and checkpoint), read **before** computing it: the answer may hold
//! events past that stand, never fewer. A runner is told apart by its allocation, which the
//! entry keeps (a `Weak`), so that no other runner can take its address while the entry lives.
use journey_projections::runtime::{Projection, Runner, State};
use std::{
    any::Any,
    future::Future,
    sync::{Arc, Mutex, Weak},
};

/// How many answers a memo keeps (the oldest goes first): a few filters of the page at once.
const CAPACITY: usize = 16;

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
}

/// An answer kept, with its question and the stands of the read models it read.
struct Entry<K, V> {
    key: K,
    stands: Vec<Stand>,
    value: Arc<V>,
}

/// Answers of type `V` to questions `K`.
pub struct Memo<K, V> {
    entries: Mutex<Vec<Entry<K, V>>>,
}

impl<K: PartialEq, V> Memo<K, V> {
    pub const fn new() -> Self {
        Memo {
            entries: Mutex::new(Vec::new()),
        }
    }

    fn find(&self, key: &K, stands: &[Stand]) -> Option<Arc<V>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .iter()
            .find(|e| &e.key == key && e.stands == stands)
            .map(|e| e.value.clone())
    }

    /// The answer to `key` at `stands` (read by the caller before this call), computed by
    /// `compute` unless kept. Two callers missing at once both compute it.
    pub async fn get_or<E, F>(&self, key: K, stands: Vec<Stand>, compute: F) -> Result<Arc<V>, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(v) = self.find(&key, &stands) {
            return Ok(v);
        }
        let v = Arc::new(compute.await?);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // An answer at an older stand of the same question will not be asked again.
        entries.retain(|e| e.key != key && e.stands.iter().all(|s| s.runner.strong_count() > 0));
        if entries.len() >= CAPACITY {
            entries.remove(0);
        }
        entries.push(Entry {
            key,
            stands,
            value: v.clone(),
        });
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stand(runner: &Arc<dyn Any + Send + Sync>, checkpoint: u64) -> Stand {
        Stand {
            runner: Arc::downgrade(runner),
            state: State {
                generation: 1,
                checkpoint,
            },
        }
    }

    async fn ask(
        memo: &Memo<&'static str, u64>,
        key: &'static str,
        stands: Vec<Stand>,
        n: u64,
    ) -> u64 {
        *memo
            .get_or(key, stands, async { Ok::<_, ()>(n) })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn an_answer_holds_while_every_read_model_stands_still() {
        // Given an answer computed for a question at a read model's checkpoint 7
        let memo = Memo::new();
        let runner: Arc<dyn Any + Send + Sync> = Arc::new(());
        let other: Arc<dyn Any + Send + Sync> = Arc::new(());
        assert_eq!(ask(&memo, "week", vec![stand(&runner, 7)], 1).await, 1);
        // When the same question is asked at the same stand, it is not computed again
        assert_eq!(ask(&memo, "week", vec![stand(&runner, 7)], 2).await, 1);
        // But at a new checkpoint, at another runner's or for another question it is
        assert_eq!(ask(&memo, "week", vec![stand(&runner, 8)], 3).await, 3);
        assert_eq!(ask(&memo, "month", vec![stand(&other, 8)], 4).await, 4);
        assert_eq!(ask(&memo, "month", vec![stand(&runner, 8)], 5).await, 5);
        // And an answer at a newer stand replaces the older one's
        assert_eq!(ask(&memo, "month", vec![stand(&runner, 8)], 6).await, 5);
        assert_eq!(ask(&memo, "week", vec![stand(&runner, 7)], 7).await, 7);
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let memo: Memo<&'static str, u64> = Memo::new();
        let runner: Arc<dyn Any + Send + Sync> = Arc::new(());
        let failed = memo
            .get_or("week", vec![stand(&runner, 1)], async {
                Err::<u64, _>("down")
            })
            .await;
        assert_eq!(failed.err(), Some("down"));
        assert_eq!(ask(&memo, "week", vec![stand(&runner, 1)], 9).await, 9);
    }
}
