//! Bursty against uniform loss on the real kernel: onetrip over TCP (Noise,
//! TLS) and QUIC across the TUN emulator at RTT 63 ms and 100 Mbit/s, with
//! no loss, then 1 % and 5 % mean loss, Bernoulli against Gilbert-Elliott
//! (mean bursts of 4 packets, the chain stepping every millisecond) with
//! the same mean. Time to first byte (a dial and a ping on a fresh stream,
//! the median of five) and goodput (a download on one stream), each stack
//! under BBR and under CUBIC (the kernel's for TCP, quinn's for QUIC).
//!
//! Then a replay of a cellular downlink: a synthetic delivery trace (see
//! [`cellular_trace`] for the method) in the Mahimahi format, the uplink at
//! 10 Mbit/s.
//!
//! `cargo run --release -p onetrip-bench --bin loss [-- --bytes N]` prints
//! the table and writes `spec/loss.md` and `spec/loss.svg`. Needs root: it
//! also adds BBR and CUBIC to the host's
//! `net.ipv4.tcp_allowed_congestion_control` while it runs (a namespace may
//! choose only an allowed controller), and puts the list back.

use std::{fmt::Write as _, path::PathBuf, time::Duration};

use onetrip_bench::emulated::{
    BoxError, Servers, Stack, Way, bottleneck, median, real_runs, real_ttfb, start_servers,
};
use onetrip_netem::{Emulator, Path};
use onetrip_netsim::{DeliveryTrace, GilbertElliott, LinkConfig, LossModel};
use onetrip_stack::Congestion;

const RTT: Duration = Duration::from_millis(63);
const RATE: u64 = 100_000_000;
/// A download of this size per cell by default.
const BYTES: u64 = 4_000_000;
const DIALS: usize = 5;

const STACKS: [Stack; 3] = [
    Stack::Onetrip("tcp-onetrip", None),
    Stack::Onetrip("tcp-tls-onetrip", None),
    Stack::Onetrip("quic-optimistic", None),
];

/// The congestion controllers each stack runs under, one emulator each:
/// the kernel's for TCP (`net.ipv4.tcp_congestion_control` in both
/// namespaces), quinn's for QUIC (the onetrip server's, which sends the
/// downloads). TCP against QUIC compares transports only under the same
/// controller: BBR does not take a loss for congestion, CUBIC does.
const CONTROLLERS: [Controller; 2] = [Controller::Bbr, Controller::Cubic];

#[derive(Debug, Clone, Copy)]
enum Controller {
    Bbr,
    Cubic,
}

impl Controller {
    fn name(self) -> &'static str {
        match self {
            Controller::Bbr => "BBR",
            Controller::Cubic => "CUBIC",
        }
    }

    /// The kernel's name for it.
    fn kernel(self) -> &'static str {
        match self {
            Controller::Bbr => "bbr",
            Controller::Cubic => "cubic",
        }
    }

    fn quic(self) -> Congestion {
        match self {
            Controller::Bbr => Congestion::Bbr,
            Controller::Cubic => Congestion::Cubic,
        }
    }
}

/// The host's `net.ipv4.tcp_allowed_congestion_control`, with the
/// [`CONTROLLERS`] added for as long as this lives. A network namespace
/// may make only an allowed controller its default, and the list is the
/// host's alone; the previous list is written back on drop.
struct AllowedControllers {
    previous: String,
}

const ALLOWED: &str = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";

impl AllowedControllers {
    fn allow() -> std::io::Result<Self> {
        let previous = std::fs::read_to_string(ALLOWED)?.trim().to_owned();
        let mut allowed: Vec<&str> = previous.split_whitespace().collect();
        for controller in CONTROLLERS {
            if !allowed.contains(&controller.kernel()) {
                allowed.push(controller.kernel());
            }
        }
        std::fs::write(ALLOWED, allowed.join(" "))?;
        Ok(AllowedControllers { previous })
    }
}

impl Drop for AllowedControllers {
    fn drop(&mut self) {
        if let Err(err) = std::fs::write(ALLOWED, &self.previous) {
            eprintln!("could not restore {ALLOWED} to {:?}: {err}", self.previous);
        }
    }
}

/// What one row measures, in the table's order: every stack under each
/// controller in turn.
fn runs() -> impl Iterator<Item = (Controller, Stack)> {
    CONTROLLERS
        .into_iter()
        .flat_map(|controller| STACKS.into_iter().map(move |stack| (controller, stack)))
}

/// How the table and the plot name a run.
fn run_name(controller: Controller, stack: Stack) -> String {
    format!("{}, {}", stack.name(), controller.name())
}

