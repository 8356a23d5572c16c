"""The HTTP API over a real server: the admin API (directory, CSV import), the integration API
(publish on behalf of staff), history and unread counts with a user's token; membership changes
reach open WebSocket connections at once; the OpenAPI file matches the routes."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.routing import Route

from realtime.config import Secret, Settings
from realtime.http.requests import read_body
from realtime.process.app import create_app
from school.errors import ErrorCode, LiaisonError
from tests.integration.conftest import token
from tests.integration.test_import_cli import school_export
from tests.support.gateway_server import GatewayProcess
from tests.support.ws_client import UNIT, Client

KEY = "k" * 32
ADMIN = "/api/v1/admin"
POST = {"text": "Sortie au musée jeudi"}
HUGO = {"class_id": "cp-a", "name": "Hugo Durand"}
OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass
class Api:
    base: str
    key: str | None = KEY

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json", key: str | None = None, user: str | None = None,
             auth: str | None = None) -> Reply:
        headers = {"Content-Type": content_type}
        if auth is None:
            auth = f"Bearer {token(user)}" if user else f"Bearer {key or self.key}" if (key or self.key) else None
        if auth:
            headers["Authorization"] = auth
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=UNIT * 2) as response:
                return Reply(response.status, _decoded(response.read()), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, _decoded(exc.read()), dict(exc.headers))

    def school(self) -> dict[str, Any]:
        reply = self.call("GET", f"{ADMIN}/schools/ecole-jaures")
        assert reply.status == 200, reply
        return reply.body  # type: ignore[no-any-return]


def declared_too_large(api: Api, path: str, size: int) -> tuple[int, str]:
    """PUT announcing a `size`-byte body and sending none: the server answers from the header alone
    (sending the body would race with the server closing the connection after its answer)."""
    host, port = urllib.parse.urlsplit(api.base).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=UNIT)
    try:
        connection.putrequest("PUT", path)
        for name, value in (("Authorization", f"Bearer {api.key}"), ("Content-Type", "application/json"),
                            ("Content-Length", str(size))):
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, json.loads(response.read())["error"]["code"]
    finally:
        connection.close()


async def test_a_streamed_body_is_cut_at_the_limit() -> None:
    """Without a Content-Length, the body is counted as it arrives."""
    chunks = [b"x" * 1000] * 3
    sent: list[int] = []

    async def receive() -> dict[str, Any]:
        sent.append(1)
        return {"type": "http.request", "body": chunks[len(sent) - 1], "more_body": len(sent) < len(chunks)}

    request = Request({"type": "http", "method": "PUT", "headers": []}, receive)
    with pytest.raises(LiaisonError) as refused:
        await read_body(request, 1500)
    assert refused.value.code is ErrorCode.TOO_LARGE and len(sent) == 2  # stopped at the second chunk
    sent.clear()
    whole = await read_body(Request({"type": "http", "method": "PUT", "headers": []}, receive), 3000)
    assert whole == b"x" * 3000


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@pytest.fixture
def keyed(make_server: Callable[..., GatewayProcess]) -> GatewayProcess:
    return make_server({"LIAISON_API_KEY": KEY})


@pytest.fixture
def api(keyed: GatewayProcess) -> Api:
    return Api(keyed.http)


@pytest.fixture
async def connect(keyed: GatewayProcess, binary: bool) -> AsyncIterator[Callable[..., Any]]:
    """`await connect("p-durand")`: a connected WebSocket client of the keyed server (both codecs)."""
    opened: list[Client] = []

    async def make(user: str) -> Client:
        client = await Client.open(keyed.ws, binary=binary)
        opened.append(client)
        await client.ok("connect", token=token(user))
        return client

    yield make
    for client in opened:
        await client.close()


def ids(entities: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in entities]


# -- the OpenAPI file --------------------------------------------------------------


def test_openapi_file_lists_exactly_the_http_routes() -> None:
    app = create_app(Settings(jwt_secret=Secret("s" * 32)))
    routes = {(method.lower(), route.path) for route in app.routes if isinstance(route, Route)
              for method in route.methods or () if method != "HEAD"}
    routes = {(method, path) for method, path in routes if path != "/api/{rest:path}"}  # the JSON 404
    document = json.loads(OPENAPI.read_text())
    documented = {(method, path) for path, item in document["paths"].items() for method in item
                  if method in {"get", "put", "post", "delete", "patch"}}
    assert document["openapi"].startswith("3.1")
    assert documented == routes
    assert ("put", "/api/v1/admin/students/{id}") in routes  # the walk found the API


def test_openapi_is_served(api: Api) -> None:
    reply = api.call("GET", "/openapi.json", auth="")
    assert reply.status == 200
    assert reply.body == json.loads(OPENAPI.read_text())


# -- the API owns its paths: 405 with the route's own Allow, a JSON 404 ---------------------------

ALLOW = {
    f"{ADMIN}/schools/ecole-jaures": {"GET", "HEAD", "PUT"},
    f"{ADMIN}/schools/ecole-jaures/import": {"POST"},
    f"{ADMIN}/people/p-adam": {"PUT", "DELETE"},
    f"{ADMIN}/classes/cp-a": {"PUT", "DELETE"},
    f"{ADMIN}/students/s-adam": {"PUT", "DELETE"},
    "/api/v1/channels/class:cp-a/messages": {"GET", "HEAD", "POST"},
    "/api/v1/me/unread": {"GET", "HEAD"},
    "/openapi.json": {"GET", "HEAD"},
}
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS")


def test_a_method_a_route_does_not_take_answers_405_with_its_own_allow(api: Api) -> None:
    for path, allow in ALLOW.items():
        for method in METHODS:
            if method in allow:
                continue
            reply = api.call(method, path, {})
            assert reply.status == 405, (method, path, reply)
            assert set(reply.headers["allow"].split(", ")) == allow, (method, path, reply.headers)
            assert reply.body["error"]["code"] == "method_not_allowed"
            assert f"use {reply.headers['allow']}" in reply.body["error"]["message"]
    before = api.school()
    assert api.call("PATCH", f"{ADMIN}/people/p-adam", {"name": "X"}).status == 405  # and changed nothing
    assert api.call("POST", f"{ADMIN}/schools/ecole-jaures", {"name": "X", "year": "2026-2027"}).status == 405
    assert api.school() == before


def test_an_unknown_api_path_is_a_json_404(api: Api) -> None:
    for method, path in (("GET", "/api/v1/nope"), ("POST", "/api/v1/admin/schools"),
                         ("DELETE", "/api/v2/me/unread"), ("GET", "/api/v1/admin/people/p-adam/extra"),
                         ("PATCH", "/api/")):
        reply = api.call(method, path, {})
        assert reply.status == 404, (method, path, reply)
        assert reply.headers["content-type"] == "application/json"
        assert reply.code == "not_found", (method, path, reply)
        assert "/openapi.json" in reply.body["error"]["message"]
        assert "allow" not in {name.lower() for name in reply.headers}


# -- authentication ------------------------------------------------------------------


def test_without_an_api_key_the_admin_and_integration_api_are_off(server: GatewayProcess) -> None:
    api = Api(server.http)
    for method, path, body in (("GET", f"{ADMIN}/schools/ecole-jaures", None),
                               ("POST", "/api/v1/channels/class:cp-a/messages",
                                {"as": "t-martin", "kind": "post", "data": POST})):
        reply = api.call(method, path, body)
        assert reply.status == 503 and reply.code == "unavailable"
        assert "LIAISON_API_KEY" in reply.body["error"]["message"]
    assert api.call("GET", "/api/v1/me/unread", user="p-durand").status == 200  # user tokens still work


def test_a_wrong_or_missing_key_is_refused(api: Api) -> None:
    for reply in (api.call("GET", f"{ADMIN}/schools/ecole-jaures", key="w" * 32),
                  api.call("GET", f"{ADMIN}/schools/ecole-jaures", auth=""),
                  api.call("GET", f"{ADMIN}/schools/ecole-jaures", auth=f"Basic {KEY}"),
                  api.call("GET", f"{ADMIN}/schools/ecole-jaures", user="d-bernard"),
                  api.call("PUT", f"{ADMIN}/classes/ce1-a", {"school_id": "ecole-jaures", "name": "CE1 A"},
                           key=KEY[:-1] + "x")):
        assert reply.status == 401 and reply.code == "unauthorized"
        assert reply.headers.get("www-authenticate") == "Bearer"
    assert "ce1-a" not in ids(api.school()["classes"])


# -- the directory ---------------------------------------------------------------------


def test_get_school_shows_classes_staff_students_and_guardians(api: Api) -> None:
    school = api.school()
    assert school["school"] == {"id": "ecole-jaures", "name": "École Jean Jaurès", "year": "2026-2027",
                                "guardians_start_chats": True}
    assert school["classes"] == [
        {"id": "cm2-b", "school_id": "ecole-jaures", "name": "CM2 B", "teachers": ["t-nguyen"]},
        {"id": "cp-a", "school_id": "ecole-jaures", "name": "CP A", "teachers": ["t-martin"]},
    ]
    assert ids(school["staff"]) == ["d-bernard", "t-martin", "t-nguyen"]
    assert ids(school["students"]) == ["s-adam", "s-hugo", "s-ines", "s-lea"]
    assert ids(school["guardians"]) == ["p-adam", "p-durand", "p-lea-mere", "p-lea-pere"]
    assert api.call("GET", f"{ADMIN}/schools/nowhere").status == 404


def test_create_replace_and_delete_round_trip(api: Api) -> None:
    school = {"name": "École Victor Hugo", "year": "2026-2027"}
    assert api.call("PUT", f"{ADMIN}/schools/ecole-hugo", school).status == 201
    replaced = api.call("PUT", f"{ADMIN}/schools/ecole-hugo", {**school, "guardians_start_chats": True})
    assert replaced.status == 200 and replaced.body["guardians_start_chats"] is True
    teacher = {"school_id": "ecole-hugo", "name": "Mme  Roux", "role": "teacher", "email": "Roux@Example.fr"}
    created = api.call("PUT", f"{ADMIN}/people/t-roux", teacher)
    assert created.status == 201
    assert created.body == {"id": "t-roux", "school_id": "ecole-hugo", "name": "Mme Roux", "role": "teacher",
                            "email": "roux@example.fr", "phone": None}
    assert api.call("PUT", f"{ADMIN}/classes/ce1-a",
                    {"school_id": "ecole-hugo", "name": "CE1 A", "teachers": ["t-roux"]}).status == 201
    parent = {"school_id": "ecole-hugo", "name": "Ana Lopes", "role": "guardian", "phone": "06 11 22 33 44"}
    assert api.call("PUT", f"{ADMIN}/people/p-lopes", parent).body["phone"] == "+33611223344"
    student = {"id": "s-tom", "class_id": "ce1-a", "name": "Tom Lopes", "guardians": ["p-lopes", "p-durand"]}
    made = api.call("PUT", f"{ADMIN}/students/s-tom", student)
    assert made.status == 201 and made.body["school_id"] == "ecole-hugo"  # from the class
    view = api.call("GET", f"{ADMIN}/schools/ecole-hugo").body
    assert ids(view["classes"]) == ["ce1-a"] and ids(view["staff"]) == ["t-roux"]
    assert ids(view["students"]) == ["s-tom"]
    assert ids(view["guardians"]) == ["p-durand", "p-lopes"]  # a guardian may have children in two schools
    gone = api.call("DELETE", f"{ADMIN}/students/s-tom")
    assert gone.status == 200 and gone.body == {"deleted": {"students": ["s-tom"]}, "updated": {}}
    assert api.call("DELETE", f"{ADMIN}/students/s-tom").status == 404
    removed = api.call("DELETE", f"{ADMIN}/people/t-roux")
    assert removed.body == {"deleted": {"people": ["t-roux"]}, "updated": {"classes": ["ce1-a"]}}
    assert api.call("DELETE", f"{ADMIN}/classes/ce1-a").status == 200
    view = api.call("GET", f"{ADMIN}/schools/ecole-hugo").body
    assert view["classes"] == [] and view["staff"] == [] and view["students"] == []
    assert ids(view["guardians"]) == ["p-lopes"]


G = {"school_id": "ecole-jaures", "name": "X", "role": "guardian"}
INVALID: list[tuple[str, str, Any, int, str]] = [
    ("PUT", "/people/p~x", G, 400, "the id in the path"),
    ("PUT", "/people/p-x", {**G, "role": "parent"}, 400, "role must be"),
    ("PUT", "/people/p-x", {**G, "mail": "a@b.fr"}, 400, "unknown field 'mail'"),
    ("PUT", "/people/p-x", {"school_id": "ecole-jaures", "role": "guardian"}, 400, "name is required"),
    ("PUT", "/people/p-x", {**G, "name": "  "}, 400, "name must be"),
    ("PUT", "/people/p-x", {**G, "name": "X" * 201}, 400, "name must be"),
    ("PUT", "/people/p-x", {**G, "email": "x@"}, 400, "email must be an e-mail address"),
    ("PUT", "/people/p-x", {**G, "phone": "12"}, 400, "phone must be"),
    ("PUT", "/people/p-x", {**G, "school_id": "nowhere"}, 400, "no school 'nowhere'"),
    ("PUT", "/people/p-x", {**G, "id": "p-y"}, 400, "differs from the id in the path"),
    ("PUT", "/people/t-martin", {**G, "name": "Mme Martin"}, 409, "teaches cp-a"),
    ("PUT", "/people/p-durand", {**G, "role": "teacher"}, 409, "guardian of"),
    ("PUT", "/people/p-lea-pere", {**G, "email": "CLAIRE.petit@example.fr"}, 409, "(p-lea-mere) has this e-mail"),
    ("PUT", "/classes/ce1-a", {"school_id": "ecole-jaures", "name": "CE1", "teachers": ["p-durand"]},
     400, "'p-durand' is not a teacher"),
    ("PUT", "/classes/ce1-a", {"school_id": "ecole-jaures", "name": "CE1", "teachers": "t-martin"},
     400, "teachers must be a list"),
    ("PUT", "/students/s-x", {"class_id": "ce9-z", "name": "X"}, 400, "no class 'ce9-z'"),
    ("PUT", "/students/s-x", {"class_id": "cp-a", "name": "X", "school_id": "other"}, 400, "belongs to school"),
    ("PUT", "/students/s-x", {"class_id": "cp-a", "name": "X", "guardians": ["t-martin"]}, 400, "not a guardian"),
    ("PUT", "/students/s-x", {"class_id": "cp-a", "name": "X", "guardians": ["p-adam"] * 2}, 400, "same id twice"),
    ("PUT", "/students/s-x", {"class_id": "cp-a", "name": "X",
                              "guardians": ["p-adam", "p-durand", "p-lea-mere", "p-lea-pere", "p-x"]},
     400, "at most 4 ids"),
    ("PUT", "/schools/ecole-x", {"name": "X", "year": "2026"}, 400, "school year such as 2026-2027"),
    ("PUT", "/schools/ecole-x", {"name": "X", "year": "2026-2028"}, 400, "school year"),
    ("PUT", "/schools/ecole-x", ["name"], 400, "JSON object"),
    ("DELETE", "/classes/cp-a", None, 409, "has 2 students"),
    ("DELETE", "/people/p-nobody", None, 404, "no person 'p-nobody'"),
    ("DELETE", "/classes/ce9-z", None, 404, "no class"),
]


def test_invalid_writes_are_refused_and_change_nothing(api: Api) -> None:
    before = api.school()
    for method, path, body, status, fragment in INVALID:
        reply = api.call(method, ADMIN + path, body)
        assert (reply.status, fragment in reply.body["error"]["message"]) == (status, True), (path, body, reply)
    assert api.call("PUT", f"{ADMIN}/schools/ecole-x", raw=b"{not json").code == "bad_request"
    assert declared_too_large(api, f"{ADMIN}/schools/ecole-x", 1024 * 1024 + 1) == (413, "too_large")
    assert api.school() == before
    assert api.call("GET", f"{ADMIN}/schools/ecole-x").status == 404


def test_school_of_a_class_or_student_is_fixed(api: Api) -> None:
    api.call("PUT", f"{ADMIN}/schools/ecole-hugo", {"name": "École Victor Hugo", "year": "2026-2027"})
    moved = api.call("PUT", f"{ADMIN}/classes/cp-a", {"school_id": "ecole-hugo", "name": "CP A"})
    assert moved.status == 409 and "delete it and create it again" in moved.body["error"]["message"]
    teacher = api.call("PUT", f"{ADMIN}/people/t-martin",
                       {"school_id": "ecole-hugo", "name": "Mme Martin", "role": "teacher"})
    assert teacher.status == 409
    guardian = api.call("PUT", f"{ADMIN}/people/p-adam",
                        {"school_id": "ecole-hugo", "name": "Karim Benali", "role": "guardian"})
    assert guardian.status == 200  # a guardian's home school may change


# -- membership, live ----------------------------------------------------------------------


async def test_a_guardian_removed_from_a_class_stops_receiving_it_at_once(api: Api, connect: Any) -> None:
    durand, mere, teacher = await connect("p-durand"), await connect("p-lea-mere"), await connect("t-martin")
    reply = api.call("PUT", f"{ADMIN}/students/s-hugo", {**HUGO, "guardians": []})
    assert reply.status == 200 and reply.body["guardians"] == []
    assert await durand.push("unsubscribed") == {"push": "unsubscribed", "channel": "class:cp-a"}
    sent = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST)
    assert (await mere.push("message"))["message"]["seq"] == sent["seq"]
    await durand.ok("ping")  # a push queued before this reply would have arrived before it
    assert durand.no_push_now()
    assert await durand.error("history", channel="class:cp-a") == "forbidden"
    assert api.call("GET", "/api/v1/channels/class:cp-a/messages", user="p-durand").status == 403
    nguyen = await connect("t-nguyen")  # still the guardian of s-ines in cm2-b
    other = await nguyen.ok("publish", channel="class:cm2-b", kind="post", data=POST)
    assert (await durand.push("message"))["message"]["seq"] == other["seq"]


async def test_a_guardian_added_to_a_class_is_subscribed_on_open_connections(api: Api, connect: Any) -> None:
    teacher = await connect("t-martin")
    first = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST)
    adam, adam_tab = await connect("p-adam"), await connect("p-adam")
    reply = api.call("PUT", f"{ADMIN}/students/s-hugo", {**HUGO, "guardians": ["p-durand", "p-adam"]})
    assert reply.status == 200
    for client in (adam, adam_tab):
        assert await client.push("subscribed") == {"push": "subscribed", "channel": "class:cp-a",
                                                   "seq": first["seq"]}
    sent = await teacher.ok("publish", channel="class:cp-a", kind="post", data=POST)
    assert (await adam.push("message"))["message"]["seq"] == sent["seq"]
    history = await adam.ok("history", channel="class:cp-a")
    assert [m["seq"] for m in history["messages"]] == [first["seq"], sent["seq"]]


async def test_a_deleted_person_is_disconnected(api: Api, connect: Any) -> None:
    adam = await connect("p-adam")
    reply = api.call("DELETE", f"{ADMIN}/people/p-adam")
    assert reply.body == {"deleted": {"people": ["p-adam"]}, "updated": {"students": ["s-adam"]}}
    assert await adam.closed() == 4401
    school = api.school()
    assert "p-adam" not in ids(school["guardians"])
    assert next(s for s in school["students"] if s["id"] == "s-adam")["guardians"] == []
    assert api.call("GET", "/api/v1/me/unread", user="p-adam").status == 401


# -- the CSV import ---------------------------------------------------------------------------


async def test_import_of_300_students_over_the_api(api: Api, connect: Any) -> None:
    adam = await connect("p-adam")  # his child s-adam is not in the file; the file gives him s-gen-000
    before = api.school()
    path = f"{ADMIN}/schools/ecole-jaures/import"
    export = school_export().encode()
    dry = api.call("POST", path + "?dry_run=true", raw=export, content_type="text/csv")
    assert dry.status == 200 and (dry.body["dry_run"], dry.body["applied"]) == (True, False)
    assert dry.body["summary"]["students_added"] == 300 and dry.body["summary"]["classes_created"] == 12
    assert dry.body["plan"][0] == "school ecole-jaures: 300 students in the file"
    assert api.school() == before

    started = time.perf_counter()
    done = api.call("POST", path, raw=export, content_type="text/csv; charset=utf-8")
    elapsed = time.perf_counter() - started
    print(f"\nAPI import of 300 students in 12 classes: {elapsed:.2f} s")
    assert done.status == 200 and done.body["applied"] is True
    assert done.body["summary"] == dry.body["summary"]
    school = api.school()
    assert len(school["students"]) == 300
    assert len({s["class_id"] for s in school["students"]}) == 12
    assert len(school["classes"]) == 14  # cp-a and cm2-b are kept, without students
    assert await adam.push() == {"push": "unsubscribed", "channel": "class:cm2-b"}  # s-adam is gone
    assert await adam.push() == {"push": "subscribed", "channel": "class:classe-01", "seq": 0}


def test_a_bad_row_names_its_line_and_changes_nothing(api: Api) -> None:
    before = api.school()
    path = f"{ADMIN}/schools/ecole-jaures/import"
    reply = api.call("POST", path, raw=school_export(bad_line=152).encode(), content_type="text/csv")
    assert reply.status == 400
    assert reply.body == {"error": {
        "code": "bad_request", "message": "1 error in the file; nothing was changed",
        "errors": [{"line": 152, "field": "responsable2_email",
                    "message": "responsable2_email 'pas-une-adresse' is not an e-mail address"}]}}
    assert api.school() == before
    assert api.call("POST", path, raw=school_export(3).encode(), content_type="application/json").status == 400
    assert api.call("POST", path + "?dry_run=maybe", raw=b"x", content_type="text/csv").status == 400
    unknown = api.call("POST", f"{ADMIN}/schools/nowhere/import", raw=b"x", content_type="text/csv")
    assert unknown.status == 404
    assert api.school() == before


# -- the integration API: publish on behalf of staff ---------------------------------------------


def publish(api: Api, channel: str, body: dict[str, Any]) -> Reply:
    return api.call("POST", f"/api/v1/channels/{channel}/messages", body)


async def test_publish_on_behalf_of_a_teacher_reaches_connected_parents(api: Api, connect: Any) -> None:
    parent = await connect("p-lea-pere")
    reply = publish(api, "class:cp-a", {"as": "t-martin", "kind": "post", "data": POST, "key": "k-1"})
    assert reply.status == 201 and set(reply.body) == {"seq", "id", "ts"}
    message = (await parent.push("message"))["message"]
    assert (message["seq"], message["id"]) == (reply.body["seq"], reply.body["id"])
    assert message["from"] == {"id": "t-martin", "name": "Mme Martin", "role": "teacher"}
    assert message["data"] == POST
    again = publish(api, "class:cp-a", {"as": "t-martin", "kind": "post", "data": POST, "key": "k-1"})
    assert (again.status, again.body) == (200, reply.body)  # idempotent: the original, no second message
    history = await parent.ok("history", channel="class:cp-a")
    assert [m["id"] for m in history["messages"]] == [reply.body["id"]]


def test_publish_follows_the_policy_and_validates(api: Api) -> None:
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("class:cp-a", {"as": "p-lea-mere", "kind": "post", "data": POST}, 403),
        ("class:cm2-b", {"as": "t-martin", "kind": "post", "data": POST}, 403),
        ("school:ecole-jaures", {"as": "t-martin", "kind": "announcement", "data": POST}, 403),
        ("class:cp-a", {"as": "t-martin", "kind": "announcement", "data": POST}, 403),
        ("class:cp-a", {"as": "t-nobody", "kind": "post", "data": POST}, 400),
        ("class:cp-a", {"as": "t-martin", "data": POST}, 400),
        ("class:cp-a", {"as": "t-martin", "kind": "post", "data": {"title": "no text"}}, 400),
        ("class:cp-a", {"as": "t-martin", "kind": "post", "data": POST, "urgent": True}, 400),
        ("class:cp-a", {"as": "t-martin", "kind": "post", "data": {"text": "x" * 10_001}}, 413),
        ("nowhere", {"as": "t-martin", "kind": "post", "data": POST}, 400),
    ]
    for channel, body, status in cases:
        assert publish(api, channel, body).status == status, (channel, body)
    urgent = {"as": "d-bernard", "kind": "announcement", "data": {"text": "Alerte", "urgent": True}}
    assert publish(api, "school:ecole-jaures", urgent).status == 201
    assert api.call("GET", "/api/v1/channels/class:cp-a/messages", user="t-martin").body["messages"] == []


# -- the user API: history and unread counts -------------------------------------------------------


def test_history_with_a_user_token(api: Api) -> None:
    sent = [publish(api, "class:cp-a", {"as": "t-martin", "kind": "post", "data": {"text": f"n°{i}"}}).body
            for i in range(3)]
    path = "/api/v1/channels/class:cp-a/messages"
    page = api.call("GET", path + "?limit=2", user="p-lea-mere").body
    assert [m["seq"] for m in page["messages"]] == [sent[1]["seq"], sent[2]["seq"]] and page["more"] is True
    older = api.call("GET", f"{path}?before={sent[1]['seq']}&limit=2", user="p-lea-mere").body
    assert [m["data"]["text"] for m in older["messages"]] == ["n°0"] and older["more"] is False
    assert api.call("GET", path, user="p-adam").code == "forbidden"
    assert api.call("GET", "/api/v1/channels/class:nowhere/messages", user="p-adam").code == "forbidden"
    for query in ("?limit=0", "?limit=abc", "?before=0"):
        assert api.call("GET", path + query, user="p-lea-mere").status == 400, query
    assert api.call("GET", path, auth="").status == 401
    assert api.call("GET", path, auth="Bearer not.a.token").status == 401
    assert api.call("GET", path).status == 401  # the API key is not a user's token


async def test_unread_counts_move_after_a_read(api: Api, connect: Any) -> None:
    for i in range(3):
        publish(api, "class:cp-a", {"as": "t-martin", "kind": "post", "data": {"text": f"n°{i}"}})
    unread = api.call("GET", "/api/v1/me/unread", user="p-lea-mere").body["channels"]
    assert set(unread) == {"class:cp-a", "school:ecole-jaures", "user:p-lea-mere"}
    assert unread["class:cp-a"] == {"latest": 3, "read": 0, "unread": 3}
    assert unread["school:ecole-jaures"] == {"latest": 0, "read": 0, "unread": 0}
    mere = await connect("p-lea-mere")
    await mere.ok("read", channel="class:cp-a", seq=2)
    after = api.call("GET", "/api/v1/me/unread", user="p-lea-mere").body["channels"]
    assert after["class:cp-a"] == {"latest": 3, "read": 2, "unread": 1}
    other = api.call("GET", "/api/v1/me/unread", user="p-lea-pere").body["channels"]
    assert other["class:cp-a"]["unread"] == 3  # read marks are per user


def test_probes_and_demo_routes_answer_405_with_their_own_allow(server):
    import urllib.error
    import urllib.request

    for method, path, allow in (("POST", "/healthz", "GET, HEAD"), ("DELETE", "/readyz", "GET, HEAD"),
                                ("GET", "/demo/token", "POST")):
        request = urllib.request.Request(server.http + path, method=method, data=b"" if method != "GET" else None)
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError(f"{method} {path} was accepted")
        except urllib.error.HTTPError as refused:
            assert refused.code == 405, (method, path, refused.code)
            assert set(refused.headers["Allow"].split(", ")) == set(allow.split(", "))  # a set: any order
