"""Probes for the operator: `/healthz` (the process answers), `/readyz` (the store and the
broker answer, the store can write), `/metrics` (Prometheus text)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from realtime.metrics import CONTENT_TYPE

Check = Callable[[], Awaitable[object]]


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks: dict[str, Check] = request.app.state.readiness
    problems: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await check()
        except Exception as exc:
            problems[name] = type(exc).__name__
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    render: Callable[[], bytes] = request.app.state.render_metrics
    return Response(render(), media_type=CONTENT_TYPE)
