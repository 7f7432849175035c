// The hand-written typings type-check the documented usage: index.d.ts for require
// (test/types/usage.ts), index.d.mts for import (test/types/usage.mts).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import fs from 'node:fs'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const here = path.dirname(fileURLToPath(import.meta.url))

test('index.d.ts (require) and index.d.mts (import) type-check the documented usage with tsc --strict', () => {
  const tsc = require.resolve('typescript/bin/tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(here, 'types')], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('index.d.ts declares exactly what index.js exports', async () => {
  const gatewise = require('gatewise')
  const esm = await import('gatewise')
  const declared = [...fs.readFileSync(path.join(here, '..', 'index.d.ts'), 'utf8').matchAll(/^export declare (?:class|const) (\w+)/gm)]
    .map((m) => m[1])
    .sort()
  assert.deepEqual(Object.keys(gatewise).sort(), declared)
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), declared)
})
