// `topozarr preview`: one variable of a pyramid on MapLibre through @carbonplan/zarr-layer.
// Everything comes from the local server (config.json, the store under store/); the base
// map is drawn from GeoJSON made here, so viewing needs no network.

import { ZarrLayer } from '@carbonplan/zarr-layer'
import { offlineStyle } from './style.js'
import { buildPicker, buildSliders, drawLegend, formatValue, setText, showProblem } from './panel.js'

// MapLibre is loaded from its own unmodified dist file (static/maplibre-gl.js): its bundle
// builds the worker from its own source text, which re-bundling and minifying would break.
const maplibregl = window.maplibregl
const LAYER_ID = 'data'
const state = { config: null, map: null, layer: null, variable: null, selector: {}, loading: false, error: null, value: null }
window.__preview = state

function variableNamed(name) {
  return state.config.variables.find((v) => v.name === name)
}

function layerOptions(variable) {
  const config = state.config
  const options = {
    id: LAYER_ID,
    source: new URL(config.store_url, window.location.href).href,
    variable: variable.name,
    zarrVersion: 3, // topozarr writes v3 only: no probing for v2 metadata (404s)
    clim: variable.clim,
    colormap: config.colormaps[variable.colormap],
    selector: state.selector,
    spatialDimensions: config.spatial_dimensions,
    bounds: config.bounds,
    latIsAscending: config.lat_is_ascending,
    onLoadingStateChange: ({ loading, error }) => {
      state.loading = loading
      if (error) {
        state.error = String(error.message || error)
        showProblem(`zarr-layer could not draw ${variable.name}: ${state.error}`)
      }
    },
  }
  if (config.proj4) options.proj4 = config.proj4
  else options.crs = config.crs
  return options
}

function showVariable(name) {
  const variable = variableNamed(name)
  state.variable = variable
  state.selector = Object.fromEntries(variable.extra_dims.map((d) => [d.name, { selected: 0, type: 'index' }]))
  if (state.map.getLayer(LAYER_ID)) state.map.removeLayer(LAYER_ID)
  state.layer = new ZarrLayer(layerOptions(variable))
  state.map.addLayer(state.layer, 'outline')
  buildSliders(variable, (dim, index) => {
    state.selector = { ...state.selector, [dim]: { selected: index, type: 'index' } }
    state.layer.setSelector(state.selector)
  })
  drawLegend(variable, state.config.colormaps[variable.colormap])
  setText('readout', 'move the cursor over the data')
}

function currentLevel() {
  const index = state.layer?.mode?.activeLevel?.index
  return index === undefined || index === null ? null : index
}

function updateStatus() {
  const level = currentLevel()
  const asset = level === null ? '–' : state.config.levels[level]?.asset ?? String(level)
  const zoom = state.map.getZoom()
  setText('zoom', zoom.toFixed(2))
  setText('level', asset)
  document.body.dataset.level = level === null ? '' : String(level)
  document.body.dataset.zoom = zoom.toFixed(3)
}

let queryToken = 0
async function readout(lngLat) {
  if (!state.layer) return
  const token = ++queryToken
  const point = { type: 'Point', coordinates: [lngLat.lng, lngLat.lat] }
  let value = null
  try {
    const result = await state.layer.queryData(point, state.selector)
    const values = result[state.variable.name]
    value = Array.isArray(values) || ArrayBuffer.isView(values) ? values[0] : null
  } catch (err) {
    value = null
  }
  if (token !== queryToken) return
  state.value = value ?? null
  const units = state.variable.units ? ` ${state.variable.units}` : ''
  const where = `${lngLat.lat.toFixed(3)}°, ${lngLat.lng.toFixed(3)}°`
  const text = value === null || value === undefined || Number.isNaN(value) ? 'no data' : `${formatValue(value)}${units}`
  setText('readout', `${state.variable.name} = ${text} at ${where}`)
  document.getElementById('readout').dataset.value = value === null || value === undefined ? '' : String(value)
}

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()))
}

function levelPending() {
  const mode = state.layer?.mode
  if (!mode) return true
  return mode.loadingLevelIndex !== null || mode.activeLevel?.index !== mode.desiredLevelIndex
}

// Resolves once the layer has loaded what the view needs and a few frames were drawn
// without anything pending: screenshots and readouts taken then show the final picture.
state.settled = async (timeoutMs = 20000) => {
  const start = performance.now()
  let calm = 0
  while (performance.now() - start < timeoutMs) {
    await nextFrame()
    const busy = state.loading || !state.map.loaded() || levelPending()
    calm = busy ? 0 : calm + 1
    if (calm >= 8) {
      updateStatus()
      return { level: currentLevel(), zoom: state.map.getZoom(), error: state.error }
    }
  }
  throw new Error('the preview did not finish loading')
}
state.showVariable = (name) => {
  document.getElementById('variable').value = name
  showVariable(name)
}
state.readout = readout

async function main() {
  const response = await fetch('config.json')
  const config = await response.json()
  state.config = config
  setText('store-name', config.name)
  if (config.problem) showProblem(config.problem)
  const map = new maplibregl.Map({
    container: 'map',
    style: offlineStyle(config),
    bounds: config.view_bounds,
    fitBoundsOptions: { padding: 20 },
    renderWorldCopies: false,
    attributionControl: false,
    fadeDuration: 0,
    minZoom: 0,
    // Keeps the last frame readable (canvas.toBlob, drawImage): screenshots of the map.
    canvasContextAttributes: { preserveDrawingBuffer: true },
  })
  state.map = map
  map.on('move', updateStatus)
  map.on('render', updateStatus)
  map.on('mousemove', (e) => readout(e.lngLat))
  if (!config.drawable) {
    state.ready = true
    return
  }
  buildPicker(config, showVariable)
  map.on('load', () => {
    showVariable(config.variables[0].name)
    state.ready = true
  })
}

main().catch((err) => {
  state.error = String(err)
  showProblem(`the preview failed to start: ${err}`)
})
