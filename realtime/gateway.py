"""The gateway core: sessions, the command dispatch, and events to the broker.

It owns the store, the broker, the hub and the directory snapshot, and runs each
command of a session through its handler. Handlers raise `CommandError`; this
module is the one place that maps exceptions to error replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from channels.broker import Broker, BrokerUnavailable, Event
from channels.hub import Hub
from channels.presence import LocalPresence, Presence
from persistence.store import Store, StoreUnavailable
from realtime.codec import CODECS, Codec
from realtime.config import Settings
from realtime.connection import Connection
from realtime.errors import CloseCode, CommandError, ErrorCode, error_body
from realtime.frames import Command
from realtime.metrics import Metrics
from realtime.session import Session, State
from school.channels import user_channel
from school.directory import Directory, Person, Role
from school.messages import Message

log = structlog.get_logger("liaison.gateway")

RECEIPT_WINDOW = 100  # receipts pushed for at most this many messages per read



@dataclass(frozen=True, slots=True)
class Replied:
    """A reply body and what to do right after the reply is queued (flush recovery buffers)."""

    body: dict[str, Any]
    finish: Callable[[], None]


Handler = Callable[[Session, Connection, Command], Awaitable[dict[str, Any] | Replied]]


class Gateway:
    def __init__(self, settings: Settings, store: Store, broker: Broker, directory: Directory,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.directory = directory
        self.clock = clock
        self.metrics = Metrics()
        self.instance_id = uuid.uuid4().hex
        encoders = {name: codec.encode for name, codec in CODECS.items()}
        self.hub = Hub(broker, encoders, self._fetch_range, self._latest_seq,
                       gap_delay=settings.gap_fill_delay, on_delivered=self.metrics.delivered)
        self.presence: Presence = LocalPresence(self.hub)
        self.connections: dict[str, tuple[Session, Connection]] = {}
        self.by_user: dict[str, set[str]] = {}
        self.handlers: dict[str, Handler] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._drained = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        await self.broker.start(self.hub)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.hub.close()
        await self.broker.close()

    async def drain(self, timeout: float = 3.0) -> None:
        """Close every connection with 1001 (server shutting down) and wait for them to go."""
        for _, conn in list(self.connections.values()):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        self._drained.clear()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)

    def open_session(self, codec: Codec) -> tuple[Session, Connection]:
        session_id = uuid.uuid4().hex
        conn = Connection(session_id, codec.name, self.settings.limits.outbox_bytes, text=not codec.binary)
        session = Session(session_id, codec, self.settings.limits)
        self.connections[session_id] = (session, conn)
        self.metrics.connections += 1
        return session, conn

    def close_session(self, session: Session, conn: Connection) -> None:
        session.state = State.CLOSED
        if conn.expiry is not None:
            conn.expiry.cancel()
        for channel in session.channels:
            self.hub.unsubscribe(channel, conn)
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

    def sessions_of(self, user_id: str) -> list[tuple[Session, Connection]]:
        return [self.connections[s] for s in self.by_user.get(user_id, ()) if s in self.connections]

    def mark_connected(self, session: Session) -> None:
        assert session.user is not None
        session.state = State.READY
        self.by_user.setdefault(session.user.id, set()).add(session.id)

    # -- frames ------------------------------------------------------------------

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
        except CommandError as exc:
            reply = {"id": command.id, "error": error_body(exc.code, exc.message)}
            close = exc.close
        except StoreUnavailable:
            reply = {"id": command.id, "error": error_body(
                ErrorCode.UNAVAILABLE, "storage is unavailable, try again shortly")}
        except Exception:
            log.exception("command_failed", conn=session.id, op=command.op)
            reply = {"id": command.id, "error": error_body(ErrorCode.INTERNAL, "internal error")}
        if "error" in reply:
            code = reply["error"]["code"]
            self.metrics.error(code)
            log.info("command_refused", conn=session.id, op=command.op, code=code,
                     user=session.user.id if session.user else None)
        conn.send(codec.encode(reply))
        if finish is not None:
            finish()
        if close is not None:
            conn.close(close, exc_reason(reply))

    async def dispatch(
        self, session: Session, conn: Connection, command: Command
    ) -> dict[str, Any] | Replied:
        handler = self.handlers.get(command.op)
        if handler is None:
            raise CommandError(ErrorCode.BAD_REQUEST, f"unknown op {command.op[:32]!r}")
        if session.state is State.READY and command.op == "connect":
            raise CommandError(ErrorCode.CONFLICT, "this connection is already connected")
        return await handler(session, conn, command)

    async def attach(
        self, session: Session, conn: Connection, channels: list[str], since: dict[str, int],
        updated_since: int | None = None,
    ) -> list[tuple[dict[str, Any], int]]:
        """Subscribe first, then read the store: the gap-free handoff (docs/design-notes.md).
        On failure, the connection is left as it was: not subscribed to any of `channels`."""
        fresh = [c for c in channels if c not in session.channels]
        for channel in channels:
            conn.begin_recovery(channel)
        try:
            waiting = [c for c in channels if not self.hub.join_ready(c, conn)]
            if waiting:
                await asyncio.gather(*(self.hub.subscribe(c, conn) for c in waiting))
            session.channels.update(channels)
            return await self.read_states(channels, since, updated_since)
        except BaseException:
            for channel in channels:
                conn.abort_recovery(channel)
            for channel in fresh:
                session.channels.discard(channel)
                self.hub.unsubscribe(channel, conn)
                conn.forget(channel)
            raise

    async def read_states(
        self, channels: list[str], since: dict[str, int], updated_since: int | None = None
    ) -> list[tuple[dict[str, Any], int]]:
        """Each channel's state for a connect/subscribe reply. With `updated_since` (ms, the
        extension for clients that keep messages), a recovered channel also lists in `updates`
        its messages at or below `since` edited or deleted after that time."""
        store, cap = self.store, self.settings.limits.recovery_cap
        plain = [c for c in channels if c not in since]
        latest = await store.latest_seqs(plain) if plain else {}
        wanted = {c: since[c] for c in channels if c in since}
        recovered = await store.recover_many(wanted, cap) if wanted else {}
        stale = await store.updates(wanted, updated_since) if wanted and updated_since is not None else {}
        states: list[tuple[dict[str, Any], int]] = []
        for channel in channels:
            if channel not in since:
                seq = latest.get(channel, 0)
                states.append(({"channel": channel, "seq": seq, "messages": [],
                                "complete": True}, seq))
                continue
            rec = recovered[channel]
            # the newest message recovered is the state; with none, never above `since`,
            # so that nothing stored after the read can fall between recovery and pushes
            seq = rec.messages[-1].seq if rec.messages else min(rec.latest, since[channel])
            state = {"channel": channel, "seq": seq, "messages": [m.to_wire() for m in rec.messages],
                     "complete": rec.complete}
            if updated_since is not None:
                state["updates"] = [m.to_wire() for m in stale.get(channel, [])]
            states.append((state, seq))
        return states

    # -- events -----------------------------------------------------------------

    async def publish_event(self, event: Event) -> None:
        """Hand an event to the broker; retried in the background if the broker is down
        (the message is already stored, gateways drop duplicates by seq)."""
        try:
            await self.broker.publish(event)
        except BrokerUnavailable:
            self.spawn(self._republish(event))

    async def _republish(self, event: Event) -> None:
        delay = 0.2
        for _ in range(30):
            await asyncio.sleep(delay)
            try:
                await self.broker.publish(event)
                return
            except BrokerUnavailable:
                delay = min(delay * 2, 5.0)
        log.warning("event_dropped", channel=event.channel, type=event.type)

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def after_read(self, reader: Person, channel: str, previous: int, seq: int) -> None:
        """Tell authors, live, that a guardian read their messages for the first time."""
        if reader.role is not Role.GUARDIAN:
            return
        messages = await self.store.range(channel, max(previous, seq - RECEIPT_WINDOW), seq)
        for message in messages:
            if message.author.id != reader.id and not message.deleted:
                body = {"channel": channel, "seq": message.seq, "user": reader.id}
                await self.publish_event(Event(user_channel(message.author.id), "receipt", body))

    async def _fetch_range(self, channel: str, after: int, upto: int) -> list[dict[str, Any]]:
        return [m.to_wire() for m in await self.store.range(channel, after, upto)]

    async def _latest_seq(self, channel: str) -> int:
        return (await self.store.latest_seqs([channel])).get(channel, 0)


def finish_recovery(conn: Connection, states: list[tuple[dict[str, Any], int]]) -> None:
    """After the reply is queued: flush each channel's live buffer above its recovered seq."""
    for state, seq in states:
        conn.end_recovery(state["channel"], seq)


def exc_reason(reply: dict[str, Any]) -> str:
    return str(reply.get("error", {}).get("code", ""))


def message_event(message: Message) -> Event:
    return Event(message.channel, "message", {"message": message.to_wire()}, message.seq)


def update_event(message: Message) -> Event:
    return Event(message.channel, "update", {"message": message.to_wire()})
