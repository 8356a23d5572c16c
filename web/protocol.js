// Liaison wire protocol v1 client (JSON subprotocol), see shared protocol.md.
//
// - request(op, params) → Promise of the `ok` object (rejects with ProtocolError).
//   Commands issued while disconnected wait for the connection; `publish` and `read`
//   are retried after a reconnect when no reply came (publish carries an idempotency key).
// - Pushes become events: message, update, typing, subscribed, unsubscribed, receipt.
// - Reconnects with exponential backoff and jitter, and recovers with `since`; the
//   Sequencer keeps the last seq of every channel and delivers messages per channel
//   in seq order, without duplicates, filling gaps with `history`.
// Events: state {state}, ready {user, channels, reconnected}, message {message, live},
//   history {messages}, update/typing/subscribed/unsubscribed/receipt {…push},
//   unauthorized, fatal {code}.
// - A token refused (close 4401, or `unauthorized` at connect): with a `renew` function
//   (a signed-in device: it refreshes the access token), the client connects again with the
//   new token at once; without it (a demo token), or when renewing says the session ended
//   (null), the 'unauthorized' event tells the app to sign the person out.

import { Sequencer } from './sequencer.js';

export const SUBPROTOCOL = 'liaison.v1.json';
const RETRIED = new Set(['publish', 'read']);
const INFLIGHT_RETRY_TIMEOUT = 20_000; // a retried command without reply: the link is dead

// A fresh idempotency key for `publish`. crypto.randomUUID exists only in secure
// contexts (https, localhost); a school's LAN demo over http still gets a v4 UUID.
export function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export class ProtocolError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

export class LiaisonClient extends EventTarget {
  constructor({ url, token, renew = null, storage = sessionStorage, storageKey = 'liaison.seqs', minDelay = 500, maxDelay = 30_000 }) {
    super();
    Object.assign(this, { url, token, renew, storage, storageKey, minDelay, maxDelay });
    this.connToken = null; // the token of the last `connect`
    this.authRetries = 0; // new tokens refused since the last successful connect
    this.seq = new Sequencer({
      storage, storageKey,
      deliver: (message, live) => {
        this._noteSynced(message);
        this._emit('message', { message, live });
      },
      history: (params) => this.request('history', params),
      older: (channel, messages) => this._emit('history', { channel, messages }),
      broken: () => this._drop('gap'),
    });
    // the newest server time seen (a message's ts or edit time): sent as `updated_since` on
    // reconnect, so that edits and deletions made while away come back in `updates`
    this.syncedKey = `${storageKey}.synced`;
    this.synced = Number(storage.getItem(this.syncedKey)) || 0;
    this.ws = null;
    this.state = 'idle';
    this.nextId = 1;
    this.attempt = 0;
    this.inflight = new Map(); // id → request
    this.queue = []; // requests waiting for a connection
    this.user = null;
    this.connected = false; // had at least one successful connect
    this.stopped = false;
    this.timers = { retry: 0, ping: 0 };
    this._online = () => this.retryNow();
    this._offline = () => this.ws && this._drop('offline');
    this._visible = () => document.visibilityState === 'visible' && this.retryNow();
  }

  start() {
    this.stopped = false;
    addEventListener('online', this._online);
    addEventListener('offline', this._offline);
    document.addEventListener('visibilitychange', this._visible);
    this._open();
  }

  stop() {
    this.stopped = true;
    removeEventListener('online', this._online);
    removeEventListener('offline', this._offline);
    document.removeEventListener('visibilitychange', this._visible);
    clearTimeout(this.timers.retry);
    clearInterval(this.timers.ping);
    if (this.ws) this._drop('stop');
    for (const req of [...this.queue, ...this.inflight.values()]) this._reject(req, 'stopped');
    this.queue = [];
    this.inflight.clear();
    this._setState('closed');
  }

  // Reconnect at once if waiting for the next attempt.
  retryNow() {
    if (this.stopped || this.state !== 'reconnecting' || this.ws) return;
    clearTimeout(this.timers.retry);
    this._open();
  }

