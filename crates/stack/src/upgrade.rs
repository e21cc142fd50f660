//! From a byte stream to an authenticated channel ready for yamux:
//! security negotiation, the Noise handshake, and the muxer choice.

use libp2p_identity::PeerId;
use onetrip_multistream::{Deadline, Mode, Negotiated, Protocol, dialer_select, listener_select};
use onetrip_noise::NoiseStream;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio_util::{
    compat::{Compat, TokioAsyncReadCompatExt},
    either::Either,
};

use crate::{Config, Error, MuxerNegotiation, config::yamux_protocol};

/// The secure channel: Noise over the stream `/noise` was negotiated on.
pub(crate) type SecureIo<T> = NoiseStream<Negotiated<T>>;

/// What yamux runs on: the secure channel itself when the muxer was chosen
/// inside the Noise handshake (`Left`), or the stream `/yamux/1.0.0` was
/// negotiated on with multistream-select (`Right`).
pub(crate) type MuxerIo<T> = Either<SecureIo<T>, Negotiated<SecureIo<T>>>;

/// An authenticated connection, before yamux.
#[derive(Debug)]
pub(crate) struct Secured<T> {
    pub(crate) remote_peer_id: PeerId,
    pub(crate) io: MuxerIo<T>,
}

/// What a yamux session runs on: the secure channel, its writes gathered
/// (see [`coalesce`]).
pub(crate) type SessionIo<T> = Compat<BufWriter<MuxerIo<T>>>;

impl<T: AsyncRead + AsyncWrite + Unpin> Secured<T> {
    /// Whether the muxer was chosen inside the Noise handshake.
    pub(crate) fn early_muxer(&self) -> bool {
        matches!(self.io, Either::Left(_))
    }

    /// The remote peer and a yamux session over the channel, with the
    /// settings `config` implies ([`Config::yamux`]): the one place where
    /// every front end starts yamux.
    pub(crate) fn into_session(
        self,
        config: &Config,
        mode: yamux::Mode,
    ) -> (PeerId, yamux::Connection<SessionIo<T>>) {
        let io = coalesce(self.io).compat();
        let session = yamux::Connection::new(io, config.yamux(), mode);
        (self.remote_peer_id, session)
    }
}

/// Gathers yamux's writes (a frame's header and body are separate writes)
/// until yamux flushes, so that they leave as one Noise frame and one
/// `write` to the socket instead of several. It holds one full yamux data
/// frame (16 KiB body and its 12-byte header) and is allocated for each
/// connection's lifetime, so it is no bigger.
fn coalesce<T: AsyncWrite>(io: T) -> BufWriter<T> {
    BufWriter::with_capacity(COALESCE_CAPACITY, io)
}

/// yamux's default split send size plus its frame header (yamux spec,
/// "Framing").
const COALESCE_CAPACITY: usize = 16 * 1024 + 12;

/// `/noise` as a [`Protocol`] (libp2p specs: noise/README.md).
fn noise_protocol() -> Protocol {
    Protocol::new(onetrip_noise::PROTOCOL_NAME).expect("a valid protocol name")
}

/// Sets up the dialer's side by `deadline`. With `expected`, a listener
/// with another peer id is refused before our identity leaves.
///
/// The deadline bounds the whole setup, whichever step is slow: the steps
/// themselves run without one of their own.
pub(crate) async fn outbound<T>(
    io: T,
    config: &Config,
    expected: Option<PeerId>,
    deadline: Deadline,
) -> Result<Secured<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let layering = config.layering;
    let setup = async {
        let (_, io) = dialer_select(io, [noise_protocol()], layering.security, Deadline::NONE)
            .await
            .map_err(Error::SecurityNegotiation)?;
        let (output, secure) =
            onetrip_noise::upgrade_outbound(io, config.noise(), expected, Deadline::NONE).await?;
        let io = match output.muxer {
            // We only ever list yamux, so an early choice is yamux.
            Some(_) => Either::Left(secure),
            None => {
                let mode = match layering.muxer {
                    MuxerNegotiation::Multistream(mode)
                    | MuxerNegotiation::Early { fallback: mode } => mode,
                };
                let (_, mut io) = dialer_select(secure, [yamux_protocol()], mode, Deadline::NONE)
                    .await
                    .map_err(Error::MuxerNegotiation)?;
                if mode == Mode::Optimistic {
                    // Send the proposal now, in the same flight as Noise
                    // message 3, so the listener can finish its side even
                    // if we open no stream.
                    io.flush().await?;
                }
                Either::Right(io)
            }
        };
        Ok(Secured {
            remote_peer_id: output.remote_peer_id,
            io,
        })
    };
    deadline.run(setup).await.map_err(|_| Error::Timeout)?
}

/// Sets up the listener's side by `deadline`, which bounds the whole setup
/// as [`outbound`]'s does.
pub(crate) async fn inbound<T>(
    io: T,
    config: &Config,
    deadline: Deadline,
) -> Result<Secured<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let setup = async {
        let (_, io) = listener_select(io, [noise_protocol()], Deadline::NONE)
            .await
            .map_err(Error::SecurityNegotiation)?;
        let (output, secure) =
            onetrip_noise::upgrade_inbound(io, config.noise(), Deadline::NONE).await?;
        let io = match output.muxer {
            Some(_) => Either::Left(secure),
            None => {
                let (_, io) = listener_select(secure, [yamux_protocol()], Deadline::NONE)
                    .await
                    .map_err(Error::MuxerNegotiation)?;
                Either::Right(io)
            }
        };
        Ok(Secured {
            remote_peer_id: output.remote_peer_id,
            io,
        })
    };
    deadline.run(setup).await.map_err(|_| Error::Timeout)?
}
