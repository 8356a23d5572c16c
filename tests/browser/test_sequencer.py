"""The web client's Sequencer (per-channel order, dedupe, gap filling, recovery),
run in the browser against fake `history` replies."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

pytestmark = pytest.mark.integration

SCENARIOS = """
async () => {
  const { Sequencer } = await import('/sequencer.js');
  const msg = (seq, channel = 'class:cp-a') => ({ channel, seq, id: `m${seq}`, ts: seq, data: {} });
  function make(initial = {}, pages = {}) {
    const store = new Map([['seqs', JSON.stringify(initial)]]);
    const out = { delivered: [], older: [], calls: [], broken: 0 };
    const seq = new Sequencer({
      storage: { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) },
      storageKey: 'seqs',
      deliver: (m, live) => out.delivered.push([m.channel, m.seq, live]),
      history: async (p) => {
        out.calls.push(p);
        const from = p.before - p.limit;
        const msgs = [];
        for (let s = Math.max(1, from); s < p.before; s++) msgs.push(msg(s, p.channel));
        return { messages: msgs, more: from > 1 };
      },
      older: (ch, msgs) => out.older.push(msgs.map((m) => m.seq)),
      broken: () => out.broken++,
    });
    return { seq, out, stored: () => JSON.parse(store.get('seqs')) };
  }
  const settle = () => new Promise((r) => setTimeout(r, 20));
  const results = {};

  // in order, duplicates dropped
  { const { seq, out, stored } = make({ 'class:cp-a': 0 });
    for (const s of [1, 2, 2, 1, 3]) seq.accept(msg(s), true);
    results.dedupe = { delivered: out.delivered.map((d) => d[1]), stored: stored() }; }

  // a gap is filled from history, then the buffered message follows
  { const { seq, out } = make({ 'class:cp-a': 3 });
    seq.accept(msg(6), true); seq.accept(msg(7), true);
    await settle();
    results.gap = { delivered: out.delivered.map((d) => [d[1], d[2]]), calls: out.calls }; }

  // recovery on connect: since + messages, complete:false pages back over the hole,
  // a new channel starts at the server's seq, an unlisted channel is forgotten,
  // a channel whose seq went backwards is reset
  { const { seq, out, stored } = make({ 'class:cp-a': 2, 'chat:old': 5, 'school:x': 9 });
    const reset = seq.recover([
      { channel: 'class:cp-a', seq: 9, messages: [msg(8), msg(9)], complete: false },
      { channel: 'user:u', seq: 4, messages: [], complete: true },
      { channel: 'school:x', seq: 3, messages: [], complete: true },
    ]);
    await settle();
    results.recover = { reset, delivered: out.delivered.map((d) => d[1]), older: out.older,
                        calls: out.calls, stored: stored(), since: seq.since() }; }
  return results;
}
"""


def test_sequencer(browser: Browser, server) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        r = page.evaluate(SCENARIOS)
    finally:
        context.close()
    assert r["dedupe"] == {"delivered": [1, 2, 3], "stored": {"class:cp-a": 3}}
    assert r["gap"]["delivered"] == [[4, False], [5, False], [6, True], [7, True]]
    assert r["gap"]["calls"] == [{"channel": "class:cp-a", "before": 6, "limit": 2}]
    rec = r["recover"]
    assert rec["reset"] == ["school:x"]
    assert rec["delivered"] == [8, 9]
    assert rec["calls"] == [{"channel": "class:cp-a", "before": 8, "limit": 5}]
    assert rec["older"] == [[3, 4, 5, 6, 7]]
    assert rec["since"] == {"class:cp-a": 9, "user:u": 4, "school:x": 3}
    assert rec["stored"] == rec["since"]