  lastSeq(channel) {
    return this.seq.get(channel);
  }

  // The channels known, with their last seq.
  channels() {
    return Object.keys(this.seq.since());
  }

  request(op, params = {}, { timeout = 15_000 } = {}) {
    return new Promise((resolve, reject) => {
      const req = { op, params, resolve, reject, timeout, retry: RETRIED.has(op), id: 0, timer: 0 };
      if (this.state === 'online') this._send(req);
      else {
        this.queue.push(req);
        if (!req.retry) req.timer = setTimeout(() => this._expireQueued(req), timeout);
      }
    });
  }

  // Subscribe to a channel the user may read but does not belong to (e.g. a director
  // opening a class). Resolves with the reply {channel, seq, messages, complete}.
  async subscribe(channel) {
    const since = this.seq.get(channel);
    const ok = await this.request('subscribe', since === undefined ? { channel } : { channel, since });
    if (since === undefined) this.seq.start(channel, ok.seq);
    else for (const m of ok.messages || []) this.seq.accept(m, false);
    return ok;
  }

  // ——— connection ———

  // `renewing`: a new token replaces an expired one; the page does not show "Reconnexion…".
  _open(renewing = false) {
    clearTimeout(this.timers.retry);
    this._setState(!this.connected ? 'connecting' : renewing ? 'renewing' : 'reconnecting');
    let ws;
    try {
      ws = new WebSocket(this.url, [SUBPROTOCOL]);
    } catch {
      this._closed({ code: 1006 });
      return;
    }
    this.ws = ws;
    ws.onopen = () => this._sendConnect();
    ws.onmessage = (ev) => this._onFrame(ev.data);
    ws.onclose = (ev) => this._closed(ev);
    ws.onerror = () => {}; // a close event follows
  }

  _sendConnect() {
    const id = this.nextId++;
    const since = this.seq.since();
    const req = {
      op: 'connect', id, retry: false, connect: true, timeout: 15_000,
      resolve: (ok) => this._onConnected(ok),
      reject: (err) => {
        if (err.code === 'unauthorized') this._drop('unauthorized', 4401);
        else this._drop('connect failed');
      },
    };
    req.timer = setTimeout(() => this._drop('connect timeout'), req.timeout);
    this.inflight.set(id, req);
    this.connToken = this.token;
    const params = { id, op: 'connect', token: this.token, since };
    if (this.synced && Object.keys(since).length) params.updated_since = this.synced;
    this._write(params);
  }

