//! `/perf/1.0.0` on one stream (libp2p specs: perf/perf.md).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    time::Instant,
};

use crate::Error;

/// The protocol id (libp2p specs: perf/perf.md).
pub const PROTOCOL: &str = "/perf/1.0.0";

/// The request header: the download size as a big-endian u64 (libp2p
/// specs: perf/perf.md, "Protocol").
pub const HEADER_LEN: usize = 8;

/// Bytes per write and per read: the buffers are this big and no bigger,
/// whatever the sizes asked for.
const CHUNK: usize = 64 * 1024;

/// The bytes sent: "a predetermined arbitrary set of bytes" (perf.md).
static PAYLOAD: [u8; CHUNK] = [0; CHUNK];

/// What a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunParams {
    /// Bytes the client uploads.
    pub upload: u64,
    /// Bytes the client asks the server to send back.
    pub download: u64,
}

/// Bytes moved so far, readable while a run goes on (for progress
/// reports).
#[derive(Debug, Default)]
pub struct Progress {
    uploaded: AtomicU64,
    downloaded: AtomicU64,
}

impl Progress {
    /// Bytes uploaded so far.
    pub fn uploaded(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// Bytes downloaded so far.
    pub fn downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }
}

/// How long each phase of a client run took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunTimes {
    /// From the start until the upload was written and closed.
    pub upload: Duration,
    /// From then until the download's end.
    pub download: Duration,
}

/// Runs the client side on an open stream: sends the header and the
/// upload, closes its write side, then reads exactly `download` bytes and
/// the end of the stream.
///
/// # Errors
/// [`Error::Io`]; [`Error::ShortDownload`] or [`Error::LongDownload`] if
/// the server sends fewer or more bytes than asked.
pub async fn run_client<S>(
    mut stream: S,
    params: RunParams,
    progress: &Progress,
) -> Result<RunTimes, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let start = Instant::now();
    stream.write_all(&params.download.to_be_bytes()).await?;
    let mut left = params.upload;
    while left > 0 {
        let n = chunk(left);
        stream.write_all(&PAYLOAD[..n]).await?;
        left -= n as u64;
        progress.uploaded.fetch_add(n as u64, Ordering::Relaxed);
    }
    stream.shutdown().await?;
    let uploaded = start.elapsed();

    let mut buf = vec![0; CHUNK];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        received += n as u64;
        progress.downloaded.fetch_add(n as u64, Ordering::Relaxed);
        if received > params.download {
            return Err(Error::LongDownload {
                expected: params.download,
            });
        }
    }
    if received < params.download {
        return Err(Error::ShortDownload {
            expected: params.download,
            received,
        });
    }
    Ok(RunTimes {
        upload: uploaded,
        download: start.elapsed() - uploaded,
    })
}

/// What a server enforces on each stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// The most bytes a client may ask for. The spec allows any u64 (a
    /// client may ask for `u64::MAX` and close the stream when its timer
    /// ends), so the default is no limit: sending needs no memory.
    pub max_download: u64,
    /// The most bytes a client may upload.
    pub max_upload: u64,
    /// How long the server waits for the client's next bytes (or end)
    /// before giving up on a client that never closes.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_download: u64::MAX,
            max_upload: u64::MAX,
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What a served stream moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Bytes the client uploaded.
    pub uploaded: u64,
    /// Bytes sent back.
    pub downloaded: u64,
}

/// Serves one stream: reads the header, drains the upload to its end, and
/// only then sends the bytes asked for and closes.
///
/// # Errors
/// [`Error::ShortHeader`] if the stream ends within the header,
/// [`Error::DownloadTooLarge`] or [`Error::UploadTooLarge`] beyond the
/// limits, [`Error::Idle`] if the client stalls, [`Error::Io`].
pub async fn serve<S>(mut stream: S, limits: ServerLimits) -> Result<Served, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let idle = limits.idle_timeout;
    let mut header = [0; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = read_within(idle, &mut stream, &mut header[filled..]).await?;
        if n == 0 {
            return Err(Error::ShortHeader { received: filled });
        }
        filled += n;
    }
    let download = u64::from_be_bytes(header);
    if download > limits.max_download {
        return Err(Error::DownloadTooLarge {
            requested: download,
            limit: limits.max_download,
        });
    }

    let mut buf = vec![0; CHUNK];
    let mut uploaded = 0u64;
    loop {
        let n = read_within(idle, &mut stream, &mut buf).await?;
        if n == 0 {
            break;
        }
        uploaded += n as u64;
        if uploaded > limits.max_upload {
            return Err(Error::UploadTooLarge {
                limit: limits.max_upload,
            });
        }
    }

    let mut left = download;
    while left > 0 {
        let n = chunk(left);
        tokio::time::timeout(idle, stream.write_all(&PAYLOAD[..n]))
            .await
            .map_err(|_| Error::Idle(idle))??;
        left -= n as u64;
    }
    stream.shutdown().await?;
    Ok(Served {
        uploaded,
        downloaded: download,
    })
}

async fn read_within<S: AsyncRead + Unpin>(
    idle: Duration,
    stream: &mut S,
    buf: &mut [u8],
) -> Result<usize, Error> {
    tokio::time::timeout(idle, stream.read(buf))
        .await
        .map_err(|_| Error::Idle(idle))?
        .map_err(Error::from)
}

/// The next write's size: a whole chunk, or what is left.
fn chunk(left: u64) -> usize {
    usize::try_from(left).map_or(CHUNK, |left| left.min(CHUNK))
}
