"""The command engine: the open sessions of this process and the dispatch of their commands.

It knows nothing of the school: the handlers it runs are given to it (`use`, called
once by the app factory with the table of `realtime.handlers`). Each command's
exception is mapped to an error reply in one place (`realtime.ws.close.error_reply`).

Per-user limits (`channels.limits.UserLimits`, shared by every gateway process) are
counted here: each command of a connected user against the user's own rate over all
their connections, and their open connections, released at close and refreshed while
open (`keep_counted`). A connection closed with 4429 blocks its user at `connect` for
`LIAISON_RATE_LIMIT_BLOCK` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass

import structlog

from channels.limits import Limiter, MemoryLimiter, Rate, UserLimits, Verdict
from realtime.config import Limits
from realtime.engine import splice
from realtime.metrics import Metrics
from realtime.ws.close import CloseCode, error_reply
from realtime.ws.codec import Codec
from realtime.ws.connection import Connection
from realtime.ws.frames import Command
from realtime.ws.session import Session, State, typed_error
from school.errors import BadRequest, Conflict, ErrorCode, LiaisonError, RateLimited, error_body
from school.text import check_value, encodable
from school.wire import ErrorReply, OkReply, ReplyBody

log = structlog.get_logger("liaison.gateway")


@dataclass(frozen=True, slots=True)
class Replied:
    """A reply body and what to do right after the reply is queued (flush recovery buffers)."""

    body: ReplyBody
    finish: Callable[[], None]


# a command's handler: the `ok` of its reply (`school.wire` types each op's), or raises a `LiaisonError`
Handler = Callable[[Session, Connection, Command], Awaitable[ReplyBody | Replied]]


def user_limits(limits: Limits, limiter: Limiter, hold_ttl: float = 20.0,
                exact: Limiter | None = None) -> UserLimits:
    """The deployment's per-user limits from the settings (unset ones follow the per-connection rate)."""
    per_second, burst = limits.commands_per_second, limits.command_burst
    return UserLimits(
        limiter,
        connections=limits.user_connections,
        commands=Rate(limits.user_commands_per_second or per_second, limits.user_command_burst or burst),
        publishes=Rate(limits.publishes_per_second or per_second / 10,
                       limits.publish_burst or max(1, burst * 3 // 20)),
        http=Rate(limits.http_per_second, limits.http_burst),
        api_key=Rate(limits.api_key_per_second, limits.api_key_burst),
        block_seconds=limits.rate_limit_block,
        hold_ttl=hold_ttl,
        exact=exact,
    )


class Gateway:
    def __init__(self, limits: Limits, metrics: Metrics, leave: Callable[[str, Connection], None],
                 allowed_origins: tuple[str, ...] = (), instance_id: str | None = None,
                 quotas: UserLimits | None = None) -> None:
        self.limits = limits
        self.quotas = quotas or user_limits(limits, MemoryLimiter())
        self._releases: set[asyncio.Task[None]] = set()
        self.metrics = metrics
        self.allowed_origins = allowed_origins
        self._leave = leave  # the hub's unsubscribe
        self.instance_id = instance_id or uuid.uuid4().hex
        self.connections: dict[str, tuple[Session, Connection]] = {}
        # user id -> connection ids: a list, not a set (216 bytes for one id), as a user has few
        self.by_user: dict[str, list[str]] = {}
        self.by_device_session: dict[str, set[str]] = {}  # sign-in session id -> connection ids
        self._handlers: Mapping[str, Handler] = {}
        self._drained = asyncio.Event()
        # (deadline, connection id) of the connections awaiting their `connect`, in deadline
        # order (one timeout for all): one timer for them all, not a timer per connection
        self._connect_deadlines: deque[tuple[float, str]] = deque()
        self._connect_timer: asyncio.TimerHandle | None = None

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
        if session.counted and session.user is not None:
            session.counted = False
            release = asyncio.get_running_loop().create_task(self.quotas.release(session.user.id, session.id))
            self._releases.add(release)
            release.add_done_callback(self._releases.discard)
        if session.device_session is not None:
            ids = self.by_device_session.get(session.device_session)
            if ids is not None:
                ids.discard(session.id)
                if not ids:
                    del self.by_device_session[session.device_session]
        if session.user is not None:
            user_ids = self.by_user.get(session.user.id)
            if user_ids is not None:
                if session.id in user_ids:
                    user_ids.remove(session.id)
                if not user_ids:
                    del self.by_user[session.user.id]
        self.metrics.connections -= 1
        if not self.connections:
            self._drained.set()

    def expect_connect(self, session: Session) -> None:
        """Close the connection (4401) if its `connect` has not succeeded within
        `connect_timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.connect_timeout
        self._connect_deadlines.append((deadline, session.id))
        if self._connect_timer is None:
            self._connect_timer = loop.call_at(deadline, self._connect_deadlines_due)

    def _connect_deadlines_due(self) -> None:
        loop = asyncio.get_running_loop()
        pending, now = self._connect_deadlines, loop.time()
        while pending and pending[0][0] <= now:
            found = self.connections.get(pending.popleft()[1])
            if found is not None and found[0].state is State.AWAITING_CONNECT:
                found[1].close(CloseCode.UNAUTHORIZED, "no connect in time")
        self._connect_timer = loop.call_at(pending[0][0], self._connect_deadlines_due) if pending else None

    def mark_connected(self, session: Session) -> None:
        assert session.user is not None
        session.state = State.READY
        ids = self.by_user.setdefault(session.user.id, [])
        if session.id not in ids:
            ids.append(session.id)

    def bind_device_session(self, session: Session, sid: str) -> None:
        """Remember that this connection was opened with an access token of sign-in session `sid`
        (before the session is checked: an end announced meanwhile still finds it)."""
        session.device_session = sid
        self.by_device_session.setdefault(sid, set()).add(session.id)

    def close_device_sessions(self, sids: list[str], reason: str = "signed out") -> int:
        """Close (4401) this process's connections opened with those sign-in sessions; how many."""
        closed = 0
        for sid in sids:
            for conn_id in list(self.by_device_session.get(sid, ())):
                found = self.connections.get(conn_id)
                if found is not None:
                    found[1].close(CloseCode.UNAUTHORIZED, reason)
                    closed += 1
        return closed

    async def keep_counted(self, period: float) -> None:
        """Refresh, every `period` seconds, the connection places this process's sessions hold,
        so that they stay counted while open and expire soon after this process dies."""
        while True:
            holdings: dict[str, list[str]] = {}
            for session, _ in list(self.connections.values()):
                if session.counted and session.user is not None:
                    holdings.setdefault(session.user.id, []).append(session.id)
            try:
                await self.quotas.refresh(holdings)
            except Exception:
                log.exception("limits_refresh_failed")
            await asyncio.sleep(period)

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
                async with asyncio.timeout(timeout):
                    await self._drained.wait()

    # -- frames --------------------------------------------------------------------

    async def receive(self, session: Session, conn: Connection, frame: bytes | str) -> None:
        """Handle one frame: reply (and maybe close) through the connection's outbox."""
        intake = session.receive(frame, time.monotonic())
        codec = session.codec
        if intake.reply is not None:
            conn.send(codec.encode(intake.reply))
            self.metrics.error(intake.reply["error"]["code"])  # an intake's reply is always an error
        if intake.close is CloseCode.RATE_LIMITED:
            await self._abusive(session, conn)
        elif intake.close is not None:
            conn.close(intake.close, "")
        if intake.command is None:
            return
        command = intake.command
        if session.state is State.READY and session.user is not None:
            verdict = await self.quotas.command(session.user.id)
            if not verdict.allowed:
                await self._over_user_rate(session, conn, command, verdict)
                return
            session.user_refused = 0
        finish: Callable[[], None] | None = None
        close: CloseCode | None = None
        refused = ""
        try:
            result = await self.dispatch(session, conn, command)
            if isinstance(result, Replied):
                finish = result.finish
                result = result.body
            reply: OkReply | ErrorReply = {"id": command.id, "ok": result}
        except Exception as exc:
            if not isinstance(exc, LiaisonError):
                log.exception("command_failed", conn=session.id, op=command.op)
            raw_error, close = error_reply(exc)
            error = typed_error(raw_error)
            reply = {"id": command.id, "error": error}
            refused = error["code"]
            self.metrics.error(refused)
            log.info("command_refused", conn=session.id, op=command.op, code=refused,
                     user=session.user.id if session.user else None)
        conn.send(encode_reply(codec, reply, session.id, command.op, spliced=finish is not None))
        if finish is not None:
            finish()
        if close is not None:
            conn.close(close, str(refused))

    async def _over_user_rate(self, session: Session, conn: Connection, command: Command,
                              verdict: Verdict) -> None:
        """A command over its user's rate: `rate_limited` with `retry_after`; a whole burst of
        refusals in a row on this connection closes it with 4429."""
        session.user_refused += 1
        if session.user_refused > self.quotas.commands.burst:
            await self._abusive(session, conn)
            return
        rate = self.quotas.commands.per_second
        error = RateLimited(f"more than {rate:g} commands per second for one user, over all their "
                            "connections", verdict.retry_after)
        refusal: ErrorReply = {"id": command.id, "error": typed_error(error.body())}
        conn.send(session.codec.encode(refusal))
        self.metrics.error(error.code.wire)

    async def _abusive(self, session: Session, conn: Connection) -> None:
        """Close with 4429 a connection that kept sending after `rate_limited`, and refuse its
        user at `connect` until the block passes (on every gateway)."""
        if session.user is not None:
            await self.quotas.block(session.user.id)
        log.info("rate_limit_close", conn=session.id, user=session.user.id if session.user else None)
        conn.close(CloseCode.RATE_LIMITED, "rate_limited")

    async def dispatch(
        self, session: Session, conn: Connection, command: Command
    ) -> ReplyBody | Replied:
        handler = self._handlers.get(command.op)
        if handler is None:
            raise BadRequest(f"unknown op {command.op[:32]!r}")
        if session.state is State.READY and command.op == "connect":
            raise Conflict("this connection is already connected")
        check_value(command.params, "params")  # nothing one codec cannot encode gets further
        return await handler(session, conn, command)


ENCODING_ERRORS = (TypeError, ValueError, OverflowError, UnicodeError)


def encode_reply(codec: Codec, reply: OkReply | ErrorReply, conn_id: str, op: str,
                 spliced: bool = False) -> bytes:
    """The reply's frame. A message stored before values were checked at publish (one that a
    codec cannot carry: an integer beyond 64 bits, a lone surrogate) must not close the
    connection, nor every connection of that codec recovering it: such messages are sent
    with `data: {}` and `unreadable: true`, and the rest of the reply as it is. A recovery's
    reply (`spliced`) takes the frames of cached messages as they are (`engine.splice`)."""
    try:
        return splice.encode(codec, reply) if spliced else codec.encode(reply)
    except ENCODING_ERRORS as exc:
        log.error("reply_not_encodable", conn=conn_id, op=op, codec=codec.name, error=type(exc).__name__)
    try:
        return codec.encode(scrubbed(reply))
    except ENCODING_ERRORS:
        return codec.encode({"id": reply.get("id"), "error": error_body(ErrorCode.INTERNAL, "internal error")})


def scrubbed(value: object) -> object:
    """A copy of `value` in which every message whose `data` a codec could not carry has
    `data: {}` and `unreadable: true`."""
    if isinstance(value, list):
        return [scrubbed(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "seq" in value and "kind" in value and "data" in value and not encodable(value["data"]):
        return {**{k: scrubbed(v) for k, v in value.items() if k != "data"}, "data": {}, "unreadable": True}
    return {k: scrubbed(v) for k, v in value.items()}
