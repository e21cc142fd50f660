//! Byte-exact vectors, the codec's properties, and the state machines'
//! answers to malformed input.

use onetrip_multistream::{
    Dialer, Error, Listener, MAX_MESSAGE_LEN, MAX_PROPOSALS, Message, Misuse, Mode, Protocol,
    Status, fuzzing,
};
use proptest::prelude::*;

fn p(name: &str) -> Protocol {
    Protocol::new(name).unwrap()
}

fn encode(message: &Message) -> Vec<u8> {
    let mut out = Vec::new();
    message.encode(&mut out);
    out
}

/// The dialer's header followed by the given framed messages.
fn dialer_bytes(messages: &[Message]) -> Vec<u8> {
    let mut out = encode(&Message::Header);
    for m in messages {
        m.encode(&mut out);
    }
    out
}

// multiformats/multistream-select README gives `na` and `ls` in hex.
#[test]
fn spec_vectors() {
    assert_eq!(encode(&Message::NotAvailable), [0x03, 0x6e, 0x61, 0x0a]);
    assert_eq!(encode(&Message::ListProtocols), [0x03, 0x6c, 0x73, 0x0a]);
    assert_eq!(encode(&Message::Header), b"\x13/multistream/1.0.0\n");
    assert_eq!(encode(&Message::Protocol(p("/noise"))), b"\x07/noise\n");
    // The `ls` answer: one message whose payload frames each name, then `\n`.
    assert_eq!(
        encode(&Message::Protocols(vec![p("/a"), p("/b")])),
        [
            0x09, 0x03, b'/', b'a', b'\n', 0x03, b'/', b'b', b'\n', b'\n'
        ]
    );
    // A length of 300 needs a two-byte varint: 0xac 0x02.
    let long = format!("/{}", "x".repeat(298));
    assert_eq!(&encode(&Message::Protocol(p(&long)))[..2], [0xac, 0x02]);
}

#[test]
fn dialer_first_flight_is_header_and_proposal() {
    let mut dialer = Dialer::new([p("/noise")], Mode::Interactive).unwrap();
    let mut out = Vec::new();
    dialer.take_output(&mut out);
    assert_eq!(out, b"\x13/multistream/1.0.0\n\x07/noise\n");
    assert_eq!(dialer.status(), &Status::Negotiating);
}

#[test]
fn listener_sends_header_before_reading() {
    let mut listener = Listener::new(vec![p("/noise")]);
    let mut out = Vec::new();
    listener.take_output(&mut out);
    assert_eq!(out, b"\x13/multistream/1.0.0\n");
}

#[test]
fn listener_answers_ls_na_and_echo() {
    let mut listener = Listener::new(vec![p("/a"), p("/b")]);
    let input = dialer_bytes(&[
        Message::ListProtocols,
        Message::Protocol(p("/c")),
        Message::Protocol(p("/b")),
    ]);
    let used = listener.handle_input(&input).unwrap();
    assert_eq!(used, input.len());
    assert_eq!(listener.status(), &Status::Selected(p("/b")));
    let mut out = Vec::new();
    listener.take_output(&mut out);
    let expected = dialer_bytes(&[
        Message::Protocols(vec![p("/a"), p("/b")]),
        Message::NotAvailable,
        Message::Protocol(p("/b")),
    ]);
    assert_eq!(out, expected);
}

#[test]
fn ls_answer_is_cut_to_one_message() {
    let many: Vec<Protocol> = (0..100)
        .map(|i| p(&format!("/protocol/number/{i:03}")))
        .collect();
    let mut listener = Listener::new(many.clone());
    listener
        .handle_input(&dialer_bytes(&[Message::ListProtocols]))
        .unwrap();
    let mut out = Vec::new();
    listener.take_output(&mut out);
    let answer = &out[encode(&Message::Header).len()..];
    let (len, payload) = unsigned_varint::decode::usize(answer).unwrap();
    assert!(len <= MAX_MESSAGE_LEN, "ls answer of {len} bytes");
    assert_eq!(payload.len(), len);
    let listed = Message::decode_protocols(payload).unwrap();
    assert!(!listed.is_empty() && listed.len() < many.len());
    assert_eq!(listed, many[..listed.len()]);
}

#[test]
fn listener_leaves_pipelined_application_bytes() {
    let mut listener = Listener::new(vec![p("/a")]);
    let mut input = dialer_bytes(&[Message::Protocol(p("/a"))]);
    let negotiation = input.len();
    input.extend_from_slice(b"\x13/multistream/1.0.0\nnot a message");
    assert_eq!(listener.handle_input(&input).unwrap(), negotiation);
    // Once selected, nothing more is consumed.
    assert_eq!(listener.handle_input(&input[negotiation..]).unwrap(), 0);
}

