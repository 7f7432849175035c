// The official `openai` npm SDK against a real `gatewise serve` with a registry: the SDK's
// apiKey is a gateway key, and the model names a registry entry (`@slug/model`).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import OpenAI from 'openai'
import { OpenAIRealtimeWS } from 'openai/realtime/ws'
import { WebSocketServer } from 'ws'
import { GATEWISE_BIN, keyHash, openaiHandler, serveGateway, startMock } from './helpers.mjs'

const serve = async (registry) => `${await serveGateway(registry)}/v1`

test('the openai SDK with a gateway key and a registry model', { skip: !fs.existsSync(GATEWISE_BIN) && 'no gatewise binary' }, async () => {
  const m = await startMock(openaiHandler({ tag: 'served' }))
  const baseURL = await serve({
    providers: {
      'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: m.v1 },
      claude: { provider: 'anthropic', api_key: 'sk-ant', custom_host: m.v1 },
    },
    keys: { 'team-a': { hash: keyHash('gw-team-a'), providers: ['openai-prod'] } },
  })
  const client = new OpenAI({ baseURL, apiKey: 'gw-team-a' })
  const messages = [{ role: 'user', content: 'hello' }]
  const r = await client.chat.completions.create({ model: '@openai-prod/gpt-4o', messages })
  assert.equal(r.choices[0].message.content, 'served:hello')
  assert.equal(m.requests[0].headers.authorization, 'Bearer sk-prod', "the entry's key, not the gateway key")
  assert.equal(m.requests[0].body.model, 'gpt-4o')

  const wrong = new OpenAI({ baseURL, apiKey: 'gw-wrong', maxRetries: 0 })
  await assert.rejects(wrong.chat.completions.create({ model: '@openai-prod/gpt-4o', messages }), OpenAI.AuthenticationError)
  await assert.rejects(
    client.chat.completions.create({ model: '@claude/claude-sonnet-4-5', messages }),
    (e) => e instanceof OpenAI.PermissionDeniedError && /claude/.test(e.message),
  )
  assert.equal(m.requests.length, 1)
  m.close()
})

test("the openai SDK's Responses API through the server, translated to a chat-only provider", { skip: !fs.existsSync(GATEWISE_BIN) && 'no gatewise binary' }, async () => {
  const m = await startMock(openaiHandler({ tag: 'groq' }))
  const baseURL = await serve({ providers: { 'groq-prod': { provider: 'groq', api_key: 'gsk-prod', custom_host: m.v1 } } })
  const client = new OpenAI({ baseURL, apiKey: 'unused' })
  const r = await client.responses.create({ model: '@groq-prod/llama-3.3-70b', instructions: 'Be brief.', input: 'hello' })
  assert.equal(r.output_text, 'groq:hello')
  const kinds = []
  let text = ''
  for await (const event of await client.responses.create({ model: '@groq-prod/llama-3.3-70b', input: 'hi', stream: true })) {
    kinds.push(event.type)
    if (event.type === 'response.output_text.delta') text += event.delta
  }
  assert.equal(text, 'groq:hi')
  assert.equal(kinds.at(-1), 'response.completed')
  const sent = m.requests[0]
  assert.ok(sent.url.endsWith('/chat/completions'))
  assert.deepEqual(sent.body.messages[0], { role: 'system', content: 'Be brief.' })
  assert.equal(sent.body.model, 'llama-3.3-70b')
  await assert.rejects(
    client.responses.create({ model: '@groq-prod/llama-3.3-70b', input: 'And?', previous_response_id: 'resp_1' }),
    (e) => e.status === 400 && e.param === 'previous_response_id',
  )
  await m.close()
})

// A mock realtime provider: records each handshake, sends `session.created` naming the
// `?model=`, answers `response.create` with a `response.done` carrying usage, echoes the rest.
async function startRealtimeMock() {
  const handshakes = []
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise((r) => server.once('listening', r))
  server.on('connection', (socket, request) => {
    handshakes.push({ url: request.url, headers: request.headers })
    const model = new URL(request.url, 'http://mock').searchParams.get('model')
    socket.send(JSON.stringify({ type: 'session.created', event_id: 'event_1', session: { model } }))
    socket.on('message', (data) => {
      const event = JSON.parse(data.toString())
      const usage = { total_tokens: 9, input_tokens: 6, output_tokens: 3 }
      socket.send(JSON.stringify(event.type === 'response.create'
        ? { type: 'response.done', event_id: 'event_2', response: { id: 'resp_1', status: 'completed', usage } }
        : { type: 'echo', received: event }))
    })
  })
  after(() => server.close())
  return { v1: `http://127.0.0.1:${server.address().port}/v1`, handshakes }
}

test("the openai SDK's realtime WebSocket, routed by the registry and relayed", { skip: !fs.existsSync(GATEWISE_BIN) && 'no gatewise binary' }, async () => {
  const mock = await startRealtimeMock()
  const baseURL = await serve({
    providers: { 'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: mock.v1 } },
    keys: { 'team-a': { hash: keyHash('gw-team-a'), providers: ['openai-prod'] } },
  })
  const client = new OpenAI({ baseURL, apiKey: 'gw-team-a' })
  // The SDK always dials wss:// (a deployment terminates TLS in front of the gateway); the
  // socket under it here is plain TCP to the loopback server, all above it is the SDK's.
  const port = Number(new URL(baseURL).port)
  const createConnection = () => net.connect(port, '127.0.0.1')
  const rt = new OpenAIRealtimeWS({ model: '@openai-prod/gpt-realtime', options: { createConnection } }, client)
  const errors = []
  rt.on('error', (e) => errors.push(e))
  const created = await new Promise((resolve) => rt.on('session.created', resolve))
  assert.equal(created.session.model, 'gpt-realtime', 'the registry name is taken off the model')
  const done = new Promise((resolve) => rt.on('response.done', resolve))
  rt.send({ type: 'response.create' })
  assert.equal((await done).response.usage.total_tokens, 9)
  const echoed = new Promise((resolve) => rt.on('event', (e) => e.type === 'echo' && resolve(e)))
  rt.send({ type: 'session.update', session: { instructions: 'be brief' } })
  assert.deepEqual((await echoed).received, { type: 'session.update', session: { instructions: 'be brief' } })
  rt.close()
  assert.deepEqual(errors, [])
  const [handshake] = mock.handshakes
  assert.equal(handshake.url, '/v1/realtime?model=gpt-realtime')
  assert.equal(handshake.headers.authorization, 'Bearer sk-prod', "the entry's key, not the gateway key")
})

