// The client API: every method, options, routing, withOptions and the dry run.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { Gateway, GatewayError } from 'gatewise'
import { startMock, openaiHandler, target, hello, json, answer } from './helpers.mjs'

const require = createRequire(import.meta.url)
let mock
let other

before(async () => {
  mock = await startMock(openaiHandler({ tag: 'a' }))
  other = await startMock(openaiHandler({ tag: 'b' }))
})
after(async () => {
  await mock.close()
  await other.close()
})

test('require and import give the same classes', () => {
  const cjs = require('gatewise')
  assert.equal(cjs.Gateway, Gateway)
  assert.equal(cjs.GatewayError, GatewayError)
  assert.ok(new GatewayError('x') instanceof Error)
})

test('chat.completions.create returns the OpenAI body with non-enumerable route info', async () => {
  const gw = new Gateway({ config: target(mock), traceId: 'trace-1' })
  const r = await gw.chat.completions.create(hello())
  assert.equal(r.choices[0].message.content, 'a:hello')
  assert.deepEqual(JSON.parse(JSON.stringify(r)), answer('a:hello'))
  assert.ok(!Object.keys(r).includes('route'))
  assert.equal(r.route.provider, 'openai')
  assert.equal(r.route.option_index, 'config')
  assert.equal(r.route.retry_count, 0)
  assert.equal(r.route.cache_status, 'DISABLED')
  assert.equal(r.route.trace_id, 'trace-1')
  assert.deepEqual(r.route.dropped_params, [])
  assert.equal(r.route.attempts.length, 1)
  assert.equal(r.route.attempts[0].status, 200)
  const got = mock.requests.at(-1)
  assert.equal(got.url, '/v1/chat/completions')
  assert.equal(got.headers.authorization, 'Bearer sk-mock')
  assert.deepEqual(got.body, hello())
})

test('completions, embeddings, images and moderations', async () => {
  const gw = new Gateway({ config: target(mock) })
  const c = await gw.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'say' })
  assert.equal(c.choices[0].text, 'a:say')
  assert.equal(c.route.provider, 'openai')
  const e = await gw.embeddings.create({ model: 'text-embedding-3-small', input: ['x', 'y'] })
  assert.equal(e.data.length, 2)
  assert.deepEqual(e.data[1].embedding, [0.2, 0.2, 0.3])
  assert.equal(mock.requests.at(-1).url, '/v1/embeddings')
  const i = await gw.images.generate({ model: 'dall-e-3', prompt: 'cat' })
  assert.equal(i.data[0].url, 'https://img.example/cat.png')
  const m = await gw.moderations.create({ input: 'hi' })
  assert.equal(m.results[0].flagged, false)
  assert.equal(mock.requests.at(-1).url, '/v1/moderations')
})

test('rerank answers in Cohere\'s shape whichever provider serves it', async () => {
  const jina = await startMock((req, res, body) =>
    json(res, 200, {
      model: body.model,
      usage: { total_tokens: 9 },
      results: body.documents.map((text, index) => ({ index, relevance_score: 1 / (index + 1), document: { text } })),
    }),
  )
  try {
    const gw = new Gateway({ config: target(jina, { provider: 'jina' }) })
    const r = await gw.rerank.create({ model: 'jina-reranker-v2', query: 'q', documents: ['a', { text: 'b' }] })
    assert.deepEqual(r.results, [
      { index: 0, relevance_score: 1 },
      { index: 1, relevance_score: 0.5 },
    ])
    assert.deepEqual(jina.requests[0].body.documents, ['a', 'b'])
    await assert.rejects(new Gateway({ config: target(mock) }).rerank.create({ model: 'm', query: 'q', documents: ['a'] }),
      (e) => e instanceof GatewayError && e.code === 'unsupported_endpoint')
  } finally {
    await jina.close()
  }
})

test('provider + apiKey + customHost without a config', async () => {
  const gw = new Gateway({ provider: 'openai', apiKey: 'sk-direct', customHost: other.v1 })
  const r = await gw.chat.completions.create(hello())
  assert.equal(r.choices[0].message.content, 'b:hello')
  assert.equal(other.requests.at(-1).headers.authorization, 'Bearer sk-direct')
})

test('providerOptions reach the provider (openai organization header)', async () => {
  const gw = new Gateway({
    provider: 'openai',
    apiKey: 'k',
    customHost: mock.v1,
    providerOptions: { openai_organization: 'org-9' },
  })
  await gw.chat.completions.create(hello())
  assert.equal(mock.requests.at(-1).headers['openai-organization'], 'org-9')
})

