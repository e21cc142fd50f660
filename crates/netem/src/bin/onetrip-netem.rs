//! Runs a command on each side of an emulated path.
//!
//! ```text
//! onetrip-netem --rtt 63ms --rate 1gbit --queue 1mb --loss ge:0.05:4:1ms \
//!     -- server-command args… -- client-command args…
//! ```
//!
//! The server command runs in a network namespace at 10.77.0.1, the client
//! command in another at 10.77.0.2; every packet between them crosses the
//! path (see the `onetrip_netem` crate). When the client exits, the server
//! is stopped, and one JSON line reports what became of the packets each
//! way. Needs root.

use std::{process::Command, time::Duration};

use clap::Parser;
use onetrip_netem::{Emulator, LinkConfig, Path};
use onetrip_netsim::{DeliveryTrace, GilbertElliott, LossModel};

#[derive(Debug, Parser)]
#[command(about = "Runs a server and a client command across an emulated path")]
struct Opts {
    /// Round-trip time, split evenly between the two directions (`63ms`).
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    rtt: Duration,
    /// Bottleneck rate each way (`100mbit`, `1gbit`); none by default.
    #[arg(long, value_parser = parse_rate)]
    rate: Option<u64>,
    /// Bytes the queue before the bottleneck holds (`1mb`, `64kb`):
    /// drop-tail beyond.
    #[arg(long, value_parser = parse_bytes)]
    queue: Option<usize>,
    /// Loss each way: `bernoulli:P`, or `ge:MEAN:BURST[:STEP]`
    /// (Gilbert-Elliott with that mean loss and mean burst length, in
    /// packets; the chain also steps once per STEP without a packet,
    /// `1ms` by default, so that bursts end in time).
    #[arg(long, value_parser = parse_loss)]
    loss: Option<LossModel>,
    /// A Mahimahi delivery trace for the downlink (server to client): one
    /// millisecond timestamp per line, each an opportunity for one packet.
    #[arg(long)]
    down_trace: Option<std::path::PathBuf>,
    /// The same for the uplink.
    #[arg(long)]
    up_trace: Option<std::path::PathBuf>,
    /// The loss processes' seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `server-command… -- client-command…`
    #[arg(last = true, required = true)]
    commands: Vec<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = split_unit(text);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "us" => value / 1e6,
        "s" => value,
        _ => return Err(format!("a duration needs ms, us or s: {text}")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(text: &str) -> Result<u64, String> {
    let (number, unit) = split_unit(text);
    let value: f64 = number.parse().map_err(|_| format!("not a rate: {text}"))?;
    let scale = match unit {
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bit" => 1.0,
        _ => return Err(format!("a rate needs bit, kbit, mbit or gbit: {text}")),
    };
    Ok((value * scale) as u64)
}

fn parse_bytes(text: &str) -> Result<usize, String> {
    let (number, unit) = split_unit(text);
    let value: f64 = number.parse().map_err(|_| format!("not a size: {text}"))?;
    let scale = match unit {
        "b" | "" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        _ => return Err(format!("a size needs b, kb or mb: {text}")),
    };
    Ok((value * scale) as usize)
}

fn parse_loss(text: &str) -> Result<LossModel, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let number = |s: &str| s.parse::<f64>().map_err(|_| format!("not a number: {s}"));
    match parts.as_slice() {
        ["bernoulli", p] => Ok(LossModel::Bernoulli { p: number(p)? }),
        ["ge", mean, burst, step @ ..] if step.len() <= 1 => {
            let step = step
                .first()
                .map_or(Ok(Duration::from_millis(1)), |s| parse_duration(s))?;
            GilbertElliott::with_mean_loss(number(mean)?, number(burst)?)
                .map(|ge| LossModel::GilbertElliott(ge.with_step(step)))
                .map_err(|err| err.to_string())
        }
        _ => Err(format!(
            "loss is bernoulli:P or ge:MEAN:BURST[:STEP], not {text}"
        )),
    }
}

fn split_unit(text: &str) -> (&str, &str) {
    let at = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    (&text[..at], &text[at..])
}

fn trace(path: Option<&std::path::Path>) -> Result<Option<DeliveryTrace>, String> {
    path.map(|path| {
        let text =
            std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
        DeliveryTrace::parse(&text).map_err(|err| format!("{}: {err}", path.display()))
    })
    .transpose()
}

fn command(words: &[String]) -> Result<Command, String> {
    let (program, args) = words.split_first().ok_or("an empty command")?;
    let mut command = Command::new(program);
    command.args(args);
    Ok(command)
}

fn main() -> Result<(), String> {
    let opts = Opts::parse();
    let split = opts
        .commands
        .iter()
        .position(|word| word == "--")
        .ok_or("give both commands: server-command… -- client-command…")?;
    let (server, client) = (&opts.commands[..split], &opts.commands[split + 1..]);
    let mut link = LinkConfig::with_delay(opts.rtt / 2);
    link.bandwidth = opts.rate;
    link.queue = opts.queue;
    if let Some(loss) = opts.loss.clone() {
        link.loss = loss;
    }
    let mut path = Path::symmetric(link);
    path.seed = opts.seed;
    path.up.schedule = trace(opts.up_trace.as_deref())?;
    path.down.schedule = trace(opts.down_trace.as_deref())?;
    let emulator = Emulator::start(path).map_err(|err| err.to_string())?;
    let mut server = emulator
        .server
        .spawn(command(server)?)
        .map_err(|err| format!("the server command: {err}"))?;
    let status = emulator
        .client
        .spawn(command(client)?)
        .and_then(|mut client| client.wait())
        .map_err(|err| format!("the client command: {err}"))?;
    let _ = server.kill();
    let _ = server.wait();
    let (up, down) = emulator.counters();
    println!(
        "{{\"client_status\":{},\"up\":{},\"down\":{}}}",
        status.code().unwrap_or(-1),
        counters_json(up),
        counters_json(down)
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("the client command failed: {status}"))
    }
}

fn counters_json(c: onetrip_netem::Counters) -> String {
    let (link, written, write_failed) = (c.link, c.written, c.write_failed);
    let not_read = c.not_read.map_or("null".to_owned(), |n| n.to_string());
    format!(
        "{{\"not_read\":{not_read},\"offered\":{},\"delivered\":{},\"delivered_bytes\":{},\"lost\":{},\"too_big\":{},\"queue_full\":{},\"written\":{written},\"write_failed\":{write_failed}}}",
        link.offered,
        link.delivered,
        link.delivered_bytes,
        link.lost,
        link.too_big,
        link.queue_full
    )
}
