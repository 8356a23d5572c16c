"""The storm path: each channel's recent messages in memory, encoded once per codec.

At 8:30 the guardians of a class reconnect together, each with `since` a few messages
back. Without this cache every one of them re-reads the same messages from the store,
converts them and encodes them again. Here a channel's recent messages are read once
(concurrent recoveries of one channel wait for that one read: a single-flight fill),
encoded once per codec, and spliced into every guardian's reply
(`realtime.engine.splice`).

Consistency. An entry follows the channel's ordered stream on this gateway (the hub's
`StreamListener`): a new message extends it (`advanced`), every change of a stored
message — an edit, a deletion, an erasure, a hiding, made on any gateway — replaces its
copy (`updated`), the end of the channel's feed drops it (`closed`: it is no longer
followed) and a broker reconnect drops everything (`reset`: events may have been lost).
Events that arrive while a fill reads the store are kept and applied on top of what it
read. An entry also lives at most `ttl` seconds, so that an update whose event never came
(dropped by a publisher's full queue) is not served for long.

An entry serves a recovery only when it reaches at least the channel's position at the
moment the connection joined the channel: what comes after that position reaches the
connection live. Otherwise (or without an entry) the caller reads the store.

Bounds. An entry keeps at most `cap` messages, and the newest whose JSON sizes add up to
`reply_bytes` (the most one reply carries): what a recovery from further back would send
is in it all the same (`saturated`). The whole cache is bounded by `max_bytes`, least
recently used channel first out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from channels.broker import Event
from persistence.store import Recovery, Store
from realtime.metrics import Metrics
from realtime.ws.codec import CODECS
from school.channels import stores_messages
from school.wire import WireMessage

log = structlog.get_logger("liaison.recent")

ITEM_OVERHEAD = 240  # bytes a cached message holds beyond its frames (its dict, the item)
ENTRY_OVERHEAD = 200
DEFAULT_TTL = 30.0

Position = Callable[[str], "int | None"]


class Unencodable(Exception):
    """A stored message that a codec cannot carry (stored before values were checked)."""


class Cached:
    """One message: its wire form, and its frames per codec (JSON at once: it is its size)."""

    __slots__ = ("_frames", "json", "wire")

    def __init__(self, wire: WireMessage) -> None:
        self.wire = wire
        try:
            self.json = CODECS["liaison.v1.json"].encode(wire)
        except (TypeError, ValueError, OverflowError, UnicodeError) as exc:
            raise Unencodable(str(wire.get("seq"))) from exc
        self._frames: dict[str, bytes] = {}

    @property
    def seq(self) -> int:
        return int(self.wire["seq"])

    @property
    def size(self) -> int:
        """Its size in a reply, as `recovery.wire_size` counts it."""
        return len(self.json)

    def held(self) -> int:
        """The bytes it is counted for: its JSON frame and room for a MessagePack one (encoded
        on first use, about as long), so that the count does not move when that happens."""
        return ITEM_OVERHEAD + 2 * len(self.json)

    def frame(self, codec: str) -> bytes:
        """Its encoding in `codec`; a message that codec cannot carry goes as `data: {}`,
        `unreadable: true` (as `gateway.encode_reply` does)."""
        if codec == "liaison.v1.json":
            return self.json
        frame = self._frames.get(codec)
        if frame is None:
            encoder = CODECS[codec]
            try:
                frame = encoder.encode(self.wire)
            except (TypeError, ValueError, OverflowError, UnicodeError):
                frame = encoder.encode({**self.wire, "data": {}, "unreadable": True})
            self._frames[codec] = frame
        return frame


def supersedes(new: WireMessage, old: WireMessage) -> bool:
    """Whether an update event's copy replaces the cached one: never one that would bring a
    deleted message back, nor one older than the copy (a late event: the store was already
    read newer). A later change of a deleted message (an erasure blanking its author) applies."""
    if old.get("deleted") and not new.get("deleted"):
        return False
    return (new.get("edited") or 0) >= (old.get("edited") or 0)


@dataclass(eq=False)
class Entry:
    """Messages `(low, high]` of a channel, in `seq` order, and whether older ones exist
    that the bounds left out (`saturated`)."""

    channel: str
    items: list[Cached]
    high: int
    saturated: bool
    born: float
    held: int = 0

    def __post_init__(self) -> None:
        self.held = ENTRY_OVERHEAD + sum(item.held() for item in self.items)

    @property
    def low(self) -> int:
        return self.items[0].seq - 1 if self.items else self.high

    def above(self, since: int, cap: int) -> tuple[list[Cached], bool]:
        """The messages above `since` (the newest `cap`), and whether that is all of them."""
        if since >= self.high:
            return [], True
        start = max(0, since - self.low)
        items = self.items[start:]
        complete = not (since < self.low and self.saturated)
        if len(items) > cap:
            items, complete = items[len(items) - cap:], False
        return items, complete

    def append(self, item: Cached) -> None:
        self.items.append(item)
        self.high = item.seq
        self.held += item.held()

    def replace(self, wire: WireMessage) -> int:
        """Apply an update; the change in bytes held."""
        index = int(wire["seq"]) - self.low - 1
        if not 0 <= index < len(self.items):
            return 0
        old = self.items[index]
        if not supersedes(wire, old.wire):
            return 0
        new = Cached(wire)
        self.items[index] = new
        change = new.held() - old.held()
        self.held += change
        return change

    def trim(self, cap: int, reply_bytes: int) -> None:
        """Keep the newest `cap` messages whose sizes fit `reply_bytes` (at least one)."""
        kept = used = 0
        for item in reversed(self.items):
            if kept and (kept >= cap or used + item.size > reply_bytes):
                break
            kept += 1
            used += item.size
        if kept < len(self.items):
            cut = len(self.items) - kept
            self.held -= sum(item.held() for item in self.items[:cut])
            del self.items[:cut]
            self.saturated = True


@dataclass(eq=False)
class _Fill:
    """A fill in flight: its result, and the events that came meanwhile."""

    done: asyncio.Future[Entry | None]
    messages: list[WireMessage] = field(default_factory=list)
    updates: list[WireMessage] = field(default_factory=list)
    tainted: bool = False


class RecentCache:
    def __init__(self, store: Store, position: Position, cap: int, reply_bytes: int,
                 max_bytes: int, ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.monotonic, metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self.position = position  # the hub's: the last seq it delivered in a channel
        self.cap = max(1, cap)
        self.reply_bytes = reply_bytes
        self.max_bytes = max_bytes
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._fills: dict[str, _Fill] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.held = 0
        self.hits = 0
        self.misses = 0
        self.fills = 0
        self.evictions = 0
        self._counters: dict[str, Any] = {}  # result -> the metric's labelled child
        self._reported_held = -1

    @staticmethod
    def cacheable(channel: str) -> bool:
        return stores_messages(channel)

    # -- reads -----------------------------------------------------------------

    def ready(self, channel: str, joined: int) -> Entry | None:
        """The channel's entry if one is in memory, fresh, and reaches `joined`: a hit served
        without an await (the common case in a storm, where a task per channel per connect
        cost more than the rest of the lookup). None: ask `entry`."""
        entry = self._entries.get(channel)
        if entry is None or self.clock() - entry.born > self.ttl or entry.high < joined:
            return None
        self._entries.move_to_end(channel)
        self._count("hit")
        return entry

    async def entry(self, channel: str, joined: int) -> Entry | None:
        """The channel's entry if it reaches `joined` (the channel's position when the
        connection joined it), filling it first if needed; None: read the store."""
        if self.max_bytes <= 0 or not self.cacheable(channel):
            return None
        if (hit := self.ready(channel, joined)) is not None:
            return hit
        if channel in self._entries:
            self._drop(channel)
        fill = self._fills.get(channel)
        if fill is None:
            fill = self._start_fill(channel)
        entry = await asyncio.shield(fill.done)
        if entry is None or entry.high < joined:
            self._count("miss")
            return None
        self._count("hit")
        return entry

    def _count(self, result: str) -> None:
        if result == "hit":
            self.hits += 1
        elif result == "miss":
            self.misses += 1
        else:
            self.fills += 1
        if self.metrics is not None:
            # the labelled child looked up once, the gauge set only when it moved: a storm
            # counts one hit per channel per connect
            counter = self._counters.get(result)
            if counter is None:
                counter = self._counters[result] = self.metrics.recovery_cache.labels(result=result)
            counter.inc()
            if self.held != self._reported_held:
                self.metrics.recovery_cache_bytes.set(self.held)
                self._reported_held = self.held

    def _start_fill(self, channel: str) -> _Fill:
        fill = _Fill(asyncio.get_running_loop().create_future())
        self._fills[channel] = fill
        task = asyncio.get_running_loop().create_task(self._fill(channel, fill))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return fill

    async def _fill(self, channel: str, fill: _Fill) -> None:
        self._count("fill")
        entry: Entry | None = None
        try:
            read = await self.store.recover(channel, 0, self.cap, max_bytes=self.reply_bytes)
            entry = self._built(channel, read, fill)
        except Unencodable:
            log.warning("recent_not_cached", channel=channel, reason="unencodable")
        except Exception as exc:  # the store failed: every waiter reads it itself (and fails)
            log.warning("recent_fill_failed", channel=channel, error=type(exc).__name__)
        finally:
            if self._fills.get(channel) is fill:
                del self._fills[channel]
            if entry is not None and self.position(channel) is not None:
                self._install(entry)
            if not fill.done.done():
                fill.done.set_result(entry)

    def _built(self, channel: str, read: Recovery, fill: _Fill) -> Entry | None:
        if fill.tainted:
            return None
        entry = Entry(channel, [Cached(m.to_wire()) for m in read.messages], read.latest,
                      not read.complete, self.clock())
        for wire in fill.messages:  # delivered while the store was read: contiguous
            if int(wire["seq"]) == entry.high + 1:
                entry.append(Cached(wire))
        for wire in fill.updates:
            entry.replace(wire)
        entry.trim(self.cap, self.reply_bytes)
        return entry

    def _install(self, entry: Entry) -> None:
        if entry.held > self.max_bytes:
            return
        self._drop(entry.channel)
        self._entries[entry.channel] = entry
        self.held += entry.held
        self._evict()

    def _drop(self, channel: str) -> None:
        entry = self._entries.pop(channel, None)
        if entry is not None:
            self.held -= entry.held

    def _evict(self) -> None:
        while self.held > self.max_bytes and self._entries:
            _, entry = self._entries.popitem(last=False)
            self.held -= entry.held
            self.evictions += 1

    def stats(self) -> dict[str, int]:
        return {"channels": len(self._entries), "bytes": self.held, "hits": self.hits,
                "misses": self.misses, "fills": self.fills, "evictions": self.evictions}

    # -- the hub's StreamListener ------------------------------------------------

    def advanced(self, event: Event) -> None:
        try:
            self._advanced(event)
        except Exception:  # never break the hub's delivery: forget the channel instead
            log.exception("recent_append_failed", channel=event.channel, seq=event.seq)
            self._drop(event.channel)

    def _advanced(self, event: Event) -> None:
        wire: WireMessage = event.body["message"]
        fill = self._fills.get(event.channel)
        if fill is not None:
            fill.messages.append(wire)
        entry = self._entries.get(event.channel)
        if entry is None or event.seq is None or event.seq <= entry.high:
            return
        if event.seq != entry.high + 1:  # cannot happen: the hub delivers in order
            self._drop(event.channel)
            return
        try:
            item = Cached(wire)
        except Unencodable:
            self._drop(event.channel)
            return
        before = entry.held
        entry.append(item)
        entry.trim(self.cap, self.reply_bytes)
        self.held += entry.held - before
        self._evict()

    def updated(self, event: Event) -> None:
        try:
            self._updated(event)
        except Exception:  # never break the hub's delivery: forget the channel instead
            log.exception("recent_update_failed", channel=event.channel)
            self._drop(event.channel)

    def _updated(self, event: Event) -> None:
        wire = event.body.get("message")
        if not isinstance(wire, dict) or "seq" not in wire:
            return
        fill = self._fills.get(event.channel)
        if fill is not None:
            fill.updates.append(wire)  # type: ignore[arg-type]
        entry = self._entries.get(event.channel)
        if entry is None:
            return
        try:
            self.held += entry.replace(wire)  # type: ignore[arg-type]
        except Unencodable:
            self._drop(event.channel)
        self._evict()

    def closed(self, channel: str) -> None:
        self._drop(channel)
        fill = self._fills.get(channel)
        if fill is not None:
            fill.tainted = True

    def reset(self) -> None:
        self._entries.clear()
        self.held = 0
        for fill in self._fills.values():
            fill.tainted = True

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
