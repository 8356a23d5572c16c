"""The school year and retention, applied (issue 15): frozen classes, purges, leavers erased.

`Retention` keeps each school's years in memory (refreshed from the `PrivacyStore` at each
run, after each change made here and every `refresh_period`), so that the publish path's
guard (`guard`, called by Publisher.check and open_chat) costs a dictionary read.

`run(dry_run)` applies the rules of school/retention.py at the clock's time and returns what
it did (or would do): freeze the years that ended (recording their channels), purge those due
(messages and read marks of those channels older than the year's end, and the sections that
keep data per channel), erase the leavers due, purge the audit log past its retention, and
finish the erasures a crash interrupted. `daily` runs it once a day across every gateway
process: the first to claim the day in the store runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import cast

import structlog

from persistence.privacy_store import Leaver, PrivacyStore, SchoolYear
from persistence.store import Store
from realtime.services.audit import Audit
from realtime.services.erasure import Erasure
from realtime.services.privacy import ChannelData, PersonalData
from school.channels import ChannelName, ChannelType
from school.directory import Directory, Person, Role
from school.errors import Closed, NotFound
from school.retention import (
    DEFAULT_PURGE_MONTHS,
    YearState,
    day_start,
    default_year_end,
    leaver_erase_on,
    linked_to_a_class,
    local_day,
    school_channels,
)

log = structlog.get_logger("liaison.retention")
RUNNER = "retention"
FROZEN = "the school year is over: this class is closed until the director sets the next year's end date"


class Retention:
    def __init__(self, store: Store, privacy: PrivacyStore, directory: Directory, erasure: Erasure,
                 sections: list[PersonalData], audit: Audit, clock: Callable[[], float], runner: str) -> None:
        self.store = store
        self.privacy = privacy
        self.directory = directory
        self.erasure = erasure
        self.sections = sections
        self.audit = audit
        self.clock = clock
        self.runner = runner
        self._years: dict[str, list[SchoolYear]] = {}
        self._schools: dict[str, str] = {}  # person -> school, to know where a removed person was
        self._frozen: dict[tuple[str, date], bool] = {}

    # -- the years --------------------------------------------------------------------------

    async def refresh(self) -> None:
        years: dict[str, list[SchoolYear]] = {}
        for year in await self.privacy.years():
            years.setdefault(year.school_id, []).append(year)
        self._years = years
        self._frozen = {}
        self._schools = {p.id: p.school_id for p in self.directory.people.values()}

    def years_of(self, school_id: str) -> list[YearState]:
        """The school's years, oldest first, the current one last. A year's end is the one the
        director set, or, when none is set ahead, the default of the school's `year` label
        (school/retention.py) while that date is still ahead: the daily run records it then,
        and it freezes the classes when it comes. A label already past when first seen (a
        stale import) freezes nothing: the director sets the end. The next year's label (the
        September import) starts the next year, unfreezing the classes."""
        states = [YearState(y.school_id, date.fromisoformat(y.ends), y.purge_after_months, True, y.purged_at)
                  for y in self._years.get(school_id, [])]
        default = self._default(school_id)
        today = local_day(self.clock())
        if default is not None and all(s.ends <= today for s in states):
            states.append(YearState(school_id, default, DEFAULT_PURGE_MONTHS, False))
        return states

    def _default(self, school_id: str) -> date | None:
        school = self.directory.schools.get(school_id)
        default = default_year_end(school) if school is not None else None
        return default if default is not None and default > local_day(self.clock()) else None

    def current(self, school_id: str) -> YearState | None:
        years = self.years_of(school_id)
        return years[-1] if years else None

    def frozen(self, school_id: str) -> bool:
        """Whether the school's current year is over (kept per day: the publish path asks)."""
        today = local_day(self.clock())
        key = (school_id, today)
        known = self._frozen.get(key)
        if known is None:
            year = self.current(school_id)
            known = self._frozen[key] = year is not None and year.frozen(today)
        return known

    def guard(self, person: Person, channel: ChannelName) -> None:
        """Refuse (`closed`) a message or a chat in a class or chat of a school whose year is over."""
        d = self.directory
        if channel.type is ChannelType.CLASS:
            school = d.classes[channel.id].school_id if channel.id in d.classes else None
        elif channel.type is ChannelType.CHAT:
            school = d.chats[channel.id].school_id if channel.id in d.chats else None
        else:
            return
        if school is not None and self.frozen(school):
            raise Closed(FROZEN)

    async def set_year(self, school_id: str, ends: date, purge_after_months: int, actor: str) -> YearState:
        if school_id not in self.directory.schools:
            raise NotFound(f"there is no school {school_id!r}")
        await self.refresh()
        today = local_day(self.clock())
        for planned in self._years.get(school_id, []):  # the new end replaces the one planned
            ahead = planned.channels is None and date.fromisoformat(planned.ends) > today
            if ahead and planned.ends != ends.isoformat():
                await self.privacy.drop_year(school_id, planned.ends)
        await self.privacy.set_year(SchoolYear(school_id, ends.isoformat(), purge_after_months))
        await self.refresh()
        await self.audit.record(actor, "school_year_set", school_id, school_id,
                                {"ends": ends.isoformat(), "purge_after_months": purge_after_months})
        year = self.current(school_id)
        assert year is not None
        return year

    # -- leavers ------------------------------------------------------------------------------

    def school_of(self, person_id: str) -> str | None:
        """The person's school, or the one they were in when last seen (just removed)."""
        person = self.directory.person(person_id)
        return person.school_id if person is not None else self._schools.get(person_id) or None

    async def people_removed(self, person_ids: list[str]) -> None:
        """Membership removal hook: who left the directory, and when."""
        now = self.clock()
        for person_id in person_ids:
            await self.privacy.record_leaver(Leaver(person_id, self._schools.get(person_id, ""), now))
        self._schools = {p.id: p.school_id for p in self.directory.people.values()}

    # -- what the director sees -------------------------------------------------------------

    async def report(self, school_id: str) -> dict[str, object]:
        if school_id not in self.directory.schools:
            raise NotFound(f"there is no school {school_id!r}")
        await self.refresh()
        today = local_day(self.clock())
        leavers = [lv for lv in await self.privacy.leavers() if lv.school_id == school_id]
        return {
            "school": school_id,
            "today": today.isoformat(),
            "years": [{"ends": y.ends.isoformat(), "recorded": y.recorded,
                       "frozen": y.frozen(today), "purge_after_months": y.purge_after_months,
                       "purge_on": y.purge_on.isoformat(), "purged": y.purged_at is not None}
                      for y in self.years_of(school_id)],
            "classes": len([c for c in self.directory.classes.values() if c.school_id == school_id]),
            "leavers": [{"person": lv.person_id, "left_on": local_day(lv.left_at).isoformat(),
                         "erase_on": leaver_erase_on(lv.left_at).isoformat(),
                         "kept": linked_to_a_class(self.directory, lv.person_id)} for lv in leavers],
        }

    # -- the run ------------------------------------------------------------------------------

    async def run(self, *, dry_run: bool = False) -> list[dict[str, object]]:
        """Apply the rules now; what was done (or would be, with `dry_run`)."""
        await self.refresh()
        actions: list[dict[str, object]] = []
        if not dry_run:
            for person_id in await self.erasure.resume():
                actions.append({"action": "erasure_resumed", "person": person_id})
        today = local_day(self.clock())
        for school_id in sorted(self.directory.schools):
            for year in self.years_of(school_id):
                if not year.recorded and not dry_run:  # the default end, recorded before it comes
                    ends = year.ends.isoformat()
                    await self.privacy.set_year(SchoolYear(school_id, ends, year.purge_after_months))
                actions += await self._year(year, today, dry_run)
        actions += await self._leavers(today, dry_run)
        if not dry_run:
            removed = await self.audit.purge()
            if removed:
                actions.append({"action": "audit_purged", "entries": removed})
            await self.refresh()
        for action in actions:
            log.info("retention_action", dry_run=dry_run, **action)
        return actions

    async def _year(self, year: YearState, today: date, dry_run: bool) -> list[dict[str, object]]:
        if not year.frozen(today) or year.purged_at is not None:
            return []
        school_id, ends = year.school_id, year.ends.isoformat()
        stored = {y.ends: y for y in self._years.get(school_id, [])}.get(ends)
        actions: list[dict[str, object]] = []
        channels = list(stored.channels) if stored is not None and stored.channels is not None else None
        if channels is None:
            channels = school_channels(self.directory, school_id)
            actions.append({"action": "year_frozen", "school": school_id, "ends": ends, "channels": len(channels)})
            if not dry_run:
                if stored is None:
                    await self.privacy.set_year(SchoolYear(school_id, ends, year.purge_after_months))
                await self.privacy.freeze_year(school_id, ends, channels)
        if not year.purge_due(today):
            return actions
        before = day_start(year.ends)
        counts: dict[str, int] = {}
        if dry_run:
            counts["messages"] = await self._older(channels, int(before * 1000))
        else:
            counts["messages"] = await self.store.purge_channels(channels, int(before * 1000))
        for section in self.sections:
            if hasattr(section, "purge_channels"):
                counts[section.name] = await cast(ChannelData, section).purge_channels(channels, before,
                                                                                       dry_run=dry_run)
        actions.append({"action": "year_purged", "school": school_id, "ends": ends, "channels": len(channels),
                        **counts})
        if not dry_run:
            await self.privacy.year_purged(school_id, ends, self.clock())
            await self.audit.record("retention", "year_purged", school_id, school_id,
                                    {"ends": ends, "channels": len(channels), **counts})
        return actions

    async def _older(self, channels: list[str], before_ms: int) -> int:
        """How many messages of these channels a purge before `before_ms` would remove (dry run)."""
        latest = await self.store.latest_seqs(channels)
        count = 0
        for channel, last in latest.items():
            count += sum(1 for m in await self.store.range(channel, 0, last) if m.ts < before_ms)
        return count

    async def _leavers(self, today: date, dry_run: bool) -> list[dict[str, object]]:
        d = self.directory
        actions: list[dict[str, object]] = []
        known = {lv.person_id: lv for lv in await self.privacy.leavers()}
        now = self.clock()
        for person in sorted(d.people.values(), key=lambda p: p.id):  # guardians left with no child in a class
            if person.role is Role.GUARDIAN and person.id not in known and not linked_to_a_class(d, person.id):
                known[person.id] = Leaver(person.id, person.school_id, now)
                if not dry_run:
                    await self.privacy.record_leaver(known[person.id])
        for leaver in known.values():
            if linked_to_a_class(d, leaver.person_id):
                if not dry_run:
                    await self.privacy.forget_leaver(leaver.person_id)
                continue
            if today < leaver_erase_on(leaver.left_at):
                continue
            counts = (await self.erasure.dry_run(leaver.person_id) if dry_run
                      else await self.erasure.erase(leaver.person_id, by="retention",
                                                    school_id=leaver.school_id or None))
            actions.append({"action": "leaver_erased", "person": leaver.person_id, "school": leaver.school_id,
                            **counts})
        return actions

    async def daily(self, period: float = 600.0) -> None:
        """Each `period`, claim today's run (the one process that wins runs it) or else refresh
        the years (a year end set through another gateway applies here within `period`).
        Runs until cancelled."""
        while True:
            try:
                day = local_day(self.clock()).isoformat()
                if await self.privacy.claim_run(RUNNER, day, self.runner, self.clock()):
                    await self.run()
                else:
                    await self.refresh()
            except Exception as exc:  # the next period tries again
                log.warning("retention_run_failed", error=type(exc).__name__)
            await asyncio.sleep(period)
