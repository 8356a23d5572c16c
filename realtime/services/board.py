"""The director's board and the teacher's view of their class (issue 17): reach per class and
for the school, the lists to phone, the school at a glance, and the e-mail reminder of an
announcement. The figures are school/board.py's, from a fixed handful of batched reads per
screen (whatever the school's size): who ever signed in and who has a live device
(`AuthStore`), who read when (`BoardStore`), the newest posts and every guardian's read marks
(`Store.recent_messages`, `Store.read_marks_many`).

Who sees what: a director, their school; a teacher, the classes they teach; a guardian,
nothing (403) — the figures say how families read, and one family never learns of another's.
The admin API (the API key) sees any school.

`note_read` is called by the receipts service on each forward move of a guardian's read mark:
it logs the move with its time, which the read marks alone do not keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import structlog

from notify.board_email import reminder_email
from notify.email import Mailer, MailError
from persistence.auth_store import AuthStore
from persistence.board_store import BoardStore, ReadMove
from persistence.push_store import PushStore
from persistence.store import Store, StoreUnavailable
from realtime.services.audit import Audit
from school import board as rules
from school.board_csv import families_csv
from school.channels import ChannelName, ChannelType
from school.directory import Directory, Person, Role, SchoolClass
from school.errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from school.quiet_hours import QuietHours, release_at, zone

log = structlog.get_logger("liaison.board")

REMIND_EVERY: Final = 86_400.0  # one reminder per announcement per day
RETENTION: Final = 35 * 86_400.0  # read times kept: the 30-day inactivity and the week's first reads
PURGE_EVERY: Final = 3_600.0
WEEK_LIMIT: Final = 500  # posts of a week read per class, at most
PARALLEL: Final = 4
MAX_PENDING: Final = 100_000  # reads noted and not yet written, at most (about 10 MB)

# Who among some guardians can be told of a message on a device. The board counts a guardian
# as notifiable when one of these says so, or when they have an e-mail address. Registered:
# live device sessions (here) and push subscriptions (`push_subscribers`, by the Runtime).
ReachableBy = Callable[[Iterable[str]], Awaitable[set[str]]]


def push_subscribers(push_store: PushStore) -> ReachableBy:
    """Who among some people has a Web Push subscription: the board's push hook."""

    async def subscribed(user_ids: Iterable[str]) -> set[str]:
        found = await push_store.subscriptions_of(list(user_ids))
        return {user for user, subscriptions in found.items() if subscriptions}

    return subscribed


