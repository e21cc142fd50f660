//! The secure stream: a tokio adapter over the sans-IO [`Transport`].

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Transport;

/// An encrypted stream over `IO` after a Noise handshake: it moves bytes
/// between `IO` and a [`Transport`], which frames, seals and opens them.
///
/// Each write becomes one frame at once (small writes are not held back:
/// latency first); a write larger than
/// [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN) fills a whole frame and
/// reports that much written. Frames are encrypted and decrypted in place
/// in two buffers that grow with the frames, to one frame at most, and are
/// freed when the stream goes idle: when a read finds nothing to read, and
/// when a flush has written everything. `shutdown` half-closes after the
/// pending frame is written.
#[derive(Debug)]
pub struct NoiseStream<IO> {
    io: IO,
    transport: Transport,
    /// The frame being written: `out[sent..]` is still to go.
    out: Vec<u8>,
    sent: usize,
}

impl<IO> NoiseStream<IO> {
    /// A secure stream over `io`, in the transport phase of a handshake run
    /// over it (with any bytes received after the handshake).
    pub fn new(io: IO, transport: Transport) -> Self {
        NoiseStream {
            io,
            transport,
            out: Vec::new(),
            sent: 0,
        }
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &IO {
        &self.io
    }

    /// The inner stream, mutably. Bytes written to it directly bypass the
    /// encryption and corrupt the secure channel.
    pub fn get_mut(&mut self) -> &mut IO {
        &mut self.io
    }
}

impl<IO: AsyncWrite + Unpin> NoiseStream<IO> {
    /// Writes what is left of the pending frame.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for NoiseStream<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let plaintext = this.transport.plaintext()?;
            if !plaintext.is_empty() {
                let n = buf.remaining().min(plaintext.len());
                buf.put_slice(&plaintext[..n]);
                this.transport.consume(n);
                return Poll::Ready(Ok(()));
            }
            let mut read = ReadBuf::new(this.transport.input_buffer());
            let polled = Pin::new(&mut this.io).poll_read(cx, &mut read);
            let n = read.filled().len();
            match polled {
                Poll::Pending => {
                    // Nothing to read: an idle connection keeps no buffer.
                    this.transport.release_input();
                    return Poll::Pending;
                }
                Poll::Ready(result) => result?,
            }
            match n {
                0 => return Poll::Ready(Ok(this.transport.handle_eof()?)),
                n => this.transport.input_filled(n)?,
            }
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for NoiseStream<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.out.clear();
        this.sent = 0;
        let n = this.transport.seal(buf, &mut this.out)?;
        // The frame is ours now; start it on its way without waiting.
        if let Poll::Ready(Err(err)) = this.poll_send(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        // All written: an idle connection keeps no frame buffer.
        this.out = Vec::new();
        this.sent = 0;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
