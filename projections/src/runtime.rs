//! The projection runtime: folds events into SQL tables with the checkpoint in the same
//! transaction (exactly-once effect across crashes), catch-up then live, gap refill, duplicate skip,
//! and rebuild into fresh tables beside the live ones, swapped in at the end.
use crate::db::Db;
use anyhow::Context;
use journey_log_access::EventSource;
use journey_proto::v1::Event;
use sqlx::{AnyConnection, Row};
use std::{borrow::Cow, future::Future, sync::Arc, time::Instant};
use tokio::sync::{watch, Mutex};

/// A read model: its tables (named with a generation prefix) and its fold.
pub trait Projection: Send + Sync + 'static {
    /// Name used in `journey rebuild <name>` and in table names.
    fn name(&self) -> &'static str;
    /// Bump when the tables or the fold change: a changed version triggers a rebuild at start.
    fn schema_version(&self) -> i64;
    /// Table names without prefix (for drops).
    fn tables(&self) -> &'static [&'static str];
    /// DDL creating the tables with `prefix`.
    fn ddl(&self, prefix: &str) -> Vec<String>;
    /// DDL creating the indexes only queries read (the fold does not): created with the tables of
    /// a new read model, and after a rebuild's bulk load rather than before it, so that the
    /// rebuild does not keep them up to date event by event.
    fn indexes(&self, _prefix: &str) -> Vec<String> {
        Vec::new()
    }
    /// Whether the read model keeps something that depends on the time rather than on events
    /// ([`Projection::maintain`]).
    fn maintained(&self) -> bool {
        false
    }
    /// Brings up to date at `now` (UTC seconds) what depends on the time, inside the caller's
    /// transaction; returns the next instant something will need it, if any. The runner calls it
    /// after the fold wrote (a short while after, batching several) and at that instant.
    fn maintain<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _prefix: &'a str,
        _now: i64,
    ) -> impl Future<Output = anyhow::Result<Option<i64>>> + Send + 'a {
        async { Ok(None) }
    }
    /// Applies events (in position order, none applied before) inside the caller's transaction
    /// (the runner's begins with `db::begin_write`: on SQLite it holds the write lock).
    fn apply<'a>(
        &'a self,
        conn: &'a mut AnyConnection,
        prefix: &'a str,
        events: &'a [Event],
    ) -> impl Future<Output = anyhow::Result<()>> + Send + 'a;
}

/// One span per event in its own trace (trace id = event id), when traces are exported.
fn event_spans(projection: &'static str, events: &[Event]) -> Vec<tracing::Span> {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    if !journey_proto::trace::enabled() {
        return Vec::new();
    }
    events
        .iter()
        .map(|e| {
            let span = tracing::info_span!("journey.project", projection, event_id = %e.event_id, position = e.position);
            let _ = span.set_parent(journey_proto::trace::event_context(&e.event_id, e.position));
            span
        })
        .collect()
}

/// The events of `events` after `checkpoint`: borrowed when they are its tail (a source returns
/// events in position order), copied otherwise.
fn fresh(events: &[Event], checkpoint: u64) -> Cow<'_, [Event]> {
    let start = events
        .iter()
        .position(|e| e.position > checkpoint)
        .unwrap_or(events.len());
    if events[start..].iter().all(|e| e.position > checkpoint) {
        Cow::Borrowed(&events[start..])
    } else {
        Cow::Owned(
            events
                .iter()
                .filter(|e| e.position > checkpoint)
                .cloned()
                .collect(),
        )
    }
}

/// How long the upkeep waits, at most, when nothing is due.
const UPKEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);
/// How long after the fold wrote the upkeep runs.
const UPKEEP_AFTER_FOLD: std::time::Duration = std::time::Duration::from_millis(200);

/// The time now, in UTC seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn prefix(name: &str, generation: i64) -> String {
    format!("{name}_g{generation}_")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub generation: i64,
    pub checkpoint: u64,
}

