// The session page: everything live over the session's WebSocket. The
// history of durable messages (status, metrics, epoch, rewind) arrives
// first, then the latest state and images, then live updates; nothing
// reloads the page.

import { ActivationView, showProbe } from './activations.js';
import { getJSON, postJSON } from './api.js';
import { Chart } from './chart.js';
import { DrawPad } from './drawpad.js';
import { renderConfusion, renderMistakes } from './evaluation.js';
import { FilterGrid } from './filters.js';
import { formatEpochs, formatInt, formatPercent, formatValue } from './format.js';
import { KIND, parseFrame } from './frames.js';
import { SessionSocket } from './socket.js';

const root = document.querySelector('[data-session]');
const id = root.dataset.sessionId;
const owner = root.dataset.owner === 'true';
const testImages = Number(root.dataset.testImages) || 1;
const $ = (sel) => root.querySelector(sel);
const FINAL = new Set(['finished', 'stopped', 'diverged', 'failed']);

// What the page knows, built from the stream.
const state = {
  status: root.dataset.status,
  reason: '',
  step: 0,
  epoch: 0, // epochs completed
  batch: 0,
  bpe: Number(root.dataset.batchesPerEpoch) || 1,
  epochs: Number(root.dataset.epochs) || 1,
  speed: 0,
  points: [], // {step, epoch, loss, acc}
  results: [], // EpochResult, one per evaluated epoch
  probe: Number(root.dataset.probe) || 0,
  source: 'probe', // whose activation maps: the probe test image, or "drawing"
  liveFilters: null, // the latest kind-1 frame
  liveActs: null, // the latest kind-2 frame
  drawingActs: null, // the latest kind-3 frame
  scrubbing: false, // the filters slider is back in history
};

// ---- Views ----

const lossChart = new Chart($('[data-chart=loss]'), { yLabel: 'loss' });
const accChart = new Chart($('[data-chart=accuracy]'), { yLabel: 'accuracy (%)', percent: true });
const filters = new FilterGrid($('[data-testid=filters]'), {
  info: $('[data-filters-info]'),
  lo: $('[data-scale-lo]'),
  hi: $('[data-scale-hi]'),
});
const acts = new ActivationView($('[data-testid=activations]'));
acts.message('Waiting for the first activation maps…');

// ---- Stream ----

const socket = new SessionSocket(id, {
  onMessage: message,
  onFrame: frame,
  onConnection: connection,
});

function message(msg) {
  const d = msg.data;
  switch (msg.type) {
    case 'state':
      applyState(d);
      break;
    case 'status':
      Object.assign(state, { status: d.status, reason: d.reason || '', step: d.step, epoch: d.epoch });
      if (d.status !== 'running') state.speed = 0;
      renderStatus();
      if (d.status === 'paused' || FINAL.has(d.status)) refreshSnapshots();
      break;
    case 'metrics':
      addPoints(d.points);
      state.epoch = d.epoch;
      state.batch = d.batch;
      state.speed = d.imagesPerSec;
      renderProgress();
      break;
    case 'epoch':
      addResult(d);
      renderConfusion($('[data-testid=confusion]'), d.confusion);
      showMistakes(d.mistakes, d.epoch);
      refreshSnapshots();
      break;
    case 'notice':
      // A problem training goes on despite (a checkpoint that failed):
      // shown until a notice says it is over.
      showWarning(d.level === 'warning' ? d.message : '');
      break;
    case 'rewind':
      state.points = state.points.filter((p) => p.step <= d.step);
      state.results = state.results.filter((r) => r.step <= d.step);
      state.reason = d.reason;
      redrawCurves();
      renderStatus();
      break;
    case 'error':
      if (!d.id) console.warn('cnnviz: the server says:', d.message);
      break;
  }
}

