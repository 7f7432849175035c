// The shared fixture corpus (tests/fixtures) gives the same results through the binding as
// in the Rust tests: config validation, router plans, and OpenAI transforms end to end.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'

import { Gateway, GatewayError } from 'gatewise'
import { FIXTURES, jsonFiles, startMock, json, sleep } from './helpers.mjs'

const mocks = []
after(async () => {
  for (const m of mocks) await m.close()
})

const configCases = jsonFiles('config')

test('config fixtures: valid configs construct, invalid ones name their paths', () => {
  assert.ok(configCases.length >= 30, `the corpus shrank to ${configCases.length}`)
  const failures = []
  for (const [name, c] of configCases) {
    let error = null
    try {
      new Gateway({ config: c.config })
    } catch (e) {
      error = e
    }
    if (c.valid) {
      if (error) failures.push(`${name}: rejected: ${error.message}`)
      continue
    }
    if (!error) {
      failures.push(`${name}: accepted`)
      continue
    }
    // Like the Rust test, the paths are what is compared (codes vary: `invalid_config`,
    // `unknown_virtual_key`).
    if (!(error instanceof GatewayError) || error.status !== 400) {
      failures.push(`${name}: ${error}`)
      continue
    }
    // Every error path, compared as a set, exactly as the Rust test does.
    const got = error.errors.map((e) => e.path).sort()
    const want = [...c.errors].sort()
    if (JSON.stringify(got) !== JSON.stringify(want)) failures.push(`${name}: paths ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`)
  }
  assert.deepEqual(failures, [])
})

const ENDPOINTS = { '/v1/chat/completions': 'chat.completions', '/v1/embeddings': 'embeddings' }

test('router fixtures: the dry-run plan matches, or no_route_matched', () => {
  const cases = jsonFiles('router')
  assert.ok(cases.length >= 12)
  const failures = []
  for (const [name, c] of cases) {
    const gw = new Gateway({ config: c.config })
    const { metadata, params, path: p } = c.request
    const endpoint = ENDPOINTS[p]
    assert.ok(endpoint, `${name}: unknown path ${p}`)
    try {
      const plan = gw.route(params, { metadata, seed: c.seed ?? 7, endpoint })
      const got = plan.targets.map((t) => t.option_index)
      if (!c.plan) failures.push(`${name}: planned ${JSON.stringify(got)}, expected error ${c.error}`)
      else if (JSON.stringify(got) !== JSON.stringify(c.plan)) {
        failures.push(`${name}: plan ${JSON.stringify(got)}, expected ${JSON.stringify(c.plan)}`)
      }
    } catch (e) {
      if (!(e instanceof GatewayError) || e.code !== c.error) failures.push(`${name}: ${e.code ?? e}: ${e.message}`)
    }
  }
  assert.deepEqual(failures, [])
})

function transformCases() {
  const dir = path.join(FIXTURES, 'transforms', 'openai')
  return fs
    .readdirSync(dir)
    .sort()
    .map((name) => {
      const folder = path.join(dir, name)
      const c = JSON.parse(fs.readFileSync(path.join(folder, 'case.json'), 'utf8'))
      const streamFile = path.join(folder, 'upstream_stream.txt')
      const stream = fs.existsSync(streamFile) ? fs.readFileSync(streamFile) : null
      return { name, c, stream }
    })
}

function upstreamFor(mockUrl, c) {
  // The case's target, pointed at the mock with the same path prefix as the recorded URL.
  const recorded = new URL(c.upstream_request.url)
  const base = recorded.pathname.replace(/(\/v1)\/.*$/, '$1')
  return { ...c.target, custom_host: `${mockUrl}${base}` }
}

// The resource of a case's endpoint: a Messages case is answered in Anthropic's shape, a
// Responses case in the Responses API's.
const resourceOf = (gw, c) =>
  ({ chat_completions: gw.chat.completions, messages: gw.messages, responses: gw.responses })[
    c.endpoint ?? 'chat_completions'
  ]

for (const { name, c, stream } of transformCases()) {
  if (c.upstream_response?.status === 200) {
    test(`transform openai/${name}: the upstream answer comes back as the expected body`, async () => {
      const mock = await startMock((req, res) => json(res, 200, c.upstream_response.body))
      mocks.push(mock)
      const gw = new Gateway({ config: upstreamFor(mock.url, c) })
      const result = await resourceOf(gw, c).create(c.request)
      assert.equal(c.response.status, 200)
      assert.deepEqual(JSON.parse(JSON.stringify(result)), c.response.body)
      const got = mock.requests[0]
      assert.equal(got.url, new URL(c.upstream_request.url).pathname)
      assert.deepEqual(got.body, c.upstream_request.body)
      // null in a case: the header is absent.
      for (const [h, v] of Object.entries(c.upstream_request.headers ?? {})) assert.equal(got.headers[h], v ?? undefined, h)
    })
  } else if (stream && c.chunks) {
    test(`transform openai/${name}: the recorded stream gives the expected chunks`, async () => {
      // Event by event, as an upstream sends them: a first event alone commits the stream
      // (the engine peeks the first chunk), so later errors arrive in the stream.
      const mock = await startMock(async (req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        for (const event of stream.toString('utf8').split(/(?<=\n\n)/)) {
          res.write(event)
          await sleep(5)
        }
        res.end()
      })
      mocks.push(mock)
      const gw = new Gateway({ config: upstreamFor(mock.url, c) })
      const chunks = []
      let error = null
      try {
        for await (const chunk of await resourceOf(gw, c).create(c.request)) chunks.push(chunk)
      } catch (e) {
        error = e
      }
      assert.deepEqual(chunks, c.chunks)
      if (c.stream_error) {
        assert.ok(error instanceof GatewayError, `expected ${c.stream_error.code}, got ${error}`)
        assert.equal(error.code, c.stream_error.code)
      } else {
        assert.equal(error, null)
      }
    })
  }
}
