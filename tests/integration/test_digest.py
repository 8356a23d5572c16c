"""The e-mail digest (issue 12): what arrived, minus what was read, at most one e-mail per
period per person, never inside the school's quiet hours, one sender across gateways, and a
working one-click unsubscribe link. A real SMTP server (aiosmtpd), real SQLite files, an
injected clock for the sender; the link is followed on a real `liaison serve` on the same store.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from auth.unsubscribe import unsubscribe_key
from notify.email import SmtpMailer
from persistence.notification_sqlite import SQLiteNotificationStore
from persistence.sqlite import SQLiteStore
from realtime.config import DEMO_SECRET
from realtime.services.digest import DigestSender
from realtime.services.notification_rules import Digests, NotificationRules
from school.demo import demo_school
from school.directory import Directory, Person, School
from school.messages import Author, Draft
from school.quiet_hours import QuietHours
from tests.integration.conftest import FAST, token
from tests.support.clock import FakeClock
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.smtp_server import SmtpServer, text_of
from tests.support.waiting import UNIT

PARIS = ZoneInfo("Europe/Paris")
CLAIRE, CLAIRE_MAIL = "p-lea-mere", "claire.petit@example.fr"
PERIOD = 1800.0
TEACHER = Author("t-martin", "Mme Martin", "teacher")
DIRECTOR = Author("d-bernard", "M. Bernard", "director")


def paris(*fields: int) -> float:
    year, month, day, hour, minute = fields
    return datetime(year, month, day, hour, minute, tzinfo=PARIS).timestamp()


@dataclass
class World:
    clock: FakeClock
    messages: SQLiteStore
    notes: SQLiteNotificationStore
    digests: Digests
    rules: NotificationRules
    smtp: SmtpServer
    gateway: GatewayProcess
    directory: Directory

    def sender(self) -> DigestSender:
        mailer = SmtpMailer(self.smtp.url(), "liaison@ecole.example")
        return DigestSender(self.notes, self.messages, self.directory, self.rules, mailer,
                            unsubscribe_key(DEMO_SECRET.encode()), self.gateway.http, PERIOD, self.clock)

    async def post(self, channel: str, author: Author, kind: str, data: dict[str, Any]) -> int:
        draft = Draft(channel, f"m-{channel}-{len(self.smtp.received)}-{data}", int(self.clock() * 1000), author,
                      kind, data)
        return (await self.messages.append(draft)).message.seq

    async def arrived(self, user: str, channel: str, seq: int, kind: str) -> None:
        await self.digests.add(user, channel, seq, kind, self.clock())  # what the dispatcher does


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
async def world(tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[World]:
    path = tmp_path / "liaison.db"
    messages = SQLiteStore(str(path))
    await messages.open()
    await messages.save_directory(demo_school())
    gateway = start_gateway(tmp_path, env={**FAST, "LIAISON_STORE_URL": f"sqlite:///{path}",
                                           "LIAISON_DIGEST_POLL": "3600"})  # its own sender sleeps
    notes = SQLiteNotificationStore(str(path))
    await notes.open()
    clock = FakeClock(paris(2026, 12, 1, 10, 0))  # a Tuesday morning
    try:
        yield World(clock, messages, notes, Digests(notes), NotificationRules(notes, clock), smtp, gateway,
                    await messages.load_directory())
    finally:
        gateway.stop()
        await notes.close()
        await messages.close()


def mails_to(smtp: SmtpServer, address: str) -> list[Any]:
    return [r.message for r in smtp.received if address in r.rcpt_tos]


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=UNIT) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def test_a_digest_collects_what_arrived_and_leaves_out_what_was_read(world: World) -> None:
    sender = world.sender()
    first = await world.post("class:cp-a", TEACHER, "post", {"title": "Sortie au musée", "text": "jeudi"})
    second = await world.post("class:cp-a", TEACHER, "homework", {"text": "page 12", "due": "2026-12-03"})
    third = await world.post("class:cp-a", TEACHER, "post", {"title": "Piscine", "text": "vendredi"})
    announcement = await world.post("school:ecole-jaures", DIRECTOR, "announcement", {"text": "Kermesse"})
    for seq, kind in ((first, "post"), (second, "homework"), (third, "post")):
        await world.arrived(CLAIRE, "class:cp-a", seq, kind)
    await world.arrived(CLAIRE, "school:ecole-jaures", announcement, "announcement")
    await world.messages.mark_read(CLAIRE, "class:cp-a", first)  # read in the app before the digest

    assert await sender.send_due() == 1
    (mail,) = mails_to(world.smtp, CLAIRE_MAIL)
    text = text_of(mail)
    assert mail["Subject"] == "Liaison : 3 nouveaux messages — École Jean Jaurès"
    assert "CP A — 2 nouveaux messages" in text and "École Jean Jaurès — 1 nouveau message" in text
    assert "Publication : Piscine (Mme Martin)" in text and "Devoirs pour le 03/12 (Mme Martin)" in text
    assert "Annonce (M. Bernard)" in text
    assert "Sortie au musée" not in text  # read already
    assert "Piscine" in text_of(mail, "html")
    unsubscribe = mail["List-Unsubscribe"]
    base = re.escape(world.gateway.http)
    assert re.fullmatch(rf"<{base}/api/v1/digest/unsubscribe\?token=[\w.%-]+>", unsubscribe)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe[1:-1] in text and unsubscribe[1:-1] in text_of(mail, "html").replace("&amp;", "&")
    assert await world.notes.digest_entries(CLAIRE) == []

    # at most one e-mail per period: what arrives next waits for the period's end
    fourth = await world.post("class:cp-a", TEACHER, "post", {"text": "encore"})
    await world.arrived(CLAIRE, "class:cp-a", fourth, "post")
    world.clock.advance(PERIOD - 1)
    assert await sender.send_due() == 0
    world.clock.advance(1)
    assert await sender.send_due() == 1
    later = mails_to(world.smtp, CLAIRE_MAIL)[1]
    assert "CP A — 1 nouveau message" in text_of(later) and "Piscine" not in text_of(later)

    # nothing left to say (read meanwhile): no e-mail, and the entries are gone
    fifth = await world.post("class:cp-a", TEACHER, "post", {"text": "lu"})
    await world.arrived(CLAIRE, "class:cp-a", fifth, "post")
    await world.messages.mark_read(CLAIRE, "class:cp-a", fifth)
    world.clock.advance(PERIOD)
    assert await sender.send_due() == 0
    assert len(mails_to(world.smtp, CLAIRE_MAIL)) == 2
    assert await world.notes.digest_entries(CLAIRE) == []
    # a deleted message is left out too, and nobody without an address is written to
    sixth = await world.post("class:cp-a", TEACHER, "post", {"text": "supprimé"})
    await world.messages.delete("class:cp-a", sixth, int(world.clock() * 1000))
    await world.arrived(CLAIRE, "class:cp-a", sixth, "post")
    world.clock.advance(PERIOD)
    assert await sender.send_due() == 0 and len(world.smtp.received) == 2


async def test_no_digest_inside_the_quiet_hours(world: World) -> None:
    sender = world.sender()
    world.clock.now = paris(2026, 12, 1, 21, 0)  # Tuesday evening
    seq = await world.post("class:cp-a", TEACHER, "post", {"title": "Soir", "text": "x"})
    await world.arrived(CLAIRE, "class:cp-a", seq, "post")
    assert await sender.send_due() == 0
    world.clock.now = paris(2026, 12, 2, 6, 59)
    assert await sender.send_due() == 0
    world.clock.now = paris(2026, 12, 2, 7, 0)  # the window ends
    assert await sender.send_due() == 1
    # a school with no quiet hours at all gets its digest on a Saturday night
    await world.rules.set_quiet_hours("ecole-jaures", QuietHours(start=QuietHours().end, weekends=False))
    world.clock.now = paris(2026, 12, 5, 23, 0)
    seq = await world.post("class:cp-a", TEACHER, "post", {"title": "Samedi", "text": "x"})
    await world.arrived(CLAIRE, "class:cp-a", seq, "post")
    assert await sender.send_due() == 1
    assert [m["Subject"] for m in mails_to(world.smtp, CLAIRE_MAIL)] == [
        "Liaison : 1 nouveau message — École Jean Jaurès"] * 2


async def test_two_gateways_send_one_digest(world: World) -> None:
    one, two = world.sender(), world.sender()
    other_notes = SQLiteNotificationStore(world.notes.path)  # the second gateway's own connection
    await other_notes.open()
    try:
        two.notifications = other_notes
        for user in ("p-lea-mere", "p-lea-pere", "p-durand"):
            seq = await world.post("class:cp-a", TEACHER, "post", {"title": f"Pour {user}", "text": "x"})
            await world.arrived(user, "class:cp-a", seq, "post")
        sent = await asyncio.gather(one.send_due(), two.send_due())
        assert sum(sent) == 3
        assert sorted(r.rcpt_tos[0] for r in world.smtp.received) == [
            "claire.petit@example.fr", "julien.petit@example.fr", "sophie.durand@example.fr"]
    finally:
        await other_notes.close()


async def test_the_unsubscribe_link_turns_the_digest_off(world: World) -> None:
    sender = world.sender()
    seq = await world.post("class:cp-a", TEACHER, "post", {"title": "Sortie", "text": "x"})
    await world.arrived(CLAIRE, "class:cp-a", seq, "post")
    assert await sender.send_due() == 1
    (mail,) = mails_to(world.smtp, CLAIRE_MAIL)
    link = str(mail["List-Unsubscribe"])[1:-1]

    status, page = await asyncio.to_thread(http, "GET", link)  # a mail scanner following the link
    assert status == 200 and '<form method="post"' in page and "Me désinscrire" in page
    prefs_url = world.gateway.http + "/api/v1/me/notification-preferences"
    auth = {"Authorization": f"Bearer {token(CLAIRE)}"}
    status, body = await asyncio.to_thread(http, "GET", prefs_url, None, auth)
    assert status == 200 and json.loads(body)["digest_email"] is True  # a GET changes nothing

    forged = re.sub(r"token=[^&]+", "token=" + "cC1sZWEtcGVyZQ.AAAAAAAAAAAAAAAAAAAAAA", link)
    status, page = await asyncio.to_thread(http, "POST", forged, b"List-Unsubscribe=One-Click")
    assert status == 400 and "pas valide" in page

    status, page = await asyncio.to_thread(  # the mail client's one-click POST (RFC 8058)
        http, "POST", link, b"List-Unsubscribe=One-Click", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200 and "Vous ne recevrez plus" in page
    status, body = await asyncio.to_thread(http, "GET", prefs_url, None, auth)
    assert json.loads(body)["digest_email"] is False
    status, body = await asyncio.to_thread(http, "GET", world.gateway.http +
                                           "/api/v1/me/notification-preferences", None,
                                           {"Authorization": f"Bearer {token('p-lea-pere')}"})
    assert json.loads(body)["digest_email"] is True  # nobody else's

    world.clock.advance(PERIOD)
    seq = await world.post("class:cp-a", TEACHER, "post", {"title": "Après", "text": "x"})
    await world.arrived(CLAIRE, "class:cp-a", seq, "post")
    assert await sender.send_due() == 0
    assert len(mails_to(world.smtp, CLAIRE_MAIL)) == 1
    assert await world.notes.digest_entries(CLAIRE) == []  # dropped, not piling up


async def test_without_e_mail_nothing_piles_up(world: World) -> None:
    sender = world.sender()
    sender.mailer = None  # no LIAISON_SMTP_URL
    seq = await world.post("class:cp-a", TEACHER, "post", {"title": "Sans e-mail", "text": "x"})
    await world.arrived(CLAIRE, "class:cp-a", seq, "post")
    assert await sender.send_due() == 0
    assert await world.notes.digest_entries(CLAIRE) == [] and world.smtp.received == []


async def test_people_waiting_for_their_quiet_hours_never_hide_the_others(world: World,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("realtime.services.digest.USERS_PER_ROUND", 2)
    other = QuietHours(timezone="Pacific/Auckland")  # 22:00 there: quiet
    world.directory.put(School("ecole-loin", "École lointaine", "2026-2027"))
    role = world.directory.people["p-adam"].role
    for i in range(5):  # five people of a school in its quiet hours, listed before Claire
        world.directory.put(Person(f"a-far-{i}", "ecole-loin", f"Loin {i}", role, f"loin{i}@example.fr"))
    await world.rules.set_quiet_hours("ecole-loin", other)
    seq = await world.post("class:cp-a", TEACHER, "post", {"title": "Pour Claire", "text": "x"})
    for i in range(5):
        await world.arrived(f"a-far-{i}", "class:cp-a", seq, "post")
    await world.arrived(CLAIRE, "class:cp-a", seq, "post")
    assert await world.sender().send_due() == 1
    assert [r.rcpt_tos for r in world.smtp.received] == [(CLAIRE_MAIL,)]
