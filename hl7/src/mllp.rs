//! MLLP framing: `<VT> message <FS><CR>`. A small reader over any byte stream that hands out one
//! frame at a time, and the frame a message is sent in.
//!
//! Bytes outside a frame are skipped (a stray CR after FS, line noise). A frame larger than the
//! limit is read to its end and discarded, never buffered: its sender gets a reject, the
//! connection stays usable. An FS without the CR after it still ends the frame.
use tokio::io::{AsyncRead, AsyncReadExt};

pub const VT: u8 = 0x0B;
pub const FS: u8 = 0x1C;
pub const CR: u8 = 0x0D;
/// How much of a frame over the limit is kept to answer it.
const HEAD: usize = 4096;

/// What the reader got.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    /// A frame over the limit (`len` bytes at least), dropped whole but for its first bytes
    /// (`head`: enough for its MSH, so that the reject names the message).
    TooLarge {
        len: usize,
        head: Vec<u8>,
    },
    /// The peer closed the connection (any half frame is dropped).
    Closed,
}

/// `message` framed for the wire.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 3);
    out.push(VT);
    out.extend_from_slice(message);
    out.extend_from_slice(&[FS, CR]);
    out
}

pub struct Reader<R> {
    inner: R,
    max: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already looked at.
    start: usize,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(inner: R, max: usize) -> Reader<R> {
        Reader {
            inner,
            max,
            buf: Vec::with_capacity(8 * 1024),
            start: 0,
        }
    }

    /// The next frame. Dropping the future loses the frame in progress: the listener only does
    /// so to close the connection (idle timeout, shutdown).
    pub async fn next(&mut self) -> std::io::Result<Frame> {
        let mut in_frame = false;
        let mut dropped = 0usize;
        let mut head = Vec::new();
        loop {
            // Look at what the buffer holds.
            if !in_frame {
                match self.buf[self.start..].iter().position(|b| *b == VT) {
                    Some(i) => {
                        self.buf.drain(..self.start + i + 1);
                        self.start = 0;
                        in_frame = true;
                    }
                    None => {
                        self.buf.clear();
                        self.start = 0;
                    }
                }
            }
            if in_frame {
                if let Some(i) = self.buf[self.start..].iter().position(|b| *b == FS) {
                    let end = self.start + i;
                    let message: Vec<u8> = self.buf[..end].to_vec();
                    self.buf.drain(..end + 1);
                    self.start = 0;
                    if dropped > 0 || message.len() > self.max {
                        if head.is_empty() {
                            head = message[..message.len().min(HEAD)].to_vec();
                        }
                        return Ok(Frame::TooLarge {
                            len: dropped + message.len(),
                            head,
                        });
                    }
                    return Ok(Frame::Message(message));
                }
                self.start = self.buf.len();
                if self.buf.len() > self.max {
                    if head.is_empty() {
                        head = self.buf[..self.buf.len().min(HEAD)].to_vec();
                    }
                    dropped += self.buf.len();
                    self.buf.clear();
                    self.start = 0;
                }
            }
            let mut chunk = [0u8; 8 * 1024];
            let n = self.inner.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Frame::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<Frame> {
        let mut r = Reader::new(input, max);
        let mut out = Vec::new();
        loop {
            let f = r.next().await.unwrap();
            let end = f == Frame::Closed;
            out.push(f);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn frames_in_a_stream() {
        let mut input = frame(b"MSH|one");
        input.extend_from_slice(b"\r\nnoise");
        input.extend(frame(b"MSH|two"));
        input.extend_from_slice(&[VT]);
        input.extend_from_slice(b"MSH|three");
        input.push(FS); // no CR
        input.extend_from_slice(&[VT]);
        input.extend_from_slice(b"half a frame");
        assert_eq!(
            frames(&input, 100).await,
            [
                Frame::Message(b"MSH|one".to_vec()),
                Frame::Message(b"MSH|two".to_vec()),
                Frame::Message(b"MSH|three".to_vec()),
                Frame::Closed
            ]
        );
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_is_dropped_and_the_next_read() {
        let mut input = frame(&vec![b'x'; 20_000]);
        input.extend(frame(b"MSH|after"));
        let got = frames(&input, 1_000).await;
        assert!(
            matches!(&got[0], Frame::TooLarge { len, head } if *len >= 1_000 && head.starts_with(b"xx")),
            "{:?}",
            got[0]
        );
        assert_eq!(got[1], Frame::Message(b"MSH|after".to_vec()));
    }
}
