// Per-channel message order for the protocol client: the last seq delivered for each
// channel (kept in memory and in sessionStorage, sent as `since` on reconnect),
// delivery in seq order without duplicates, and gap filling with `history`.

const MAX_PAGES = 25; // × 200 messages

export class Sequencer {
  // deliver(message, live) — next message of its channel, in order, once
  // history(params) → Promise<{messages}> — the `history` operation
  // older(channel, messages) — messages below the delivered ones (backfill)
  // broken() — a gap could not be filled: reconnect (recovery with `since` fills it)
  constructor({ storage, storageKey, deliver, history, older, broken }) {
    Object.assign(this, { storage, storageKey, deliver, history, older, broken });
    this.seqs = new Map(Object.entries(readJson(storage, storageKey)));
    this.pending = new Map(); // channel → Map(seq → {m, live}) received above a gap
    this.filling = new Set(); // channels whose gap is being filled
  }

  get(channel) {
    return this.seqs.get(channel);
  }

  // `since` for connect: the last seq of every channel known.
  since() {
    return Object.fromEntries(this.seqs);
  }

  // A channel became readable (subscribed push, subscribe reply): start at its seq.
  start(channel, seq) {
    if (!this.seqs.has(channel)) {
      this.seqs.set(channel, seq ?? 0);
      this.persist();
    }
  }

  forget(channel) {
    this.seqs.delete(channel);
    this.pending.delete(channel);
    this.persist();
  }

  // The connection was lost: what was waiting for a gap is dropped (recovery redoes it).
  interrupted() {
    this.pending.clear();
    this.filling.clear();
  }

  // The channels of a connect reply. Returns the channels whose history was reset
  // (the server's seq went backwards: its store was replaced).
  recover(channels) {
    const reset = [];
    const listed = new Set();
    for (const c of channels) {
      listed.add(c.channel);
      const prev = this.seqs.get(c.channel);
      const msgs = c.messages || [];
      if (prev === undefined || c.seq < prev) {
        if (prev !== undefined) reset.push(c.channel);
        this.seqs.set(c.channel, c.seq);
        continue;
      }
      if (c.complete === false && msgs.length) {
        // Only the newest messages came back: take them, then page back over the hole.
        this.seqs.set(c.channel, msgs[0].seq - 1);
        this.backfill(c.channel, prev, msgs[0].seq);
      }
      for (const m of msgs) this.accept(m, false);
      if (!msgs.length && (this.seqs.get(c.channel) ?? 0) < c.seq) this.seqs.set(c.channel, c.seq);
    }
    for (const ch of [...this.seqs.keys()]) if (!listed.has(ch)) this.seqs.delete(ch);
    this.persist();
    return reset;
  }

  accept(m, live) {
    if (!m || typeof m.seq !== 'number') return;
    const ch = m.channel;
    const last = this.seqs.get(ch);
    if (last !== undefined && m.seq <= last) return; // already delivered
    if (last !== undefined && m.seq > last + 1) {
      if (!this.pending.has(ch)) this.pending.set(ch, new Map());
      this.pending.get(ch).set(m.seq, { m, live });
      this.fillGap(ch);
      return;
    }
    this.seqs.set(ch, m.seq);
    this.persist();
    this.deliver(m, live);
    const buf = this.pending.get(ch);
    if (buf) {
      const next = buf.get(m.seq + 1);
      if (next) {
        buf.delete(m.seq + 1);
        this.accept(next.m, next.live);
      }
      if (!buf.size) this.pending.delete(ch);
    }
  }

  async fillGap(ch) {
    if (this.filling.has(ch)) return;
    this.filling.add(ch);
    try {
      for (let i = 0; i < MAX_PAGES && this.pending.get(ch)?.size; i++) {
        const last = this.seqs.get(ch) ?? 0;
        const missing = Math.min(...this.pending.get(ch).keys()) - last - 1;
        if (missing <= 0) break;
        const limit = Math.min(missing, 200);
        const page = await this.history({ channel: ch, before: last + 1 + limit, limit });
        for (const m of page.messages || []) this.accept(m, false);
        if (!(page.messages || []).length) break;
      }
    } catch {
      this.broken();
    } finally {
      this.filling.delete(ch);
    }
  }

  // After a `complete: false` recovery: page backwards from `before` down to `after`.
  async backfill(ch, after, before) {
    try {
      for (let i = 0; i < MAX_PAGES && before > after + 1; i++) {
        const limit = Math.min(200, before - after - 1);
        const page = await this.history({ channel: ch, before, limit });
        const msgs = page.messages || [];
        if (!msgs.length) break;
        this.older(ch, msgs);
        before = msgs[0].seq;
      }
    } catch { /* the rest stays reachable by scrolling back */ }
  }

  persist() {
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(this.since()));
    } catch { /* storage full or disabled: memory still works */ }
  }
}

function readJson(storage, key) {
  try {
    return JSON.parse(storage.getItem(key) || '{}') || {};
  } catch {
    return {};
  }
}
