// The official `openai` npm SDK against a real `gatewise serve` with a registry: the SDK's
// apiKey is a gateway key, and the model names a registry entry (`@slug/model`).
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import OpenAI from 'openai'
import { startMock, openaiHandler, sleep } from './helpers.mjs'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const BINARY = process.env.GATEWISE_BIN ?? path.join(ROOT, 'target/debug/gatewise')
const servers = []
after(() => servers.forEach((s) => s.kill('SIGTERM')))

async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  const { port } = server.address()
  await new Promise((r) => server.close(r))
  return port
}

async function serve(registry) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewise-'))
  const file = path.join(dir, 'registry.json')
  fs.writeFileSync(file, JSON.stringify(registry))
  const port = await freePort()
  servers.push(spawn(BINARY, ['serve', '--port', String(port), '--registry', file, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] }))
  for (let i = 0; i < 200; i++) {
    const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false)
    if (up) return `http://127.0.0.1:${port}/v1`
    await sleep(25)
  }
  throw new Error('gatewise serve did not start')
}

const hash = (key) => `sha256:${createHash('sha256').update(key).digest('hex')}`

test('the openai SDK with a gateway key and a registry model', { skip: !fs.existsSync(BINARY) && 'no gatewise binary' }, async () => {
  const m = await startMock(openaiHandler({ tag: 'served' }))
  const baseURL = await serve({
    providers: {
      'openai-prod': { provider: 'openai', api_key: 'sk-prod', custom_host: m.v1 },
      claude: { provider: 'anthropic', api_key: 'sk-ant', custom_host: m.v1 },
    },
    keys: { 'team-a': { hash: hash('gw-team-a'), providers: ['openai-prod'] } },
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
