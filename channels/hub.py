"""Local fan-out: the reference-counted subscription registry and per-channel ordering.

One `Hub` per gateway process. It subscribes upstream (the broker) for the first
local subscriber of a channel and unsubscribes after the last. For each channel
it delivers `message` events to local subscribers in `seq` order, without gap
or duplicate: an event that arrives early is held, a gap that lasts longer than
`gap_delay` is filled from the store, and after a broker reconnect every channel
is caught up from the store. Each event is encoded once per codec, whatever the
number of recipients, and handed to subscribers that never block.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from channels.broker import Broker, Event

log = structlog.get_logger("liaison.hub")

Frame = bytes  # an encoded push: UTF-8 JSON (sent as a text frame) or MessagePack
Encoder = Callable[[dict[str, Any]], Frame]
FetchRange = Callable[[str, int, int], Awaitable[list[dict[str, Any]]]]
LatestSeq = Callable[[str], Awaitable[int]]

FILL_PAGE = 500


def frame_size(frame: Frame) -> int:
    """A frame's payload size in bytes."""
    return len(frame)


class Subscriber(Protocol):
    codec: str
    user_id: str | None

    def deliver(self, channel: str, seq: int | None, frame: Frame, size: int) -> None:
        """Take a frame for a channel; must not block (queue it or drop the connection)."""

    def abort(self) -> None:
        """Close with 1011, internal error: `deliver` raised, so this subscriber would miss
        the event (the hub has already moved past it and never delivers it again)."""


class StreamListener(Protocol):
    """Follows the ordered stream of each channel this process delivers (the recent-messages
    cache of `realtime.engine.recent`): every stored-message change passes here, on every
    gateway, whichever gateway made it."""

    def advanced(self, event: Event) -> None:
        """A `message` event delivered in `seq` order (no gap, no duplicate)."""

    def updated(self, event: Event) -> None:
        """An `update` event (an edit, a deletion, an erasure, a hiding)."""

    def closed(self, channel: str) -> None:
        """The channel's feed ended: its stream is no longer followed."""

    def reset(self) -> None:
        """The broker reconnected: events may have been lost while it was away."""


@dataclass(eq=False, slots=True)
class _Feed:
    """The local state of one channel: its subscribers and the next `seq` to deliver. Every
    connected user has a channel of their own (`user:`), so there is one of these per
    connection: slots, and once live, `ready` is the hub's one resolved future."""

    ready: asyncio.Future[None]
    subscribers: set[Subscriber] = field(default_factory=set)
    next_seq: int | None = None
    held: dict[int, Event] = field(default_factory=dict)
    filling: asyncio.Task[None] | None = None


