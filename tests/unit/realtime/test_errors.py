"""Error and close codes carry the wire values of protocol v1."""

from __future__ import annotations

import pytest

from realtime.errors import CloseCode, CommandError, ErrorCode, error_body

PROTOCOL_ERRORS = {
    "bad_request", "unauthorized", "forbidden", "not_found", "conflict",
    "too_large", "rate_limited", "unavailable", "internal",
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


def test_error_body_and_command_error() -> None:
    body = error_body(ErrorCode.NOT_FOUND, "no such message")
    assert body == {"code": "not_found", "message": "no such message"}
    exc = CommandError(ErrorCode.FORBIDDEN, "not yours", CloseCode.FORBIDDEN)
    assert (exc.code, exc.message, exc.close, str(exc)) == (
        ErrorCode.FORBIDDEN,
        "not yours",
        CloseCode.FORBIDDEN,
        "not yours",
    )