function applyState(info) {
  Object.assign(state, {
    status: info.status,
    reason: info.statusReason || '',
    step: info.step,
    epoch: info.epoch,
    batch: info.batch,
    bpe: info.batchesPerEpoch || state.bpe,
    epochs: info.config.epochs,
  });
  if (info.status !== 'running') state.speed = 0;
  else if (info.imagesPerSec) state.speed = info.imagesPerSec;
  acts.setSummary(info.summary);
  const first = info.summary && info.summary.layers && info.summary.layers[0];
  if (first && first.type !== 'conv2d' && !filters.canvases.length) {
    filters.message('This model starts with a ' + first.type + ' layer, not a convolution: it has no filters to show.');
  }
  if (info.epochs && info.epochs.length) {
    // The history replay brings every epoch too; the state fills in what a
    // page that connected late may lack, and the latest evaluation.
    for (const r of info.epochs) addResult(r);
    renderConfusion($('[data-testid=confusion]'), info.confusion);
    showMistakes(info.mistakes, info.epochs[info.epochs.length - 1].epoch);
  }
  const checkpoint = root.querySelector('[data-checkpoint]');
  if (checkpoint) checkpoint.hidden = !info.checkpoint;
  setProbe(info.probe);
  showWarning(info.warning || '');
  renderStatus();
}

function showWarning(text) {
  const el = $('[data-warning]');
  el.textContent = text;
  el.hidden = !text;
}

function frame(f) {
  switch (f.kind) {
    case KIND.filters:
      state.liveFilters = f;
      if (!state.scrubbing) filters.show(f.groups[0], f.step);
      break;
    case KIND.activations:
      state.liveActs = f;
      if (state.source === 'probe' && !state.scrubbing) acts.show(f.groups, f.step);
      break;
    case KIND.prediction:
      if (state.drawingActs && f.seq < state.drawingActs.seq) return; // an older drawing
      state.drawingActs = f;
      if (state.source === 'drawing') acts.show(f.groups, f.step);
      break;
  }
}

function connection(s) {
  const el = $('[data-conn]');
  el.dataset.state = s;
  el.textContent = { live: 'live', reconnecting: 'reconnecting…', gone: 'session deleted' }[s] || s;
}

// ---- Curves ----

function addPoints(points) {
  const last = state.points.length ? state.points[state.points.length - 1].step : 0;
  const fresh = points.filter((p) => p.step > last);
  if (!fresh.length) return;
  state.points.push(...fresh);
  state.step = Math.max(state.step, fresh[fresh.length - 1].step);
  lossChart.append(fresh.map((p) => ({ step: p.step, x: p.step / state.bpe, y: p.loss })));
  accChart.append(fresh.map((p) => ({ step: p.step, x: p.step / state.bpe, y: 100 * p.acc })));
  renderLatest();
}

function addResult(r) {
  const i = state.results.findIndex((x) => x.epoch === r.epoch);
  const result = { epoch: r.epoch, step: r.step, testLoss: r.testLoss, testAcc: r.testAcc, trainLoss: r.trainLoss, trainAcc: r.trainAcc };
  if (i >= 0) state.results[i] = result;
  else state.results.push(result);
  state.results.sort((a, b) => a.step - b.step);
  lossChart.setTest(state.results.map((e) => ({ epoch: e.epoch, x: e.step / state.bpe, y: e.testLoss })));
  accChart.setTest(state.results.map((e) => ({ epoch: e.epoch, x: e.step / state.bpe, y: 100 * e.testAcc })));
  renderLatest();
}

function redrawCurves() {
  lossChart.reset();
  accChart.reset();
  addPointsAll();
  const results = state.results;
  state.results = [];
  results.forEach(addResult);
  renderLatest();
}

function addPointsAll() {
  const points = state.points;
  lossChart.append(points.map((p) => ({ step: p.step, x: p.step / state.bpe, y: p.loss })));
  accChart.append(points.map((p) => ({ step: p.step, x: p.step / state.bpe, y: 100 * p.acc })));
}

