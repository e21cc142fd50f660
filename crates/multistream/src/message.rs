//! Wire messages and their length-prefixed framing.
//!
//! libp2p specs, connections/README.md, and multiformats/multistream-select
//! README: every message is an unsigned-varint length prefix followed by that
//! many bytes, the last of which is `\n` (the prefix counts it).

use crate::{Error, Protocol};

/// The protocol id of multistream-select 1.0, sent as the first message by
/// both sides (multiformats/multistream-select README).
pub const HEADER_NAME: &str = "/multistream/1.0.0";

/// The largest message payload (including its `\n`) accepted or sent:
/// go-multistream and js-libp2p reject longer messages, so nothing larger can
/// interoperate.
pub const MAX_MESSAGE_LEN: usize = 1024;

/// A u16 length prefix takes at most three varint bytes.
const MAX_PREFIX_LEN: usize = 3;

const HEADER_LINE: &[u8] = b"/multistream/1.0.0\n";
const NA_LINE: &[u8] = b"na\n";
const LS_LINE: &[u8] = b"ls\n";

/// A multistream-select 1.0 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `/multistream/1.0.0`: opens a negotiation.
    Header,
    /// A protocol name: a proposal from the dialer, or the listener's echo
    /// accepting it.
    Protocol(Protocol),
    /// `ls`: the dialer asks for the listener's protocols.
    ListProtocols,
    /// The listener's answer to `ls`.
    Protocols(Vec<Protocol>),
    /// `na`: the listener does not support the proposed protocol.
    NotAvailable,
}

impl Message {
    /// Appends the framed message (length prefix and payload) to `out`.
    ///
    /// Encoding does not enforce [`MAX_MESSAGE_LEN`]: names are bounded by
    /// [`Protocol`], but a long [`Message::Protocols`] list is the sender's
    /// to cut (the [`Listener`](crate::Listener) does).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::Header => put_frame(out, HEADER_LINE),
            Message::NotAvailable => put_frame(out, NA_LINE),
            Message::ListProtocols => put_frame(out, LS_LINE),
            Message::Protocol(p) => put_line(out, p.as_str().as_bytes()),
            Message::Protocols(ps) => {
                // libp2p specs (multistream-select README, "ls example in
                // detail"), as rust-libp2p and go-multistream send it: one
                // message holding each name framed as its own message,
                // followed by a final `\n`.
                let len = ps
                    .iter()
                    .map(|p| framed_line_len(p.as_str().len()))
                    .sum::<usize>()
                    + 1;
                put_prefix(out, len);
                for p in ps {
                    put_line(out, p.as_str().as_bytes());
                }
                out.push(b'\n');
            }
        }
    }

    /// Decodes one payload (the bytes after the length prefix, including
    /// the final `\n`) received where a header, a proposal, an echo, `na` or
    /// `ls` is expected. `ls` responses are decoded by
    /// [`Message::decode_protocols`], since only the context tells them apart.
    ///
    /// # Errors
    /// [`Error::MissingNewline`], [`Error::InvalidUtf8`],
    /// [`Error::InvalidProtocol`] or [`Error::UnknownMessage`].
    pub fn decode(payload: &[u8]) -> Result<Message, Error> {
        let line = strip_newline(payload)?;
        match payload {
            HEADER_LINE => Ok(Message::Header),
            NA_LINE => Ok(Message::NotAvailable),
            LS_LINE => Ok(Message::ListProtocols),
            [b'/', ..] => Protocol::from_wire(line).map(Message::Protocol),
            _ => Err(Error::UnknownMessage {
                got: Error::excerpt(payload),
            }),
        }
    }

    /// Decodes the payload of an `ls` response.
    ///
    /// # Errors
    /// [`Error::MissingNewline`], [`Error::UnknownMessage`] if the entries are
    /// not well framed, or the error of an invalid name.
    pub fn decode_protocols(payload: &[u8]) -> Result<Vec<Protocol>, Error> {
        let mut rest = strip_newline(payload)?;
        let malformed = || Error::UnknownMessage {
            got: Error::excerpt(payload),
        };
        let mut protocols = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = unsigned_varint::decode::usize(rest).map_err(|_| malformed())?;
            let entry = tail.get(..len).ok_or_else(malformed)?;
            protocols.push(Protocol::from_wire(strip_newline(entry)?)?);
            rest = &tail[len..];
        }
        Ok(protocols)
    }
}

