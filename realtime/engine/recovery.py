"""The gap-free handoff of a connection joining channels (docs/design-notes.md).

Subscribe first, buffer live pushes, read the store, reply with the recovered state,
then flush the buffer above the recovered `seq`. `attach` does the first three;
`finish_recovery` the last, once the reply is queued.

The storm path: a recovery with `since` is served from the recent-messages cache
(`realtime.engine.recent`) when it reaches the channel's position at the join, and the
latest seqs of the channels joined without `since` are read together with those of the
other connects of the moment (`realtime.engine.reads`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

from channels.hub import Hub
from persistence.store import Store
from realtime.engine.reads import LatestSeqs, Updates
from realtime.engine.recent import Cached, Entry, RecentCache
from realtime.engine.splice import Encoded
from realtime.ws.connection import Connection
from realtime.ws.session import Session
from school.wire import ChannelState, WireMessage

CLOCK_MARGIN_MS = 5 * 60 * 1000  # how far `updated_since` reaches back (clock skew, jumps)

Recovered = tuple[ChannelState, int]  # a channel's state in a reply, and its recovered seq


class Recovery:
    def __init__(self, store: Store, hub: Hub, recovery_cap: int, reply_bytes: int,
                 recent: RecentCache | None = None, latest: LatestSeqs | None = None,
                 updates: Updates | None = None) -> None:
        self.store = store
        self.hub = hub
        self.recovery_cap = recovery_cap
        self.reply_bytes = reply_bytes
        self.recent = recent
        self.latest = latest
        self.updates = updates

    async def attach(
        self, session: Session, conn: Connection, channels: list[str], since: dict[str, int],
        updated_since: int | None = None,
    ) -> list[Recovered]:
        """Subscribe `conn` to `channels` and read their states. On failure the connection is
        left as it was: not subscribed to any of `channels` it did not have."""
        fresh = [c for c in channels if c not in session.channels]
        for channel in channels:
            conn.begin_recovery(channel)
        try:
            # each channel's position at the moment `conn` joined it: what comes after reaches it
            # live (buffered until the reply), so that is the state of a channel without `since`
            # and no store read is needed for it
            hub = self.hub
            joined: dict[str, int] = {}
            waiting: list[str] = []
            for channel in channels:
                if hub.join_ready(channel, conn):
                    _note(joined, channel, hub.position(channel))
                else:
                    waiting.append(channel)
            if len(waiting) == 1:  # a connect's own user: channel, mostly: no task for it
                await hub.subscribe(waiting[0], conn)
                _note(joined, waiting[0], hub.position(waiting[0]))  # no await since it joined
            elif waiting:  # joined in tasks: their positions at the join are not known here
                await asyncio.gather(*(hub.subscribe(c, conn) for c in waiting))
            session.channels.update(channels)
            return await self.read_states(channels, since, updated_since, joined)
        except BaseException:
            for channel in channels:
                conn.abort_recovery(channel)
            for channel in fresh:
                self.detach(session, conn, channel)
            raise

    def detach(self, session: Session, conn: Connection, channel: str) -> None:
        """Leave one channel: no more pushes, position forgotten."""
        session.channels.discard(channel)
        self.hub.unsubscribe(channel, conn)
        conn.forget(channel)

    async def read_states(
        self, channels: list[str], since: dict[str, int], updated_since: int | None = None,
        joined: dict[str, int] | None = None,
    ) -> list[Recovered]:
        """Each channel's state for a connect/subscribe reply. With `updated_since` (ms, the
        extension for clients that keep messages), a recovered channel also lists in `updates`
        its messages at or below `since` edited or deleted after that time. `joined`: the
        positions at which the connection joined channels (their seq when without `since`;
        the others' latest seqs are read from the store)."""
        store, cap = self.store, self.recovery_cap
        at_join = {c: joined[c] for c in channels if c not in since and c in joined} if joined else {}
        plain = [c for c in channels if c not in since and c not in at_join]
        wanted = {c: since[c] for c in channels if c in since}
        # the three reads side by side: the cache (filled once per channel), the latest seqs
        # and the updates (each read together with the other connects' of the moment)
        # the cache's hits are taken at once (no await); what is left is awaited side by side
        cached, filling = self._ready(wanted) if wanted and self.recent is not None else ({}, {})
        reads: list[Awaitable[Any]] = []
        if filling:
            reads.append(self._filled(filling, wanted))
        if plain:
            reads.append(self.latest.get(plain) if self.latest is not None else store.latest_seqs(plain))
        if wanted and updated_since is not None:
            # edit times are gateways' wall clocks: reach back by a margin so that a clock
            # behind (another gateway's, or this one after a backward jump) loses no update; a
            # copy replaced twice is harmless, a missed one is not
            after = max(0, updated_since - CLOCK_MARGIN_MS)
            reads.append(self.updates.get(wanted, after) if self.updates is not None
                         else store.updates(wanted, after))
        # one read (the storm's usual case: the user: channel's latest seq) is awaited as it is:
        # a gather would make a task of it, per connect
        results: list[Any] = [await reads[0]] if len(reads) == 1 else list(await asyncio.gather(*reads))
        if filling:
            cached.update(results.pop(0))
        latest: dict[str, int] = {**(results.pop(0) if plain else {}), **at_join}
        stale: dict[str, list[Any]] = results.pop(0) if wanted and updated_since is not None else {}
        missing = {c: s for c, s in wanted.items() if c not in cached}
        # the store stops reading at the reply's budget (its estimate, shared by the channels
        # as below); `newest_within` then makes the exact cut, in wire bytes
        recovered = await store.recover_many(missing, cap, max_bytes=self.reply_bytes) if missing else {}
        states: list[Recovered] = []
        budget = self.reply_bytes  # shared by the channels of one reply
        for channel in channels:
            if channel not in since:
                seq = latest.get(channel, 0)
                states.append(({"channel": channel, "seq": seq, "messages": [],
                                "complete": True}, seq))
                continue
            hit = cached.get(channel)
            if hit is not None:
                state, budget = self._from_cache(hit, channel, since[channel], budget)
                seq = state["seq"]
            else:
                rec = recovered[channel]
                # the newest message recovered is the state; with none, never above `since`,
                # so that nothing stored after the read can fall between recovery and pushes
                seq = rec.messages[-1].seq if rec.messages else min(rec.latest, since[channel])
                wires, used = newest_within([m.to_wire() for m in rec.messages], budget)
                budget = max(0, budget - used)
                state = {"channel": channel, "seq": seq, "messages": wires,
                         "complete": rec.complete and len(wires) == len(rec.messages)}
            if updated_since is not None:
                state["updates"] = [m.to_wire() for m in stale.get(channel, [])]
            states.append((state, seq))
        return states

    def _ready(self, wanted: dict[str, int]) -> tuple[dict[str, Snapshot], dict[str, int]]:
        """The channels of `wanted` the cache serves at once, each as it is now (taken at once:
        what changes later reaches the connection live, as it joined before); and those it may
        serve after a fill, with their positions at the join."""
        assert self.recent is not None
        recent, hub = self.recent, self.hub
        snapshots: dict[str, Snapshot] = {}
        filling: dict[str, int] = {}
        for channel, since in wanted.items():
            joined = hub.position(channel)
            if joined is None or not recent.cacheable(channel):
                continue
            entry = recent.ready(channel, joined)
            if entry is not None:
                snapshots[channel] = snapshot(entry, since, self.recovery_cap)
            else:
                filling[channel] = joined
        return snapshots, filling

    async def _filled(self, filling: dict[str, int], wanted: dict[str, int]) -> dict[str, Snapshot]:
        """The channels of `filling` the cache serves once filled (None: the store is read)."""
        assert self.recent is not None
        recent = self.recent
        usable = list(filling)
        if len(usable) == 1:
            entries = [await recent.entry(usable[0], filling[usable[0]])]
        else:
            entries = list(await asyncio.gather(*(recent.entry(c, filling[c]) for c in usable)))
        snapshots: dict[str, Snapshot] = {}
        for channel, entry in zip(usable, entries, strict=True):
            if entry is not None:
                snapshots[channel] = snapshot(entry, wanted[channel], self.recovery_cap)
        return snapshots

    def _from_cache(self, hit: Snapshot, channel: str, since: int,
                    budget: int) -> tuple[ChannelState, int]:
        """A channel's state from the cache, as `read_states` makes it from the store; the
        budget left."""
        items, latest, complete = hit
        kept, used = newest_sizes_within([item.size for item in items], budget)
        chosen = items[len(items) - kept:]
        seq = items[-1].seq if items else min(latest, since)
        state: ChannelState = {"channel": channel, "seq": seq, "messages": Encoded(chosen),
                               "complete": complete and kept == len(items)}
        return state, max(0, budget - used)


Snapshot = tuple[list[Cached], int, bool]  # messages above since, the latest seq, complete


def _note(joined: dict[str, int], channel: str, position: int | None) -> None:
    if position is not None:
        joined[channel] = position


def snapshot(entry: Entry, since: int, cap: int) -> Snapshot:
    items, complete = entry.above(since, cap)
    return list(items), entry.high, complete


def newest_sizes_within(sizes: list[int], budget: int) -> tuple[int, int]:
    """How many of the newest of `sizes` (ascending by seq) `newest_within` keeps, and their bytes."""
    kept = used = 0
    for size in reversed(sizes):
        if kept and used + size > budget:
            break
        used += size
        kept += 1
    return kept, used


def wire_size(wire: WireMessage) -> int:
    """The bytes a message takes in a reply (its JSON form in UTF-8; MessagePack is smaller):
    bytes, not characters, so that a text of emoji is counted at its true size."""
    return len(json.dumps(wire, ensure_ascii=False, separators=(",", ":")).encode())


def newest_within(wires: list[WireMessage], budget: int) -> tuple[list[WireMessage], int]:
    """The newest of `wires` (ascending by seq) whose sizes add up to at most `budget` bytes,
    and the bytes they take. The newest one is always kept, whatever its size (it is bounded
    by the content limits), so that a reply always makes progress."""
    kept = 0
    used = 0
    for wire in reversed(wires):
        size = wire_size(wire)
        if kept and used + size > budget:
            break
        used += size
        kept += 1
    return wires[len(wires) - kept:], used


def finish_recovery(conn: Connection, states: list[Recovered]) -> None:
    """After the reply is queued: flush each channel's live buffer above its recovered seq."""
    for state, seq in states:
        conn.end_recovery(state["channel"], seq)
