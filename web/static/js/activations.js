// ActivationView draws every layer's output for one image, one row per
// layer as ConvNetJS does: the input, each convolution's activation maps,
// each pooling layer's smaller maps, and dense layers as strips of units.
// Each row is headed by the layer, its output volume and its weights, from
// the session's summary table.

import { GREY, paint } from './colors.js';
import { formatInt } from './format.js';

export class ActivationView {
  /**
   * @param {HTMLElement} root the rows' container ([data-testid=activations])
   * @param {{zoom?: number}} opts zoom draws the maps this many times larger
   */
  constructor(root, opts = {}) {
    this.root = root;
    this.zoom = opts.zoom || 1;
    this.rows = new Map(); // layer name -> {el, maps: canvas[], key}
    this.layers = new Map(); // layer name -> summary row
    this.updates = 0;
  }

  /** setZoom changes the maps' size; the next show rebuilds the rows. */
  setZoom(zoom) {
    this.zoom = zoom;
    this.rows.clear();
  }

  /** setSummary takes the session's summary (Info.summary) for the row headers. */
  setSummary(summary) {
    this.layers = new Map((summary && summary.layers ? summary.layers : []).map((l) => [l.name, l]));
    for (const [name, row] of this.rows) this.head(row, name, row.group);
  }

  /** message replaces the rows with a short text, e.g. before anything is drawn. */
  message(text) {
    this.rows.clear();
    const p = document.createElement('p');
    p.className = 'muted empty';
    p.textContent = text;
    this.root.replaceChildren(p);
  }

  /**
   * show draws the groups of an image frame (the layer outputs, in order)
   * as they were at training step step.
   */
  show(groups, step) {
    const names = new Set();
    const order = [];
    const last = groups.length - 1;
    groups.forEach((g, i) => {
      names.add(g.name);
      const key = `${g.h}x${g.w}x${g.c}`;
      let row = this.rows.get(g.name);
      if (!row || row.key !== key) {
        row = this.build(g, key, i === last && g.h === 1);
        this.rows.set(g.name, row);
      }
      row.group = g;
      this.draw(row, g, i === last && g.h === 1);
      order.push(row.el);
    });
    for (const name of [...this.rows.keys()]) if (!names.has(name)) this.rows.delete(name);
    // Re-append only when the set or order of rows changed, so that a
    // live update does not move the page under the reader.
    const current = [...this.root.children];
    if (current.length !== order.length || current.some((el, i) => el !== order[i])) this.root.replaceChildren(...order);
    this.root.dataset.step = String(step);
    this.root.dataset.updates = String(++this.updates);
  }

  build(g, key, classes) {
    const el = document.createElement('div');
    el.className = 'act-row';
    el.dataset.layer = g.name;
    const head = document.createElement('div');
    head.className = 'act-head';
    const maps = document.createElement('div');
    maps.className = classes ? 'act-maps act-classes' : g.h === 1 ? 'act-maps act-strip' : 'act-maps';
    el.append(head, maps);
    const row = { el, head, maps: [], key, group: g, labels: [] };
    if (classes) {
      // The class probabilities: a labelled cell per digit.
      for (let d = 0; d < g.w; d++) {
        const cell = document.createElement('span');
        cell.className = 'act-class';
        const cv = document.createElement('canvas');
        cv.width = 1;
        cv.height = 1;
        cv.style.width = cv.style.height = `${26 * this.zoom}px`;
        cv.title = `probability of ${d}`;
        const label = document.createElement('span');
        label.textContent = String(d);
        cell.append(cv, label);
        maps.append(cell);
        row.maps.push(cv);
        row.labels.push(cell);
      }
    } else if (g.h === 1) {
      // A dense layer: one strip with a cell per unit.
      const cv = document.createElement('canvas');
      const cell = (g.w <= 16 ? 26 : g.w <= 64 ? 8 : g.w <= 256 ? 4 : 2) * this.zoom;
      cv.style.width = `${g.w * cell}px`;
      cv.style.height = `${18 * this.zoom}px`;
      cv.title = `${g.name}: ${g.w} units`;
      maps.append(cv);
      row.maps.push(cv);
    } else {
      const target = (g.c === 1 ? 84 : g.c <= 8 ? 64 : g.c <= 16 ? 52 : g.c <= 32 ? 44 : 36) * this.zoom;
      // Whole pixels at the normal size; a zoomed view (the projector's,
      // fitted to its screen) may use any size.
      const side = Math.max(g.h, g.w);
      const scale = this.zoom === 1 ? Math.max(1, Math.round(target / side)) : Math.max(0.5, target / side);
      for (let i = 0; i < g.c; i++) {
        const cv = document.createElement('canvas');
        cv.width = g.w;
        cv.height = g.h;
        cv.style.width = `${g.w * scale}px`;
        cv.style.height = `${g.h * scale}px`;
        cv.title = g.c > 1 ? `${g.name}, map ${i + 1}` : g.name;
        maps.append(cv);
        row.maps.push(cv);
      }
    }
    this.head(row, g.name, g);
    return row;
  }

  head(row, name, g) {
    const l = this.layers.get(name);
    const parts = [];
    const add = (cls, text) => {
      const s = document.createElement('span');
      s.className = cls;
      s.textContent = text;
      parts.push(s);
    };
    add('act-name', name);
    if (name === 'input') {
      add('act-desc', 'the image the network sees');
      add('act-shape', `${g.h}×${g.w}×${g.c}`);
      add('act-params', 'no weights');
    } else if (l) {
      add('act-desc', l.description);
      add('act-shape', l.output.replaceAll('x', '×'));
      add('act-params', l.weights ? `${formatInt(l.weights)} weights` : 'no weights');
    } else {
      add('act-shape', g.h === 1 ? String(g.w) : `${g.h}×${g.w}×${g.c}`);
    }
    row.head.replaceChildren(...parts);
  }

  draw(row, g, classes) {
    const n = g.h * g.w;
    if (classes) {
      let best = 0;
      for (let d = 0; d < g.w; d++) {
        paint(row.maps[d], g.pixels, d, 1, 1, GREY);
        if (g.pixels[d] > g.pixels[best]) best = d;
      }
      row.labels.forEach((cell, d) => cell.classList.toggle('top', d === best));
      return;
    }
    if (g.h === 1) {
      paint(row.maps[0], g.pixels, 0, g.w, 1, GREY);
      return;
    }
    for (let i = 0; i < g.c; i++) paint(row.maps[i], g.pixels, i * n, g.w, g.h, GREY);
  }
}

/** showProbe points a probe image and its caption's number at test image index. */
export function showProbe(img, label, index) {
  const src = `/api/mnist/test/${index}.png`;
  if (img.getAttribute('src') !== src) {
    img.src = src;
    img.alt = `test image ${index}`;
  }
  label.textContent = String(index);
}
