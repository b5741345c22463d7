// FilterGrid shows the first layer's filters: one small canvas per filter,
// scaled up by CSS with crisp pixels, all on one colour scale symmetric
// around zero (blue negative, white zero, red positive) whose ends the
// legend labels.

import { DIVERGING, paint } from './colors.js';
import { formatValue } from './format.js';

export class FilterGrid {
  /**
   * @param {HTMLElement} root the grid's container ([data-testid=filters])
   * @param {{info?: HTMLElement, lo?: HTMLElement, hi?: HTMLElement}} labels
   */
  constructor(root, labels) {
    this.root = root;
    this.labels = labels;
    this.canvases = [];
    this.updates = 0;
  }

  /**
   * show draws a "filters" group (H x W x C: C filters of H x W, lo = -a,
   * hi = a) as it was at training step step.
   */
  show(group, step) {
    const { h, w, c } = group;
    if (this.canvases.length !== c || this.h !== h || this.w !== w) this.build(h, w, c);
    for (let i = 0; i < c; i++) paint(this.canvases[i], group.pixels, i * h * w, w, h, DIVERGING);
    const a = Math.max(Math.abs(group.lo), Math.abs(group.hi));
    if (this.labels.lo) this.labels.lo.textContent = `−${formatValue(a)}`;
    if (this.labels.hi) this.labels.hi.textContent = `+${formatValue(a)}`;
    this.root.dataset.step = String(step);
    this.root.dataset.updates = String(++this.updates);
  }

  /** message replaces the grid with a short text. */
  message(text) {
    const p = document.createElement('p');
    p.className = 'muted empty';
    p.textContent = text;
    this.root.replaceChildren(p);
  }

  build(h, w, c) {
    this.h = h;
    this.w = w;
    // Fewer filters get more room; each stays an integer multiple of its
    // size so that every weight is a square of the same number of pixels.
    const target = c <= 8 ? 64 : c <= 16 ? 52 : c <= 32 ? 40 : 30;
    const scale = Math.max(2, Math.round(target / Math.max(h, w)));
    this.root.style.setProperty('--cell-w', `${w * scale}px`);
    this.root.style.setProperty('--cell-h', `${h * scale}px`);
    // A few filters sit in two even rows rather than a full row and a
    // straggler; many fill the width.
    const cols = c <= 4 ? c : c <= 8 ? Math.ceil(c / 2) : 0;
    this.root.style.gridTemplateColumns = cols ? `repeat(${cols}, var(--cell-w))` : '';
    this.canvases = [];
    const nodes = [];
    for (let i = 0; i < c; i++) {
      const cv = document.createElement('canvas');
      cv.width = w;
      cv.height = h;
      cv.title = `filter ${i + 1}`;
      this.canvases.push(cv);
      nodes.push(cv);
    }
    this.root.replaceChildren(...nodes);
    if (this.labels.info) this.labels.info.textContent = `${c} filters of ${h}×${w}`;
  }
}
