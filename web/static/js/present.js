// The projector view: the curves, the first-layer filters and the probe
// image's activation maps, large, on one screen, kept live over the same
// WebSocket as the session page. Everyone follows the probe image the
// owner picks; the owner steers from the keyboard, so the teacher never
// has to reach for a small button in front of the class.

import { ActivationView, showProbe } from './activations.js';
import { postJSON } from './api.js';
import { Chart } from './chart.js';
import { FilterGrid } from './filters.js';
import { formatInt, formatPercent, formatValue } from './format.js';
import { KIND } from './frames.js';
import { SessionSocket } from './socket.js';

const root = document.querySelector('[data-present]');
const id = root.dataset.sessionId;
const owner = root.dataset.owner === 'true';
const testImages = Number(root.dataset.testImages) || 1;
const $ = (sel) => root.querySelector(sel);

const state = {
  status: root.dataset.status,
  reason: '',
  step: 0,
  epoch: 0,
  batch: 0,
  bpe: Number(root.dataset.batchesPerEpoch) || 1,
  epochs: Number(root.dataset.epochs) || 1,
  probe: Number(root.dataset.probe) || 0,
  last: 0, // the last training step on the curves
  results: new Map(), // epoch -> {x, testLoss, testAcc}
};

// Text, lines and maps grow with the screen: a 1080p projector gets about
// one and a half times the session page's sizes.
const screenScale = () => Math.min(2, Math.max(1, Math.min(innerWidth / 1280, innerHeight / 720)));
let scale = screenScale();
const lossChart = new Chart($('[data-chart=loss]'), { yLabel: 'loss', scale });
const accChart = new Chart($('[data-chart=accuracy]'), { yLabel: 'accuracy (%)', percent: true, scale });
const filters = new FilterGrid($('[data-testid=present-filters]'), {
  info: $('[data-filters-info]'),
  lo: $('[data-scale-lo]'),
  hi: $('[data-scale-hi]'),
});
const acts = new ActivationView($('[data-testid=present-activations]'), { zoom: scale });
acts.message('Waiting for the first activation maps…');
root.style.setProperty('--present-scale', String(scale));

const socket = new SessionSocket(id, {
  onMessage: message,
  onFrame: (f) => {
    if (f.kind === KIND.filters) showFilters(f);
    else if (f.kind === KIND.activations) showActs(f);
  },
  onConnection: (s) => {
    const el = $('[data-conn]');
    el.dataset.state = s;
    el.textContent = { live: 'live', reconnecting: 'reconnecting…', gone: 'session deleted' }[s] || s;
  },
});

function message(msg) {
  const d = msg.data;
  switch (msg.type) {
    case 'state':
      Object.assign(state, {
        status: d.status,
        reason: d.statusReason || '',
        step: d.step,
        epoch: d.epoch,
        batch: d.batch,
        bpe: d.batchesPerEpoch || state.bpe,
        epochs: d.config.epochs,
      });
      acts.setSummary(d.summary);
      showWarning(d.warning || '');
      noFilters(d.summary);
      for (const r of d.epochs || []) addResult(r);
      setProbe(d.probe);
      render();
      break;
    case 'status':
      Object.assign(state, { status: d.status, reason: d.reason || '', step: d.step, epoch: d.epoch });
      render();
      break;
    case 'metrics': {
      const fresh = d.points.filter((p) => p.step > state.last);
      if (fresh.length) {
        state.last = fresh[fresh.length - 1].step;
        lossChart.append(fresh.map((p) => ({ step: p.step, x: p.step / state.bpe, y: p.loss })));
        accChart.append(fresh.map((p) => ({ step: p.step, x: p.step / state.bpe, y: 100 * p.acc })));
      }
      Object.assign(state, { step: Math.max(state.step, state.last), epoch: d.epoch, batch: d.batch });
      render();
      break;
    }
    case 'epoch':
      addResult(d);
      render();
      break;
    case 'notice':
      showWarning(d.level === 'warning' ? d.message : '');
      break;
    case 'rewind':
      // Rare (a restart lost batches after the last checkpoint): the
      // session page redraws exactly; here, reloading is simplest.
      location.reload();
      break;
  }
}

function addResult(r) {
  state.results.set(r.epoch, { epoch: r.epoch, x: r.step / state.bpe, testLoss: r.testLoss, testAcc: r.testAcc });
  const rs = [...state.results.values()].sort((a, b) => a.x - b.x);
  lossChart.setTest(rs.map((e) => ({ epoch: e.epoch, x: e.x, y: e.testLoss })));
  accChart.setTest(rs.map((e) => ({ epoch: e.epoch, x: e.x, y: 100 * e.testAcc })));
}

function render() {
  const badge = $('[data-testid=present-status]');
  badge.textContent = state.status;
  badge.className = `badge badge-${state.status}`;
  badge.dataset.status = state.status;
  root.dataset.status = state.status;
  const { status, epoch, batch, bpe, epochs } = state;
  let text;
  if (status === 'created' && state.step === 0) text = 'not started';
  else if (status === 'finished') text = `done: ${epochs === 1 ? '1 epoch' : `${epochs} epochs`}`;
  else text = `epoch ${Math.min(epoch + 1, epochs)} of ${epochs} · batch ${formatInt(batch)} of ${formatInt(bpe)}`;
  $('[data-progress-text]').textContent = text;
  $('[data-reason]').textContent = status === 'finished' || status === 'running' ? '' : state.reason;
  const rs = [...state.results.values()].sort((a, b) => a.x - b.x);
  const test = rs[rs.length - 1];
  $('[data-score]').textContent = test ? formatPercent(test.testAcc) : '–';
  $('[data-score]').title = test ? `after epoch ${test.epoch}` : 'after the first epoch';
  const loss = lossChart.latest();
  const acc = accChart.latest();
  $('[data-latest=loss]').textContent = loss === null ? '' : `train ${formatValue(loss)}`;
  $('[data-latest=accuracy]').textContent = acc === null ? '' : `train ${acc.toFixed(1)}%`;
}

