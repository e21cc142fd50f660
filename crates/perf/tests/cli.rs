//! The `onetrip-perf` binary as test-plans' runner drives it: a server on
//! loopback, clients over TCP and QUIC printing JSON lines, and clear
//! refusals of bad command lines.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const BIN: &str = env!("CARGO_BIN_EXE_onetrip-perf");

/// A hang fails the test instead of stalling CI.
const DEADLINE: Duration = Duration::from_secs(60);

/// Starts a server on a free loopback port; the child and the port.
async fn start_server() -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["--run-server", "--server-address", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("/tcp/").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                return digits.parse::<u16>().unwrap();
            }
        }
        panic!("the server exited without listening");
    })
    .await
    .expect("the server did not start");
    // Keep draining its logs so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

async fn run(args: &[&str]) -> std::process::Output {
    tokio::time::timeout(DEADLINE, Command::new(BIN).args(args).output())
        .await
        .expect("the client did not finish")
        .unwrap()
}

/// The JSON lines of a client's stdout, each checked for the fields
/// test-plans reads.
fn reports(stdout: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    for line in &lines {
        let kind = line["type"].as_str().unwrap();
        assert!(kind == "intermediary" || kind == "final", "{line}");
        assert!(line["timeSeconds"].as_f64().unwrap() >= 0.0, "{line}");
        assert!(line["uploadBytes"].is_u64(), "{line}");
        assert!(line["downloadBytes"].is_u64(), "{line}");
    }
    assert_eq!(lines.last().unwrap()["type"], "final");
    lines
}

#[tokio::test]
async fn clients_over_tcp_and_quic_report_exact_totals() {
    let (_server, port) = start_server().await;
    let address = format!("127.0.0.1:{port}");
    for (transport, layering) in [
        ("tcp", None),
        ("tcp", Some("tcp-classic")),
        ("quic-v1", None),
        ("quic-v1", Some("quic")),
    ] {
        let mut args = vec![
            "--server-address",
            &address,
            "--transport",
            transport,
            "--upload-bytes",
            "123456",
            "--download-bytes",
            "2000000",
        ];
        if let Some(layering) = layering {
            args.extend(["--layering", layering]);
        }
        let output = run(&args).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = reports(&output.stdout);
        let last = lines.last().unwrap();
        assert_eq!(last["uploadBytes"], 123456, "{transport} {layering:?}");
        assert_eq!(last["downloadBytes"], 2000000, "{transport} {layering:?}");
        // Intermediary lines cover disjoint seconds: never more than the total.
        let up: u64 = lines
            .iter()
            .filter(|l| l["type"] == "intermediary")
            .map(|l| l["uploadBytes"].as_u64().unwrap())
            .sum();
        assert!(up <= 123456);
    }
}

#[tokio::test]
async fn the_scenarios_print_rates_and_percentiles() {
    let (_server, port) = start_server().await;
    let address = format!("127.0.0.1:{port}");
    for mode in ["latency", "streams", "connections"] {
        let output = run(&[
            "--server-address",
            &address,
            "--transport",
            "quic-v1",
            "--mode",
            mode,
            "--iterations",
            "20",
        ])
        .await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = reports(&output.stdout);
        let last = lines.last().unwrap();
        assert_eq!(last["iterations"], 20, "{mode}");
        assert!(last["perSecond"].as_f64().unwrap() > 0.0, "{mode}");
        assert!(
            last["latency"]["p99"].as_f64().unwrap() >= last["latency"]["p50"].as_f64().unwrap()
        );
    }
}

#[tokio::test]
async fn bad_command_lines_fail_clearly() {
    let cases: [(&[&str], &str); 6] = [
        (&["--transport", "tcp"], "--server-address"),
        (
            &[
                "--server-address",
                "127.0.0.1:1",
                "--transport",
                "udp",
                "--upload-bytes",
                "1",
                "--download-bytes",
                "1",
            ],
            "udp",
        ),
        (
            &[
                "--server-address",
                "127.0.0.1:1",
                "--upload-bytes",
                "1",
                "--download-bytes",
                "1",
            ],
            "--transport",
        ),
        (
            &["--server-address", "127.0.0.1:1", "--transport", "tcp"],
            "--upload-bytes",
        ),
        (
            &[
                "--server-address",
                "127.0.0.1:1",
                "--transport",
                "quic-v1",
                "--layering",
                "tcp-onetrip",
                "--upload-bytes",
                "1",
                "--download-bytes",
                "1",
            ],
            "tcp-onetrip",
        ),
        (
            &[
                "--server-address",
                "127.0.0.1:1",
                "--transport",
                "tcp",
                "--layering",
                "tcp-fast",
                "--upload-bytes",
                "1",
                "--download-bytes",
                "1",
            ],
            "tcp-fast",
        ),
    ];
    for (args, mentions) in cases {
        let output = run(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(mentions), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    // A server that cannot be reached is a failure, not a hang or a panic.
    let output = run(&[
        "--server-address",
        "127.0.0.1:1",
        "--transport",
        "tcp",
        "--upload-bytes",
        "1",
        "--download-bytes",
        "1",
    ])
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("error"));
}
