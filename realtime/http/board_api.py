"""The director's board over HTTP (issue 17), described in docs/http-api.md ("The board").

- Admin API (the API key): `GET /api/v1/admin/schools/{id}/reach` (the v1.1 contract point:
  per class `{class, families, families_never_signed_in, families_not_notifiable}`, and more)
  and `GET /api/v1/admin/schools/{id}/families.csv?list=...`.
- User routes (a token): `GET /api/v1/board/schools/{id}` (its directors),
  `GET /api/v1/board/classes/{id}` (its teachers and the school's directors), their
  `/families.csv`, and `POST /api/v1/board/reminders {channel, seq}`. Guardians get 403.

CSV answers are `text/csv; charset=utf-8` with a BOM, `;`-separated, formulas neutralised
(school/board_csv.py), offered as a download (`Content-Disposition: attachment`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from realtime.http.requests import json_object, require_api_key, require_user, services_of
from realtime.services.board import Board
from realtime.ws.frames import channel_param, int_param
from school.directory_rules import check_fields, entity_id
from school.errors import Unavailable


def _board(request: Request) -> Board:
    board = services_of(request).board
    if board is None:
        raise Unavailable("the board is not available on this server")
    return board


def _list(request: Request) -> str | None:
    value = request.query_params.get("list")
    return value or None


def _csv(body: bytes, name: str) -> Response:
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})


def _file_name(scope: str, list_name: str | None) -> str:
    return f"familles-{scope}-{list_name or 'toutes'}.csv".replace("_", "-")


async def admin_reach(request: Request) -> Response:
    require_api_key(request)
    school_id = entity_id(request.path_params["id"], "the school id")
    return JSONResponse(await _board(request).reach(school_id))


async def admin_families_csv(request: Request) -> Response:
    require_api_key(request)
    school_id = entity_id(request.path_params["id"], "the school id")
    list_name = _list(request)
    body = await _board(request).csv(None, school_id=school_id, list_name=list_name)
    return _csv(body, _file_name(school_id, list_name))


async def school_board(request: Request) -> Response:
    _, person = await require_user(request)
    school_id = entity_id(request.path_params["id"], "the school id")
    return JSONResponse(await _board(request).school_board(person, school_id))


async def class_board(request: Request) -> Response:
    _, person = await require_user(request)
    class_id = entity_id(request.path_params["id"], "the class id")
    return JSONResponse(await _board(request).class_board(person, class_id))


async def school_families_csv(request: Request) -> Response:
    _, person = await require_user(request)
    school_id = entity_id(request.path_params["id"], "the school id")
    list_name = _list(request)
    body = await _board(request).csv(person, school_id=school_id, list_name=list_name)
    return _csv(body, _file_name(school_id, list_name))


async def class_families_csv(request: Request) -> Response:
    _, person = await require_user(request)
    class_id = entity_id(request.path_params["id"], "the class id")
    list_name = _list(request)
    body = await _board(request).csv(person, class_id=class_id, list_name=list_name)
    return _csv(body, _file_name(class_id, list_name))


async def remind(request: Request) -> Response:
    _, person = await require_user(request)
    body = await json_object(request)
    check_fields(body, {"channel", "seq"}, set())
    channel = channel_param(body)
    seq = int_param(body, "seq", required=True, minimum=1)
    assert seq is not None
    return JSONResponse(await _board(request).remind(person, channel, seq))
