"""Who may be told what and when (issue 12, part B): quiet hours per school, notification
preferences per person, and the entries of the e-mail digest.

`NotificationRules` is what the notification dispatcher (part A) asks: the school's quiet
hours, a person's effective preference for a message kind, whether the lock screen may show
the text. `Digests.add` records a message for a person's next digest e-mail
(realtime/services/digest.py sends them).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from persistence.notification_store import DigestEntry, NotificationStore
from school.preferences import DEFAULT_PREFERENCES, Preference, Preferences, effective
from school.quiet_hours import DEFAULT_QUIET_HOURS, QuietHours

QUIET_HOURS_TTL = 30.0  # seconds a gateway keeps a school's quiet hours before reading them again
PREFERENCES_TTL = 5.0  # seconds a person's preferences are kept: a fan-out to 2,000 families reads each once
MAX_CACHED_PREFERENCES = 50_000


class NotificationRules:
    def __init__(self, store: NotificationStore, clock: Callable[[], float] = time.time,
                 ttl: float = QUIET_HOURS_TTL) -> None:
        self.store = store
        self.clock = clock
        self.ttl = ttl
        self._quiet: dict[str, tuple[float, QuietHours]] = {}
        self._prefs: dict[str, tuple[float, Preferences]] = {}

    async def quiet_hours(self, school_id: str, *, fresh: bool = False) -> QuietHours:
        """The school's quiet hours (the default 20:00-07:00, weekends, Europe/Paris, when
        never set). Kept `ttl` seconds: a change made on another gateway (or another worker
        process) is seen after that, unless `fresh` (the HTTP routes) reads the store."""
        now = self.clock()
        cached = self._quiet.get(school_id)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        rules = await self.store.get_quiet_hours(school_id) or DEFAULT_QUIET_HOURS
        self._quiet[school_id] = (now + self.ttl, rules)
        return rules

    async def set_quiet_hours(self, school_id: str, rules: QuietHours) -> QuietHours:
        await self.store.set_quiet_hours(school_id, rules)
        self._quiet[school_id] = (self.clock() + self.ttl, rules)
        return rules

    async def preferences(self, user_id: str, *, fresh: bool = False) -> Preferences:
        """The person's preferences (the defaults when never set); kept a few seconds, so that
        one message's fan-out asks the store once per person (`fresh`: read the store)."""
        now = self.clock()
        cached = self._prefs.get(user_id)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        prefs = await self.store.get_preferences(user_id) or DEFAULT_PREFERENCES
        if len(self._prefs) >= MAX_CACHED_PREFERENCES:
            self._prefs.clear()
        self._prefs[user_id] = (now + PREFERENCES_TTL, prefs)
        return prefs

    async def set_preferences(self, user_id: str, prefs: Preferences) -> Preferences:
        await self.store.set_preferences(user_id, prefs)
        self._prefs[user_id] = (self.clock() + PREFERENCES_TTL, prefs)
        return prefs

    async def preference(self, user_id: str, kind: str, urgent: bool) -> Preference:
        """How `user_id` is told of a message of `kind` (`immediately` by default; an urgent
        announcement is never `off`)."""
        return effective((await self.preferences(user_id)).kinds, kind, urgent)

    async def show_content(self, user_id: str) -> bool:
        """Whether the person chose to see message texts on the lock screen (off by default)."""
        return (await self.preferences(user_id)).show_content


class Digests:
    """The entries of the e-mail digest: what each person is to hear of in their next one."""

    def __init__(self, store: NotificationStore) -> None:
        self.store = store

    async def add(self, user_id: str, channel: str, seq: int, kind: str, now: float) -> None:
        """Record message `seq` of `channel` for `user_id`'s next digest (twice = once)."""
        await self.store.add_digest(DigestEntry(user_id, channel, seq, kind, now))

    async def add_many(self, user_ids: list[str], channel: str, seq: int, kind: str, now: float) -> None:
        """`add` for each person, in one write."""
        await self.store.add_digests([DigestEntry(u, channel, seq, kind, now) for u in user_ids])


class NotificationData:
    """The privacy section `notifications` (issue 15): a person's notification preferences, the
    entries waiting for their digest and their scheduled posts not yet published."""

    name = "notifications"

    def __init__(self, store: NotificationStore) -> None:
        self.store = store

    async def export(self, person_id: str) -> object:
        prefs = await self.store.get_preferences(person_id)
        return {
            "preferences": None if prefs is None else prefs.to_wire(),
            "digest_entries": [{"channel": e.channel, "seq": e.seq, "kind": e.kind, "added_at": e.added_at}
                               for e in await self.store.digest_entries(person_id)],
            "scheduled_posts": [p.to_wire() for p in await self.store.scheduled_of(person_id)],
        }

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        return await self.store.erase_person(person_id, dry_run=dry_run)
