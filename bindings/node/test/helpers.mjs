// Mock provider servers on 127.0.0.1:0 (node:http) and small builders for OpenAI-shaped
// answers. Each mock records what it received and when a client hung up on it.
import http from 'node:http'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import net from 'node:net'
import os from 'node:os'
import { once } from 'node:events'
import path from 'node:path'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'
import { after } from 'node:test'

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tests/fixtures')

/** Every `*.json` file in a fixture folder, as `[name, parsed]`, sorted by name. */
export function jsonFiles(dir) {
  const full = path.join(FIXTURES, dir)
  return fs
    .readdirSync(full)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => [f.replace(/\.json$/, ''), JSON.parse(fs.readFileSync(path.join(full, f), 'utf8'))])
}

/**
 * Start a mock upstream. `handler(req, res, body)` answers; `body` is the parsed JSON body
 * (or the raw string). Returns `{ url, v1, requests, disconnects, close }`.
 */
export async function startMock(handler) {
  const requests = []
  const disconnects = []
  const waiters = []
  const sockets = new Set()
  const server = http.createServer(async (req, res) => {
    const chunks = []
    for await (const c of req) chunks.push(c)
    const raw = Buffer.concat(chunks).toString('utf8')
    let body = raw
    try {
      body = raw ? JSON.parse(raw) : null
    } catch {}
    const record = { method: req.method, url: req.url, headers: req.headers, body, raw: Buffer.concat(chunks) }
    requests.push(record)
    // The client closing the connection before the answer ended: the upstream request
    // was cancelled.
    res.on('close', () => {
      if (!res.writableFinished) {
        disconnects.push({ record, at: performance.now() })
        for (const w of waiters.splice(0)) w()
      }
    })
    try {
      await handler(req, res, body, record)
    } catch (err) {
      if (!res.headersSent) json(res, 500, { error: { message: String(err) } })
    }
  })
  server.keepAliveTimeout = 60_000
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    v1: `${url}/v1`,
    requests,
    disconnects,
    /** Resolves at the next client disconnect (or at once if one already happened). */
    nextDisconnect() {
      if (disconnects.length) return Promise.resolve()
      return new Promise((resolve) => waiters.push(resolve))
    },
    async close() {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close').catch(() => {})
    },
  }
}

export function json(res, status, body, headers = {}) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** `promise`, or a failure naming `what` if it takes longer than `ms`. */
export function within(promise, ms, what) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Wait `ms`, or less if the client hangs up first; never keeps the process alive. */
export function hold(res, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms)
    timer.unref()
    res.on('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** Write SSE `data:` events, `delayMs` apart, then `[DONE]` unless `done: false`. */
export async function sse(res, events, { delayMs = 0, done = true } = {}) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  for (const e of events) {
    if (res.destroyed) return
    res.write(`data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`)
    if (delayMs) await sleep(delayMs)
  }
  if (done) res.write('data: [DONE]\n\n')
  res.end()
}

export function answer(content, model = 'gpt-4o-mini') {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  }
}

export function chunk(content, { finish = null, role } = {}) {
  const delta = role ? { role, content } : { content }
  return {
    id: 'chatcmpl-s',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, finish_reason: finish }],
  }
}

export const hello = (extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], ...extra })

/** A config leaf pointing the OpenAI provider at a mock. */
export const target = (mock, extra = {}) => ({ provider: 'openai', api_key: 'sk-mock', custom_host: mock.v1, ...extra })

/** An address nothing listens on (a server bound, then closed). */
export async function deadUrl() {
  const server = http.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return `http://127.0.0.1:${port}/v1`
}

/**
 * A mock speaking a little OpenAI: chat (JSON or SSE per `stream`), completions,
 * embeddings, images and moderations. The reply content echoes the last user message.
 */
