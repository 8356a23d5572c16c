"""uvicorn's HTTP/1.1 protocol as `liaison serve` runs it, with a write deadline.

A response is written into the connection's transport at once (Starlette sends a JSON page
in one piece); what the client's socket does not take waits in the transport's buffer, in
the gateway's memory. A client that sends `GET …/messages?limit=200` and never reads would
keep its page (up to `LIAISON_REPLY_BYTES`, ~0.5 MiB) there for as long as the connection
lives, and a graceful close (the keep-alive timeout's) waits for the buffer to drain, that
is forever. The per-user HTTP rate limit is a rate, not a cap on such responses.

Two parts:
- The kernel's send buffer of every connection is set to `LIAISON_SOCKET_SNDBUF` (64 KiB;
  Linux reserves twice this), by `GuardedH11Protocol` when the connection is made, which
  also holds for the WebSocket it may become. Without it
  Linux grows it up to `net.ipv4.tcp_wmem` (4 MiB): a whole page then sits in the kernel
  unread (measured: 512,530 bytes queued on loopback), the transport never pauses, and
  nothing in the process even sees that the client does not read.
- The deadline uses asyncio's flow control: the transport calls `pause_writing` when its
  buffer crosses the high-water mark (64 KiB) and `resume_writing` once it drops below the
  low-water mark (16 KiB). A connection that stays paused longer than `write_timeout`
  (`LIAISON_HTTP_WRITE_TIMEOUT`, 30 s) is aborted: the buffer is dropped at once, and the
  kernel's with it (a reset). A client that reads keeps its connection whatever the size of
  the response, provided it drains the transport's buffer within the deadline (about
  13 KB/s for the largest page, 512 KiB less the kernel's 128 KiB); the WebSocket protocol
  has its own bounds (the outbox).

Besides what `GuardedH11Protocol` relies on (realtime/ws/transport.py), this class uses
uvicorn's private `loop` and `transport` attributes of `H11Protocol` (pinned in
pyproject.toml: uvicorn 0.54).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

import structlog

from realtime.ws.transport import GuardedH11Protocol, TransportLimits

log = structlog.get_logger("liaison.http")


class WriteDeadlineH11Protocol(GuardedH11Protocol):
    write_timeout: float = 30.0
    _write_timer: asyncio.TimerHandle | None = None

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_timer = self.loop.call_later(self.write_timeout, self._write_timed_out)

    def resume_writing(self) -> None:
        self._stop_write_timer()
        super().resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_write_timer()
        super().connection_lost(exc)

    def _stop_write_timer(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        if self.transport.get_protocol() is not self:  # upgraded: the WebSocket's own bounds hold
            return
        log.info("http_write_timeout", buffered=self.transport.get_write_buffer_size(),
                 timeout=self.write_timeout)
        # not close(): a graceful close waits for the buffer to drain, which it never will;
        # and a linger of 0, so that the kernel resets the connection and drops what it holds
        # too, where a plain close would keep it queued behind a FIN (FIN-WAIT-1, for minutes)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()


def http_protocol(limits: TransportLimits, write_timeout: float) -> type[WriteDeadlineH11Protocol]:
    """The class for uvicorn's `http=`, bound to `limits` and `write_timeout`."""

    class Http(WriteDeadlineH11Protocol):
        transport_limits = limits

    Http.write_timeout = write_timeout
    return Http
