// Pack what `npm publish` would ship, from the native module this machine built: the
// main package (no native module inside: it comes from a platform package, as for users)
// with its optionalDependencies on every platform package (as `napi pre-publish` adds
// them), and this platform's package with the module. Prints the two tarballs' paths.
//
//   node scripts/pack.mjs <output dir>
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const out = path.resolve(process.argv[2] ?? path.join(root, 'pack'))
fs.mkdirSync(out, { recursive: true })
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))

const platforms = fs.readdirSync(path.join(root, 'npm')).map((dir) => {
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'npm', dir, 'package.json'), 'utf8'))
  return { dir, manifest }
})
const built = fs.readdirSync(root).filter((f) => f.endsWith('.node'))
if (built.length !== 1) throw new Error(`expected the one native module \`npm run build\` makes, found: ${built.join(', ') || 'none'}`)
const mine = platforms.find((p) => p.manifest.main === built[0])
if (!mine) throw new Error(`${built[0]} is not the module of any npm/<platform> package`)

const npmPack = (dir) => {
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: dir, encoding: 'utf8' })
  return path.join(out, name.trim().split('\n').at(-1))
}

// This platform's package, staged so the repository's npm/ directory stays clean.
const platformStage = fs.mkdtempSync(path.join(out, 'platform-'))
fs.copyFileSync(path.join(root, 'npm', mine.dir, 'package.json'), path.join(platformStage, 'package.json'))
fs.copyFileSync(path.join(root, built[0]), path.join(platformStage, built[0]))
const platformTarball = npmPack(platformStage)

// The main package: its `files` (no native module among them).
const mainStage = fs.mkdtempSync(path.join(out, 'main-'))
for (const file of pkg.files) {
  fs.copyFileSync(path.join(root, file), path.join(mainStage, file))
}
for (const doc of ['README.md', 'LICENSE']) {
  const from = [path.join(root, doc), path.join(root, '..', '..', doc)].find((p) => fs.existsSync(p))
  if (from) fs.copyFileSync(from, path.join(mainStage, doc))
}
const published = { ...pkg, optionalDependencies: Object.fromEntries(platforms.map((p) => [p.manifest.name, pkg.version])) }
delete published.devDependencies
delete published.scripts
delete published.overrides
fs.writeFileSync(path.join(mainStage, 'package.json'), JSON.stringify(published, null, 2) + '\n')
const mainTarball = npmPack(mainStage)

fs.rmSync(platformStage, { recursive: true })
fs.rmSync(mainStage, { recursive: true })
console.log(mainTarball)
console.log(platformTarball)
