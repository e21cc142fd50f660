// A stock js-libp2p node for onetrip's interoperability tests.
//
// It listens on the addresses given as arguments (TCP and QUIC), secures TCP
// connections with Noise or TLS (`--security=noise|tls`: the one it proposes
// when it dials; it answers both), serves `/perf/1.0.0` (libp2p specs:
// perf/perf.md; `--perf-handler=stock|checked` picks how the server reads,
// see servePerf), ping and identify, and takes
// commands as JSON lines on stdin; it answers and reports events as JSON
// lines on stdout, and exits when stdin closes. Logs (DEBUG=libp2p:*) go to
// stderr.
//
// Commands, each with an `id` echoed in its answer:
//   {"op":"perf","addr":A,"upload":N,"download":N,"optimistic":B,"streams":K}
//       dial A (a new connection each time), then K (default 1) perf runs at
//       once on that connection, each on its own stream; the stream protocol
//       is negotiated optimistically when B is true; answers the bytes each
//       downloaded, each stream's protocol, the connection's muxer and
//       encryption
//   {"op":"ttfb","addr":A,"optimistic":B}
//       dial A, open a ping stream (negotiated optimistically when B is
//       true), send 32 bytes; answers the milliseconds from before the dial
//       to the first byte of the echo
//   {"op":"probe","addr":A}
//       dial A, ping (the error, if refused, is the answer's "ping"), then
//       run perf with 100 bytes each way on the same connection
// Events: {"event":"listening",...}; {"event":"secured",...} once per
// connection with the encryption protocol and the muxer chosen inside the
// handshake, in Noise extensions or TLS ALPN (null if none);
// {"event":"perf-served",...} per perf request
// served, {"event":"perf-error",...} per one that failed.

