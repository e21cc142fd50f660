//! ALPN: libp2p's protocol id, and muxer negotiation inside the handshake.

/// The ALPN protocol id of libp2p TLS; offered last, after any muxers.
///
/// libp2p specs: tls/tls.md ("ALPN"); connections/inlined-muxer-negotiation.md.
pub const ALPN: &[u8] = b"libp2p";

/// The ALPN list of a handshake that also chooses the stream muxer: the
/// `muxers`' protocol ids (`/yamux/1.0.0`, …) in order of preference, then
/// [`ALPN`], which a peer selects when it supports none of them (the muxer
/// is then negotiated with multistream-select after the handshake). A muxer
/// given as [`ALPN`] itself is left out: it is always last.
///
/// QUIC has its own streams and offers [`ALPN`] alone.
///
/// libp2p specs: connections/inlined-muxer-negotiation.md.
pub fn protocols<I>(muxers: I) -> Vec<Vec<u8>>
where
    I: IntoIterator,
    I::Item: AsRef<[u8]>,
{
    muxers
        .into_iter()
        .map(|muxer| muxer.as_ref().to_vec())
        .filter(|muxer| muxer != ALPN)
        .chain([ALPN.to_vec()])
        .collect()
}

/// The muxer a handshake chose, from the protocol it selected: `None` when
/// it selected [`ALPN`] (multistream-select follows) or nothing.
///
/// libp2p specs: connections/inlined-muxer-negotiation.md.
pub fn chosen_muxer(selected: Option<&[u8]>) -> Option<&[u8]> {
    selected.filter(|protocol| *protocol != ALPN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muxers_come_first_then_libp2p() {
        assert_eq!(
            protocols(["/yamux/1.0.0", "/mplex/6.7.0"]),
            [
                b"/yamux/1.0.0".to_vec(),
                b"/mplex/6.7.0".to_vec(),
                b"libp2p".to_vec()
            ]
        );
        assert_eq!(protocols(Vec::<&str>::new()), [b"libp2p".to_vec()]);
        assert_eq!(
            protocols(["libp2p", "/yamux/1.0.0"]),
            [b"/yamux/1.0.0".to_vec(), b"libp2p".to_vec()]
        );
    }

    #[test]
    fn libp2p_selected_means_no_muxer_yet() {
        assert_eq!(
            chosen_muxer(Some(b"/yamux/1.0.0")),
            Some(&b"/yamux/1.0.0"[..])
        );
        assert_eq!(chosen_muxer(Some(ALPN)), None);
        assert_eq!(chosen_muxer(None), None);
    }
}
