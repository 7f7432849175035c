// 200 concurrent calls on one client, each answered from its own upstream request.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'

import { Gateway } from 'gatewise'
import { startMock, target, hello, json, answer, sleep, sse, chunk } from './helpers.mjs'

let mock
after(() => mock?.close())

test('200 concurrent calls on one client, streaming and not', async () => {
  let inFlight = 0
  let maxInFlight = 0
  mock = await startMock(async (req, res, body) => {
    inFlight++
    maxInFlight = Math.max(maxInFlight, inFlight)
    await sleep(50)
    inFlight--
    const content = body.messages[0].content
    if (body.stream) return sse(res, [chunk(content), chunk('!')])
    json(res, 200, answer(content))
  })
  const gw = new Gateway({ config: target(mock) })
  const calls = Array.from({ length: 200 }, async (_, i) => {
    const body = hello({ messages: [{ role: 'user', content: `n${i}` }], stream: i % 4 === 0 })
    const r = await gw.chat.completions.create(body)
    if (!body.stream) return r.choices[0].message.content
    let text = ''
    for await (const c of r) text += c.choices[0].delta.content
    return text.slice(0, -1)
  })
  const got = await Promise.all(calls)
  assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => `n${i}`))
  assert.equal(mock.requests.length, 200)
  // Concurrency shown by what overlapped at the upstream, not by how long it took.
  assert.ok(maxInFlight >= 50, `only ${maxInFlight} upstream requests overlapped`)
})
