"""Who gets notified of a stored message, and the jobs that tell them (issue 12).

Flow, every step a durable job (persistence/jobs.py), so that a restart loses nothing:

1. `message_stored` (the publisher's hook) enqueues one `fanout` job per message — a single
   insert on the publish path; the work per recipient happens in the workers.
2. `fanout`: the recipients (school/recipients.py: the channel's readers, never the author)
   without a live connection on any gateway (presence); per person their preference
   (`off`: nothing; `digest`, or no way to push: the e-mail digest when they have an address;
   `immediately`: one `push` job per subscription, and one `hook` job for the webhook). Inside
   the school's quiet hours a non-urgent message becomes a `held` job per (channel,
   subscription, end of the window): the window's next messages find that job already there,
   and at its end one push says "3 nouveaux messages en CP A".
3. `push` / `held` / `hook`: at send time, a person now connected, or whose read mark has
   reached the message, is skipped; a subscription of an ended device session is removed.

Idempotency (never two pushes for one message and device): job ids are derived from what they
are about (`push:<channel>:<seq>:<subscription>`), so a fan-out run twice enqueues nothing new;
a `sent` record per (channel, seq, subscription) is written right after the push service
accepted the push and checked before every send. A worker killed between the push service's
2xx and that record (a few milliseconds) would send that one push again after its lease runs
out — we chose that over writing the record first, which would lose the push instead; the
`Topic` header makes a push service replace a not-yet-delivered copy of it anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog

from notify.providers import Notification, NotificationProvider, Outcome, Target
from persistence.jobs import Job, JobQueue, NewJob
from persistence.push_store import PushStore, PushSubscription
from persistence.store import Store
from school.channels import parse_channel
from school.directory import Directory
from school.messages import Message
from school.preferences import Preference
from school.push import backoff, payload, topic
from school.quiet_hours import DEFAULT_QUIET_HOURS, QuietHours, release_at
from school.recipients import is_urgent, place_name, recipients

log = structlog.get_logger("liaison.notifications")

MAX_ATTEMPTS = 8  # tries of one push before it is given up and counted as failed
PUSH_TTL = 24 * 3600  # seconds a push service keeps a push for an offline device
HELD_COUNT_CAP = 99
PENDING_CAP = 10_000  # fan-out jobs noted and not yet handed to the queue (a queue away)
HAND_OVER_GATHER = 0.05  # seconds of noted fan-out jobs handed to the queue in one round trip
HEAL_WINDOW = 600.0  # seconds: a lost fan-out of a message this recent is enqueued by the next one


class Online(Protocol):
    async def users(self, channel: str) -> set[str]: ...


class Rules(Protocol):
    async def quiet_hours(self, school_id: str) -> QuietHours: ...

    async def preference(self, user_id: str, kind: str, urgent: bool) -> Preference: ...

    async def show_content(self, user_id: str) -> bool: ...


class DigestBox(Protocol):
    async def add(self, user_id: str, channel: str, seq: int, kind: str, now: float) -> None: ...

    async def add_many(self, user_ids: list[str], channel: str, seq: int, kind: str, now: float) -> None: ...


class Notifier:
    def __init__(self, directory: Directory, store: Store, push_store: PushStore, queue: JobQueue,
                 online: Callable[[], Online], *, push: NotificationProvider | None = None,
                 hook: NotificationProvider | None = None, rules: Rules | None = None,
                 digests: DigestBox | None = None, session_live: Callable[[str], Awaitable[bool]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.store = store
        self.push_store = push_store
        self.queue = queue
        self.online = online
        self.push = push
        self.hook = hook
        self.rules = rules
        self.digests = digests
        self.session_live = session_live
        self.clock = clock
        self.wake = asyncio.Event()  # set when a job is enqueued here: the local worker looks at once
        self._pending: list[NewJob] = []  # fan-out jobs of stored messages, for `hand_over`
        self._has_pending = asyncio.Event()

    async def close(self) -> None:
        for provider in (self.push, self.hook):
            if provider is not None:
                await provider.close()

    def handlers(self) -> dict[str, Callable[[Job], Awaitable[None]]]:
        return {"fanout": self.fan_out, "push": self.send_push, "held": self.send_push, "hook": self.send_hook}

    # -- 1. the publish path ------------------------------------------------------------------

    async def message_stored(self, message: Message) -> None:
        """Note the message's fan-out job; never waits on the queue's backend. A publish is
        acknowledged once the message is stored: a queue that is slow or away (Redis paused)
        must not hold the acknowledgement, so the jobs are handed over in batches by
        `hand_over` (a background task). What a dead process still held is made up by the
        channel's next message (`_heal_previous`)."""
        if len(self._pending) >= PENDING_CAP:
            log.warning("fanout_not_enqueued", channel=message.channel, seq=message.seq, error="pending_full")
            return
        self._pending.append(NewJob(f"fanout:{message.channel}:{message.seq}", "fanout",
                                    {"channel": message.channel, "seq": message.seq}))
        self._has_pending.set()

    async def hand_over(self, retry: float = 1.0, gather: float = HAND_OVER_GATHER) -> None:
        """Forever: hand the noted fan-out jobs to the queue, many per round trip; keep them
        (bounded by PENDING_CAP) and try again after `retry` seconds while the queue fails.
        The jobs of `gather` seconds go together: handed over as each message came, a busy
        gateway made one queue round trip per message (about 4 % of its CPU over Redis in the
        chat benchmark's profile), for notifications that are not sent within 50 ms anyway."""
        while True:
            await self._has_pending.wait()
            await asyncio.sleep(gather)
            if not await self.flush_pending():
                await asyncio.sleep(retry)

    async def flush_pending(self) -> bool:
        """Hand what is pending to the queue; False (and kept) when the queue failed."""
        self._has_pending.clear()
        batch, self._pending = self._pending, []
        if not batch:
            return True
        try:
            await self.queue.enqueue_many(batch)
        except Exception as exc:
            self._pending = (batch + self._pending)[-PENDING_CAP:]
            self._has_pending.set()
            log.warning("fanout_not_enqueued", jobs=len(batch), error=type(exc).__name__)
            return False
        self.wake.set()
        return True

    # -- 2. fan-out -----------------------------------------------------------------------------

    async def fan_out(self, job: Job) -> None:
        channel_name, seq = str(job.payload["channel"]), int(job.payload["seq"])
        channel = parse_channel(channel_name)
        found = await self.store.range(channel_name, seq - 1, seq)
        if channel is None or not found or found[0].deleted:
            return
        message = found[0]
        await self._heal_previous(channel_name, seq)
        d = self.directory
        who = recipients(d, channel, message.author.id)
        if not who:
            return
        offline = sorted(who - await self.online().users(channel_name))
        urgent = is_urgent(d, channel, message)
        now = self.clock()
        school_id = d.school_of_channel(channel)
        quiet = DEFAULT_QUIET_HOURS
        if self.rules is not None and school_id is not None:
            quiet = await self.rules.quiet_hours(school_id)
        release = None if urgent else release_at(quiet, now)
        subscriptions = await self.push_store.subscriptions_of(offline) if self.push is not None else {}
        # ids only in jobs: the author's name and the text are read at send time (an erased
        # person's name or a deleted message's text never waits in the queue)
        base: dict[str, Any] = {"channel": channel_name, "seq": seq, "kind": message.kind, "urgent": urgent}
        jobs: list[NewJob] = []
        by_email: list[str] = []  # one write for the message's digest entries, not one per family
        held: list[str] = []
        for user_id in offline:
            pref: Preference = "immediately"
            if self.rules is not None:
                pref = await self.rules.preference(user_id, message.kind, urgent)
            if pref == "off":
                continue
            subs = subscriptions.get(user_id, [])
            if pref == "digest" or (not subs and self.hook is None):
                person = d.person(user_id)
                if self.digests is not None and person is not None and person.email:
                    by_email.append(user_id)
                continue
            note = {**base, "user": user_id}
            jobs += self._push_jobs(note, subs, release)
            if self.hook is not None:
                jobs.append(NewJob(f"hook:{channel_name}:{seq}:{user_id}", "hook", note, release or 0.0))
            if release is not None:
                held.append(user_id)
        if by_email and self.digests is not None:
            await self.digests.add_many(by_email, channel_name, seq, message.kind, now)
            await self.push_store.count_many(channel_name, seq, by_email, "email")
        await self.push_store.count_many(channel_name, seq, held, "held")
        if jobs:
            await self.queue.enqueue_many(jobs)
            self.wake.set()
        log.info("fanned_out", channel=channel_name, seq=seq, recipients=len(who), offline=len(offline),
                 jobs=len(jobs), held=release is not None, urgent=urgent)

    async def _heal_previous(self, channel: str, seq: int) -> None:
        """Enqueue the previous message's fan-out if it was never enqueued: a gateway that died
        between storing a message and enqueuing its fan-out (or a queue that was away then)
        is made up for by the channel's next message. Only for a recent one (`HEAL_WINDOW`):
        an older fan-out id may have been forgotten, and re-running it would notify twice."""
        if seq < 2:
            return
        previous = await self.store.range(channel, seq - 2, seq - 1)
        if not previous or self.clock() - previous[0].ts / 1000 > HEAL_WINDOW:
            return
        if await self.queue.enqueue(f"fanout:{channel}:{seq - 1}", "fanout", {"channel": channel, "seq": seq - 1}):
            log.warning("fanout_healed", channel=channel, seq=seq - 1)

    def _push_jobs(self, note: dict[str, Any], subs: list[PushSubscription],
                   release: float | None) -> list[NewJob]:
        channel, seq = note["channel"], note["seq"]
        if release is None:
            return [NewJob(f"push:{channel}:{seq}:{s.id}", "push", {**note, "sub": s.id}) for s in subs]
        # one held job per channel, device and window: the window's later messages find it there
        return [NewJob(f"held:{channel}:{s.id}:{int(release)}", "held", {**note, "sub": s.id, "first": seq},
                       release) for s in subs]

    # -- 3. sending -----------------------------------------------------------------------------

    async def _still_wanted(self, user_id: str, channel: str, seq: int) -> bool:
        """False when the person is connected now, or has read up to `seq`."""
        if user_id in await self.online().users(channel):
            return False
        marks = await self.store.read_marks(channel, [user_id])
        return marks.get(user_id, 0) < seq

    async def _body(self, channel: str, seq: int, user_id: str, urgent: bool, count: int) -> dict[str, Any] | None:
        """The push payload of message `seq`, read now (None: deleted, or the channel is gone)."""
        name = parse_channel(channel)
        found = await self.store.range(channel, seq - 1, seq)
        if name is None or not found or (found[0].deleted and count == 1):
            return None
        message = found[0]
        text = message.data.get("text")
        show = (count == 1 and isinstance(text, str) and self.rules is not None
                and await self.rules.show_content(user_id))
        return payload(channel, seq, message.kind, message.author.name, place_name(self.directory, name),
                       urgent=urgent, text=text if show and isinstance(text, str) else None, count=count)

    async def send_push(self, job: Job) -> None:
        p = job.payload
        channel, seq, user_id = str(p["channel"]), int(p["seq"]), str(p["user"])
        sub = await self.push_store.subscription(str(p["sub"]))
        if sub is None or sub.user_id != user_id or self.push is None:
            return
        if sub.session_id is not None and self.session_live is not None and not await self.session_live(
                sub.session_id):
            await self.push_store.remove_subscription(sub.id)
            return
        count = 1
        if job.kind == "held":  # released: the window's messages in this channel, as one push
            latest = (await self.store.latest_seqs([channel])).get(channel, seq)
            read = (await self.store.read_marks(channel, [user_id])).get(user_id, 0)
            count = min(max(latest - max(read, int(p.get("first", seq)) - 1), 0), HELD_COUNT_CAP)
            seq = max(seq, latest)
            if count == 0:
                return
        if await self.push_store.was_sent(channel, seq, sub.id) or not await self._still_wanted(user_id, channel,
                                                                                                  seq):
            return
        body = await self._body(channel, seq, user_id, bool(p["urgent"]), count)
        if body is None:
            return
        outcome = await self.push.send(Target(user_id, sub.endpoint, sub.p256dh, sub.auth),
                                       Notification(body, bool(p["urgent"]), topic(channel), PUSH_TTL))
        await self._settle(job, outcome, channel, seq, user_id, sub.id)

    async def send_hook(self, job: Job) -> None:
        p = job.payload
        channel, seq, user_id = str(p["channel"]), int(p["seq"]), str(p["user"])
        if self.hook is None or not await self._still_wanted(user_id, channel, seq):
            return
        body = await self._body(channel, seq, user_id, bool(p["urgent"]), 1)
        if body is None:
            return
        outcome = await self.hook.send(Target(user_id), Notification(body, bool(p["urgent"]), topic(channel),
                                                                     PUSH_TTL))
        await self._settle(job, outcome, channel, seq, user_id, None)

    async def _settle(self, job: Job, outcome: Outcome, channel: str, seq: int, user_id: str,
                      subscription_id: str | None) -> None:
        status, retry_after, http_status = outcome.status, outcome.retry_after, outcome.http_status
        if status == "sent":
            if subscription_id is not None:
                await self.push_store.mark_sent(channel, seq, subscription_id)
            await self.push_store.count(channel, seq, user_id, "push")
            if job.kind == "held":
                await self._count_released(channel, int(job.payload.get("first", seq)), seq, user_id)
            log.info("push_sent", channel=channel, seq=seq, user=user_id, subscription=subscription_id)
        elif status == "gone":
            if subscription_id is not None:
                await self.push_store.remove_subscription(subscription_id)
            log.info("push_subscription_gone", user=user_id, subscription=subscription_id)
        elif status == "retry" and job.attempts + 1 < MAX_ATTEMPTS:
            delay = backoff(job.attempts, retry_after)
            log.info("push_retry", channel=channel, seq=seq, user=user_id, subscription=subscription_id,
                     status=http_status, attempts=job.attempts + 1, delay=delay)
            raise RetryLater(delay)
        else:
            await self.push_store.count(channel, seq, user_id, "failed")
            log.warning("push_failed", channel=channel, seq=seq, user=user_id, subscription=subscription_id,
                        status=status, attempts=job.attempts + 1)

    async def _count_released(self, channel: str, first: int, last: int, user_id: str) -> None:
        for seq in range(max(first, last - HELD_COUNT_CAP), last):
            await self.push_store.count(channel, seq, user_id, "push")


class RetryLater(Exception):
    """A job to try again after `delay` seconds (the worker puts it back in the queue)."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.1f}s")
        self.delay = delay
