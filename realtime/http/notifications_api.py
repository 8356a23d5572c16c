"""HTTP routes of quiet hours, notification preferences and the digest's unsubscribe link
(issue 12, part B; docs/http-api.md "Notifications").

- `GET/PUT /api/v1/admin/schools/{id}/quiet-hours` (API key): the stored value, or the default.
- `GET/PUT /api/v1/schools/{id}/quiet-hours` (a user's token): any person of the school reads
  them (with `quiet_now`, `release_at` and `suggested_at` for the composer); its directors
  change them.
- `GET/PUT /api/v1/me/notification-preferences` (a user's token).
- `GET/POST /api/v1/digest/unsubscribe?token=...` (no sign-in, a signed token): GET shows a
  page with one button, POST (the button, or a mail client's RFC 8058 one-click POST) turns
  the person's digest e-mails off. A GET alone changes nothing: link checkers and mail
  scanners follow links.
"""

from __future__ import annotations

import html

import structlog
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from auth.unsubscribe import read_token, unsubscribe_key
from realtime.http.requests import json_object, read_body, require_api_key, require_user
from realtime.services import Services
from realtime.services.notification_rules import NotificationRules
from school.directory_rules import entity_id
from school.errors import BadRequest, Forbidden, NotFound, Unavailable
from school.preferences import parse_preferences
from school.quiet_hours import parse_quiet_hours, release_at
from school.schedule import MORNING_MARGIN

log = structlog.get_logger("liaison.http_notifications")


def rules_of(services: Services) -> NotificationRules:
    if services.notification_rules is None:
        raise Unavailable("notification settings are not available on this server")
    return services.notification_rules


def school_id_of(request: Request, services: Services) -> str:
    school_id = entity_id(request.path_params["id"], "the school id")
    if school_id not in services.directory.schools:
        raise NotFound(f"there is no school {school_id!r}")
    return school_id


async def _put_quiet_hours(request: Request, services: Services, school_id: str, actor: str) -> Response:
    rules = parse_quiet_hours(await json_object(request))
    await rules_of(services).set_quiet_hours(school_id, rules)
    if services.audit is not None:
        await services.audit.record(actor, "quiet_hours.set", school_id, school_id, details=rules.to_wire())
    log.info("quiet_hours_set", school=school_id, actor=actor)
    return JSONResponse(rules.to_wire())


async def admin_get_quiet_hours(request: Request) -> Response:
    services = require_api_key(request)
    school_id = school_id_of(request, services)
    return JSONResponse((await rules_of(services).quiet_hours(school_id, fresh=True)).to_wire())


async def admin_put_quiet_hours(request: Request) -> Response:
    services = require_api_key(request)
    return await _put_quiet_hours(request, services, school_id_of(request, services), "api-key")


async def school_get_quiet_hours(request: Request) -> Response:
    """The school's quiet hours for its people, with where `now` stands (ms since the epoch)."""
    services, person = await require_user(request)
    school_id = school_id_of(request, services)
    if school_id not in services.directory.schools_of(person.id):
        raise Forbidden("these are the quiet hours of another school")
    rules_service = rules_of(services)
    rules = await rules_service.quiet_hours(school_id, fresh=True)
    ends = release_at(rules, rules_service.clock())
    return JSONResponse({**rules.to_wire(), "quiet_now": ends is not None,
                         "release_at": None if ends is None else int(ends * 1000),
                         "suggested_at": None if ends is None else int((ends + MORNING_MARGIN) * 1000)})


async def school_put_quiet_hours(request: Request) -> Response:
    services, person = await require_user(request)
    school_id = school_id_of(request, services)
    if not services.directory.is_director(person.id, school_id):
        raise Forbidden("only the school's directors change its quiet hours")
    return await _put_quiet_hours(request, services, school_id, person.id)


async def get_my_preferences(request: Request) -> Response:
    services, person = await require_user(request)
    return JSONResponse((await rules_of(services).preferences(person.id, fresh=True)).to_wire())


async def put_my_preferences(request: Request) -> Response:
    services, person = await require_user(request)
    rules = rules_of(services)
    prefs = parse_preferences(await json_object(request), await rules.preferences(person.id, fresh=True))
    await rules.set_preferences(person.id, prefs)
    log.info("preferences_set", user=person.id)
    return JSONResponse(prefs.to_wire())


# -- the digest's unsubscribe link ----------------------------------------------------------------


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    # the app's own stylesheet: the site's CSP allows no inline style
    page = (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="stylesheet" href="/style.css"></head>\n'
            f'<body><main class="card unsubscribe">\n<h1>{html.escape(title)}</h1>\n{body}\n</main>'
            '</body></html>\n')
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


def _person_of_token(request: Request, services: Services) -> str:
    token = request.query_params.get("token", "")
    user_id = read_token(unsubscribe_key(services.settings.jwt_secret.bytes()), token)
    if user_id is None:
        raise BadRequest("this unsubscribe link is not valid: copy the whole link from the e-mail")
    return user_id


async def unsubscribe_page(request: Request) -> Response:
    services = request.app.state.services
    try:
        _person_of_token(request, services)
    except BadRequest:
        return _page("Lien non valide", "<p>Ce lien de désinscription n'est pas valide. Copiez le lien"
                     " complet depuis l'e-mail, ou changez vos préférences dans Liaison.</p>", 400)
    action = html.escape(f"{request.url.path}?{request.url.query}")
    return _page("Résumés par e-mail", f'<form method="post" action="{action}"><p>Ne plus recevoir les'
                 " résumés des nouveaux messages par e-mail ?</p>"
                 '<button type="submit" class="btn btn-primary">Me désinscrire</button></form>')


async def unsubscribe(request: Request) -> Response:
    services: Services = request.app.state.services
    await read_body(request, 4096)  # the one-click body (List-Unsubscribe=One-Click), or the form's
    try:
        user_id = _person_of_token(request, services)
    except BadRequest:
        return _page("Lien non valide", "<p>Ce lien de désinscription n'est pas valide.</p>", 400)
    rules = rules_of(services)
    prefs = await rules.preferences(user_id, fresh=True)
    if prefs.digest_email:
        await rules.set_preferences(user_id, parse_preferences({"digest_email": False}, prefs))
    log.info("digest_unsubscribed", user=user_id)
    return _page("Désinscription enregistrée", "<p>Vous ne recevrez plus les résumés par e-mail. Vous pouvez"
                 " les réactiver dans Liaison, rubrique « Notifications ».</p>")
