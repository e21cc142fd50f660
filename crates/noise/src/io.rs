//! A thin tokio adapter over the sans-IO [`Handshake`].

use libp2p_identity::PeerId;
use onetrip_common::Deadline;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{Config, Error, Handshake, InvalidFrame, MAX_FRAME_LEN, NoiseStream, Output};

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
        // Received bytes not yet consumed; at most one frame and a bit.
        let mut inbound = Vec::new();
        loop {
            handshake.take_output(&mut out);
            if !out.is_empty() {
                io.write_all(&out).await?;
                io.flush().await?;
                out.clear();
            }
            if handshake.is_finished() {
                return Ok::<_, Error>(inbound);
            }
            let message = read_frame(&mut io, &mut inbound).await?;
            handshake.read_message(&message)?;
        }
    };
    let leftover = deadline.run(exchange).await.map_err(|_| Error::Timeout)??;
    let (output, keys) = handshake.finish()?;
    Ok((output, NoiseStream::new(io, keys, &leftover)))
}

/// Reads one length-prefixed handshake message, keeping any bytes after it
/// in `inbound`.
async fn read_frame<IO: AsyncRead + Unpin>(
    io: &mut IO,
    inbound: &mut Vec<u8>,
) -> Result<Vec<u8>, Error> {
    loop {
        if inbound.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([inbound[0], inbound[1]]));
            if len == 0 {
                return Err(InvalidFrame::EmptyHandshakeMessage.into());
            }
            if inbound.len() >= 2 + len {
                let message = inbound[2..2 + len].to_vec();
                inbound.drain(..2 + len);
                return Ok(message);
            }
        }
        let start = inbound.len();
        inbound.resize(start + 4096.min(2 + MAX_FRAME_LEN), 0);
        let n = io.read(&mut inbound[start..]).await?;
        inbound.truncate(start + n);
        if n == 0 {
            return Err(Error::UnexpectedEof);
        }
    }
}