class Hub:
    def __init__(
        self,
        broker: Broker,
        encoders: Mapping[str, Encoder],
        fetch_range: FetchRange,
        latest_seq: LatestSeq,
        gap_delay: float = 0.5,
        on_delivered: Callable[[Event, int], None] | None = None,
    ) -> None:
        self._broker = broker
        self._encoders = encoders
        self._fetch_range = fetch_range
        self._latest_seq = latest_seq
        self._gap_delay = gap_delay
        self._on_delivered = on_delivered
        self._feeds: dict[str, _Feed] = {}
        self.reconnects = 0
        self._upstream: set[str] = set()
        # one lock per channel, so that waiting for Redis to confirm one channel's SUBSCRIBE
        # never holds up another's (every connect brings a new user: channel)
        self._upstream_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._tasks: set[asyncio.Task[None]] = set()
        self._live: asyncio.Future[None] | None = None  # resolved; shared by every live feed
        self.control_handlers: list[Callable[[Event], None]] = []
        self.listeners: list[StreamListener] = []

    # -- registry -------------------------------------------------------------

    def channels(self) -> list[str]:
        return list(self._feeds)

    def subscribers(self, channel: str) -> set[Subscriber]:
        feed = self._feeds.get(channel)
        return set(feed.subscribers) if feed else set()

    def subscription_count(self) -> int:
        return sum(len(f.subscribers) for f in self._feeds.values())

    def join_ready(self, channel: str, subscriber: Subscriber) -> bool:
        """Register at once when the channel's feed is already live (no await, no task);
        False when `subscribe` must be awaited."""
        feed = self._feeds.get(channel)
        if feed is None or not feed.ready.done() or feed.ready.exception() is not None:
            return False
        feed.subscribers.add(subscriber)
        return True

    async def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Register a subscriber; returns once the channel's live feed is established.

        Every `message` event of the channel delivered after this returns reaches the
        subscriber, and every one stored before it was called is in the store."""
        feed = self._feeds.get(channel)
        if feed is None:
            feed = _Feed(ready=asyncio.get_running_loop().create_future())
            self._feeds[channel] = feed
            await self._start_feed(channel, feed)
        else:
            await asyncio.shield(feed.ready)
        feed.subscribers.add(subscriber)

    async def _start_feed(self, channel: str, feed: _Feed) -> None:
        try:
            await self._reconcile(channel)
            feed.next_seq = await self._latest_seq(channel) + 1
        except BaseException as exc:
            if self._feeds.get(channel) is feed:
                del self._feeds[channel]
            self._spawn(self._reconcile(channel))
            feed.ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            feed.ready.exception()  # retrieved here: waiters re-raise it themselves
            raise
        feed.ready.set_result(None)  # wakes the subscribes waiting on this future
        if self._live is None:
            self._live = asyncio.get_running_loop().create_future()
            self._live.set_result(None)
        feed.ready = self._live
        self._release_held(channel, feed)

    def unsubscribe(self, channel: str, subscriber: Subscriber) -> None:
        feed = self._feeds.get(channel)
        if feed is None:
            return
        feed.subscribers.discard(subscriber)
        if not feed.subscribers and feed.ready.done():
            del self._feeds[channel]
            for listener in self.listeners:
                listener.closed(channel)
            if feed.filling is not None:
                feed.filling.cancel()
            self._spawn(self._reconcile(channel))

    async def _reconcile(self, channel: str) -> None:
        """Bring the upstream subscription of `channel` in line with the local registry."""
        lock = self._upstream_locks.get(channel)
        if lock is None:
            lock = self._upstream_locks[channel] = asyncio.Lock()
        async with lock:
            wanted = channel in self._feeds
            if wanted and channel not in self._upstream:
                await self._broker.subscribe(channel)
                self._upstream.add(channel)
            elif not wanted and channel in self._upstream:
                self._upstream.discard(channel)
                await self._broker.unsubscribe(channel)

    # -- BrokerSink -----------------------------------------------------------

    def on_event(self, event: Event) -> None:
        if event.channel.startswith("_"):
            for handler in self.control_handlers:
                handler(event)
            return
        feed = self._feeds.get(event.channel)
        if feed is None:
            return
        if event.seq is None:
            if event.type == "update":
                for listener in self.listeners:
                    listener.updated(event)
            self._fan_out(feed, event)
            return
        if feed.next_seq is None or event.seq > feed.next_seq:
            feed.held[event.seq] = event
            if feed.next_seq is not None:
                self._schedule_fill(event.channel, feed, self._gap_delay)
            return
        if event.seq == feed.next_seq:
            self._advance(feed, event)
            self._release_held(event.channel, feed)

    def position(self, channel: str) -> int | None:
        """The last `seq` delivered in `channel`; None without a live feed."""
        feed = self._feeds.get(channel)
        if feed is None or feed.next_seq is None:
            return None
        return feed.next_seq - 1

    def positions(self) -> dict[str, int]:
        """The last `seq` delivered in each channel with a known position."""
        return {c: f.next_seq - 1 for c, f in self._feeds.items() if f.next_seq is not None}

    def catch_up(self, channel: str) -> None:
        """Read what the store has above the last delivered `seq` (a message stored by a
        gateway that died before publishing it), now."""
        feed = self._feeds.get(channel)
        if feed is not None and feed.next_seq is not None:
            self._schedule_fill(channel, feed, 0.0)

    def on_reconnect(self) -> None:
        self.reconnects += 1
        log.info("broker_reconnected", channels=len(self._feeds))
        for listener in self.listeners:
            listener.reset()
        for channel, feed in self._feeds.items():
            if feed.next_seq is not None:
                self._schedule_fill(channel, feed, 0.0)

    # -- ordering and gap filling ----------------------------------------------

    def _advance(self, feed: _Feed, event: Event) -> None:
        assert feed.next_seq is not None
        feed.next_seq += 1
        if event.type == "message":
            for listener in self.listeners:
                listener.advanced(event)
        self._fan_out(feed, event)

    def _release_held(self, channel: str, feed: _Feed) -> None:
        assert feed.next_seq is not None
        for seq in [s for s in feed.held if s < feed.next_seq]:
            del feed.held[seq]
        while feed.next_seq in feed.held:
            self._advance(feed, feed.held.pop(feed.next_seq))
        if feed.held:
            self._schedule_fill(channel, feed, self._gap_delay)

    def _schedule_fill(self, channel: str, feed: _Feed, delay: float) -> None:
        if feed.filling is None or feed.filling.done():
            feed.filling = asyncio.get_running_loop().create_task(self._fill(channel, feed, delay))

    async def _fill(self, channel: str, feed: _Feed, delay: float) -> None:
        """Wait `delay` for late events, then read what is still missing from the store."""
        if delay:
            await asyncio.sleep(delay)
        backoff = 0.1
        while self._feeds.get(channel) is feed and feed.next_seq is not None:
            start = feed.next_seq - 1
            upto = min(feed.held) - 1 if feed.held else start + FILL_PAGE
            try:
                rows = await self._fetch_range(channel, start, min(upto, start + FILL_PAGE))
            except Exception as exc:  # the store is down: keep holding, try again
                log.warning("gap_fill_failed", channel=channel, error=type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for row in rows:
                seq = int(row["seq"])
                if seq == feed.next_seq:
                    self._advance(feed, Event(channel, "message", {"message": row}, seq))
            if rows:
                log.info("gap_filled", channel=channel, count=len(rows))
            self._release_held(channel, feed)
            if not feed.held and len(rows) < FILL_PAGE:
                return
            if feed.held and not rows:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # -- fan-out -------------------------------------------------------------

    def _fan_out(self, feed: _Feed, event: Event) -> None:
        """Hand the event to every subscriber. One that raises is logged, dropped from the
        feed and aborted (1011); the others still get the event. An event that a codec
        cannot encode is logged and skipped for that codec's subscribers only: they do not
        get it, and no gap fill brings it back (`next_seq` has moved on), but they are not
        closed, as every reconnect would meet the same event again."""
        push = {"push": event.type, **event.body}
        frames: dict[str, tuple[Frame, int] | None] = {}
        exclude = event.exclude
        for subscriber in tuple(feed.subscribers):
            if exclude is not None and subscriber.user_id == exclude:
                continue
            codec = subscriber.codec
            if codec not in frames:
                frames[codec] = self._encode(codec, push, event)
            encoded = frames[codec]
            if encoded is None:
                continue
            try:
                subscriber.deliver(event.channel, event.seq, encoded[0], encoded[1])
            except Exception:
                log.exception("subscriber_deliver_failed", channel=event.channel, seq=event.seq)
                feed.subscribers.discard(subscriber)
                self._abort(subscriber)
        if self._on_delivered is not None:
            try:
                self._on_delivered(event, len(feed.subscribers))
            except Exception:
                log.exception("on_delivered_failed", channel=event.channel)

    def _encode(self, codec: str, push: dict[str, Any], event: Event) -> tuple[Frame, int] | None:
        try:
            frame = self._encoders[codec](push)
        except Exception:
            log.exception("push_unencodable", channel=event.channel, seq=event.seq, codec=codec)
            return None
        return frame, frame_size(frame)

    @staticmethod
    def _abort(subscriber: Subscriber) -> None:
        try:
            subscriber.abort()
        except Exception:
            log.exception("subscriber_abort_failed")

    # -- lifecycle -------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("upstream_change_failed", error=type(task.exception()).__name__)

    async def close(self) -> None:
        for feed in self._feeds.values():
            if feed.filling is not None:
                feed.filling.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._feeds.clear()
