//! TLS (rustls) for the gRPC services and the HTTP side (dashboard, status, metrics) when a
//! certificate is given; clients trust the CA in `JOURNEY_CA_CERT` for `https://` servers.
use anyhow::Context;
use tonic::transport::{Identity, ServerTlsConfig};

pub use crate::config::TlsConfig;

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

    /// The gRPC server's TLS settings, if a certificate is given.
    pub fn grpc(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        Ok(self
            .pem()?
            .map(|(c, k)| ServerTlsConfig::new().identity(Identity::from_pem(c, k))))
    }

    /// A rustls acceptor for the HTTP side, if a certificate is given.
    pub fn http(&self) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
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
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
            config,
        ))))
    }
}

/// Serves `app` on `listener` until `stop` turns true: plain HTTP, or HTTPS with `tls`.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(acceptor) = tls else {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
        return;
    };
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => continue,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    use tower::ServiceExt;
                    app.clone().oneshot(request)
                },
            );
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}