/// The framed size of a `name\n` line.
pub(crate) fn framed_line_len(name_len: usize) -> usize {
    let mut buf = unsigned_varint::encode::usize_buffer();
    unsigned_varint::encode::usize(name_len + 1, &mut buf).len() + name_len + 1
}

fn strip_newline(payload: &[u8]) -> Result<&[u8], Error> {
    payload.strip_suffix(b"\n").ok_or(Error::MissingNewline)
}

fn put_prefix(out: &mut Vec<u8>, len: usize) {
    let mut buf = unsigned_varint::encode::usize_buffer();
    out.extend_from_slice(unsigned_varint::encode::usize(len, &mut buf));
}

fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    put_prefix(out, payload.len());
    out.extend_from_slice(payload);
}

fn put_line(out: &mut Vec<u8>, line: &[u8]) {
    put_prefix(out, line.len() + 1);
    out.extend_from_slice(line);
    out.push(b'\n');
}

/// Incremental, bounded reader of length-prefixed frames.
///
/// It consumes input only up to the end of the frame it returns, so bytes
/// that follow the last negotiation message stay with the caller. It holds
/// at most [`MAX_MESSAGE_LEN`] bytes of a partial frame.
#[derive(Debug, Default)]
pub(crate) struct FrameReader {
    prefix: [u8; MAX_PREFIX_LEN],
    prefix_len: usize,
    /// The payload length, once the prefix is complete.
    len: Option<usize>,
    /// A partial payload that straddles calls.
    partial: Vec<u8>,
}

/// What [`FrameReader::read`] produced.
pub(crate) struct Read<T> {
    /// Bytes of the input consumed.
    pub(crate) consumed: usize,
    /// The decoded frame, if one was completed.
    pub(crate) frame: Option<T>,
}

impl FrameReader {
    /// Consumes bytes from `input` up to the end of the next frame and
    /// decodes it with `decode`.
    pub(crate) fn read<T>(
        &mut self,
        input: &[u8],
        decode: impl FnOnce(&[u8]) -> Result<T, Error>,
    ) -> Result<Read<T>, Error> {
        let mut consumed = 0;
        let len = loop {
            if let Some(len) = self.len {
                break len;
            }
            let Some(&byte) = input.get(consumed) else {
                return Ok(Read {
                    consumed,
                    frame: None,
                });
            };
            consumed += 1;
            self.prefix[self.prefix_len] = byte;
            self.prefix_len += 1;
            match unsigned_varint::decode::u16(&self.prefix[..self.prefix_len]) {
                Ok((len, _)) => {
                    let len = usize::from(len);
                    if len > MAX_MESSAGE_LEN {
                        return Err(Error::MessageTooLarge {
                            len,
                            max: MAX_MESSAGE_LEN,
                        });
                    }
                    if len == 0 {
                        return Err(Error::MissingNewline);
                    }
                    self.len = Some(len);
                }
                Err(unsigned_varint::decode::Error::Insufficient)
                    if self.prefix_len < MAX_PREFIX_LEN => {}
                Err(_) => return Err(Error::InvalidVarint),
            }
        };
        let available = &input[consumed..];
        if self.partial.is_empty() && available.len() >= len {
            // The whole payload is in this input: decode it in place.
            let frame = decode(&available[..len]);
            self.reset();
            return Ok(Read {
                consumed: consumed + len,
                frame: Some(frame?),
            });
        }
        let take = (len - self.partial.len()).min(available.len());
        if self.partial.capacity() < len {
            self.partial.reserve_exact(len - self.partial.len());
        }
        self.partial.extend_from_slice(&available[..take]);
        consumed += take;
        if self.partial.len() < len {
            return Ok(Read {
                consumed,
                frame: None,
            });
        }
        let frame = decode(&self.partial);
        self.reset();
        Ok(Read {
            consumed,
            frame: Some(frame?),
        })
    }

    fn reset(&mut self) {
        self.prefix_len = 0;
        self.len = None;
        self.partial.clear();
    }
}