#[test]
fn dialer_falls_back_then_goes_optimistic_on_last_candidate() {
    let mut dialer = Dialer::new([p("/a"), p("/b")], Mode::Optimistic).unwrap();
    assert_eq!(dialer.status(), &Status::Negotiating);
    let mut out = Vec::new();
    dialer.take_output(&mut out);
    out.clear();
    let answer = dialer_bytes(&[Message::NotAvailable]);
    assert_eq!(dialer.handle_input(&answer).unwrap(), answer.len());
    assert_eq!(dialer.status(), &Status::Optimistic(p("/b")));
    dialer.take_output(&mut out);
    assert_eq!(out, encode(&Message::Protocol(p("/b"))));
    let echo = encode(&Message::Protocol(p("/b")));
    dialer.handle_input(&echo).unwrap();
    assert_eq!(dialer.status(), &Status::Selected(p("/b")));
}

#[test]
fn dialer_reports_refusals() {
    let refusal = dialer_bytes(&[Message::NotAvailable]);
    let mut interactive = Dialer::new([p("/a")], Mode::Interactive).unwrap();
    assert!(matches!(
        interactive.handle_input(&refusal),
        Err(Error::NoProtocolInCommon)
    ));
    let mut optimistic = Dialer::new([p("/a")], Mode::Optimistic).unwrap();
    assert!(matches!(
        optimistic.handle_input(&refusal),
        Err(Error::OptimisticRejected { protocol }) if protocol == "/a"
    ));
}

#[test]
fn dialer_rejects_a_foreign_echo() {
    let mut dialer = Dialer::new([p("/a")], Mode::Interactive).unwrap();
    let answer = dialer_bytes(&[Message::Protocol(p("/b"))]);
    assert!(matches!(
        dialer.handle_input(&answer),
        Err(Error::UnexpectedMessage { .. })
    ));
}

#[test]
fn dialer_list_bounds() {
    assert!(matches!(
        Dialer::new([], Mode::Interactive),
        Err(Misuse::NoProtocols)
    ));
    let too_many = (0..=MAX_PROPOSALS).map(|i| p(&format!("/p/{i}")));
    assert!(matches!(
        Dialer::new(too_many, Mode::Interactive),
        Err(Misuse::TooManyProtocols { .. })
    ));
}

/// Feeds raw bytes to a fresh listener and returns its verdict.
fn listen(input: &[u8]) -> Result<usize, Error> {
    Listener::new(vec![p("/a")]).handle_input(input)
}

#[test]
fn malformed_input_gets_typed_errors() {
    let header = encode(&Message::Header);
    let with_header = |tail: &[u8]| [header.as_slice(), tail].concat();

    // 1025 = 0x81 0x08: one byte over the limit.
    assert!(matches!(
        listen(&[0x81, 0x08]),
        Err(Error::MessageTooLarge {
            len: 1025,
            max: 1024
        })
    ));
    // The largest u16 varint, and a varint longer than a u16 takes.
    assert!(matches!(
        listen(&[0xff, 0xff, 0x03]),
        Err(Error::MessageTooLarge { .. })
    ));
    assert!(matches!(
        listen(&[0x80, 0x80, 0x80, 0x01]),
        Err(Error::InvalidVarint)
    ));
    // 3 encoded as two bytes: not minimal.
    assert!(matches!(listen(&[0x83, 0x00]), Err(Error::InvalidVarint)));
    // A zero-length message cannot end with a newline.
    assert!(matches!(listen(&[0x00]), Err(Error::MissingNewline)));
    assert!(matches!(
        listen(b"\x12/multistream/1.0.0"),
        Err(Error::MissingNewline)
    ));
    assert!(matches!(
        listen(b"\x13/multistream/2.0.0\n"),
        Err(Error::UnexpectedHeader { got }) if got == "/multistream/2.0.0\n"
    ));
    // Plain HTTP: 'G' reads as a length of 71, and what follows is no header.
    let http = concat!(
        "GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl\r\n",
        "Accept: */*\r\nConnection: close\r\n\r\n",
    );
    assert!(matches!(
        listen(http.as_bytes()),
        Err(Error::MissingNewline | Error::UnexpectedHeader { .. })
    ));
    // A partial message is no error: it is consumed and buffered.
    assert_eq!(listen(&with_header(b"\x03/a")).unwrap(), header.len() + 3);
    assert!(matches!(
        listen(&with_header(b"\x03/\xff\n")),
        Err(Error::InvalidUtf8)
    ));
    assert!(matches!(
        listen(&with_header(b"\x03/a\x00")),
        Err(Error::MissingNewline)
    ));
    assert!(matches!(
        listen(&with_header(b"\x05junk\n")),
        Err(Error::UnknownMessage { .. })
    ));
    assert!(matches!(
        listen(&with_header(&encode(&Message::NotAvailable))),
        Err(Error::UnexpectedMessage { .. })
    ));
}

