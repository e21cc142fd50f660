//! The emulator checks itself against its configuration on the real
//! kernel (root: CI has it; without it the tests fail and say so): delay,
//! rate, loss (Bernoulli and Gilbert-Elliott) with exact packet counters,
//! and a drop-tail queue. It also reports what it costs (added latency,
//! the rate it forwards at); those are printed, not asserted.

use std::{
    net::{SocketAddr, UdpSocket},
    thread,
    time::{Duration, Instant},
};

use nix::sys::socket::{setsockopt, sockopt};
use onetrip_netem::{CLIENT, Emulator, LinkConfig, Path, SERVER};
use onetrip_netsim::{GilbertElliott, LossModel};

const PORT: u16 = 9000;

/// The sink's receive buffer: 10,000 small datagrams at about 1 KiB of
/// kernel memory each.
const SINK_BUFFER: usize = 16 << 20;

fn start(link: LinkConfig) -> Emulator {
    Emulator::start(Path::symmetric(link)).unwrap_or_else(|err| panic!("{err}"))
}

/// A UDP echo server in the server namespace.
fn echo(emulator: &Emulator) {
    emulator.server.run(|| {
        let socket = UdpSocket::bind((SERVER, PORT)).unwrap();
        thread::spawn(move || {
            let mut buf = [0; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], from);
            }
        });
    });
}

/// Round trips of `count` small datagrams, one at a time, from the client.
fn ping(emulator: &Emulator, count: usize) -> Vec<Duration> {
    emulator.client.run(move || {
        let socket = UdpSocket::bind((CLIENT, 0)).unwrap();
        socket.connect((SERVER, PORT)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        (0..count)
            .map(|n| {
                let start = Instant::now();
                socket.send(&n.to_be_bytes()).unwrap();
                let mut buf = [0; 64];
                socket.recv(&mut buf).expect("the echo");
                start.elapsed()
            })
            .collect()
    })
}

/// A sink in the server namespace that counts datagrams and notes when the
/// first and last arrived, until `quiet` passes without one.
fn sink(emulator: &Emulator, quiet: Duration) -> thread::JoinHandle<(usize, Option<Duration>)> {
    let socket = emulator
        .server
        .run(|| UdpSocket::bind((SERVER, PORT + 1)).unwrap());
    // Room for every datagram a test sends, so that none is dropped at the
    // socket while this thread waits for a core (CI runs tests at once).
    setsockopt(&socket, sockopt::RcvBufForce, &SINK_BUFFER).unwrap();
    thread::spawn(move || {
        socket.set_read_timeout(Some(quiet)).unwrap();
        let mut buf = [0; 2048];
        let (mut count, mut first, mut last) = (0, None, None);
        while socket.recv(&mut buf).is_ok() {
            let now = Instant::now();
            count += 1;
            first.get_or_insert(now);
            last = Some(now);
        }
        (count, first.zip(last).map(|(a, b)| b - a))
    })
}

/// Sends `count` datagrams of `len` bytes from the client, `gap` apart.
fn blast(emulator: &Emulator, count: usize, len: usize, gap: Duration) {
    emulator.client.run(move || {
        let socket = UdpSocket::bind((CLIENT, 0)).unwrap();
        let to = SocketAddr::from((SERVER, PORT + 1));
        let payload = vec![7; len];
        let start = Instant::now();
        for n in 0..count {
            // Paced, so that the client's own socket buffer never drops.
            let due = start + gap * u32::try_from(n).unwrap();
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            socket.send_to(&payload, to).unwrap();
        }
    });
}

#[test]
fn delay_is_the_configured_one_plus_a_fraction_of_a_millisecond() {
    let emulator = start(LinkConfig::with_delay(Duration::from_millis(20)));
    echo(&emulator);
    let mut rtts = ping(&emulator, 50);
    rtts.sort();
    let (min, median) = (rtts[0], rtts[rtts.len() / 2]);
    eprintln!("RTT 40 ms configured: min {min:?}, median {median:?}");
    assert!(min >= Duration::from_millis(40), "{min:?}");
    assert!(median < Duration::from_millis(45), "{median:?}");

    // The forwarder's own cost: a path with no delay.
    let emulator = start(LinkConfig::with_delay(Duration::ZERO));
    echo(&emulator);
    let mut rtts = ping(&emulator, 200);
    rtts.sort();
    eprintln!(
        "added latency, two forwarded packets per round trip: median {:?}, p90 {:?}",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 9 / 10]
    );
}

