"""The HTTP routes of children's data (issue 15): export and erasure of a person, the school
year, what retention will purge and when, and the audit log.

Export and erasure take the API key (protocol.md, "HTTP contract points"). The school's
year, retention and audit routes take the API key or the token of one of the school's
directors.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from realtime.http.requests import bearer, json_object, query_int, require_api_key, require_user, services_of
from realtime.services.gdpr import Privacy
from realtime.services.retention import Retention
from school.directory_rules import entity_id
from school.errors import BadRequest, Forbidden, Unavailable
from school.retention import parse_day, purge_months

MAX_AUDIT_PAGE = 500


def _privacy(request: Request) -> Privacy:
    privacy = services_of(request).privacy
    if privacy is None:
        raise Unavailable("children's data services are not running in this process")
    return privacy


async def _key_or_director(request: Request, school_id: str) -> str:
    """Who asks: "api" with the API key, else the school's director whose token it is."""
    services = services_of(request)
    key = services.settings.api_key
    given = bearer(request)
    if key is not None and given is not None and hmac.compare_digest(given.encode("latin-1"), key.bytes()):
        require_api_key(request)
        return "api"
    _, person = await require_user(request)
    if not services.directory.is_director(person.id, school_id):
        raise Forbidden("only a director of this school (or the API key) may see this")
    return person.id


async def export_person(request: Request) -> Response:
    require_api_key(request)
    person_id = entity_id(request.path_params["id"], "the person id in the path")
    chunks = await _privacy(request).export(person_id, "api")
    return StreamingResponse(chunks, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="liaison-{person_id}.zip"', "Cache-Control": "no-store"})


async def erase_person(request: Request) -> Response:
    require_api_key(request)
    person_id = entity_id(request.path_params["id"], "the person id in the path")
    body = await json_object(request, empty_ok=True)
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise BadRequest("dry_run must be true (count what would be erased) or false (erase)")
    counts = await _privacy(request).erase(person_id, "api", dry_run=dry_run)
    return JSONResponse({"person": person_id, "dry_run": dry_run, "counts": counts, "total": sum(counts.values())})


def _year_view(retention: Retention, school_id: str) -> dict[str, object]:
    year = retention.current(school_id)
    if year is None:
        return {"school": school_id, "ends": None, "purge_after_months": None, "purge_on": None, "frozen": False}
    return {"school": school_id, "ends": year.ends.isoformat(), "purge_after_months": year.purge_after_months,
            "purge_on": year.purge_on.isoformat(), "frozen": retention.frozen(school_id),
            "recorded": year.recorded}


async def get_year(request: Request) -> Response:
    school_id = entity_id(request.path_params["id"], "the school id in the path")
    await _key_or_director(request, school_id)
    retention = _privacy(request).retention
    await retention.refresh()
    return JSONResponse(_year_view(retention, school_id))


async def put_year(request: Request) -> Response:
    school_id = entity_id(request.path_params["id"], "the school id in the path")
    actor = await _key_or_director(request, school_id)
    body = await json_object(request)
    ends = parse_day(body.get("ends"))
    months = purge_months(body.get("purge_after_months"))
    retention = _privacy(request).retention
    await retention.set_year(school_id, ends, months, actor)
    return JSONResponse(_year_view(retention, school_id))


async def school_retention(request: Request) -> Response:
    school_id = entity_id(request.path_params["id"], "the school id in the path")
    await _key_or_director(request, school_id)
    return JSONResponse(await _privacy(request).retention.report(school_id))


async def school_audit(request: Request) -> Response:
    school_id = entity_id(request.path_params["id"], "the school id in the path")
    await _key_or_director(request, school_id)
    before = query_int(request, "before")
    limit = query_int(request, "limit") or 100
    if not 1 <= limit <= MAX_AUDIT_PAGE:
        raise BadRequest(f"limit must be from 1 to {MAX_AUDIT_PAGE}")
    entries = await _privacy(request).audit.entries(school_id, before=before, limit=limit)
    return JSONResponse({"entries": [e.to_json() for e in entries],
                         "before": entries[-1].id if len(entries) == limit else None})
