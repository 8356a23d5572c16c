"""Sign-in over HTTP (issue 11): `/api/v1/auth/...`, the user's sessions (`/api/v1/me/sessions`),
and the administrator's session ends and invitations. docs/http-api.md tells the story.

The refresh credential travels in a cookie: HttpOnly (no script reads it), SameSite=Strict,
Path=/api/v1/auth (sent to these routes only), Secure — except on plain http to 127.0.0.1 or
localhost, so that tests and `make run` work; a native app (`"client": "native"`) gets it in
the body too and sends it back as `refresh_token`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth import tokens
from persistence.auth_store import DeviceSession
from realtime.http.requests import bearer, json_object, require_api_key, services_of
from realtime.services import Services
from realtime.services.invitations import class_audience, school_audience
from realtime.services.signin import SignedIn, SignIn
from school.directory import Person
from school.directory_rules import entity_id
from school.errors import BadRequest, NotFound, Unauthorized, Unavailable

log = structlog.get_logger("liaison.auth_api")

COOKIE: Final = "liaison_refresh"
COOKIE_PATH: Final = "/api/v1/auth"
COOKIE_MAX_AGE: Final = 120 * 86_400  # the sessions' idle timeout
MAX_AUTH_BODY: Final = 16 * 1024
LOCAL_HOSTS: Final = ("127.0.0.1", "localhost")
ACCEPTED: Final = {"message": "if this address is in a school's directory, a code is on its way"}


def signin_of(request: Request) -> SignIn:
    signin = services_of(request).signin
    if signin is None:
        raise Unavailable("sign-in is not available on this server")
    return signin


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadRequest(f"{name} must be a string of 1 to {limit} characters")
    return value


def _native(body: dict[str, Any]) -> bool:
    client = body.get("client")
    if client is not None and client not in ("web", "native"):
        raise BadRequest("client must be 'web' or 'native'")
    return client == "native"


def signed_in_response(request: Request, signed: SignedIn, native: bool) -> Response:
    person = signed.person
    body: dict[str, Any] = {
        "access_token": signed.access_token, "token_type": "Bearer", "expires_in": signed.expires_in,
        "session": signed.session.id,
        "user": {"id": person.id, "name": person.name, "role": person.role.value},
    }
    if native:
        body["refresh_token"] = signed.credential
    response = JSONResponse(body, headers={"Cache-Control": "no-store"})
    set_refresh_cookie(request, response, signed.credential)
    return response


def _secure(request: Request) -> bool:
    return not (request.url.scheme == "http" and request.url.hostname in LOCAL_HOSTS)


def set_refresh_cookie(request: Request, response: Response, credential: str) -> None:
    response.set_cookie(COOKIE, credential, max_age=COOKIE_MAX_AGE, path=COOKIE_PATH, secure=_secure(request),
                        httponly=True, samesite="strict")


def clear_refresh_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, secure=_secure(request), httponly=True, samesite="strict")


def _credential(request: Request, body: dict[str, Any]) -> tuple[str | None, bool]:
    """The refresh credential (from the body, else the cookie) and whether it came in the body."""
    given = body.get("refresh_token")
    if given is not None:
        if not isinstance(given, str) or len(given) > 128:
            raise BadRequest("refresh_token must be a string")
        return given, True
    return request.cookies.get(COOKIE), False


# -- /api/v1/auth ------------------------------------------------------------------------------


async def request_code(request: Request) -> Response:
    signin = signin_of(request)
    body = await json_object(request, MAX_AUTH_BODY)
    email = _text(body, "email", 320)
    assert email is not None
    signin.request_code(email)
    return JSONResponse(ACCEPTED, status_code=202)


async def verify_code(request: Request) -> Response:
    signin = signin_of(request)
    body = await json_object(request, MAX_AUTH_BODY)
    email, code = _text(body, "email", 320), _text(body, "code", 32)
    assert email is not None and code is not None
    native = _native(body)
    signed = await signin.verify(email, code, body.get("device"))
    return signed_in_response(request, signed, native)


async def refresh(request: Request) -> Response:
    signin = signin_of(request)
    body = await json_object(request, MAX_AUTH_BODY, empty_ok=True)
    native = _native(body)
    credential, in_body = _credential(request, body)
    if credential is None:
        raise Unauthorized("send the refresh credential (its cookie, or refresh_token in the body)")
    signed = await signin.refresh(credential)
    return signed_in_response(request, signed, native or in_body)


async def logout(request: Request) -> Response:
    signin = signin_of(request)
    body = await json_object(request, MAX_AUTH_BODY, empty_ok=True)
    credential, _ = _credential(request, body)
    if credential is not None:
        await signin.sign_out(credential)
    response = Response(status_code=204)
    clear_refresh_cookie(request, response)
    return response


async def oidc_exchange(request: Request) -> Response:
    signin = signin_of(request)
    body = await json_object(request, MAX_AUTH_BODY)
    token = _text(body, "id_token", tokens.MAX_TOKEN_CHARS)
    native = _native(body)
    signed = await signin.oidc_sign_in(token, body.get("device"))
    return signed_in_response(request, signed, native)


# -- /api/v1/me/sessions -----------------------------------------------------------------------


async def require_session(request: Request) -> tuple[Services, SignIn, Person, str | None]:
    """The user of the bearer access token, and its sign-in session (None: a token without one,
    from `liaison token`); a token of an ended session is refused."""
    services, signin = services_of(request), signin_of(request)
    token = bearer(request)
    if token is None:
        raise Unauthorized("send the access token as `Authorization: Bearer <token>`")
    claims = tokens.verify_access(services.settings.jwt_secret.bytes(), token, signin.clock())
    person = services.directory.person(claims.user_id)
    if person is None:
        raise Unauthorized("this account is not (or no longer) known")
    if claims.session_id is not None and not await signin.sessions.is_live(claims.session_id):
        raise Unauthorized("this session has ended: sign in again")
    return services, signin, person, claims.session_id


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def session_view(session: DeviceSession, current: str | None) -> dict[str, Any]:
    return {"id": session.id, "device": session.device, "created_at": _iso(session.created_at),
            "last_seen": _iso(session.last_seen), "current": session.id == current}


async def my_sessions(request: Request) -> Response:
    _, signin, person, current = await require_session(request)
    sessions = await signin.sessions.of_user(person.id)
    return JSONResponse({"sessions": [session_view(s, current) for s in sessions]})


async def end_my_session(request: Request) -> Response:
    _, signin, person, _ = await require_session(request)
    session_id = request.path_params["id"]
    if len(session_id) > 128 or not await signin.ends.end_one(person.id, session_id):
        raise NotFound("you have no live session with this id")
    return Response(status_code=204)


async def end_my_other_sessions(request: Request) -> Response:
    _, signin, person, current = await require_session(request)
    ended = await signin.ends.end_others(person.id, current)
    return JSONResponse({"ended": len(ended)})


# -- admin ---------------------------------------------------------------------------------------


async def end_person_sessions(request: Request) -> Response:
    services = require_api_key(request)
    person_id = entity_id(request.path_params["id"], "the id in the path")
    signin = signin_of(request)
    ended = await signin.ends.end_all(person_id, "admin")
    log.info("admin_ended_sessions", user=person_id, sessions=len(ended), known=bool(services.directory.person(
        person_id)))
    return JSONResponse({"ended": len(ended)})


async def invite_school(request: Request) -> Response:
    services = require_api_key(request)
    school_id = entity_id(request.path_params["id"], "the school id")
    if services.invitations is None:
        raise Unavailable("invitations are not available on this server")
    people = school_audience(services.directory, school_id)
    return JSONResponse(await services.invitations.invite(school_id, people))


async def invite_class(request: Request) -> Response:
    services = require_api_key(request)
    class_id = entity_id(request.path_params["id"], "the class id")
    if services.invitations is None:
        raise Unavailable("invitations are not available on this server")
    school_id, people = class_audience(services.directory, class_id)
    return JSONResponse(await services.invitations.invite(school_id, people))