class Board:
    def __init__(self, directory: Directory, store: Store, auth_store: AuthStore, board_store: BoardStore,
                 mailer: Mailer | None, public_url: str, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.store = store
        self.auth_store = auth_store
        self.board_store = board_store
        self.mailer = mailer
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.reachable_by: list[ReachableBy] = [auth_store.with_live_sessions]
        self.audit: Audit | None = None
        # the school's quiet hours (issue 12's NotificationRules.quiet_hours): no reminder then
        self.quiet_hours: Callable[[str], Awaitable[QuietHours]] | None = None
        self._purged_at = 0.0
        self._pending: list[ReadMove] = []
        self._flushing = asyncio.Lock()

    # -- who may see what -----------------------------------------------------------------------

    def school_of(self, person: Person | None, school_id: str) -> str:
        """The school, when `person` (None: the API key) may see its board: its directors."""
        if school_id not in self.directory.schools:
            raise NotFound(f"there is no school {school_id!r}")
        if person is not None and not self.directory.is_director(person.id, school_id):
            raise Forbidden("the school's board is for its directors")
        return school_id

    def class_of(self, person: Person | None, class_id: str) -> SchoolClass:
        """The class, when `person` may see its figures: its teachers and the school's directors."""
        klass = self.directory.classes.get(class_id)
        if klass is None:
            raise NotFound(f"there is no class {class_id!r}")
        if person is not None and not (self.directory.teaches(person.id, class_id)
                                       or self.directory.is_director(person.id, klass.school_id)):
            raise Forbidden("a class's figures are for its teachers and the school's directors")
        return klass

    # -- read times -----------------------------------------------------------------------------

    async def note_read(self, reader: Person, channel: str, previous: int, seq: int) -> None:
        """Note a guardian's read (never a staff member's: the board is about families). It is
        kept in memory and written with the others of the moment (`flush`, every second and
        before each board read): a `read` never waits for this write."""
        if reader.role is not Role.GUARDIAN or seq <= previous:
            return
        if len(self._pending) >= MAX_PENDING:  # the store has been away for long: keep the newest
            del self._pending[: len(self._pending) // 2]
            log.warning("read_times_dropped", kept=len(self._pending))
        self._pending.append(ReadMove(reader.id, channel, previous, seq, self.clock()))

    async def flush(self) -> None:
        """Write the reads noted so far in one batch, and purge the old ones once an hour. A
        store that cannot take them is logged; they stay for the next flush."""
        async with self._flushing:
            moves, self._pending = self._pending, []
            try:
                await self.board_store.record_reads(moves)
                now = self.clock()
                if now - self._purged_at > PURGE_EVERY:
                    self._purged_at = now
                    await self.board_store.purge(now - RETENTION)
            except StoreUnavailable as exc:
                self._pending[:0] = moves[-MAX_PENDING:]
                log.warning("read_times_not_kept", reads=len(moves), error=str(exc))

    async def flush_every(self, period: float) -> None:
        """The background task of the Runtime: `flush` every `period` seconds, and at the end."""
        try:
            while True:
                await asyncio.sleep(period)
                await self.flush()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.flush())

    # -- the figures ----------------------------------------------------------------------------

    async def _facts(self, classes: Sequence[SchoolClass], school_id: str | None) -> rules.Facts:
        await self.flush()  # this gateway's latest reads count at once
        d = self.directory
        guardians = rules.guardians_of(rules.families_of(d, [c.id for c in classes]))
        class_channels = [str(ChannelName(ChannelType.CLASS, c.id)) for c in classes]
        channels = list(class_channels)
        if school_id is not None:  # its announcements (the newest LAST_POSTS)
            channels.append(str(ChannelName(ChannelType.SCHOOL, school_id)))
            guardians = sorted(set(guardians) | d.guardians_of_school(school_id))
        now = self.clock()
        week_start = int((now - rules.WEEK_SECONDS) * 1000)
        signed_in, last_read, marks, recent, week = await asyncio.gather(
            self.auth_store.first_sign_ins(guardians),
            self.board_store.last_reads(guardians),
            self.store.read_marks_many(channels, guardians),
            self.store.recent_messages(channels, rules.LAST_POSTS),
            self.store.recent_times(class_channels, WEEK_LIMIT, since_ts=week_start),
        )
        reachable: set[str] = set()
        for found in await asyncio.gather(*(who(guardians) for who in self.reachable_by)):
            reachable |= found
        firsts = await self.board_store.first_reads(  # the classes' posts (announcements: no delay shown)
            {c: [seq for seq, _ in week[c]] for c in class_channels}, guardians)
        return rules.Facts(now=now, signed_in=set(signed_in), reachable=reachable,
                           last_read=last_read, marks=marks, recent=recent, week=week, first_reads=firsts)

    async def reach(self, school_id: str) -> dict[str, Any]:
        """Per class and for the school: the admin API's `GET .../schools/{id}/reach`."""
        self.school_of(None, school_id)
        classes = rules.classes_of_school(self.directory, school_id)
        facts = await self._facts(classes, None)
        figures = [rules.class_figures(self.directory, c, facts) for c in classes]
        rows = self._rows(classes, facts)
        return {"school": school_id, "classes": figures, "totals": rules.totals(figures, rows)}

    async def school_board(self, person: Person | None, school_id: str) -> dict[str, Any]:
        """The school at a glance, for a director: reach and the week per class, the school's
        figures, the announcements still unread by some families, and the lists."""
        self.school_of(person, school_id)
        d = self.directory
        classes = rules.classes_of_school(d, school_id)
        facts = await self._facts(classes, school_id)
        figures = [rules.class_figures(d, c, facts) for c in classes]
        rows = self._rows(classes, facts)
        delays = [f["first_read_median_seconds"] for f in figures if f["first_read_median_seconds"] is not None]
        school_totals = rules.totals(figures, rows) | {"first_read_median_seconds": rules.median(delays)}
        return {"school": school_id, "name": d.schools[school_id].name, "now": facts.now,
                "classes": figures, "totals": school_totals,
                "announcements": rules.announcements(d, school_id, facts),
                "families": [r for r in rows if any(rules.in_list(r, name) for name in rules.LISTS)]}

    async def class_board(self, person: Person | None, class_id: str) -> dict[str, Any]:
        """A teacher's view of one class: the same figures, its lists."""
        klass = self.class_of(person, class_id)
        facts = await self._facts([klass], None)
        rows = self._rows([klass], facts)
        return {"class": klass.id, "name": klass.name, "school": klass.school_id, "now": facts.now,
                "figures": rules.class_figures(self.directory, klass, facts),
                "families": [r for r in rows if any(rules.in_list(r, name) for name in rules.LISTS)]}

    def _rows(self, classes: Sequence[SchoolClass], facts: rules.Facts) -> list[dict[str, Any]]:
        d = self.directory
        return [rules.family_row(d, s, facts) for s in rules.families_of(d, [c.id for c in classes])]

    async def csv(self, person: Person | None, *, school_id: str | None = None, class_id: str | None = None,
                  list_name: str | None = None) -> bytes:
        """A list of families (`list_name`, None: every family) of a school or one class, as CSV."""
        if list_name is not None and list_name not in rules.LISTS:
            raise BadRequest(f"list must be one of {', '.join(rules.LISTS)} (or left out for every family)")
        if class_id is not None:
            classes = [self.class_of(person, class_id)]
        else:
            assert school_id is not None
            self.school_of(person, school_id)
            classes = rules.classes_of_school(self.directory, school_id)
        facts = await self._facts(classes, None)
        return families_csv(self._rows(classes, facts), list_name)

    # -- reminders --------------------------------------------------------------------------------

    async def remind(self, person: Person | None, channel: ChannelName, seq: int) -> dict[str, Any]:
        """E-mail the guardians of the families that have not seen a message, at most once a day
        per message (across gateways), never in the school's quiet hours unless it is urgent. A
        school announcement: its directors; a class post: its teachers and the directors."""
        d = self.directory
        if channel.type is ChannelType.SCHOOL:
            school_id = self.school_of(person, channel.id)
            students = [s for s in d.students.values() if s.school_id == school_id and s.guardians]
        elif channel.type is ChannelType.CLASS:
            klass = self.class_of(person, channel.id)
            school_id = klass.school_id
            students = rules.families_of(d, [klass.id])
        else:
            raise BadRequest("reminders are for school announcements and class posts")
        message = await self.store.get(str(channel), seq)
        if message is None or message.deleted:
            raise NotFound(f"there is no message {seq} in {channel}")
        mailer = self.mailer
        if mailer is None:
            raise Unavailable("e-mail is not configured: set LIAISON_SMTP_URL and LIAISON_SMTP_FROM, and restart")
        now = self.clock()
        if self.quiet_hours is not None and not message.data.get("urgent"):
            quiet = await self.quiet_hours(school_id)
            until = release_at(quiet, now)
            if until is not None:
                local = datetime.fromtimestamp(until, zone(quiet.timezone)).strftime("%Y-%m-%d %H:%M")
                raise Conflict(f"these are the school's quiet hours: no e-mail to families until {local}"
                               f" ({quiet.timezone}); send the reminder then", reason="quiet_hours",
                               retry_at=round(until))
        guardians = rules.guardians_of(students)
        marks = (await self.store.read_marks_many([str(channel)], guardians))[str(channel)]
        unread = rules.unread_guardians(students, marks, seq)
        addressed = [p for p in (d.people.get(g) for g in unread) if p is not None and p.email]
        report: dict[str, Any] = {"channel": str(channel), "seq": seq,
                                  "families_unread": len(rules.families_unread(students, marks, seq)),
                                  "sent": 0, "failed": 0, "no_email": len(unread) - len(addressed)}
        if not addressed:
            return report  # nobody to write to: no reminder is used up
        earlier = await self.board_store.claim_reminder(str(channel), seq, now, REMIND_EVERY)
        if earlier is not None:
            hours = max(1, round((earlier + REMIND_EVERY - now) / 3600))
            raise Conflict(f"the unread families were already reminded of this message less than a day ago;"
                           f" try again in about {hours} h", reason="reminded_today",
                           retry_at=round(earlier + REMIND_EVERY))
        school = d.schools[school_id].name
        title = rules.post_title(message)
        link = f"{self.public_url}/"
        gate = asyncio.Semaphore(PARALLEL)

        async def send(to: str) -> bool:
            async with gate:
                try:
                    await mailer.send(reminder_email(to, school, title, link))
                except MailError as exc:
                    log.warning("reminder_not_sent", channel=str(channel), seq=seq, transient=exc.transient)
                    return False
            return True

        results = await asyncio.gather(*(send(str(p.email)) for p in addressed))
        report["sent"], report["failed"] = sum(results), len(results) - sum(results)
        if not report["sent"]:  # none went out (the mail server is down): a retry may go at once
            await self.board_store.release_reminder(str(channel), seq, now)
        log.info("reminder_sent", channel=str(channel), seq=seq, sent=report["sent"], failed=report["failed"])
        if self.audit is not None:
            await self.audit.record(person.id if person else "api-key", "board.remind", f"{channel}#{seq}",
                                    school_id, {"sent": report["sent"]})
        return report



class ReadTimes:
    """The board's personal data (realtime/services/privacy.py): when a guardian read, per channel."""

    name = "read_times"

    def __init__(self, board_store: BoardStore) -> None:
        self.board_store = board_store

    async def export(self, person_id: str) -> object:
        return [{"channel": m.channel, "from": m.after, "to": m.upto, "at": m.at}
                for m in await self.board_store.reads_of(person_id)]

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        if dry_run:
            return len(await self.board_store.reads_of(person_id))
        return await self.board_store.forget_user(person_id)