function renderLatest() {
  const test = state.results[state.results.length - 1];
  const loss = lossChart.latest();
  const acc = accChart.latest();
  const lossText = [];
  const accText = [];
  if (loss !== null) lossText.push(`train ${formatValue(loss)}`);
  if (acc !== null) accText.push(`train ${acc.toFixed(1)}%`);
  if (test) {
    lossText.push(`test ${formatValue(test.testLoss)} after epoch ${test.epoch}`);
    accText.push(`test ${formatPercent(test.testAcc)} after epoch ${test.epoch}`);
  }
  $('[data-chart=loss]').parentElement.querySelector('[data-latest]').textContent = lossText.join(' · ');
  $('[data-chart=accuracy]').parentElement.querySelector('[data-latest]').textContent = accText.join(' · ');
}

// ---- Status, progress, controls ----

function renderStatus() {
  const badge = $('[data-testid=session-status]');
  badge.textContent = state.status;
  badge.dataset.status = state.status;
  badge.className = `badge badge-${state.status}`;
  root.dataset.status = state.status;
  // A finished session's reason repeats the progress line.
  $('[data-reason]').textContent = state.status === 'finished' ? '' : state.reason;
  renderProgress();
  renderControls();
}

function renderProgress() {
  const { status, step, epoch, batch, bpe, epochs } = state;
  const total = epochs * bpe;
  const bar = $('[data-testid=epoch-progress]');
  bar.value = total ? Math.min(step / total, 1) : 0;
  const count = (n, one, many) => (n === 1 ? `1 ${one}` : `${formatInt(n)} ${many}`);
  let text;
  if (status === 'created' && step === 0) text = `not started: ${count(epochs, 'epoch', 'epochs')} of ${count(bpe, 'batch', 'batches')}`;
  else if (status === 'finished') text = `done: ${count(epochs, 'epoch', 'epochs')} trained`;
  else text = `epoch ${Math.min(epoch + 1, epochs)} of ${epochs} · batch ${formatInt(batch)} of ${formatInt(bpe)}`;
  $('[data-progress-text]').textContent = text;
  $('[data-speed]').textContent = status === 'running' && state.speed > 0 ? `${formatInt(state.speed)} images/s` : '';
}

function renderControls() {
  if (!owner) return;
  const s = state.status;
  const final = FINAL.has(s);
  const show = { start: s === 'created', pause: s === 'running' || s === 'queued', resume: s === 'paused' };
  const enable = { step: s === 'paused' || s === 'created', stop: !final };
  for (const b of root.querySelectorAll('[data-action]')) {
    const a = b.dataset.action;
    if (a in show) {
      b.hidden = !show[a];
      b.disabled = !show[a] || b.dataset.busy === 'true';
    } else {
      b.disabled = !enable[a] || b.dataset.busy === 'true';
    }
  }
}

function controlMessage(text) {
  const el = $('[data-control-message]');
  if (el) el.textContent = text;
}

if (owner) {
  let stopArmed = 0;
  for (const b of root.querySelectorAll('[data-action]')) {
    b.addEventListener('click', async () => {
      const action = b.dataset.action;
      // Stopping is for good, so it takes a second click.
      if (action === 'stop' && !stopArmed) {
        b.textContent = 'Stop for good?';
        stopArmed = setTimeout(() => {
          stopArmed = 0;
          b.textContent = 'Stop';
        }, 4000);
        return;
      }
      if (action === 'stop') {
        clearTimeout(stopArmed);
        stopArmed = 0;
        b.textContent = 'Stop';
      }
      b.dataset.busy = 'true';
      renderControls();
      controlMessage('');
      try {
        applyState(await postJSON(`/api/sessions/${id}/${action}`));
      } catch (err) {
        controlMessage(err.message);
      } finally {
        b.dataset.busy = 'false';
        renderControls();
      }
    });
  }
}

// ---- Evaluation ----

function showMistakes(mistakes, epoch) {
  renderMistakes($('[data-testid=mistakes]'), mistakes, owner ? (index) => pickProbe(index) : null);
  const note = $('[data-mistakes-note]');
  if (mistakes && note) {
    note.textContent = mistakes.length ? `${mistakes.length}${mistakes.length >= 60 ? '+' : ''} after epoch ${epoch}` : '';
  }
}

