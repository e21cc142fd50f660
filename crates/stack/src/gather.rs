//! A write-gathering buffer that holds memory only while it holds bytes.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use onetrip_common::poll_write_out;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Gathers small writes until a flush, so that they reach the inner writer
/// as one write (one secure frame or record, one system call), as tokio's
/// `BufWriter` does, with one difference: its buffer is allocated at the
/// first write after a flush and released once a flush has written it out.
/// An idle connection spends nothing on it.
///
/// A write of `capacity` bytes or more, with nothing gathered, goes
/// straight through: with a capacity of 0, every write does, for a writer
/// that gathers by itself. Reads pass through.
#[derive(Debug)]
pub(crate) struct Gather<W> {
    inner: W,
    capacity: usize,
    /// Gathered bytes; `buf[written..]` are still to be written.
    buf: Vec<u8>,
    written: usize,
}

impl<W> Gather<W> {
    /// Gathers up to `capacity` bytes in front of `inner`.
    pub(crate) fn new(inner: W, capacity: usize) -> Self {
        Gather {
            inner,
            capacity,
            buf: Vec::new(),
            written: 0,
        }
    }

    /// The bytes allocated for gathering now.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

impl<W: AsyncWrite + Unpin> Gather<W> {
    /// Writes out what is gathered, then releases the buffer.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(poll_write_out(
            &mut self.inner,
            cx,
            &self.buf,
            &mut self.written
        ))?;
        self.buf = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Gather<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() + data.len() > this.capacity {
            ready!(this.poll_write_out(cx))?;
        }
        if data.len() >= this.capacity {
            return Pin::new(&mut this.inner).poll_write(cx, data);
        }
        if this.buf.capacity() == 0 {
            this.buf.reserve_exact(this.capacity);
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<W: AsyncRead + Unpin> AsyncRead for Gather<W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Writes arrive whole and in order, one inner write per flush, and the
    /// buffer exists only between a write and the flush that drains it.
    #[tokio::test]
    async fn gathers_until_a_flush_then_holds_nothing() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut gather = Gather::new(near, 64);
        assert_eq!(gather.allocated(), 0);
        gather.write_all(b"header").await.unwrap();
        gather.write_all(b"body").await.unwrap();
        assert_eq!(gather.allocated(), 64);
        let mut got = [0; 10];
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), far.read(&mut got))
                .await
                .is_err(),
            "nothing leaves before the flush"
        );
        gather.flush().await.unwrap();
        assert_eq!(gather.allocated(), 0, "released once written out");
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"headerbody");

        // More than it holds: what was gathered goes first, then the rest.
        let big: Vec<u8> = (0..200u8).collect();
        gather.write_all(b"x").await.unwrap();
        gather.write_all(&big).await.unwrap();
        gather.flush().await.unwrap();
        let mut got = vec![0; 201];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got[0], b'x');
        assert_eq!(&got[1..], &big[..]);
        assert_eq!(gather.allocated(), 0);
    }
}
