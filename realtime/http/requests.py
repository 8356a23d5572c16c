"""Reading HTTP requests: credentials, bounded bodies, query and path parameters."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request

from auth import tokens
from channels.limits import UserLimits
from realtime.services import Services
from realtime.ws.frames import MAX_ID, channel_param
from school.channels import ChannelName
from school.directory import Person
from school.errors import BadRequest, TooLarge, Unauthorized, Unavailable
from school.importer import decode_csv
from school.text import check_value

MAX_JSON_BYTES = 1024 * 1024
MAX_CSV_BYTES = 10 * 1024 * 1024


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def bearer(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    return credentials if scheme.lower() == "bearer" and credentials else None


async def count_request(request: Request) -> None:
    """Count an API request against its subject's rate (`RateLimited`: 429 with `Retry-After`):
    the API key when it carries the key, the user whose valid token it carries, or else its
    client address (so guessing keys or tokens is limited too). Shared by every gateway."""
    limits: UserLimits | None = getattr(request.app.state, "user_limits", None)
    if limits is None:
        return
    settings = services_of(request).settings
    given = bearer(request)
    if given is not None:
        key = settings.api_key
        if key is not None and hmac.compare_digest(given.encode("latin-1"), key.bytes()):
            await limits.request("key", api_key=True)
            return
        try:
            user_id = tokens.verify(settings.jwt_secret.bytes(), given)
        except tokens.TokenError:
            pass
        else:
            await limits.request("user:" + user_id)
            return
    await limits.request("addr:" + (request.client.host if request.client else "unknown"))


def require_api_key(request: Request) -> Services:
    """The services, when the request carries the API key."""
    services = services_of(request)
    key = services.settings.api_key
    if key is None:
        raise Unavailable("this API is off: set LIAISON_API_KEY (at least 24 random "
                          "characters, e.g. `openssl rand -hex 32`) and restart")
    given = bearer(request)
    if given is None or not hmac.compare_digest(given.encode("latin-1"), key.bytes()):
        raise Unauthorized("send the API key as `Authorization: Bearer <LIAISON_API_KEY>`")
    return services


async def require_user(request: Request) -> tuple[Services, Person]:
    """The services and the user whose token the request carries (`require_session_user`)."""
    services, person, _ = await require_session_user(request)
    return services, person


async def require_session_user(request: Request) -> tuple[Services, Person, str | None]:
    """The services, the user whose token the request carries, and the token's device session
    (None for a token without one, e.g. from `liaison token`). A token of a device session that
    has ended (signed out, ended from another device, the person removed) is refused at once,
    not only when it expires."""
    services = services_of(request)
    token = bearer(request)
    if token is None:
        raise Unauthorized("send the user's token as `Authorization: Bearer <token>`")
    try:
        claims = tokens.verify_access(services.settings.jwt_secret.bytes(), token)
    except tokens.TokenError as exc:
        raise Unauthorized(str(exc)) from None
    person = services.directory.person(claims.user_id)
    if person is None:
        raise Unauthorized("this account is not (or no longer) known")
    signin = services.signin
    if claims.session_id is not None and signin is not None and not await signin.sessions.is_live(
            claims.session_id):
        raise Unauthorized("this session has ended: sign in again")
    return services, person, claims.session_id


async def read_body(request: Request, limit: int) -> bytes:
    too_large = TooLarge(f"the body is larger than {limit:,} bytes")
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


async def json_object(request: Request, limit: int = MAX_JSON_BYTES, *, empty_ok: bool = False) -> dict[str, Any]:
    """The body's JSON object, checked by `check_value`; with `empty_ok`, an empty body is `{}`
    (a browser refreshing with its cookie)."""
    raw = await read_body(request, limit)
    if empty_ok and not raw.strip():
        return {}
    expected = "empty or a JSON object" if empty_ok else "a JSON object"
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest(f"the body must be {expected} (Content-Type: application/json)") from None
    if not isinstance(body, dict):
        raise BadRequest(f"the body must be {expected}")
    check_value(body, "body")
    return body


async def csv_text(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise BadRequest("send the file as the body with `Content-Type: text/csv`")
    return decode_csv(await read_body(request, MAX_CSV_BYTES))


def query_int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if abs(value) > MAX_ID:
        raise BadRequest(f"{name} must be an integer")
    return value


def query_flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false")
    return raw in ("true", "1")


def path_channel(request: Request) -> ChannelName:
    return channel_param({"channel": request.path_params["channel"]})
