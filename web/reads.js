// Marks messages read when they have been on screen: an IntersectionObserver notes
// which unread messages were seen; after a short pause, for each channel, one
// `read {channel, seq}` is sent with the highest seq seen — except that the read
// position never passes an unread urgent message that was not on screen.

const DEBOUNCE_MS = 700;

export class ReadTracker {
  constructor(store, conn) {
    this.store = store;
    this.conn = conn;
    this.seen = new Map(); // channel → Set(seq)
    this.watched = new Set(); // elements waiting to be seen
    this.timer = 0;
    this.io = new IntersectionObserver((entries) => this._onIntersect(entries), { threshold: 0.5 });
    document.addEventListener('visibilitychange', () => {
      // Elements already on screen do not fire again: observe them anew.
      if (document.visibilityState !== 'visible') return;
      for (const el of this.watched) {
        this.io.unobserve(el);
        this.io.observe(el);
      }
    });
  }

  // Watch a rendered message element (call for unread messages only).
  watch(el, m) {
    el.dataset.readCh = m.channel;
    el.dataset.readSeq = String(m.seq);
    this.watched.add(el);
    this.io.observe(el);
  }

  _onIntersect(entries) {
    if (document.visibilityState !== 'visible') return;
    let any = false;
    for (const e of entries) {
      const el = e.target;
      if (!el.isConnected) {
        this.io.unobserve(el);
        this.watched.delete(el);
        continue;
      }
      if (!e.isIntersecting && e.intersectionRatio < 0.5) continue;
      // A tall message never reaches 50%: accept it once it fills most of the viewport.
      const ch = el.dataset.readCh;
      const seq = Number(el.dataset.readSeq);
      if (!this.seen.has(ch)) this.seen.set(ch, new Set());
      this.seen.get(ch).add(seq);
      this.io.unobserve(el);
      this.watched.delete(el);
      any = true;
    }
    if (any) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.flush(), DEBOUNCE_MS);
    }
  }

  flush() {
    for (const [ch, seqs] of this.seen) {
      const from = this.store.readSeq(ch);
      const c = this.store.channels.get(ch);
      if (!c || !seqs.size) continue;
      // `read` marks everything up to seq: go up to the newest message seen, but never
      // past an urgent message that is still unread and was not seen.
      let target = Math.max(...seqs);
      for (let s = from + 1; s <= target; s++) {
        const m = c.msgs.get(s);
        if (m && m.data?.urgent && this.store.isUnread(m) && !seqs.has(s)) {
          target = s - 1;
          break;
        }
      }
      for (const s of [...seqs]) if (s <= target) seqs.delete(s);
      if (target > from) {
        this.store.setRead(ch, target);
        this.conn.request('read', { channel: ch, seq: target }).catch(() => {});
      }
    }
  }

  // Forget elements of a view that was closed.
  reset() {
    for (const el of this.watched) this.io.unobserve(el);
    this.watched.clear();
  }
}
