// Streaming: chunks as objects through `for await`, early `break` cancelling the upstream
// request, fallback before the first chunk, and a stream that breaks midway.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { Gateway, GatewayError, Stream } from 'gatewise'
import { mockRegistry, openaiHandler, target, hello, sse, chunk, sleep, hold, json, within } from './helpers.mjs'

const mockOf = mockRegistry()

test('stream: true resolves to an async iterable of chunk objects with route info', async () => {
  const mock = await mockOf(openaiHandler({ tag: 's' }))
  const gw = new Gateway({ config: target(mock), traceId: 't-stream' })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  assert.ok(stream instanceof Stream)
  assert.equal(stream.route.provider, 'openai')
  assert.equal(stream.route.trace_id, 't-stream')
  const chunks = []
  for await (const c of stream) chunks.push(c)
  assert.equal(chunks.length, 4)
  assert.equal(chunks[0].object, 'chat.completion.chunk')
  assert.equal(chunks.map((c) => c.choices[0].delta.content).join(''), 's:hello')
  assert.equal(chunks[3].choices[0].finish_reason, 'stop')
  assert.equal(mock.requests[0].body.stream, true)
})

test('break out of for-await cancels the upstream request promptly', async () => {
  // An endless upstream: a chunk every 20 ms until the client hangs up.
  const mock = await mockOf(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    for (let i = 0; !res.destroyed && i < 10_000; i++) {
      res.write(`data: ${JSON.stringify(chunk(`t${i} `))}\n\n`)
      await sleep(20)
    }
    res.end()
  })
  const gw = new Gateway({ config: target(mock) })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  let n = 0
  for await (const c of stream) {
    assert.equal(c.choices[0].delta.content, `t${n} `)
    if (++n === 3) break
  }
  // The event itself is the proof: without cancellation the upstream would go on
  // sending for minutes, and no disconnect would come.
  await within(mock.nextDisconnect(), 5000, 'the upstream never saw the client disconnect')
  // The iterator is finished: next() now ends.
  assert.deepEqual(await stream.next(), { done: true, value: undefined })
})

test('close() cancels even while a next() is waiting on a silent upstream', async () => {
  const mock = await mockOf(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(`data: ${JSON.stringify(chunk('first'))}\n\n`)
    await hold(res, 60_000) // then silence
  })
  const gw = new Gateway({ config: target(mock) })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  assert.equal((await stream.next()).value.choices[0].delta.content, 'first')
  const pending = stream.next()
  await sleep(50)
  await stream.close()
  assert.deepEqual(await pending, { done: true, value: undefined })
  await within(mock.nextDisconnect(), 2000, 'no disconnect')
})

test('a stream that fails before its first chunk falls back', async () => {
  const bad = await mockOf((req, res) => json(res, 503, { error: { message: 'overloaded', type: 'server_error' } }))
  const good = await mockOf(openaiHandler({ tag: 'g' }))
  const gw = new Gateway({ config: { strategy: { mode: 'fallback' }, targets: [target(bad), target(good)] } })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  assert.equal(stream.route.option_index, 'config.targets[1]')
  let text = ''
  for await (const c of stream) text += c.choices[0].delta.content ?? ''
  assert.equal(text, 'g:hello')
})

test('a stream that breaks midway throws GatewayError(stream_error) after the chunks it got', async () => {
  const mock = await mockOf(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(`data: ${JSON.stringify(chunk('partial'))}\n\n`)
    await sleep(20)
    res.destroy() // connection cut, no [DONE]
  })
  const gw = new Gateway({ config: target(mock) })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  const got = []
  await assert.rejects(
    (async () => {
      for await (const c of stream) got.push(c.choices[0].delta.content)
    })(),
    (e) => e instanceof GatewayError && e.code === 'stream_error' && e.route.provider === 'openai',
  )
  assert.deepEqual(got, ['partial'])
})

test('an upstream error on a stream request rejects create() itself', async () => {
  const mock = await mockOf((req, res) => json(res, 401, { error: { message: 'bad key', type: 'invalid_request_error' } }))
  const gw = new Gateway({ config: target(mock) })
  await assert.rejects(gw.chat.completions.create(hello({ stream: true })), (e) => e.status === 401)
})

test('many chunks arrive in order', async () => {
  const words = Array.from({ length: 300 }, (_, i) => `w${i} `)
  const mock = await mockOf((req, res) => sse(res, words.map((w) => chunk(w))))
  const gw = new Gateway({ config: target(mock) })
  let text = ''
  for await (const c of await gw.chat.completions.create(hello({ stream: true }))) text += c.choices[0].delta.content
  assert.equal(text, words.join(''))
})

test('chunks already read cross from the native side together, and an error after them comes after them', async () => {
  // 30 chunks in one write, then the connection cut: the native stream has them all at once.
  const mock = await mockOf(async (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const body = Array.from({ length: 30 }, (_, i) => `data: ${JSON.stringify(chunk(`t${i} `))}\n\n`).join('')
    res.write(body)
    await sleep(50)
    res.destroy()
  })
  const { createRequire } = await import('node:module')
  const { NativeGateway } = createRequire(import.meta.url)('../native.js')
  const native = new NativeGateway(JSON.stringify({ config: target(mock) }), null)
  const reply = await native.create('chat.completions.create', JSON.stringify(hello({ stream: true })), [], '{}')
  const first = await reply.stream.nextBatch()
  // One crossing for many chunks (how many depends on how the bytes arrived; never one per call).
  assert.ok(first.length > 1, `a batch of ${first.length}`)
  const items = [...first]
  let error = null
  try {
    for (let batch = await reply.stream.nextBatch(); batch.length; batch = await reply.stream.nextBatch()) items.push(...batch)
  } catch (e) {
    error = e
  }
  assert.equal(items.length, 30, 'every chunk before the cut')
  assert.equal(JSON.parse(items[29]).choices[0].delta.content, 't29 ')
  assert.ok(error, 'the cut stream fails after its chunks')

  // Through the public iterator: the same chunks, then the error.
  const gw = new Gateway({ config: target(mock) })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  let n = 0
  await assert.rejects(async () => {
    for await (const c of stream) assert.equal(c.choices[0].delta.content, `t${n++} `)
  }, GatewayError)
  assert.equal(n, 30)
})