// ---- Activation maps: which image ----

function setProbe(index) {
  if (index === undefined || index === null) return;
  // Every state message carries the probe: touch the picker only when it
  // changes, so that a number being typed is not overwritten.
  const changed = index !== state.probe;
  state.probe = index;
  showProbe($('[data-probe-img]'), $('[data-probe-index]'), index);
  const input = $('[data-probe-input]');
  if (input && changed && document.activeElement !== input) input.value = String(index);
}

async function pickProbe(index) {
  index = Math.max(0, Math.min(testImages - 1, Math.round(index)));
  setSource('probe');
  try {
    applyState(await postJSON(`/api/sessions/${id}/probe`, { index }));
  } catch (err) {
    controlMessage(err.message);
  }
}

function setSource(source) {
  state.source = source;
  const radio = root.querySelector(`input[name=acts-source][value=${source}]`);
  if (radio) radio.checked = true;
  const view = $('[data-testid=activations]');
  view.dataset.source = source;
  $('[data-probe-bar]').classList.toggle('dimmed', source !== 'probe');
  const note = $('[data-acts-source-note]');
  if (source === 'drawing') {
    note.textContent = 'Showing your drawing instead: switch back to see the test image.';
    if (state.drawingActs) acts.show(state.drawingActs.groups, state.drawingActs.step);
    else acts.message('Draw a digit in the drawing area to see how each layer responds to it.');
  } else {
    note.textContent = '';
    if (state.scrubbing) showScrub(Number(scrub.input.value));
    else if (state.liveActs) acts.show(state.liveActs.groups, state.liveActs.step);
  }
}

for (const r of root.querySelectorAll('input[name=acts-source]')) {
  r.addEventListener('change', () => r.checked && setSource(r.value));
}

if (owner) {
  const input = $('[data-probe-input]');
  $('[data-probe-set]').addEventListener('click', () => pickProbe(Number(input.value)));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') pickProbe(Number(input.value));
  });
  $('[data-probe-random]').addEventListener('click', () => pickProbe(Math.floor(Math.random() * testImages)));
}

// ---- Filter history: scrub and replay ----

const scrub = {
  input: $('[data-scrub]'),
  label: $('[data-scrub-label]'),
  play: $('[data-play]'),
  steps: [],
  cache: new Map(), // step -> frame
  playing: false,
  loading: null,
};

// refreshSnapshots fetches the list of stored snapshots; calls while one
// is on its way share it (the history replay asks once per epoch).
let snapshotsRequest = null;
function refreshSnapshots() {
  if (!snapshotsRequest) snapshotsRequest = loadSnapshotList().finally(() => (snapshotsRequest = null));
  return snapshotsRequest;
}

async function loadSnapshotList() {
  let r;
  try {
    r = await getJSON(`/api/sessions/${id}/snapshots`);
  } catch {
    return;
  }
  const atLive = Number(scrub.input.value) >= scrub.steps.length;
  scrub.steps = r.steps || [];
  scrub.input.max = String(scrub.steps.length);
  if (atLive) scrub.input.value = String(scrub.steps.length);
  scrub.input.disabled = scrub.steps.length === 0;
  scrub.play.disabled = scrub.steps.length < 2;
  scrubLabel();
}

function scrubLabel() {
  const i = Number(scrub.input.value);
  if (i >= scrub.steps.length) {
    scrub.label.textContent = 'live';
    scrub.input.setAttribute('aria-valuetext', 'live');
    return;
  }
  const step = scrub.steps[i];
  const text = `batch ${formatInt(step)} · epoch ${formatEpochs(step / state.bpe)}`;
  scrub.label.textContent = text;
  scrub.input.setAttribute('aria-valuetext', text);
}

