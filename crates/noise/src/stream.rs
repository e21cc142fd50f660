//! The secure stream: length-prefixed, encrypted transport messages.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Error, InvalidFrame, cipher::TAG_LEN, handshake::TransportKeys};

/// libp2p specs, noise/README.md: a 2-byte big-endian length prefix, so at
/// most 65535 bytes per Noise message.
pub const MAX_FRAME_LEN: usize = u16::MAX as usize;

/// The most plaintext one frame carries (the frame holds the tag too).
pub const MAX_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

/// The least a read asks for while no frame length is known: enough for
/// several small frames at once.
const MIN_READ: usize = 4096;

const PREFIX_LEN: usize = 2;

/// An encrypted stream over `IO` after a Noise handshake.
///
/// Each write becomes one frame at once (small writes are not held back:
/// latency first); a write larger than [`MAX_PLAINTEXT_LEN`] fills a whole
/// frame and reports that much written. Frames are encrypted and decrypted
/// in place in two buffers allocated once per stream: nothing is allocated
/// per frame. `shutdown` half-closes after the pending frame is written.
#[derive(Debug)]
pub struct NoiseStream<IO> {
    io: IO,
    keys: TransportKeys,
    /// Received bytes: `rbuf[..rlen]`; once a whole frame is decrypted,
    /// its plaintext is `rbuf[rpos..rplain_end]` and the frame ends at
    /// `rframe_end`. It grows with the frames received, to one frame at
    /// most, so an idle connection that only saw small frames holds little.
    rbuf: Vec<u8>,
    rlen: usize,
    rpos: usize,
    rplain_end: usize,
    rframe_end: usize,
    /// The frame being written: `wbuf[wpos..wlen]` is still to go. It grows
    /// with the writes, to one frame at most.
    wbuf: Vec<u8>,
    wpos: usize,
    wlen: usize,
    failed: Option<Error>,
}

impl<IO> NoiseStream<IO> {
    /// A secure stream over `io`; `leftover` is what was read past the
    /// last handshake message.
    pub(crate) fn new(io: IO, keys: TransportKeys, leftover: &[u8]) -> Self {
        NoiseStream {
            io,
            keys,
            rbuf: leftover.to_vec(),
            rlen: leftover.len(),
            rpos: 0,
            rplain_end: 0,
            rframe_end: 0,
            wbuf: Vec::new(),
            wpos: 0,
            wlen: 0,
            failed: None,
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

    fn fail(&mut self, err: Error) -> io::Error {
        self.failed = Some(err.clone());
        err.into()
    }

    /// Decrypts the frame at the front of the read buffer if it is whole.
    fn decrypt_front(&mut self) -> Result<bool, Error> {
        if self.rlen < PREFIX_LEN {
            return Ok(false);
        }
        let len = usize::from(u16::from_be_bytes([self.rbuf[0], self.rbuf[1]]));
        if len < TAG_LEN {
            return Err(InvalidFrame::ShorterThanTag { len }.into());
        }
        if self.rlen < PREFIX_LEN + len {
            return Ok(false);
        }
        let plain = self
            .keys
            .recv
            .open(&mut self.rbuf[PREFIX_LEN..PREFIX_LEN + len])?;
        self.rpos = PREFIX_LEN;
        self.rplain_end = PREFIX_LEN + plain;
        self.rframe_end = PREFIX_LEN + len;
        Ok(true)
    }

    /// Makes room to read the rest of the frame at the front (or, before
    /// its length is known, at least [`MIN_READ`] bytes).
    fn reserve_read(&mut self) {
        let needed = if self.rlen >= PREFIX_LEN {
            PREFIX_LEN + usize::from(u16::from_be_bytes([self.rbuf[0], self.rbuf[1]]))
        } else {
            PREFIX_LEN
        };
        let target = needed.max(MIN_READ).max(self.rlen + 1);
        if self.rbuf.len() < target {
            self.rbuf.resize(target.min(PREFIX_LEN + MAX_FRAME_LEN), 0);
        }
    }

    /// Drops the consumed frame, keeping the bytes received after it.
    fn discard_front(&mut self) {
        self.rbuf.copy_within(self.rframe_end..self.rlen, 0);
        self.rlen -= self.rframe_end;
        self.rpos = 0;
        self.rplain_end = 0;
        self.rframe_end = 0;
    }
}

impl<IO: AsyncWrite + Unpin> NoiseStream<IO> {
    fn poll_write_frame(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wlen {
            let n =
                ready!(Pin::new(&mut self.io).poll_write(cx, &self.wbuf[self.wpos..self.wlen]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
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
        if let Some(err) = &this.failed {
            return Poll::Ready(Err(err.clone().into()));
        }
        loop {
            if this.rpos < this.rplain_end {
                let n = buf.remaining().min(this.rplain_end - this.rpos);
                buf.put_slice(&this.rbuf[this.rpos..this.rpos + n]);
                this.rpos += n;
                if this.rpos == this.rplain_end {
                    this.discard_front();
                }
                return Poll::Ready(Ok(()));
            }
            if this.rframe_end > 0 {
                // An empty frame: nothing to hand out.
                this.discard_front();
            }
            match this.decrypt_front() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => return Poll::Ready(Err(this.fail(err))),
            }
            this.reserve_read();
            let mut read = ReadBuf::new(&mut this.rbuf[this.rlen..]);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            let n = read.filled().len();
            if n == 0 {
                return Poll::Ready(if this.rlen == 0 {
                    Ok(())
                } else {
                    Err(this.fail(Error::UnexpectedEof))
                });
            }
            this.rlen += n;
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
        if let Some(err) = &this.failed {
            return Poll::Ready(Err(err.clone().into()));
        }
        ready!(this.poll_write_frame(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = buf.len().min(MAX_PLAINTEXT_LEN);
        if this.wbuf.len() < PREFIX_LEN + n + TAG_LEN {
            this.wbuf.resize(PREFIX_LEN + n + TAG_LEN, 0);
        }
        let body = &mut this.wbuf[PREFIX_LEN..PREFIX_LEN + n];
        body.copy_from_slice(&buf[..n]);
        let tag = match this.keys.send.seal(body) {
            Ok(tag) => tag,
            Err(err) => return Poll::Ready(Err(this.fail(err))),
        };
        this.wbuf[PREFIX_LEN + n..PREFIX_LEN + n + TAG_LEN].copy_from_slice(tag.as_ref());
        let len = u16::try_from(n + TAG_LEN).expect("a frame fits u16");
        this.wbuf[..PREFIX_LEN].copy_from_slice(&len.to_be_bytes());
        this.wpos = 0;
        this.wlen = PREFIX_LEN + n + TAG_LEN;
        // The frame is ours now; start it on its way without waiting.
        if let Poll::Ready(Err(err)) = this.poll_write_frame(cx) {
            return Poll::Ready(Err(err));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_frame(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_frame(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
