// A stock go-libp2p node for onetrip's interoperability tests and its
// real-socket round-trip cross-check: the Go counterpart of
// tests/js-peer/peer.mjs, driven the same way.
//
// It listens on the addresses given as arguments (TCP and QUIC), secures TCP
// connections with Noise or TLS (`--security=noise|tls`: the one it proposes
// first when it dials; it answers both), multiplexes with yamux, and serves
// `/perf/1.0.0` (libp2p specs: perf/perf.md), ping and identify, all as
// go-libp2p sets them up by default. It takes commands as JSON lines on
// stdin, answers and reports events as JSON lines on stdout, and exits when
// stdin closes.
//
// Commands, each with an `id` echoed in its answer:
//
//	{"op":"perf","addr":A,"upload":N,"download":N,"optimistic":B,"streams":K}
//	    dial A (a new connection each time), then K (default 1) perf runs at
//	    once on that connection, each on its own stream; answers the bytes
//	    each downloaded, each stream's protocol, the connection's muxer and
//	    security protocol
//	{"op":"ttfb","addr":A,"optimistic":B}
//	    dial A, open a ping stream, send 32 bytes; answers the milliseconds
//	    from before the dial to the first byte of the echo
//	{"op":"probe","addr":A}
//	    dial A, ping (the error, if refused, is the answer's "ping"), then
//	    run perf with 100 bytes each way on the same connection
//
// Streams are opened with go-libp2p's host.NewStream, which waits for the
// connection's Identify exchange and then proposes the protocol lazily
// (optimistically) if the peer store says the peer speaks it, and
// negotiates it interactively otherwise. `"optimistic": true` writes the
// protocol into the peer store before the dial, as an earlier Identify of
// that peer would have.
//
// Events: {"event":"listening",...}; {"event":"secured",...} once per
// TCP connection, with its direction, security protocol, muxer, and the muxer
// chosen inside the security handshake (Noise extensions or TLS ALPN; null
// if none); {"event":"perf-served",...} per perf request served,
// {"event":"perf-error",...} per one that failed.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"
)

// libp2p specs: perf/perf.md.
const perfID = protocol.ID("/perf/1.0.0")

const (
	block = 64 * 1024
	// Every command ends by then.
	commandTimeout = 60 * time.Second
)

var out = struct {
	sync.Mutex
	*json.Encoder
}{Encoder: json.NewEncoder(os.Stdout)}

func emit(object map[string]any) {
	out.Lock()
	defer out.Unlock()
	if err := out.Encode(object); err != nil {
		fmt.Fprintln(os.Stderr, "go-peer: writing stdout:", err)
		os.Exit(1)
	}
}

func orNull(id protocol.ID) any {
	if id == "" {
		return nil
	}
	return string(id)
}

// Reports each connection's security handshake once it is up.
func reportConnections(h host.Host) {
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			state := c.ConnState()
			if state.Security == "" {
				// QUIC: TLS is part of the transport, no security handshake.
				return
			}
			var early any
			if state.UsedEarlyMuxerNegotiation {
				early = string(state.StreamMultiplexer)
			}
			emit(map[string]any{
				"event":       "secured",
				"direction":   c.Stat().Direction.String(),
				"transport":   state.Transport,
				"encryption":  orNull(state.Security),
				"muxer":       orNull(state.StreamMultiplexer),
				"early_muxer": early,
				"remote_peer": c.RemotePeer().String(),
			})
		},
	})
}

// The perf server: read the 8-byte header, drain the upload to its end,
// then send what was asked and close.
func servePerf(s network.Stream) {
	defer s.Close()
	var header [8]byte
	if _, err := io.ReadFull(s, header[:]); err != nil {
		perfError(s, fmt.Errorf("perf header: %w", err))
		return
	}
	uploaded, err := io.Copy(io.Discard, s)
	if err != nil {
		perfError(s, fmt.Errorf("perf upload: %w", err))
		return
	}
	download := binary.BigEndian.Uint64(header[:])
	emit(map[string]any{"event": "perf-served", "uploaded": uploaded, "download": download})
	if err := sendZeros(s, download); err != nil {
		perfError(s, fmt.Errorf("perf download: %w", err))
	}
}

func perfError(s network.Stream, err error) {
	emit(map[string]any{"event": "perf-error", "error": err.Error()})
	s.Reset()
}

func sendZeros(w io.Writer, count uint64) error {
	zeros := make([]byte, block)
	for count > 0 {
		n := min(count, block)
		if _, err := w.Write(zeros[:n]); err != nil {
			return err
		}
		count -= n
	}
	return nil
}

// The perf client: header and upload, close the write side, count the
// download to its end; the stream's protocol, as negotiated.
func perfClient(ctx context.Context, h host.Host, p peer.ID, upload, download uint64) (int64, protocol.ID, error) {
	s, err := h.NewStream(ctx, p, perfID)
	if err != nil {
		return 0, "", err
	}
	defer s.Close()
	var header [8]byte
	binary.BigEndian.PutUint64(header[:], download)
	if _, err := s.Write(header[:]); err != nil {
		return 0, "", err
	}
	if err := sendZeros(s, upload); err != nil {
		return 0, "", err
	}
	if err := s.CloseWrite(); err != nil {
		return 0, "", err
	}
	downloaded, err := io.Copy(io.Discard, s)
	return downloaded, s.Protocol(), err
}

