//! Patient data on disk: modes. Whatever the umask, the folders a node creates for its data are
//! `0700` and the files in them `0600`: the log folder (sled's files and the commit journal), the
//! anchor file, the SQLite read models and access log (`journey_projections::sqlite_file`).
//!
//! sled 0.34 creates its files with the umask's mode and no way to ask for another; the log
//! folder is made `0700` before sled opens it (nothing in it is then reachable by anyone else),
//! and the files present are set to `0600` after it opened and once it closed.
use anyhow::Context;
use std::{
    fs::{DirBuilder, Permissions},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode `0700`; folders already there keep theirs.
pub fn create_dirs(dir: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// The data folder of a node: created `0700`, or set to `0700` when it was already there.
pub fn private_data_dir(dir: &Path) -> anyhow::Result<()> {
    create_dirs(dir).with_context(|| format!("cannot create the folder {}", dir.display()))?;
    std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
        .with_context(|| format!("cannot make {} private (chmod 700)", dir.display()))
}

/// Every folder under `dir` (itself included) set to `0700`, every file to `0600`. Files removed
/// meanwhile (sled replaces its snapshots) are skipped.
pub fn restrict_tree(dir: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mode = if meta.is_dir() {
        DIR_MODE
    } else if meta.is_file() {
        FILE_MODE
    } else {
        return Ok(()); // a symbolic link: its target is not ours to change
    };
    if meta.permissions().mode() & 0o777 != mode {
        match std::fs::set_permissions(dir, Permissions::from_mode(mode)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            r => r.with_context(|| format!("cannot set the mode of {}", dir.display()))?,
        }
    }
    if meta.is_dir() {
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            restrict_tree(&entry?.path())?;
        }
    }
    Ok(())
}

/// `0600`, for a file already there.
pub fn file_permissions() -> Permissions {
    Permissions::from_mode(FILE_MODE)
}

/// Options creating a file readable and writable by its owner only.
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn data_folders_and_their_files_become_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/data");
        private_data_dir(&dir).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&dir)), (0o700, 0o700));
        std::fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        private_data_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);

        std::fs::create_dir(dir.join("blobs")).unwrap();
        std::fs::write(dir.join("blobs/1"), "x").unwrap();
        std::fs::write(dir.join("db"), "x").unwrap();
        for p in ["blobs", "blobs/1", "db"] {
            std::fs::set_permissions(dir.join(p), Permissions::from_mode(0o777)).unwrap();
        }
        restrict_tree(&dir).unwrap();
        assert_eq!(mode(&dir.join("blobs")), 0o700);
        assert_eq!(
            (mode(&dir.join("blobs/1")), mode(&dir.join("db"))),
            (0o600, 0o600)
        );
        restrict_tree(&dir.join("missing")).unwrap();
    }
}
