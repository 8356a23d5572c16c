"""Handlers of the core operations of protocol v1: connect, subscribe, unsubscribe,
publish, history, read, ping, and the `profile` extension."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from auth import policy, tokens
from channels.limits import UserLimits
from persistence.store import Store
from realtime.config import Settings
from realtime.engine.gateway import Gateway, Replied
from realtime.engine.recovery import Recovery, finish_recovery
from realtime.services.history import History, forbidden
from realtime.services.publishing import Publisher, published
from realtime.services.receipts import Receipts
from realtime.services.signin import SignIn
from realtime.ws.close import CloseCode
from realtime.ws.connection import Connection
from realtime.ws.frames import Command, channel_param, int_param, since_param, str_param
from realtime.ws.session import Session
from school.channels import ChannelName
from school.directory import Directory, Person
from school.errors import Unauthorized
from school.messages import JSONDict
from school.profile import profile_of
from school.wire import ConnectReply, Empty, HistoryPage, ProfileReply, PublishReply

log = structlog.get_logger("liaison.ops")


def user_of(session: Session) -> Person:
    assert session.user is not None
    return session.user


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """A `publish` command's parameters, checked against the policy and the kind's rules."""

    person: Person
    channel: ChannelName
    kind: str
    data: JSONDict
    key: str | None


def publish_request(publisher: Publisher, session: Session, cmd: Command) -> PublishRequest:
    """The checked parameters of `publish` (now, or at `at`: realtime/handlers/scheduling.py)."""
    person = user_of(session)
    channel = channel_param(cmd.params)
    kind = str(str_param(cmd.params, "kind", required=True, max_len=32))
    data = publisher.check(person, channel, kind, cmd.params.get("data"))
    key = str_param(cmd.params, "key", required=False, max_len=128)
    return PublishRequest(person, channel, kind, data, key)


class CoreHandlers:
    def __init__(self, settings: Settings, directory: Directory, store: Store, gateway: Gateway,
                 recovery: Recovery, clock: Callable[[], float] = time.time,
                 limits: UserLimits | None = None, signin: SignIn | None = None) -> None:
        self.settings = settings
        self.signin = signin
        self.limits = limits or gateway.quotas
        self.directory = directory
        self.store = store
        self.gateway = gateway
        self.recovery = recovery
        self.clock = clock

    async def connect(self, session: Session, conn: Connection, cmd: Command) -> Replied:
        token = cmd.params.get("token")
        try:
            if self.signin is not None:
                bind = functools.partial(self.gateway.bind_device_session, session)
                user_id, expires = await self.signin.identify(token, bind)
            else:
                user_id, expires = tokens.verify_claims(self.settings.jwt_secret.bytes(), token)
        except Unauthorized as exc:
            raise Unauthorized(exc.message, fatal=True) from None
        person = self.directory.person(user_id)
        if person is None:
            raise Unauthorized("this account is not (or no longer) known", fatal=True)
        if not session.counted:  # blocked after a 4429, or at their connection limit: closed 4429
            await self.limits.admit(person.id, session.id)
            session.counted = True
        since = since_param(cmd.params, self.settings.limits.since_channels)
        updated_since = int_param(cmd.params, "updated_since", required=False)
        d = self.directory
        wanted = set(d.home_channels(user_id))
        for name in since:
            channel = channel_param({"channel": name})
            if policy.may_read(d, user_id, channel):
                wanted.add(name)
        session.user = person
        conn.user_id = person.id
        states = await self.recovery.attach(session, conn, sorted(wanted), since, updated_since)
        self.gateway.mark_connected(session)
        self.end_at_expiry(conn, expires)  # no await from here to the reply: it is sent first
        # debug, not info: at 8:30 one JSON line per connect was 7 % of a storm's CPU over Redis;
        # `connection_closed` (info) records each connection's user, close code and duration
        log.debug("connected", conn=session.id, user=user_id, channels=len(states))
        body: ConnectReply = {
            "user": {"id": person.id, "name": person.name, "role": person.role.value},
            "session": session.id,
            "ping": self.settings.ping_interval,
            "channels": [state for state, _ in states],
        }
        return Replied(body, lambda: finish_recovery(conn, states))

    def end_at_expiry(self, conn: Connection, expires: float) -> None:
        """A connection lives no longer than its token: at expiry it is closed with 4401, and
        the client signs in again (a token revoked by not being renewed stops the data)."""
        delay = max(0.0, expires - self.clock())
        conn.expiry = asyncio.get_running_loop().call_later(
            delay, conn.close, CloseCode.UNAUTHORIZED, "token expired: connect with a new token")

    async def subscribe(self, session: Session, conn: Connection, cmd: Command) -> Replied:
        channel = channel_param(cmd.params)
        if not policy.may_read(self.directory, user_of(session).id, channel):
            raise forbidden(channel)
        since_seq = int_param(cmd.params, "since", required=False)
        name = str(channel)
        since = {name: since_seq} if since_seq is not None else {}
        updated_since = int_param(cmd.params, "updated_since", required=False)
        states = await self.recovery.attach(session, conn, [name], since, updated_since)
        return Replied(states[0][0], lambda: finish_recovery(conn, states))

    async def unsubscribe(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        name = str(channel_param(cmd.params))
        if name in session.channels:
            self.recovery.detach(session, conn, name)
        return {}

    async def ping(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        return {}

    async def profile(self, session: Session, conn: Connection, cmd: Command) -> ProfileReply:
        person = user_of(session)
        reads = await self.store.user_read_marks(person.id)
        return profile_of(self.directory, person, reads)


class MessageHandlers:
    """publish, history and read: thin over the services that the HTTP API shares."""

    def __init__(self, publisher: Publisher, history: History, receipts: Receipts,
                 limits: UserLimits | None = None) -> None:
        self.limits = limits
        self.publisher = publisher
        self.history_service = history
        self.receipts = receipts

    async def publish(self, session: Session, conn: Connection, cmd: Command) -> PublishReply:
        req = publish_request(self.publisher, session, cmd)
        if self.limits is not None:
            await self.limits.publish(req.person.id)
        return published(await self.publisher.publish(req.person, req.channel, req.kind, req.data, req.key))

    async def history(self, session: Session, conn: Connection, cmd: Command) -> HistoryPage:
        channel = channel_param(cmd.params)
        before = int_param(cmd.params, "before", required=False, minimum=1)
        limit = int_param(cmd.params, "limit", required=False, minimum=-(2**53))
        return await self.history_service.page(user_of(session), channel, before, limit)

    async def read(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        person = user_of(session)
        channel = self.history_service.readable(person, channel_param(cmd.params))
        seq = int_param(cmd.params, "seq", required=True, minimum=1)
        assert seq is not None
        await self.receipts.mark_read(person, channel, seq)
        return {}