type command struct {
	ID         json.RawMessage `json:"id"`
	Op         string          `json:"op"`
	Addr       string          `json:"addr"`
	Upload     uint64          `json:"upload"`
	Download   uint64          `json:"download"`
	Optimistic bool            `json:"optimistic"`
	Streams    int             `json:"streams"`
}

// Dials the peer of c.Addr on a new connection, at that address only.
func dial(ctx context.Context, h host.Host, c *command, protocols ...protocol.ID) (network.Conn, error) {
	addr, err := multiaddr.NewMultiaddr(c.Addr)
	if err != nil {
		return nil, err
	}
	info, err := peer.AddrInfoFromP2pAddr(addr)
	if err != nil {
		return nil, err
	}
	if err := h.Network().ClosePeer(info.ID); err != nil {
		return nil, err
	}
	h.Peerstore().ClearAddrs(info.ID)
	h.Peerstore().AddAddrs(info.ID, info.Addrs, peerstore.PermanentAddrTTL)
	if err := h.Peerstore().RemoveProtocols(info.ID, protocols...); err != nil {
		return nil, err
	}
	if c.Optimistic {
		if err := h.Peerstore().AddProtocols(info.ID, protocols...); err != nil {
			return nil, err
		}
	}
	conn, err := h.Network().DialPeer(network.WithForceDirectDial(ctx, "a new connection"), info.ID)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

func run(h host.Host, c *command) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	switch c.Op {
	case "perf":
		conn, err := dial(ctx, h, c, perfID)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		streams := max(c.Streams, 1)
		downloaded := make([]int64, streams)
		protocols := make([]protocol.ID, streams)
		errs := make([]error, streams)
		var wg sync.WaitGroup
		for i := range streams {
			wg.Go(func() {
				downloaded[i], protocols[i], errs[i] = perfClient(ctx, h, conn.RemotePeer(), c.Upload, c.Download)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		state := conn.ConnState()
		return map[string]any{
			"downloaded": downloaded,
			"protocols":  protocols,
			"muxer":      orNull(state.StreamMultiplexer),
			"encryption": orNull(state.Security),
		}, nil
	case "ttfb":
		start := time.Now()
		conn, err := dial(ctx, h, c, ping.ID)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		s, err := h.NewStream(ctx, conn.RemotePeer(), ping.ID)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		payload := make([]byte, ping.PingSize)
		if _, err := s.Write(payload); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(s, payload[:1]); err != nil {
			return nil, err
		}
		millis := float64(time.Since(start).Microseconds()) / 1e3
		return map[string]any{"millis": millis}, nil
	case "probe":
		conn, err := dial(ctx, h, c, ping.ID, perfID)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		var pinged any = "ok"
		if result := <-ping.Ping(ctx, h, conn.RemotePeer()); result.Error != nil {
			pinged = result.Error.Error()
		}
		downloaded, _, err := perfClient(ctx, h, conn.RemotePeer(), 100, 100)
		if err != nil {
			return nil, err
		}
		return map[string]any{"ping": pinged, "downloaded": downloaded}, nil
	default:
		return nil, fmt.Errorf("unknown op %q", c.Op)
	}
}

func main() {
	security := flag.String("security", "noise", "the security protocol proposed first on TCP dials: noise or tls")
	flag.Parse()

	securities := []libp2p.Option{
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
	}
	switch *security {
	case "noise":
	case "tls":
		securities[0], securities[1] = securities[1], securities[0]
	default:
		fmt.Fprintf(os.Stderr, "go-peer: --security must be noise or tls, not %q\n", *security)
		os.Exit(2)
	}
	options := append(securities,
		libp2p.ListenAddrStrings(flag.Args()...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	h, err := libp2p.New(options...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-peer: cannot start the host:", err)
		os.Exit(1)
	}
	reportConnections(h)
	h.SetStreamHandler(perfID, servePerf)

	addrs := make([]string, 0, len(h.Addrs()))
	for _, addr := range h.Addrs() {
		addrs = append(addrs, addr.String())
	}
	emit(map[string]any{"event": "listening", "peer_id": h.ID().String(), "addrs": addrs})

	var running sync.WaitGroup
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		if len(lines.Bytes()) == 0 {
			continue
		}
		c := new(command)
		if err := json.Unmarshal(lines.Bytes(), c); err != nil {
			emit(map[string]any{"id": nil, "error": fmt.Sprintf("bad command: %v", err)})
			continue
		}
		running.Go(func() {
			result, err := run(h, c)
			if err != nil {
				emit(map[string]any{"id": c.ID, "error": err.Error()})
				return
			}
			emit(map[string]any{"id": c.ID, "ok": result})
		})
	}
	running.Wait()
	h.Close()
}
