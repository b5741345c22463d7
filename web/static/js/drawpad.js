// DrawPad lets a person draw a digit with a mouse, pen or finger (pointer
// events; the canvas has touch-action: none so the page does not scroll
// under the finger) and shows what the network makes of it while they
// draw: the digit, a probability for each digit and, on the session page,
// the preprocessing step by step.
//
// Predictions go out at most every THROTTLE_MS while drawing and at once
// when a stroke ends, with never more than one in flight: a drawing that
// changes while a request is out is sent when its answer comes back, so
// the answer shown always catches up with the latest ink.

import { INK, paint } from './colors.js';

const THROTTLE_MS = 80;
// The drawing is sent downsampled to SEND x SEND greyscale bytes: ~26 KB
// of base64, well under the server's message limit, and plenty for a
// digit that ends up 20 pixels tall.
const SEND = 140;
// The last round trips kept for the read-out (data-rtts).
const KEEP_RTTS = 50;

export class DrawPad {
  /**
   * @param {HTMLElement} root a [data-drawpad] element (templates.DrawPad)
   * @param {{predict: (drawing) => Promise<object>, onClear?: Function, onAnswer?: Function}} opts
   *   predict sends {width, height, pixels (base64)} and resolves with the
   *   prediction (sessions.Prediction as JSON).
   */
  constructor(root, opts) {
    this.root = root;
    this.opts = opts;
    this.canvas = root.querySelector('[data-testid=draw-canvas]');
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    this.small = document.createElement('canvas');
    this.small.width = SEND;
    this.small.height = SEND;
    this.smallCtx = this.small.getContext('2d', { willReadFrequently: true });
    this.hint = root.querySelector('[data-hint]');
    this.status = root.querySelector('[data-draw-status]');
    this.prediction = root.querySelector('[data-testid=prediction]');
    this.confidence = root.querySelector('[data-confidence]');
    this.bars = [...root.querySelectorAll('[data-testid=probabilities] li')];
    this.steps = {};
    for (const c of root.querySelectorAll('[data-step]')) this.steps[c.dataset.step] = c;
    this.scaledSize = root.querySelector('[data-scaled-size]');

    this.drawing = false;
    this.last = null;
    this.inked = false;
    this.generation = 0; // bumped by clear: answers to older drawings are dropped
    this.dirty = false;
    this.inFlight = false;
    this.lastSent = 0;
    this.timer = 0;
    this.rtts = [];
    this.count = 0;
    this.retried = false;

    this.blank();
    this.canvas.addEventListener('pointerdown', (e) => this.down(e));
    this.canvas.addEventListener('pointermove', (e) => this.move(e));
    this.canvas.addEventListener('pointerup', (e) => this.up(e));
    this.canvas.addEventListener('pointercancel', (e) => this.up(e));
    root.querySelector('[data-clear]').addEventListener('click', () => this.clear());
  }

