// What a user of the npm package gets, without Rust: the packed main package and this
// platform's package installed into an empty project by npm, with no cargo or rustc on
// PATH; then `require` and `import`, and a call routed to a mock upstream on loopback.
//
//   node scripts/install-check.mjs <main.tgz> <platform.tgz>
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const [mainTarball, platformTarball] = process.argv.slice(2).map((p) => path.resolve(p))
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'gatewise-npm-'))
// PATH with node and npm, and nothing of Rust's.
const nodeDir = path.dirname(process.execPath)
const env = { ...process.env, PATH: [nodeDir, '/usr/bin', '/bin'].join(':'), CARGO_HOME: '/nonexistent', RUSTUP_HOME: '/nonexistent' }
for (const tool of ['cargo', 'rustc']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { env, stdio: 'pipe' })
    throw new Error(`${tool} is on the PATH the install check uses`)
  } catch (e) {
    if (e.message.includes('is on the PATH')) throw e
  }
}
fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'install-check', version: '1.0.0', private: true }))
execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', mainTarball, platformTarball], { cwd: project, env, stdio: 'inherit' })

const installed = path.join(project, 'node_modules', 'gatewise')
if (fs.readdirSync(installed).some((f) => f.endsWith('.node'))) throw new Error('the main package carries a native module')

const check = `
const http = require('node:http')
const assert = require('node:assert/strict')
const cjs = require('gatewise')
const server = http.createServer((req, res) => {
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    const ask = JSON.parse(body).messages[0].content
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: 'echo:' + ask }, finish_reason: 'stop' }] }))
  })
})
server.listen(0, '127.0.0.1', async () => {
  const { Gateway } = await import('gatewise')
  assert.equal(Gateway, cjs.Gateway, 'require and import give the same class')
  const v1 = 'http://127.0.0.1:' + server.address().port + '/v1'
  const gw = new Gateway({ config: { provider: 'openai', api_key: 'sk-x', custom_host: v1 } })
  const r = await gw.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })
  assert.equal(r.choices[0].message.content, 'echo:hi')
  assert.equal(r.route.provider, 'openai')
  console.log('installed from npm tarballs without Rust: routed a call via ' + require.resolve('${path.basename(platformTarball).replace(/-\d+\.\d+\.\d+.*$/, '')}'))
  server.close()
})
`
execFileSync(process.execPath, ['-e', check], { cwd: project, env, stdio: 'inherit' })
fs.rmSync(project, { recursive: true, force: true })
