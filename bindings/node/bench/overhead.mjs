// In-process overhead per non-streaming call: gw.chat.completions.create against Node's own
// fetch to the same mock upstream (a separate process), sequential calls, one run.
//
//   node bench/overhead.mjs [calls]      (default 2000 per client, after 300 warm-up calls)
//
// A second baseline, node:http with a keep-alive agent, is Node's cheapest client; the
// gateway is compared against both. The floor is the Rust API's call (Engine::handle over
// the hyper transport, benches/src/bin/inprocess_floor.rs, run as a Node call is: spawned
// on a runtime, the answer sent back), on the same upstream, when its binary is built
// (GATEWISE_FLOOR names another path). Goals: gw faster than node:http, within 40 µs of
// the floor, and a streamed chunk adding <= 3 µs (the slope between a stream of CHUNKS
// chunks and one of none, gw's minus node:http's). The clients run interleaved in rounds so drift (CPU frequency, other load) hits all
// of them alike. "added" = gateway minus direct fetch, per call.
import { execFileSync, fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import http from 'node:http'
import { once } from 'node:events'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Gateway } from 'gatewise'

const calls = Number(process.argv[2] ?? 2000)
const warmup = 300
const rounds = 10
const here = path.dirname(fileURLToPath(import.meta.url))

const upstream = fork(path.join(here, 'upstream.mjs'), { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
const [line] = await once(upstream.stdout, 'data')
const base = line.toString().trim()

const body = {
  model: 'gpt-4o-mini',
  messages: [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Hello!' },
  ],
  temperature: 0.2,
}
const bodyText = JSON.stringify(body)
const gw = new Gateway({ provider: 'openai', apiKey: 'sk-bench', customHost: `${base}/v1` })

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
const nodeHttp = () =>
  new Promise((resolve, reject) => {
    const req = http.request(
      `${base}/v1/chat/completions`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          authorization: 'Bearer sk-bench',
          'content-length': Buffer.byteLength(bodyText),
        },
      },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks))))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(bodyText)
  })

const clients = {
  'node:http (keep-alive)': nodeHttp,
  'node fetch (direct)': async () => {
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
      body: bodyText,
    })
    return r.json()
  },
  'gw.chat.completions.create': () => gw.chat.completions.create(body),
  'gw.fetch (fetch-compatible)': async () => {
    const r = await gw.fetch('http://gatewise.local/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bodyText,
    })
    return r.json()
  },
}

const floorBin = process.env.GATEWISE_FLOOR ?? path.join(here, '../../../target/release/inprocess_floor')
const floorRounds = []
const samples = Object.fromEntries(Object.keys(clients).map((k) => [k, []]))
for (const run of Object.values(clients)) {
  for (let i = 0; i < warmup; i++) {
    const r = await run()
    if (r.choices[0].message.content !== 'Hello! How can I help you today?') throw new Error('bad answer')
  }
}
const perRound = Math.ceil(calls / rounds)
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(clients)) {
    const out = samples[name]
    for (let i = 0; i < perRound && out.length < calls; i++) {
      const t0 = process.hrtime.bigint()
      await run()
      out.push(Number(process.hrtime.bigint() - t0) / 1000)
    }
  }
  if (existsSync(floorBin)) {
    floorRounds.push(JSON.parse(execFileSync(floorBin, [`${base}/v1`, String(perRound), 'spawn'], { encoding: 'utf8' })))
  }
}

// Streaming: µs per chunk as the slope between CHUNKS chunks and none.
const CHUNKS = 40
const nodeHttpStream = (n) => () =>
  new Promise((resolve, reject) => {
    const payload = JSON.stringify({ ...body, stream: true, max_tokens: n })
    const req = http.request(
      `${base}/v1/chat/completions`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        const parts = []
        res.on('data', (c) => parts.push(c))
        res.on('end', () => {
          for (const event of Buffer.concat(parts).toString().split('\n\n')) {
            if (event.startsWith('data: {')) JSON.parse(event.slice(6))
          }
          resolve()
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(payload)
  })
const gwStream = (n) => async () => {
  const stream = await gw.chat.completions.create({ ...body, stream: true, max_tokens: n })
  for await (const _ of stream) {
  }
}
const streamClients = { node0: nodeHttpStream(0), nodeN: nodeHttpStream(CHUNKS), gw0: gwStream(0), gwN: gwStream(CHUNKS) }
const streamSamples = Object.fromEntries(Object.keys(streamClients).map((k) => [k, []]))
for (const run of Object.values(streamClients)) for (let i = 0; i < 100; i++) await run()
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(streamClients)) {
    for (let i = 0; i < Math.ceil(perRound / 4); i++) {
      const t0 = process.hrtime.bigint()
      await run()
      streamSamples[name].push(Number(process.hrtime.bigint() - t0) / 1000)
    }
  }
}
upstream.disconnect()
upstream.kill()

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))]
  return { mean: xs.reduce((a, b) => a + b, 0) / xs.length, p50: q(0.5), p90: q(0.9), p99: q(0.99) }
}
const direct = stats(samples['node fetch (direct)'])
console.log(`${calls} sequential non-streaming chat calls per client, µs per call (node ${process.version})`)
console.log('client                          mean     p50     p90     p99   added(mean)  added(p50)')
for (const [name, xs] of Object.entries(samples)) {
  const s = stats(xs)
  const f = (n) => n.toFixed(0).padStart(7)
  const added = name.startsWith('node') ? '' : `${f(s.mean - direct.mean)}      ${f(s.p50 - direct.p50)}`
  console.log(`${name.padEnd(28)} ${f(s.mean)} ${f(s.p50)} ${f(s.p90)} ${f(s.p99)}   ${added}`)
}
const cheap = stats(samples['node:http (keep-alive)'])
const gwStats = stats(samples['gw.chat.completions.create'])
console.log(
  `vs node:http (keep-alive): gw.chat.completions.create adds ${(gwStats.mean - cheap.mean).toFixed(0)} µs mean, ` +
    `${(gwStats.p50 - cheap.p50).toFixed(0)} µs p50`,
)

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
if (floorRounds.length) {
  const f50 = median(floorRounds.map((f) => f.p50_us))
  const f99 = median(floorRounds.map((f) => f.p99_us))
  console.log(`floor: Rust Engine::handle (spawned, as a Node call) p50 ${f50.toFixed(0)} µs, p99 ${f99.toFixed(0)} µs`)
  console.log(
    `gw.chat.completions.create vs the Rust floor: p50 ${(gwStats.p50 - f50).toFixed(0)} µs, p99 ${(gwStats.p99 - f99).toFixed(0)} µs (goal <= +40)`,
  )
} else {
  console.log('(the Rust floor is not built: cargo build --release -p gateway-benches --bin inprocess_floor)')
}
const slope = (a, b) => (median(streamSamples[b]) - median(streamSamples[a])) / CHUNKS
const gwSlope = slope('gw0', 'gwN')
const nodeSlope = slope('node0', 'nodeN')
console.log(
  `streaming, µs per chunk (p50 slope over ${CHUNKS} chunks): gw ${gwSlope.toFixed(1)}, node:http + JSON.parse ${nodeSlope.toFixed(1)}; added by gw ${(gwSlope - nodeSlope).toFixed(1)} (goal <= 3)`,
)
