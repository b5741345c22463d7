// The home page: the sessions list kept up to date, the form that creates
// a session, and the drawing canvas against the best model.

import { getJSON, postJSON } from './api.js';
import { sparkline } from './chart.js';
import { DrawPad } from './drawpad.js';
import { formatPercent } from './format.js';

// ---- Drawing against the best model ----

const drawCard = document.querySelector('[data-home-draw]');
const modelId = drawCard.dataset.modelId;
const pad = new DrawPad(drawCard.querySelector('[data-drawpad]'), {
  predict: (drawing) => {
    if (!modelId) return Promise.reject(new Error('there is no model yet'));
    return postJSON(`/api/sessions/${modelId}/predict`, drawing);
  },
});
if (!modelId) pad.setStatus('Create a session first: there is no model to ask yet.');

// ---- Sessions list ----

const rows = new Map(); // id -> {el, seq, loss: number[]}
for (const el of document.querySelectorAll('[data-session-row]')) {
  const canvas = el.querySelector('[data-sparkline]');
  let loss = [];
  try {
    loss = JSON.parse(canvas.dataset.loss || '[]');
  } catch {
    loss = [];
  }
  const row = { el, canvas, seq: Number(el.dataset.seq) || 0, loss, fresh: [] };
  rows.set(el.dataset.id, row);
  drawSparkline(row);
}

// The server sends the history downsampled to ~60 values; points that
// arrive later are averaged into buckets of the same kind.
function drawSparkline(row) {
  const values = row.loss.concat(bucket(row.fresh, Math.max(1, Math.ceil(row.fresh.length / 20))));
  sparkline(row.canvas, values.length > 90 ? bucket(values, Math.ceil(values.length / 60)) : values);
}

function bucket(values, size) {
  const out = [];
  for (let i = 0; i < values.length; i += size) {
    const part = values.slice(i, i + size);
    out.push(part.reduce((a, b) => a + b, 0) / part.length);
  }
  return out;
}

async function refreshSessions() {
  let list;
  try {
    list = await getJSON('/api/sessions');
  } catch {
    return;
  }
  let unknown = 0;
  for (const info of list) {
    const row = rows.get(info.id);
    if (!row) {
      unknown++;
      continue;
    }
    const badge = row.el.querySelector('[data-status]');
    badge.textContent = info.status;
    badge.dataset.status = info.status;
    badge.className = `badge badge-${info.status}`;
    row.el.querySelector('[data-epoch]').textContent = `${info.epoch} / ${info.config.epochs}`;
    const acc = row.el.querySelector('[data-acc]');
    if (info.testAcc !== undefined && info.testAcc !== null) acc.textContent = formatPercent(info.testAcc);
    if (info.seq > row.seq) await growSparkline(info.id, row);
  }
  const note = document.querySelector('[data-sessions-note]');
  if (note) {
    note.replaceChildren();
    if (unknown) {
      const a = document.createElement('a');
      a.href = '/';
      a.textContent = `${unknown} new session${unknown === 1 ? '' : 's'}: reload the list`;
      note.append(a);
    }
  }
}

// growSparkline fetches the events a row has not seen and adds their loss.
async function growSparkline(id, row) {
  let events;
  try {
    events = await getJSON(`/api/sessions/${id}/history?since=${row.seq}`);
  } catch {
    return;
  }
  for (const e of events) {
    row.seq = Math.max(row.seq, e.seq);
    if (e.type === 'metrics') for (const p of e.data.points) row.fresh.push(p.loss);
  }
  row.el.dataset.seq = String(row.seq);
  drawSparkline(row);
}

// Poll gently, and not at all while the tab is hidden.
let timer = 0;
function schedule() {
  clearTimeout(timer);
  if (!document.hidden) timer = setTimeout(async () => {
    await refreshSessions();
    schedule();
  }, 3000);
}
document.addEventListener('visibilitychange', schedule);
schedule();

// ---- Create a session ----

