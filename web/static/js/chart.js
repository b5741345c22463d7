// Chart draws a training curve on a <canvas>: the metric of every batch
// (faint), the same smoothed (solid), and the test metric at each epoch's
// end (dots), against epochs, with labelled axes and a hover read-out.
// Drawing is batched into one animation frame however many points arrive.

import { formatEpochs, formatValue } from './format.js';

const COLORS = {
  raw: 'rgba(37, 99, 235, 0.22)',
  smooth: '#2563eb',
  test: '#dc2626',
  grid: '#e5e7eb',
  gridLight: '#f1f5f9',
  text: '#475569',
  title: '#334155',
};

const PAD = { left: 48, right: 12, top: 10, bottom: 34 };

/** niceStep rounds a rough tick step to 1, 2 or 5 times a power of ten. */
function niceStep(rough) {
  const p = 10 ** Math.floor(Math.log10(rough));
  const f = rough / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/** ticks returns about count round values in [lo, hi]. */
function ticks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step = niceStep((hi - lo) / count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toFixed(10)));
  }
  return out;
}

export class Chart {
  /**
   * @param {HTMLElement} root an element holding a <canvas> and a .chart-tip
   * @param {object} opts yLabel, percent (values are 0..100), smoothing
   *   (the moving average's weight of a new point: 0.05 averages over
   *   about 20 batches, as the server's exported plots do), scale (draws
   *   text, lines and margins this many times larger: the projector view)
   */
  constructor(root, opts) {
    this.root = root;
    this.canvas = root.querySelector('canvas');
    this.tip = root.querySelector('.chart-tip');
    this.opts = { yLabel: '', percent: false, smoothing: 0.05, scale: 1, ...opts };
    this.hover = -1;
    this.frame = 0;
    this.reset();
    new ResizeObserver(() => this.invalidate()).observe(root);
    root.addEventListener('pointermove', (e) => this.pointer(e));
    root.addEventListener('pointerleave', () => this.leave());
  }

  /** reset forgets every point. */
  reset() {
    this.steps = [];
    this.xs = [];
    this.raw = [];
    this.smooth = [];
    this.test = [];
    this.ema = null;
    this.invalidate();
  }

  /** append adds training points {step, x, y} in step order. */
  append(points) {
    const a = this.opts.smoothing;
    for (const p of points) {
      this.ema = this.ema === null ? p.y : this.ema + a * (p.y - this.ema);
      this.steps.push(p.step);
      this.xs.push(p.x);
      this.raw.push(p.y);
      this.smooth.push(this.ema);
    }
    this.invalidate();
  }

  /** setTest replaces the test points {epoch, x, y}. */
  setTest(points) {
    this.test = points.slice();
    this.invalidate();
  }

  /** latest returns the last smoothed training value, or null. */
  latest() {
    return this.smooth.length ? this.smooth[this.smooth.length - 1] : null;
  }

  invalidate() {
    this.root.dataset.points = String(this.xs.length);
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  format(v) {
    return this.opts.percent ? `${v.toFixed(1)}%` : formatValue(v);
  }

  // The data ranges and the mappings to pixels, for drawing and hovering.
  // Sizes are in chart units: CSS pixels divided by opts.scale.
  layout() {
    const w = this.root.clientWidth / this.opts.scale;
    const h = this.root.clientHeight / this.opts.scale;
    const lastX = Math.max(this.xs.length ? this.xs[this.xs.length - 1] : 0, this.test.length ? this.test[this.test.length - 1].x : 0);
    const xMax = lastX > 0 ? lastX * 1.02 : 1;
    let yMin = 0;
    let yMax = 100;
    if (!this.opts.percent) {
      yMax = 0;
      for (const v of this.smooth) yMax = Math.max(yMax, v);
      for (const p of this.test) yMax = Math.max(yMax, p.y);
      yMax = yMax > 0 ? yMax * 1.1 : 1;
    }
    const pw = Math.max(10, w - PAD.left - PAD.right);
    const ph = Math.max(10, h - PAD.top - PAD.bottom);
    return {
      w, h, pw, ph, xMax, yMin, yMax,
      px: (x) => PAD.left + (x / xMax) * pw,
      py: (y) => PAD.top + ph - ((y - yMin) / (yMax - yMin)) * ph,
      x: (px) => ((px - PAD.left) / pw) * xMax,
    };
  }

  draw() {
    const L = this.layout();
    const dpr = (window.devicePixelRatio || 1) * this.opts.scale;
    const cw = Math.round(L.w * dpr);
    const ch = Math.round(L.h * dpr);
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
    }
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, L.w, L.h);
    ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

