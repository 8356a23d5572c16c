"""Publishing a message: the one path shared by the WebSocket `publish` op and the HTTP API.

`check` applies the policy and validates the data; `publish` stores the message
(idempotent by key) and hands it to the broker. They raise `LiaisonError`s, which each
transport maps in its own one place.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from auth import policy
from persistence.store import Appended, Store
from realtime.config import Limits
from realtime.engine.events import Events, message_event
from realtime.metrics import Metrics
from school.channels import ChannelName, ChannelType
from school.directory import Directory, Person
from school.errors import Closed, Forbidden
from school.kinds import ContentLimits, validate
from school.messages import Author, Draft, JSONDict, Message
from school.wire import PublishReply


def author_of(person: Person) -> Author:
    return Author(person.id, person.name, person.role.value)


def content_limits(limits: Limits) -> ContentLimits:
    return ContentLimits(max_text=limits.max_text, max_title=limits.max_title,
                         max_attachments=limits.max_attachments)


class Publisher:
    def __init__(self, store: Store, directory: Directory, events: Events, content: ContentLimits,
                 metrics: Metrics, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.directory = directory
        self.events = events
        self.content = content
        self.metrics = metrics
        self.clock = clock
        # called with each newly stored message (issue 12: the notifications' fan-out job)
        self.stored_hooks: list[Callable[[Message], Awaitable[None]]] = []
        self.attachments: AttachmentHook | None = None  # uploads in attachments (issue 13)
        # checks a channel is open to new messages (issue 15: a class whose school year is over)
        self.guards: list[Callable[[Person, ChannelName], None]] = []
        # told of each edit or delete: (action, who, the message after it), e.g. the audit log
        self.changed_hooks: list[Callable[[str, str, Message], Awaitable[None]]] = []

    def check(self, person: Person, channel: ChannelName, kind: str, data: object) -> JSONDict:
        """The normalised data of a message `person` may publish, or `forbidden` /
        `bad_request` / `too_large`."""
        if not policy.may_publish(self.directory, person.id, channel, kind):
            raise Forbidden(f"you may not publish {kind!r} in {channel}")
        chat = self.directory.chats.get(channel.id) if channel.type is ChannelType.CHAT else None
        if chat is not None and chat.closed:
            raise Closed("this conversation is closed; the school can open it again")
        self.guard(person, channel)
        return validate(kind, data, self.content)

    def guard(self, person: Person, channel: ChannelName) -> None:
        """Raise (`closed`...) when `channel` takes no new message now, whoever publishes."""
        for guard in self.guards:
            guard(person, channel)

    def revalidate(self, kind: str, data: object) -> JSONDict:
        """The data of an edit, checked as at publish."""
        return validate(kind, data, self.content)

    async def publish(self, person: Person, channel: ChannelName, kind: str, data: JSONDict,
                      key: str | None) -> Appended:
        """Store the message (the original one when `key` was used already) and, when it is
        new, send it to every subscriber."""
        data = await self.fill(person, channel, data)
        draft = Draft(str(channel), str(uuid.uuid4()), int(self.clock() * 1000), author_of(person),
                      kind, data, key)
        appended = await self.store.append(draft)
        await self.referenced(appended.message)
        if appended.created:
            self.metrics.published += 1
            for hook in self.stored_hooks:
                await hook(appended.message)
        # a retry with the same key publishes again: the first try may have been stored by a
        # gateway that died before publishing it (gateways drop what they have by seq)
        await self.events.publish(message_event(appended.message))
        return appended


    async def fill(self, person: Person, channel: ChannelName, data: JSONDict,
                   previous: JSONDict | None = None) -> JSONDict:
        """`data` with its uploaded attachments filled (realtime/services/attachments.py)."""
        return data if self.attachments is None else await self.attachments.fill(person, channel, data, previous)

    async def changed(self, action: str, actor: str, message: Message) -> None:
        """An `edited` or `deleted` message (by `actor`): tell the hooks."""
        for hook in self.changed_hooks:
            await hook(action, actor, message)

    async def referenced(self, message: Message) -> None:
        if self.attachments is not None:
            await self.attachments.referenced(message)


class AttachmentHook(Protocol):
    async def fill(self, person: Person, channel: ChannelName, data: JSONDict,
                   previous: JSONDict | None = None) -> JSONDict: ...

    async def referenced(self, message: Message) -> None: ...


def published(appended: Appended) -> PublishReply:
    """The `publish` result: `{seq, id, ts}`."""
    message = appended.message
    return {"seq": message.seq, "id": message.id, "ts": message.ts}
