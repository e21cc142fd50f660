//! Writing out bytes held ahead of time.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::AsyncWrite;

/// Writes `buf[*written..]` to `io`, advancing `*written` as the writes
/// succeed, until all of `buf` is written: the loop of every adapter that
/// holds bytes for its inner writer (a gathered frame, negotiation bytes).
/// Pending, it may be polled again with the same `buf` and `written`.
///
/// # Errors
/// The writer's error; [`io::ErrorKind::WriteZero`] if it takes nothing.
pub fn poll_write_out<W: AsyncWrite + Unpin + ?Sized>(
    io: &mut W,
    cx: &mut Context<'_>,
    buf: &[u8],
    written: &mut usize,
) -> Poll<io::Result<()>> {
    while *written < buf.len() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, &buf[*written..]))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        *written += n;
    }
    Poll::Ready(Ok(()))
}
