//! The connections a node's servers accept (gRPC and HTTP alike): Nagle's algorithm off (small
//! replies must not wait for the peer's delayed ACK), the TLS handshake done within
//! [`HANDSHAKE`], and the first bytes of a request received within [`FIRST_BYTES`]: a socket
//! that connects and says nothing is closed rather than held. Handshakes run beside the accept
//! loop, so a slow client holds up nobody else. (The HTTP server also bounds the time to send
//! each request's headers; an HTTP/2 connection under way is watched by pings.)
use std::{
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The longest a client may take to complete the TLS handshake.
pub const HANDSHAKE: Duration = Duration::from_secs(10);
/// The longest a client may wait, once connected (and through TLS), before sending anything.
pub const FIRST_BYTES: Duration = Duration::from_secs(10);

trait Io: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Io for T {}

/// An accepted connection, plain or TLS, whose first read fails once [`FIRST_BYTES`] have
/// passed without a byte.
pub struct Conn {
    io: Pin<Box<dyn Io>>,
    local: Option<SocketAddr>,
    peer: SocketAddr,
    tls: bool,
    first_bytes: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Conn {
    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

/// The connections `listener` accepts, handshaken: TLS with `tls`, else plain. Ends when the
/// stream is dropped (the listener is closed then).
pub fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
) -> impl tokio_stream::Stream<Item = io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, most likely: let connections close first.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (tls, tx) = (tls.clone(), tx.clone());
            tokio::spawn(async move {
                match handshake(tcp, peer, tls).await {
                    Ok(conn) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    Err(e) => tracing::debug!(%peer, error = %e, "connection closed before use"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

async fn handshake(tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>) -> io::Result<Conn> {
    tcp.set_nodelay(true)?;
    let local = tcp.local_addr().ok();
    let is_tls = tls.is_some();
    let io: Pin<Box<dyn Io>> = match tls {
        None => Box::pin(tcp),
        Some(acceptor) => Box::pin(
            tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "TLS handshake not done in time")
                })??,
        ),
    };
    Ok(Conn {
        io,
        local,
        peer,
        tls: is_tls,
        first_bytes: Some(Box::pin(tokio::time::sleep(FIRST_BYTES))),
    })
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match this.io.as_mut().poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.first_bytes = None;
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                if let Some(deadline) = this.first_bytes.as_mut() {
                    if deadline.as_mut().poll(cx).is_ready() {
                        let e = io::Error::new(io::ErrorKind::TimedOut, "nothing received in time");
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io.as_mut().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().io.as_mut().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io.as_mut().poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.local,
            remote_addr: Some(self.peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_stream::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_fails_its_first_read_and_a_talking_one_does_not() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conns = std::pin::pin!(accept(listener, None));

        let _silent = TcpStream::connect(addr).await.unwrap();
        let mut conn = conns.next().await.unwrap().unwrap();
        assert!(!conn.is_tls());
        let mut buf = [0u8; 4];
        let e = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);

        let mut talking = TcpStream::connect(addr).await.unwrap();
        let mut conn = conns.next().await.unwrap().unwrap();
        talking.write_all(b"GET ").await.unwrap();
        assert_eq!(conn.read(&mut buf).await.unwrap(), 4);
        // Past the first bytes, silence is the protocol's business (headers, pings).
        let read = tokio::time::timeout(FIRST_BYTES * 3, conn.read(&mut buf)).await;
        assert!(read.is_err(), "no deadline once a byte came: {read:?}");
    }
}