    // Grid and tick labels.
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.text;
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (const v of ticks(L.yMin, L.yMax, 4)) {
      const y = Math.round(L.py(v)) + 0.5;
      ctx.strokeStyle = COLORS.grid;
      ctx.beginPath();
      ctx.moveTo(PAD.left, y);
      ctx.lineTo(PAD.left + L.pw, y);
      ctx.stroke();
      ctx.fillText(this.opts.percent ? `${v}%` : formatValue(v), PAD.left - 6, y);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const v of ticks(0, L.xMax, Math.max(2, Math.floor(L.pw / 70)))) {
      const x = Math.round(L.px(v)) + 0.5;
      ctx.strokeStyle = COLORS.gridLight;
      ctx.beginPath();
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, PAD.top + L.ph);
      ctx.stroke();
      ctx.fillText(String(v), x, PAD.top + L.ph + 5);
    }

    // Axis titles.
    ctx.fillStyle = COLORS.title;
    ctx.fillText('epoch', PAD.left + L.pw / 2, L.h - 14);
    ctx.save();
    ctx.translate(11, PAD.top + L.ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = 'middle';
    ctx.fillText(this.opts.yLabel, 0, 0);
    ctx.restore();

    if (!this.xs.length && !this.test.length) {
      ctx.fillStyle = '#94a3b8';
      ctx.textBaseline = 'middle';
      ctx.font = '13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
      ctx.fillText('waiting for the first batch', PAD.left + L.pw / 2, PAD.top + L.ph / 2);
      return;
    }

    // The curves, clipped to the plot: a single batch's loss can be far
    // above the smoothed curve that sets the scale.
    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top - 1, L.pw + 1, L.ph + 2);
    ctx.clip();
    ctx.lineJoin = 'round';
    this.line(ctx, L, this.raw, COLORS.raw, 1);
    this.line(ctx, L, this.smooth, COLORS.smooth, 2);
    if (this.test.length) {
      ctx.strokeStyle = COLORS.test;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      this.test.forEach((p, i) => (i ? ctx.lineTo(L.px(p.x), L.py(p.y)) : ctx.moveTo(L.px(p.x), L.py(p.y))));
      ctx.stroke();
      for (const p of this.test) this.dot(ctx, L.px(p.x), L.py(p.y), COLORS.test);
    }
    ctx.restore();

    // The hovered batch.
    if (this.hover >= 0 && this.hover < this.xs.length) {
      const x = L.px(this.xs[this.hover]);
      ctx.strokeStyle = '#94a3b8';
      ctx.lineWidth = 1;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, PAD.top);
      ctx.lineTo(Math.round(x) + 0.5, PAD.top + L.ph);
      ctx.stroke();
      ctx.setLineDash([]);
      this.dot(ctx, x, L.py(this.smooth[this.hover]), COLORS.smooth);
    }
  }

  line(ctx, L, ys, color, width) {
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.beginPath();
    for (let i = 0; i < ys.length; i++) {
      const x = L.px(this.xs[i]);
      const y = L.py(ys[i]);
      if (i) ctx.lineTo(x, y);
      else ctx.moveTo(x, y);
    }
    ctx.stroke();
  }

  dot(ctx, x, y, color) {
    ctx.fillStyle = '#fff';
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 3.5, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }

  pointer(e) {
    if (!this.xs.length) return;
    const rect = this.canvas.getBoundingClientRect();
    const L = this.layout();
    const px = (e.clientX - rect.left) / this.opts.scale;
    if (px < PAD.left - 4 || px > PAD.left + L.pw + 4) {
      this.leave();
      return;
    }
    // Binary search for the batch nearest the pointer.
    const x = L.x(px);
    let lo = 0;
    let hi = this.xs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.xs[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0 && Math.abs(this.xs[lo - 1] - x) < Math.abs(this.xs[lo] - x)) lo--;
    this.hover = lo;
    this.showTip(L, lo, px);
    this.invalidate();
  }

  showTip(L, i, px) {
    const rows = [
      [`epoch ${formatEpochs(this.xs[i])}`, `batch ${this.steps[i]}`],
      ['train, smoothed', this.format(this.smooth[i])],
      ['this batch', this.format(this.raw[i])],
    ];
    // The last evaluation at or before the hovered batch.
    let test = null;
    for (const p of this.test) if (p.x <= this.xs[i] + 1e-9) test = p;
    if (test) rows.push([`test, epoch ${test.epoch}`, this.format(test.y)]);
    this.tip.replaceChildren(
      ...rows.map(([k, v], n) => {
        const row = document.createElement('div');
        row.className = n === 0 ? 'tip-head' : 'tip-row';
        const a = document.createElement('span');
        a.textContent = k;
        const b = document.createElement('b');
        b.textContent = v;
        row.append(a, b);
        return row;
      }),
    );
    this.tip.hidden = false;
    const tw = this.tip.offsetWidth;
    const at = px * this.opts.scale; // the tip is placed in CSS pixels
    const left = at + 14 + tw > L.w * this.opts.scale ? at - 14 - tw : at + 14;
    this.tip.style.left = `${Math.max(0, left)}px`;
  }

  leave() {
    if (this.hover === -1 && this.tip.hidden) return;
    this.hover = -1;
    this.tip.hidden = true;
    this.invalidate();
  }
}

/**
 * sparkline draws values as a small line in canvas, scaled to their range.
 */
export function sparkline(canvas, values) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (values.length < 2) {
    ctx.strokeStyle = '#cbd5e1';
    ctx.setLineDash([2, 3]);
    ctx.beginPath();
    ctx.moveTo(2, h / 2 + 0.5);
    ctx.lineTo(w - 2, h / 2 + 0.5);
    ctx.stroke();
    return;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (hi === lo) hi = lo + 1;
  const x = (i) => 2 + (i / (values.length - 1)) * (w - 4);
  const y = (v) => 3 + (1 - (v - lo) / (hi - lo)) * (h - 6);
  ctx.strokeStyle = '#2563eb';
  ctx.lineWidth = 1.5;
  ctx.lineJoin = 'round';
  ctx.beginPath();
  values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
  ctx.stroke();
  ctx.fillStyle = '#2563eb';
  ctx.beginPath();
  ctx.arc(x(values.length - 1), y(values[values.length - 1]), 2, 0, 2 * Math.PI);
  ctx.fill();
}
