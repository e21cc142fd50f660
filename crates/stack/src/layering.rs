//! Layerings: how each step of a libp2p TCP connection is negotiated.

use std::{fmt, str::FromStr};

use onetrip_multistream::Mode;

use crate::{Error, TransportKind};

/// How the stream muxer is agreed on once the connection is secure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxerNegotiation {
    /// multistream-select for `/yamux/1.0.0` on the secure channel.
    Multistream(Mode),
    /// Inside the security handshake (libp2p specs:
    /// connections/inlined-muxer-negotiation.md): in the Noise handshake
    /// payload, where both sides know the muxer when message 3 arrives, or
    /// in TLS ALPN (`/yamux/1.0.0` offered before `libp2p`), known when the
    /// handshake completes. A peer that sends no list, selects `libp2p`
    /// (rust-libp2p does both) or lists nothing in common leads to
    /// multistream-select in `fallback` mode.
    Early {
        /// The multistream-select mode used when there is no early choice.
        fallback: Mode,
    },
}

/// The security protocol of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// Noise XX (`/noise`, libp2p specs: noise/README.md).
    Noise,
    /// TLS 1.3 (`/tls/1.0.0`, libp2p specs: tls/tls.md).
    Tls,
}

impl Security {
    /// The protocol id negotiated with multistream-select.
    pub fn protocol_id(self) -> &'static str {
        match self {
            Security::Noise => onetrip_noise::PROTOCOL_NAME,
            Security::Tls => TLS_PROTOCOL_ID,
        }
    }
}

/// The protocol id of libp2p TLS on a byte stream (libp2p specs:
/// tls/tls.md).
pub const TLS_PROTOCOL_ID: &str = "/tls/1.0.0";

/// How a connection negotiates each step: the security protocol (`/noise`
/// or `/tls/1.0.0`), the stream muxer, and each stream's application
/// protocol.
///
/// A listener follows its own layering only for what it initiates: it
/// announces muxers in the security handshake when its muxer negotiation is
/// [`MuxerNegotiation::Early`], and opens its own streams in its
/// application mode. It answers every dialer, whatever the dialer's
/// layering, Noise or TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layering {
    /// The security protocol a dialer proposes.
    pub security_protocol: Security,
    /// multistream-select for the security protocol.
    pub security: Mode,
    /// How the muxer is chosen.
    pub muxer: MuxerNegotiation,
    /// multistream-select for each new stream's protocol.
    pub app: Mode,
    /// With TLS: resume sessions and send the first streams as TLS 1.3
    /// early data when a ticket of the dialed peer allows it (see
    /// `spec/tls.md`). Noise has no early data: ignored.
    pub early_data: bool,
    /// TCP Fast Open (RFC 7413): a dialer's first flight rides in the SYN
    /// once the listener has given it a cookie, and a listener with this
    /// layering accepts such SYNs (any listener can:
    /// `Config::with_fast_open_listener`; see `spec/tcp-stack.md`). Where
    /// the kernel does not allow it, connections fall back to a plain
    /// handshake.
    pub fast_open: bool,
}

impl Layering {
    /// Every step interactive: TCP, `/noise`, the Noise handshake, the
    /// muxer, the stream protocol, then the request: 6 RTT to the first
    /// response byte.
    pub const TCP_CLASSIC: Layering = Layering {
        security_protocol: Security::Noise,
        security: Mode::Interactive,
        muxer: MuxerNegotiation::Multistream(Mode::Interactive),
        app: Mode::Interactive,
        early_data: false,
        fast_open: false,
    };

    /// [`Layering::TCP_CLASSIC`] with the stream protocol proposed together
    /// with the request: 5 RTT.
    pub const TCP_OPTIMISTIC_APP: Layering = Layering {
        app: Mode::Optimistic,
        ..Layering::TCP_CLASSIC
    };

    /// What rust-libp2p's `SwarmBuilder` does (`Version::V1Lazy`): `/noise`
    /// proposed with Noise message 1, `/yamux/1.0.0` with message 3, the
    /// stream protocol interactive: 4 RTT.
    pub const TCP_LIBP2P_DEFAULT: Layering = Layering {
        security_protocol: Security::Noise,
        security: Mode::Optimistic,
        muxer: MuxerNegotiation::Multistream(Mode::Optimistic),
        app: Mode::Interactive,
        early_data: false,
        fast_open: false,
    };

    /// `/noise` interactive, the muxer inside the Noise handshake, the
    /// stream protocol optimistic: 4 RTT.
    pub const TCP_EARLY_MUXER: Layering = Layering {
        security_protocol: Security::Noise,
        security: Mode::Interactive,
        muxer: MuxerNegotiation::Early {
            fallback: Mode::Interactive,
        },
        app: Mode::Optimistic,
        early_data: false,
        fast_open: false,
    };

