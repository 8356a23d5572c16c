"""One client connection's way out: bounded in bytes, never blocking the fan-out.

The fan-out hands frames to `deliver`. Under our uvicorn protocol
(`realtime.ws.transport`), a frame is written straight into the socket's transport,
and the bytes the client has not taken yet are the bound; elsewhere an outbox
queue is drained by a writer task. A connection that goes over the bound is
closed (4503: it recovers with `since` when it comes back). While a channel is being recovered, its live
frames wait in a buffer and only those above the recovered `seq` are sent. A
message stored before the recovery read may still reach the fan-out after the
reply, so each connection remembers the last `seq` sent per channel and drops
anything at or below it.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from channels.hub import Frame, frame_size
from realtime.ws.close import CloseCode


class DirectWriter(Protocol):
    def write_frame(self, frame: bytes, text: bool) -> bool: ...

    def buffered(self) -> int: ...

    def close_now(self, code: int, reason: str) -> None: ...


class Connection:
    __slots__ = ("_held_bytes", "_last", "_limit", "_outbox", "_recovering", "_wake", "close_code", "close_reason",
                 "codec", "direct", "expiry", "id", "outbox_bytes", "text", "user_id")

    def __init__(self, conn_id: str, codec: str, outbox_limit: int, text: bool = True) -> None:
        self.id = conn_id
        self.codec = codec
        self.text = text
        self.direct: DirectWriter | None = None
        self.expiry: asyncio.TimerHandle | None = None  # closes the connection when its token expires
        self.user_id: str | None = None
        self._limit = outbox_limit
        self._outbox: list[Frame] = []  # only without a direct writer
        self.outbox_bytes = 0
        self._wake: asyncio.Event | None = None  # made by the writer task, if there is one
        self._recovering: dict[str, list[tuple[int | None, Frame, int]]] = {}
        self._held_bytes = 0  # bytes of the frames held in `_recovering`
        self._last: dict[str, int] = {}
        self.close_code: CloseCode | None = None
        self.close_reason = ""

    # -- called by the fan-out and the command handlers --------------------------

    def deliver(self, channel: str, seq: int | None, frame: Frame, size: int) -> None:
        if self.close_code is not None:
            return
        pending = self._recovering.get(channel)
        if pending is not None:
            # frames held during recovery count against the outbox bound like queued ones
            self._held_bytes += size
            if self._held_bytes + self.outbox_bytes > self._limit:
                self.close(CloseCode.SLOW_CONSUMER, "too much to recover at once: reconnect with since")
                return
            pending.append((seq, frame, size))
            return
        if seq is not None:
            if seq <= self._last.get(channel, 0):
                return
            self._last[channel] = seq
        self.send(frame, size)

    def send(self, frame: Frame, size: int | None = None) -> None:
        """Write (or queue) a frame; `size` is its byte size when the caller knows it already."""
        if self.close_code is not None:
            return
        direct = self.direct
        if direct is not None:
            if direct.buffered() + (frame_size(frame) if size is None else size) > self._limit:
                # checked before writing: a client that does not read never makes us hold more
                # (than the bound and one frame's header of at most 10 bytes); once per delivery
                self.close(CloseCode.SLOW_CONSUMER, "too slow: reconnect and recover with since")
                return
            direct.write_frame(frame, self.text)
            return
        self._outbox.append(frame)
        self.outbox_bytes += frame_size(frame) if size is None else size
        if self.outbox_bytes > self._limit:
            self.close(CloseCode.SLOW_CONSUMER, "outbox overflow: reconnect and recover with since")
            return
        if self._wake is not None:
            self._wake.set()

    def close(self, code: CloseCode, reason: str) -> None:
        """Ask the writer to close the socket after what is already queued (or at once on
        overflow)."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        if code is CloseCode.SLOW_CONSUMER:
            self._outbox.clear()
            self.outbox_bytes = 0
        self._recovering.clear()
        self._held_bytes = 0
        if self.direct is not None:
            self.direct.close_now(int(code), reason[:120])
        if self._wake is not None:
            self._wake.set()

    def abort(self) -> None:
        """The fan-out failed on this connection: close with 1011, internal error."""
        self.close(CloseCode.INTERNAL, "internal error")

    def release(self) -> None:
        """The socket is gone: drop every buffered frame and timer now, not after a grace
        period (a closed connection must not hold memory)."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
        self._outbox.clear()
        self.outbox_bytes = 0
        self._recovering.clear()
        self._held_bytes = 0
        self._last.clear()
        if self._wake is not None:
            self._wake.set()

    def begin_recovery(self, channel: str) -> None:
        self._recovering[channel] = []

    def end_recovery(self, channel: str, seq: int) -> None:
        """Send the live frames buffered during recovery that lie above `seq`, in order."""
        self._last[channel] = seq
        held = self._recovering.pop(channel, [])
        self._held_bytes -= sum(size for _, _, size in held)
        for frame_seq, frame, size in held:
            self.deliver(channel, frame_seq, frame, size)

    def abort_recovery(self, channel: str) -> None:
        self._held_bytes -= sum(size for _, _, size in self._recovering.pop(channel, []))

    def forget(self, channel: str) -> None:
        """The connection left the channel: forget its position."""
        self._held_bytes -= sum(size for _, _, size in self._recovering.pop(channel, []))
        self._last.pop(channel, None)

    # -- called by the writer task ------------------------------------------------

    async def next_frames(self) -> list[Frame]:
        """Wait for frames to write; an empty list means: close now."""
        if self._wake is None:
            self._wake = asyncio.Event()
        while not self._outbox:
            if self.close_code is not None:
                return []
            self._wake.clear()
            await self._wake.wait()
        frames, self._outbox = self._outbox, []
        self.outbox_bytes = 0
        return frames