test('config as a JSON string and as a file path', async () => {
  const text = JSON.stringify(target(mock))
  const a = await new Gateway({ config: text }).chat.completions.create(hello())
  assert.equal(a.choices[0].message.content, 'a:hello')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewise-'))
  const file = path.join(dir, 'config.json')
  fs.writeFileSync(file, JSON.stringify(target(other)))
  const b = await new Gateway({ config: file }).chat.completions.create(hello())
  assert.equal(b.choices[0].message.content, 'b:hello')
  fs.rmSync(dir, { recursive: true })
})

test('snake_case option names work too; unknown option names are errors', () => {
  assert.ok(new Gateway({ provider: 'openai', api_key: 'k', custom_host: mock.v1 }))
  assert.throws(
    () => new Gateway({ provider: 'openai', apikey: 'k' }),
    (e) => e instanceof GatewayError && e.code === 'invalid_request' && /apikey/.test(e.message),
  )
})

test('fallback: a failing first target falls back to the second', async () => {
  const failing = await startMock((req, res) => json(res, 500, { error: { message: 'boom', type: 'server_error' } }))
  try {
    const gw = new Gateway({ config: { strategy: { mode: 'fallback' }, targets: [target(failing), target(other)] } })
    const r = await gw.chat.completions.create(hello())
    assert.equal(r.choices[0].message.content, 'b:hello')
    assert.equal(r.route.option_index, 'config.targets[1]')
    assert.deepEqual(
      r.route.attempts.map((a) => [a.option_index, a.status]),
      [
        ['config.targets[0]', 500],
        ['config.targets[1]', 200],
      ],
    )
    assert.equal(failing.requests.length, 1)
  } finally {
    await failing.close()
  }
})

test('conditional routing on metadata, and withOptions changing the metadata', async () => {
  const config = {
    strategy: {
      mode: 'conditional',
      conditions: [{ query: { 'metadata.tier': 'pro' }, then: 'pro' }],
      default: 'free',
    },
    targets: [target(mock, { name: 'free' }), target(other, { name: 'pro' })],
  }
  const free = new Gateway({ config, metadata: { tier: 'free' } })
  const r1 = await free.chat.completions.create(hello())
  assert.equal(r1.choices[0].message.content, 'a:hello')
  assert.equal(r1.route.option_index, 'config.targets[0]')
  const pro = free.withOptions({ metadata: { tier: 'pro' }, traceId: 'pro-trace' })
  const r2 = await pro.chat.completions.create(hello())
  assert.equal(r2.choices[0].message.content, 'b:hello')
  assert.equal(r2.route.option_index, 'config.targets[1]')
  assert.equal(r2.route.trace_id, 'pro-trace')
  // The original client is unchanged.
  assert.equal((await free.chat.completions.create(hello())).route.option_index, 'config.targets[0]')
})

test('withOptions can replace the config; an invalid one throws GatewayError', async () => {
  const gw = new Gateway({ config: target(mock) })
  const moved = gw.withOptions({ config: target(other) })
  assert.equal((await moved.chat.completions.create(hello())).choices[0].message.content, 'b:hello')
  assert.throws(
    () => gw.withOptions({ config: { provider: 'opneai', api_key: 'k' } }),
    (e) => e instanceof GatewayError && e.code === 'invalid_config' && e.param === 'provider',
  )
})

test('cacheForceRefresh and cacheNamespace reach the engine', async () => {
  const config = { ...target(mock), cache: { mode: 'simple', max_age: 60 } }
  const ns = `ns-${process.pid}-${Date.now()}`
  const gw = new Gateway({ config, cacheNamespace: ns })
  const body = hello({ messages: [{ role: 'user', content: `cache ${ns}` }] })
  assert.equal((await gw.chat.completions.create(body)).route.cache_status, 'MISS')
  assert.equal((await gw.chat.completions.create(body)).route.cache_status, 'HIT')
  const refresh = gw.withOptions({ cacheForceRefresh: true })
  assert.equal((await refresh.chat.completions.create(body)).route.cache_status, 'REFRESH')
  const elsewhere = gw.withOptions({ cacheNamespace: `${ns}-2` })
  assert.equal((await elsewhere.chat.completions.create(body)).route.cache_status, 'MISS')
})

test('route() is the dry-run plan: targets in order, credentials redacted, nothing sent', () => {
  const before = mock.requests.length
  const gw = new Gateway({
    config: { strategy: { mode: 'fallback' }, targets: [target(mock), target(other, { override_params: { model: 'x' } })] },
  })
  const plan = gw.route(hello())
  assert.deepEqual(
    plan.targets.map((t) => t.option_index),
    ['config.targets[0]', 'config.targets[1]'],
  )
  assert.equal(plan.targets[0].url, `${mock.v1}/chat/completions`)
  assert.equal(plan.targets[0].headers.authorization, '[redacted]')
  assert.equal(plan.targets[1].body.model, 'x')
  assert.equal(mock.requests.length, before)
})