/// Progress of a rebuild, for progress bars.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub applied: u64,
    pub target: u64,
    pub events_per_sec: f64,
    pub done: bool,
}

pub struct Runner<P: Projection> {
    pub db: Db,
    pub projection: Arc<P>,
    state: Mutex<State>,
    live: watch::Sender<State>,
    batch: usize,
    /// Whether this process writes the read model (on PostgreSQL, the holder of its advisory lock;
    /// the others are standbys that answer queries and take over when the writer dies).
    writer: std::sync::atomic::AtomicBool,
}

impl<P: Projection> Runner<P> {
    /// Opens the projection: creates its first generation if new. Returns whether its schema
    /// version changed (the caller should rebuild).
    pub async fn open(db: Db, projection: P) -> anyhow::Result<(Arc<Self>, bool)> {
        let name = projection.name();
        let row = sqlx::query("SELECT generation, checkpoint, schema_version FROM journey_projections WHERE name = $1")
            .bind(name)
            .fetch_optional(&db.pool)
            .await?;
        let (state, stale) = match row {
            Some(r) => {
                let version: i64 = r.try_get(2)?;
                (
                    State {
                        generation: r.try_get(0)?,
                        checkpoint: r.try_get::<i64, _>(1)? as u64,
                    },
                    version != projection.schema_version(),
                )
            }
            None => {
                let mut tx = crate::db::begin_write(&db.pool).await?;
                let p = prefix(name, 1);
                for sql in projection.ddl(&p).into_iter().chain(projection.indexes(&p)) {
                    sqlx::query(&sql)
                        .execute(&mut *tx)
                        .await
                        .with_context(|| format!("creating tables: {sql}"))?;
                }
                sqlx::query("INSERT INTO journey_projections (name, generation, checkpoint, schema_version) VALUES ($1, 1, 0, $2)")
                    .bind(name)
                    .bind(projection.schema_version())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                (
                    State {
                        generation: 1,
                        checkpoint: 0,
                    },
                    false,
                )
            }
        };
        let (live, _) = watch::channel(state);
        Ok((
            Arc::new(Runner {
                db,
                projection: Arc::new(projection),
                state: Mutex::new(state),
                live,
                batch: 2000,
                writer: std::sync::atomic::AtomicBool::new(false),
            }),
            stale,
        ))
    }

    pub async fn state(&self) -> State {
        *self.state.lock().await
    }

    /// Follows the state (checkpoint after each batch, generation after a swap).
    pub fn watch(&self) -> watch::Receiver<State> {
        self.live.subscribe()
    }

    /// Table prefix of the live generation.
    pub fn live_prefix(&self) -> String {
        prefix(self.projection.name(), self.live.borrow().generation)
    }

