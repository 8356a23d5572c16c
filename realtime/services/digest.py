"""The e-mail digest sender (issue 12, part B): for people without push or who chose "digest".

Each gateway runs `DigestSender.run`; every round it asks the store for the people whose
digest may go out now and, for each:

- no e-mail address, digest e-mails turned off, or no longer in the directory: their entries
  are dropped (nothing will ever be sent for them);
- inside their school's quiet hours: nothing now, the entries wait for the end of the window;
- else a compare-and-set claim (`claim_digest`) so that one gateway only writes the e-mail;
  the entries are read, those already read (read mark ≥ seq), deleted, or of channels the
  person may no longer read are left out; nothing left: no e-mail; else one e-mail lists the
  messages by channel (counts, titles, authors) with a one-click unsubscribe link, and the
  next digest of that person may go out `period` seconds later at the earliest.

A transient SMTP failure keeps the entries for the next round (after `RETRY_AFTER`).
Logs name ids only.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable
from urllib.parse import quote

import structlog

from auth import policy
from auth.unsubscribe import make_token
from notify.digest_email import DigestGroup, DigestItem, digest_email
from notify.email import Mailer, MailError
from persistence.notification_store import DigestEntry, NotificationStore
from persistence.store import Store, StoreUnavailable
from realtime.services.notification_rules import NotificationRules
from school.channels import ChannelName, ChannelType, parse_channel
from school.directory import Directory, Person
from school.messages import Message
from school.quiet_hours import is_quiet
from school.recipients import place_name

log = structlog.get_logger("liaison.digest")

LEASE = 120.0  # seconds a claimed digest is left to its gateway
RETRY_AFTER = 300.0  # seconds before trying again after a transient SMTP failure
USERS_PER_ROUND = 200  # people read from the store per page
SENDING_AT_ONCE = 8  # e-mails written side by side (each on its own SMTP connection)
UNSUBSCRIBE_PATH = "/api/v1/digest/unsubscribe"
KIND_LABELS = {"announcement": "Annonce", "post": "Publication", "event": "Événement", "homework": "Devoirs",
               "chat": "Message"}


def unsubscribe_link(public_url: str, key: bytes, user_id: str) -> str:
    return f"{public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?token={quote(make_token(key, user_id), safe='')}"


def title_of(message: Message) -> str:
    """What the digest shows of a message: its title, or what kind of message it is."""
    label = KIND_LABELS.get(message.kind, "Message")
    title = message.data.get("title")
    if isinstance(title, str) and title.strip():
        return f"{label} : {title}"
    if message.kind == "homework" and isinstance(message.data.get("due"), str):
        due = str(message.data["due"])
        return f"Devoirs pour le {due[8:10]}/{due[5:7]}"
    return label


class DigestSender:
    def __init__(self, notifications: NotificationStore, messages: Store, directory: Directory,
                 rules: NotificationRules, mailer: Mailer | None, unsubscribe_key: bytes, public_url: str,
                 period: float, clock: Callable[[], float] = time.time) -> None:
        self.notifications = notifications
        self.messages = messages
        self.directory = directory
        self.rules = rules
        self.mailer = mailer
        self.key = unsubscribe_key
        self.public_url = public_url.rstrip("/")
        self.period = period
        self.clock = clock

    async def send_due(self) -> int:
        """One round: the digests that may go out now, page by page (people waiting for their
        school's quiet hours to end never hide the others); how many e-mails were sent."""
        now = self.clock()
        sent = 0
        after = ""
        while page := await self.notifications.digest_users(now, USERS_PER_ROUND, after):
            after = page[-1]
            for start in range(0, len(page), SENDING_AT_ONCE):
                batch = page[start:start + SENDING_AT_ONCE]
                done = await asyncio.gather(*(self._one(user_id, now) for user_id in batch))
                sent += sum(done)
        return sent

    async def _one(self, user_id: str, now: float) -> bool:
        if self.mailer is None:  # no e-mail configured: nothing will ever be sent for them
            await self._drop_all(user_id, now)
            return False
        return await self.send_one(user_id, now)

    async def send_one(self, user_id: str, now: float) -> bool:
        person = self.directory.person(user_id)
        prefs = await self.rules.preferences(user_id, fresh=True)  # an unsubscribe on another gateway counts now
        if person is None or not person.email or not prefs.digest_email:
            await self._drop_all(user_id, now)
            return False
        if is_quiet(await self.rules.quiet_hours(person.school_id), now):
            return False
        if not await self.notifications.claim_digest(user_id, now, LEASE):
            return False  # another gateway has it, or it was sent less than a period ago
        entries = await self.notifications.digest_entries(user_id)
        done = [(e.channel, e.seq) for e in entries]
        groups = await self._groups(person, entries)
        if not groups:
            await self.notifications.finish_digest(user_id, done, now)
            log.info("digest_empty", user=user_id, entries=len(entries))
            return False
        school = self.directory.schools.get(person.school_id)
        mail = digest_email(person.email, school.name if school else "", groups,
                            unsubscribe_link(self.public_url, self.key, user_id), f"{self.public_url}/")
        assert self.mailer is not None
        try:
            await self.mailer.send(mail)
        except MailError as exc:
            log.warning("digest_not_sent", user=user_id, transient=exc.transient, error=str(exc))
            await self.notifications.finish_digest(user_id, [] if exc.transient else done,
                                                   now + RETRY_AFTER if exc.transient else now)
            return False
        await self.notifications.finish_digest(user_id, done, now + self.period)
        log.info("digest_sent", user=user_id, messages=sum(len(g.items) for g in groups), channels=len(groups))
        return True

    async def _drop_all(self, user_id: str, now: float) -> None:
        entries = await self.notifications.digest_entries(user_id)
        await self.notifications.finish_digest(user_id, [(e.channel, e.seq) for e in entries], now)

    async def _groups(self, person: Person, entries: list[DigestEntry]) -> list[DigestGroup]:
        reads = await self.messages.user_read_marks(person.id)
        by_channel: dict[str, list[int]] = defaultdict(list)
        for entry in entries:
            channel = parse_channel(entry.channel)
            if channel is None or not policy.may_read(self.directory, person.id, channel):
                continue
            if entry.seq > reads.get(entry.channel, 0):
                by_channel[entry.channel].append(entry.seq)
        groups = []
        for name, seqs in by_channel.items():
            wanted = set(seqs)
            if max(seqs) - min(seqs) <= 2 * len(seqs) + 50:  # close together: one read
                found = await self.messages.range(name, min(seqs) - 1, max(seqs))
            else:  # far apart: only those
                found = [m for m in [await self.messages.get(name, seq) for seq in sorted(wanted)] if m]
            items = tuple(DigestItem(title_of(m), m.author.name) for m in found
                          if m.seq in wanted and not m.deleted)
            if items:
                channel = parse_channel(name)
                assert channel is not None
                groups.append(DigestGroup(self._label(channel, person), items, self._link(channel)))
        return groups

    def _label(self, channel: ChannelName, person: Person) -> str:
        """The channel as people call it (school.recipients.place_name); a chat names its child."""
        if channel.type is ChannelType.CHAT:
            chat = self.directory.chats.get(channel.id)
            student = self.directory.students.get(chat.student_id) if chat else None
            return f"Conversation — {student.name}" if student else "Conversation"
        return place_name(self.directory, channel)

    def _link(self, channel: ChannelName) -> str:
        if channel.type is ChannelType.CHAT:
            return f"{self.public_url}/#/chat/{quote(str(channel), safe='')}"
        return f"{self.public_url}/"

    async def run(self, period: float) -> None:
        """Every `period` seconds, one round (a background task of each gateway)."""
        while True:
            try:
                await self.send_due()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                log.warning("digest_round_failed", error=str(exc))
            except Exception:
                log.exception("digest_round_failed")
            await asyncio.sleep(period)