#[test]
fn the_bottleneck_forwards_at_the_configured_rate() {
    // 20 Mbit/s: a 1200-byte datagram takes 480 µs; offered every 400 µs,
    // so a queue forms and the bottleneck sets the pace.
    let rate = 20_000_000;
    let link = LinkConfig::with_delay(Duration::from_millis(5)).bandwidth(rate);
    let emulator = start(link);
    let sink = sink(&emulator, Duration::from_millis(500));
    let (count, len) = (1000, 1200);
    blast(&emulator, count, len, Duration::from_micros(400));
    let (received, span) = sink.join().unwrap();
    let (up, _) = emulator.counters();
    assert_eq!(received as u64, up.written, "{up:?}");
    let up = up.link;
    assert_eq!(received as u64, up.delivered, "{up:?}");
    assert_eq!(up.offered, count as u64, "{up:?}");
    // IP and UDP headers cross the link too.
    let bits = (received - 1) as f64 * (len + 28) as f64 * 8.0;
    let measured = bits / span.unwrap().as_secs_f64();
    eprintln!("rate {rate} bit/s configured: {measured:.0} measured");
    assert!(
        (0.9..1.1).contains(&(measured / rate as f64)),
        "{measured} bit/s"
    );
}

#[test]
fn a_full_queue_drops_the_tail_and_counts_it() {
    // 8 Mbit/s with room for 10 full packets; 100 offered at once.
    let link = LinkConfig::with_delay(Duration::from_millis(1))
        .bandwidth(8_000_000)
        .queue(10 * 1228);
    let emulator = start(link);
    let sink = sink(&emulator, Duration::from_millis(500));
    blast(&emulator, 100, 1200, Duration::ZERO);
    let (received, _) = sink.join().unwrap();
    let up = emulator.counters().0.link;
    assert_eq!(up.offered, 100);
    assert!(up.queue_full >= 80, "{up:?}");
    assert_eq!(received as u64, up.delivered);
    assert_eq!(up.delivered + up.queue_full, up.offered);
}

#[test]
fn loss_matches_its_model_and_every_packet_is_counted() {
    let ge = GilbertElliott::with_mean_loss(0.05, 4.0).unwrap();
    for (name, loss) in [
        ("bernoulli 5 %", LossModel::Bernoulli { p: 0.05 }),
        (
            "gilbert-elliott 5 %, bursts of 4",
            LossModel::GilbertElliott(ge),
        ),
    ] {
        let emulator = start(LinkConfig::with_delay(Duration::from_millis(1)).loss(loss));
        let sink = sink(&emulator, Duration::from_millis(500));
        let count = 10_000;
        blast(&emulator, count, 200, Duration::from_micros(100));
        let (received, _) = sink.join().unwrap();
        let (up, _) = emulator.counters();
        assert_eq!(up.written, up.link.delivered, "{name}: {up:?}");
        // Exact: every datagram sent reached the link or was counted
        // where it was dropped before it, and what the link carried
        // arrived, and nothing else.
        assert_eq!(
            up.link.offered + up.not_read.expect("the TUN device's drop count"),
            count as u64,
            "{name}: {up:?}"
        );
        let up = up.link;
        assert_eq!(received as u64, up.delivered, "{name}: {up:?}");
        assert_eq!(up.delivered + up.lost, up.offered, "{name}: {up:?}");
        let share = up.lost as f64 / up.offered as f64;
        eprintln!("{name}: {share:.4} lost");
        assert!((0.035..0.065).contains(&share), "{name}: {share}");
    }
}

/// What the forwarder sustains: one TCP transfer across a path with no
/// bottleneck, limited by the forwarder alone, and the CPU time it spends
/// per packet (printed, not asserted).
#[test]
fn the_forwarding_rate_without_a_bottleneck() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    const BYTES: usize = 64 << 20;
    let emulator = start(LinkConfig::with_delay(Duration::ZERO));
    let listener = emulator
        .server
        .run(|| TcpListener::bind((SERVER, PORT)).unwrap());
    let reader = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = vec![0; 1 << 16];
        let mut total = 0;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        total
    });
    let elapsed = emulator.client.run(|| {
        let start = Instant::now();
        let mut stream = TcpStream::connect((SERVER, PORT)).unwrap();
        let block = vec![7; 1 << 16];
        for _ in 0..BYTES / block.len() {
            stream.write_all(&block).unwrap();
        }
        drop(stream);
        start
    });
    assert_eq!(reader.join().unwrap(), BYTES);
    let secs = elapsed.elapsed().as_secs_f64();
    let (up, down) = emulator.counters();
    let packets = up.written + down.written;
    let cpu = emulator.forwarder_cpu();
    eprintln!(
        "one TCP transfer of {} MiB: {:.0} Mbit/s of payload; {} packets up, {} down, \
         {} refused, {} not read in time; forwarder CPU {:.1} µs per packet",
        BYTES >> 20,
        BYTES as f64 * 8.0 / secs / 1e6,
        up.written,
        down.written,
        up.write_failed + down.write_failed,
        emulator.not_read().expect("the TUN devices' drop counts"),
        cpu.as_secs_f64() * 1e6 / packets as f64,
    );
}