export function openaiHandler({ tag = 'mock' } = {}) {
  return async (req, res, body, record) => {
    const p = req.url.split('?')[0]
    if (/\/audio\/(transcriptions|translations)$/.test(p) || /\/images\/(edits|variations)$/.test(p)) {
      // Uploads: read the multipart form the way a server would, and describe it back.
      const form = await new Response(record.raw, { headers: { 'content-type': req.headers['content-type'] } }).formData()
      const files = []
      const fields = {}
      for (const [name, value] of form) {
        if (typeof value === 'string') fields[name] = value
        else files.push({ name, filename: value.name, type: value.type, size: value.size, text: await value.text() })
      }
      return json(res, 200, { text: `${tag}:${p.split('/').slice(-2).join('/')}`, fields, files, created: 1, data: [] })
    }
    if (p.endsWith('/chat/completions')) {
      const last = body.messages?.at(-1)?.content ?? ''
      if (body.stream) {
        return sse(res, [chunk('', { role: 'assistant' }), chunk(`${tag}:`), chunk(String(last)), chunk('', { finish: 'stop' })])
      }
      return json(res, 200, answer(`${tag}:${last}`, body.model), { 'x-request-id': 'req-1' })
    }
    if (p.endsWith('/completions')) {
      return json(res, 200, {
        id: 'cmpl-1',
        object: 'text_completion',
        created: 1,
        model: body.model,
        choices: [{ index: 0, text: `${tag}:${body.prompt}`, finish_reason: 'stop', logprobs: null }],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      })
    }
    if (p.endsWith('/embeddings')) {
      const inputs = Array.isArray(body.input) ? body.input : [body.input]
      return json(res, 200, {
        object: 'list',
        model: body.model,
        data: inputs.map((_, i) => ({ object: 'embedding', index: i, embedding: [0.1 * (i + 1), 0.2, 0.3] })),
        usage: { prompt_tokens: 2, total_tokens: 2 },
      })
    }
    if (p.endsWith('/images/generations')) {
      return json(res, 200, { created: 1, data: [{ url: `https://img.example/${encodeURIComponent(body.prompt)}.png` }] })
    }
    if (p.endsWith('/moderations')) {
      return json(res, 200, {
        id: 'modr-1',
        model: 'omni-moderation-latest',
        results: [{ flagged: false, categories: {}, category_scores: {} }],
      })
    }
    if (req.method === 'GET' && p.endsWith('/models')) {
      return json(res, 200, { object: 'list', data: [{ id: 'gpt-4o-mini', object: 'model', owned_by: tag }] })
    }
    json(res, 404, { error: { message: `no route ${p}`, type: 'invalid_request_error' } })
  }
}

/**
 * A starter for mocks that are all closed after the calling file's tests. Call it once
 * at module level: `const mockOf = mockRegistry()`, then `await mockOf(handler)`.
 */
export function mockRegistry() {
  const mocks = []
  after(async () => {
    for (const m of mocks) await m.close()
  })
  return async (handler) => {
    const m = await startMock(handler)
    mocks.push(m)
    return m
  }
}

/** The `gatewise` binary the server suites start (`cargo test` builds it). */
export const GATEWISE_BIN =
  process.env.GATEWISE_BIN ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../target/debug/gatewise')

/** A gateway key's `hash` as a registry holds it. */
export const keyHash = (key) => `sha256:${createHash('sha256').update(key).digest('hex')}`

const servers = []
after(() => servers.forEach((s) => s.kill('SIGTERM')))

/** Start `gatewise serve` with this registry on a free port; resolves to its origin. */
export async function serveGateway(registry) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewise-'))
  const file = path.join(dir, 'registry.json')
  fs.writeFileSync(file, JSON.stringify(registry))
  const probe = net.createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address()
  await new Promise((r) => probe.close(r))
  const args = ['serve', '--port', String(port), '--registry', file, '--log-level', 'warn']
  servers.push(spawn(GATEWISE_BIN, args, { stdio: ['ignore', 'ignore', 'inherit'] }))
  for (let i = 0; i < 200; i++) {
    if (await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)) return `http://127.0.0.1:${port}`
    await sleep(25)
  }
  throw new Error('gatewise serve did not start')
}