// A model that starts with a dense layer has no filters to show: say so
// rather than leave the panel blank.
function noFilters(summary) {
  const first = summary && summary.layers && summary.layers[0];
  if (first && first.type !== 'conv2d' && !filters.canvases.length) {
    filters.message(`This model starts with a ${first.type} layer, not a convolution: it has no filters to show.`);
  }
}

function showWarning(text) {
  const el = $('[data-warning]');
  el.textContent = text;
  el.hidden = !text;
}

function setProbe(index) {
  if (index === undefined || index === null) return;
  state.probe = index;
  showProbe($('[data-probe-img]'), $('[data-probe-index]'), index);
}

// ---- Fitting the screen ----
// Nothing may scroll on a projector: the filters take the largest cells
// that fit their panel, and the activation maps shrink until every layer,
// down to the class probabilities, is in view.

const filtersEl = $('[data-testid=present-filters]');
const actsEl = $('[data-testid=present-activations]');
let lastFilters = null;
let lastActs = null;
let actsShape = '';

function showFilters(f) {
  const fresh = !lastFilters || lastFilters.groups[0].c !== f.groups[0].c;
  lastFilters = f;
  filters.show(f.groups[0], f.step);
  if (fresh) fitFilters();
}

function fitFilters() {
  if (!lastFilters) return;
  const { h, w, c } = lastFilters.groups[0];
  const gap = 6;
  const W = filtersEl.clientWidth;
  const H = filtersEl.clientHeight;
  let best = 8;
  for (let cols = 1; cols <= c; cols++) {
    const rows = Math.ceil(c / cols);
    const cellH = Math.min((W - gap * (cols - 1)) / cols / (w / h), (H - gap * (rows - 1)) / rows);
    best = Math.max(best, Math.floor(cellH));
  }
  best = Math.min(best, 160);
  filtersEl.style.setProperty('--cell-h', `${best}px`);
  filtersEl.style.setProperty('--cell-w', `${Math.floor((best * w) / h)}px`);
}

function showActs(f) {
  lastActs = f;
  const shape = f.groups.map((g) => `${g.name}:${g.h}x${g.w}x${g.c}`).join(',');
  if (shape !== actsShape) {
    actsShape = shape;
    fitActs();
  } else {
    acts.show(f.groups, f.step);
  }
}

function fitActs() {
  if (!lastActs) return;
  const fits = (zoom) => {
    acts.setZoom(zoom);
    acts.show(lastActs.groups, lastActs.step);
    const last = actsEl.lastElementChild;
    return !last || last.getBoundingClientRect().bottom <= actsEl.getBoundingClientRect().bottom;
  };
  // The largest zoom that fits, by bisection: the rows wrap, so the height
  // is not proportional to the zoom.
  let lo = 0.3;
  let hi = 3 * scale;
  if (fits(hi)) return;
  for (let i = 0; i < 9; i++) {
    const mid = (lo + hi) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  fits(lo);
}

new ResizeObserver(() => {
  scale = screenScale();
  root.style.setProperty('--present-scale', String(scale));
  lossChart.opts.scale = accChart.opts.scale = scale;
  lossChart.invalidate();
  accChart.invalidate();
  fitFilters();
  fitActs();
}).observe(root);

// ---- The address as a QR code, large enough to scan from the back ----

const qrBig = $('[data-qr-big]');
function toggleQR() {
  qrBig.hidden = !qrBig.hidden;
}
$('[data-qr-toggle]').addEventListener('click', toggleQR);
qrBig.addEventListener('click', toggleQR);

// ---- The teacher's keyboard ----

async function post(path, body) {
  try {
    message({ type: 'state', data: await postJSON(`/api/sessions/${id}/${path}`, body) });
  } catch (err) {
    $('[data-reason]').textContent = err.message;
  }
}

function pickProbe(index) {
  post('probe', { index: ((Math.round(index) % testImages) + testImages) % testImages });
}

document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'q' || e.key === 'Q' || (e.key === 'Escape' && !qrBig.hidden)) {
    toggleQR();
    return;
  }
  if (e.key === 'f' || e.key === 'F') {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
    return;
  }
  if (!owner) return;
  switch (e.key) {
    case ' ': {
      e.preventDefault();
      const action = { created: 'start', running: 'pause', queued: 'pause', paused: 'resume' }[state.status];
      if (action) post(action);
      break;
    }
    case 'ArrowRight':
      pickProbe(state.probe + 1);
      break;
    case 'ArrowLeft':
      pickProbe(state.probe - 1);
      break;
    case 'r':
    case 'R':
      pickProbe(Math.floor(Math.random() * testImages));
      break;
  }
});

render();
socket.connect();
document.documentElement.dataset.ready = 'true';
