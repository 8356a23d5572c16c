"""Read marks and receipts: the `read` and `receipts` ops, and the live receipt pushes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from auth import policy
from channels.broker import Event
from persistence.store import Store
from realtime.engine.events import Events
from school.channels import ChannelName, ChannelType, user_channel
from school.directory import Directory, Person
from school.errors import Forbidden
from school.messages import Message
from school.receipts import by_class, family_groups, tells_author
from school.wire import FamilyReads, ReceiptBody, ReceiptsReply

RECEIPT_WINDOW = 100  # receipts pushed for at most this many messages per read
# Told of each forward move of a read mark: (reader, channel, previous mark, new mark).
ReadHook = Callable[[Person, str, int, int], Awaitable[None]]


class Receipts:
    def __init__(self, store: Store, directory: Directory, events: Events) -> None:
        self.store = store
        self.directory = directory
        self.events = events
        self.read_hooks: list[ReadHook] = []  # the board's read times (issue 17)
        # issue 12: the delivery report of one message ({push, email, held, failed}), for staff
        self.delivery: Callable[[str, int], Awaitable[dict[str, int]]] | None = None

    async def mark_read(self, reader: Person, channel: ChannelName, seq: int) -> None:
        """Move `reader`'s read mark in `channel` up to `seq` (never past the channel's newest
        message) and push receipts for the messages read for the first time."""
        name = str(channel)
        latest = (await self.store.latest_seqs([name])).get(name, 0)
        seq = min(seq, latest)  # a read mark never runs ahead of the channel
        if seq < 1:
            return
        previous = await self.store.mark_read(reader.id, name, seq)
        if seq > previous:
            for hook in self.read_hooks:
                await hook(reader, name, previous, seq)
            await self._push(reader, channel, previous, seq)

    async def _push(self, reader: Person, channel: ChannelName, previous: int, seq: int) -> None:
        name = str(channel)
        messages = await self.store.range(name, max(previous, seq - RECEIPT_WINDOW), seq)
        for message in messages:
            if message.deleted or not tells_author(reader, self.directory.person(message.author.id), channel):
                continue
            body: ReceiptBody = {"channel": name, "seq": message.seq, "user": reader.id}
            await self.events.publish(Event(user_channel(message.author.id), "receipt", dict(body)))

    def report(self, person: Person, channel: ChannelName, message: Message,
               marks: dict[str, int]) -> ReceiptsReply:
        """The `receipts` answer for one message, from the guardians' read marks."""
        d = self.directory
        families = family_groups(d, channel)
        guardians = sorted({g for group in families.values() for g in group})
        seen = {g for g in guardians if marks.get(g, 0) >= message.seq}
        per_family: list[FamilyReads] = [
            {"student": student, "read": sorted(g for g in group if g in seen),
             "unread": sorted(g for g in group if g not in seen)}
            for student, group in sorted(families.items())
        ]
        body: ReceiptsReply = {
            "read": sorted(seen),
            "unread": [g for g in guardians if g not in seen],
            "families": per_family,
            "families_read": sum(1 for family in per_family if family["read"]),
            "families_total": len(per_family),
        }
        if channel.type is ChannelType.SCHOOL:
            body["by_class"] = by_class(d, channel.id, seen)
        return body

    async def receipts(self, person: Person, channel: ChannelName, message: Message) -> ReceiptsReply:
        if not policy.may_see_receipts(self.directory, person.id, channel, message.author.id):
            raise Forbidden("receipts are for the author and the school's staff")
        guardians = sorted({g for group in family_groups(self.directory, channel).values() for g in group})
        marks = await self.store.read_marks(str(channel), guardians)
        body = self.report(person, channel, message, marks)
        if self.delivery is not None and person.role.is_staff:
            body["notified"] = await self.delivery(str(channel), message.seq)
        return body
