//! TLS (rustls) for the gRPC services and the HTTP side (dashboard, status, metrics) when a
//! certificate is given; clients trust the CA in `JOURNEY_CA_CERT` for `https://` servers. The
//! handshake itself, bounded in time, is in `connections.rs`.
use anyhow::Context;

pub use crate::config::TlsConfig;
pub use tokio_rustls::TlsAcceptor;

/// Marks a request that came over TLS (the HTTP server puts it in the request's extensions):
/// the session cookie is then `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct ServedOverTls;

/// The application protocols a server offers in the handshake.
#[derive(Debug, Clone, Copy)]
pub enum Alpn {
    /// gRPC: HTTP/2 only.
    Grpc,
    /// The HTTP side: HTTP/2 or HTTP/1.1.
    Http,
    /// The HL7 MLLP port: no application protocol negotiated (MLLP senders offer none).
    Mllp,
}

impl TlsConfig {
    fn pem(&self) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let c = std::fs::read(cert)
            .with_context(|| format!("cannot read --tls-cert {}", cert.display()))?;
        let k = std::fs::read(key)
            .with_context(|| format!("cannot read --tls-key {}", key.display()))?;
        Ok(Some((c, k)))
    }

    /// A rustls acceptor offering `alpn`, if a certificate is given.
    pub fn acceptor(&self, alpn: Alpn) -> anyhow::Result<Option<TlsAcceptor>> {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let Some((c, k)) = self.pem()? else {
            return Ok(None);
        };
        let certs = CertificateDer::pem_slice_iter(&c)
            .collect::<Result<Vec<_>, _>>()
            .context("--tls-cert: not a PEM certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(&k).context("--tls-key: not a PEM private key")?;
        let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("--tls-cert and --tls-key do not form a usable identity")?;
        config.alpn_protocols = match alpn {
            Alpn::Grpc => vec![b"h2".to_vec()],
            Alpn::Http => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Mllp => Vec::new(),
        };
        Ok(Some(TlsAcceptor::from(std::sync::Arc::new(config))))
    }
}
