// gw.fetch: a WHATWG fetch served in-process, and the official `openai` SDK through it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'

import { Gateway } from 'gatewise'
import { startMock, openaiHandler, target, hello, json, sleep, hold, chunk, within } from './helpers.mjs'

const BASE = 'http://gatewise.local/v1'
let mock
let other
const extra = []

before(async () => {
  mock = await startMock(openaiHandler({ tag: 'a' }))
  other = await startMock(openaiHandler({ tag: 'b' }))
})
after(async () => {
  await mock.close()
  await other.close()
  for (const m of extra) await m.close()
})

test('fetch returns a Response with the route headers', async () => {
  const gw = new Gateway({ config: target(mock), traceId: 'tf' })
  const r = await gw.fetch(`${BASE}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(hello()),
  })
  assert.ok(r instanceof Response)
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('content-type'), 'application/json')
  assert.equal(r.headers.get('x-portkey-provider'), 'openai')
  assert.equal(r.headers.get('x-portkey-last-used-option-index'), 'config')
  assert.equal(r.headers.get('x-portkey-trace-id'), 'tf')
  assert.equal(r.headers.get('x-request-id'), 'req-1', 'upstream headers pass through')
  assert.equal((await r.json()).choices[0].message.content, 'a:hello')
})

test('fetch accepts a Request object, and a stream answer is a ReadableStream of SSE bytes', async () => {
  const gw = new Gateway({ config: target(mock) })
  const req = new Request(`${BASE}/chat/completions`, { method: 'POST', body: JSON.stringify(hello({ stream: true })) })
  const r = await gw.fetch(req)
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('content-type'), 'text/event-stream')
  const text = await r.text()
  const data = text.split('\n').filter((l) => l.startsWith('data: '))
  assert.equal(data.length, 5)
  assert.equal(data[4], 'data: [DONE]')
  assert.equal(JSON.parse(data[2].slice(6)).choices[0].delta.content, 'hello')
})

test('x-portkey-* headers on a fetched request override the client options', async () => {
  const gw = new Gateway({ config: target(mock) })
  const r = await gw.fetch(`${BASE}/chat/completions`, {
    method: 'POST',
    headers: { 'x-portkey-config': JSON.stringify(target(other)), 'x-portkey-trace-id': 'hdr' },
    body: JSON.stringify(hello()),
  })
  assert.equal((await r.json()).choices[0].message.content, 'b:hello')
  assert.equal(r.headers.get('x-portkey-trace-id'), 'hdr')
})

test('a GET without a body is forwarded (models list)', async () => {
  const gw = new Gateway({ config: target(mock) })
  const r = await gw.fetch(`${BASE}/models`)
  assert.equal(r.status, 200)
  assert.equal((await r.json()).data[0].owned_by, 'a')
  assert.equal(mock.requests.at(-1).method, 'GET')
  assert.equal(mock.requests.at(-1).url, '/v1/models')
})

test('an AbortSignal rejects a pending non-streamed fetch with its reason', async () => {
  const slow = await startMock(async (req, res) => {
    await hold(res, 5000)
    if (!res.destroyed) json(res, 200, {})
  })
  extra.push(slow)
  const gw = new Gateway({ config: target(slow) })
  const ac = new AbortController()
  const pending = gw.fetch(`${BASE}/chat/completions`, { method: 'POST', body: JSON.stringify(hello()), signal: ac.signal })
  setTimeout(() => ac.abort(), 50)
  await assert.rejects(pending, (e) => e.name === 'AbortError')
  await assert.rejects(
    gw.fetch(`${BASE}/chat/completions`, { method: 'POST', body: '{}', signal: AbortSignal.abort() }),
    (e) => e.name === 'AbortError',
  )
})

test('errors come back as OpenAI-shaped error responses', async () => {
  const gw = new Gateway({ config: target(mock) })
  const r = await gw.fetch(`${BASE}/chat/completions`, { method: 'POST', body: '{"model": 1' })
  assert.equal(r.status, 400)
  assert.equal((await r.json()).error.code, 'invalid_request')
})

test('cancelling the fetched body cancels the upstream request', async () => {
  const slow = await startMock(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < 1000 && !res.destroyed; i++) {
      res.write(`data: ${JSON.stringify(chunk(`c${i}`))}\n\n`)
      await sleep(20)
    }
    res.end()
  })
  extra.push(slow)
  const gw = new Gateway({ config: target(slow) })
  const r = await gw.fetch(`${BASE}/chat/completions`, { method: 'POST', body: JSON.stringify(hello({ stream: true })) })
  const reader = r.body.getReader()
  const first = await reader.read()
  assert.match(Buffer.from(first.value).toString(), /c0/)
  await reader.cancel()
  await within(slow.nextDisconnect(), 2000, 'no disconnect')
})

test('an AbortSignal aborts a fetched stream and the upstream request', async () => {
  const slow = await startMock(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < 1000 && !res.destroyed; i++) {
      res.write(`data: ${JSON.stringify(chunk(`c${i}`))}\n\n`)
      await sleep(20)
    }
    res.end()
  })
  extra.push(slow)
  const gw = new Gateway({ config: target(slow) })
  const ac = new AbortController()
  const r = await gw.fetch(`${BASE}/chat/completions`, {
    method: 'POST',
    body: JSON.stringify(hello({ stream: true })),
    signal: ac.signal,
  })
  const reader = r.body.getReader()
  await reader.read()
  ac.abort()
  await assert.rejects(reader.read(), (e) => e.name === 'AbortError')
  await within(slow.nextDisconnect(), 2000, 'no disconnect')
})

test('the openai SDK through gw.fetch: chat, embeddings, streaming', async () => {
  const gw = new Gateway({ config: target(mock) })
  const client = new OpenAI({ fetch: gw.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  const r = await client.chat.completions.create(hello())
  assert.equal(r.choices[0].message.content, 'a:hello')
  // The SDK's own key does not reach the upstream: the config's does.
  assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer sk-mock')
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' })
  assert.equal(e.data.length, 1)
  const stream = await client.chat.completions.create(hello({ stream: true }))
  let text = ''
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''
  assert.equal(text, 'a:hello')
  const { data, response } = await client.chat.completions.create(hello()).withResponse()
  assert.equal(data.choices[0].message.content, 'a:hello')
  assert.equal(response.headers.get('x-portkey-last-used-option-index'), 'config')
})

test('the rest of the OpenAI API passes through gw.fetch with its method, path, query and body', async () => {
  const upstream = await startMock(async (req, res, body) => {
    json(res, 200, { id: 'echo', object: 'echo', method: req.method, url: req.url, body })
  })
  extra.push(upstream)
  const gw = new Gateway({ config: target(upstream) })
  const client = new OpenAI({ fetch: gw.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  const model = await client.models.retrieve('gpt-4o')
  assert.deepEqual([model.method, model.url], ['GET', '/v1/models/gpt-4o'])
  const deleted = await client.vectorStores.delete('vs_1')
  assert.deepEqual([deleted.method, deleted.url], ['DELETE', '/v1/vector_stores/vs_1'])
  const page = await gw.fetch(`${BASE}/assistants?limit=2`, { headers: { 'openai-beta': 'assistants=v2' } })
  assert.equal((await page.json()).url, '/v1/assistants?limit=2')
  const run = await gw.fetch(`${BASE}/threads/t_1/runs`, { method: 'POST', body: '{"assistant_id":"a_1"}',
    headers: { 'content-type': 'application/json' } })
  assert.deepEqual(await run.json(), { id: 'echo', object: 'echo', method: 'POST', url: '/v1/threads/t_1/runs',
    body: { assistant_id: 'a_1' } })
})

test('the Responses API through the openai SDK: passed to OpenAI, translated through chat elsewhere', async () => {
  const native = await startMock(async (req, res) => {
    json(res, 200, { id: 'resp_1', object: 'response', created_at: 1, status: 'completed', model: 'gpt-4.1',
      output: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'assistant',
        content: [{ type: 'output_text', text: 'native', annotations: [] }] }],
      usage: { input_tokens: 3, output_tokens: 1, total_tokens: 4 } })
  })
  extra.push(native)
  let client = new OpenAI({ fetch: new Gateway({ config: target(native) }).fetch, baseURL: BASE, apiKey: 'unused' })
  assert.equal((await client.responses.create({ model: 'gpt-4.1', input: 'Hi' })).output_text, 'native')
  assert.equal(native.requests[0].url, '/v1/responses')

  // A chat-only provider (the mock speaks chat): a stateless response, streamed too.
  const gw = new Gateway({ config: target(mock, { provider: 'groq' }) })
  client = new OpenAI({ fetch: gw.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  const r = await client.responses.create({ model: 'm', instructions: 'Be brief.', input: 'hello' })
  assert.equal(r.output_text, 'a:hello')
  assert.equal(r.status, 'completed')
  let text = ''
  let last
  for await (const event of await client.responses.create({ model: 'm', input: 'hello', stream: true })) {
    if (event.type === 'response.output_text.delta') text += event.delta
    last = event
  }
  assert.equal(text, 'a:hello')
  assert.equal(last.type, 'response.completed')
  await assert.rejects(client.responses.create({ model: 'm', input: 'x', previous_response_id: 'resp_1' }),
    (e) => e instanceof OpenAI.BadRequestError && /stored response/.test(e.message))
  const direct = await gw.responses.create({ model: 'm', input: 'hello' })
  assert.equal(direct.output[0].content[0].text, 'a:hello')
})

test('the openai SDK: breaking out of a stream cancels the upstream request', async () => {
  const slow = await startMock(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; i < 1000 && !res.destroyed; i++) {
      res.write(`data: ${JSON.stringify(chunk(`c${i}`))}\n\n`)
      await sleep(20)
    }
    res.end()
  })
  extra.push(slow)
  const gw = new Gateway({ config: target(slow) })
  const client = new OpenAI({ fetch: gw.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  const stream = await client.chat.completions.create(hello({ stream: true }))
  let n = 0
  for await (const c of stream) {
    assert.equal(c.choices[0].delta.content, `c${n}`)
    if (++n === 2) break
  }
  await within(slow.nextDisconnect(), 2000, 'no disconnect')
})

test('the openai SDK maps gateway errors to its own error classes', async () => {
  const limited = await startMock((req, res) => json(res, 429, { error: { message: 'slow down', type: 'rate_limit_error' } }))
  extra.push(limited)
  const gw = new Gateway({ config: target(limited) })
  const client = new OpenAI({ fetch: gw.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  await assert.rejects(client.chat.completions.create(hello()), (e) => e instanceof OpenAI.RateLimitError && e.status === 429)
  const bad = new Gateway({ config: target(mock) })
  const c2 = new OpenAI({ fetch: bad.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  await assert.rejects(c2.chat.completions.create({ model: 'x' }), (e) => e instanceof OpenAI.BadRequestError)
})

test('the openai SDK with per-request x-portkey headers', async () => {
  const gw = new Gateway({ config: target(mock) })
  const client = new OpenAI({ fetch: gw.fetch, baseURL: BASE, apiKey: 'unused', maxRetries: 0 })
  const r = await client.chat.completions.create(hello(), {
    headers: { 'x-portkey-config': JSON.stringify(target(other)) },
  })
  assert.equal(r.choices[0].message.content, 'b:hello')
})
