"""A channel's history, page by page: one service for the WebSocket `history` op and the
HTTP `GET /api/v1/channels/{channel}/messages`."""

from __future__ import annotations

from auth import policy
from persistence.store import Store
from realtime.engine.recovery import newest_within
from school.channels import ChannelName
from school.directory import Directory, Person
from school.errors import BadRequest, Forbidden
from school.wire import HistoryPage

HISTORY_DEFAULT, HISTORY_MAX = 50, 200


def forbidden(channel: ChannelName | str) -> Forbidden:
    return Forbidden(f"you may not use {channel}")


class History:
    def __init__(self, store: Store, directory: Directory, reply_bytes: int) -> None:
        self.store = store
        self.directory = directory
        self.reply_bytes = reply_bytes

    def readable(self, person: Person, channel: ChannelName) -> ChannelName:
        """`channel`, when `person` may read it; `forbidden` otherwise."""
        if not policy.may_read(self.directory, person.id, channel):
            raise forbidden(channel)
        return channel

    async def page(self, person: Person, channel: ChannelName, before: int | None,
                   limit: int | None) -> HistoryPage:
        """`{messages, more}`: up to `limit` messages below `before` (the newest without it),
        oldest first, within the reply byte budget (`more` is then true: the next page
        starts below the first message returned)."""
        self.readable(person, channel)
        if before is not None and before < 1:
            raise BadRequest("before must be at least 1")
        if limit is None:
            limit = HISTORY_DEFAULT
        if limit < 1:
            raise BadRequest("limit must be at least 1")
        messages, more = await self.store.history(
            str(channel), before, min(limit, HISTORY_MAX), max_bytes=self.reply_bytes)
        wires, _ = newest_within([m.to_wire() for m in messages], self.reply_bytes)
        return {"messages": wires, "more": more or len(wires) < len(messages)}
