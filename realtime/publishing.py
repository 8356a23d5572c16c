"""Publishing a message: the one path shared by the WebSocket `publish` op and the HTTP API.

`checked_data` applies the policy and validates the data; `store_and_publish` stores the
message (idempotent by key) and hands it to the broker. They raise `CommandError`, which
each transport turns into its own error reply.
"""

from __future__ import annotations

import uuid

from auth import policy
from persistence.store import Appended
from realtime.config import Limits
from realtime.errors import CommandError, ErrorCode
from realtime.gateway import Gateway, message_event
from school.channels import ChannelName
from school.directory import Person
from school.kinds import ContentLimits, KindError, validate
from school.messages import Author, Draft, JSONDict


def author_of(person: Person) -> Author:
    return Author(person.id, person.name, person.role.value)


def content_limits(limits: Limits) -> ContentLimits:
    return ContentLimits(max_text=limits.max_text, max_title=limits.max_title,
                         max_attachments=limits.max_attachments)


def checked_data(
    g: Gateway, content: ContentLimits, person: Person, channel: ChannelName, kind: str, data: object
) -> JSONDict:
    """The normalised data of a message `person` may publish, or `forbidden` / `bad_request` /
    `too_large`."""
    if not policy.may_publish(g.directory, person.id, channel, kind):
        raise CommandError(ErrorCode.FORBIDDEN, f"you may not publish {kind!r} in {channel}")
    try:
        return validate(kind, data, content)
    except KindError as exc:
        code = ErrorCode.TOO_LARGE if exc.too_large else ErrorCode.BAD_REQUEST
        raise CommandError(code, str(exc)) from None


async def store_and_publish(
    g: Gateway, person: Person, channel: ChannelName, kind: str, data: JSONDict, key: str | None
) -> Appended:
    """Store the message (the original one when `key` was used already) and, when it is new,
    send it to every subscriber."""
    draft = Draft(str(channel), str(uuid.uuid4()), int(g.clock() * 1000), author_of(person), kind, data, key)
    appended = await g.store.append(draft)
    if appended.created:
        g.metrics.published += 1
        await g.publish_event(message_event(appended.message))
    return appended


def published(appended: Appended) -> dict[str, object]:
    """The `publish` result: `{seq, id, ts}`."""
    message = appended.message
    return {"seq": message.seq, "id": message.id, "ts": message.ts}
