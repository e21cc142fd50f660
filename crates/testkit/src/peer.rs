//! Stock libp2p nodes of other implementations, js-libp2p 3
//! (`tests/js-peer`) and go-libp2p (`tests/go-peer`), driven by JSON lines:
//! the real peers of the interoperability tests and of the real-socket
//! round-trip cross-check.
//!
//! Every wait is bounded: a peer that hangs fails the caller with a message
//! instead of stalling it.

use std::{
    collections::VecDeque,
    path::PathBuf,
    process::Stdio,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

/// Every wait on the node ends by then.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Awaits `future`, panicking with `what` after [`DEADLINE`].
pub async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {DEADLINE:?}"))
}

/// How the js node's perf handler reads a request (see `servePerf` in
/// `tests/js-peer/peer.mjs` and spec/multistream-select.md).
#[derive(Debug, Clone, Copy)]
pub enum PerfHandler {
    /// As js-libp2p's own perf service: iterating the stream.
    Stock,
    /// Through `byteStream`, which sees an end of stream that arrived
    /// before the handler ran.
    Checked,
}

/// The connection encrypter a node proposes (first) when it dials over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// `/noise` (@chainsafe/libp2p-noise).
    Noise,
    /// `/tls/1.0.0` (@libp2p/tls: the muxer in ALPN).
    Tls,
}

/// A libp2p implementation the tests run as a real peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// js-libp2p 3 (`tests/js-peer/peer.mjs`, on the Node.js 22 its
    /// package pins), installed with `npm ci --prefix tests/js-peer`.
    Js,
    /// go-libp2p (`tests/go-peer`, a Go module), built with
    /// `go build -C tests/go-peer -o go-peer .`.
    Go,
}

impl Implementation {
    /// The program to run and its first arguments, or why it cannot run.
    fn program(self) -> (PathBuf, Vec<String>) {
        let tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests");
        let (program, args, install) = match self {
            Implementation::Js => {
                let dir = tests.join("js-peer");
                let script = dir.join("peer.mjs").display().to_string();
                (
                    dir.join("node_modules/.bin/node"),
                    vec![script],
                    "npm ci --prefix tests/js-peer",
                )
            }
            Implementation::Go => (
                tests.join("go-peer/go-peer"),
                vec![],
                "go build -C tests/go-peer -o go-peer .",
            ),
        };
        assert!(
            program.exists(),
            "the {self:?} libp2p peer is not installed ({} is missing): run `{install}`",
            program.display()
        );
        (program, args)
    }
}

/// A stock libp2p node in a child process, driven by JSON lines: the same
/// commands and events for every [`Implementation`] (see
/// `tests/js-peer/peer.mjs` and `tests/go-peer/main.go`).
pub struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Which implementation runs.
    pub implementation: Implementation,
    /// The node's peer id.
    pub peer_id: PeerId,
    /// Its TCP listening address, with `/p2p`.
    pub tcp: Multiaddr,
    /// Its QUIC listening address, with `/p2p`.
    pub quic: Multiaddr,
    /// Events read while waiting for an answer.
    events: VecDeque<Value>,
}

impl Peer {
    /// Starts the js-libp2p node, listening on loopback TCP and QUIC,
    /// proposing `encryption` when it dials over TCP (it answers both).
    ///
    /// # Panics
    /// If the node is not installed, or does not start.
    pub async fn js(handler: PerfHandler, encryption: Encryption) -> Peer {
        let handler = match handler {
            PerfHandler::Stock => "--perf-handler=stock",
            PerfHandler::Checked => "--perf-handler=checked",
        };
        Self::start(Implementation::Js, encryption, &[handler]).await
    }

    /// Starts the go-libp2p node, listening on loopback TCP and QUIC,
    /// proposing `encryption` first when it dials over TCP (it answers
    /// both).
    ///
    /// # Panics
    /// If the node is not built, or does not start.
    pub async fn go(encryption: Encryption) -> Peer {
        Self::start(Implementation::Go, encryption, &[]).await
    }

    async fn start(implementation: Implementation, encryption: Encryption, extra: &[&str]) -> Peer {
        let (program, args) = implementation.program();
        let security = match encryption {
            Encryption::Noise => "--security=noise",
            Encryption::Tls => "--security=tls",
        };
        let mut child = Command::new(program)
            .args(args)
            .args(extra)
            .args([
                security,
                "/ip4/127.0.0.1/tcp/0",
                "/ip4/127.0.0.1/udp/0/quic-v1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start the {implementation:?} libp2p peer: {err}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            implementation,
            peer_id: PeerId::random(),
            tcp: Multiaddr::empty(),
            quic: Multiaddr::empty(),
            events: VecDeque::new(),
        };
        let listening = bounded("the peer's start", peer.next_line()).await;
        assert_eq!(listening["event"], "listening", "{listening}");
        peer.peer_id = listening["peer_id"].as_str().unwrap().parse().unwrap();
        let with_id = multiaddr::Protocol::P2p(peer.peer_id);
        let addrs: Vec<Multiaddr> = listening["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().parse().unwrap())
            .collect();
        let find = |kind: &str| {
            let addr = addrs
                .iter()
                .find(|a| a.to_string().contains(kind))
                .unwrap_or_else(|| {
                    panic!("the {implementation:?} peer does not listen on {kind}: {addrs:?}")
                })
                .clone();
            if addr
                .iter()
                .any(|p| matches!(p, multiaddr::Protocol::P2p(_)))
            {
                addr
            } else {
                addr.with(with_id.clone())
            }
        };
        peer.tcp = find("/tcp/");
        peer.quic = find("/quic-v1");
        peer
    }

    async fn next_line(&mut self) -> Value {
        let line = self
            .stdout
            .next_line()
            .await
            .expect("reading the peer")
            .expect("the peer exited");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line}"))
    }

    /// Runs a command (see `tests/js-peer/peer.mjs`) and returns its
    /// result; events seen meanwhile are kept for [`JsPeer::events_of`].
    ///
    /// # Panics
    /// If the command fails or the node does not answer in time.
    pub async fn call(&mut self, mut command: Value) -> Value {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        command["id"] = id.into();
        let line = format!("{command}\n");
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        let answer = bounded(
            &format!("{:?} command {command}", self.implementation),
            async {
                loop {
                    let value = self.next_line().await;
                    if value["id"] == id {
                        return value;
                    }
                    self.events.push_back(value);
                }
            },
        )
        .await;
        if let Some(err) = answer.get("error") {
            panic!(
                "{:?} command {command} failed: {}",
                self.implementation,
                err.as_str().unwrap_or_default()
            );
        }
        answer["ok"].clone()
    }

    /// Reads event lines until `want` of `kind` have been seen, and
    /// returns (and forgets) every event of that kind seen so far.
    ///
    /// # Panics
    /// If they do not come in time.
    pub async fn events_of(&mut self, kind: &str, want: usize) -> Vec<Value> {
        let seen = |events: &VecDeque<Value>| events.iter().filter(|e| e["event"] == kind).count();
        bounded(
            &format!("{want} {:?} {kind} events", self.implementation),
            async {
                while seen(&self.events) < want {
                    let value = self.next_line().await;
                    self.events.push_back(value);
                }
            },
        )
        .await;
        let (matching, rest) = self.events.drain(..).partition(|e| e["event"] == kind);
        self.events = rest;
        matching.into()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
