// The offline base map: a plain background, a graticule and the data's outline.
// Nothing here names a URL, so MapLibre fetches no tiles, glyphs or sprites.

const GRID_STEP = 30 // degrees between graticule lines

function graticule() {
  const lines = []
  for (let lon = -180; lon <= 180; lon += GRID_STEP) {
    const coords = []
    for (let lat = -85; lat <= 85; lat += 5) coords.push([lon, lat])
    lines.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: coords } })
  }
  for (let lat = -60; lat <= 60; lat += GRID_STEP) {
    const coords = []
    for (let lon = -180; lon <= 180; lon += 5) coords.push([lon, lat])
    lines.push({ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: coords } })
  }
  return { type: 'FeatureCollection', features: lines }
}

function outline(ring) {
  return {
    type: 'FeatureCollection',
    features: ring ? [{ type: 'Feature', properties: {}, geometry: { type: 'LineString', coordinates: ring } }] : [],
  }
}

export function offlineStyle(config) {
  return {
    version: 8,
    sources: {
      graticule: { type: 'geojson', data: graticule() },
      outline: { type: 'geojson', data: outline(config.outline) },
    },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#1d2330' } },
      { id: 'graticule', type: 'line', source: 'graticule', paint: { 'line-color': '#4a5468', 'line-width': 0.6 } },
      { id: 'outline', type: 'line', source: 'outline', paint: { 'line-color': '#e8e8e8', 'line-width': 1.2 } },
    ],
  }
}