    /// Every saving at once: `/noise` with message 1, the muxer inside the
    /// handshake, the stream protocol and request with message 3: 3 RTT,
    /// the limit for TCP and Noise XX.
    pub const TCP_ONETRIP: Layering = Layering {
        security_protocol: Security::Noise,
        security: Mode::Optimistic,
        muxer: MuxerNegotiation::Early {
            fallback: Mode::Optimistic,
        },
        app: Mode::Optimistic,
        early_data: false,
        fast_open: false,
    };

    /// TLS 1.3 instead of Noise, every step interactive: TCP,
    /// `/tls/1.0.0`, the TLS handshake, the muxer, the stream protocol,
    /// then the request: 6 RTT.
    pub const TCP_TLS_CLASSIC: Layering = Layering {
        security_protocol: Security::Tls,
        ..Layering::TCP_CLASSIC
    };

    /// `/tls/1.0.0` proposed with the ClientHello, the muxer in ALPN, the
    /// stream protocol and request with the client's Finished: 3 RTT, as
    /// [`Layering::TCP_ONETRIP`] with Noise.
    pub const TCP_TLS_ONETRIP: Layering = Layering {
        security_protocol: Security::Tls,
        ..Layering::TCP_ONETRIP
    };

    /// [`Layering::TCP_TLS_ONETRIP`], and on a reconnect to a peer whose
    /// session ticket allows it, the stream opening, its negotiation and the
    /// request go as TLS 1.3 early data with the ClientHello: 2 RTT (TCP's
    /// handshake plus one). A server that accepts no early data costs
    /// nothing: the data follows the handshake.
    pub const TCP_TLS_0RTT: Layering = Layering {
        early_data: true,
        ..Layering::TCP_TLS_ONETRIP
    };

    /// [`Layering::TCP_ONETRIP`] with TCP Fast Open: on a reconnect to a
    /// listener that gave a cookie, `/noise` and Noise message 1 ride in
    /// the SYN: 2 RTT. A first connection is a plain one (3 RTT) that
    /// fetches the cookie.
    pub const TCP_ONETRIP_TFO: Layering = Layering {
        fast_open: true,
        ..Layering::TCP_ONETRIP
    };

    /// [`Layering::TCP_TLS_0RTT`] with TCP Fast Open: on a reconnect with
    /// a session ticket and a cookie, `/tls/1.0.0`, the ClientHello and the
    /// early data (stream, protocol, request) ride in the SYN, and the
    /// response follows the server's first flight: 1 RTT, TCP's physical
    /// limit.
    pub const TCP_TLS_0RTT_TFO: Layering = Layering {
        fast_open: true,
        ..Layering::TCP_TLS_0RTT
    };

    /// The named presets, in the order of the round-trip table.
    pub const PRESETS: [(&'static str, Layering); 10] = [
        ("tcp-classic", Layering::TCP_CLASSIC),
        ("tcp-optimistic-app", Layering::TCP_OPTIMISTIC_APP),
        ("tcp-libp2p-default", Layering::TCP_LIBP2P_DEFAULT),
        ("tcp-early-muxer", Layering::TCP_EARLY_MUXER),
        ("tcp-onetrip", Layering::TCP_ONETRIP),
        ("tcp-tls-classic", Layering::TCP_TLS_CLASSIC),
        ("tcp-tls-onetrip", Layering::TCP_TLS_ONETRIP),
        ("tcp-tls-0rtt", Layering::TCP_TLS_0RTT),
        ("tcp-onetrip-tfo", Layering::TCP_ONETRIP_TFO),
        ("tcp-tls-0rtt-tfo", Layering::TCP_TLS_0RTT_TFO),
    ];

    /// The preset's name, if this layering is one.
    pub fn name(&self) -> Option<&'static str> {
        name_of(Self::PRESETS, self)
    }

    /// Whether the muxer list travels in the security handshake.
    pub fn early_muxer(&self) -> bool {
        matches!(self.muxer, MuxerNegotiation::Early { .. })
    }
}

impl Default for Layering {
    /// [`Layering::TCP_ONETRIP`].
    fn default() -> Self {
        Layering::TCP_ONETRIP
    }
}

impl FromStr for Layering {
    type Err = Error;

    /// A preset by name, such as `tcp-onetrip`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        named(Self::PRESETS, name)
    }
}

impl fmt::Display for Layering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(
                f,
                "{:?} {:?}, muxer {:?}, app {:?}, early data {}",
                self.security_protocol, self.security, self.muxer, self.app, self.early_data
            ),
        }
    }
}

/// How a QUIC connection negotiates: security and muxing are QUIC's own
/// (TLS 1.3 in the handshake, native streams); what is left is each
/// stream's protocol, and whether a reconnect sends its first streams as
/// 0-RTT data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuicLayering {
    /// multistream-select for each new stream's protocol.
    pub app: Mode,
    /// Resume sessions and send the first streams as 0-RTT data when a
    /// ticket of the dialed peer allows it.
    pub zero_rtt: bool,
}

impl QuicLayering {
    /// Interactive stream negotiation: 3 RTT (1 for the handshake, 1 for
    /// the stream protocol, 1 for the request).
    pub const QUIC: QuicLayering = QuicLayering {
        app: Mode::Interactive,
        zero_rtt: false,
    };

