// Client state: messages per channel sorted by seq, read positions, receipts, typing.
// Views subscribe with onChange(); notifications are batched to one per frame.
//
// What is read: the server keeps one position per channel (`read {channel, seq}` marks
// everything up to seq). A message seen on screen above unread ones that were not seen yet
// (the feed is newest first) cannot move that position: it is kept here as `seen` (and in
// sessionStorage) until the ones below it are seen too. An edited message that had been
// read is "new" again (`renewed`) until it is seen once more.

const TYPING_MS = 5000;

export class Store {
  constructor(me, storage = sessionStorage) {
    this.me = me; // {id, name, role}
    this.storage = storage;
    this.seenKey = `liaison.seen.${me?.id}`;
    this.channels = new Map(); // channel → {msgs: Map(seq → message), sorted, latest, loading}
    this.reads = new Map(); // channel → highest seq read by me
    this.seen = new Map(); // channel → Set(seq): seen on screen, above the read position
    this.renewed = new Map(); // "channel#seq" → edit time: read before, edited since
    this.othersRead = new Map(); // chat channel → highest seq of mine that the other side read
    this.closed = new Set(); // chat channels closed by the school
    try {
      for (const [ch, seqs] of Object.entries(JSON.parse(storage.getItem(this.seenKey) || '{}'))) {
        this.seen.set(ch, new Set(seqs.map(Number)));
      }
    } catch { /* nothing kept */ }
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
    // an edit of a message I had read: new again, until seen once more
    if (old && m.edited && !m.deleted && (m.edited ?? 0) > (old.edited ?? 0) && this.counts(m) && !this.isUnread(old)) {
      this.renewed.set(`${m.channel}#${m.seq}`, m.edited);
    }
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
      const seen = this.seen.get(name);
      if (seen) for (const s of [...seen]) if (s <= seq) seen.delete(s);
      this.saveSeen();
      this.changed();
    }
  }

  // The message was on screen long enough to be read.
  markSeen(m) {
    const key = `${m.channel}#${m.seq}`;
    if (this.renewed.has(key)) this.renewed.delete(key);
    if (m.seq > this.readSeq(m.channel)) {
      if (!this.seen.has(m.channel)) this.seen.set(m.channel, new Set());
      this.seen.get(m.channel).add(m.seq);
      this.saveSeen();
    }
    this.changed();
  }

  isSeen(m) {
    return m.seq <= this.readSeq(m.channel) || !!this.seen.get(m.channel)?.has(m.seq);
  }

  // The highest seq up to which every message of `name` that counts has been seen: the
  // read position the server may be given (null when it would not move).
  readTarget(name) {
    const c = this.channels.get(name);
    const from = this.readSeq(name);
    if (!c) return null;
    let target = from;
    for (let s = from + 1; s <= c.latest; s++) {
      const m = c.msgs.get(s);
      if (!m || (this.counts(m) && !this.seen.get(name)?.has(s))) break;
      target = s;
    }
    return target > from ? target : null;
  }

  saveSeen() {
    const out = {};
    for (const [ch, seqs] of this.seen) if (seqs.size) out[ch] = [...seqs];
    try { this.storage.setItem(this.seenKey, JSON.stringify(out)); } catch { /* storage full or off */ }
  }

  // Messages that count for "unread": from someone else, not deleted.
  counts(m) {
    return !m.deleted && m.from?.id !== this.me.id;
  }

  isUnread(m) {
    if (!this.counts(m)) return false;
    return !this.isSeen(m) || this.renewed.has(`${m.channel}#${m.seq}`);
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
        for (const f of r.families || []) {
          if (f.unread.delete(user)) f.read.add(user);
        }
        if (r.families) r.familiesRead = r.families.filter((f) => f.read.size).length;
      }
    }
    // in a chat: the other side read my messages up to seq
    if (channel.startsWith('chat:') && user !== this.me.id && seq > (this.othersRead.get(channel) ?? 0)) {
      this.othersRead.set(channel, seq);
    }
    this.changed();
  }

  readByOthers(m) {
    return m.seq <= (this.othersRead.get(m.channel) ?? 0);
  }

  // ——— closed chats ———

  setClosed(channel, closed) {
    if (closed) this.closed.add(channel);
    else this.closed.delete(channel);
    this.changed();
  }

  isClosed(channel) {
    return this.closed.has(channel);
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