  blank() {
    this.ctx.fillStyle = '#fff';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** point maps a pointer event to canvas pixels, whatever the CSS size. */
  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - r.left) * this.canvas.width) / r.width,
      y: ((e.clientY - r.top) * this.canvas.height) / r.height,
    };
  }

  down(e) {
    if (e.pointerType === 'mouse' && e.button !== 0) return;
    e.preventDefault();
    this.canvas.setPointerCapture(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    this.stroke(this.last, this.last);
    if (this.hint) this.hint.hidden = true;
    this.inked = true;
    this.schedule(false);
  }

  move(e) {
    if (!this.drawing) return;
    e.preventDefault();
    // Coalesced events keep fast strokes smooth: the browser may deliver
    // several pointer positions per frame as one event.
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = this.point(ev);
      this.stroke(this.last, p);
      this.last = p;
    }
    this.schedule(false);
  }

  up(e) {
    if (!this.drawing) return;
    this.drawing = false;
    if (this.canvas.hasPointerCapture(e.pointerId)) this.canvas.releasePointerCapture(e.pointerId);
    this.schedule(true);
  }

  stroke(a, b) {
    const ctx = this.ctx;
    // About a twelfth of the canvas: once the digit is scaled to 20 pixels
    // the stroke is ~2 pixels wide, like the MNIST digits'.
    ctx.lineWidth = this.canvas.width / 12;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#0f172a';
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x + (a.x === b.x && a.y === b.y ? 0.01 : 0), b.y);
    ctx.stroke();
  }

  /** clear wipes the drawing and the answer. */
  clear() {
    this.blank();
    this.inked = false;
    this.dirty = false;
    this.generation++;
    clearTimeout(this.timer);
    if (!this.inFlight) this.busy(false);
    if (this.hint) this.hint.hidden = false;
    this.showAnswer(null);
    this.setStatus('');
    if (this.opts.onClear) this.opts.onClear();
  }

  /** schedule asks for a prediction of the current drawing, now or throttled. */
  schedule(now) {
    this.dirty = true;
    this.busy(true);
    if (this.inFlight) return; // sent when the answer arrives
    clearTimeout(this.timer);
    const wait = now ? 0 : Math.max(0, this.lastSent + THROTTLE_MS - performance.now());
    this.timer = setTimeout(() => this.send(), wait);
  }

  /** pixels returns the drawing as SEND x SEND ink bytes (0 paper, 255 ink). */
  pixels() {
    const s = this.smallCtx;
    s.imageSmoothingEnabled = true;
    s.imageSmoothingQuality = 'high';
    s.drawImage(this.canvas, 0, 0, SEND, SEND);
    const rgba = s.getImageData(0, 0, SEND, SEND).data;
    const ink = new Uint8Array(SEND * SEND);
    for (let i = 0; i < ink.length; i++) ink[i] = 255 - rgba[4 * i];
    return ink;
  }

  // busy marks, in data-busy, whether an answer is still to come for the
  // drawing as it stands (tests wait for "false").
  busy(on) {
    this.root.dataset.busy = on ? 'true' : 'false';
  }

  async send() {
    if (this.inFlight) return;
    if (!this.dirty || !this.inked) {
      this.busy(false);
      return;
    }
    this.dirty = false;
    this.inFlight = true;
    const generation = this.generation;
    const ink = this.pixels();
    const start = performance.now();
    this.lastSent = start;
    let retry = false;
    try {
      const answer = await this.opts.predict({ width: SEND, height: SEND, pixels: base64(ink) });
      const rtt = performance.now() - start;
      if (generation !== this.generation) return;
      this.retried = false;
      this.record(rtt, answer);
      this.showAnswer(answer, ink);
      if (this.opts.onAnswer) this.opts.onAnswer(answer);
    } catch (err) {
      if (generation === this.generation) {
        this.setStatus(`No answer: ${err.message}`);
        // A refused or lost request (the server limits how often one
        // client asks) is tried once more, so that the answer shown
        // catches up with the ink.
        if (!this.retried) {
          this.retried = true;
          this.dirty = true;
          retry = true;
        }
      }
    } finally {
      this.inFlight = false;
      if (retry) {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.send(), 300);
      } else if (this.dirty && this.inked) this.schedule(false);
      else this.busy(false);
    }
  }

  /** record keeps the round trip for the read-out and for tests (data-rtts). */
  record(rtt, answer) {
    this.rtts.push(Math.round(rtt * 10) / 10);
    if (this.rtts.length > KEEP_RTTS) this.rtts.shift();
    this.count++;
    this.root.dataset.rtts = this.rtts.join(',');
    this.root.dataset.predictions = String(this.count);
    const step = answer.step > 0 ? ` by the weights of batch ${answer.step}` : '';
    this.setStatus(`answered in ${Math.round(rtt)} ms${step}`);
  }

  setStatus(text) {
    if (this.status) this.status.textContent = text;
  }

  /** showAnswer shows a prediction, or resets the view when answer is null or the drawing empty. */
  showAnswer(answer, ink) {
    const empty = !answer || answer.empty;
    this.prediction.textContent = empty ? '' : String(answer.digit);
    this.root.dataset.digit = empty ? '' : String(answer.digit);
    if (this.confidence) {
      this.confidence.textContent = empty ? '' : `${Math.round(100 * answer.probabilities[answer.digit])}% sure`;
    }
    this.bars.forEach((li, d) => {
      const p = empty ? 0 : answer.probabilities[d];
      li.querySelector('.probs-fill').style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector('.probs-pct').textContent = empty ? '–' : `${(100 * p).toFixed(p >= 0.995 || p < 0.01 ? 0 : 1)}%`;
      li.classList.toggle('top', !empty && d === answer.digit);
    });
    this.showSteps(empty ? null : answer, ink);
  }

  showSteps(answer, ink) {
    const { raw, bbox, scaled, input } = this.steps;
    if (!raw) return;
    this.root.classList.toggle('has-steps', !!answer);
    if (!answer) {
      for (const c of [raw, bbox, scaled, input]) c.getContext('2d').clearRect(0, 0, c.width, c.height);
      if (this.scaledSize) this.scaledSize.textContent = '';
      return;
    }
    paint(raw, ink, 0, SEND, SEND, INK);
    // The box around the ink: the drawing dimmed outside it, the box
    // outlined.
    paint(bbox, ink, 0, SEND, SEND, INK);
    const [x0, y0, x1, y1] = answer.bbox;
    const ctx = bbox.getContext('2d');
    ctx.fillStyle = 'rgba(148, 163, 184, 0.45)';
    ctx.fillRect(0, 0, SEND, y0);
    ctx.fillRect(0, y1, SEND, SEND - y1);
    ctx.fillRect(0, y0, x0, y1 - y0);
    ctx.fillRect(x1, y0, SEND - x1, y1 - y0);
    ctx.strokeStyle = '#f59e0b';
    ctx.lineWidth = 2;
    ctx.strokeRect(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2);
    // The digit fitted in 20x20, drawn in the middle of a 20x20 field.
    const s = answer.scaled;
    const field = new Uint8Array(20 * 20);
    const ox = Math.floor((20 - s.w) / 2);
    const oy = Math.floor((20 - s.h) / 2);
    const px = decodeBytes(s.pixels);
    for (let y = 0; y < s.h; y++) for (let x = 0; x < s.w; x++) field[(y + oy) * 20 + x + ox] = px[y * s.w + x];
    paint(scaled, field, 0, 20, 20, INK);
    if (this.scaledSize) this.scaledSize.textContent = `(${s.w}×${s.h})`;
    paint(input, decodeBytes(answer.input.pixels), 0, answer.input.w, answer.input.h, INK);
  }
}

/** base64 encodes bytes for the JSON message. */
export function base64(bytes) {
  let s = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) s += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  return btoa(s);
}

/** decodeBytes reads a []uint8 as Go's encoding/json writes it: base64. */
function decodeBytes(v) {
  if (Array.isArray(v)) return Uint8Array.from(v);
  const s = atob(v || '');
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
