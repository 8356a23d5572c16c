"""WebSocket close codes of protocol v1, and the one place that maps errors to WebSocket terms.

Errors themselves are `school.errors.LiaisonError` (one tree, the wire code on the
exception); `error_reply` turns any exception raised by a command into the reply body
and, for a fatal error, the close code. Unknown exceptions are the caller's to log.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from school.errors import ErrorCode, LiaisonError, error_body


class CloseCode(IntEnum):
    """WebSocket close codes; `reconnect` says whether a client should connect again."""

    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    TOO_LARGE = 4413
    RATE_LIMITED = 4429
    SLOW_CONSUMER = 4503
    GOING_AWAY = 1001
    INTERNAL = 1011
    TRY_AGAIN_LATER = 1013

    @property
    def reconnect(self) -> bool:
        return self in (CloseCode.SLOW_CONSUMER, CloseCode.GOING_AWAY, CloseCode.INTERNAL,
                        CloseCode.RATE_LIMITED, CloseCode.TRY_AGAIN_LATER)


# the close code of a fatal error, by its error code
FATAL_CLOSE = {
    ErrorCode.BAD_REQUEST: CloseCode.BAD_REQUEST,
    ErrorCode.UNAUTHORIZED: CloseCode.UNAUTHORIZED,
    ErrorCode.FORBIDDEN: CloseCode.FORBIDDEN,
    ErrorCode.TOO_LARGE: CloseCode.TOO_LARGE,
    ErrorCode.RATE_LIMITED: CloseCode.RATE_LIMITED,
}


def error_reply(exc: BaseException) -> tuple[dict[str, Any], CloseCode | None]:
    """The `error` body for an exception a command raised, and the close code if the session
    must end. Anything that is not a `LiaisonError` is `internal`, without detail."""
    if isinstance(exc, LiaisonError):
        close = FATAL_CLOSE.get(exc.code, CloseCode.INTERNAL) if exc.fatal else None
        return exc.body(), close
    return error_body(ErrorCode.INTERNAL, "internal error"), None