const form = document.querySelector('[data-testid=create-form]');
const presets = JSON.parse(document.getElementById('presets-data').textContent);
const presetSelect = form.elements.preset;
const layersField = form.querySelector('[data-layers-field]');
const layersInput = form.elements.layers;

function preset() {
  return presets.find((p) => p.name === presetSelect.value) || presets[0];
}

// The preset's own settings become the placeholders: an empty field means
// "the preset's value", which is what the API does with an omitted field.
function showPreset() {
  const p = preset();
  form.querySelector('[data-preset-description]').textContent = p.description;
  form.elements.learningRate.placeholder = String(p.learningRate);
  form.elements.batchSize.placeholder = String(p.batchSize);
  form.elements.epochs.placeholder = String(p.epochs);
  form.elements.optimizer.options[0].textContent = `${p.optimizer} (default)`;
  if (!layersTouched) layersInput.value = p.layers;
}

let layersTouched = false;
layersInput.addEventListener('input', () => {
  layersTouched = true;
});
presetSelect.addEventListener('change', showPreset);
for (const r of form.querySelectorAll('input[name=layers-source]')) {
  r.addEventListener('change', () => {
    layersField.hidden = form.elements['layers-source'].value !== 'custom';
  });
}
showPreset();

function clearErrors() {
  for (const el of form.querySelectorAll('[data-error-for]')) el.textContent = '';
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

// showError puts the message next to the field the API names; "layers[2]"
// belongs to the layer list.
function showError(field, message) {
  const name = field.replace(/\[\d+\]$/, '');
  // The field is beside the message already: "learningRate: must be …"
  // reads "must be …".
  if (field && message.startsWith(`${field}: `)) message = message.slice(field.length + 2);
  const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`) || form.querySelector('[data-error-for=""]');
  slot.textContent = message;
  const input = form.elements[name];
  if (input && input.focus) {
    input.setAttribute('aria-invalid', 'true');
    if (name === 'layers') {
      form.querySelector('input[name=layers-source][value=custom]').checked = true;
      layersField.hidden = false;
    }
    input.focus();
  }
}

// settings turns the form into the API's JSON, leaving out empty fields.
function settings() {
  const f = form.elements;
  const s = { preset: f.preset.value };
  if (f.name.value.trim()) s.name = f.name.value.trim();
  if (f.optimizer.value) s.optimizer = f.optimizer.value;
  const numbers = [['learningRate', parseFloat], ['batchSize', Number], ['epochs', Number], ['seed', Number]];
  for (const [name, parse] of numbers) {
    const raw = f[name].value.trim();
    if (raw === '') continue;
    const v = parse(raw);
    if (!Number.isFinite(v)) throw Object.assign(new Error('not a number'), { field: name });
    s[name] = v;
  }
  if (!f.dropout.checked) s.dropout = false;
  if (f['layers-source'].value === 'custom') {
    try {
      s.layers = JSON.parse(f.layers.value);
    } catch (err) {
      throw Object.assign(new Error(`not valid JSON: ${err.message}`), { field: 'layers' });
    }
    if (!Array.isArray(s.layers)) throw Object.assign(new Error('want a JSON array of layers, [ {...}, ... ]'), { field: 'layers' });
  }
  return s;
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors();
  const submit = form.querySelector('[type=submit]');
  let body;
  try {
    body = settings();
  } catch (err) {
    showError(err.field, err.message);
    return;
  }
  submit.disabled = true;
  submit.textContent = 'Creating…';
  try {
    // The answer sets the owner cookie on this browser: from here on it
    // may control the session.
    const created = await postJSON('/api/sessions', body);
    if (form.elements.start.checked) {
      // The session exists whatever happens here; its page offers Start
      // again if this fails.
      await postJSON(`/api/sessions/${created.id}/start`).catch(() => {});
    }
    location.assign(`/sessions/${created.id}`);
  } catch (err) {
    showError(err.field || '', err.message);
    submit.disabled = false;
    submit.textContent = 'Create session';
  }
});

// Everything is wired up: the form and the canvas respond from here on
// (tests wait for it).
document.documentElement.dataset.ready = 'true';
