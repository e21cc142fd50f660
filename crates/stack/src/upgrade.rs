//! From a byte stream to an authenticated channel ready for yamux:
//! security negotiation, the Noise or TLS handshake, and the muxer choice.

use libp2p_identity::PeerId;
use onetrip_multistream::{Deadline, Mode, Negotiated, Protocol, dialer_select, listener_select};
use onetrip_noise::NoiseStream;
use rustls::pki_types::ServerName;
use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::{TlsConnector, client::TlsStream as TlsClient};
use tokio_util::{
    compat::{Compat, TokioAsyncReadCompatExt},
    either::Either,
};

use crate::{
    Config, Error, MuxerNegotiation, Security,
    config::{YAMUX_HEADER_LEN, YAMUX_SPLIT_SEND_SIZE, yamux_protocol},
    first_flight::{FirstFlight, FirstFlightIo},
    gather::Gather,
    tls_server::{EarlyPhase, TlsServer},
};

/// The secure channel over the stream the security protocol was negotiated
/// on: Noise (`Left`) or TLS (`Right`), as client or server.
pub(crate) type SecureIo<T> = Either<NoiseStream<Negotiated<T>>, TlsIo<Negotiated<T>>>;

/// TLS as the client (`Left`) or the server (`Right`).
pub(crate) type TlsIo<T> = Either<TlsDialer<T>, TlsServer<T>>;

/// The client side of TLS, with its dial's record: a connection handed over
/// before its handshake (early data) may still meet the certificate
/// verifier, if the server declines to resume, and the verifier reads the
/// dial's record (whom it expects) for as long as the handshake runs.
#[derive(Debug)]
pub(crate) struct TlsDialer<T> {
    stream: TlsClient<T>,
    _dial: onetrip_tls::Dial,
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsDialer<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsDialer<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What yamux runs on: the secure channel itself when the muxer was chosen
/// inside the security handshake (`Left`), or the stream `/yamux/1.0.0` was
/// negotiated on with multistream-select (`Right`).
pub(crate) type MuxerIo<T> = Either<SecureIo<T>, Negotiated<SecureIo<T>>>;

/// An authenticated channel, before the muxer is agreed on.
struct Secure<T> {
    remote_peer_id: PeerId,
    io: SecureIo<T>,
    /// Whether the handshake chose the muxer (we only offer yamux).
    muxer_chosen: bool,
}

/// An authenticated connection, before yamux.
#[derive(Debug)]
pub(crate) struct Secured<T> {
    pub(crate) remote_peer_id: PeerId,
    pub(crate) io: MuxerIo<T>,
    /// A Fast Open dialer's first flight, if it waits for the
    /// application to release it (TLS early data).
    pub(crate) first_flight: Option<FirstFlight>,
}

/// What a yamux session runs on: the secure channel, its writes gathered
/// (see [`coalesce`]).
pub(crate) type SessionIo<T> = Compat<Gather<MuxerIo<T>>>;

impl<T: AsyncRead + AsyncWrite + Unpin> Secured<T> {
    /// Whether the muxer was chosen inside the security handshake.
    pub(crate) fn early_muxer(&self) -> bool {
        matches!(self.io, Either::Left(_))
    }

    /// For a TLS server that took early data, whether what is read now is
    /// early data.
    pub(crate) fn early_phase(&self) -> Option<EarlyPhase> {
        match self.secure_io() {
            Either::Right(Either::Right(server)) => Some(server.early_phase()),
            _ => None,
        }
    }

    fn secure_io(&self) -> &SecureIo<T> {
        match &self.io {
            Either::Left(secure) => secure,
            Either::Right(negotiated) => negotiated.get_ref(),
        }
    }

    /// The security protocol.
    pub(crate) fn security(&self) -> Security {
        match self.secure_io() {
            Either::Left(_) => Security::Noise,
            Either::Right(_) => Security::Tls,
        }
    }

