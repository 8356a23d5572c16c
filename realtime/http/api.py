"""The HTTP API under `/api/v1/`, described in docs/openapi.json and docs/http-api.md.

- Admin API (`/api/v1/admin/...`, API key): `realtime.http.admin`.
- Integration API (API key): publish into a channel on behalf of a staff member.
- User API (a user's token): a channel's history and the user's unread counts.
- Sign-in (`/api/v1/auth/...`), the user's device sessions and the invitations:
  `realtime.http.auth_api`.

Answers are JSON; an error is `{"error": {"code", "message"}}` with the HTTP status of
its protocol error code (`realtime.http.errors`, the one mapping). Each path is one route
that knows all its methods, so a method it does not take answers 405 with its own `Allow`;
an unknown path under `/api/` answers a JSON 404. Logs name ids only, never names,
addresses or message texts.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from realtime.http import auth_api, board_api, privacy_api, push_api, uploads_api
from realtime.http.admin import AdminApi
from realtime.http.notifications_api import (
    admin_get_quiet_hours,
    admin_put_quiet_hours,
    get_my_preferences,
    put_my_preferences,
    school_get_quiet_hours,
    school_put_quiet_hours,
    unsubscribe,
    unsubscribe_page,
)
from realtime.http.requests import (
    count_request,
    json_object,
    path_channel,
    query_int,
    require_api_key,
    require_user,
)
from realtime.services.publishing import published
from realtime.ws.frames import str_param
from school.directory_rules import (
    check_fields,
    class_deletion,
    class_from,
    person_deletion,
    person_from,
    school_from,
    student_deletion,
    student_from,
)
from school.errors import BadRequest, Forbidden, NotFound

log = structlog.get_logger("liaison.http_api")

ADMIN = "/api/v1/admin"
# docs/openapi.json, shipped in the package through the symlink realtime/http/openapi.json
OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"

Endpoint = Callable[[Request], Awaitable[Response]]


async def publish_as_staff(request: Request) -> Response:
    services = require_api_key(request)
    channel = path_channel(request)
    body = await json_object(request)
    check_fields(body, {"as", "kind"}, {"data", "key"})
    user_id = str_param(body, "as", required=True, max_len=128)
    person = services.directory.person(str(user_id))
    if person is None:
        raise BadRequest(f"as: there is no user {user_id!r}")
    if not person.role.is_staff:
        raise Forbidden("this API publishes on behalf of staff members only")
    kind = str(str_param(body, "kind", required=True, max_len=32))
    data = services.publisher.check(person, channel, kind, body.get("data"))
    key = str_param(body, "key", required=False, max_len=128)
    await request.app.state.user_limits.publish(person.id)
    appended = await services.publisher.publish(person, channel, kind, data, key)
    log.info("published_via_api", channel=str(channel), seq=appended.message.seq, user=person.id,
             created=appended.created)
    return JSONResponse(published(appended), status_code=201 if appended.created else 200)


async def channel_history(request: Request) -> Response:
    services, person = await require_user(request)
    channel = path_channel(request)
    page = await services.history.page(person, channel, query_int(request, "before"), query_int(request, "limit"))
    return JSONResponse(page)


async def unread_counts(request: Request) -> Response:
    services, person = await require_user(request)
    channels = services.directory.home_channels(person.id)
    latest = await services.store.latest_seqs(channels)
    reads = await services.store.user_read_marks(person.id)
    counts = {}
    for channel in channels:
        top, read = latest.get(channel, 0), reads.get(channel, 0)
        counts[channel] = {"latest": top, "read": read, "unread": max(top - read, 0)}
    return JSONResponse({"channels": counts})


@functools.cache
def openapi_bytes() -> bytes | None:
    try:
        return OPENAPI_FILE.read_bytes()
    except OSError:
        return None


async def openapi_document(request: Request) -> Response:
    body = openapi_bytes()
    if body is None:
        raise NotFound("openapi.json is not installed with this server")
    return Response(body, media_type="application/json")


async def unknown_api_path(request: Request) -> Response:
    await count_request(request)
    raise NotFound(f"there is no API route {request.url.path!r}: see /openapi.json")


def allowed(methods: Collection[str]) -> str:
    """The `Allow` header of a route's methods (HEAD with GET), in a stable order."""
    names = set(methods) | ({"HEAD"} if "GET" in methods else set())
    return ", ".join(sorted(names))


def by_method(handlers: dict[str, Endpoint]) -> Endpoint:
    """One endpoint for a path's methods. Every request is counted first (`count_request`: 429
    with `Retry-After` over the rate); a method the path does not take answers 405 with `Allow`."""
    allow = allowed(handlers)

    async def run(request: Request) -> Response:
        await count_request(request)
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers.get(method)
        if handler is None:
            raise HTTPException(405, f"{request.method} is not allowed on {request.url.path}: use {allow}",
                                headers={"Allow": allow})
        return await handler(request)

    return run


