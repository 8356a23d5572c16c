"""The admin API (`/api/v1/admin/...`, API key): a school's directory entity by entity, and
the import of a school's CSV export. The rules are `school.directory_rules`; every write
goes through `Membership.change`, so open connections gain and lose channels at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from realtime.http.requests import csv_text, json_object, query_flag, require_api_key
from school.directory import DirectoryItem
from school.directory_rules import (
    TABLES,
    Builder,
    Deletion,
    changes_view,
    entity_id,
    school_view,
    snapshot,
    wire,
)
from school.errors import BadRequest, NotFound
from school.importer import ImportPlan, plan_import

log = structlog.get_logger("liaison.admin")

Endpoint = Callable[[Request], Awaitable[Response]]


def import_result(plan: ImportPlan, dry_run: bool) -> dict[str, Any]:
    return {"school": plan.school_id, "dry_run": dry_run, "applied": not dry_run,
            "summary": plan.summary().as_dict(), "plan": plan.describe()}


def import_refusal(plan: ImportPlan) -> BadRequest:
    errors = [{"line": e.line, "field": e.field, "message": e.message} for e in plan.errors]
    count = f"{len(errors)} error{'s' if len(errors) != 1 else ''}"
    return BadRequest(f"{count} in the file; nothing was changed", errors=errors)


class AdminApi:
    """Directory writes are checked and saved one at a time in this process."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    async def get_school(self, request: Request) -> Response:
        services = require_api_key(request)
        school_id = entity_id(request.path_params["id"], "the school id")
        return JSONResponse(school_view(services.directory, school_id))

    def put(self, kind: str, build: Builder) -> Endpoint:
        async def handler(request: Request) -> Response:
            services = require_api_key(request)
            item_id = entity_id(request.path_params["id"], "the id in the path")
            body = await json_object(request)
            async with self.lock:
                item = build(body, item_id, services.directory)
                created = item_id not in TABLES[kind](services.directory)
                await services.membership.change([item])
            log.info("directory_put", kind=kind, id=item_id, created=created)
            return JSONResponse(wire(item), status_code=201 if created else 200)

        return handler

    def delete(self, kind: str, plan: Deletion) -> Endpoint:
        async def handler(request: Request) -> Response:
            services = require_api_key(request)
            item_id = entity_id(request.path_params["id"], "the id in the path")
            async with self.lock:
                changes = plan(services.directory, item_id)
                await services.membership.change(*changes)
            log.info("directory_delete", kind=kind, id=item_id)
            return JSONResponse(changes_view(changes))

        return handler

    async def import_csv(self, request: Request) -> Response:
        services = require_api_key(request)
        school_id = entity_id(request.path_params["id"], "the school id")
        dry_run = query_flag(request, "dry_run")
        text = await csv_text(request)
        directory = services.directory
        async with self.lock:
            if school_id not in directory.schools:
                raise NotFound(f"there is no school {school_id!r}: create it first")
            plan = await asyncio.to_thread(plan_import, text, school_id, snapshot(directory))
            if not plan.ok:
                raise import_refusal(plan)
            if not dry_run:
                upserts: list[DirectoryItem] = list(plan.upserts())
                await services.membership.change(upserts, plan.deletions())
                if services.consents is not None:  # the file's image consents (issue 13): photos follow
                    for student, guardian, state in plan.consents():
                        await services.consents.set("api-key", student, guardian, state)
                if services.audit is not None:
                    await services.audit.record("api", "imported", school_id, school_id,
                                                dict(plan.summary().as_dict()))
        log.info("directory_import", school=school_id, dry_run=dry_run, **plan.summary().as_dict())
        return JSONResponse(import_result(plan, dry_run))
