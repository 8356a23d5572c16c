"""Handlers of the core operations of protocol v1: connect, subscribe, unsubscribe,
publish, history, read, ping, and the `profile` extension."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from auth import policy, tokens
from realtime.connection import Connection
from realtime.errors import CloseCode, CommandError, ErrorCode
from realtime.frames import (
    Command,
    bad,
    channel_param,
    int_param,
    since_param,
    str_param,
)
from realtime.gateway import Gateway, Replied, finish_recovery
from realtime.profile import profile_of
from realtime.publishing import checked_data, published, store_and_publish
from realtime.session import Session
from school.channels import ChannelName
from school.directory import Person
from school.kinds import ContentLimits

log = structlog.get_logger("liaison.ops")

HISTORY_DEFAULT, HISTORY_MAX = 50, 200


def forbidden(channel: ChannelName | str) -> CommandError:
    return CommandError(ErrorCode.FORBIDDEN, f"you may not use {channel}")


class CoreOps:
    def __init__(self, gateway: Gateway) -> None:
        self.g = gateway
        s = gateway.settings.limits
        self.content = ContentLimits(max_text=s.max_text, max_title=s.max_title,
                                     max_attachments=s.max_attachments)
        gateway.handlers.update({
            "connect": self.connect, "subscribe": self.subscribe, "unsubscribe": self.unsubscribe,
            "publish": self.publish, "history": self.history, "read": self.read,
            "ping": self.ping, "profile": self.profile,
        })

    def user(self, session: Session) -> Person:
        assert session.user is not None
        return session.user

    def readable(self, session: Session, params: dict[str, Any]) -> ChannelName:
        channel = channel_param(params)
        if not policy.may_read(self.g.directory, self.user(session).id, channel):
            raise forbidden(channel)
        return channel

    # -- connect and subscriptions ------------------------------------------------

    async def connect(self, session: Session, conn: Connection, cmd: Command) -> Replied:
        try:
            user_id, expires = tokens.verify_claims(self.g.settings.jwt_secret.bytes(), cmd.params.get("token"))
        except tokens.TokenError as exc:
            raise CommandError(ErrorCode.UNAUTHORIZED, str(exc), CloseCode.UNAUTHORIZED) from None
        person = self.g.directory.person(user_id)
        if person is None:
            raise CommandError(ErrorCode.UNAUTHORIZED, "this account is not (or no longer) known",
                               CloseCode.UNAUTHORIZED)
        since = since_param(cmd.params, self.g.settings.limits.since_channels)
        updated_since = int_param(cmd.params, "updated_since", required=False)
        d = self.g.directory
        wanted = set(d.home_channels(user_id))
        for name in since:
            channel = channel_param({"channel": name})
            if policy.may_read(d, user_id, channel):
                wanted.add(name)
        session.user = person
        conn.user_id = person.id
        states = await self.g.attach(session, conn, sorted(wanted), since, updated_since)
        self.g.mark_connected(session)
        self.end_at_expiry(conn, expires)  # no await from here to the reply: it is sent first
        log.info("connected", conn=session.id, user=user_id, channels=len(states))
        body = {
            "user": {"id": person.id, "name": person.name, "role": person.role.value},
            "session": session.id,
            "ping": self.g.settings.ping_interval,
            "channels": [state for state, _ in states],
        }
        return Replied(body, lambda: finish_recovery(conn, states))

    def end_at_expiry(self, conn: Connection, expires: float) -> None:
        """A connection lives no longer than its token: at expiry it is closed with 4401, and
        the client signs in again (a token revoked by not being renewed stops the data)."""
        delay = max(0.0, expires - self.g.clock())
        conn.expiry = asyncio.get_running_loop().call_later(
            delay, conn.close, CloseCode.UNAUTHORIZED, "token expired: connect with a new token")

    async def subscribe(self, session: Session, conn: Connection, cmd: Command) -> Replied:
        channel = self.readable(session, cmd.params)
        since_seq = int_param(cmd.params, "since", required=False)
        name = str(channel)
        since = {name: since_seq} if since_seq is not None else {}
        updated_since = int_param(cmd.params, "updated_since", required=False)
        states = await self.g.attach(session, conn, [name], since, updated_since)
        return Replied(states[0][0], lambda: finish_recovery(conn, states))

    async def unsubscribe(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        name = str(channel_param(cmd.params))
        if name in session.channels:
            session.channels.discard(name)
            self.g.hub.unsubscribe(name, conn)
            conn.forget(name)
        return {}

    # -- messages ---------------------------------------------------------------

    async def publish(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        person = self.user(session)
        channel = channel_param(cmd.params)
        kind = str_param(cmd.params, "kind", required=True, max_len=32)
        assert kind is not None
        data = checked_data(self.g, self.content, person, channel, kind, cmd.params.get("data"))
        key = str_param(cmd.params, "key", required=False, max_len=128)
        return published(await store_and_publish(self.g, person, channel, kind, data, key))

    async def history(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        channel = self.readable(session, cmd.params)
        before = int_param(cmd.params, "before", required=False, minimum=1)
        limit = int_param(cmd.params, "limit", required=False, minimum=-(2**53))
        if limit is None:
            limit = HISTORY_DEFAULT
        if limit < 1:
            raise bad("limit must be at least 1")
        messages, more = await self.g.store.history(str(channel), before, min(limit, HISTORY_MAX))
        return {"messages": [m.to_wire() for m in messages], "more": more}

    async def read(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        channel = self.readable(session, cmd.params)
        seq = int_param(cmd.params, "seq", required=True, minimum=1)
        assert seq is not None
        latest = (await self.g.store.latest_seqs([str(channel)])).get(str(channel), 0)
        seq = min(seq, latest)  # a read mark never runs ahead of the channel
        if seq < 1:
            return {}
        previous = await self.g.store.mark_read(self.user(session).id, str(channel), seq)
        if seq > previous:
            await self.g.after_read(self.user(session), str(channel), previous, seq)
        return {}

    async def ping(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        return {}

    async def profile(self, session: Session, conn: Connection, cmd: Command) -> dict[str, Any]:
        person = self.user(session)
        reads = await self.g.store.user_read_marks(person.id)
        return profile_of(self.g.directory, person, reads)