#[test]
fn too_many_proposals() {
    let proposals: Vec<Message> = (0..=MAX_PROPOSALS)
        .map(|i| Message::Protocol(p(&format!("/unknown/{i}"))))
        .collect();
    let input = dialer_bytes(&proposals);
    assert!(matches!(
        listen(&input),
        Err(Error::TooManyProposals { max: MAX_PROPOSALS })
    ));
    // `ls` counts too.
    let lists = vec![Message::ListProtocols; MAX_PROPOSALS + 1];
    assert!(matches!(
        listen(&dialer_bytes(&lists)),
        Err(Error::TooManyProposals { .. })
    ));
    // One fewer is fine.
    assert!(listen(&dialer_bytes(&proposals[..MAX_PROPOSALS])).is_ok());
}

#[test]
fn eof_mid_message() {
    let mut listener = Listener::new(vec![p("/a")]);
    let input = dialer_bytes(&[Message::Protocol(p("/a"))]);
    listener.handle_input(&input[..input.len() - 2]).unwrap();
    assert!(matches!(listener.handle_eof(), Err(Error::UnexpectedEof)));
    listener.handle_input(&input[input.len() - 2..]).unwrap();
    assert!(listener.handle_eof().is_ok());
}

/// go-multistream#20: a dialer that goes on optimistically after a refused
/// proposal may start a nested negotiation; the listener must not take the
/// nested proposal for a new outer one.
#[test]
fn second_header_is_not_a_proposal() {
    let mut listener = Listener::new(vec![p("/inner")]);
    let input = dialer_bytes(&[
        Message::Protocol(p("/outer")),
        Message::Header,
        Message::Protocol(p("/inner")),
    ]);
    assert!(matches!(
        listener.handle_input(&input),
        Err(Error::UnexpectedMessage { .. })
    ));
    assert_eq!(listener.status(), &Status::Negotiating);
}

fn protocol_name() -> impl Strategy<Value = Protocol> {
    "/[^\n]{0,200}".prop_filter_map("reserved", |name| Protocol::new(name).ok())
}

proptest! {
    #[test]
    fn message_round_trip(name in protocol_name()) {
        let messages = [
            Message::Header,
            Message::NotAvailable,
            Message::ListProtocols,
            Message::Protocol(name.clone()),
        ];
        for message in messages {
            let bytes = encode(&message);
            let (len, payload) = unsigned_varint::decode::usize(&bytes).unwrap();
            prop_assert_eq!(len, payload.len());
            prop_assert_eq!(Message::decode(payload).unwrap(), message);
        }
    }

    #[test]
    fn protocol_list_round_trip(names in prop::collection::vec(protocol_name(), 0..20)) {
        let bytes = encode(&Message::Protocols(names.clone()));
        let (len, payload) = unsigned_varint::decode::usize(&bytes).unwrap();
        prop_assert_eq!(len, payload.len());
        prop_assert_eq!(Message::decode_protocols(payload).unwrap(), names);
    }

    /// However the bytes are cut, a negotiation ends the same way and
    /// leaves the application bytes that follow it.
    #[test]
    fn chunking_does_not_matter(
        cuts in prop::collection::vec(1usize..40, 1..20),
        app in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut input = dialer_bytes(&[
            Message::ListProtocols,
            Message::Protocol(p("/x")),
            Message::Protocol(p("/a")),
        ]);
        let negotiation = input.len();
        input.extend_from_slice(&app);
        let mut listener = Listener::new(vec![p("/a")]);
        let (mut pos, mut cut) = (0, cuts.iter().cycle());
        while pos < input.len() && listener.status() == &Status::Negotiating {
            let end = (pos + cut.next().unwrap()).min(input.len());
            pos += listener.handle_input(&input[pos..end]).unwrap();
        }
        prop_assert_eq!(listener.status(), &Status::Selected(p("/a")));
        prop_assert_eq!(pos, negotiation);
    }

    /// The fuzz targets' drivers, on random input: never a panic.
    #[test]
    fn random_input_never_panics(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = fuzzing::listener(&data);
        let _ = fuzzing::dialer(&data);
    }

    /// Random input after a valid header, where the parsers do real work.
    #[test]
    fn random_messages_never_panic(
        data in prop::collection::vec(any::<u8>(), 0..512),
        chunk in any::<u8>(),
    ) {
        let mut input = vec![chunk];
        input.extend_from_slice(&encode(&Message::Header));
        input.extend_from_slice(&data);
        let _ = fuzzing::listener(&input);
        let _ = fuzzing::dialer(&[&[1], input.as_slice()].concat());
    }

    /// The message fuzz target's driver on random payloads and on valid ones.
    #[test]
    fn message_driver_holds(
        data in prop::collection::vec(any::<u8>(), 0..300),
        name in protocol_name(),
    ) {
        fuzzing::message(&data);
        let mut list = Vec::new();
        Message::Protocols(vec![name.clone(), name]).encode(&mut list);
        let (_, payload) = unsigned_varint::decode::usize(&list).unwrap();
        fuzzing::message(payload);
    }
}
