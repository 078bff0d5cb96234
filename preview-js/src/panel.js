// The side panel: variable picker, sliders for extra dims, legend, status and readout.

function el(tag, attrs = {}, text = '') {
  const node = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  if (text) node.textContent = text
  return node
}

export function formatValue(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return 'no data'
  const abs = Math.abs(value)
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(4)
  return Number(value.toPrecision(6)).toString()
}

export function buildPicker(config, onChange) {
  const select = document.getElementById('variable')
  select.replaceChildren(...config.variables.map((v) => el('option', { value: v.name }, v.name)))
  select.addEventListener('change', () => onChange(select.value))
  return select
}

export function buildSliders(variable, onChange) {
  const box = document.getElementById('dims')
  box.replaceChildren()
  for (const dim of variable.extra_dims) {
    const row = el('label', { class: 'dim' })
    const name = el('span', { class: 'dim-name' }, dim.name)
    const input = el('input', {
      type: 'range', min: '0', max: String(dim.labels.length - 1), value: '0', step: '1',
      id: `dim-${dim.name}`, 'data-dim': dim.name,
    })
    const label = el('span', { class: 'dim-label', id: `dim-${dim.name}-label` }, dim.labels[0])
    input.addEventListener('input', () => {
      label.textContent = dim.labels[Number(input.value)]
      onChange(dim.name, Number(input.value))
    })
    row.append(name, input, label)
    box.append(row)
  }
}

export function drawLegend(variable, colormap) {
  const bar = document.getElementById('legend-bar')
  bar.style.background = `linear-gradient(to right, ${colormap.join(', ')})`
  document.getElementById('legend-low').textContent = formatValue(variable.clim[0])
  document.getElementById('legend-high').textContent = formatValue(variable.clim[1])
  const units = variable.units ? ` (${variable.units})` : ''
  document.getElementById('legend-title').textContent =
    `${variable.long_name || variable.name}${units} · ${variable.colormap} · ${variable.clim_source}`
}

export function setText(id, text) {
  document.getElementById(id).textContent = text
}

export function showProblem(message) {
  const box = document.getElementById('problem')
  box.textContent = message
  box.hidden = false
}