class ApiRoute(Route):
    """A route that owns its path: a request for the path with any method reaches its endpoint
    (`by_method`, which answers 405 with this route's `Allow`). Starlette's own `Route` leaves a
    path matched with another method to the routes after it, which here are the /api/ catch-all
    (a 404) and the static files (`Allow: GET, HEAD`)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        return (Match.FULL if match is Match.PARTIAL else match), child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def api_routes() -> list[Route]:
    """The HTTP API's routes, for `create_app`: one route per path, then the /api/ catch-all."""
    admin = AdminApi()
    paths: dict[str, dict[str, Endpoint]] = {
        f"{ADMIN}/schools/{{id}}": {"GET": admin.get_school, "PUT": admin.put("schools", school_from)},
        f"{ADMIN}/schools/{{id}}/import": {"POST": admin.import_csv},
        f"{ADMIN}/people/{{id}}": {"PUT": admin.put("people", person_from),
                                  "DELETE": admin.delete("people", person_deletion)},
        f"{ADMIN}/classes/{{id}}": {"PUT": admin.put("classes", class_from),
                                   "DELETE": admin.delete("classes", class_deletion)},
        f"{ADMIN}/students/{{id}}": {"PUT": admin.put("students", student_from),
                                    "DELETE": admin.delete("students", student_deletion)},
        f"{ADMIN}/people/{{id}}/sessions": {"DELETE": auth_api.end_person_sessions},
        f"{ADMIN}/schools/{{id}}/invitations": {"POST": auth_api.invite_school},
        f"{ADMIN}/classes/{{id}}/invitations": {"POST": auth_api.invite_class},
        f"{ADMIN}/schools/{{id}}/reach": {"GET": board_api.admin_reach},
        f"{ADMIN}/schools/{{id}}/families.csv": {"GET": board_api.admin_families_csv},
        "/api/v1/board/schools/{id}": {"GET": board_api.school_board},
        "/api/v1/board/schools/{id}/families.csv": {"GET": board_api.school_families_csv},
        "/api/v1/board/classes/{id}": {"GET": board_api.class_board},
        "/api/v1/board/classes/{id}/families.csv": {"GET": board_api.class_families_csv},
        "/api/v1/board/reminders": {"POST": board_api.remind},
        "/api/v1/channels/{channel}/messages": {"POST": publish_as_staff, "GET": channel_history},
        "/api/v1/me/unread": {"GET": unread_counts},
        f"{ADMIN}/schools/{{id}}/quiet-hours": {"GET": admin_get_quiet_hours, "PUT": admin_put_quiet_hours},
        "/api/v1/schools/{id}/quiet-hours": {"GET": school_get_quiet_hours, "PUT": school_put_quiet_hours},
        "/api/v1/me/notification-preferences": {"GET": get_my_preferences, "PUT": put_my_preferences},
        "/api/v1/digest/unsubscribe": {"GET": unsubscribe_page, "POST": unsubscribe},
        "/api/v1/auth/code": {"POST": auth_api.request_code},
        "/api/v1/auth/verify": {"POST": auth_api.verify_code},
        "/api/v1/auth/refresh": {"POST": auth_api.refresh},
        "/api/v1/auth/logout": {"POST": auth_api.logout},
        "/api/v1/auth/oidc": {"POST": auth_api.oidc_exchange},
        "/api/v1/me/sessions": {"GET": auth_api.my_sessions, "DELETE": auth_api.end_my_other_sessions},
        "/api/v1/me/sessions/{id}": {"DELETE": auth_api.end_my_session},
        "/api/v1/uploads": {"POST": uploads_api.create_upload},  # issue 13
        "/api/v1/files/{id}": {"GET": uploads_api.download},
        f"{ADMIN}/students/{{id}}/consents": {"GET": uploads_api.admin_consents,
                                             "PUT": uploads_api.admin_consents},
        "/api/v1/me/consents": {"GET": uploads_api.my_consents},
        "/api/v1/me/consents/{student}": {"PUT": uploads_api.put_my_consent},
        "/api/v1/classes/{id}/consents": {"GET": uploads_api.class_consents},
        "/api/v1/push/key": {"GET": push_api.vapid_key},
        "/api/v1/me/push-subscriptions": {"POST": push_api.add_subscription},
        "/api/v1/me/push-subscriptions/{id}": {"DELETE": push_api.remove_subscription},
        f"{ADMIN}/people/{{id}}/export": {"GET": privacy_api.export_person},  # issue 15
        f"{ADMIN}/people/{{id}}/erase": {"POST": privacy_api.erase_person},
        f"{ADMIN}/schools/{{id}}/year": {"GET": privacy_api.get_year, "PUT": privacy_api.put_year},
        f"{ADMIN}/schools/{{id}}/retention": {"GET": privacy_api.school_retention},
        f"{ADMIN}/schools/{{id}}/audit": {"GET": privacy_api.school_audit},
        "/openapi.json": {"GET": openapi_document},
    }
    routes: list[Route] = [ApiRoute(path, by_method(handlers), methods=list(handlers))
                           for path, handlers in paths.items()]
    routes.append(ApiRoute("/api/{rest:path}", unknown_api_path))  # any method: ApiRoute passes every one on
    return routes
