"""The HTTP API under `/api/v1/`, described in docs/openapi.json and docs/http-api.md.

- Admin API (`/api/v1/admin/...`, API key): the directory of a school, entity by entity,
  and the import of a school's CSV export. Every write goes through `Membership.change`,
  so open connections gain and lose channels at once.
- Integration API (API key): publish into a channel on behalf of a staff member.
- User API (a user's token): a channel's history and the user's unread counts.

Answers are JSON; an error is `{"error": {"code", "message"}}` with the HTTP status of
its protocol error code. Logs name ids only, never names, addresses or message texts.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth import policy, tokens
from persistence.store import StoreUnavailable
from realtime.errors import CommandError, ErrorCode, error_body
from realtime.frames import MAX_ID, bad, channel_param, str_param
from realtime.gateway import Gateway
from realtime.membership import Membership
from realtime.ops import HISTORY_DEFAULT, HISTORY_MAX, forbidden
from realtime.publishing import checked_data, content_limits, published, store_and_publish
from school.channels import ChannelName, valid_id
from school.directory import (
    Directory,
    DirectoryItem,
    Person,
    Role,
    School,
    SchoolClass,
    Student,
    item_to_wire,
)
from school.importer import ImportPlan, decode_csv, normalize_email, normalize_phone, plan_import

log = structlog.get_logger("liaison.http_api")

ADMIN = "/api/v1/admin"
MAX_JSON_BYTES = 1024 * 1024
MAX_CSV_BYTES = 10 * 1024 * 1024
MAX_NAME = 200
MAX_TEACHERS = 20
MAX_GUARDIANS = 4  # the CSV import takes two; the API leaves room for blended families
# docs/openapi.json, shipped in the package through the symlink realtime/openapi.json
OPENAPI_FILE = Path(__file__).resolve().parent / "openapi.json"

STATUS = {
    ErrorCode.BAD_REQUEST: 400, ErrorCode.UNAUTHORIZED: 401, ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409, ErrorCode.TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429, ErrorCode.UNAVAILABLE: 503, ErrorCode.INTERNAL: 500,
}

Endpoint = Callable[[Request], Awaitable[Response]]
Changes = tuple[list[DirectoryItem], dict[str, list[str]]]


# -- answers -------------------------------------------------------------------


def error_response(code: ErrorCode, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if code is ErrorCode.UNAUTHORIZED else None
    return JSONResponse({"error": error_body(code, message) | extra}, status_code=STATUS[code],
                        headers=headers)


class Refused(CommandError):
    """An error answer with more fields than the code and message (e.g. the import's errors)."""

    def __init__(self, code: ErrorCode, message: str, **extra: Any) -> None:
        super().__init__(code, message)
        self.extra = extra


def endpoint(handler: Endpoint) -> Endpoint:
    """Turn the exceptions of a handler into JSON error answers."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except CommandError as exc:
            extra = exc.extra if isinstance(exc, Refused) else {}
            log.info("http_refused", method=request.method, path=request.url.path, code=exc.code.wire)
            return error_response(exc.code, exc.message, **extra)
        except StoreUnavailable:
            return error_response(ErrorCode.UNAVAILABLE, "storage is unavailable, try again shortly")
        except Exception:
            log.exception("http_failed", path=request.url.path, method=request.method)
            return error_response(ErrorCode.INTERNAL, "internal error")

    return run


def wire(item: DirectoryItem) -> dict[str, Any]:
    """An entity as the API shows it (and as PUT takes it)."""
    return {k: v for k, v in item_to_wire(item).items() if k != "type"}


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


# -- authentication --------------------------------------------------------------


def bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


def require_api_key(request: Request) -> Gateway:
    """The gateway, when the request carries the API key."""
    g = gateway_of(request)
    key = g.settings.api_key
    if key is None:
        raise CommandError(ErrorCode.UNAVAILABLE, "this API is off: set LIAISON_API_KEY (at least 24 random "
                                                  "characters, e.g. `openssl rand -hex 32`) and restart")
    given = bearer(request)
    if given is None or not hmac.compare_digest(given.encode("latin-1"), key.bytes()):
        raise CommandError(ErrorCode.UNAUTHORIZED, "send the API key as `Authorization: Bearer <LIAISON_API_KEY>`")
    return g


def require_user(request: Request) -> tuple[Gateway, Person]:
    """The gateway and the user whose token the request carries."""
    g = gateway_of(request)
    token = bearer(request)
    if token is None:
        raise CommandError(ErrorCode.UNAUTHORIZED, "send the user's token as `Authorization: Bearer <token>`")
    try:
        user_id = tokens.verify(g.settings.jwt_secret.bytes(), token)
    except tokens.TokenError as exc:
        raise CommandError(ErrorCode.UNAUTHORIZED, str(exc)) from None
    person = g.directory.person(user_id)
    if person is None:
        raise CommandError(ErrorCode.UNAUTHORIZED, "this account is not (or no longer) known")
    return g, person


# -- request bodies and parameters ---------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    too_large = CommandError(ErrorCode.TOO_LARGE, f"the body is larger than {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_JSON_BYTES)
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad("the body must be a JSON object (Content-Type: application/json)") from None
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    return body


async def csv_text(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise bad("send the file as the body with `Content-Type: text/csv`")
    return decode_csv(await read_body(request, MAX_CSV_BYTES))


def query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if abs(value) > MAX_ID:
        raise bad(f"{name} must be an integer")
    return value


def query_flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise bad(f"{name} must be true or false")
    return raw in ("true", "1")


def path_channel(request: Request) -> ChannelName:
    return channel_param({"channel": request.path_params["channel"]})


# -- directory entities from JSON ---------------------------------------------------


def entity_id(value: object, what: str) -> str:
    # `~` is valid in channel ids but separates the student and the staff member in chat ids.
    if not valid_id(value) or "~" in str(value):
        raise bad(f"{what} must be an id of at most 128 letters, digits, '.', '_' or '-', "
                  "starting with a letter or a digit")
    return str(value)


def check_fields(body: dict[str, Any], required: set[str], optional: set[str]) -> None:
    """Refuse unknown fields (a typo would otherwise be ignored) and missing ones."""
    unknown = sorted(set(body) - required - optional)
    if unknown:
        raise bad(f"unknown field {unknown[0]!r}; accepted: {', '.join(sorted(required | optional))}")
    missing = sorted(required - set(body))
    if missing:
        raise bad(f"{missing[0]} is required")


def entity_fields(body: dict[str, Any], path_id: str, required: set[str], optional: set[str]) -> None:
    check_fields(body, required, optional | {"id"})
    if "id" in body and body["id"] != path_id:
        raise bad("the id in the body differs from the id in the path")


def name_field(body: dict[str, Any], field: str = "name") -> str:
    raw = body.get(field)
    value = " ".join(raw.split()) if isinstance(raw, str) else ""
    if not value or len(value) > MAX_NAME:
        raise bad(f"{field} must be a non-empty string of at most {MAX_NAME} characters")
    return value


def optional_text(body: dict[str, Any], field: str, normalize: Callable[[str], str | None],
                  example: str) -> str | None:
    raw = body.get(field)
    if raw is None or raw == "":
        return None
    value = normalize(raw) if isinstance(raw, str) else None
    if value is None:
        raise bad(f"{field} must be {example}, or null")
    return value


def id_list(body: dict[str, Any], field: str, limit: int) -> tuple[str, ...]:
    raw = body.get(field, [])
    if not isinstance(raw, list) or len(raw) > limit:
        raise bad(f"{field} must be a list of at most {limit} ids")
    ids = tuple(entity_id(value, f"each of {field}") for value in raw)
    if len(set(ids)) != len(ids):
        raise bad(f"{field} names the same id twice")
    return ids


def known_school(d: Directory, body: dict[str, Any]) -> str:
    school_id = entity_id(body.get("school_id"), "school_id")
    if school_id not in d.schools:
        raise bad(f"school_id: there is no school {school_id!r}")
    return school_id


def same_school(existing: Person | SchoolClass | Student | None, school_id: str) -> None:
    if existing is not None and existing.school_id != school_id:
        raise CommandError(ErrorCode.CONFLICT, f"{existing.id} belongs to school {existing.school_id!r}: "
                                               "delete it and create it again to move it to another school")


_YEAR = re.compile(r"^([0-9]{4})-([0-9]{4})$")


def school_from(body: dict[str, Any], school_id: str, d: Directory) -> School:
    entity_fields(body, school_id, {"name", "year"}, {"guardians_start_chats"})
    year = body.get("year")
    match = _YEAR.match(year) if isinstance(year, str) else None
    if match is None or int(match[2]) != int(match[1]) + 1:
        raise bad("year must be a school year such as 2026-2027")
    start_chats = body.get("guardians_start_chats", False)
    if not isinstance(start_chats, bool):
        raise bad("guardians_start_chats must be true or false")
    return School(school_id, name_field(body), str(year), start_chats)


def person_from(body: dict[str, Any], person_id: str, d: Directory) -> Person:
    entity_fields(body, person_id, {"school_id", "name", "role"}, {"email", "phone"})
    school_id = known_school(d, body)
    raw_role = body.get("role")
    if raw_role not in tuple(Role):
        raise bad("role must be guardian, teacher or director")
    role = Role(raw_role)
    email = optional_text(body, "email", normalize_email, "an e-mail address")
    phone = optional_text(body, "phone", normalize_phone, "a phone number (e.g. +33612345678)")
    person = Person(person_id, school_id, name_field(body), role, email, phone)
    check_person(d, person)
    return person


def check_person(d: Directory, new: Person) -> None:
    """Refuse a person whose role or school no longer fits where the directory names them."""
    old = d.people.get(new.id)
    if old is not None and old.role.is_staff:
        same_school(old, new.school_id)
    problem = _person_conflict(d, new)
    if problem is not None:
        raise CommandError(ErrorCode.CONFLICT, problem)


def _person_conflict(d: Directory, new: Person) -> str | None:
    taught = sorted(d.classes_taught_by(new.id))
    if taught and new.role is not Role.TEACHER:
        return f"{new.id} teaches {', '.join(taught)}: remove them from these classes first"
    if d.children_of(new.id) and new.role is not Role.GUARDIAN:
        return f"{new.id} is the guardian of students: remove them from these students first"
    if new.role is not Role.GUARDIAN:
        return None
    if any(c.staff_id == new.id for c in d.chats.values()):
        return f"{new.id} has chats with families as a staff member"
    holder = _email_holder(d, new) if new.email else None
    if holder is not None:
        return f"another guardian ({holder}) has this e-mail address: imports tell guardians apart by it"
    return None


def _email_holder(d: Directory, new: Person) -> str | None:
    for person in d.people.values():
        if person.id != new.id and person.role is Role.GUARDIAN and person.email == new.email:
            return person.id
    return None


def class_from(body: dict[str, Any], class_id: str, d: Directory) -> SchoolClass:
    entity_fields(body, class_id, {"school_id", "name"}, {"teachers"})
    school_id = known_school(d, body)
    same_school(d.classes.get(class_id), school_id)
    teachers = id_list(body, "teachers", MAX_TEACHERS)
    for teacher in teachers:
        person = d.people.get(teacher)
        if person is None or person.role is not Role.TEACHER or person.school_id != school_id:
            raise bad(f"teachers: {teacher!r} is not a teacher of school {school_id!r}")
    return SchoolClass(class_id, school_id, name_field(body), teachers)


def student_from(body: dict[str, Any], student_id: str, d: Directory) -> Student:
    entity_fields(body, student_id, {"class_id", "name"}, {"school_id", "guardians"})
    class_id = entity_id(body.get("class_id"), "class_id")
    klass = d.classes.get(class_id)
    if klass is None:
        raise bad(f"class_id: there is no class {class_id!r}")
    if body.get("school_id", klass.school_id) != klass.school_id:
        raise bad(f"class_id: class {class_id!r} belongs to school {klass.school_id!r}")
    same_school(d.students.get(student_id), klass.school_id)
    guardians = id_list(body, "guardians", MAX_GUARDIANS)
    for guardian in guardians:
        person = d.people.get(guardian)
        if person is None or person.role is not Role.GUARDIAN:
            raise bad(f"guardians: {guardian!r} is not a guardian")
    return Student(student_id, klass.school_id, class_id, name_field(body), guardians)


# -- deletions -----------------------------------------------------------------------


def person_deletion(d: Directory, person_id: str) -> Changes:
    """Delete a person, take them out of students and classes, and delete the chats they opened."""
    if person_id not in d.people:
        raise CommandError(ErrorCode.NOT_FOUND, f"there is no person {person_id!r}")
    students = [replace(s, guardians=_without(s.guardians, person_id))
                for s in d.children_of(person_id)]
    classes = [replace(d.classes[c], teachers=_without(d.classes[c].teachers, person_id))
               for c in sorted(d.classes_taught_by(person_id))]
    chats = sorted(c.id for c in d.chats.values() if c.staff_id == person_id)
    return [*students, *classes], {"people": [person_id], "chats": chats}


def class_deletion(d: Directory, class_id: str) -> Changes:
    if class_id not in d.classes:
        raise CommandError(ErrorCode.NOT_FOUND, f"there is no class {class_id!r}")
    students = d.students_of_class(class_id)
    if students:
        raise CommandError(ErrorCode.CONFLICT, f"class {class_id!r} has {len(students)} students: "
                                               "move or delete them first")
    return [], {"classes": [class_id]}


def student_deletion(d: Directory, student_id: str) -> Changes:
    if student_id not in d.students:
        raise CommandError(ErrorCode.NOT_FOUND, f"there is no student {student_id!r}")
    chats = sorted(c.id for c in d.chats.values() if c.student_id == student_id)
    return [], {"students": [student_id], "chats": chats}


def _without(ids: Iterable[str], gone: str) -> tuple[str, ...]:
    return tuple(i for i in ids if i != gone)


def changes_view(changes: Changes) -> dict[str, Any]:
    upserts, deletions = changes
    updated: dict[str, list[str]] = {}
    for item in upserts:
        updated.setdefault(str(item_to_wire(item)["type"]), []).append(item.id)
    return {"deleted": {k: v for k, v in deletions.items() if v}, "updated": updated}


# -- reading the directory -----------------------------------------------------------


def school_view(d: Directory, school_id: str) -> dict[str, Any]:
    school = d.schools.get(school_id)
    if school is None:
        raise CommandError(ErrorCode.NOT_FOUND, f"there is no school {school_id!r}")
    people = sorted((p for p in d.people.values() if p.school_id == school_id), key=lambda p: p.id)
    students = sorted((s for s in d.students.values() if s.school_id == school_id), key=lambda s: s.id)
    guardian_ids = {g for s in students for g in s.guardians}
    guardian_ids |= {p.id for p in people if p.role is Role.GUARDIAN}
    return {
        "school": wire(school),
        "classes": [wire(k) for k in sorted(d.classes.values(), key=lambda k: k.id) if k.school_id == school_id],
        "staff": [wire(p) for p in people if p.role.is_staff],
        "students": [wire(s) for s in students],
        "guardians": [wire(d.people[g]) for g in sorted(guardian_ids) if g in d.people],
    }


def snapshot(d: Directory) -> Directory:
    """A copy that a worker thread may read while the event loop changes the original."""
    return Directory(schools=dict(d.schools), people=dict(d.people), classes=dict(d.classes),
                     students=dict(d.students), chats=dict(d.chats))


def import_result(plan: ImportPlan, dry_run: bool) -> dict[str, Any]:
    return {"school": plan.school_id, "dry_run": dry_run, "applied": not dry_run,
            "summary": plan.summary().as_dict(), "plan": plan.describe()}


def import_refusal(plan: ImportPlan) -> Refused:
    errors = [{"line": e.line, "field": e.field, "message": e.message} for e in plan.errors]
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    return Refused(ErrorCode.BAD_REQUEST, f"{count} in the file; nothing was changed", errors=errors)


# -- the admin API -------------------------------------------------------------------

Builder = Callable[[dict[str, Any], str, Directory], DirectoryItem]
Deletion = Callable[[Directory, str], Changes]
_TABLES: dict[str, Callable[[Directory], dict[str, Any]]] = {
    "schools": lambda d: d.schools, "people": lambda d: d.people,
    "classes": lambda d: d.classes, "students": lambda d: d.students,
}


class AdminApi:
    """Directory writes are checked and saved one at a time in this process."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    async def get_school(self, request: Request) -> Response:
        g = require_api_key(request)
        school_id = entity_id(request.path_params["id"], "the school id")
        return JSONResponse(school_view(g.directory, school_id))

    def put(self, kind: str, build: Builder) -> Endpoint:
        async def handler(request: Request) -> Response:
            g = require_api_key(request)
            item_id = entity_id(request.path_params["id"], "the id in the path")
            body = await json_object(request)
            async with self.lock:
                item = build(body, item_id, g.directory)
                created = item_id not in _TABLES[kind](g.directory)
                await membership_of(request).change([item])
            log.info("directory_put", kind=kind, id=item_id, created=created)
            return JSONResponse(wire(item), status_code=201 if created else 200)

        return endpoint(handler)

    def delete(self, kind: str, plan: Deletion) -> Endpoint:
        async def handler(request: Request) -> Response:
            g = require_api_key(request)
            item_id = entity_id(request.path_params["id"], "the id in the path")
            async with self.lock:
                changes = plan(g.directory, item_id)
                await membership_of(request).change(*changes)
            log.info("directory_delete", kind=kind, id=item_id)
            return JSONResponse(changes_view(changes))

        return endpoint(handler)

    async def import_csv(self, request: Request) -> Response:
        g = require_api_key(request)
        school_id = entity_id(request.path_params["id"], "the school id")
        dry_run = query_flag(request, "dry_run")
        text = await csv_text(request)
        async with self.lock:
            if school_id not in g.directory.schools:
                raise CommandError(ErrorCode.NOT_FOUND, f"there is no school {school_id!r}: create it first")
            plan = await asyncio.to_thread(plan_import, text, school_id, snapshot(g.directory))
            if not plan.ok:
                raise import_refusal(plan)
            if not dry_run:
                upserts: list[DirectoryItem] = list(plan.upserts())
                await membership_of(request).change(upserts, plan.deletions())
        log.info("directory_import", school=school_id, dry_run=dry_run, **plan.summary().as_dict())
        return JSONResponse(import_result(plan, dry_run))


def membership_of(request: Request) -> Membership:
    membership: Membership = request.app.state.membership
    return membership


# -- the integration and user API ----------------------------------------------------


async def publish_as_staff(request: Request) -> Response:
    g = require_api_key(request)
    channel = path_channel(request)
    body = await json_object(request)
    check_fields(body, {"as", "kind"}, {"data", "key"})
    user_id = str_param(body, "as", required=True, max_len=128)
    person = g.directory.person(str(user_id))
    if person is None:
        raise bad(f"as: there is no user {user_id!r}")
    if not person.role.is_staff:
        raise CommandError(ErrorCode.FORBIDDEN, "this API publishes on behalf of staff members only")
    kind = str(str_param(body, "kind", required=True, max_len=32))
    data = checked_data(g, content_limits(g.settings.limits), person, channel, kind, body.get("data"))
    key = str_param(body, "key", required=False, max_len=128)
    appended = await store_and_publish(g, person, channel, kind, data, key)
    log.info("published_via_api", channel=str(channel), seq=appended.message.seq, user=person.id,
             created=appended.created)
    return JSONResponse(published(appended), status_code=201 if appended.created else 200)


async def channel_history(request: Request) -> Response:
    g, person = require_user(request)
    channel = path_channel(request)
    if not policy.may_read(g.directory, person.id, channel):
        raise forbidden(channel)
    before = query_int(request, "before")
    if before is not None and before < 1:
        raise bad("before must be at least 1")
    limit = query_int(request, "limit")
    if limit is None:
        limit = HISTORY_DEFAULT
    if limit < 1:
        raise bad("limit must be at least 1")
    messages, more = await g.store.history(str(channel), before, min(limit, HISTORY_MAX))
    return JSONResponse({"messages": [m.to_wire() for m in messages], "more": more})


async def unread_counts(request: Request) -> Response:
    g, person = require_user(request)
    channels = g.directory.home_channels(person.id)
    latest = await g.store.latest_seqs(channels)
    reads = await g.store.user_read_marks(person.id)
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
        return error_response(ErrorCode.NOT_FOUND, "openapi.json is not installed with this server")
    return Response(body, media_type="application/json")


def api_routes() -> list[Route]:
    """The HTTP API's routes, for `create_app`."""
    admin = AdminApi()
    return [
        Route(f"{ADMIN}/schools/{{id}}", endpoint(admin.get_school), methods=["GET"]),
        Route(f"{ADMIN}/schools/{{id}}", admin.put("schools", school_from), methods=["PUT"]),
        Route(f"{ADMIN}/schools/{{id}}/import", endpoint(admin.import_csv), methods=["POST"]),
        Route(f"{ADMIN}/people/{{id}}", admin.put("people", person_from), methods=["PUT"]),
        Route(f"{ADMIN}/people/{{id}}", admin.delete("people", person_deletion), methods=["DELETE"]),
        Route(f"{ADMIN}/classes/{{id}}", admin.put("classes", class_from), methods=["PUT"]),
        Route(f"{ADMIN}/classes/{{id}}", admin.delete("classes", class_deletion), methods=["DELETE"]),
        Route(f"{ADMIN}/students/{{id}}", admin.put("students", student_from), methods=["PUT"]),
        Route(f"{ADMIN}/students/{{id}}", admin.delete("students", student_deletion), methods=["DELETE"]),
        Route("/api/v1/channels/{channel}/messages", endpoint(publish_as_staff), methods=["POST"]),
        Route("/api/v1/channels/{channel}/messages", endpoint(channel_history), methods=["GET"]),
        Route("/api/v1/me/unread", endpoint(unread_counts), methods=["GET"]),
        Route("/openapi.json", openapi_document, methods=["GET"]),
    ]
