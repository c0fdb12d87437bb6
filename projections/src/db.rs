//! The read-model database: SQLite (embedded default, a file) or PostgreSQL, through sqlx `Any`.
//! SQL here is written once for both: `$n` placeholders, portable types, `ON CONFLICT` upserts.
use anyhow::Context;
use sqlx::{any::AnyPoolOptions, AnyPool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub kind: Kind,
}

/// Connects (creating a SQLite file if needed) and runs the migrations.
/// How long a query waits for a connection before it fails (`PoolTimedOut`, answered
/// `UNAVAILABLE`): a database that is down or stalled fails callers in seconds, not sqlx's 30 s.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub async fn connect(url: &str) -> anyhow::Result<Db> {
    sqlx::any::install_default_drivers();
    let kind = if url.starts_with("sqlite:") {
        Kind::Sqlite
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Kind::Postgres
    } else {
        anyhow::bail!(
            "unsupported database url {url:?}: use sqlite://PATH or postgres://USER@HOST/DB"
        );
    };
    if kind == Kind::Sqlite {
        crate::sqlite_file::prepare(url)?; // folders 0700, the file 0600
    }
    let url = match kind {
        Kind::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_string(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(if kind == Kind::Sqlite { 4 } else { 8 })
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if kind == Kind::Sqlite {
                    use sqlx::Executor;
                    // A 64 MiB page cache per connection (SQLite's default is 2 MiB): folds look
                    // rows up by key all over their tables, and the worklist scans its window.
                    // Statement journals (a multi-row upsert's undo) in memory, not in temporary
                    // files. The WAL is copied back into the database (and fsync'd) every 10,000
                    // pages (40 MiB) instead of 1,000: a fold rewrites the same pages batch after
                    // batch, and each copy is made once per checkpoint.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;
                         PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await
        .with_context(|| format!("cannot open the read-model database {}", redact(&url)))?;
    MIGRATOR
        .run(&pool)
        .await
        .context("read-model migrations failed")?;
    append_only(&pool, kind, ACCESS_LOG).await?;
    append_only(&pool, kind, ACCESS_PATIENTS).await?;
    Ok(Db { pool, kind })
}

/// Begins a transaction that writes. SQLite: `BEGIN IMMEDIATE`, which takes the write lock at
/// once, so that a writer waits its turn (`busy_timeout`) instead of failing with "database is
/// locked" when it read, another connection then committed, and it wrote (SQLite does not wait
/// to upgrade a read snapshot another write made stale). PostgreSQL: `BEGIN`.
pub async fn begin_write(
    pool: &AnyPool,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    if pool.connect_options().database_url.scheme() == "sqlite" {
        pool.begin_with("BEGIN IMMEDIATE").await
    } else {
        pool.begin().await
    }
}

/// The table of who read what: rows are added, never changed or removed.
pub const ACCESS_LOG: &str = "journey_access_log";

/// The patients each list read of the access log returned: rows are added, never changed or
/// removed.
pub const ACCESS_PATIENTS: &str = "journey_access_patients";

/// Makes the database itself refuse any UPDATE or DELETE on `table` (a trigger), so that a
/// bug or a hand-typed statement cannot rewrite history; only dropping the trigger could.
async fn append_only(pool: &AnyPool, kind: Kind, table: &str) -> anyhow::Result<()> {
    let message = format!("{table} is append-only: its rows are never updated or deleted");
    let statements = match kind {
        Kind::Sqlite => ["UPDATE", "DELETE"]
            .iter()
            .map(|op| {
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {table}_no_{} BEFORE {op} ON {table}
                     BEGIN SELECT RAISE(ABORT, '{message}'); END",
                    op.to_lowercase()
                )
            })
            .collect::<Vec<_>>(),
        Kind::Postgres => vec![
            // Services starting together on one database: one at a time.
            "SELECT pg_advisory_xact_lock(4242424242)".to_string(),
            format!(
                "CREATE OR REPLACE FUNCTION {table}_refuse() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
            ),
            format!(
                "CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                 FOR EACH ROW EXECUTE FUNCTION {table}_refuse()"
            ),
        ],
    };
    let mut tx = begin_write(pool).await?;
    for s in statements {
        sqlx::query(&s)
            .execute(&mut *tx)
            .await
            .with_context(|| format!("cannot make {table} append-only"))?;
    }
    tx.commit().await?;
    Ok(())
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
