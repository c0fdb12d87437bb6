//! How every process of the backbone connects to NATS, set once: the URL may carry the user and
//! password (`tls://user:password@host:4222`, from a secret env file), a `tls://` URL requires
//! TLS, and the CA in `JOURNEY_CA_CERT` (the one the gRPC clients trust, `remote.rs`) is trusted
//! for it. Messages name the server without its password.
use anyhow::Context;
use async_nats::ConnectOptions;

/// Connection options for NATS at `url`: the user and password it carries (async-nats reads
/// them from the options only), and the CA of `JOURNEY_CA_CERT` trusted when set.
pub fn options(url: &str) -> anyhow::Result<ConnectOptions> {
    let mut options = ConnectOptions::new();
    if let Some((user, password)) = credentials(url) {
        options = options.user_and_password(user, password);
    }
    Ok(match std::env::var_os("JOURNEY_CA_CERT") {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            anyhow::ensure!(
                path.is_file(),
                "JOURNEY_CA_CERT {} is not a readable file",
                path.display()
            );
            options.add_root_certificates(path)
        }
        None => options,
    })
}

/// A NATS client of `url` (see [`options`]).
pub async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    options(url)?
        .connect(url)
        .await
        .with_context(|| format!("cannot reach NATS at {}", redact(url)))
}

/// The `user:password` of `scheme://user:password@host…`, percent-decoded.
fn credentials(url: &str) -> Option<(String, String)> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    Some((decode(user), decode(password)))
}

/// `%XX` escapes of a URL's user or password.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` without the password it may carry (`tls://journey:***@nats:4222`).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => format!("{}***{}", &url[..scheme + 3], &url[at..]),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_come_from_the_url() {
        use super::credentials;
        assert_eq!(
            credentials("tls://journey:s3cr%40t@nats:4222"),
            Some(("journey".into(), "s3cr@t".into()))
        );
        assert_eq!(credentials("nats://nats:4222"), None);
        assert_eq!(credentials("nats://token@nats:4222"), None);
    }

    #[test]
    fn a_password_never_shows() {
        assert_eq!(
            redact("tls://journey:s3cr3t@nats:4222"),
            "tls://journey:***@nats:4222"
        );
        assert_eq!(redact("nats://token@nats:4222"), "nats://***@nats:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }
}
