"""The per-connection protocol state machine: frames in, decisions out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime.config import Limits
from realtime.ws.close import CloseCode
from realtime.ws.codec import JSON, MSGPACK, Codec
from realtime.ws.session import Session, State
from school.wire import ErrorReply

LIMIT = 100


def make_session(codec: Codec = JSON, ready: bool = False, **limits: Any) -> Session:
    session = Session("s-1", codec, Limits(max_frame_bytes=LIMIT, **limits))
    if ready:
        session.state = State.READY
    return session


def cmd(cid: int, op: str = "ping", **params: Any) -> str:
    return json.dumps({"id": cid, "op": op, **params}, ensure_ascii=False)


def error_code(reply: ErrorReply | None) -> str:
    assert reply is not None
    return reply["error"]["code"]


# -- well-formed commands and the connect gate -----------------------------------


@pytest.mark.parametrize(
    ("ready", "frame", "op"),
    [
        (False, cmd(1, "connect", token="t"), "connect"),
        (False, cmd(2, "ping"), "ping"),
        (True, cmd(3, "publish", channel="class:cp-a"), "publish"),
        (True, cmd(4, "no_such_op"), "no_such_op"),  # the gateway answers unknown ops
    ],
)
def test_commands_pass_through(ready: bool, frame: str, op: str) -> None:
    intake = make_session(ready=ready).receive(frame, now=0.0)
    assert intake.command is not None
    assert intake.command.op == op
    assert intake.reply is None
    assert intake.close is None


@pytest.mark.parametrize("op", ["publish", "subscribe", "history", "no_such_op"])
def test_before_connect_only_connect_and_ping(op: str) -> None:
    intake = make_session().receive(cmd(9, op), now=0.0)
    assert intake.command is None
    assert intake.close is None
    assert intake.reply is not None
    assert intake.reply["id"] == 9
    assert error_code(intake.reply) == "unauthorized"


def test_msgpack_session_reads_binary_commands() -> None:
    intake = make_session(MSGPACK).receive(MSGPACK.encode({"id": 1, "op": "ping"}), now=0.0)
    assert intake.command is not None
    assert intake.command.id == 1


# -- bad frames --------------------------------------------------------------


@pytest.mark.parametrize(
    ("codec", "frame"),
    [
        (JSON, "garbage"),
        (JSON, "[]"),
        (JSON, '{"op": "ping"}'),
        (JSON, '{"id": 0, "op": "ping"}'),
        (JSON, '{"id": 1, "op": ""}'),
        (JSON, '{"id": "1", "op": "ping"}'),
        (JSON, b'{"id": 1, "op": "ping"}'),
        (MSGPACK, '{"id": 1, "op": "ping"}'),
        (MSGPACK, b"\xc1"),
    ],
    ids=repr,
)
def test_bad_frame_gets_id_less_bad_request(codec: Codec, frame: bytes | str) -> None:
    session = make_session(codec, ready=True)
    intake = session.receive(frame, now=0.0)
    assert intake.command is None
    assert intake.reply is not None
    assert "id" not in intake.reply
    assert error_code(intake.reply) == "bad_request"
    assert intake.close is None
    assert session.bad_frames == 1


def test_nth_bad_frame_closes_4400() -> None:
    session = make_session(ready=True, bad_frames=3)
    closes = [session.receive("nope", now=0.0).close for _ in range(3)]
    assert closes == [None, None, CloseCode.BAD_REQUEST]


def test_invalid_command_before_connect_is_not_a_bad_frame() -> None:
    session = make_session(bad_frames=1)
    intake = session.receive(cmd(1, "publish"), now=0.0)
    assert intake.close is None
    assert session.bad_frames == 0


# -- frame size ------------------------------------------------------------------


def test_frame_at_the_limit_passes() -> None:
    frame = cmd(1, pad="")
    frame = cmd(1, pad="a" * (LIMIT - len(frame)))
    assert len(frame) == LIMIT
    assert make_session().receive(frame, now=0.0).command is not None


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
def test_too_large_frame_replies_too_large_and_closes_4413(codec: Codec) -> None:
    frame: bytes | str = "x" * (LIMIT + 1) if codec is JSON else b"x" * (LIMIT + 1)
    intake = make_session(codec, ready=True).receive(frame, now=0.0)
    assert intake.command is None
    assert intake.close is CloseCode.TOO_LARGE
    assert error_code(intake.reply) == "too_large"


def test_text_frame_size_is_measured_in_utf8_bytes() -> None:
    base = len(cmd(1, pad=""))
    frame = cmd(1, pad="é" * ((LIMIT - base) // 2 + 1))  # 2 bytes each
    assert len(frame) < LIMIT < len(frame.encode())
    intake = make_session().receive(frame, now=0.0)
    assert intake.close is CloseCode.TOO_LARGE
    assert error_code(intake.reply) == "too_large"


def test_multibyte_frame_exactly_at_the_byte_limit_passes() -> None:
    base = len(cmd(1, pad=""))
    pad = "a" * ((LIMIT - base) % 2) + "é" * ((LIMIT - base) // 2)
    frame = cmd(1, pad=pad)
    assert len(frame.encode()) == LIMIT
    assert make_session().receive(frame, now=0.0).command is not None


# -- rate limiting -------------------------------------------------------------


def rate_limited_session() -> Session:
    return make_session(ready=True, commands_per_second=1.0, command_burst=3)


def test_burst_passes_then_rate_limited_with_the_id() -> None:
    session = rate_limited_session()
    assert all(session.receive(cmd(i), now=0.0).command for i in range(1, 4))
    intake = session.receive(cmd(4), now=0.0)
    assert intake.command is None
    assert intake.close is None
    assert intake.reply is not None
    assert intake.reply["id"] == 4
    assert error_code(intake.reply) == "rate_limited"


def test_rate_limited_undecodable_frame_gets_id_less_reply() -> None:
    session = rate_limited_session()
    for i in range(1, 4):
        session.receive(cmd(i), now=0.0)
    intake = session.receive("garbage", now=0.0)
    assert intake.reply is not None
    assert "id" not in intake.reply
    assert error_code(intake.reply) == "rate_limited"


def test_tokens_refill_with_time() -> None:
    session = rate_limited_session()
    for i in range(1, 5):
        session.receive(cmd(i), now=0.0)
    assert session.receive(cmd(5), now=0.5).command is None
    assert session.receive(cmd(6), now=1.0).command is not None
    assert session.receive(cmd(7), now=1.0).command is None


def test_sustained_abuse_closes_4429() -> None:
    session = rate_limited_session()
    for i in range(1, 4):
        session.receive(cmd(i), now=0.0)
    intakes = [session.receive(cmd(i), now=0.0) for i in range(4, 8)]
    assert [i.close for i in intakes] == [None, None, None, CloseCode.RATE_LIMITED]
    assert [error_code(i.reply) for i in intakes[:3]] == ["rate_limited"] * 3
