"""Commands from decoded frames, and the readers of their parameters."""

from __future__ import annotations

from typing import Any

import pytest

from realtime.ws.frames import (
    MAX_ID,
    Command,
    channel_param,
    int_param,
    parse_command,
    since_param,
    str_param,
)
from school.channels import ChannelName, ChannelType
from school.errors import ErrorCode, LiaisonError


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"id": 1, "op": "ping"}, Command(1, "ping", {"id": 1, "op": "ping"})),
        ({"id": MAX_ID, "op": "x" * 32}, Command(MAX_ID, "x" * 32, {"id": MAX_ID, "op": "x" * 32})),
        ({"id": 3, "op": "whatever", "a": 1}, Command(3, "whatever", {"id": 3, "op": "whatever", "a": 1})),
    ],
)
def test_parse_command_valid(obj: dict[str, Any], expected: Command) -> None:
    assert parse_command(obj) == expected


@pytest.mark.parametrize(
    "obj",
    [
        {"op": "ping"},
        {"id": 0, "op": "ping"},
        {"id": -1, "op": "ping"},
        {"id": True, "op": "ping"},
        {"id": 1.0, "op": "ping"},
        {"id": "1", "op": "ping"},
        {"id": None, "op": "ping"},
        {"id": MAX_ID + 1, "op": "ping"},
        {"id": 1},
        {"id": 1, "op": 5},
        {"id": 1, "op": None},
        {"id": 1, "op": ""},
        {"id": 1, "op": "x" * 33},
        {"id": 1, "op": "ping", 3: "non-string key"},
        [1, "ping"],
        "ping",
        None,
        42,
    ],
    ids=repr,
)
def test_parse_command_refuses(obj: object) -> None:
    assert parse_command(obj) is None


def _code(exc: pytest.ExceptionInfo[LiaisonError]) -> ErrorCode:
    return exc.value.code


def test_channel_param_reads_a_channel() -> None:
    assert channel_param({"channel": "class:cp-a"}) == ChannelName(ChannelType.CLASS, "cp-a")
    assert channel_param({"to": "user:p-adam"}, "to") == ChannelName(ChannelType.USER, "p-adam")


@pytest.mark.parametrize("raw", [None, "", "cp-a", "room:x", "class:", "class:a b", 5, ["class:cp-a"]])
def test_channel_param_errors(raw: object) -> None:
    params = {} if raw is None else {"channel": raw}
    with pytest.raises(LiaisonError) as exc:
        channel_param(params)
    assert _code(exc) is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    ("params", "required", "minimum", "expected"),
    [
        ({"seq": 5}, True, 0, 5),
        ({"seq": 0}, True, 0, 0),
        ({}, False, 0, None),
        ({"seq": None}, False, 0, None),
        ({"seq": MAX_ID}, True, 1, MAX_ID),
    ],
)
def test_int_param_valid(params: dict[str, Any], required: bool, minimum: int, expected: int | None) -> None:
    assert int_param(params, "seq", required=required, minimum=minimum) == expected


@pytest.mark.parametrize(
    ("params", "minimum"),
    [
        ({}, 0),
        ({"seq": "5"}, 0),
        ({"seq": 5.0}, 0),
        ({"seq": True}, 0),
        ({"seq": MAX_ID + 1}, 0),
        ({"seq": 0}, 1),
        ({"seq": -1}, 0),
    ],
    ids=repr,
)
def test_int_param_errors(params: dict[str, Any], minimum: int) -> None:
    with pytest.raises(LiaisonError) as exc:
        int_param(params, "seq", required=True, minimum=minimum)
    assert _code(exc) is ErrorCode.BAD_REQUEST
    assert "seq" in exc.value.message


def test_str_param_valid() -> None:
    assert str_param({"key": "abc"}, "key", required=True) == "abc"
    assert str_param({}, "key", required=False) is None
    assert str_param({"key": "x" * 10}, "key", required=True, max_len=10) == "x" * 10


@pytest.mark.parametrize("params", [{}, {"key": ""}, {"key": 5}, {"key": "x" * 11}, {"key": ["a"]}], ids=repr)
def test_str_param_errors(params: dict[str, Any]) -> None:
    with pytest.raises(LiaisonError) as exc:
        str_param(params, "key", required=True, max_len=10)
    assert _code(exc) is ErrorCode.BAD_REQUEST


def test_since_param_valid() -> None:
    assert since_param({}, 3) == {}
    assert since_param({"since": {"class:cp-a": 41, "user:p-adam": 0}}, 3) == {"class:cp-a": 41, "user:p-adam": 0}


@pytest.mark.parametrize(
    "since",
    [
        [],
        "class:cp-a",
        {"cp-a": 1},
        {"class:cp-a": -1},
        {"class:cp-a": "1"},
        {"class:cp-a": True},
        {"class:cp-a": 1.5},
        {"class:cp-a": MAX_ID + 1},
    ],
    ids=repr,
)
def test_since_param_bad_request(since: object) -> None:
    with pytest.raises(LiaisonError) as exc:
        since_param({"since": since}, 3)
    assert _code(exc) is ErrorCode.BAD_REQUEST


def test_since_param_too_many_channels_is_too_large() -> None:
    since = {f"class:c{i}": 0 for i in range(4)}
    with pytest.raises(LiaisonError) as exc:
        since_param({"since": since}, 3)
    assert _code(exc) is ErrorCode.TOO_LARGE