test('route() with metadata and a seed; loadbalance is reproducible per seed', () => {
  const gw = new Gateway({
    config: {
      strategy: { mode: 'loadbalance' },
      targets: [target(mock, { weight: 1 }), target(other, { weight: 1 })],
    },
  })
  const pick = (seed) => gw.route(hello(), { seed }).targets[0].option_index
  for (const seed of [1, 2, 3, 7, 11]) assert.equal(pick(seed), pick(seed))
  const seen = new Set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map(pick))
  assert.equal(seen.size, 2, 'both targets get picked across seeds')
  const cond = new Gateway({
    config: {
      strategy: { mode: 'conditional', conditions: [{ query: { 'metadata.tier': 'pro' }, then: 'pro' }] },
      targets: [target(mock, { name: 'pro' })],
    },
  })
  assert.equal(cond.route(hello(), { metadata: { tier: 'pro' } }).targets[0].option_index, 'config.targets[0]')
  assert.throws(
    () => cond.route(hello(), { metadata: { tier: 'free' } }),
    (e) => e instanceof GatewayError && e.code === 'no_route_matched' && e.status === 400,
  )
})

test('route() for another endpoint sees its url.pathname', () => {
  const gw = new Gateway({
    config: {
      strategy: {
        mode: 'conditional',
        conditions: [{ query: { 'url.pathname': { $regex: '/embeddings$' } }, then: 'embed' }],
        default: 'chat',
      },
      targets: [target(mock, { name: 'chat' }), target(other, { name: 'embed' })],
    },
  })
  const plan = gw.route({ model: 'e', input: 'x' }, { endpoint: 'embeddings' })
  assert.equal(plan.targets[0].option_index, 'config.targets[1]')
  assert.equal(plan.targets[0].url, `${other.v1}/embeddings`)
})

test('a registry names providers by @slug, virtual key, model and config id', async () => {
  const m = await startMock(openaiHandler({ tag: 'registry' }))
  const registry = {
    providers: { 'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: m.v1 } },
    configs: { 'pc-support': { virtual_key: 'openai-prod' } },
  }
  for (const gw of [
    new Gateway({ registry, provider: '@openai-prod' }),
    new Gateway({ registry, virtualKey: 'openai-prod' }),
    new Gateway({ registry, config: 'pc-support' }),
  ]) {
    const r = await gw.chat.completions.create(hello())
    assert.equal(r.choices[0].message.content, 'registry:hello')
  }
  const r = await new Gateway({ registry }).chat.completions.create(hello({ model: '@openai-prod/gpt-4o' }))
  assert.equal(r.route.provider, 'openai')
  assert.ok(m.requests.every((q) => q.headers.authorization === 'Bearer sk-prod'))
  assert.equal(m.requests.at(-1).body.model, 'gpt-4o')
  m.close()
  assert.throws(() => new Gateway({ registry, virtualKey: 'nope' }), (e) => e.code === 'unknown_virtual_key')
})

test('prompts from the registry: rendered, and run on their entry with the call\'s overrides', async () => {
  const mock = await startMock(openaiHandler({ tag: 'prompted' }))
  try {
    const registry = {
      providers: { 'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: mock.v1 } },
      prompts: {
        'support-reply': {
          virtual_key: 'openai-prod', version: '7', model: 'gpt-4o-mini', max_tokens: 256,
          messages: [{ role: 'system', content: 'You help {{product}} users. {{>sig}}' }, { role: 'user', content: '{{question}}' }],
        },
      },
      partials: { sig: 'Be brief.' },
    }
    const gw = new Gateway({ registry })
    const variables = { product: 'Gatewise', question: 'Fast?' }
    const rendered = await gw.prompts.render({ promptID: 'support-reply', variables })
    assert.equal(rendered.success, true)
    assert.equal(rendered.data.messages[0].content, 'You help Gatewise users. Be brief.')
    assert.equal(mock.requests.length, 0, 'rendering sends nothing')

    const r = await gw.prompts.completions.create({ promptID: 'support-reply', variables, max_tokens: 32 })
    assert.equal(r.choices[0].message.content, 'prompted:Fast?')
    assert.deepEqual(r.route.prompt, { id: 'support-reply', version: '7' })
    assert.equal(mock.requests[0].body.max_tokens, 32, "the call's override wins")
    assert.equal(mock.requests[0].headers.authorization, 'Bearer sk-prod')

    await assert.rejects(gw.prompts.completions.create({ promptID: 'support-reply', variables: { product: 'G' } }),
      (e) => e.status === 400 && e.param === 'variables.question')
    await assert.rejects(gw.prompts.render({ promptID: 'nope' }), (e) => e.status === 400 && /nope/.test(e.message))
  } finally {
    await mock.close()
  }
})