/// The paths, by name: the loss models at the bottleneck, then the
/// cellular replay.
fn paths() -> Result<Vec<(&'static str, Path)>, BoxError> {
    let lossy = |loss: LossModel| Path::symmetric(bottleneck(RATE, RTT).loss(loss));
    let ge = |mean| -> Result<LossModel, BoxError> {
        Ok(LossModel::GilbertElliott(
            GilbertElliott::with_mean_loss(mean, 4.0)?.with_step(Duration::from_millis(1)),
        ))
    };
    let mut cellular = Path::symmetric(LinkConfig::with_delay(RTT / 2).bandwidth(10_000_000));
    cellular.down.schedule = Some(DeliveryTrace::parse(&cellular_trace(7))?);
    Ok(vec![
        ("none", lossy(LossModel::None)),
        ("Bernoulli 1 %", lossy(LossModel::Bernoulli { p: 0.01 })),
        ("Gilbert-Elliott 1 %", lossy(ge(0.01)?)),
        ("Bernoulli 5 %", lossy(LossModel::Bernoulli { p: 0.05 })),
        ("Gilbert-Elliott 5 %", lossy(ge(0.05)?)),
        ("cellular replay", cellular),
    ])
}

/// A synthetic cellular downlink, 60 s, in the Mahimahi format (one line
/// per delivery opportunity of one packet of up to 1,500 bytes, in
/// milliseconds). Method: the rate is redrawn every 100 ms as a reflected
/// random walk between 1 and 40 Mbit/s (steps uniform in ±6 Mbit/s,
/// starting at 20), with an outage (no opportunity) of 300 ms starting in
/// 2 % of the 100 ms intervals, as handovers and fades do; within an
/// interval opportunities are spread evenly. The draws come from a
/// xorshift64 stream seeded with `seed`, so the trace is the same on every
/// run.
fn cellular_trace(seed: u64) -> String {
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut rate, mut outage, mut credit) = (20.0_f64, 0u64, 0.0_f64);
    let mut out = String::new();
    for ms in 0..60_000u64 {
        if ms % 100 == 0 {
            rate = (rate + (next() - 0.5) * 12.0).clamp(1.0, 40.0);
            if outage == 0 && next() < 0.02 {
                outage = 300;
            }
        }
        if outage > 0 {
            outage -= 1;
            continue;
        }
        // Packets of 1,500 bytes per millisecond at `rate` Mbit/s.
        credit += rate * 1e3 / 8.0 / 1500.0;
        while credit >= 1.0 {
            let _ = writeln!(out, "{ms}");
            credit -= 1.0;
        }
    }
    out
}

/// One cell: the median TTFB and the goodput, or why not.
struct Cell {
    ttfb: Result<Duration, String>,
    goodput: Result<f64, String>,
}

/// The median TTFB of [`DIALS`] dials of `stack`, and the goodput of one
/// download of `bytes`.
fn measure(emulator: &Emulator, servers: &Servers, stack: Stack, bytes: u64) -> Cell {
    let mut ttfbs = Vec::new();
    let mut failed = None;
    for _ in 0..DIALS {
        match real_ttfb(emulator, servers, stack) {
            Ok(ttfb) => ttfbs.push(ttfb),
            Err(err) => failed = Some(err),
        }
    }
    ttfbs.sort();
    let ttfb = ttfbs
        .get(ttfbs.len() / 2)
        .copied()
        .ok_or_else(|| failed.unwrap_or_default());
    let goodput = real_runs(emulator, servers, stack, Way::Download, bytes, 1)
        .map(|runs| median(&runs).whole);
    Cell { ttfb, goodput }
}

