//! The crate's one error type.

use std::time::Duration;

use onetrip_common::{IoError, io_error_conversions};

use crate::protocol::HEADER_LEN;

/// Everything that can go wrong in a perf run.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Connecting or opening a stream failed.
    #[error(transparent)]
    Stack(#[from] onetrip_stack::Error),
    /// The client's stream ended within the header (a big-endian u64).
    #[error("the stream ended after {received} of the header's {HEADER_LEN} bytes")]
    ShortHeader {
        /// Header bytes received.
        received: usize,
    },
    /// The client asked for more than the server allows.
    #[error("the client asked for {requested} bytes, more than the limit of {limit}")]
    DownloadTooLarge {
        /// Bytes asked for.
        requested: u64,
        /// The server's limit.
        limit: u64,
    },
    /// The client uploaded more than the server allows.
    #[error("the client uploaded more than the limit of {limit} bytes")]
    UploadTooLarge {
        /// The server's limit.
        limit: u64,
    },
    /// The peer sent nothing (nor closed) for this long.
    #[error("the peer was idle for {0:?}")]
    Idle(Duration),
    /// The server closed before sending all the bytes asked for.
    #[error("the server sent {received} of {expected} bytes")]
    ShortDownload {
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// The server sent more than asked for.
    #[error("the server sent more than the {expected} bytes asked for")]
    LongDownload {
        /// Bytes asked for.
        expected: u64,
    },
}

io_error_conversions!(Error);
