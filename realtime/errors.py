"""Error codes and close codes of protocol v1, and the one place that maps exceptions to them."""

from __future__ import annotations

from enum import Enum, IntEnum


class ErrorCode(Enum):
    """Each code says whether the client may simply retry the same command later."""

    BAD_REQUEST = ("bad_request", False)
    UNAUTHORIZED = ("unauthorized", False)
    FORBIDDEN = ("forbidden", False)
    NOT_FOUND = ("not_found", False)
    CONFLICT = ("conflict", False)
    TOO_LARGE = ("too_large", False)
    RATE_LIMITED = ("rate_limited", True)
    UNAVAILABLE = ("unavailable", True)
    INTERNAL = ("internal", True)

    def __init__(self, wire: str, retryable: bool) -> None:
        self.wire = wire
        self.retryable = retryable


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

    @property
    def reconnect(self) -> bool:
        return self in (CloseCode.SLOW_CONSUMER, CloseCode.GOING_AWAY, CloseCode.INTERNAL,
                        CloseCode.RATE_LIMITED)


class CommandError(Exception):
    """A command failed with a protocol error code; the message is shown to the user."""

    def __init__(self, code: ErrorCode, message: str, close: CloseCode | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close = close


def error_body(code: ErrorCode, message: str) -> dict[str, str]:
    return {"code": code.wire, "message": message}
