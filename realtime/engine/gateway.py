"""The command engine: the open sessions of this process and the dispatch of their commands.

It knows nothing of the school: the handlers it runs are given to it (`use`, called
once by the app factory with the table of `realtime.handlers`). Each command's
exception is mapped to an error reply in one place (`realtime.ws.close.error_reply`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from realtime.config import Limits
from realtime.metrics import Metrics
from realtime.ws.close import CloseCode, error_reply
from realtime.ws.codec import Codec
from realtime.ws.connection import Connection
from realtime.ws.frames import Command
from realtime.ws.session import Session, State
from school.errors import BadRequest, Conflict, LiaisonError
from school.text import check_value

log = structlog.get_logger("liaison.gateway")


@dataclass(frozen=True, slots=True)
class Replied:
    """A reply body and what to do right after the reply is queued (flush recovery buffers)."""

    body: dict[str, Any]
    finish: Callable[[], None]


Handler = Callable[[Session, Connection, Command], Awaitable[dict[str, Any] | Replied]]


class Gateway:
    def __init__(self, limits: Limits, metrics: Metrics, leave: Callable[[str, Connection], None],
                 allowed_origins: tuple[str, ...] = (), instance_id: str | None = None) -> None:
        self.limits = limits
        self.metrics = metrics
        self.allowed_origins = allowed_origins
        self._leave = leave  # the hub's unsubscribe
        self.instance_id = instance_id or uuid.uuid4().hex
        self.connections: dict[str, tuple[Session, Connection]] = {}
        self.by_user: dict[str, set[str]] = {}
        self._handlers: Mapping[str, Handler] = {}
        self._drained = asyncio.Event()

    def use(self, handlers: Mapping[str, Handler]) -> None:
        """The command table (op → handler), given once at start-up."""
        self._handlers = dict(handlers)

    # -- sessions ------------------------------------------------------------------

    def open_session(self, codec: Codec) -> tuple[Session, Connection]:
        session_id = uuid.uuid4().hex
        conn = Connection(session_id, codec.name, self.limits.outbox_bytes, text=not codec.binary)
        session = Session(session_id, codec, self.limits)
        self.connections[session_id] = (session, conn)
        self.metrics.connections += 1
        return session, conn

    def close_session(self, session: Session, conn: Connection) -> None:
        """Forget a closed session: leave its channels and release its buffers at once."""
        session.state = State.CLOSED
        conn.release()
        for channel in session.channels:
            self._leave(channel, conn)
        session.channels.clear()
        self.connections.pop(session.id, None)
        if session.user is not None:
            ids = self.by_user.get(session.user.id)
            if ids is not None:
                ids.discard(session.id)
                if not ids:
                    del self.by_user[session.user.id]
        self.metrics.connections -= 1
        if not self.connections:
            self._drained.set()

    def mark_connected(self, session: Session) -> None:
        assert session.user is not None
        session.state = State.READY
        self.by_user.setdefault(session.user.id, set()).add(session.id)

    def sessions_of(self, user_id: str) -> list[tuple[Session, Connection]]:
        return [self.connections[s] for s in self.by_user.get(user_id, ()) if s in self.connections]

    def ready_sessions(self) -> Iterator[tuple[Session, Connection]]:
        for session, conn in list(self.connections.values()):
            if session.state is State.READY:
                yield session, conn

    async def drain(self, timeout: float = 3.0) -> None:
        """Close every connection with 1001 (server shutting down) and wait for them to go."""
        for _, conn in list(self.connections.values()):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        self._drained.clear()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)

    # -- frames --------------------------------------------------------------------

    async def receive(self, session: Session, conn: Connection, frame: bytes | str) -> None:
        """Handle one frame: reply (and maybe close) through the connection's outbox."""
        intake = session.receive(frame, time.monotonic())
        codec = session.codec
        if intake.reply is not None:
            conn.send(codec.encode(intake.reply))
            self.metrics.error(intake.reply.get("error", {}).get("code", ""))
        if intake.close is not None:
            conn.close(intake.close, "")
        if intake.command is None:
            return
        command = intake.command
        finish: Callable[[], None] | None = None
        close: CloseCode | None = None
        try:
            result = await self.dispatch(session, conn, command)
            if isinstance(result, Replied):
                finish = result.finish
                result = result.body
            reply: dict[str, Any] = {"id": command.id, "ok": result}
        except Exception as exc:
            if not isinstance(exc, LiaisonError):
                log.exception("command_failed", conn=session.id, op=command.op)
            error, close = error_reply(exc)
            reply = {"id": command.id, "error": error}
            self.metrics.error(error["code"])
            log.info("command_refused", conn=session.id, op=command.op, code=error["code"],
                     user=session.user.id if session.user else None)
        conn.send(codec.encode(reply))
        if finish is not None:
            finish()
        if close is not None:
            conn.close(close, str(reply["error"]["code"]))

    async def dispatch(
        self, session: Session, conn: Connection, command: Command
    ) -> dict[str, Any] | Replied:
        handler = self._handlers.get(command.op)
        if handler is None:
            raise BadRequest(f"unknown op {command.op[:32]!r}")
        if session.state is State.READY and command.op == "connect":
            raise Conflict("this connection is already connected")
        check_value(command.params, "params")  # nothing one codec cannot encode gets further
        return await handler(session, conn, command)
