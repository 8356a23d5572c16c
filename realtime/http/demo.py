"""Demo sign-in (`--demo` only): the demo school's people and a token for one of them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from auth import tokens
from realtime.http.requests import json_object, services_of
from school.demo import SCHOOL_ID
from school.errors import BadRequest, NotFound

MAX_DEMO_BODY = 1024


def _demo_only(request: Request) -> None:
    if not services_of(request).settings.demo:
        raise NotFound("demo sign-in exists only in --demo mode")


async def demo_people(request: Request) -> Response:
    _demo_only(request)
    d = services_of(request).directory
    school = d.schools[SCHOOL_ID]
    people = [{"id": p.id, "name": p.name, "role": p.role.value}
              for p in sorted(d.people.values(), key=lambda p: (p.role.value, p.name))
              if p.school_id == SCHOOL_ID]
    return JSONResponse({"school": {"id": school.id, "name": school.name}, "people": people})


async def demo_token(request: Request) -> Response:
    """A token for a person of the demo school only (never another school's people)."""
    _demo_only(request)
    services = services_of(request)
    body = await json_object(request, MAX_DEMO_BODY)
    user = body.get("user")
    person = services.directory.person(user) if isinstance(user, str) else None
    if person is None or person.school_id != SCHOOL_ID:
        raise BadRequest("user must be the id of a person of the demo school")
    settings = services.settings
    token = tokens.issue(settings.jwt_secret.bytes(), person.id, settings.token_ttl)
    return JSONResponse({"token": token})


async def demo_outbox(request: Request) -> Response:
    """The e-mails the demo would have sent (no LIAISON_SMTP_URL), newest first."""
    _demo_only(request)
    outbox = services_of(request).outbox
    if outbox is None:
        raise NotFound("the demo sends real e-mails (LIAISON_SMTP_URL is set): there is no outbox")
    mails = [{"at": sent.at, "to": sent.mail.to, "subject": sent.mail.subject, "text": sent.mail.text}
             for sent in outbox.sent()]
    return JSONResponse(mails)