  _onConnected(ok) {
    const reconnected = this.connected;
    this.connected = true;
    this.attempt = 0;
    this.authRetries = 0;
    this.user = ok.user;
    // the server's seq went backwards (its store was replaced): start those over
    for (const channel of this.seq.recover(ok.channels || [])) this._emit('reset', { channel });
    this._setState('online');
    const interval = Math.max(5, Math.min(Number(ok.ping) || 25, 60)) * 1000;
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => this._heartbeat(), interval);
    const queued = this.queue;
    this.queue = [];
    for (const req of queued) this._send(req);
    this._emit('ready', { user: ok.user, session: ok.session, channels: ok.channels || [], reconnected });
    for (const c of ok.channels || []) {
      for (const message of c.updates || []) this._onPush({ push: 'update', message });
    }
  }

  _noteSynced(m) {
    const t = Math.max(Number(m && m.ts) || 0, Number(m && m.edited) || 0);
    if (t <= this.synced) return;
    this.synced = t;
    try { this.storage.setItem(this.syncedKey, String(t)); } catch { /* storage full or off */ }
  }

  _heartbeat() {
    this.request('ping', {}, { timeout: 10_000 }).catch((err) => {
      if (err.code === 'timeout') this._drop('heartbeat');
    });
  }

  // Forget the socket now (without waiting for a closing handshake) and reconnect.
  _drop(reason, code = 1006) {
    const ws = this.ws;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try { ws.close(1000, reason); } catch { /* already closed */ }
    this._closed({ code, reason });
  }

  _closed(ev) {
    this.ws = null;
    clearInterval(this.timers.ping);
    const requeue = [];
    for (const req of this.inflight.values()) {
      clearTimeout(req.timer);
      if (req.connect) continue;
      if (req.retry) requeue.push(req);
      else req.reject(new ProtocolError('disconnected'));
    }
    this.inflight.clear();
    this.queue = [...requeue, ...this.queue];
    this.seq.interrupted();
    if (this.stopped) return;
    if (ev.code === 4401) return this._authFailed();
    if (ev.code === 4403) {
      this.stopped = true;
      this._setState('closed');
      this._emit('fatal', { code: 'forbidden' });
      return;
    }
    this._retryLater();
  }

  _retryLater() {
    const cap = Math.min(this.maxDelay, this.minDelay * 2 ** this.attempt);
    const delay = Math.round(cap / 2 + Math.random() * cap / 2); // "equal jitter"
    this.attempt = Math.min(this.attempt + 1, 16);
    this._setState('reconnecting', { delay });
    this.timers.retry = setTimeout(() => this._open(), delay);
  }

  // The token was refused: renew it and connect again at once (a token renewed ahead of its
  // expiry is used as it is); a new token refused again and again means signed out.
  _authFailed() {
    if (!this.renew || ++this.authRetries > 3) return this._unauthorized();
    if (this.token !== this.connToken) return this._open(true);
    this._setState(this.connected ? 'renewing' : 'connecting');
    this.renew().then((token) => {
      if (this.stopped) return;
      if (!token) return this._unauthorized();
      this.token = token;
      this._open(true);
    }, () => {
      if (this.stopped) return;
      this.authRetries--; // offline or the server unavailable: not a refusal
      this._retryLater();
    });
  }

  _unauthorized() {
    this.stopped = true;
    if (this.ws) this._drop('unauthorized');
    this._setState('closed');
    this._emit('unauthorized', {});
  }

  // ——— commands ———

  _send(req) {
    clearTimeout(req.timer);
    req.id = this.nextId++;
    this.inflight.set(req.id, req);
    req.timer = setTimeout(() => this._expireInflight(req), req.retry ? INFLIGHT_RETRY_TIMEOUT : req.timeout);
    this._write({ ...req.params, id: req.id, op: req.op });
  }

  _write(frame) {
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      this._drop('send failed');
    }
  }

  _expireInflight(req) {
    if (this.inflight.get(req.id) !== req) return;
    if (req.retry) return this._drop('no reply'); // requeued, resent after reconnecting
    this.inflight.delete(req.id);
    req.reject(new ProtocolError('timeout'));
  }

  _expireQueued(req) {
    const i = this.queue.indexOf(req);
    if (i >= 0) {
      this.queue.splice(i, 1);
      req.reject(new ProtocolError('timeout'));
    }
  }

  _reject(req, code) {
    clearTimeout(req.timer);
    req.reject(new ProtocolError(code));
  }

  _onFrame(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f && typeof f.id === 'number') {
      const req = this.inflight.get(f.id);
      if (!req) return;
      this.inflight.delete(f.id);
      clearTimeout(req.timer);
      if (f.error) req.reject(new ProtocolError(f.error.code, f.error.message));
      else req.resolve(f.ok ?? {});
      return;
    }
    if (f && f.push) return this._onPush(f);
    if (f && f.error) console.warn('liaison: server error', f.error.code);
  }

  _onPush(p) {
    switch (p.push) {
      case 'message':
        return this.seq.accept(p.message, true);
      case 'subscribed':
        this.seq.start(p.channel, p.seq);
        return this._emit('subscribed', p);
      case 'unsubscribed':
        this.seq.forget(p.channel);
        return this._emit('unsubscribed', p);
      case 'update':
        this._noteSynced(p.message);
        return this._emit('update', p);
      default:
        return this._emit(p.push, p);
    }
  }

  _setState(state, extra = {}) {
    this.state = state;
    this._emit('state', { state, ...extra });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