fn main() -> Result<(), BoxError> {
    let mut bytes = BYTES;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--bytes" => bytes = args.next().ok_or("--bytes N")?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let paths = paths()?;
    let _allowed = AllowedControllers::allow().map_err(|err| {
        format!(
            "cannot allow the controllers in {ALLOWED} ({err}): this needs root, and the \
                 kernel's tcp_bbr module (modprobe tcp_bbr)"
        )
    })?;
    let mut cells: Vec<Vec<Cell>> = Vec::new();
    // Loss the models did not decide: packets a TUN device dropped before
    // the forwarder read them.
    let mut not_read = Some(0);
    for (name, path) in &paths {
        let mut row = Vec::new();
        for controller in CONTROLLERS {
            // A fresh emulator and servers for each controller.
            let emulator = Emulator::start(path.clone())?;
            for namespace in [&emulator.server, &emulator.client] {
                namespace.set_sysctl("net/ipv4/tcp_congestion_control", controller.kernel())?;
            }
            let servers = start_servers(&emulator, controller.quic());
            for stack in STACKS {
                let cell = measure(&emulator, &servers, stack, bytes);
                eprintln!(
                    "{name}, {}: ttfb {:?}, goodput {:?}",
                    run_name(controller, stack),
                    cell.ttfb,
                    cell.goodput
                );
                row.push(cell);
            }
            not_read = not_read.zip(emulator.not_read()).map(|(a, b)| a + b);
        }
        cells.push(row);
    }

    let mut out = String::new();
    let _ = write!(
        out,
        "# Bursty against uniform loss

<!-- Written by `cargo run --release -p onetrip-bench --bin loss`; do not edit. -->

onetrip on the real kernel across the TUN emulator (`onetrip-netem`) at RTT
{} ms and {} Mbit/s (a drop-tail queue of one bandwidth-delay product),
both ways lossy: Bernoulli loss against Gilbert-Elliott loss of the same
mean (bursts of 4 packets on average; the chain steps every millisecond,
see [netem.md](netem.md)); then a replay of a synthetic cellular downlink
(60 s, a random walk between 1 and 40 Mbit/s redrawn every 100 ms, 300 ms
outages in 2 % of the intervals: `cellular_trace` in
`benches/bin/loss.rs`; the uplink at 10 Mbit/s; no queue bound, as
Mahimahi's default). TTFB: from the dial to the first byte of the
answer to a ping on a fresh stream, the median of {DIALS} dials. Goodput: a
download of {} MB on one stream, from the request to the last byte. TCP is
the kernel's, QUIC is quinn's, each measured under BBR and under CUBIC
(the kernel's controller in both namespaces; quinn's on the onetrip
server, which sends the downloads): compare TCP with QUIC under the same
controller. BBR does not take a loss for congestion; CUBIC does, and its
goodput through random loss falls as 1/√p (about 2 Mbit/s at 1 % and RTT
63 ms, by Mathis' formula for 1,200-byte packets).

![goodput by loss model](loss.svg)

| loss | stack | TTFB | goodput |
|---|---|---|---|
",
        RTT.as_millis(),
        RATE / 1_000_000,
        bytes as f64 / 1e6,
    );
    for ((name, _), row) in paths.iter().zip(&cells) {
        for ((controller, stack), cell) in runs().zip(row) {
            let ttfb = match &cell.ttfb {
                Ok(t) => format!(
                    "{:.0} ms ({:.2} RTT)",
                    t.as_secs_f64() * 1e3,
                    t.as_secs_f64() / RTT.as_secs_f64()
                ),
                Err(err) => format!("— ({err})"),
            };
            let goodput = match &cell.goodput {
                Ok(bps) => format!("{:.1} Mbit/s", bps / 1e6),
                Err(err) => format!("— ({err})"),
            };
            let _ = writeln!(
                out,
                "| {name} | {} | {ttfb} | {goodput} |",
                run_name(controller, stack)
            );
        }
    }
    let _ = writeln!(
        out,
        "\nPackets a TUN device dropped before the forwarder read them (loss no model \
         decided), over all the runs: {}.",
        not_read.map_or("unknown".to_owned(), |n| n.to_string())
    );
    println!("{out}");
    let spec = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec");
    std::fs::write(spec.join("loss.md"), &out)?;
    std::fs::write(spec.join("loss.svg"), svg(&paths, &cells))?;
    println!("wrote {}", spec.join("loss.md").display());
    Ok(())
}

/// Goodput as grouped bars: one group per loss model, one bar per stack
/// and controller (CUBIC's in a lighter shade of the stack's colour).
fn svg(models: &[(&str, Path)], cells: &[Vec<Cell>]) -> String {
    const WIDTH: f64 = 860.0;
    const HEIGHT: f64 = 340.0;
    const LEFT: f64 = 60.0;
    const BOTTOM: f64 = 60.0;
    const TOP: f64 = 30.0;
    const COLOURS: [&str; 6] = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#aec7e8", "#ffbb78", "#98df8a",
    ];
    let bars = runs().count();
    let max = RATE as f64 / 1e6;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let group = (WIDTH - LEFT - 20.0) / models.len() as f64;
    let bar = group / (bars as f64 + 1.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="18" font-size="13">goodput, Mbit/s (RTT {} ms, {} Mbit/s bottleneck)</text>"#,
        RTT.as_millis(),
        RATE / 1_000_000
    );
    for tick in 0..=4 {
        let value = max * f64::from(tick) / 4.0;
        let y = TOP + plot_height * (1.0 - f64::from(tick) / 4.0);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{value:.0}</text>"##,
            WIDTH - 20.0,
            LEFT - 6.0,
            y + 4.0
        );
    }
    for (g, ((name, _), row)) in models.iter().zip(cells).enumerate() {
        let x0 = LEFT + group * g as f64 + bar / 2.0;
        for (s, cell) in row.iter().enumerate() {
            let mbit = cell.goodput.as_ref().map_or(0.0, |bps| bps / 1e6);
            let h = plot_height * (mbit / max).min(1.0);
            let x = x0 + bar * s as f64;
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{}"/>"#,
                TOP + plot_height - h,
                bar * 0.9,
                COLOURS[s % COLOURS.len()]
            );
        }
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{name}</text>"#,
            x0 + bar * bars as f64 / 2.0,
            HEIGHT - BOTTOM + 16.0
        );
    }
    for (s, (controller, stack)) in runs().enumerate() {
        // A line of the legend per controller.
        let x = LEFT + 260.0 * (s % STACKS.len()) as f64;
        let y = HEIGHT - 30.0 + 16.0 * (s / STACKS.len()) as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{y:.1}">{}</text>"#,
            y - 9.0,
            COLOURS[s % COLOURS.len()],
            x + 14.0,
            run_name(controller, stack).replace('`', "")
        );
    }
    out.push_str("</svg>\n");
    out
}
