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
    let url = match kind {
        Kind::Sqlite if !url.contains("mode=") => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}mode=rwc")
        }
        _ => url.to_string(),
    };
    let pool = AnyPoolOptions::new()
        .max_connections(if kind == Kind::Sqlite { 4 } else { 8 })
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if kind == Kind::Sqlite {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;")
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
    Ok(Db { pool, kind })
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
