"""Error and close codes carry the wire values of protocol v1."""

from __future__ import annotations

import pytest

from channels.broker import BrokerUnavailable
from persistence.store import StoreUnavailable
from realtime.ws.close import CloseCode, error_reply
from school.errors import (
    ErrorCode,
    Forbidden,
    LiaisonError,
    RateLimited,
    Unauthorized,
    Unavailable,
    error_body,
)

PROTOCOL_ERRORS = {
    "bad_request", "unauthorized", "forbidden", "not_found", "conflict",
    "too_large", "rate_limited", "unavailable", "internal",
    "closed",  # v1.1
    "consent_missing",  # v1.1: a photo of a child without their guardians' consent (issue 13)
}  # fmt: skip


def test_every_protocol_error_code_exists() -> None:
    assert {code.wire for code in ErrorCode} == PROTOCOL_ERRORS


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (CloseCode.BAD_REQUEST, 4400),
        (CloseCode.UNAUTHORIZED, 4401),
        (CloseCode.FORBIDDEN, 4403),
        (CloseCode.TOO_LARGE, 4413),
        (CloseCode.RATE_LIMITED, 4429),
        (CloseCode.GOING_AWAY, 1001),
        (CloseCode.INTERNAL, 1011),
    ],
)
def test_close_codes_have_protocol_values(code: CloseCode, value: int) -> None:
    assert int(code) == value


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (CloseCode.BAD_REQUEST, False),
        (CloseCode.UNAUTHORIZED, False),
        (CloseCode.FORBIDDEN, False),
        (CloseCode.TOO_LARGE, False),
        (CloseCode.GOING_AWAY, True),
        (CloseCode.INTERNAL, True),
        (CloseCode.SLOW_CONSUMER, True),
    ],
)
def test_close_codes_say_whether_to_reconnect(code: CloseCode, reconnect: bool) -> None:
    assert code.reconnect is reconnect


def test_error_body_and_the_error_tree() -> None:
    body = error_body(ErrorCode.NOT_FOUND, "no such message")
    assert body == {"code": "not_found", "message": "no such message"}
    exc = Forbidden("not yours", fatal=True)
    assert isinstance(exc, LiaisonError)
    assert (exc.code, exc.message, exc.fatal, str(exc)) == (ErrorCode.FORBIDDEN, "not yours", True, "not yours")


def test_backend_errors_are_unavailable_and_hide_their_detail() -> None:
    for exc in (StoreUnavailable("disk I/O error at /var/lib/x"), BrokerUnavailable("redis down")):
        assert isinstance(exc, Unavailable)
        assert exc.code is ErrorCode.UNAVAILABLE and exc.code.retryable
        assert "try again" in exc.body()["message"] and "/var" not in exc.body()["message"]


@pytest.mark.parametrize(
    ("exc", "code", "close"),
    [
        (Unauthorized("bad token", fatal=True), "unauthorized", CloseCode.UNAUTHORIZED),
        (Unauthorized("bad token"), "unauthorized", None),
        (RateLimited("slow down", retry_after=2.2, fatal=True), "rate_limited", CloseCode.RATE_LIMITED),
        (ValueError("a bug"), "internal", None),
    ],
)
def test_one_mapping_to_websocket_replies(exc: Exception, code: str, close: CloseCode | None) -> None:
    body, closing = error_reply(exc)
    assert body["code"] == code and closing == close
    if code == "internal":
        assert body["message"] == "internal error"  # no detail of a bug reaches a client


def test_rate_limited_says_when_to_retry() -> None:
    assert RateLimited("slow down", retry_after=2.2).body()["retry_after"] == 3
