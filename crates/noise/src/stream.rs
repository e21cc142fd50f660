//! The secure stream: a tokio adapter over the sans-IO [`Transport`].

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use onetrip_common::poll_write_out;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{
    MAX_PLAINTEXT_LEN, TAG_LEN, Transport,
    frame::{self, PREFIX_LEN},
};

/// An encrypted stream over `IO` after a Noise handshake: it moves bytes
/// between `IO` and a [`Transport`], which frames, seals and opens them.
///
/// Writes are gathered into one frame, built in place, until a flush or
/// until the frame is full ([`MAX_PLAINTEXT_LEN`] bytes): then it is
/// sealed where it lies and written, so that a muxer's frame header and
/// body leave as one Noise frame and one write, and plaintext is copied
/// once on its way. As with any buffered writer, flush to send what was
/// written. Frames are decrypted in place. Both buffers hold one frame at
/// most, and are freed when the stream goes idle: when a read finds
/// nothing to read, and when a flush has written everything. `shutdown`
/// half-closes after the pending frame is written.
#[derive(Debug)]
pub struct NoiseStream<IO> {
    io: IO,
    transport: Transport,
    /// One frame: being built (its length prefix, then the plaintext
    /// gathered so far) while `sealed` is false, then sealed and going out,
    /// `out[sent..]` still to be written.
    out: Vec<u8>,
    sealed: bool,
    sent: usize,
}

/// One whole frame on the wire: its length, the largest plaintext, the tag.
const FRAME_CAPACITY: usize = PREFIX_LEN + MAX_PLAINTEXT_LEN + TAG_LEN;

impl<IO> NoiseStream<IO> {
    /// A secure stream over `io`, in the transport phase of a handshake run
    /// over it (with any bytes received after the handshake).
    pub fn new(io: IO, transport: Transport) -> Self {
        NoiseStream {
            io,
            transport,
            out: Vec::new(),
            sealed: false,
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
    /// Seals the frame being built, if any.
    fn seal(&mut self) -> io::Result<()> {
        if !self.sealed && !self.out.is_empty() {
            self.transport.seal_in_place(&mut self.out, 0)?;
            self.sealed = true;
        }
        Ok(())
    }

    /// Writes what is left of the sealed frame; the buffer is empty (its
    /// memory kept) once it is all written.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.sealed {
            return Poll::Ready(Ok(()));
        }
        ready!(poll_write_out(&mut self.io, cx, &self.out, &mut self.sent))?;
        self.out.clear();
        self.sealed = false;
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Seals and writes everything written so far, then frees the buffer.
    fn poll_send_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.seal()?;
        ready!(self.poll_send(cx))?;
        self.out = Vec::new();
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
        if this.out.is_empty() {
            frame::begin(&mut this.out);
        }
        let gathered = this.out.len() - PREFIX_LEN;
        let n = buf.len().min(MAX_PLAINTEXT_LEN - gathered);
        // Room for these bytes and the tag, growing at least twofold (many
        // small writes) and never beyond one whole frame.
        let needed = this.out.len() + n + TAG_LEN;
        if needed > this.out.capacity() {
            let target = needed.max(2 * this.out.capacity()).min(FRAME_CAPACITY);
            this.out.reserve_exact(target - this.out.len());
        }
        this.out.extend_from_slice(&buf[..n]);
        if gathered + n == MAX_PLAINTEXT_LEN {
            // A full frame: sealed and on its way, without waiting.
            this.seal()?;
            if let Poll::Ready(Err(err)) = this.poll_send(cx) {
                return Poll::Ready(Err(err));
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_all(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_all(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
