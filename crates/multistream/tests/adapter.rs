//! The tokio adapter, end to end over in-memory streams.
//!
//! The tests run on tokio's paused clock, which jumps ahead whenever every
//! task is blocked: a deadlock runs into the caller's deadline at once
//! instead of hanging the suite.

use std::{io, time::Duration};

use onetrip_multistream::{
    Deadline, Error, Message, Mode, Protocol, dialer_select, listener_select,
};
use onetrip_testkit::Recorded;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, duplex};

/// How long each negotiation may take.
const SETUP: Duration = Duration::from_secs(10);

/// The caller's deadline for one negotiation.
fn deadline() -> Deadline {
    Deadline::after(SETUP)
}

/// Fails a test that deadlocks, at once (see the module docs).
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("deadlocked")
}

fn p(name: &str) -> Protocol {
    Protocol::new(name).unwrap()
}

fn frame(message: Message) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

/// The header and `name` framed, then `data`: what an optimistic dialer
/// sends first, and what a listener answers when it accepts.
fn negotiation(name: &str, data: &[u8]) -> Vec<u8> {
    [
        frame(Message::Header),
        frame(Message::Protocol(p(name))),
        data.to_vec(),
    ]
    .concat()
}

/// Sends `request` and reads a reply of the same length.
async fn exchange(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), request: &[u8]) -> Vec<u8> {
    stream.write_all(request).await.unwrap();
    stream.flush().await.unwrap();
    let mut reply = vec![0; request.len()];
    stream.read_exact(&mut reply).await.unwrap();
    reply
}

/// Echo server: negotiates, reads `len` bytes, writes them back reversed.
async fn echo_listener(
    io: DuplexStream,
    supported: Vec<Protocol>,
    len: usize,
) -> Result<Protocol, Error> {
    let (protocol, mut stream) = listener_select(io, supported, deadline()).await?;
    let mut buf = vec![0; len];
    stream.read_exact(&mut buf).await?;
    buf.reverse();
    stream.write_all(&buf).await?;
    stream.flush().await?;
    Ok(protocol)
}