async function loadSnapshot(step) {
  if (scrub.cache.has(step)) return scrub.cache.get(step);
  const res = await fetch(`/api/sessions/${id}/snapshots/${step}`);
  if (!res.ok) throw new Error(`snapshot ${step}: ${res.status}`);
  const f = parseFrame(await res.arrayBuffer());
  if (scrub.cache.size > 400) scrub.cache.delete(scrub.cache.keys().next().value);
  scrub.cache.set(step, f);
  return f;
}

/** showScrub shows snapshot i of the history, or the live images past the end. */
async function showScrub(i) {
  scrubLabel();
  if (i >= scrub.steps.length) {
    state.scrubbing = false;
    root.classList.remove('scrubbing');
    if (state.liveFilters) filters.show(state.liveFilters.groups[0], state.liveFilters.step);
    if (state.source === 'probe' && state.liveActs) acts.show(state.liveActs.groups, state.liveActs.step);
    return;
  }
  state.scrubbing = true;
  root.classList.add('scrubbing');
  const step = scrub.steps[i];
  let f;
  try {
    f = await loadSnapshot(step);
  } catch (err) {
    scrub.label.textContent = err.message;
    return;
  }
  if (Number(scrub.input.value) !== i || !state.scrubbing) return; // the slider moved on
  let groups = f.groups;
  if (groups.length && groups[0].name === 'filters') {
    filters.show(groups[0], f.step);
    groups = groups.slice(1);
  }
  if (state.source === 'probe') acts.show(groups, f.step);
}

scrub.input.addEventListener('input', () => showScrub(Number(scrub.input.value)));
// The list grows while the session trains: fetch it afresh when a person
// reaches for the slider.
scrub.input.addEventListener('pointerdown', refreshSnapshots);
scrub.input.addEventListener('focus', refreshSnapshots);

scrub.play.addEventListener('click', async () => {
  if (scrub.playing) {
    scrub.playing = false;
    return;
  }
  await refreshSnapshots();
  const n = scrub.steps.length;
  if (n < 2) return;
  scrub.playing = true;
  scrub.play.textContent = 'Stop replay';
  scrub.play.setAttribute('aria-pressed', 'true');
  // About 120 frames whatever the history's length: ~12 seconds.
  const stride = Math.max(1, Math.ceil(n / 120));
  let i = Number(scrub.input.value);
  if (i >= n - 1) i = 0;
  for (; scrub.playing && i < n; i += stride) {
    const started = performance.now();
    scrub.input.value = String(i);
    await showScrub(i);
    await new Promise((r) => setTimeout(r, Math.max(0, 100 - (performance.now() - started))));
  }
  scrub.playing = false;
  scrub.play.textContent = 'Replay';
  scrub.play.setAttribute('aria-pressed', 'false');
  if (i >= n) {
    scrub.input.value = String(n);
    showScrub(n);
  }
});

// ---- Drawing ----

new DrawPad(root.querySelector('[data-drawpad]'), {
  predict: (drawing) => socket.predict(drawing),
  onClear: () => {
    state.drawingActs = null;
    if (state.source === 'drawing') acts.message('Draw a digit in the drawing area to see how each layer responds to it.');
  },
  onAnswer: () => {
    // The first drawing switches the maps to it, once: after that the
    // viewer chooses.
    if (!state.drewOnce) {
      state.drewOnce = true;
      setSource('drawing');
    }
  },
});

// ---- Sharing ----

for (const b of root.querySelectorAll('[data-copy]')) {
  b.addEventListener('click', async () => {
    const input = $(`[data-testid=${b.dataset.copy}]`);
    input.select();
    try {
      await navigator.clipboard.writeText(input.value);
      b.textContent = 'Copied';
    } catch {
      // No clipboard outside a secure context (a plain-http classroom
      // address): the text stays selected for Ctrl-C.
      b.textContent = 'Press Ctrl-C';
    }
    setTimeout(() => (b.textContent = 'Copy'), 2000);
  });
}

renderStatus();
refreshSnapshots();
socket.connect();
// Everything is wired up: controls respond from here on (tests wait for it).
document.documentElement.dataset.ready = 'true';
