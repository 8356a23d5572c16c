"""The one place that maps errors to HTTP answers (registered as Starlette's
`exception_handlers`): a `LiaisonError` becomes its status and `{"error": {code, message}}`;
anything else is logged with its traceback and answered 500 without detail."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from school.errors import ErrorCode, LiaisonError, RateLimited, error_body

log = structlog.get_logger("liaison.http")

STATUS = {
    ErrorCode.BAD_REQUEST: 400, ErrorCode.UNAUTHORIZED: 401, ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404, ErrorCode.CONFLICT: 409, ErrorCode.CLOSED: 409, ErrorCode.TOO_LARGE: 413,
    ErrorCode.CONSENT_MISSING: 409,
    ErrorCode.RATE_LIMITED: 429, ErrorCode.UNAVAILABLE: 503, ErrorCode.INTERNAL: 500,
}
CODE_OF_STATUS = {status: code for code, status in STATUS.items()}


def error_response(code: ErrorCode, message: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> JSONResponse:
    if code is ErrorCode.UNAUTHORIZED:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse({"error": error_body(code, message) | extra}, status_code=STATUS[code],
                        headers=headers)


async def liaison_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LiaisonError)
    log.info("http_refused", method=request.method, path=request.url.path, code=exc.code.wire)
    headers = {"Retry-After": str(exc.extra["retry_after"])} if isinstance(exc, RateLimited) else None
    return error_response(exc.code, exc.message, headers, **exc.extra)


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (404 of an unknown /api path, 405 with `Allow`) in our shape."""
    assert isinstance(exc, HTTPException)
    code = CODE_OF_STATUS.get(exc.status_code, ErrorCode.BAD_REQUEST)
    status = exc.status_code
    body = {"error": error_body(code, str(exc.detail))}
    if status == 405:
        body = {"error": {"code": "method_not_allowed", "message": str(exc.detail)}}
    return JSONResponse(body, status_code=status, headers=dict(exc.headers or {}))


async def unexpected(request: Request, exc: Exception) -> Response:
    log.error("http_failed", path=request.url.path, method=request.method, exc_info=exc)
    return error_response(ErrorCode.INTERNAL, "internal error")


EXCEPTION_HANDLERS = {LiaisonError: liaison_error, HTTPException: http_exception, Exception: unexpected}
