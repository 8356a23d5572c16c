"""When pushes go out, on an injected clock (issue 12): a post at 21:00 on a Tuesday is pushed
at 07:00 on Wednesday, one on Saturday at 07:00 on Monday, an urgent announcement from the
director at once; the window's posts in one channel arrive as one push ("2 nouveaux messages
en CM2 B"); a person who read them meanwhile gets nothing.

Real parts, in process: the SQLite stores in `tmp_path`, the job queue's table, the
notification rules (part B) and the local push service that checks VAPID and decrypts; the
worker is run round by round (`JobWorker.run_once`) on a `FakeClock`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from channels.presence_reader import NobodyOnline
from notify.webhook import WebhookProvider
from notify.webpush import WebPushProvider, load_vapid, new_vapid_pem
from persistence.factory import open_notification_store
from persistence.jobs_sqlite import SQLiteJobQueue
from persistence.push_sqlite import SQLitePushStore
from persistence.push_store import PushSubscription
from persistence.sqlite import SQLiteStore
from realtime.services.job_worker import JobWorker
from realtime.services.notification_rules import Digests, NotificationRules
from realtime.services.notifications import Notifier
from school.demo import demo_school
from school.directory import Directory
from school.messages import Author, Draft, Message
from school.preferences import Preferences
from tests.support.clock import FakeClock
from tests.support.push_service import PushService

PARIS = ZoneInfo("Europe/Paris")


def paris(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS).timestamp()


@dataclass
class Rig:
    clock: FakeClock
    store: SQLiteStore
    notifier: Notifier
    worker: JobWorker
    push: PushService
    directory: Directory

    async def post(self, channel: str, author: str, kind: str = "post", **data: object) -> Message:
        person = self.directory.person(author)
        assert person is not None
        draft = Draft(channel, str(uuid.uuid4()), int(self.clock() * 1000), Author(person.id, person.name,
                                                                                    person.role.value), kind,
                      dict(data), None)
        message = (await self.store.append(draft)).message
        await self.notifier.message_stored(message)
        assert await self.notifier.flush_pending()
        return message

    async def run_jobs(self) -> None:
        while await self.worker.run_once():
            pass


@pytest.fixture
async def rig(tmp_path: Path, push_service: PushService) -> AsyncIterator[Rig]:
    path = str(tmp_path / "liaison.db")
    clock = FakeClock(paris("2026-12-01T21:00"))  # a Tuesday
    store = SQLiteStore(path)
    notes = open_notification_store(f"sqlite:///{path}")
    push_store, queue = SQLitePushStore(path), SQLiteJobQueue(path)
    for part in (store, notes, push_store, queue):
        await part.open()
    await store.save_directory(demo_school())
    directory = await store.load_directory()
    provider = WebPushProvider(load_vapid(new_vapid_pem()), "mailto:test@example.fr", {"127.0.0.1"})
    notifier = Notifier(directory, store, push_store, queue, NobodyOnline, push=provider,
                        rules=NotificationRules(notes, clock), digests=Digests(notes), clock=clock)
    adam = push_service.subscription("adam")
    keys = adam.to_json()["keys"]
    await push_store.add_subscription(PushSubscription("ps-adam", "p-adam", None, adam.endpoint, keys["p256dh"],
                                                       keys["auth"], clock()))
    try:
        yield Rig(clock, store, notifier, JobWorker(queue, notifier.handlers(), clock=clock), push_service,
                  directory)
    finally:
        await notifier.close()
        for part in (queue, push_store, notes, store):
            await part.close()


async def test_a_post_at_21h_on_tuesday_is_pushed_at_7h_on_wednesday_with_the_window_collapsed(rig: Rig) -> None:
    first = await rig.post("class:cm2-b", "t-nguyen", text="Piscine demain")
    rig.clock.now = paris("2026-12-01T21:30")
    second = await rig.post("class:cm2-b", "t-nguyen", text="Apportez un bonnet")
    await rig.run_jobs()
    assert rig.push.to("adam") == []
    rig.clock.now = paris("2026-12-02T06:59:59")
    await rig.run_jobs()
    assert rig.push.to("adam") == [], "still quiet"
    rig.clock.now = paris("2026-12-02T07:00")
    await rig.run_jobs()
    [push] = rig.push.to("adam")
    assert push.payload["title"] == "2 nouveaux messages en CM2 B"
    assert push.payload["seq"] == second.seq and push.payload["count"] == 2 and first.seq < second.seq
    assert push.urgency == "normal"
    rig.clock.advance(3600)
    await rig.run_jobs()
    assert len(rig.push.to("adam")) == 1, "once"
    report = await rig.notifier.push_store.report("class:cm2-b", first.seq)
    assert report["held"] == 1 and report["push"] == 1


async def test_a_post_on_saturday_waits_for_monday_7h(rig: Rig) -> None:
    rig.clock.now = paris("2026-12-05T10:00")  # a Saturday
    message = await rig.post("class:cm2-b", "t-nguyen", text="Bon week-end")
    await rig.run_jobs()
    rig.clock.now = paris("2026-12-06T20:00")  # Sunday evening
    await rig.run_jobs()
    assert rig.push.to("adam") == []
    rig.clock.now = paris("2026-12-07T07:00")  # Monday
    await rig.run_jobs()
    [push] = rig.push.to("adam")
    assert push.payload["seq"] == message.seq and push.payload["title"] == "Nouveau message de M. Nguyen — CM2 B"


async def test_an_urgent_announcement_from_the_director_goes_out_at_once(rig: Rig) -> None:
    message = await rig.post("school:ecole-jaures", "d-bernard", kind="announcement", text="Alerte neige",
                             urgent=True)
    await rig.run_jobs()
    [push] = rig.push.to("adam")
    assert push.payload["seq"] == message.seq and push.payload["urgent"] is True and push.urgency == "high"


async def test_one_who_read_during_the_window_is_not_pushed(rig: Rig) -> None:
    message = await rig.post("class:cm2-b", "t-nguyen", text="Piscine demain")
    await rig.run_jobs()
    await rig.store.mark_read("p-adam", "class:cm2-b", message.seq)
    rig.clock.now = paris("2026-12-02T07:00")
    await rig.run_jobs()
    assert rig.push.to("adam") == []


async def test_the_text_is_on_the_lock_screen_only_for_who_chose_it_and_off_means_nothing(rig: Rig) -> None:
    rules = rig.notifier.rules
    assert isinstance(rules, NotificationRules)
    school = "school:ecole-jaures"
    urgent = await rig.post(school, "d-bernard", kind="announcement", text="Alerte neige", urgent=True)
    await rig.run_jobs()
    assert "body" not in rig.push.to("adam")[0].payload, "off by default"
    await rules.set_preferences("p-adam", Preferences(kinds={"announcement": "off"}, show_content=True))
    shown = await rig.post(school, "d-bernard", kind="announcement", text="Alerte levée", urgent=True)
    rig.clock.now = paris("2026-12-02T10:00")
    calm = await rig.post("school:ecole-jaures", "d-bernard", kind="announcement", text="Kermesse samedi")
    await rig.run_jobs()
    pushes = rig.push.to("adam")
    assert [p.payload["seq"] for p in pushes] == [urgent.seq, shown.seq], "off, but an urgent one still comes"
    assert pushes[1].payload["body"] == "Alerte levée"
    assert calm.seq not in [p.payload["seq"] for p in pushes]


@pytest.fixture
def hook_server() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/liaison-hook", received
    server.shutdown()
    server.server_close()


async def test_the_webhook_gets_each_notification_signed(rig: Rig, hook_server) -> None:
    url, received = hook_server
    secret = b"s" * 32
    rig.notifier.hook = WebhookProvider(url, secret)
    message = await rig.post("school:ecole-jaures", "d-bernard", kind="announcement", text="Alerte neige",
                             urgent=True)
    await rig.run_jobs()
    by_user = {json.loads(body)["user"]: (headers, body) for headers, body in received}
    assert set(by_user) == {"p-lea-mere", "p-lea-pere", "p-durand", "p-adam", "t-martin", "t-nguyen"}
    headers, body = by_user["p-durand"]
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-liaison-signature"], expected)
    note = json.loads(body)
    assert note["urgent"] is True and note["notification"]["seq"] == message.seq
    assert note["notification"]["channel"] == "school:ecole-jaures" and "body" not in note["notification"]
    assert len(rig.push.to("adam")) == 1, "the push as well"
    await rig.run_jobs()
    assert len(received) == 6, "once each"


async def test_a_fanout_lost_with_its_gateway_is_made_up_for_by_the_next_message(rig: Rig) -> None:
    rig.clock.now = paris("2026-12-02T10:00")  # a Wednesday morning: not quiet
    person = rig.directory.person("t-nguyen")
    assert person is not None
    lost = (await rig.store.append(Draft("class:cm2-b", "m-lost", int(rig.clock() * 1000),
                                         Author(person.id, person.name, "teacher"), "post", {"text": "a"},
                                         None))).message  # stored; the gateway died before its fan-out
    rig.clock.advance(30)
    after = await rig.post("class:cm2-b", "t-nguyen", text="b")
    await rig.run_jobs()
    assert sorted(p.payload["seq"] for p in rig.push.to("adam")) == [lost.seq, after.seq]
    await rig.post("class:cm2-b", "t-nguyen", text="c")
    await rig.run_jobs()
    assert len(rig.push.to("adam")) == 3, "healed once, never twice"


async def test_noting_a_fan_out_never_waits_on_the_queue_and_a_failed_hand_over_keeps_the_jobs(rig: Rig) -> None:
    """The publish path only notes the fan-out job (a queue away must not hold the ack); a hand-over
    that fails keeps the jobs for the next try."""
    person = rig.directory.person("t-martin")
    assert person is not None
    draft = Draft("class:cp-a", str(uuid.uuid4()), int(rig.clock() * 1000),
                  Author(person.id, person.name, person.role.value), "post", {"text": "x"}, None)
    message = (await rig.store.append(draft)).message
    queue = rig.notifier.queue
    failing = FailingQueue()
    rig.notifier.queue = failing  # type: ignore[assignment]  # only enqueue_many is reached
    await rig.notifier.message_stored(message)  # returns without touching the queue
    assert failing.calls == 0
    assert not await rig.notifier.flush_pending()
    assert failing.calls == 1
    rig.notifier.queue = queue
    assert await rig.notifier.flush_pending()
    claimed = await queue.claim("w", rig.clock() + 1, 10, 30.0)
    assert [j.id for j in claimed] == [f"fanout:class:cp-a:{message.seq}"]


class FailingQueue:
    def __init__(self) -> None:
        self.calls = 0

    async def enqueue_many(self, jobs: object) -> int:
        self.calls += 1
        raise ConnectionError("the queue is away")
