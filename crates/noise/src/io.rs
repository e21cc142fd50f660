//! A thin tokio adapter over the sans-IO [`Handshake`]: it moves bytes
//! between the I/O and the handshake until the handshake is finished.

use libp2p_identity::PeerId;
use onetrip_common::Deadline;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Config, Error, Handshake, NoiseStream, Output};

/// Runs the handshake as the initiator (dialer) over `io`, by `deadline`
/// (the caller's, for the whole connection setup; [`Deadline::NONE`] waits
/// as long as the peer takes). With `expected`, a responder with another
/// peer id is refused before our identity leaves.
///
/// # Errors
/// Any [`Error`]; [`Error::Timeout`] when the deadline passes.
pub async fn upgrade_outbound<IO>(
    io: IO,
    config: &Config,
    expected: Option<PeerId>,
    deadline: Deadline,
) -> Result<(Output, NoiseStream<IO>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    drive(io, Handshake::initiator(config, expected)?, deadline).await
}

/// Runs the handshake as the responder (listener) over `io`, by
/// `deadline`.
///
/// # Errors
/// Any [`Error`]; [`Error::Timeout`] when the deadline passes.
pub async fn upgrade_inbound<IO>(
    io: IO,
    config: &Config,
    deadline: Deadline,
) -> Result<(Output, NoiseStream<IO>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    drive(io, Handshake::responder(config)?, deadline).await
}

async fn drive<IO>(
    mut io: IO,
    mut handshake: Handshake,
    deadline: Deadline,
) -> Result<(Output, NoiseStream<IO>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let exchange = async {
        let mut out = Vec::new();
        loop {
            handshake.take_output(&mut out);
            if !out.is_empty() {
                io.write_all(&out).await?;
                io.flush().await?;
                out.clear();
            }
            if handshake.is_finished() {
                return Ok::<_, Error>(());
            }
            match io.read(handshake.input_buffer()).await? {
                0 => handshake.handle_eof()?,
                n => handshake.input_filled(n)?,
            }
        }
    };
    deadline.run(exchange).await.map_err(|_| Error::Timeout)??;
    let (output, transport) = handshake.finish()?;
    Ok((output, NoiseStream::new(io, transport)))
}
