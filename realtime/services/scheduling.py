"""Scheduled posts (issue 12, part B): `publish` with `at` stores the post, invisible and with
no `seq`; at `at` it is published exactly once, whatever the number of gateways and restarts.

Exactly once: each gateway's `run` loop claims the due posts in the store (a compare-and-set
with a lease, `NotificationStore.claim_due`), so a post goes to one gateway at a time; it is
then published through the normal `Publisher` with the idempotency key `scheduled:<id>`,
which the message store dedupes. A gateway that dies between its claim and `mark_published`
leaves the post pending: after the lease another gateway claims it again, and the store
answers the first publication's `seq` instead of storing it twice.

The author must still be allowed to post there at publish time (`Publisher.check` again):
a post whose author left, or whose chat was closed, is dropped (logged with ids only).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Callable

import structlog

from persistence.notification_store import NotificationStore, ScheduledPost
from persistence.store import StoreUnavailable
from realtime.services.notification_rules import NotificationRules
from realtime.services.publishing import Publisher
from school.channels import ChannelName, parse_channel
from school.directory import Directory, Person
from school.errors import Conflict, LiaisonError, NotFound, TooLarge, Unavailable
from school.messages import JSONDict
from school.quiet_hours import DEFAULT_QUIET_HOURS
from school.schedule import parse_at
from school.wire import ScheduledPostWire

log = structlog.get_logger("liaison.scheduled")

LEASE = 30.0  # seconds a claimed post is left to its gateway before another may take it
BATCH = 50  # posts claimed per round
MAX_PENDING = 100  # scheduled posts of one author not yet published


def scheduled_id(author_id: str, channel: str, key: str | None) -> str:
    """The id of a new scheduled post: derived from the author, channel and `key` when a key is
    given (a retried `publish` with the same key schedules nothing new), else random."""
    if key is None:
        return uuid.uuid4().hex
    return hashlib.sha256(f"{author_id}\n{channel}\n{key}".encode()).hexdigest()[:32]


def post_wire(post: ScheduledPost) -> ScheduledPostWire:
    return {"id": post.id, "channel": post.channel, "kind": post.kind, "data": post.data,
            "at": int(post.at * 1000)}


class ScheduledPosts:
    def __init__(self, store: NotificationStore, publisher: Publisher, directory: Directory,
                 rules: NotificationRules, clock: Callable[[], float] = time.time,
                 lease: float = LEASE, reply_bytes: int = 512 * 1024) -> None:
        self.store = store
        self.publisher = publisher
        self.directory = directory
        self.rules = rules
        self.clock = clock
        self.lease = lease
        self.reply_bytes = reply_bytes

    async def timezone_of(self, channel: ChannelName) -> str:
        school = self.directory.school_of_channel(channel)
        rules = await self.rules.quiet_hours(school) if school else DEFAULT_QUIET_HOURS
        return rules.timezone

    async def schedule(self, person: Person, channel: ChannelName, kind: str, data: JSONDict, at: object,
                       key: str | None) -> ScheduledPost:
        """Store a post `person` may publish (`data` already checked) for `at` (ms or ISO 8601)."""
        now = self.clock()
        when = parse_at(at, now, await self.timezone_of(channel))
        await self.publisher.fill(person, channel, data)  # uploads and consent refused now, not at `at`
        post = ScheduledPost(scheduled_id(person.id, str(channel), key), person.id, str(channel), kind, data,
                             when, now)
        retried = key is not None and await self.store.get_scheduled(post.id) is not None
        if not retried and len(await self.store.scheduled_of(person.id)) >= MAX_PENDING:
            raise TooLarge(f"you have {MAX_PENDING} scheduled posts already: publish or cancel some first")
        stored = await self.store.add_scheduled(post)
        if stored.author_id != person.id:  # a hash collision with another author's key: never theirs
            raise Conflict("this key is taken: publish with another key")
        log.info("post_scheduled", scheduled=stored.id, channel=stored.channel, user=person.id, at=stored.at)
        return stored

    async def of(self, person: Person) -> list[ScheduledPostWire]:
        """The person's scheduled posts, soonest first, as many as fit in `reply_bytes`."""
        listed: list[ScheduledPostWire] = []
        size = 0
        for post in await self.store.scheduled_of(person.id):
            wire = post_wire(post)
            size += len(json.dumps(wire, ensure_ascii=False).encode())
            if size > self.reply_bytes and listed:
                break
            listed.append(wire)
        return listed

    async def cancel(self, person: Person, post_id: str) -> None:
        if await self.store.cancel_scheduled(post_id, person.id, self.clock()):
            log.info("scheduled_cancelled", scheduled=post_id, user=person.id)
            return
        post = await self.store.get_scheduled(post_id)
        if post is None or post.author_id != person.id or post.state == "cancelled":
            raise NotFound(f"you have no scheduled post {post_id!r}")
        if post.state == "pending":
            raise Conflict("this post is being published right now: delete it from the channel if needed")
        if post.state == "dropped":
            raise Conflict("this post was not published: you could no longer post there at its time")
        raise Conflict("this post was published already: delete it from the channel if needed")

    # -- publishing what is due -------------------------------------------------------------------

    async def publish_due(self) -> int:
        """Claim the posts due now and publish them; how many were published."""
        count = 0
        for post in await self.store.claim_due(self.clock(), self.lease, BATCH):
            if await self._publish(post):
                count += 1
        return count

    async def _publish(self, post: ScheduledPost) -> bool:
        person = self.directory.person(post.author_id)
        channel = parse_channel(post.channel)
        try:
            if person is None or channel is None:
                raise NotFound("the author or the channel is gone")
            data = self.publisher.check(person, channel, post.kind, post.data)  # still allowed there?
            appended = await self.publisher.publish(person, channel, post.kind, data, post.key)
        except Unavailable:
            raise  # a backend to wait for: the post stays pending, claimed again after the lease
        except LiaisonError as exc:  # no longer allowed, closed chat, consent withdrawn...
            log.warning("scheduled_dropped", scheduled=post.id, channel=post.channel, user=post.author_id,
                        reason=exc.code.wire)
            await self.store.mark_published(post.id, None)
            return False
        await self.store.mark_published(post.id, appended.message.seq)
        log.info("scheduled_published", scheduled=post.id, channel=post.channel, seq=appended.message.seq,
                 attempts=post.attempts, created=appended.created)
        return True

    async def run(self, period: float) -> None:
        """Every `period` seconds, publish what is due (a background task of each gateway)."""
        while True:
            try:
                await self.publish_due()
            except asyncio.CancelledError:
                raise
            except StoreUnavailable as exc:
                log.warning("scheduled_round_failed", error=str(exc))
            except Exception:
                log.exception("scheduled_round_failed")
            await asyncio.sleep(period)
