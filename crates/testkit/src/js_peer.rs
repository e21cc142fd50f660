//! A stock js-libp2p 3 node (`tests/js-peer`), driven by JSON lines: the
//! real peer of the js-libp2p interoperability tests and of the
//! real-socket round-trip cross-check.
//!
//! The node runs on the Node.js 22 its package pins; it is installed with
//! `npm ci --prefix tests/js-peer`. Every wait is bounded: a peer that hangs
//! fails the caller with a message instead of stalling it.

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

/// The connection encrypter the node proposes when it dials over TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// `/noise` (@chainsafe/libp2p-noise).
    Noise,
    /// `/tls/1.0.0` (@libp2p/tls: the muxer in ALPN).
    Tls,
}

/// The js-libp2p node, driven by JSON lines.
pub struct JsPeer {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// The node's peer id.
    pub peer_id: PeerId,
    /// Its TCP listening address, with `/p2p`.
    pub tcp: Multiaddr,
    /// Its QUIC listening address, with `/p2p`.
    pub quic: Multiaddr,
    /// Events read while waiting for an answer.
    events: VecDeque<Value>,
}

impl JsPeer {
    /// Starts the node, listening on loopback TCP and QUIC; it proposes
    /// Noise when it dials over TCP.
    ///
    /// # Panics
    /// If the node is not installed, or does not start.
    pub async fn start(handler: PerfHandler) -> JsPeer {
        Self::start_proposing(handler, Encryption::Noise).await
    }

    /// Starts the node, proposing `encryption` when it dials over TCP (it
    /// answers both).
    ///
    /// # Panics
    /// If the node is not installed, or does not start.
    pub async fn start_proposing(handler: PerfHandler, encryption: Encryption) -> JsPeer {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/js-peer");
        let node = dir.join("node_modules/.bin/node");
        assert!(
            node.exists(),
            "the js-libp2p peer is not installed ({} is missing): run `npm ci --prefix tests/js-peer`",
            node.display()
        );
        let handler = match handler {
            PerfHandler::Stock => "--perf-handler=stock",
            PerfHandler::Checked => "--perf-handler=checked",
        };
        let security = match encryption {
            Encryption::Noise => "--security=noise",
            Encryption::Tls => "--security=tls",
        };
        let mut child = Command::new(node)
            .arg(dir.join("peer.mjs"))
            .args([
                handler,
                security,
                "/ip4/127.0.0.1/tcp/0",
                "/ip4/127.0.0.1/udp/0/quic-v1",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the js-libp2p peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut peer = JsPeer {
            child,
            stdin,
            stdout,
            peer_id: PeerId::random(),
            tcp: Multiaddr::empty(),
            quic: Multiaddr::empty(),
            events: VecDeque::new(),
        };
        let listening = bounded("the js peer's start", peer.next_line()).await;
        assert_eq!(listening["event"], "listening", "{listening}");
        peer.peer_id = listening["peer_id"].as_str().unwrap().parse().unwrap();
        let addrs: Vec<Multiaddr> = listening["addrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().parse().unwrap())
            .collect();
        let find = |kind: &str| {
            addrs
                .iter()
                .find(|a| a.to_string().contains(kind))
                .unwrap_or_else(|| panic!("the js peer does not listen on {kind}: {addrs:?}"))
                .clone()
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
            .expect("reading the js peer")
            .expect("the js peer exited");
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
        let answer = bounded(&format!("js command {command}"), async {
            loop {
                let value = self.next_line().await;
                if value["id"] == id {
                    return value;
                }
                self.events.push_back(value);
            }
        })
        .await;
        if let Some(err) = answer.get("error") {
            panic!(
                "js command {command} failed: {}",
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
        bounded(&format!("{want} js {kind} events"), async {
            while seen(&self.events) < want {
                let value = self.next_line().await;
                self.events.push_back(value);
            }
        })
        .await;
        let (matching, rest) = self.events.drain(..).partition(|e| e["event"] == kind);
        self.events = rest;
        matching.into()
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
