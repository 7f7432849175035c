// The official `@anthropic-ai/sdk` against the gateway's Messages API: in-process through
// gw.fetch, and against a real `gatewise serve` with a gateway key as the SDK's apiKey.
// Claude targets get the request as sent; others get it translated and answered back.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Anthropic from '@anthropic-ai/sdk'

import { Gateway } from 'gatewise'
import { openaiHandler, json, keyHash, mockRegistry, serveGateway, target } from './helpers.mjs'

const BASE = 'http://gatewise.local'
const MESSAGES = [{ role: 'user', content: 'hello' }]
const mockOf = mockRegistry()

const claudeAnswer = (text) => ({
  id: 'msg_1',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-5',
  content: [{ type: 'text', text }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 4, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 9 },
})
const claude = (mock) => ({ provider: 'anthropic', api_key: 'sk-ant-mock', custom_host: mock.v1 })

test('a Claude target gets the SDK request as sent, cache_control and betas intact', async () => {
  const mock = await mockOf((req, res) => json(res, 200, claudeAnswer('cached')))
  const gw = new Gateway({ config: claude(mock) })
  const client = new Anthropic({ baseURL: BASE, apiKey: 'unused', fetch: gw.fetch })
  const system = [{ type: 'text', text: 'The manual.', cache_control: { type: 'ephemeral' } }]
  const r = await client.messages.create(
    { model: 'claude-sonnet-4-5', max_tokens: 32, system, messages: MESSAGES },
    { headers: { 'anthropic-beta': 'context-1m-2025-08-07' } },
  )
  assert.equal(r.content[0].text, 'cached')
  assert.equal(r.usage.cache_read_input_tokens, 9)
  const sent = mock.requests[0]
  assert.equal(sent.url, '/v1/messages')
  assert.deepEqual(sent.body.system, system)
  assert.equal(sent.headers['x-api-key'], 'sk-ant-mock', "the config's key, not the SDK's")
  assert.equal(sent.headers['anthropic-beta'], 'context-1m-2025-08-07')
})

test('an OpenAI target answers the SDK in Anthropic shapes, streamed and not', async () => {
  const mock = await mockOf(openaiHandler({ tag: 'gpt' }))
  const gw = new Gateway({ config: target(mock) })
  const client = new Anthropic({ baseURL: BASE, apiKey: 'unused', fetch: gw.fetch })
  const r = await client.messages.create({ model: 'gpt-4o-mini', max_tokens: 32, messages: MESSAGES })
  assert.equal(r.content[0].text, 'gpt:hello')
  assert.equal(r.stop_reason, 'end_turn')
  const stream = client.messages.stream({ model: 'gpt-4o-mini', max_tokens: 32, messages: MESSAGES })
  let text = ''
  stream.on('text', (t) => (text += t))
  const final = await stream.finalMessage()
  assert.equal(text, 'gpt:hello')
  assert.equal(final.stop_reason, 'end_turn')
  assert.equal(mock.requests[1].body.max_completion_tokens, 32)
})

test("errors reach the SDK as its own classes, in Anthropic's shape", async () => {
  const mock = await mockOf((req, res) => json(res, 429, { error: { message: 'slow down' } }))
  const gw = new Gateway({ config: target(mock) })
  const client = new Anthropic({ baseURL: BASE, apiKey: 'unused', fetch: gw.fetch, maxRetries: 0 })
  await assert.rejects(client.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: MESSAGES }), (e) => {
    assert.ok(e instanceof Anthropic.RateLimitError, String(e))
    assert.equal(e.error.error.type, 'rate_limit_error')
    return true
  })
  await assert.rejects(
    client.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'mystery' }] }] }),
    Anthropic.BadRequestError,
  )
})

test('the client resource answers in Anthropic shapes', async () => {
  const mock = await mockOf(openaiHandler({ tag: 'res' }))
  const gw = new Gateway({ config: target(mock) })
  const r = await gw.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: MESSAGES })
  assert.equal(r.type, 'message')
  assert.equal(r.content[0].text, 'res:hello')
  assert.equal(r.route.provider, 'openai')
  const events = []
  for await (const event of await gw.messages.create({ model: 'gpt-4o-mini', max_tokens: 8, messages: MESSAGES, stream: true })) {
    events.push(event.type)
  }
  assert.equal(events[0], 'message_start')
  assert.equal(events.at(-1), 'message_stop')
})

test('against the server: the gateway key as the SDK apiKey, registry models on both kinds of provider', async () => {
  const mock = await mockOf((req, res, body) =>
    req.url.endsWith('/messages') ? json(res, 200, claudeAnswer('from claude')) : openaiHandler({ tag: 'gpt' })(req, res, body),
  )
  const hash = keyHash('gw-team-a')
  const base = await serveGateway({
    providers: {
      claude: { provider: 'anthropic', api_key: 'sk-ant-prod', custom_host: mock.v1 },
      'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: mock.v1 },
    },
    keys: { 'team-a': { hash } },
  })
  const client = new Anthropic({ baseURL: base, apiKey: 'gw-team-a', maxRetries: 0 })
  const a = await client.messages.create({ model: '@claude/claude-sonnet-4-5', max_tokens: 8, messages: MESSAGES })
  assert.equal(a.content[0].text, 'from claude')
  const b = await client.messages.create({ model: '@openai-prod/gpt-4o', max_tokens: 8, messages: MESSAGES })
  assert.equal(b.content[0].text, 'gpt:hello')
  assert.equal(mock.requests[0].headers['x-api-key'], 'sk-ant-prod', "the entry's key, not the gateway key")
  assert.equal(mock.requests[1].headers.authorization, 'Bearer sk-prod')
  const wrong = new Anthropic({ baseURL: base, apiKey: 'gw-wrong', maxRetries: 0 })
  await assert.rejects(
    wrong.messages.create({ model: '@claude/claude-sonnet-4-5', max_tokens: 8, messages: MESSAGES }),
    Anthropic.AuthenticationError,
  )
})
