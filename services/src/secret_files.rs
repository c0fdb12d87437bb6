//! The secret files a server reads at start (the API-key file, the HS256 secret): refused when
//! anyone but their owner may read them, and when a secret in them is too short to resist guessing
//! (an empty HS256 secret would let anyone sign an admin JWT). `deploy/make-keys` writes
//! compliant files (32-character keys, mode 0600).
use std::{os::unix::fs::PermissionsExt, path::Path};

/// The shortest API key accepted, in characters.
pub const MIN_API_KEY_CHARS: usize = 16;
/// The shortest HS256 secret accepted, in bytes (after trimming surrounding whitespace).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The text of the secret file `path` (`what`: "API-key file", "HS256 secret"), once it is known
/// to be readable by its owner only.
pub fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "the {what} {} may be read by others than its owner (mode {mode:04o}): run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} {}: {e}", path.display()))
}

/// Refuses the API key of line `line` (1-based) of `path` when it is too short.
pub fn check_api_key(path: &Path, line: usize, key: &str) -> anyhow::Result<()> {
    let n = key.chars().count();
    if n < MIN_API_KEY_CHARS {
        anyhow::bail!(
            "{}:{line}: this API key is {n} characters long; API keys must have at least {MIN_API_KEY_CHARS} (deploy/make-keys writes random 32-character keys)",
            path.display()
        );
    }
    Ok(())
}

/// The HS256 secret read from `path` (trimmed), refused when it is too short.
pub fn hs256_secret(path: &Path) -> anyhow::Result<String> {
    let secret = read(path, "HS256 secret")?.trim().to_string();
    if secret.len() < MIN_HS256_SECRET_BYTES {
        anyhow::bail!(
            "the HS256 secret {} is {} bytes long (surrounding whitespace ignored); it must have at least {MIN_HS256_SECRET_BYTES}: write a random one, e.g. `head -c 48 /dev/urandom | base64 > {}`, then `chmod 600 {}`",
            path.display(),
            secret.len(),
            path.display(),
            path.display()
        );
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;

    fn write(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn secrets_must_be_private_and_long() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        write(&secret, "  \n\t\n", 0o600);
        let e = hs256_secret(&secret).unwrap_err().to_string();
        assert!(e.contains("0 bytes") && e.contains("at least 32"), "{e}");
        write(&secret, &"s".repeat(31), 0o600);
        assert!(hs256_secret(&secret).is_err());
        write(&secret, &format!("{}\n", "s".repeat(32)), 0o600);
        assert_eq!(hs256_secret(&secret).unwrap(), "s".repeat(32));
        for mode in [0o640, 0o604, 0o644, 0o660] {
            write(&secret, &"s".repeat(32), mode);
            let e = hs256_secret(&secret).unwrap_err().to_string();
            assert!(
                e.contains(&format!("chmod 600 {}", secret.display())),
                "{e}"
            );
        }
        write(&secret, &"s".repeat(32), 0o400);
        assert!(hs256_secret(&secret).is_ok());

        let keys = dir.path().join("keys");
        let e = check_api_key(&keys, 3, "k-partner")
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{}:3:", keys.display())), "{e}");
        assert!(check_api_key(&keys, 3, "k-partner-0123456").is_ok());
    }
}
