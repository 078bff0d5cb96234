// Bundle the preview page into ../src/topozarr/preview/static (shipped as package data).
// Run through `nox -s preview_bundle`, which then records the digest of these sources.
import { build } from 'esbuild'
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, '..', 'src', 'topozarr', 'preview', 'static')
mkdirSync(out, { recursive: true })

await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outfile: join(out, 'preview.js'),
  legalComments: 'eof',
  logLevel: 'warning',
})
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'))
copyFileSync(join(here, 'src', 'preview.css'), join(out, 'preview.css'))
for (const name of ['maplibre-gl.css', 'maplibre-gl.js']) {
  copyFileSync(join(here, 'node_modules', 'maplibre-gl', 'dist', name), join(out, name))
}
