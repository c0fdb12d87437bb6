//! The file of a SQLite database (read models, access log): patient data, so readable by its owner
//! only whatever the umask. The folders missing on its path are created `0700`, the database file
//! `0600` before SQLite opens it; SQLite gives its `-wal`, `-shm` and `-journal` files the mode of
//! the database file, and those left by an older version are set to `0600` too.
use anyhow::Context;
use std::{
    fs::{DirBuilder, OpenOptions, Permissions},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// The file of a `sqlite:` URL (`None`: in memory).
pub fn path_of(url: &str) -> Option<PathBuf> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    if path.is_empty() || path.starts_with(':') || url.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Before SQLite opens `url`: its missing folders created `0700`, the file created `0600` (when
/// the URL lets SQLite create it), an existing one set to `0600`.
pub fn prepare(url: &str) -> anyhow::Result<()> {
    let Some(path) = path_of(url) else {
        return Ok(());
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("cannot create the folder {}", parent.display()))?;
    }
    let creates = !url.contains("mode=") || url.contains("mode=rwc");
    if creates {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create the database file {}", path.display()))?;
    }
    restrict(&path)
}

/// The database file and its companions (`-wal`, `-shm`, `-journal`) set to `0600`.
pub fn restrict(path: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o777 != 0o600 => {
                std::fs::set_permissions(&p, Permissions::from_mode(0o600))
                    .with_context(|| format!("cannot make {} private (chmod 600)", p.display()))?
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_urls() {
        assert_eq!(path_of("sqlite::memory:"), None);
        assert_eq!(path_of("sqlite://file:x?mode=memory"), None);
        assert_eq!(
            path_of("sqlite://./data/x.sqlite?mode=rwc"),
            Some(PathBuf::from("./data/x.sqlite"))
        );
        assert_eq!(
            path_of("sqlite:///var/lib/x.sqlite"),
            Some(PathBuf::from("/var/lib/x.sqlite"))
        );
    }

    #[test]
    fn the_file_and_its_folders_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("a/b/x.sqlite");
        prepare(&format!("sqlite://{}", db.display())).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
        assert_eq!(mode(&db), 0o600);
        let wal = tmp.path().join("a/b/x.sqlite-wal");
        std::fs::write(&wal, "").unwrap();
        std::fs::set_permissions(&wal, Permissions::from_mode(0o644)).unwrap();
        restrict(&db).unwrap();
        assert_eq!(mode(&wal), 0o600);
    }
}
