// The binding's surface comes from the engine's one vocabulary: options, resources and
// error classes. These tests fail when the typings, the Python binding or the resources
// drift from it, and exercise what the vocabulary promises (per-call options, uploads,
// models.list, AbortSignal).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { Gateway, OPTIONS, GatewayError, BadRequestError } from 'gatewise'
import { mockRegistry, target, hello, openaiHandler, hold, json } from './helpers.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const mockOf = mockRegistry()
const native = (await import('../native.js')).default

/** The resource methods of a client, as `a.b.method` paths in snake_case. */
function surface(gw) {
  const out = []
  const walk = (obj, prefix) => {
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'fetch') continue
      const name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
      if (typeof value === 'function') out.push(prefix + name)
      else if (value && typeof value === 'object') walk(value, `${prefix}${name}.`)
    }
  }
  walk(gw, '')
  return out.sort()
}

test('the client has exactly the resources the engine lists', () => {
  const gw = new Gateway({ provider: 'openai', apiKey: 'k' })
  assert.deepEqual(surface(gw), native.resources().map(([method]) => method).sort())
  assert.equal(typeof gw.images.createVariation, 'function', 'leaves are camelCase in Node')
})

test('index.d.ts declares every option with the engine type, and no other', () => {
  const dts = fs.readFileSync(path.join(here, '..', 'index.d.ts'), 'utf8')
  const block = dts.match(/export interface GatewayOptions \{([\s\S]*?)\n\}/)[1]
  const declared = Object.fromEntries([...block.matchAll(/^ {2}(\w+)\?: (.+)$/gm)].map((m) => [m[1], m[2]]))
  assert.deepEqual(Object.keys(declared).sort(), OPTIONS.map((o) => o.camel).sort())
  for (const o of OPTIONS) {
    assert.ok(declared[o.camel].startsWith(o.typescriptType), `${o.camel}: ${declared[o.camel]} vs ${o.typescriptType}`)
  }
})

test('the Python binding exposes the same resources and options', (t) => {
  const python = process.env.GATEWISE_PYTHON
  if (!python) return t.skip('GATEWISE_PYTHON is not set (scripts/test.sh sets it to the venv with the wheel)')
  const script = `
import json, gatewise
gw = gatewise.Gateway(provider="openai", api_key="k")
def walk(obj, prefix, out):
    for name, value in vars(obj).items():
        if name.startswith("_"): continue
        if callable(value): out.append(prefix + name)
        else: walk(value, prefix + name + ".", out)
    return out
print(json.dumps({"resources": sorted(walk(gw, "", [])), "options": list(gatewise._client.OPTION_NAMES)}))
`
  const r = spawnSync(python, ['-c', script], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const py = JSON.parse(r.stdout)
  assert.deepEqual(py.resources, surface(new Gateway({ provider: 'openai', apiKey: 'k' })))
  assert.deepEqual(py.options, OPTIONS.map((o) => o.name))
})

test('per-call options: call options win over the client, x-portkey headers over both', async () => {
  const mock = await mockOf(openaiHandler())
  const gw = new Gateway({ config: target(mock), traceId: 'client' })
  let r = await gw.chat.completions.create(hello(), { traceId: 'call' })
  assert.equal(r.route.trace_id, 'call')
  r = await gw.chat.completions.create(hello(), { trace_id: 'call', headers: { 'x-portkey-trace-id': 'header' } })
  assert.equal(r.route.trace_id, 'header')
  r = await gw.chat.completions.create(hello())
  assert.equal(r.route.trace_id, 'client', 'a call leaves the client as it was')
})

test('an unknown per-call option is an error, never ignored', async () => {
  const gw = new Gateway({ provider: 'openai', apiKey: 'k' })
  await assert.rejects(gw.chat.completions.create(hello(), { maxRetries: 2 }), (e) => {
    assert.ok(e instanceof BadRequestError && e instanceof GatewayError, e.name)
    assert.equal(e.param, 'maxRetries')
    return true
  })
  assert.throws(() => new Gateway({ provider: 'openai', apiKey: 'k', tracId: 't' }), /tracId/)
})

test('timeout per call bounds each attempt', async () => {
  const slow = await mockOf(async (req, res) => {
    await hold(res, 3000)
    if (!res.destroyed) json(res, 200, {})
  })
  const gw = new Gateway({ config: target(slow) })
  await assert.rejects(gw.chat.completions.create(hello(), { timeout: 100 }), (e) => e.code === 'timeout')
})

test('an AbortSignal rejects a pending call with its reason', async () => {
  const slow = await mockOf(async (req, res) => {
    await hold(res, 3000)
    if (!res.destroyed) json(res, 200, {})
  })
  const gw = new Gateway({ config: target(slow) })
  const controller = new AbortController()
  const pending = gw.chat.completions.create(hello(), { signal: controller.signal })
  controller.abort(new Error('stop'))
  await assert.rejects(pending, /stop/)
  await assert.rejects(gw.chat.completions.create(hello(), { signal: AbortSignal.abort() }), { name: 'AbortError' })
})

test('uploads go as multipart: audio.transcriptions from a Buffer, images.edit from a Blob', async () => {
  const mock = await mockOf(openaiHandler({ tag: 'up' }))
  const gw = new Gateway({ config: target(mock) })
  const r = await gw.audio.transcriptions.create({ file: Buffer.from('RIFF-audio'), model: 'whisper-1', temperature: 0 })
  assert.equal(r.text, 'up:audio/transcriptions')
  assert.deepEqual(r.fields, { model: 'whisper-1', temperature: '0' })
  assert.equal(r.files[0].name, 'file')
  assert.equal(r.files[0].text, 'RIFF-audio')
  const image = new File([Buffer.from('PNG-bytes')], 'cat.png', { type: 'image/png' })
  const e = await gw.images.edit({ image, prompt: 'a hat', model: 'gpt-image-1' })
  assert.equal(e.files[0].filename, 'cat.png')
  assert.equal(e.files[0].type, 'image/png')
  assert.equal(e.fields.prompt, 'a hat')
  assert.equal(mock.requests.at(-1).url, '/v1/images/edits')
})

test('models.list is a GET of /models', async () => {
  const mock = await mockOf(openaiHandler({ tag: 'm' }))
  const gw = new Gateway({ config: target(mock) })
  const r = await gw.models.list()
  assert.equal(r.data[0].owned_by, 'm')
  assert.equal(mock.requests.at(-1).method, 'GET')
})

test("a provider without a key reads the provider's environment variable", async () => {
  const mock = await mockOf(openaiHandler())
  process.env.GROQ_API_KEY = 'gsk-from-env'
  try {
    const gw = new Gateway({ provider: 'groq', customHost: mock.v1 })
    await gw.chat.completions.create(hello())
    assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer gsk-from-env')
    await new Gateway({ provider: 'groq', apiKey: 'explicit', customHost: mock.v1 }).chat.completions.create(hello())
    assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer explicit', 'an explicit key wins')
  } finally {
    delete process.env.GROQ_API_KEY
  }
})