    /// Applies a batch to `generation` in one transaction with the checkpoint. Skips events already
    /// applied; refuses a gap (the caller refills it).
    async fn apply(&self, state: &mut State, events: &[Event]) -> anyhow::Result<()> {
        let fresh = fresh(events, state.checkpoint);
        let Some(last) = fresh.last().map(|e| e.position) else {
            return Ok(());
        };
        for (i, e) in fresh.iter().enumerate() {
            anyhow::ensure!(
                e.position == state.checkpoint + 1 + i as u64,
                "gap before position {}",
                e.position
            );
        }
        let p = prefix(self.projection.name(), state.generation);
        let _spans = event_spans(self.projection.name(), &fresh);
        let mut tx = crate::db::begin_write(&self.db.pool).await?;
        self.projection.apply(&mut tx, &p, &fresh).await?;
        let updated = sqlx::query(
            "UPDATE journey_projections SET checkpoint = $1 WHERE name = $2 AND generation = $3 AND checkpoint = $4",
        )
        .bind(last as i64)
        .bind(self.projection.name())
        .bind(state.generation)
        .bind(state.checkpoint as i64)
        .execute(&mut *tx)
        .await?;
        anyhow::ensure!(
            updated.rows_affected() == 1,
            "checkpoint moved under us: another process runs this projection"
        );
        tx.commit().await?;
        state.checkpoint = last;
        let name = self.projection.name();
        metrics::gauge!("journey_projection_checkpoint", "projection" => name).set(last as f64);
        if let Some(recorded) = fresh.last().and_then(|e| e.recorded_at.as_ref()) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let at = recorded.seconds as f64 + recorded.nanos as f64 / 1e9;
            metrics::gauge!("journey_projection_lag_seconds", "projection" => name)
                .set((now - at).max(0.0));
        }
        Ok(())
    }

    pub fn is_writer(&self) -> bool {
        self.writer.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Re-reads generation and checkpoint from the database (a standby follows the writer's).
    async fn refresh(&self) -> anyhow::Result<()> {
        let row =
            sqlx::query("SELECT generation, checkpoint FROM journey_projections WHERE name = $1")
                .bind(self.projection.name())
                .fetch_one(&self.db.pool)
                .await?;
        let fresh = State {
            generation: row.try_get(0)?,
            checkpoint: row.try_get::<i64, _>(1)? as u64,
        };
        *self.state.lock().await = fresh;
        self.live.send_replace(fresh);
        Ok(())
    }

    /// On PostgreSQL, waits to hold the projection's advisory lock (one writer per read model,
    /// any number of query replicas); the connection holding it is returned and must live as long
    /// as the writing does. `None` on SQLite (one process owns the file) or at shutdown.
    async fn become_writer(
        &self,
        shutdown: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<Option<Option<AnyConnection>>> {
        if self.db.kind != crate::db::Kind::Postgres {
            return Ok(Some(None));
        }
        let key = self
            .projection
            .name()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            }) as i64;
        let mut conn = self.db.pool.acquire().await?.detach();
        let mut announced = false;
        loop {
            let held: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                .bind(key)
                .fetch_one(&mut conn)
                .await?
                .try_get(0)?;
            if held {
                self.refresh().await?;
                self.writer
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(
                    projection = self.projection.name(),
                    "writing this read model"
                );
                return Ok(Some(Some(conn)));
            }
            if !announced {
                tracing::info!(
                    projection = self.projection.name(),
                    "another process writes this read model: standing by, answering queries"
                );
                announced = true;
            }
            self.refresh().await?;
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return Ok(None),
            }
        }
    }

    /// Catch-up then live, until `shutdown` turns true. Errors of the source are retried with backoff.
    /// On PostgreSQL only the holder of the projection's lock writes; the others stand by.
    pub async fn run<S: EventSource>(
        self: Arc<Self>,
        mut source: S,
        mut shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let Some(_lock) = self.become_writer(&mut shutdown).await? else {
            return Ok(());
        };
        if self.projection.maintained() {
            tokio::spawn(self.clone().upkeep(shutdown.clone()));
        }
        let mut backoff = std::time::Duration::from_millis(100);
        let mut lag = LagGauge::new(self.projection.name());
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let checkpoint = self.state().await.checkpoint;
            lag.update(&mut source, checkpoint).await;
            let from = checkpoint + 1;
            let next = tokio::select! {
                r = source.next(from, self.batch) => r,
                _ = shutdown.changed() => return Ok(()),
            };
            let result = match next {
                Ok(events) => self.apply_with_refill(&mut source, events).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => backoff = std::time::Duration::from_millis(100),
                Err(e) => {
                    tracing::warn!(projection = self.projection.name(), error = %format!("{e:#}"), retry_ms = backoff.as_millis() as u64, "projection paused");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return Ok(()),
                    }
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(10));
                }
            }
        }
    }

    async fn apply_with_refill<S: EventSource>(
        &self,
        source: &mut S,
        events: Vec<Event>,
    ) -> anyhow::Result<()> {
        let mut state = self.state.lock().await;
        let first = events
            .iter()
            .map(|e| e.position)
            .find(|p| *p > state.checkpoint);
        if let Some(first) = first {
            if first > state.checkpoint + 1 {
                // A gap (NATS): refill it from the log first.
                let mut from = state.checkpoint + 1;
                while from < first {
                    let fill = source.range(from, first - 1, self.batch).await?;
                    anyhow::ensure!(!fill.is_empty(), "the log has no events {from}..{first}");
                    self.apply(&mut state, &fill).await?;
                    from = state.checkpoint + 1;
                }
            }
        }
        self.apply(&mut state, &events).await?;
        self.live.send_replace(*state);
        Ok(())
    }

    /// Rebuilds into a new generation of tables from the whole log, then swaps it in. Queries keep
    /// reading the old generation until the swap; the live fold pauses only for the final catch-up.
    pub async fn rebuild<S: EventSource>(
        &self,
        source: &mut S,
        progress: impl Fn(Progress),
    ) -> anyhow::Result<u64> {
        let name = self.projection.name();
        let old = self.state().await.generation;
        let generation = old + 1;
        let p = prefix(name, generation);
        self.drop_tables(&p).await?;
        for sql in self.projection.ddl(&p) {
            sqlx::query(&sql).execute(&self.db.pool).await?;
        }
        let mut shadow = State {
            generation,
            checkpoint: 0,
        };
        let started = Instant::now();
        let mut target = source.head().await?;
        let mut indexed = false;
        loop {
            self.apply_shadow_range(source, &mut shadow, target, |applied| {
                let rate = applied as f64 / started.elapsed().as_secs_f64().max(1e-9);
                progress(Progress {
                    applied,
                    target,
                    events_per_sec: rate,
                    done: false,
                });
            })
            .await?;
            if !indexed {
                // The bulk is in: the queries' indexes and what depends on the time, then catch
                // up with what was appended meanwhile.
                let took = Instant::now();
                for sql in self.projection.indexes(&p) {
                    sqlx::query(&sql).execute(&self.db.pool).await?;
                }
                self.maintain_prefix(&p).await?;
                tracing::info!(
                    projection = name,
                    secs = took.elapsed().as_secs_f64(),
                    "rebuild: indexes created"
                );
                indexed = true;
                target = source.head().await?;
                continue;
            }
            // Final catch-up under the live lock, then swap in one transaction.
            let mut live = self.state.lock().await;
            target = source.head().await?;
            if target > shadow.checkpoint + 10_000 {
                continue; // still far behind: catch up without holding the lock
            }
            self.apply_shadow_range(source, &mut shadow, target, |_| {})
                .await?;
            let mut tx = crate::db::begin_write(&self.db.pool).await?;
            if self.projection.maintained() {
                self.projection.maintain(&mut tx, &p, unix_now()).await?;
            }
            sqlx::query("UPDATE journey_projections SET generation = $1, checkpoint = $2, schema_version = $3 WHERE name = $4")
                .bind(generation)
                .bind(shadow.checkpoint as i64)
                .bind(self.projection.schema_version())
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            *live = shadow;
            self.live.send_replace(shadow);
            drop(live);
            self.drop_tables(&prefix(name, old)).await?;
            let rate = shadow.checkpoint as f64 / started.elapsed().as_secs_f64().max(1e-9);
            progress(Progress {
                applied: shadow.checkpoint,
                target: shadow.checkpoint,
                events_per_sec: rate,
                done: true,
            });
            return Ok(shadow.checkpoint);
        }
    }

    /// Applies the log up to `target` to the shadow tables, reading each batch while the one
    /// before is folded (the read and decoding run on a blocking thread, the SQL on the database's),
    /// so that a rebuild costs about the larger of the two rather than their sum.
    async fn apply_shadow_range<S: EventSource>(
        &self,
        source: &mut S,
        shadow: &mut State,
        target: u64,
        applied: impl Fn(u64),
    ) -> anyhow::Result<()> {
        if shadow.checkpoint >= target {
            return Ok(());
        }
        let mut events = source
            .range(shadow.checkpoint + 1, target, self.batch)
            .await?;
        loop {
            anyhow::ensure!(
                !events.is_empty(),
                "the log ended at {} before {target}",
                shadow.checkpoint
            );
            let next = events.last().map_or(target, |e| e.position) + 1;
            if next > target {
                self.apply_shadow(shadow, &events).await?;
                applied(shadow.checkpoint);
                return Ok(());
            }
            let (done, read) = tokio::join!(
                self.apply_shadow(shadow, &events),
                source.range(next, target, self.batch)
            );
            done?;
            applied(shadow.checkpoint);
            events = read?;
        }
    }

    /// Brings what depends on the time up to date in the live generation ([`Projection::maintain`]),
    /// between two batches of the fold; returns when it is next needed.
    pub async fn maintain(&self) -> anyhow::Result<Option<i64>> {
        let state = self.state.lock().await;
        self.maintain_prefix(&prefix(self.projection.name(), state.generation))
            .await
    }

    async fn maintain_prefix(&self, p: &str) -> anyhow::Result<Option<i64>> {
        if !self.projection.maintained() {
            return Ok(None);
        }
        let mut tx = crate::db::begin_write(&self.db.pool).await?;
        let next = self.projection.maintain(&mut tx, p, unix_now()).await?;
        tx.commit().await?;
        Ok(next)
    }

    /// The writer's upkeep of what depends on the time: a short while after the fold wrote, and
    /// when the projection says it is next due, until `shutdown`.
    async fn upkeep(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut folded = self.live.subscribe();
        loop {
            let wait = match self.maintain().await {
                Ok(next) => next.map_or(UPKEEP_IDLE, |at| {
                    std::time::Duration::from_secs(
                        (at - unix_now()).clamp(0, UPKEEP_IDLE.as_secs() as i64) as u64,
                    )
                }),
                Err(e) => {
                    tracing::warn!(projection = self.projection.name(), error = %format!("{e:#}"), "upkeep failed: retrying in 5 s");
                    std::time::Duration::from_secs(5)
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                changed = folded.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Let a few more batches in: one upkeep for them all.
                    tokio::time::sleep(UPKEEP_AFTER_FOLD).await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Shadow tables have no checkpoint row until the swap: one transaction per batch still.
    async fn apply_shadow(&self, shadow: &mut State, events: &[Event]) -> anyhow::Result<()> {
        let fresh = fresh(events, shadow.checkpoint);
        let Some(last) = fresh.last().map(|e| e.position) else {
            return Ok(());
        };
        let p = prefix(self.projection.name(), shadow.generation);
        let mut tx = crate::db::begin_write(&self.db.pool).await?;
        self.projection.apply(&mut tx, &p, &fresh).await?;
        tx.commit().await?;
        shadow.checkpoint = last;
        Ok(())
    }

    async fn drop_tables(&self, prefix: &str) -> anyhow::Result<()> {
        for t in self.projection.tables() {
            sqlx::query(&format!("DROP TABLE IF EXISTS {prefix}{t}"))
                .execute(&self.db.pool)
                .await?;
        }
        Ok(())
    }
}

/// `journey_projection_lag_positions`: how many positions the read model is behind the log's
/// head. The head is asked of the source at most once a second (a call to the log service when
/// remote); in between, the lag shrinks as the checkpoint moves.
struct LagGauge {
    name: &'static str,
    head: u64,
    asked: Option<Instant>,
}

impl LagGauge {
    fn new(name: &'static str) -> LagGauge {
        LagGauge {
            name,
            head: 0,
            asked: None,
        }
    }

    async fn update<S: EventSource>(&mut self, source: &mut S, checkpoint: u64) {
        if self
            .asked
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1))
        {
            self.asked = Some(Instant::now());
            if let Ok(h) = source.head().await {
                self.head = h;
            }
        }
        metrics::gauge!("journey_projection_lag_positions", "projection" => self.name)
            .set(self.head.saturating_sub(checkpoint) as f64);
    }
}
