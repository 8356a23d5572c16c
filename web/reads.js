// Marks messages read only when they have really been on screen: at least half of the
// message (or half of the screen, for a message taller than that) visible for a whole
// second, while the page itself is visible. Until then it stays "Nouveau".
//
// The server keeps one read position per channel (`read {channel, seq}` marks everything
// up to seq). The feed is newest first, so a message seen at the top must not carry the
// unseen ones below it: the store notes what was seen, and the position sent is the
// highest seq up to which everything that counts was seen (Store.readTarget).

export const DWELL_MS = 1000;
const THRESHOLDS = [0, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1];

export class ReadTracker {
  constructor(store, conn) {
    this.store = store;
    this.conn = conn;
    this.watched = new Map(); // element → message, waiting to be seen
    this.timers = new Map(); // element → dwell timer, while it is enough on screen
    this.io = new IntersectionObserver((entries) => this._onIntersect(entries), { threshold: THRESHOLDS });
    this._onVisibility = () => {
      if (document.visibilityState !== 'visible') {
        // a hidden page reads nothing: every running dwell starts over when it comes back
        for (const timer of this.timers.values()) clearTimeout(timer);
        this.timers.clear();
        return;
      }
      // elements already on screen do not fire again: observe them anew
      for (const el of this.watched.keys()) {
        this.io.unobserve(el);
        this.io.observe(el);
      }
    };
    document.addEventListener('visibilitychange', this._onVisibility);
  }

  // Watch a rendered message element (call for unread messages only).
  watch(el, m) {
    this.watched.set(el, m);
    this.io.observe(el);
  }

  _onIntersect(entries) {
    for (const e of entries) {
      const el = e.target;
      if (!el.isConnected) {
        this._forget(el);
        continue;
      }
      const screen = e.rootBounds?.height || innerHeight;
      const enough = e.isIntersecting
        && (e.intersectionRatio >= 0.5 || e.intersectionRect.height >= screen / 2);
      if (enough && document.visibilityState === 'visible') {
        if (!this.timers.has(el)) this.timers.set(el, setTimeout(() => this._dwelt(el), DWELL_MS));
      } else {
        clearTimeout(this.timers.get(el));
        this.timers.delete(el);
      }
    }
  }

  _dwelt(el) {
    this.timers.delete(el);
    const m = this.watched.get(el);
    if (!m || !el.isConnected || document.visibilityState !== 'visible') return;
    this._forget(el);
    this.store.markSeen(m);
    this.flush(); // at once: the screen changes (no more "Nouveau") after the `read` is sent
  }

  _forget(el) {
    this.io.unobserve(el);
    this.watched.delete(el);
    clearTimeout(this.timers.get(el));
    this.timers.delete(el);
  }

  // Tell the server how far each channel is read (only where that position moves).
  flush() {
    for (const ch of [...this.store.seen.keys()]) {
      const target = this.store.readTarget(ch);
      if (target === null) continue;
      this.store.setRead(ch, target);
      this.conn.request('read', { channel: ch, seq: target }).catch(() => {});
    }
  }

  // Forget elements of a view that was closed.
  reset() {
    for (const el of [...this.watched.keys()]) this._forget(el);
  }
}
