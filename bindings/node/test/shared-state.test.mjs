// Two in-process clients sharing one real redis-server (started here on a free loopback
// port) hold one rate limit between them: the `redis` option of the client.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import net from 'node:net'

import { Gateway, RateLimitError, ConfigError } from 'gatewise'
import { startMock, openaiHandler, hello, sleep } from './helpers.mjs'

let mock
let redis
let redisUrl

async function freePort() {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function reachable(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

before(async () => {
  mock = await startMock(openaiHandler({ tag: 'capped' }))
  const port = await freePort()
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  redis.on('error', (err) => {
    throw new Error(`redis-server is needed (scripts/redis.sh installs Debian's package): ${err.message}`)
  })
  const deadline = Date.now() + 10_000
  while (!(await reachable(port))) {
    assert.ok(Date.now() < deadline, 'redis-server did not start')
    await sleep(20)
  }
  redisUrl = `redis://127.0.0.1:${port}/0`
})
after(async () => {
  redis.kill()
  await mock.close()
})

test('two clients sharing Redis hold one provider limit', async () => {
  const registry = {
    providers: {
      capped: { provider: 'openai', api_key: 'sk-mock', custom_host: mock.v1, limits: { requests_per_minute: 2 } },
    },
  }
  const first = new Gateway({ registry, virtualKey: 'capped', redis: redisUrl })
  const second = new Gateway({ registry, virtualKey: 'capped', redis: redisUrl })
  await first.chat.completions.create(hello())
  await second.chat.completions.create(hello())
  await assert.rejects(first.chat.completions.create(hello()), (err) => {
    assert.ok(err instanceof RateLimitError)
    assert.equal(err.code, 'rate_limited')
    assert.equal(err.route.limit, 'provider capped: requests_per_minute')
    return true
  })
  assert.equal(mock.requests.length, 2)
})

test('redisDown is checked', () => {
  assert.throws(
    () => new Gateway({ provider: 'openai', apiKey: 'k', redis: redisUrl, redisDown: 'sometimes' }),
    (err) => err instanceof ConfigError && err.param === 'redis_down',
  )
})
