//! From a byte stream to an authenticated channel ready for yamux:
//! security negotiation, the Noise handshake, and the muxer choice.

use libp2p_identity::PeerId;
use onetrip_common::Deadline;
use onetrip_multistream::{Mode, Negotiated, Protocol, dialer_select, listener_select};
use onetrip_noise::NoiseStream;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    time::Instant,
};
use tokio_util::either::Either;

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

/// `/noise` as a [`Protocol`] (libp2p specs: noise/README.md).
fn noise_protocol() -> Protocol {
    Protocol::new(onetrip_noise::PROTOCOL_NAME).expect("a valid protocol name")
}

/// Sets up the dialer's side by `deadline`. With `expected`, a listener
/// with another peer id is refused before our identity leaves.
pub(crate) async fn outbound<T>(
    io: T,
    config: &Config,
    expected: Option<PeerId>,
    deadline: Instant,
) -> Result<Secured<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let layering = config.layering;
    let setup = async {
        let (_, io) = dialer_select(io, [noise_protocol()], layering.security)
            .await
            .map_err(Error::SecurityNegotiation)?;
        let (output, secure) =
            onetrip_noise::upgrade_outbound(io, &config.noise, expected, Deadline::at(deadline))
                .await?;
        let io = match output.muxer {
            // We only ever list yamux, so an early choice is yamux.
            Some(_) => Either::Left(secure),
            None => {
                let mode = match layering.muxer {
                    MuxerNegotiation::Multistream(mode)
                    | MuxerNegotiation::Early { fallback: mode } => mode,
                };
                let (_, mut io) = dialer_select(secure, [yamux_protocol()], mode)
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
    by_deadline(deadline, setup).await
}

/// Runs `setup` until `deadline`. Multistream-select also has its own
/// timeout (10 s), and Noise runs by the same deadline: whichever fires, it
/// is reported as [`Error::Timeout`].
async fn by_deadline<T>(
    deadline: Instant,
    setup: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    use onetrip_multistream::Error as Multistream;
    match tokio::time::timeout_at(deadline, setup).await {
        Err(_)
        | Ok(Err(
            Error::SecurityNegotiation(Multistream::Timeout)
            | Error::MuxerNegotiation(Multistream::Timeout)
            | Error::Noise(onetrip_noise::Error::Timeout),
        )) => Err(Error::Timeout),
        Ok(result) => result,
    }
}

/// Sets up the listener's side by `deadline`.
pub(crate) async fn inbound<T>(
    io: T,
    config: &Config,
    deadline: Instant,
) -> Result<Secured<T>, Error>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let setup = async {
        let (_, io) = listener_select(io, [noise_protocol()])
            .await
            .map_err(Error::SecurityNegotiation)?;
        let (output, secure) =
            onetrip_noise::upgrade_inbound(io, &config.noise, Deadline::at(deadline)).await?;
        let io = match output.muxer {
            Some(_) => Either::Left(secure),
            None => {
                let (_, io) = listener_select(secure, [yamux_protocol()])
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
    by_deadline(deadline, setup).await
}