// js-libp2p 3 needs Promise.withResolvers (Node.js >= 22); package.json pins
// a Node.js 22 binary from the npm registry to run this file with.
import { noise } from '@chainsafe/libp2p-noise'
import { quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { byteStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { createInterface } from 'node:readline'

const PERF = '/perf/1.0.0'
const PING = '/ipfs/ping/1.0.0'
const BLOCK = 64 * 1024

function emit (object) {
  process.stdout.write(JSON.stringify(object) + '\n')
}

// Wraps a connection encrypter to report what its handshake decided: the
// muxer js-libp2p takes from the Noise extensions or from TLS ALPN, if any.
function reported (factory) {
  return (components) => {
    const encrypter = factory(components)
    for (const [method, direction] of [['secureInbound', 'inbound'], ['secureOutbound', 'outbound']]) {
      const secure = encrypter[method].bind(encrypter)
      encrypter[method] = async (...args) => {
        const secured = await secure(...args)
        emit({
          event: 'secured',
          direction,
          encryption: encrypter.protocol,
          remote_peer: secured.remotePeer.toString(),
          early_muxer: secured.streamMuxer?.protocol ?? null
        })
        return secured
      }
    }
    return encrypter
  }
}

// The perf server: drain the upload to its end, then send what was asked.
// `stock` reads as js-libp2p's own perf service (@libp2p/perf 5) does, by
// iterating the stream; `checked` reads through @libp2p/utils' byteStream,
// which also sees an end of stream that came before the handler ran (the
// stream's iterator misses it, see spec/multistream-select.md).
async function servePerf (stream, handler) {
  let header = new Uint8Array(0)
  let uploaded = 0
  const take = (chunk) => {
    const bytes = chunk.subarray()
    const n = Math.min(8 - header.length, bytes.length)
    header = concat(header, bytes.subarray(0, n))
    uploaded += bytes.length - n
  }
  if (handler === 'checked') {
    const bytes = byteStream(stream)
    let chunk
    while ((chunk = await bytes.read()) != null) {
      take(chunk)
    }
    bytes.unwrap()
  } else {
    for await (const chunk of stream) {
      take(chunk)
    }
  }
  if (header.length < 8) {
    throw new Error(`perf: ${header.length} of 8 header bytes`)
  }
  const download = Number(new DataView(header.buffer, header.byteOffset).getBigUint64(0, false))
  emit({ event: 'perf-served', uploaded, download })
  await sendZeros(stream, download)
  await stream.close()
}

async function sendZeros (stream, count) {
  const block = new Uint8Array(BLOCK)
  while (count > 0) {
    const n = Math.min(count, BLOCK)
    count -= n
    if (!stream.send(block.subarray(0, n))) {
      await stream.onDrain()
    }
  }
}

function concat (a, b) {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

// The perf client: header and upload, close the write side, count the
// download to its end; the stream's protocol, as negotiated.
async function perfClient (connection, upload, download, optimistic) {
  const stream = await connection.newStream(PERF, { negotiateFully: !optimistic })
  const header = new Uint8Array(8)
  new DataView(header.buffer).setBigUint64(0, BigInt(download), false)
  if (!stream.send(header)) {
    await stream.onDrain()
  }
  await sendZeros(stream, upload)
  await stream.close()
  let downloaded = 0
  for await (const chunk of stream) {
    downloaded += chunk.byteLength
  }
  return { downloaded, protocol: stream.protocol }
}

const options = Object.fromEntries(process.argv.slice(2)
  .filter((arg) => arg.startsWith('--'))
  .map((arg) => arg.slice(2).split('=')))
const listen = process.argv.slice(2).filter((arg) => !arg.startsWith('--'))
const perfHandler = options['perf-handler'] ?? 'stock'
const encrypters = [reported(noise()), reported(tls())]
if (options.security === 'tls') {
  encrypters.reverse()
}
const node = await createLibp2p({
  addresses: { listen },
  transports: [tcp(), quic()],
  connectionEncrypters: encrypters,
  streamMuxers: [yamux()],
  services: { identify: identify(), ping: ping() },
  connectionManager: { inboundConnectionThreshold: 10000, maxIncomingPendingConnections: 1000 }
})
await node.handle(PERF, (stream) => {
  servePerf(stream, perfHandler).catch((err) => {
    emit({ event: 'perf-error', error: String(err) })
    stream.abort(err)
  })
}, { maxInboundStreams: 1024 })

emit({
  event: 'listening',
  peer_id: node.peerId.toString(),
  addrs: node.getMultiaddrs().map((ma) => ma.toString())
})

async function run (command) {
  const addr = multiaddr(command.addr)
  switch (command.op) {
    case 'perf': {
      const connection = await node.dial(addr, { force: true })
      const runs = Array.from({ length: command.streams ?? 1 }, () =>
        perfClient(connection, command.upload, command.download, command.optimistic === true))
      const results = await Promise.all(runs)
      await connection.close()
      return {
        downloaded: results.map((run) => run.downloaded),
        protocols: results.map((run) => run.protocol),
        muxer: connection.multiplexer ?? null,
        encryption: connection.encryption ?? null
      }
    }
    case 'ttfb': {
      const start = performance.now()
      const connection = await node.dial(addr, { force: true })
      const stream = await connection.newStream(PING, { negotiateFully: command.optimistic !== true })
      const echoed = new Promise((resolve) => {
        stream.addEventListener('message', resolve, { once: true })
      })
      stream.send(new Uint8Array(32))
      await echoed
      const millis = performance.now() - start
      await connection.close()
      return { millis }
    }
    case 'probe': {
      const connection = await node.dial(addr, { force: true })
      let ping
      try {
        ping = await node.services.ping.ping(connection.remoteAddr)
      } catch (err) {
        ping = String(err)
      }
      const { downloaded } = await perfClient(connection, 100, 100, false)
      await connection.close()
      return { ping, downloaded }
    }
    default:
      throw new Error(`unknown op ${command.op}`)
  }
}

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (line.trim() === '') {
    return
  }
  let command
  try {
    command = JSON.parse(line)
  } catch (err) {
    emit({ id: null, error: `bad command: ${err}` })
    return
  }
  run(command).then(
    (result) => emit({ id: command.id, ok: result }),
    (err) => emit({ id: command.id, error: String(err?.stack ?? err) })
  )
})
lines.on('close', () => {
  node.stop().finally(() => process.exit(0))
})