    /// The remote peer and a yamux session over the channel, with the
    /// settings `config` implies ([`Config::yamux`]): the one place where
    /// every front end starts yamux.
    pub(crate) fn into_session(
        self,
        config: &Config,
        mode: yamux::Mode,
    ) -> (PeerId, yamux::Connection<SessionIo<T>>) {
        let io = coalesce(self.security(), self.io).compat();
        let session = yamux::Connection::new(io, config.yamux(), mode);
        (self.remote_peer_id, session)
    }
}

/// Gathers yamux's writes (a frame's header and body are separate writes)
/// until yamux flushes, so that they leave as one TLS record (or as few as
/// they fill) and one `write` to the socket instead of several. It holds
/// one full yamux data frame, only while it holds bytes. A Noise stream
/// gathers its frames itself, sealing them where they were gathered: over
/// Noise, writes pass straight through.
fn coalesce<T: AsyncWrite>(security: Security, io: T) -> Gather<T> {
    match security {
        Security::Noise => Gather::new(io, 0),
        Security::Tls => Gather::new(io, COALESCE_CAPACITY),
    }
}

/// One whole yamux data frame, header included: as much as one Noise frame
/// carries.
const COALESCE_CAPACITY: usize = YAMUX_SPLIT_SEND_SIZE + YAMUX_HEADER_LEN;

/// The security protocol as a [`Protocol`].
fn security_protocol(security: Security) -> Protocol {
    Protocol::new(security.protocol_id()).expect("a valid protocol name")
}

/// Sets up the dialer's side by `deadline`. With `expected`, a listener
/// with another peer id is refused before our identity leaves (Noise) or in
/// the handshake (TLS). With TCP Fast Open, the first flight is held and
/// written at once (see [`FirstFlight`]).
///
/// The deadline bounds the whole setup, whichever step is slow: the steps
/// themselves run without one of their own.
pub(crate) async fn outbound<T>(
    io: T,
    config: &Config,
    expected: Option<PeerId>,
    deadline: Deadline,
) -> Result<Secured<FirstFlightIo<T>>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let layering = config.layering;
    let (io, first_flight) = FirstFlight::wrap(io, layering.fast_open);
    let setup = async {
        let security = layering.security_protocol;
        let (_, io) = dialer_select(
            io,
            [security_protocol(security)],
            layering.security,
            Deadline::NONE,
        )
        .await
        .map_err(Error::SecurityNegotiation)?;
        let secure = match security {
            Security::Noise => {
                let (output, io) =
                    onetrip_noise::upgrade_outbound(io, config.noise(), expected, Deadline::NONE)
                        .await?;
                Secure {
                    remote_peer_id: output.remote_peer_id,
                    io: Either::Left(io),
                    muxer_chosen: output.muxer.is_some(),
                }
            }
            Security::Tls => tls_outbound(io, config, expected, first_flight.as_ref()).await?,
        };
        let io = if secure.muxer_chosen {
            Either::Left(secure.io)
        } else {
            let mode = match layering.muxer {
                MuxerNegotiation::Multistream(mode)
                | MuxerNegotiation::Early { fallback: mode } => mode,
            };
            let (_, mut io) = dialer_select(secure.io, [yamux_protocol()], mode, Deadline::NONE)
                .await
                .map_err(Error::MuxerNegotiation)?;
            if mode == Mode::Optimistic {
                // Send the proposal now, in the same flight as the end of
                // the handshake, so the listener can finish its side even
                // if we open no stream.
                io.flush().await?;
            }
            Either::Right(io)
        };
        Ok(Secured {
            remote_peer_id: secure.remote_peer_id,
            io,
            first_flight: first_flight
                .clone()
                .filter(FirstFlight::waits_for_application),
        })
    };
    deadline.run(setup).await.map_err(|_| Error::Timeout)?
}

