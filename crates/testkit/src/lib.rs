//! Test helpers shared by onetrip's crates.

#[cfg(feature = "certificates")]
pub mod certificates;
#[cfg(feature = "netns")]
pub mod netns;
#[cfg(feature = "peers")]
pub mod peer;

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The writes that reached a transport, one entry per successful
/// `poll_write`, in order. Cloning shares the log.
#[derive(Debug, Clone, Default)]
pub struct WriteLog(Arc<Mutex<Vec<Vec<u8>>>>);

impl WriteLog {
    /// The writes so far.
    pub fn writes(&self) -> Vec<Vec<u8>> {
        self.lock().clone()
    }

    /// All bytes written so far, concatenated.
    pub fn bytes(&self) -> Vec<u8> {
        self.lock().concat()
    }

    /// Forgets the writes so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Wraps a transport and records every write that reaches it: how many
/// writes (flights leave as writes) and which bytes.
#[derive(Debug)]
pub struct Recorded<T> {
    inner: T,
    log: WriteLog,
}

impl<T> Recorded<T> {
    /// Wraps `inner`; the returned log sees its writes.
    pub fn new(inner: T) -> (Self, WriteLog) {
        let log = WriteLog::default();
        (
            Recorded {
                inner,
                log: log.clone(),
            },
            log,
        )
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Recorded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Recorded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            self.log.lock().push(buf[..n].to_vec());
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
