// Usage, cost and the request record in the Node binding: `route.usage` and `route.cost`
// on answers and (once ended) streams, and `onLog` getting every request's record.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import { Gateway } from 'gatewise'
import { mockRegistry, json, sse, chunk, hello, target, within } from './helpers.mjs'

const mockOf = mockRegistry()

const withUsage = (model, input, output) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1,
  model,
  choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
})

test('answers carry usage and cost, and onLog gets the record', async () => {
  const mock = await mockOf((req, res) => json(res, 200, withUsage('gpt-4o-mini-2024-07-18', 1000, 100)))
  const records = []
  const gw = new Gateway({ config: target(mock), metadata: { team: 'search' }, traceId: 't-node', onLog: (r) => records.push(r) })
  const answer = await gw.chat.completions.create(hello())
  assert.deepEqual(answer.route.usage, {
    input_tokens: 1000, output_tokens: 100, total_tokens: 1100, cached_input_tokens: 0, reasoning_tokens: 0, cache_write_input_tokens: 0,
  })
  assert.ok(Math.abs(answer.route.cost - (1000 * 0.15 + 100 * 0.6) / 1e6) < 1e-12, String(answer.route.cost))
  assert.equal(answer.route.model, 'gpt-4o-mini-2024-07-18')
  await within(
    (async () => {
      while (records.length < 1) await new Promise((r) => setTimeout(r, 5))
    })(),
    5000,
    'the record',
  )
  const [record] = records
  assert.equal(record.trace_id, 't-node')
  assert.deepEqual(record.metadata, { team: 'search' })
  assert.equal(record.status, 200)
  assert.equal(record.usage.input_tokens, 1000)
  assert.equal(record.cost_usd, answer.route.cost)
  assert.equal(record.attempts.length, 1)
  assert.ok(!JSON.stringify(record).includes('sk-mock'), 'no key in the record')
})

test('a stream reports its usage once it has ended, without the usage chunk it did not ask for', async () => {
  const mock = await mockOf(async (req, res, body) => {
    assert.deepEqual(body.stream_options, { include_usage: true }, 'the gateway asks for usage')
    const usage = { ...chunk('', { finish: 'stop' }), choices: [], usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 } }
    return sse(res, [chunk('hi', { role: 'assistant' }), chunk('', { finish: 'stop' }), usage])
  })
  const records = []
  const gw = new Gateway({ config: target(mock), onLog: (r) => records.push(r) })
  const stream = await gw.chat.completions.create(hello({ stream: true }))
  assert.equal(stream.route.usage, null, 'not known before the end')
  const chunks = []
  for await (const c of stream) chunks.push(c)
  assert.equal(chunks.length, 2, 'the usage chunk is the gateway’s, not the caller’s')
  assert.ok(chunks.every((c) => !('usage' in c)))
  assert.equal(stream.route.usage.total_tokens, 12)
  assert.ok(stream.route.cost > 0)
  while (records.length < 1) await new Promise((r) => setTimeout(r, 5))
  assert.equal(records[0].stream, true)
  assert.equal(records[0].usage.input_tokens, 10)
  assert.ok(records[0].ttft_ms > 0)
})

test('a throwing onLog is reported, never thrown into the request', async () => {
  const mock = await mockOf((req, res) => json(res, 200, withUsage('gpt-4o-mini', 1, 1)))
  const warnings = []
  const onWarning = (w) => warnings.push(String(w.message))
  process.on('warning', onWarning)
  try {
    const gw = new Gateway({ config: target(mock), onLog: () => { throw new Error('boom') } })
    const answer = await gw.chat.completions.create(hello())
    assert.equal(answer.choices[0].message.content, 'hi')
    while (warnings.length < 1) await new Promise((r) => setTimeout(r, 5))
    assert.match(warnings[0], /onLog callback threw: Error: boom/)
  } finally {
    process.off('warning', onWarning)
  }
  assert.throws(() => new Gateway({ provider: 'openai', apiKey: 'k', onLog: 5 }), TypeError)
})