/// The TLS client handshake: the muxer in ALPN, the server's peer id
/// derived (and checked against `expected`) by the certificate verifier.
/// Handing the connection over before the handshake (early data), it
/// holds a Fast Open dialer's first flight for the application's first
/// streams.
async fn tls_outbound<T>(
    io: Negotiated<T>,
    config: &Config,
    expected: Option<PeerId>,
    first_flight: Option<&FirstFlight>,
) -> Result<Secure<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (client, dial) = config.tls_client(expected)?;
    let name = ServerName::try_from(dial.server_name().to_owned())
        .expect("a dial's server name is a DNS name");
    let stream = TlsConnector::from(client)
        .early_data(config.layering.early_data)
        .connect(name, io)
        .await
        // The verifier's typed reason, if it refused the server.
        .map_err(|err| {
            dial.refusal()
                .map_or_else(|| tls_io_error(err), Error::from)
        })?;
    let session = stream.get_ref().1;
    let (remote_peer_id, muxer_chosen) = if session.is_handshaking() {
        // Resuming with early data: the connection is handed over before
        // the handshake, so that the first streams travel with the
        // ClientHello. Only a ticket of `expected` resumes, and the server
        // takes early data only if it selects the ALPN protocol of that
        // session again, which chose the muxer when our layering does.
        let expected = expected.expect("early data resumes a ticket of the expected peer");
        if let Some(flight) = first_flight {
            flight.hold_for_application();
        }
        (expected, config.layering.early_muxer())
    } else {
        let remote_peer_id = dial
            .peer_id()
            .expect("the verifier names the server of a completed handshake");
        let chosen = onetrip_tls::alpn::chosen_muxer(session.alpn_protocol()).is_some();
        (remote_peer_id, chosen)
    };
    Ok(Secure {
        remote_peer_id,
        io: Either::Right(Either::Left(TlsDialer {
            stream,
            _dial: dial,
        })),
        muxer_chosen,
    })
}

/// The TLS server handshake: the client's certificate is required, and its
/// peer id derived from it.
async fn tls_inbound<T>(io: Negotiated<T>, config: &Config) -> Result<Secure<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let stream = TlsServer::accept(io, config.tls_server())
        .await
        .map_err(tls_io_error)?;
    let connection = stream.connection();
    // The verifier accepted the client's certificate chain, in this
    // handshake or in the one whose session it resumes (the ticket keeps
    // the chain): read its peer id without checking it again.
    let remote_peer_id = match connection.peer_certificates() {
        Some([end_entity, intermediates @ ..]) => {
            onetrip_tls::verified_peer_id(end_entity, intermediates)
                .map_err(onetrip_tls::Error::from)?
        }
        // The verifier requires a certificate: rustls would have failed.
        _ => {
            return Err(
                onetrip_tls::Error::Certificate(onetrip_tls::CertificateError::NotSingle).into(),
            );
        }
    };
    let muxer_chosen = onetrip_tls::alpn::chosen_muxer(connection.alpn_protocol()).is_some();
    Ok(Secure {
        remote_peer_id,
        io: Either::Right(Either::Right(stream)),
        muxer_chosen,
    })
}

/// A TLS handshake's I/O error: the rustls error it carries (a refused
/// certificate, a bad record, an alert from the peer), or the transport's.
fn tls_io_error(err: std::io::Error) -> Error {
    match err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => Error::Tls(onetrip_tls::Error::Rustls(tls.clone())),
        None => err.into(),
    }
}

/// Sets up the listener's side by `deadline`, which bounds the whole setup
/// as [`outbound`]'s does. It answers Noise and TLS dialers alike.
pub(crate) async fn inbound<T>(
    io: T,
    config: &Config,
    deadline: Deadline,
) -> Result<Secured<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let setup = async {
        let supported = [Security::Noise, Security::Tls].map(security_protocol);
        let (protocol, io) = listener_select(io, supported, Deadline::NONE)
            .await
            .map_err(Error::SecurityNegotiation)?;
        let secure = if protocol.as_str() == Security::Tls.protocol_id() {
            tls_inbound(io, config).await?
        } else {
            let (output, io) =
                onetrip_noise::upgrade_inbound(io, config.noise(), Deadline::NONE).await?;
            Secure {
                remote_peer_id: output.remote_peer_id,
                io: Either::Left(io),
                muxer_chosen: output.muxer.is_some(),
            }
        };
        let io = if secure.muxer_chosen {
            Either::Left(secure.io)
        } else {
            let (_, io) = listener_select(secure.io, [yamux_protocol()], Deadline::NONE)
                .await
                .map_err(Error::MuxerNegotiation)?;
            Either::Right(io)
        };
        Ok(Secured {
            remote_peer_id: secure.remote_peer_id,
            io,
            first_flight: None,
        })
    };
    deadline.run(setup).await.map_err(|_| Error::Timeout)?
}