#[tokio::test(start_paused = true)]
async fn both_modes_exchange_data_both_ways() {
    bounded(async {
        for mode in [Mode::Interactive, Mode::Optimistic] {
            let (a, b) = duplex(1 << 16);
            let server = tokio::spawn(echo_listener(b, vec![p("/x"), p("/echo/1.0.0")], 5));
            let (protocol, mut stream) = dialer_select(a, [p("/echo/1.0.0")], mode, deadline())
                .await
                .unwrap();
            assert_eq!(protocol, "/echo/1.0.0");
            assert_eq!(stream.is_confirmed(), mode == Mode::Interactive);
            assert_eq!(exchange(&mut stream, b"hello").await, b"olleh", "{mode:?}");
            assert!(stream.is_confirmed());
            assert_eq!(server.await.unwrap().unwrap(), "/echo/1.0.0");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn refused_candidates_fall_back_in_both_modes() {
    bounded(async {
        for mode in [Mode::Interactive, Mode::Optimistic] {
            let (a, b) = duplex(1 << 16);
            let server = tokio::spawn(echo_listener(b, vec![p("/c")], 3));
            let (protocol, mut stream) =
                dialer_select(a, [p("/a"), p("/b"), p("/c")], mode, deadline())
                    .await
                    .unwrap();
            assert_eq!(protocol, "/c");
            assert_eq!(exchange(&mut stream, b"abc").await, b"cba");
            server.await.unwrap().unwrap();
        }
    })
    .await;
}

/// Dials `/ping` in `mode` over a transport that records its writes, and
/// exchanges one request. Returns the writes made before the request, and
/// all of them.
async fn ping_writes(mode: Mode) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let (a, b) = duplex(1 << 16);
    let (io, log) = Recorded::new(a);
    let server = tokio::spawn(echo_listener(b, vec![p("/ping")], 4));
    let (_, mut stream) = dialer_select(io, [p("/ping")], mode, deadline())
        .await
        .unwrap();
    let before = log.writes();
    assert_eq!(exchange(&mut stream, b"ping").await, b"gnip");
    server.await.unwrap().unwrap();
    (before, log.writes())
}

/// The optimistic dialer's header, proposal and first application bytes
/// reach the transport as a single write; the listener hands those bytes
/// over intact.
#[tokio::test(start_paused = true)]
async fn optimistic_first_flight_is_one_write() {
    bounded(async {
        let (before, all) = ping_writes(Mode::Optimistic).await;
        assert!(
            before.is_empty(),
            "nothing leaves before the application writes"
        );
        let flight = [
            frame(Message::Header),
            frame(Message::Protocol(p("/ping"))),
            b"ping".to_vec(),
        ];
        assert_eq!(all, vec![flight.concat()]);
    })
    .await;
}

/// For contrast: the interactive dialer flushes its proposal alone, and its
/// application bytes follow only after the echo.
#[tokio::test(start_paused = true)]
async fn interactive_dialer_waits_for_the_echo() {
    bounded(async {
        let (before, all) = ping_writes(Mode::Interactive).await;
        let negotiation = [frame(Message::Header), frame(Message::Protocol(p("/ping")))].concat();
        assert_eq!(before, vec![negotiation.clone()]);
        assert_eq!(all, vec![negotiation, b"ping".to_vec()]);
    })
    .await;
}

/// A large first write: the first 16 KiB share the negotiation's write, the
/// rest follows, and every byte arrives in order.
#[tokio::test(start_paused = true)]
async fn optimistic_large_first_write_arrives_whole() {
    bounded(async {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (a, b) = duplex(1 << 12);
        let server = tokio::spawn({
            let len = data.len();
            async move {
                let (_, mut stream) = listener_select(b, vec![p("/bulk")], deadline()).await?;
                let mut got = vec![0; len];
                stream.read_exact(&mut got).await?;
                Ok::<_, Error>(got)
            }
        });
        let (_, mut stream) = dialer_select(a, [p("/bulk")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        stream.write_all(&data).await.unwrap();
        stream.flush().await.unwrap();
        assert_eq!(server.await.unwrap().unwrap(), data);
    })
    .await;
}

/// The listener's echo and its first response bytes arrive together; the
/// dialer must return the response, not lose it with the echo.
#[tokio::test(start_paused = true)]
async fn response_sharing_a_read_with_the_echo_is_kept() {
    bounded(async {
        let (a, mut b) = duplex(1 << 16);
        let (_, mut stream) = dialer_select(a, [p("/r")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        stream.write_all(b"q").await.unwrap();
        stream.flush().await.unwrap();
        let reply = [
            frame(Message::Header),
            frame(Message::Protocol(p("/r"))),
            b"response".to_vec(),
        ]
        .concat();
        b.write_all(&reply).await.unwrap();
        // One byte at a time: the bytes behind the echo are kept, in order.
        let mut got = Vec::new();
        for _ in 0..8 {
            let mut byte = [0; 1];
            stream.read_exact(&mut byte).await.unwrap();
            got.push(byte[0]);
        }
        assert_eq!(got, b"response");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn listener_hands_over_pipelined_bytes() {
    bounded(async {
        let (mut a, b) = duplex(1 << 16);
        let request = [
            frame(Message::Header),
            frame(Message::Protocol(p("/a"))),
            b"first bytes".to_vec(),
        ]
        .concat();
        a.write_all(&request).await.unwrap();
        let (protocol, mut stream) = listener_select(b, vec![p("/a")], deadline()).await.unwrap();
        assert_eq!(protocol, "/a");
        let mut buf = [0; 11];
        stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"first bytes");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn optimistic_rejection_surfaces_on_read_then_write() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let server = tokio::spawn(async move {
            listener_select(b, vec![p("/b")], deadline())
                .await
                .map(|_| ())
        });
        let (_, mut stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        stream.write_all(b"hello").await.unwrap();
        stream.flush().await.unwrap();
        let mut buf = [0; 1];
        let err = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(matches!(
            Error::from_io(&err),
            Some(Error::OptimisticRejected { protocol }) if protocol == "/a"
        ));
        let err = stream.write_all(b"more").await.unwrap_err();
        assert!(matches!(
            Error::from_io(&err),
            Some(Error::OptimisticRejected { .. })
        ));
        assert!(!stream.is_confirmed());
        drop(stream);
        // The listener read "hello" as the start of a message and then hit EOF.
        assert!(matches!(server.await.unwrap(), Err(Error::UnexpectedEof)));
    })
    .await;
}

/// Two optimistic negotiations nested on one stream (as security, then a
/// muxer): each layer consumes only its own header and echo.
#[tokio::test(start_paused = true)]
async fn nested_optimistic_negotiations() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let server = tokio::spawn(async move {
            let (outer, stream) = listener_select(b, vec![p("/outer")], deadline()).await?;
            let (inner, mut stream) =
                listener_select(stream, vec![p("/inner")], deadline()).await?;
            let mut buf = [0; 4];
            stream.read_exact(&mut buf).await?;
            stream.write_all(b"pong").await?;
            stream.flush().await?;
            Ok::<_, Error>((outer, inner, buf))
        });
        let (_, stream) = dialer_select(a, [p("/outer")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        let (_, mut stream) = dialer_select(stream, [p("/inner")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        assert_eq!(exchange(&mut stream, b"ping").await, b"pong");
        let (outer, inner, got) = server.await.unwrap().unwrap();
        assert_eq!(
            (outer.as_str(), inner.as_str(), &got),
            ("/outer", "/inner", b"ping")
        );
    })
    .await;
}

/// go-multistream#20 on the wire: the outer proposal is refused, and the
/// nested negotiation that the dialer pipelined behind it must not select
/// the inner protocol at the outer level.
#[tokio::test(start_paused = true)]
async fn refused_outer_does_not_select_nested_inner() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let server =
            tokio::spawn(async move { listener_select(b, vec![p("/inner")], deadline()).await });
        let (_, stream) = dialer_select(a, [p("/outer")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        let (_, mut stream) = dialer_select(stream, [p("/inner")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        stream.write_all(b"data").await.unwrap();
        stream.flush().await.unwrap();
        let verdict = server.await.unwrap().map(|(protocol, _)| protocol);
        assert!(
            matches!(verdict, Err(Error::UnexpectedMessage { .. })),
            "{verdict:?}"
        );
        // The listener still sent its `na`: the dialer knows why.
        let err = stream.read(&mut [0; 1]).await.unwrap_err();
        let refused = match Error::from_io(&err) {
            Some(Error::OptimisticRejected { protocol }) => protocol.as_str(),
            other => panic!("{other:?}"),
        };
        assert_eq!(refused, "/outer");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn stalled_peer_times_out() {
    let (_a, b) = duplex(1 << 16);
    let start = tokio::time::Instant::now();
    let result = listener_select(b, vec![p("/a")], deadline()).await;
    assert!(matches!(result, Err(Error::Timeout)));
    assert_eq!(start.elapsed(), SETUP);

    let (a, _b) = duplex(1 << 16);
    let result = dialer_select(a, [p("/a")], Mode::Interactive, deadline()).await;
    assert!(matches!(result, Err(Error::Timeout)));
}

/// The deadline is the caller's alone: a listener that answers after 15 s
/// is waited for under a 30 s deadline, and given up on at exactly 5 s
/// under a 5 s one.
#[tokio::test(start_paused = true)]
async fn the_callers_deadline_alone_bounds_a_slow_step() {
    async fn slow_listener(io: DuplexStream) {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let _ = listener_select(io, vec![p("/a")], Deadline::NONE).await;
    }
    for (limit, succeeds) in [(30, true), (5, false)] {
        let (a, b) = duplex(1 << 16);
        let listener = tokio::spawn(slow_listener(b));
        let start = tokio::time::Instant::now();
        let deadline = Deadline::after(Duration::from_secs(limit));
        let result = dialer_select(a, [p("/a")], Mode::Interactive, deadline).await;
        if succeeds {
            assert_eq!(result.expect("negotiated").0, p("/a"));
            assert_eq!(start.elapsed(), Duration::from_secs(15));
        } else {
            assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
            assert_eq!(start.elapsed(), Duration::from_secs(limit));
        }
        listener.abort();
    }
}

#[tokio::test(start_paused = true)]
async fn eof_mid_negotiation() {
    bounded(async {
        let (mut a, b) = duplex(1 << 16);
        let mut partial = [frame(Message::Header), frame(Message::Protocol(p("/a")))].concat();
        partial.truncate(partial.len() - 1);
        a.write_all(&partial).await.unwrap();
        a.shutdown().await.unwrap();
        assert!(matches!(
            listener_select(b, vec![p("/a")], deadline()).await,
            Err(Error::UnexpectedEof)
        ));

        // An optimistic dialer whose listener goes away before answering,
        // after the proposal left.
        let (a, mut b) = duplex(1 << 16);
        let (_, mut stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let mut proposal = vec![0; negotiation("/a", b"").len()];
        b.read_exact(&mut proposal).await.unwrap();
        drop(b);
        let mut buf = [0; 1];
        let err = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(Error::from_io(&err), Some(Error::UnexpectedEof)));

        // Before it left: the first read sends it, and learns the listener
        // is gone from the write.
        let (a, b) = duplex(1 << 16);
        let (_, mut stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        drop(b);
        let err = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn garbage_instead_of_header() {
    bounded(async {
        let (mut a, b) = duplex(1 << 16);
        a.write_all(b"\x13/multistream/0.9.9\n").await.unwrap();
        assert!(matches!(
            listener_select(b, vec![p("/a")], deadline()).await,
            Err(Error::UnexpectedHeader { .. })
        ));
    })
    .await;
}

/// A protocol in which the listener speaks first (Identify, say): an
/// optimistic dialer that reads before it writes sends its pending header
/// and proposal with that read.
#[tokio::test(start_paused = true)]
async fn optimistic_dialer_that_reads_first_sends_its_proposal() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let listener = tokio::spawn(async move {
            let (_, mut stream) = listener_select(b, vec![p("/id")], deadline())
                .await
                .unwrap();
            stream.write_all(b"hello").await.unwrap();
            stream.shutdown().await.unwrap();
        });
        let (_, mut stream) = dialer_select(a, [p("/id")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        let mut greeting = Vec::new();
        tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut greeting))
            .await
            .expect("the listener never got the proposal")
            .unwrap();
        assert_eq!(greeting, b"hello");
        listener.await.unwrap();
    })
    .await;
}

/// The pending proposal also leaves with a flush and with a shutdown, with
/// no application data.
#[tokio::test(start_paused = true)]
async fn optimistic_proposal_leaves_with_flush() {
    bounded(async {
        let (a, mut b) = duplex(1 << 16);
        let (_, mut stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let expected = negotiation("/a", b"");
        let mut got = vec![0; expected.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected);
    })
    .await;
}

/// An optimistic dialer's shutdown sends the request at once but holds the
/// end of the stream until the listener's answer is in: js-libp2p loses an
/// end of stream that arrives before its protocol handler runs.
#[tokio::test(start_paused = true)]
async fn optimistic_shutdown_waits_for_the_answer() {
    bounded(async {
        let (a, mut b) = duplex(1 << 16);
        let dialer = tokio::spawn(async move {
            let (_, mut stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
                .await
                .unwrap();
            stream.write_all(b"request").await.unwrap();
            stream.shutdown().await.unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            response
        });
        let expected = negotiation("/a", b"request");
        let mut got = vec![0; expected.len()];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(got, expected, "the request leaves at once");

        let mut more = [0; 1];
        let early = tokio::time::timeout(Duration::from_secs(5), b.read(&mut more)).await;
        assert!(
            early.is_err(),
            "the end of the stream left before the answer"
        );

        // Answer, with the response in the same write as the echo.
        b.write_all(&negotiation("/a", b"response")).await.unwrap();
        assert_eq!(b.read(&mut more).await.unwrap(), 0, "then the end follows");
        b.shutdown().await.unwrap();
        assert_eq!(dialer.await.unwrap(), b"response");
    })
    .await;
}

/// A refused proposal fails the held shutdown with the refusal.
#[tokio::test(start_paused = true)]
async fn optimistic_shutdown_reports_a_refusal() {
    bounded(async {
        let (a, b) = duplex(1 << 16);
        let listener =
            tokio::spawn(async move { listener_select(b, vec![p("/b")], deadline()).await });
        let (_, mut stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        let err = stream.shutdown().await.unwrap_err();
        assert!(matches!(
            Error::from_io(&err),
            Some(Error::OptimisticRejected { .. })
        ));
        drop(stream);
        assert!(listener.await.unwrap().is_err());
    })
    .await;
}

/// A split stream whose reader and closer both wait on the answer: the
/// inner stream wakes only the last of them, which wakes the other.
#[tokio::test(start_paused = true)]
async fn split_reader_and_closer_both_complete() {
    bounded(async {
        let (a, mut b) = duplex(1 << 16);
        let listener = tokio::spawn(async move {
            let proposal = [frame(Message::Header), frame(Message::Protocol(p("/a")))].concat();
            let mut got = vec![0; proposal.len() + 4];
            b.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [proposal.clone(), b"ping".to_vec()].concat());
            // Both halves are waiting by now.
            tokio::time::sleep(Duration::from_secs(1)).await;
            b.write_all(&[proposal, b"pong".to_vec()].concat())
                .await
                .unwrap();
            let mut end = [0; 1];
            assert_eq!(b.read(&mut end).await.unwrap(), 0);
            b.shutdown().await.unwrap();
        });
        let (_, stream) = dialer_select(a, [p("/a")], Mode::Optimistic, deadline())
            .await
            .unwrap();
        let (mut reader, mut writer) = tokio::io::split(stream);
        let read = tokio::spawn(async move {
            let mut response = Vec::new();
            reader.read_to_end(&mut response).await.unwrap();
            response
        });
        tokio::task::yield_now().await;
        writer.write_all(b"ping").await.unwrap();
        writer.shutdown().await.unwrap();
        assert_eq!(read.await.unwrap(), b"pong");
        listener.await.unwrap();
    })
    .await;
}
