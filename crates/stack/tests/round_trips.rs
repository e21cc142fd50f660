//! The round-trip table, measured exactly: every preset over a netsim link
//! in virtual time, from `dial` to the first byte of the response to a
//! request on a fresh stream (see `onetrip_stack::measure`).

use std::time::Duration;

use onetrip_stack::{
    Layering, QuicLayering,
    measure::{self, Measurement, ZeroRttServer},
};

/// Asserts the time to first byte is exactly `round_trips` RTT, and the
/// link's flight record counts as many.
fn check(name: &str, measured: &Measurement, round_trips: u32) {
    assert_eq!(
        measured.ttfb,
        round_trips * measured.rtt,
        "{name} at RTT {:?}:\n{}",
        measured.rtt,
        measured.recording.ladder_text()
    );
    assert_eq!(
        measured.recording.round_trips(),
        round_trips as usize,
        "{name}: flights on the critical path:\n{}",
        measured.recording.ladder_text()
    );
}

async fn tcp_table(delay: Duration) {
    let table = [
        ("tcp-classic", 6, false),
        ("tcp-optimistic-app", 5, false),
        ("tcp-libp2p-default", 4, false),
        ("tcp-early-muxer", 4, true),
        ("tcp-onetrip", 3, true),
        ("tcp-tls-classic", 6, false),
        ("tcp-tls-onetrip", 3, true),
        ("tcp-tls-0rtt", 3, true),
        ("tcp-onetrip-tfo", 3, true),
        ("tcp-tls-0rtt-tfo", 3, true),
    ];
    for (name, round_trips, early) in table {
        let layering: Layering = name.parse().unwrap();
        let measured = measure::tcp(layering, delay).await.unwrap();
        check(name, &measured, round_trips);
        assert_eq!(measured.early_muxer, early, "{name}");
    }
}

/// TLS early data on TCP: a reconnect's first streams leave with the
/// ClientHello (2 RTT); without a ticket, or when the server takes no early
/// data, it is `tcp-tls-onetrip` (3 RTT).
async fn tcp_early_data_table(delay: Duration) {
    use ZeroRttServer::*;
    let cases = [
        ("tcp-tls-0rtt, first connection", Accepts, false, 3),
        ("tcp-tls-0rtt, reconnect", Accepts, true, 2),
        ("tcp-tls-0rtt, server refuses early data", Refuses, true, 3),
        ("tcp-tls-0rtt, server rejects early data", Rejects, true, 3),
    ];
    for (name, server, reconnect, round_trips) in cases {
        let measured = measure::tcp_resumed(Layering::TCP_TLS_0RTT, delay, server, reconnect)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        check(name, &measured, round_trips);
        assert!(measured.early_muxer, "{name}");
    }
}

/// TCP Fast Open: a reconnect's first flight rides in the SYN. With Noise
/// that is `/noise` and message 1 (2 RTT); with TLS early data the
/// ClientHello and the request (1 RTT); a server that takes no early data
/// still answers the ClientHello from the SYN (2 RTT).
async fn tcp_fast_open_table(delay: Duration) {
    use ZeroRttServer::*;
    let cases = [
        (
            "tcp-onetrip-tfo, reconnect",
            Layering::TCP_ONETRIP_TFO,
            Accepts,
            2,
        ),
        (
            "tcp-tls-0rtt-tfo, reconnect",
            Layering::TCP_TLS_0RTT_TFO,
            Accepts,
            1,
        ),
        (
            "tcp-tls-0rtt-tfo, server refuses early data",
            Layering::TCP_TLS_0RTT_TFO,
            Refuses,
            2,
        ),
        (
            "tcp-tls-0rtt-tfo, server rejects early data",
            Layering::TCP_TLS_0RTT_TFO,
            Rejects,
            2,
        ),
    ];
    for (name, layering, server, round_trips) in cases {
        let measured = measure::tcp_resumed(layering, delay, server, true)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        check(name, &measured, round_trips);
        assert!(measured.early_muxer, "{name}");
        let syn = measured
            .recording
            .records
            .iter()
            .find(|r| r.label.as_deref() == Some("SYN"));
        let syn = syn.unwrap_or_else(|| panic!("{name}: no SYN"));
        assert!(syn.bytes > 0, "{name}: the SYN carries the first flight");
    }
}

async fn quic_table(delay: Duration) {
    use ZeroRttServer::*;
    let cases = [
        ("quic", QuicLayering::QUIC, Accepts, false, 3, None),
        (
            "quic-optimistic",
            QuicLayering::QUIC_OPTIMISTIC,
            Accepts,
            false,
            2,
            None,
        ),
        (
            "quic-0rtt, first connection",
            QuicLayering::QUIC_0RTT,
            Accepts,
            false,
            2,
            None,
        ),
        (
            "quic-0rtt, reconnect",
            QuicLayering::QUIC_0RTT,
            Accepts,
            true,
            1,
            Some(true),
        ),
        (
            "quic-0rtt, server refuses 0-RTT",
            QuicLayering::QUIC_0RTT,
            Refuses,
            true,
            2,
            None,
        ),
        (
            "quic-0rtt, server rejects 0-RTT",
            QuicLayering::QUIC_0RTT,
            Rejects,
            true,
            2,
            Some(false),
        ),
    ];
    for (name, layering, server, reconnect, round_trips, zero_rtt) in cases {
        let measured = measure::quic(layering, delay, server, reconnect)
            .await
            .unwrap();
        check(name, &measured, round_trips);
        assert_eq!(measured.zero_rtt, zero_rtt, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn tcp_round_trips_at_10_ms() {
    tcp_table(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn tcp_round_trips_at_50_ms() {
    tcp_table(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn tcp_early_data_round_trips_at_10_ms() {
    tcp_early_data_table(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn tcp_early_data_round_trips_at_50_ms() {
    tcp_early_data_table(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn tcp_fast_open_round_trips_at_10_ms() {
    tcp_fast_open_table(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn tcp_fast_open_round_trips_at_50_ms() {
    tcp_fast_open_table(Duration::from_millis(50)).await;
}

#[tokio::test(start_paused = true)]
async fn quic_round_trips_at_10_ms() {
    quic_table(Duration::from_millis(10)).await;
}

#[tokio::test(start_paused = true)]
async fn quic_round_trips_at_50_ms() {
    quic_table(Duration::from_millis(50)).await;
}
