// Client state: messages per channel sorted by seq, read positions, receipts, typing.
// Views subscribe with onChange(); notifications are batched to one per frame.

const TYPING_MS = 5000;

export class Store {
  constructor(me) {
    this.me = me; // {id, name, role}
    this.channels = new Map(); // channel → {msgs: Map(seq → message), sorted, latest, loading}
    this.reads = new Map(); // channel → highest seq read by me
    this.receipts = new Map(); // "channel#seq" → {read: Set, unread: Set} | {loading} | {error}
    this.typing = new Map(); // channel → Map(userId → expiry ms)
    this.listeners = new Set();
    this.scheduled = false;
  }

  ch(name) {
    let c = this.channels.get(name);
    if (!c) {
      c = { name, msgs: new Map(), sorted: null, latest: 0, loading: false, known: false };
      this.channels.set(name, c);
    }
    return c;
  }

  // The channel's latest seq as the server reported it (connect, subscribe, subscribed).
  setLatest(name, seq) {
    const c = this.ch(name);
    c.known = true;
    if (seq > c.latest) c.latest = seq;
    this.changed();
  }

  forget(name) {
    this.channels.delete(name);
    this.typing.delete(name);
    this.changed();
  }

  // Add or replace a message (new, recovered, from history, or an update).
  add(m, { update = false } = {}) {
    const c = this.ch(m.channel);
    const old = c.msgs.get(m.seq);
    if (old && !update && !newer(m, old)) return false;
    if (!old && update) return false; // an edit of a message not loaded here: history will bring it
    c.msgs.set(m.seq, m);
    c.sorted = null;
    if (m.seq > c.latest) c.latest = m.seq;
    const typers = this.typing.get(m.channel);
    if (typers?.delete(m.from?.id)) this.typing.set(m.channel, typers);
    this.changed();
    return true;
  }

  list(name) {
    const c = this.channels.get(name);
    if (!c) return [];
    if (!c.sorted) c.sorted = [...c.msgs.values()].sort((a, b) => a.seq - b.seq);
    return c.sorted;
  }

  oldest(name) {
    const l = this.list(name);
    return l.length ? l[0].seq : null;
  }

  // True when messages older than those loaded exist (seq has no holes: 1, 2, 3 …).
  hasMore(name) {
    const c = this.channels.get(name);
    if (!c || c.exhausted) return false;
    const oldest = this.oldest(name);
    return oldest === null ? c.latest > 0 : oldest > 1;
  }

  last(name) {
    const l = this.list(name);
    return l.length ? l[l.length - 1] : null;
  }

  // Messages of several channels, newest first. Only messages newer than the oldest
  // loaded message of every channel that still has older ones are shown, so that
  // merging partially loaded channels never shows things out of order.
  feed(names) {
    let cutoff = -Infinity;
    for (const n of names) {
      if (this.hasMore(n)) {
        const l = this.list(n);
        const ts = l.length ? l[0].ts : Infinity;
        if (ts > cutoff) cutoff = ts;
      }
    }
    const all = [];
    for (const n of names) for (const m of this.list(n)) if (m.ts >= cutoff) all.push(m);
    return all.sort((a, b) => b.ts - a.ts || (a.channel < b.channel ? -1 : 1) || b.seq - a.seq);
  }

  // ——— reads ———

  readSeq(name) {
    return this.reads.get(name) ?? 0;
  }

  setRead(name, seq) {
    if (seq > this.readSeq(name)) {
      this.reads.set(name, seq);
      this.changed();
    }
  }

  // Messages that count for "unread": from someone else, not deleted.
  counts(m) {
    return !m.deleted && m.from?.id !== this.me.id;
  }

  isUnread(m) {
    return this.counts(m) && m.seq > this.readSeq(m.channel);
  }

  unreadCount(names) {
    let n = 0;
    for (const name of names) for (const m of this.list(name)) if (this.isUnread(m)) n++;
    return n;
  }

  unreadUrgent(names) {
    const out = [];
    for (const name of names) {
      for (const m of this.list(name)) if (m.data?.urgent && this.isUnread(m)) out.push(m);
    }
    return out.sort((a, b) => b.ts - a.ts);
  }

  // ——— receipts ———

  receipt(channel, seq) {
    return this.receipts.get(`${channel}#${seq}`);
  }

  setReceipt(channel, seq, value) {
    this.receipts.set(`${channel}#${seq}`, value);
    this.changed();
  }

  // Live `receipt` push: `user` read the message `seq` (and so everything below it).
  applyReceipt(channel, seq, user) {
    for (const [key, r] of this.receipts) {
      const [ch, s] = splitKey(key);
      if (ch === channel && s <= seq && r.read && r.unread?.has(user)) {
        r.unread.delete(user);
        r.read.add(user);
      }
    }
    this.changed();
  }

  clearReceipts() {
    this.receipts.clear();
    this.changed();
  }

  // ——— typing ———

  setTyping(channel, user) {
    if (user === this.me.id) return;
    const m = this.typing.get(channel) || new Map();
    m.set(user, Date.now() + TYPING_MS);
    this.typing.set(channel, m);
    setTimeout(() => this.changed(), TYPING_MS + 50);
    this.changed();
  }

  typers(channel) {
    const m = this.typing.get(channel);
    if (!m) return [];
    const now = Date.now();
    return [...m].filter(([, until]) => until > now).map(([u]) => u);
  }

  // ——— change notification ———

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    if (this.scheduled) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      for (const fn of [...this.listeners]) fn();
    };
    // requestAnimationFrame does not run in background tabs; a timeout does.
    if (document.visibilityState === 'visible') requestAnimationFrame(run);
    else setTimeout(run, 50);
  }
}

function newer(m, old) {
  if (m.deleted && !old.deleted) return true;
  return (m.edited ?? 0) > (old.edited ?? 0);
}

function splitKey(key) {
  const i = key.lastIndexOf('#');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
