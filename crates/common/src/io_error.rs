//! A transport failure, kept as the error object that caused it.

use std::{fmt, io, sync::Arc};

/// An [`io::Error`] that is cheap to clone: a broken stream reports the
/// same error on every later call, and errors travel through `Clone` enums.
///
/// The original error is kept, not flattened to a string: [`IoError::kind`]
/// and [`IoError::get_ref`] reach it, and [`IoError::into_io`] gives it back
/// unchanged when no clone is alive.
#[derive(Clone, thiserror::Error)]
#[error(transparent)]
pub struct IoError(Arc<io::Error>);

impl IoError {
    /// The kind of the underlying error.
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }

    /// The underlying error.
    pub fn get_ref(&self) -> &io::Error {
        &self.0
    }

    /// The underlying error itself if this is its last handle, or a new
    /// [`io::Error`] of the same kind wrapping this one.
    pub fn into_io(self) -> io::Error {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| io::Error::new(shared.kind(), Self(shared)))
    }
}

impl fmt::Debug for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl From<io::Error> for IoError {
    fn from(err: io::Error) -> Self {
        Self(Arc::new(err))
    }
}

/// The conversions between a crate's error enum and [`io::Error`], for an
/// enum named `Error` with a variant `Io(IoError)`.
///
/// `io_error_conversions!(Error)` implements `From<io::Error> for Error`
/// (so that `?` works on I/O calls). `io_error_conversions!(Error, kind)`
/// also implements `From<Error> for io::Error`, for errors that surface
/// through `AsyncRead`/`AsyncWrite`: a transport error passes through
/// unchanged, any other is wrapped with the [`io::ErrorKind`] that
/// `kind(&Error)` gives it (get it back with `io::Error::get_ref` and a
/// downcast).
///
/// [`io::Error`]: std::io::Error
/// [`io::ErrorKind`]: std::io::ErrorKind
#[macro_export]
macro_rules! io_error_conversions {
    ($error:ident) => {
        impl ::core::convert::From<::std::io::Error> for $error {
            fn from(err: ::std::io::Error) -> Self {
                $error::Io($crate::IoError::from(err))
            }
        }
    };
    ($error:ident, $kind:path) => {
        $crate::io_error_conversions!($error);

        impl ::core::convert::From<$error> for ::std::io::Error {
            fn from(err: $error) -> Self {
                match err {
                    $error::Io(err) => err.into_io(),
                    err => ::std::io::Error::new($kind(&err), err),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Error {
        #[error(transparent)]
        Io(IoError),
        #[error("the peer misbehaved")]
        Peer,
    }

    fn kind(err: &Error) -> io::ErrorKind {
        match err {
            Error::Io(err) => err.kind(),
            Error::Peer => io::ErrorKind::InvalidData,
        }
    }

    io_error_conversions!(Error, kind);

    #[test]
    fn a_transport_error_passes_through_unchanged() {
        let original = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
        let err = io::Error::from(Error::from(original));
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(err.to_string(), "reset by peer");
        assert!(err.get_ref().is_some_and(|inner| !inner.is::<IoError>()));
    }

    #[test]
    fn a_shared_transport_error_keeps_its_kind_and_source() {
        let shared = IoError::from(io::Error::from(io::ErrorKind::BrokenPipe));
        let err = io::Error::from(Error::Io(shared.clone()));
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<IoError>());
        assert_eq!(inner.map(IoError::kind), Some(shared.kind()));
    }

    #[test]
    fn a_protocol_error_is_wrapped_with_its_kind() {
        let err = io::Error::from(Error::Peer);
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(matches!(inner, Some(Error::Peer)));
    }
}
