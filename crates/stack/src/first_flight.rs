//! A TCP Fast Open dialer's first flight, sent as one write.
//!
//! With TCP Fast Open, the SYN carries the data of the first write on the
//! socket only (Linux `TCP_FASTOPEN_CONNECT`: the connect is deferred to
//! that write; later writes wait for the handshake). The layers above write
//! their first flight in pieces: the multistream-select header and
//! proposal, the Noise message or the TLS ClientHello, and, with TLS early
//! data, the yamux frames of the application's first streams. [`FirstFlight`]
//! holds those writes and hands them to the socket as one:
//!
//! - by default when the dialer first reads (it waits for an answer, so its
//!   first flight is complete): Noise message 1, or a ClientHello without
//!   early data;
//! - with TLS early data ([`FirstFlight::hold_for_application`]), when the
//!   application has written and flushed, read from, or closed its first
//!   stream, or accepts a stream or closes the connection: the early data
//!   then leaves in the SYN with the ClientHello. A connection the
//!   application does not use sends nothing, as a Fast Open socket that is
//!   never written to.
//!
//! Either way it is released once it holds [`FIRST_FLIGHT_LIMIT`] bytes, so
//! a writer never waits on a release that only it could cause.

use std::{
    io,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::config::MAX_TLS_EARLY_DATA;

/// The most bytes a first flight holds before it is sent anyway: TLS early
/// data's own bound (a ClientHello and its records' overhead push the
/// flight past it, so it is sent before rustls would stop taking early
/// data and wait for the handshake).
pub(crate) const FIRST_FLIGHT_LIMIT: usize = MAX_TLS_EARLY_DATA as usize;

/// When the held flight goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Release {
    /// When the dialer first reads.
    OnRead,
    /// When the application asks; `requested` once it has.
    OnRequest { requested: bool },
    /// Released: writes go straight through.
    Released,
}

#[derive(Debug)]
struct State {
    held: Vec<u8>,
    release: Release,
    /// The task to wake when the application asks for the release.
    driver: Option<Waker>,
}

/// The shared handle of a dialer's first flight: its socket side is
/// [`FirstFlightIo`], the connection holds this to release it.
#[derive(Debug, Clone)]
pub(crate) struct FirstFlight(Arc<Mutex<State>>);

impl FirstFlight {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wraps a dialer's `io`: if `hold`, its writes are held until the
    /// first read; otherwise the wrapper passes everything through.
    pub(crate) fn wrap<T>(io: T, hold: bool) -> (FirstFlightIo<T>, Option<FirstFlight>) {
        let flight = hold.then(|| {
            FirstFlight(Arc::new(Mutex::new(State {
                held: Vec::new(),
                release: Release::OnRead,
                driver: None,
            })))
        });
        let io = FirstFlightIo {
            io,
            flight: flight.clone(),
            sent: 0,
        };
        (io, flight)
    }

    /// From now on the flight waits for the application
    /// ([`FirstFlight::request_release`]), not for a read: the security
    /// handshake handed the connection over before its answer (TLS early
    /// data). Nothing changes once it is released.
    pub(crate) fn hold_for_application(&self) {
        let mut state = self.lock();
        if state.release == Release::OnRead {
            state.release = Release::OnRequest { requested: false };
        }
    }

    /// Whether the flight waits for the application (rather than a read,
    /// or for nothing any more): only then has the connection a part in
    /// releasing it.
    pub(crate) fn waits_for_application(&self) -> bool {
        matches!(self.lock().release, Release::OnRequest { .. })
    }

    /// The application has written its first request (or waits for an
    /// answer): the flight may go, once the connection's task has taken in
    /// what the application wrote.
    pub(crate) fn request_release(&self) {
        let mut state = self.lock();
        if let Release::OnRequest { requested } = &mut state.release
            && !*requested
        {
            *requested = true;
            if let Some(driver) = state.driver.take() {
                driver.wake();
            }
        }
    }

    /// Whether the application had asked, as the connection's task starts a
    /// pass over its session.
    pub(crate) fn requested(&self) -> bool {
        matches!(self.lock().release, Release::OnRequest { requested: true })
    }

    /// Called by the connection's task at the end of a pass over its
    /// session that began with [`FirstFlight::requested`] true (the
    /// application's writes from before its request are then in the held
    /// flight): releases it, and wakes the task so that the session
    /// flushes it. Otherwise remembers the task to wake on a request.
    pub(crate) fn poll_release(&self, cx: &mut Context<'_>, requested_before: bool) {
        let mut state = self.lock();
        match state.release {
            Release::OnRequest { .. } if requested_before => {
                state.release = Release::Released;
                cx.waker().wake_by_ref();
            }
            Release::OnRequest { .. } => state.driver = Some(cx.waker().clone()),
            Release::OnRead | Release::Released => {}
        }
    }

    /// Releases the flight at once (the connection closes).
    pub(crate) fn release(&self) {
        self.lock().release = Release::Released;
    }
}

/// A dialer's socket whose first flight may be held (see the module
/// docs). Once the flight is sent, it passes everything through.
#[derive(Debug)]
pub(crate) struct FirstFlightIo<T> {
    io: T,
    /// Until the held flight is sent.
    flight: Option<FirstFlight>,
    /// How much of the released flight the socket has taken.
    sent: usize,
}

impl<T: AsyncWrite + Unpin> FirstFlightIo<T> {
    /// Writes what is held, if the flight is released; ready once nothing
    /// is held.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(flight) = &self.flight else {
            return Poll::Ready(Ok(()));
        };
        let mut state = flight.lock();
        if state.release != Release::Released {
            return Poll::Ready(Ok(()));
        }
        while self.sent < state.held.len() {
            // One write for the whole flight: the SYN takes what it can.
            match Pin::new(&mut self.io).poll_write(cx, &state.held[self.sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        state.held = Vec::new();
        drop(state);
        self.flight = None;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for FirstFlightIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(flight) = &this.flight {
            let mut state = flight.lock();
            if state.release == Release::OnRead {
                state.release = Release::Released;
            }
        }
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for FirstFlightIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(flight) = &this.flight {
            let mut state = flight.lock();
            if state.release != Release::Released {
                if state.held.len() + buf.len() <= FIRST_FLIGHT_LIMIT {
                    state.held.extend_from_slice(buf);
                    return Poll::Ready(Ok(buf.len()));
                }
                state.release = Release::Released;
            }
        }
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(flight) = &this.flight {
            flight.release();
        }
        std::task::ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}
