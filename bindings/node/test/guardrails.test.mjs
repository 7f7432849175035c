// Guardrail hooks in-process and through `gatewise serve`: refusals as errors carrying
// `hook_results`, failures that let the answer through, registry guardrails, PII
// redaction, a webhook's verdict, held streams.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import OpenAI from 'openai'

import { Gateway } from 'gatewise'
import { json, openaiHandler, serveGateway, startMock, target } from './helpers.mjs'

const NO_SECRETS = { checks: [{ id: 'default.regexMatch', parameters: { rule: 'sk-[A-Za-z0-9]+', not: true } }], deny: true }
const ask = (content, extra = {}) => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...extra })

test('a denying hook rejects with 446 and its results; a clean request passes with them', async () => {
  const mock = await startMock(openaiHandler({ tag: 'ok' }))
  try {
    const gw = new Gateway({ config: target(mock, { before_request_hooks: [{ id: 'no-secrets', ...NO_SECRETS }] }) })
    await assert.rejects(gw.chat.completions.create(ask('my key is sk-abc123')), (e) => {
      assert.equal(e.status, 446)
      assert.equal(e.code, 'hooks_failed')
      const hook = e.body.hook_results.before_request_hooks[0]
      assert.deepEqual([hook.id, hook.verdict, hook.deny], ['no-secrets', false, true])
      assert.equal(e.route.hook_results.before_request_hooks[0].checks[0].data.match, 'sk-abc123')
      return true
    })
    assert.equal(mock.requests.length, 0, 'the provider is never called')
    const r = await gw.chat.completions.create(ask('nothing secret'))
    assert.equal(r.choices[0].message.content, 'ok:nothing secret')
    assert.equal(r.hook_results.before_request_hooks[0].verdict, true)
    assert.deepEqual(r.route.hook_results.after_request_hooks, [])
  } finally {
    await mock.close()
  }
})

test('a failed hook without deny answers with its results; PII is redacted before it leaves', async () => {
  const mock = await startMock(openaiHandler({ tag: 'ok' }))
  try {
    const config = target(mock, {
      input_guardrails: [{ 'default.wordCount': { maxWords: 3 } }, { 'default.pii': { redact: true } }],
      output_guardrails: [{ endsWith: { suffix: 'Thanks' } }],
    })
    const r = await new Gateway({ config }).chat.completions.create(ask('mail me at jane@example.com please'))
    assert.equal(r.choices[0].message.content, 'ok:mail me at [REDACTED_EMAIL] please')
    assert.equal(r.hook_results.before_request_hooks[0].verdict, false)
    assert.equal(r.hook_results.before_request_hooks[1].transformed, true)
    assert.equal(r.hook_results.after_request_hooks[0].checks[0].id, 'default.endsWith')
    assert.equal(mock.requests[0].body.messages[0].content, 'mail me at [REDACTED_EMAIL] please')
  } finally {
    await mock.close()
  }
})

test("a webhook's verdict decides, and a held stream is refused whole", async () => {
  const mock = await startMock(openaiHandler({ tag: 'password' }))
  const verdicts = [false, true]
  const webhook = await startMock(async (req, res) => json(res, 200, { verdict: verdicts.shift(), data: { seen: true } }))
  try {
    const hook = { id: 'svc', deny: true, checks: [{ id: 'default.webhook', parameters: { webhookURL: `${webhook.v1}/check`, timeout: 1000 } }] }
    const gw = new Gateway({ config: target(mock, { before_request_hooks: [hook] }) })
    await assert.rejects(gw.chat.completions.create(ask('hi')), (e) => e.status === 446 && e.body.hook_results.before_request_hooks[0].checks[0].data.seen === true)
    assert.equal((await gw.chat.completions.create(ask('hi'))).choices[0].message.content, 'password:hi')
    assert.equal(webhook.requests[0].body.eventType, 'beforeRequestHook')
    assert.equal(webhook.requests[0].body.request.text, 'hi')

    const held = new Gateway({ config: target(mock, { output_guardrails: [{ 'default.contains': { words: ['password'], operator: 'none' }, deny: true }] }) })
    await assert.rejects(held.chat.completions.create(ask('x', { stream: true })), (e) => e.status === 446)
  } finally {
    await mock.close()
    await webhook.close()
  }
})

test('the server answers 246 and 446 to the OpenAI SDK with registry guardrails', async () => {
  const mock = await startMock(openaiHandler({ tag: 'ok' }))
  try {
    const base = await serveGateway({
      providers: { 'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: mock.v1 } },
      guardrails: { 'no-secrets': NO_SECRETS, short: { checks: [{ id: 'default.wordCount', parameters: { maxWords: 2 } }] } },
      configs: { guarded: { virtual_key: 'openai-prod', input_guardrails: ['no-secrets', 'short'] } },
    })
    const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { 'x-portkey-config': 'guarded' } })
    const { data, response } = await client.chat.completions.create(ask('three words here')).withResponse()
    assert.equal(response.status, 246)
    assert.deepEqual(data.hook_results.before_request_hooks.map((h) => h.verdict), [true, false])
    assert.equal(data.choices[0].message.content, 'ok:three words here')
    await assert.rejects(client.chat.completions.create(ask('sk-abc123')), (e) => e.status === 446)
    assert.equal(mock.requests.length, 1)
  } finally {
    await mock.close()
  }
})
