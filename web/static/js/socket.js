// SessionSocket keeps a session's WebSocket open: it reconnects after a
// drop with backoff, resuming after the last durable message it saw (so no
// curve point is lost or counted twice), decodes binary image frames and
// matches prediction answers to their requests.

import { parseFrame } from './frames.js';

// Durable messages are numbered and replayed after ?since=; the others
// (state, prediction, error) are latest-wins or private.
const DURABLE = new Set(['status', 'metrics', 'epoch', 'rewind', 'notice']);

// A prediction with no answer after this long is given up.
const PREDICT_TIMEOUT_MS = 10000;

export class SessionSocket {
  /**
   * @param {string} sessionId
   * @param {{onMessage?: Function, onFrame?: Function, onConnection?: Function}} handlers
   *   onMessage(msg) gets every JSON message, onFrame(frame) every image
   *   frame, onConnection(state) "live", "reconnecting" or "gone".
   */
  constructor(sessionId, handlers) {
    this.id = sessionId;
    this.handlers = handlers;
    this.lastSeq = 0;
    this.attempt = 0;
    this.ws = null;
    this.stopped = false;
    this.nextId = 1;
    this.pending = new Map(); // prediction id -> {resolve, reject, timer}
    // Leaving the page closes the socket on purpose: no reconnect, no error.
    window.addEventListener('pagehide', () => this.close());
  }

  /** connect opens the socket; after a drop it reconnects by itself. */
  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/ws/sessions/${encodeURIComponent(this.id)}?since=${this.lastSeq}`;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('open', () => this.emit('onConnection', 'live'));
    ws.addEventListener('message', (ev) => this.receive(ev.data));
    ws.addEventListener('close', (ev) => this.closed(ws, ev));
    this.ws = ws;
  }

  /** close ends the connection for good. */
  close() {
    this.stopped = true;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, 'page closed');
  }

  /** isOpen reports whether messages can be sent now. */
  isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /**
   * predict sends a drawing ({width, height, pixels: base64}) and resolves
   * with the prediction answer. The kind-3 frame of its activation maps
   * follows through onFrame, with seq = the request's id.
   */
  predict(drawing) {
    if (!this.isOpen()) return Promise.reject(new Error('not connected to the server'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error('no answer from the server'));
      }, PREDICT_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ type: 'predict', id, ...drawing }));
    });
  }

  receive(data) {
    this.attempt = 0;
    if (typeof data !== 'string') {
      let frame;
      try {
        frame = parseFrame(data);
      } catch (err) {
        console.warn('cnnviz: skipping an image frame:', err.message);
        return;
      }
      this.emit('onFrame', frame);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      console.warn('cnnviz: skipping a message that is not JSON');
      return;
    }
    if (DURABLE.has(msg.type)) {
      if (msg.seq <= this.lastSeq) return; // already seen before a reconnect
      this.lastSeq = msg.seq;
    }
    if ((msg.type === 'prediction' || msg.type === 'error') && msg.data && msg.data.id) {
      const p = this.pending.get(msg.data.id);
      if (p) {
        this.pending.delete(msg.data.id);
        clearTimeout(p.timer);
        if (msg.type === 'prediction') p.resolve(msg.data);
        else p.reject(new Error(msg.data.message));
      }
    }
    this.emit('onMessage', msg);
  }

  closed(ws, ev) {
    if (this.ws === ws) this.ws = null;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new Error('the connection was lost'));
      this.pending.delete(id);
    }
    if (this.stopped) return;
    if (ev.reason === 'session deleted') {
      this.stopped = true;
      this.emit('onConnection', 'gone');
      return;
    }
    this.emit('onConnection', 'reconnecting');
    // Exponential backoff with jitter, so that a classroom of browsers
    // does not reconnect in lockstep after a server restart.
    const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.8 + 0.4 * Math.random());
    this.attempt++;
    setTimeout(() => this.connect(), delay);
  }

  emit(name, arg) {
    const f = this.handlers[name];
    if (f) f(arg);
  }
}
