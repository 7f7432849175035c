// `npm publish` runs this first (prepublishOnly): it refuses to publish the main package
// unless every platform package listed in package.json's napi.targets has its native
// module in npm/<platform>/ (the release workflow puts them there with `napi artifacts`),
// then lets `napi pre-publish` add them as optionalDependencies and publish them.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const missing = []
for (const dir of fs.readdirSync(path.join(root, 'npm'))) {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'npm', dir, 'package.json'), 'utf8'))
  if (!fs.existsSync(path.join(root, 'npm', dir, manifest.main))) missing.push(`npm/${dir}/${manifest.main}`)
}
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
if (fs.readdirSync(path.join(root, 'npm')).length !== pkg.napi.targets.length) {
  missing.push(`one npm/<platform> directory per napi.targets entry (run \`napi create-npm-dirs\`)`)
}
if (missing.length > 0) {
  console.error(`refusing to publish ${pkg.name}@${pkg.version} without its platform packages:\n  ${missing.join('\n  ')}`)
  process.exit(1)
}
execFileSync('npx', ['napi', 'pre-publish', '-t', 'npm', '--skip-gh-release'], { cwd: root, stdio: 'inherit' })
