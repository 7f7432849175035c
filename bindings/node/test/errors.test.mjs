// Errors: every failure is a GatewayError of the OpenAI SDKs' class for it, with code,
// status, param, provider and route.
import { test } from 'node:test'
import assert from 'node:assert/strict'

import {
  Gateway,
  GatewayError,
  APIStatusError,
  APIConnectionError,
  APITimeoutError,
  BadRequestError,
  ConfigError,
  AuthenticationError,
  PermissionDeniedError,
  RateLimitError,
  InternalServerError,
} from 'gatewise'
import { mockRegistry, target, hello, json, hold, deadUrl, openaiHandler } from './helpers.mjs'

const mockOf = mockRegistry()

function isGatewayError(fields) {
  return (e) => {
    assert.ok(e instanceof GatewayError, `not a GatewayError: ${e}`)
    assert.ok(e instanceof Error)
    for (const [k, v] of Object.entries(fields)) assert.deepEqual(e[k], v, `${k} of ${e.message}`)
    return true
  }
}

test('an invalid config throws ConfigError (a BadRequestError) with code, param, message and status', () => {
  assert.throws(
    () =>
      new Gateway({
        config: { strategy: { mode: 'fallback' }, targets: [{ provider: 'openai', api_key: 'k', retry: { attempts: 9 } }] },
      }),
    isGatewayError({ code: 'invalid_config', param: 'targets[0].retry.attempts', status: 400, name: 'ConfigError' }),
  )
  const e = (() => {
    try {
      new Gateway({ config: { provider: 'openai', retry: { attempts: 9 } } })
    } catch (err) {
      return err
    }
  })()
  assert.ok(e instanceof ConfigError && e instanceof BadRequestError && e instanceof APIStatusError)
  assert.equal(e.path, e.param, 'the old name still reads')
  assert.throws(() => new Gateway({ config: '{not json' }), isGatewayError({ code: 'invalid_config' }))
  assert.throws(() => new Gateway({ config: '/nonexistent/gatewise.json' }), isGatewayError({ code: 'invalid_config' }))
  assert.throws(() => new Gateway({}), isGatewayError({ code: 'invalid_config' }))
  assert.throws(() => new Gateway({ provider: 'nope', apiKey: 'k' }), isGatewayError({ code: 'invalid_config', param: 'provider' }))
})

test('429 from the upstream: rate_limited, status 429, provider, route', async () => {
  const mock = await mockOf((req, res) =>
    json(res, 429, { error: { message: 'slow down', type: 'rate_limit_error' } }, { 'retry-after-ms': '10' }),
  )
  const gw = new Gateway({ config: target(mock), traceId: 'tr-429' })
  await assert.rejects(
    gw.chat.completions.create(hello()),
    isGatewayError({ code: 'rate_limited', status: 429, provider: 'openai', retryable: true, name: 'RateLimitError' }),
  )
  const err = await gw.chat.completions.create(hello()).catch((e) => e)
  assert.ok(err instanceof RateLimitError && err instanceof APIStatusError)
  assert.match(err.message, /slow down/)
  assert.equal(err.route.provider, 'openai')
  assert.equal(err.route.option_index, 'config')
  assert.equal(err.route.trace_id, 'tr-429')
  assert.equal(err.body.error.message, err.message)
})

test('401 from the upstream keeps its status', async () => {
  const mock = await mockOf((req, res) =>
    json(res, 401, { error: { message: 'Incorrect API key', type: 'invalid_request_error', code: 'invalid_api_key' } }),
  )
  const gw = new Gateway({ config: target(mock) })
  await assert.rejects(
    gw.chat.completions.create(hello()),
    isGatewayError({ status: 401, provider: 'openai', retryable: false, name: 'AuthenticationError' }),
  )
  const err = await gw.chat.completions.create(hello()).catch((e) => e)
  assert.ok(err instanceof AuthenticationError && err instanceof APIStatusError)
})

test('other upstream statuses pick their OpenAI SDK class', async () => {
  for (const [status, Class] of [
    [403, PermissionDeniedError],
    [500, InternalServerError],
    [418, APIStatusError],
  ]) {
    const mock = await mockOf((req, res) => json(res, status, { error: { message: `status ${status}` } }))
    const gw = new Gateway({ config: target(mock) })
    const err = await gw.chat.completions.create(hello()).catch((e) => e)
    assert.ok(err instanceof Class, `${status}: ${err.name}`)
    assert.equal(err.name, Class.name)
    assert.equal(err.status, status)
  }
})

test('requestTimeout gives a timeout error (408), then falls back when configured', async () => {
  const slow = await mockOf(async (req, res) => {
    await hold(res, 3000)
    if (!res.destroyed) json(res, 200, {})
  })
  const gw = new Gateway({ config: target(slow), requestTimeout: 150 })
  const started = performance.now()
  await assert.rejects(
    gw.chat.completions.create(hello()),
    isGatewayError({ code: 'timeout', status: 408, name: 'APITimeoutError' }),
  )
  assert.ok(performance.now() - started < 2000)
  const good = await mockOf(openaiHandler({ tag: 'fast' }))
  const fb = new Gateway({
    config: { strategy: { mode: 'fallback' }, targets: [target(slow), target(good)] },
    requestTimeout: 150,
  })
  const r = await fb.chat.completions.create(hello())
  assert.equal(r.choices[0].message.content, 'fast:hello')
  assert.equal(r.route.attempts[0].status, 408)
})

test('connection refused: upstream_connection_error (502)', async () => {
  const gw = new Gateway({ provider: 'openai', apiKey: 'k', customHost: await deadUrl() })
  await assert.rejects(
    gw.chat.completions.create(hello()),
    isGatewayError({ code: 'upstream_connection_error', status: 502, retryable: true, name: 'APIConnectionError' }),
  )
  const err = await gw.chat.completions.create(hello()).catch((e) => e)
  assert.ok(err instanceof APIConnectionError && !(err instanceof APITimeoutError))
})

test('a malformed request body is invalid_request', async () => {
  const gw = new Gateway({ provider: 'openai', apiKey: 'k', customHost: await deadUrl() })
  await assert.rejects(gw.chat.completions.create({ model: 'x' }), isGatewayError({ code: 'invalid_request', status: 400 }))
  await assert.rejects(gw.chat.completions.create('not an object'), isGatewayError({ code: 'invalid_request' }))
})

test('no_route_matched from a conditional config without default', async () => {
  const gw = new Gateway({
    config: {
      strategy: { mode: 'conditional', conditions: [{ query: { 'metadata.tier': 'pro' }, then: 'a' }] },
      targets: [{ provider: 'openai', api_key: 'k', name: 'a' }],
    },
  })
  await assert.rejects(gw.chat.completions.create(hello()), isGatewayError({ code: 'no_route_matched', status: 400 }))
})

test('options that are not an object are a TypeError', () => {
  assert.throws(() => new Gateway('openai'), TypeError)
})

test('a translated provider answering 200 with garbage: invalid_upstream_response (502)', async () => {
  const garbage = await mockOf(async (req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end('<html>proxy error</html>')
  })
  const gw = new Gateway({ config: target(garbage, { provider: 'anthropic' }) })
  const err = await gw.chat.completions.create(hello()).catch((e) => e)
  assert.ok(err instanceof InternalServerError, err)
  assert.equal(err.code, 'invalid_upstream_response')
  assert.equal(err.status, 502)
  assert.equal(err.provider, 'anthropic')
})
