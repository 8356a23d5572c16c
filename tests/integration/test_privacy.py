"""Children's data (issue 15) on a real gateway runtime, in process, over a real SQLite file:
the export holds a person's data and nothing of other families; the erasure leaves no text,
name, e-mail or phone of the person in the store's files, keeps every other family's history
whole, is pushed live, and finishes after a crash halfway; a school walked through its year
with an injected clock: frozen classes refuse posts, purges remove exactly what is due,
leavers are erased on time (and one linked to a class again is not); the audit log records
each action."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from channels.broker import Broker
from channels.factory import make_broker
from persistence.auth_store import DeviceSession
from persistence.factory import open_auth_store, open_store
from persistence.privacy_store import Leaver
from realtime.config import load_settings
from realtime.process.app import Runtime
from realtime.ws.codec import JSON
from school.channels import ChannelName, ChannelType, chat_channel
from school.directory import Chat, Person, Role, School, SchoolClass, Student, chat_id_for
from school.errors import Closed
from school.retention import day_start
from tests.support.clock import FakeClock
from tests.support.waiting import wait_for

SCHOOL = "ecole-zola"
# distinctive texts, names, addresses and phones of the family erased: scanned for in the files
ZELIE = Person("p-zelie", SCHOOL, "Zélie Quintanar", Role.GUARDIAN, "zelie.quintanar@exemple.test",
               "+33 6 91 82 73 64")
ZELIE_TEXTS = ("Gribouillis turquoise du mardi", "Rendez-vous pour Oscarine jeudi")
ZELIE_FILE = b"%PDF-1.4\n% Carnet de vaccination d'Oscarine Quintanar\n%%EOF\n"
OTHER = Person("p-other", SCHOOL, "Bertrand Ollivier", Role.GUARDIAN, "bertrand.ollivier@exemple.test")
OTHER_TEXT = "Message de la famille Ollivier"
TEACHER = Person("t-roux", SCHOOL, "Mme Roux", Role.TEACHER)
DIRECTOR = Person("d-zola", SCHOOL, "M. Directeur", Role.DIRECTOR)
OSCARINE = Student("s-oscarine", SCHOOL, "ce1", "Oscarine Quintanar", guardians=("p-zelie",))
PAUL = Student("s-paul", SCHOOL, "ce1", "Paul Ollivier", guardians=("p-other",))
ZELIE_CHAT = chat_id_for(OSCARINE.id, TEACHER.id, ZELIE.id)
OTHER_CHAT = chat_id_for(PAUL.id, TEACHER.id, OTHER.id)
T0 = day_start(date(2026, 9, 1)) + 9 * 3600  # a school morning of 2026-2027


def school_items() -> list[School | Person | SchoolClass | Student | Chat]:
    return [School(SCHOOL, "École Émile Zola", "2026-2027"), DIRECTOR, TEACHER, ZELIE, OTHER,
            SchoolClass("ce1", SCHOOL, "CE1", teachers=(TEACHER.id,)), OSCARINE, PAUL,
            Chat(ZELIE_CHAT, SCHOOL, OSCARINE.id, TEACHER.id, ZELIE.id),
            Chat(OTHER_CHAT, SCHOOL, PAUL.id, TEACHER.id, OTHER.id)]


@dataclass
class Gateway:
    runtime: Runtime
    clock: FakeClock
    db: Path


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gateway]:
    db = tmp_path / "liaison.db"
    settings = load_settings({"LIAISON_STORE_URL": f"sqlite:///{db}"}, demo=True)
    store = open_store(settings.store_url)
    auth = open_auth_store(settings.store_url)
    broker: Broker = make_broker(None)
    await store.open()
    await auth.open()
    await store.save_directory(school_items())
    runtime = Runtime(settings, store, broker, await store.load_directory(), auth)
    clock = FakeClock(T0)
    for part in (runtime.retention, runtime.erasure, runtime.audit, runtime.privacy, runtime.publisher):
        object.__setattr__(part, "clock", clock)
    await runtime.start()
    try:
        yield Gateway(runtime, clock, db)
    finally:
        await runtime.close()
        await auth.close()
        await store.close()


class Watcher:
    """A subscriber of the hub, as a live JSON connection is: the pushes it is given."""

    codec = JSON.name
    user_id: str | None = None

    def __init__(self) -> None:
        self.pushes: list[dict[str, Any]] = []

    def deliver(self, channel: str, seq: int | None, frame: bytes, size: int) -> None:
        self.pushes.append(json.loads(frame))

    def abort(self) -> None:
        raise AssertionError("aborted")


async def publish(gw: Gateway, person: Person, channel: str, text: str) -> int:
    parsed = ChannelName(ChannelType(channel.split(":")[0]), channel.split(":", 1)[1])
    kind = "chat" if parsed.type is ChannelType.CHAT else "post"
    data = gw.runtime.publisher.check(person, parsed, kind, {"text": text})
    appended = await gw.runtime.publisher.publish(person, parsed, kind, data, None)
    return appended.message.seq


async def family_scene(gw: Gateway) -> None:
    store = gw.runtime.store
    await publish(gw, TEACHER, "class:ce1", "Bienvenue en CE1")
    await publish(gw, TEACHER, chat_channel(ZELIE_CHAT), "Bonjour madame")
    for text in ZELIE_TEXTS:
        await publish(gw, ZELIE, chat_channel(ZELIE_CHAT), text)
    await publish(gw, OTHER, chat_channel(OTHER_CHAT), OTHER_TEXT)
    await store.mark_read(ZELIE.id, "class:ce1", 1)
    await store.mark_read(OTHER.id, "class:ce1", 1)
    await gw.runtime.auth_store.create_session(DeviceSession("sess-zelie", ZELIE.id, "Téléphone de Zélie", T0, T0),
                                               b"h" * 32)
    spooled = gw.db.parent / "upload.pdf"
    spooled.write_bytes(ZELIE_FILE)
    await gw.runtime.uploads.take(ZELIE, str(spooled), "application/pdf", "vaccins.pdf")
    spooled.unlink()


def archive_of(chunks: list[bytes]) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


async def test_an_export_holds_the_person_and_nothing_of_other_families(gw: Gateway) -> None:
    await family_scene(gw)
    stream = await gw.runtime.privacy.export(ZELIE.id, "api")
    chunks = [chunk async for chunk in stream]
    assert len(chunks) > 2, "the archive is streamed as it is written"
    files = archive_of(chunks)
    assert {"manifest.json", "directory.json", "messages.json", "read_marks.json", "sign_in.json"} <= set(files)
    registered = [s.name for s in gw.runtime.personal_data]  # the other features' sections too
    assert json.loads(files["manifest.json"])["sections"] == registered and len(registered) > 4
    assert {f"{name}.json" for name in registered} <= set(files)
    directory = json.loads(files["directory.json"])
    assert directory["profile"] == {"id": ZELIE.id, "name": ZELIE.name, "role": "guardian", "email": ZELIE.email,
                                    "phone": ZELIE.phone, "school": SCHOOL}
    assert [c["id"] for c in directory["children"]] == [OSCARINE.id]
    assert [c["id"] for c in directory["chats"]] == [ZELIE_CHAT]
    assert [m["data"]["text"] for m in json.loads(files["messages.json"])] == list(ZELIE_TEXTS)
    assert json.loads(files["read_marks.json"]) == {"class:ce1": 1}
    assert [s["id"] for s in json.loads(files["sign_in.json"])["sessions"]] == ["sess-zelie"]
    assert [data for name, data in files.items() if name.startswith("files/")] == [ZELIE_FILE], "her file itself"
    everything = b"".join(files.values())
    for foreign in (OTHER.name, OTHER.email, OTHER_TEXT, PAUL.name, OTHER.id, "Bonjour madame"):
        assert str(foreign).encode() not in everything, foreign
    await gw.runtime.audit.flush()
    [entry] = [e for e in await gw.runtime.audit.entries(SCHOOL) if e.action == "exported"]
    assert (entry.actor, entry.target) == ("api", ZELIE.id)


async def test_an_erasure_leaves_nothing_of_the_person_and_keeps_the_others_history(gw: Gateway) -> None:
    await family_scene(gw)
    runtime, store = gw.runtime, gw.runtime.store
    before_other = await store.range(chat_channel(OTHER_CHAT), 0, 10)
    live = Watcher()
    await runtime.hub.subscribe(chat_channel(ZELIE_CHAT), live)
    stored = [p for p in gw.db.parent.rglob("*") if p.is_file() and ZELIE_FILE in p.read_bytes()]
    assert stored, "her upload is in the blob store before"
    dry = await runtime.privacy.erase(ZELIE.id, "api", dry_run=True)
    assert dry["directory"] == 1 and dry["messages"] == 2 and dry["read_marks"] == 1 and dry["sign_in"] == 1
    assert len(await store.messages_by(ZELIE.id)) == 2, "a dry run changes nothing"
    counts = await runtime.privacy.erase(ZELIE.id, "api", dry_run=False)
    mine = ("directory", "sign_in", "messages", "read_marks")
    assert [counts[k] for k in mine] == [dry[k] for k in mine]
    assert runtime.directory.person(ZELIE.id) is None
    assert ZELIE_CHAT in runtime.directory.chats, "the teacher keeps the chat, her part erased"
    assert OSCARINE.guardians == (ZELIE.id,) and runtime.directory.students[OSCARINE.id].guardians == ()
    chat = await store.range(chat_channel(ZELIE_CHAT), 0, 10)
    assert [m.seq for m in chat] == [1, 2, 3], "her messages keep their seq"
    assert chat[0].data == {"text": "Bonjour madame"}, "the teacher's message stays"
    for m in chat[1:]:
        assert (m.deleted, m.data, m.author.id, m.author.name) == (True, {}, "", "")
    await wait_for(lambda: len(live.pushes) >= 2, what="the erasure's live updates")
    pushed = [(p["push"], p["message"]["seq"], p["message"]["deleted"], p["message"]["from"]["name"])
              for p in live.pushes]
    assert pushed == [("update", 2, True, ""), ("update", 3, True, "")], "pushed live like a delete"
    assert await store.range(chat_channel(OTHER_CHAT), 0, 10) == before_other
    assert await store.user_read_marks(ZELIE.id) == {}
    assert await store.user_read_marks(OTHER.id) == {"class:ce1": 1}
    assert await runtime.auth_store.list_sessions(ZELIE.id, include_ended=True) == []
    again = await runtime.privacy.erase(ZELIE.id, "api", dry_run=False)
    assert sum(again.values()) == 0, "idempotent"
    await runtime.audit.flush()
    assert [e.target for e in await runtime.audit.entries(SCHOOL) if e.action == "erased"] == [ZELIE.id, ZELIE.id]
    await _close(gw)
    files = b"".join(p.read_bytes() for p in gw.db.parent.rglob("*") if p.is_file())  # the blob store too
    needles = (ZELIE.name, ZELIE.email, ZELIE.phone, *ZELIE_TEXTS, "Téléphone de Zélie", "Carnet de vaccination")
    for needle in needles:
        assert str(needle).encode() not in files, needle
    assert OTHER_TEXT.encode() in files and str(OTHER.email).encode() in files


async def _close(gw: Gateway) -> None:
    """Close the runtime's stores now (the fixture's closes are then no-ops): the files are final."""
    await gw.runtime.close()
    await gw.runtime.store.close()
    await gw.runtime.auth_store.close()


async def test_an_erasure_interrupted_halfway_is_finished_by_the_next_run(gw: Gateway) -> None:
    await family_scene(gw)
    runtime = gw.runtime

    def crash(step: str) -> None:
        if step == "messages":
            raise RuntimeError("killed between two steps")

    runtime.erasure.after_step = crash
    with pytest.raises(RuntimeError):
        await runtime.privacy.erase(ZELIE.id, "api", dry_run=False)
    [job] = await runtime.privacy_store.unfinished_erasures()
    assert "directory" in job.steps and "messages" in job.steps and "read_marks" not in job.steps
    assert await runtime.store.user_read_marks(ZELIE.id) == {"class:ce1": 1}, "the steps after the crash wait"
    runtime.erasure.after_step = None
    actions = await runtime.retention.run()
    assert {"action": "erasure_resumed", "person": ZELIE.id} in actions
    assert await runtime.privacy_store.unfinished_erasures() == []
    assert await runtime.store.user_read_marks(ZELIE.id) == {}
    assert await runtime.auth_store.list_sessions(ZELIE.id, include_ended=True) == []
    [done] = await runtime.privacy_store.erasures(ZELIE.id)
    assert done.steps["messages"] == 2 and done.finished_at is not None


async def test_one_school_year_walked_through(gw: Gateway) -> None:
    runtime, store, clock = gw.runtime, gw.runtime.store, gw.clock
    ce1 = ChannelName(ChannelType.CLASS, "ce1")
    await publish(gw, TEACHER, "class:ce1", "Premier jour")
    await runtime.retention.set_year(SCHOOL, date(2027, 7, 3), 12, DIRECTOR.id)
    assert not runtime.retention.frozen(SCHOOL)
    # October: a family leaves (taken out of the directory); another loses its only child's class link
    clock.now = day_start(date(2026, 10, 5)) + 10 * 3600
    await runtime.membership.change([], {"people": [OTHER.id], "students": [PAUL.id], "chats": [OTHER_CHAT]})
    actions = await runtime.retention.run()
    assert not [a for a in actions if a["action"] == "leaver_erased"]
    report = await runtime.retention.report(SCHOOL)
    leavers: Any = report["leavers"]
    assert [(lv["person"], lv["erase_on"]) for lv in leavers] == [(OTHER.id, "2027-01-05")]
    # January: three months after leaving, erased
    clock.now = day_start(date(2027, 1, 5)) + 3600
    actions = await runtime.retention.run()
    assert [a["person"] for a in actions if a["action"] == "leaver_erased"] == [OTHER.id]
    assert await store.messages_by(OTHER.id) == []
    # a guardian linked to a class again is kept
    await runtime.privacy_store.record_leaver(Leaver(ZELIE.id, SCHOOL, day_start(date(2026, 9, 2))))
    actions = await runtime.retention.run()
    assert not [a for a in actions if a["action"] == "leaver_erased"]
    assert runtime.directory.person(ZELIE.id) is not None
    await publish(gw, TEACHER, "class:ce1", "Dernier jour")
    # 3 July 2027: the year is over, the class is frozen
    clock.now = day_start(date(2027, 7, 3)) + 8 * 3600
    with pytest.raises(Closed, match="school year is over"):
        runtime.publisher.check(TEACHER, ce1, "post", {"text": "trop tard"})
    with pytest.raises(Closed):
        runtime.publisher.check(ZELIE, ChannelName(ChannelType.CHAT, ZELIE_CHAT), "chat", {"text": "x"})
    runtime.publisher.check(DIRECTOR, ChannelName(ChannelType.SCHOOL, SCHOOL), "announcement", {"text": "été"})
    actions = await runtime.retention.run()
    assert [a["action"] for a in actions if str(a["action"]).startswith("year")] == ["year_frozen"]
    # the next year starts: the director sets its end, the class opens again; a new year's message
    await runtime.retention.set_year(SCHOOL, date(2028, 7, 1), 12, DIRECTOR.id)
    clock.now = day_start(date(2027, 9, 2)) + 8 * 3600
    new_seq = await publish(gw, TEACHER, "class:ce1", "Rentrée 2027")
    # a day before the purge date: nothing purged (dry run says so too)
    clock.now = day_start(date(2028, 7, 2)) + 8 * 3600
    assert not [a for a in await runtime.retention.run(dry_run=True) if a["action"] == "year_purged"]
    # 3 July 2028: the 2026-2027 year is purged, exactly its messages
    clock.now = day_start(date(2028, 7, 3)) + 8 * 3600
    planned = [a for a in await runtime.retention.run(dry_run=True) if a["action"] == "year_purged"]
    assert [(a["ends"], a["messages"]) for a in planned] == [("2027-07-03", 2)]
    actions = await runtime.retention.run()
    purged = [a for a in actions if a["action"] == "year_purged"]
    assert [a["ends"] for a in purged] == ["2027-07-03"]
    left = await store.range("class:ce1", 0, 100)
    assert [(m.seq, m.deleted, m.data.get("text")) for m in left] == [(2, True, None), (3, False, "Rentrée 2027")]
    assert new_seq == 3
    assert not [a for a in await runtime.retention.run() if a["action"] == "year_purged"], "once"
    await runtime.audit.flush()
    actions_logged = {e.action for e in await runtime.audit.entries(SCHOOL, limit=500)}
    assert {"published", "school_year_set", "erased", "year_purged"} <= actions_logged
