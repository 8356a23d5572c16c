"""The one error tree of Liaison: every refusal the protocol can answer carries its wire code.

`LiaisonError` is the root. Each transport maps it in exactly one place: the WebSocket
engine turns it into an error reply (and, when `fatal`, a close code chosen from the
code); the HTTP API's exception handler turns it into a status. `Unavailable` is the
branch for backends (the store's `StoreUnavailable`, the broker's `BrokerUnavailable`):
the client may retry. Anything that is not a `LiaisonError` is a bug: logged with its
traceback and answered `internal` without detail.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    """The error codes of protocol v1; each says whether a client may retry the same command."""

    BAD_REQUEST = ("bad_request", False)
    UNAUTHORIZED = ("unauthorized", False)
    FORBIDDEN = ("forbidden", False)
    NOT_FOUND = ("not_found", False)
    CONFLICT = ("conflict", False)
    TOO_LARGE = ("too_large", False)
    RATE_LIMITED = ("rate_limited", True)
    UNAVAILABLE = ("unavailable", True)
    INTERNAL = ("internal", True)
    CLOSED = ("closed", False)  # v1.1: publishing in a closed chat
    CONSENT_MISSING = ("consent_missing", False)  # v1.1: a photo of a child without their guardians' consent

    def __init__(self, wire: str, retryable: bool) -> None:
        self.wire = wire
        self.retryable = retryable


class LiaisonError(Exception):
    """A refusal with a protocol error code. `message` is shown to the user; `extra` adds
    fields to the error body (e.g. `retry_after`, an import's line errors); `fatal` asks the
    transport to end the session after the reply (a bad token at `connect`)."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None, fatal: bool = False,
                 **extra: Any) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.fatal = fatal
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The `error` object of a reply: `{code, message}` and the extra fields."""
        return {"code": self.code.wire, "message": self.message, **self.extra}


class BadRequest(LiaisonError):
    code = ErrorCode.BAD_REQUEST


class Unauthorized(LiaisonError):
    code = ErrorCode.UNAUTHORIZED


class Forbidden(LiaisonError):
    code = ErrorCode.FORBIDDEN


class NotFound(LiaisonError):
    code = ErrorCode.NOT_FOUND


class Conflict(LiaisonError):
    code = ErrorCode.CONFLICT


class Closed(LiaisonError):
    """The chat is closed: readable, not writable, until its staff member opens it again."""

    code = ErrorCode.CLOSED


class ConsentMissing(LiaisonError):
    """A photo lists students whose guardians have not all consented; `students` names them."""

    code = ErrorCode.CONSENT_MISSING


class TooLarge(LiaisonError):
    code = ErrorCode.TOO_LARGE


class RateLimited(LiaisonError):
    """Too many requests; `retry_after` (seconds) says when the next one will be taken."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after: float, *, fatal: bool = False) -> None:
        super().__init__(message, fatal=fatal, retry_after=max(1, round(retry_after + 0.499)))
        self.retry_after = float(retry_after)


class Unavailable(LiaisonError):
    """A backend (store, broker) cannot be reached or did not answer in time: retry later."""

    code = ErrorCode.UNAVAILABLE

    def __init__(self, message: str = "the service is unavailable, try again shortly", **extra: Any) -> None:
        super().__init__(message, **extra)


def error_body(code: ErrorCode, message: str) -> dict[str, str]:
    """An error body for a code without an exception (the transports' own refusals)."""
    return {"code": code.wire, "message": message}