    /// The stream protocol and the request leave with the client's
    /// Finished: 2 RTT, the limit for a fresh connection.
    pub const QUIC_OPTIMISTIC: QuicLayering = QuicLayering {
        app: Mode::Optimistic,
        zero_rtt: false,
    };

    /// On a reconnect, stream, protocol and request travel as 0-RTT data
    /// with the ClientHello: 1 RTT, the physical limit.
    pub const QUIC_0RTT: QuicLayering = QuicLayering {
        app: Mode::Optimistic,
        zero_rtt: true,
    };

    /// The named presets, in the order of the round-trip table.
    pub const PRESETS: [(&'static str, QuicLayering); 3] = [
        ("quic", QuicLayering::QUIC),
        ("quic-optimistic", QuicLayering::QUIC_OPTIMISTIC),
        ("quic-0rtt", QuicLayering::QUIC_0RTT),
    ];

    /// The preset's name, if this layering is one.
    pub fn name(&self) -> Option<&'static str> {
        name_of(Self::PRESETS, self)
    }
}

impl Default for QuicLayering {
    /// [`QuicLayering::QUIC_OPTIMISTIC`]: 0-RTT is opt-in.
    fn default() -> Self {
        QuicLayering::QUIC_OPTIMISTIC
    }
}

impl FromStr for QuicLayering {
    type Err = Error;

    /// A preset by name, such as `quic-0rtt`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        named(Self::PRESETS, name)
    }
}

impl fmt::Display for QuicLayering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "quic, app {:?}, 0-RTT {}", self.app, self.zero_rtt),
        }
    }
}

/// Any preset: a TCP layering or a QUIC one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Over TCP.
    Tcp(Layering),
    /// Over QUIC.
    Quic(QuicLayering),
}

impl Preset {
    /// Every named preset, TCP then QUIC, in the order of the round-trip
    /// table.
    pub fn all() -> impl Iterator<Item = (&'static str, Preset)> {
        Layering::PRESETS
            .into_iter()
            .map(|(name, layering)| (name, Preset::Tcp(layering)))
            .chain(
                QuicLayering::PRESETS
                    .into_iter()
                    .map(|(name, layering)| (name, Preset::Quic(layering))),
            )
    }

    /// The transport it runs over, which its addresses name
    /// ([`multiaddr`](crate::multiaddr)).
    pub fn transport(&self) -> TransportKind {
        match self {
            Preset::Tcp(_) => TransportKind::Tcp,
            Preset::Quic(_) => TransportKind::Quic,
        }
    }

    /// Whether a reconnect sends its first flight as early data (TLS 1.3
    /// early data or data in the SYN on TCP, 0-RTT on QUIC), given what an
    /// earlier connection left (a session ticket, a Fast Open cookie).
    pub fn sends_early_data(&self) -> bool {
        match self {
            Preset::Tcp(layering) => layering.early_data || layering.fast_open,
            Preset::Quic(layering) => layering.zero_rtt,
        }
    }
}

impl FromStr for Preset {
    type Err = Error;

    /// A preset by name: `tcp-classic` … `tcp-onetrip`, `tcp-tls-classic`,
    /// `tcp-tls-onetrip`, `tcp-tls-0rtt`, `tcp-onetrip-tfo`,
    /// `tcp-tls-0rtt-tfo`, `quic`, `quic-optimistic`, `quic-0rtt`.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        named(Self::all(), name)
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preset::Tcp(layering) => layering.fmt(f),
            Preset::Quic(layering) => layering.fmt(f),
        }
    }
}

/// The name of `layering` among `presets`.
fn name_of<L: PartialEq>(
    presets: impl IntoIterator<Item = (&'static str, L)>,
    layering: &L,
) -> Option<&'static str> {
    presets
        .into_iter()
        .find(|(_, preset)| preset == layering)
        .map(|(name, _)| name)
}

/// The preset called `name` among `presets`.
fn named<L>(presets: impl IntoIterator<Item = (&'static str, L)>, name: &str) -> Result<L, Error> {
    presets
        .into_iter()
        .find(|(preset, _)| *preset == name)
        .map(|(_, layering)| layering)
        .ok_or_else(|| Error::UnknownPreset(name.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_round_trip_through_their_names() {
        for (name, layering) in Layering::PRESETS {
            assert_eq!(name.parse::<Layering>().unwrap(), layering);
            assert_eq!(layering.to_string(), name);
        }
        assert!(matches!(
            "tcp-fast".parse::<Layering>(),
            Err(Error::UnknownPreset(name)) if name == "tcp-fast"
        ));
        for (name, preset) in Preset::all() {
            assert_eq!(name.parse::<Preset>().unwrap(), preset);
            assert_eq!(preset.to_string(), name);
        }
        assert_eq!(Preset::all().count(), 13);
    }

    #[test]
    fn presets_are_distinct() {
        for (i, (_, a)) in Layering::PRESETS.iter().enumerate() {
            for (_, b) in &Layering::PRESETS[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
