//! `journey backup` and `journey restore` (docs/design.md §4, failures and recovery): a
//! consistent copy of a running log through its public reads (`copy.rs`), the backup folder's
//! files (`format.rs`), and a log folder rebuilt from backups or from the NATS stream, the chain
//! checked before anything is kept (`restore.rs`). The verbs' flags are in `args.rs`.
mod copy;
mod format;
mod progress;
mod restore;

use journey_log_access::Remote;
use std::path::{Path, PathBuf};

/// `journey backup --to DIR [--since PREVIOUS]`.
pub async fn backup(remote: &Remote, to: &Path, since: Option<&Path>) -> anyhow::Result<bool> {
    copy::backup(remote, to, since).await?;
    Ok(true)
}

/// `journey restore BACKUP… --data-dir D [--anchor FILE]`, or `--from-nats URL --stream S`
/// instead of the backups.
pub async fn restore(
    backups: &[PathBuf],
    from_nats: Option<&str>,
    stream: &str,
    data_dir: &Path,
    anchor: Option<&Path>,
) -> anyhow::Result<bool> {
    match from_nats {
        Some(url) => restore::from_nats(url, stream, data_dir, anchor).await?,
        None => restore::from_backups(backups, data_dir, anchor)?,
    }
    Ok(true)
}
