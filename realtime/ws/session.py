"""The per-connection protocol state machine. No I/O: frames in, decisions out.

`Session.receive` decodes a frame and decides, before any handler runs, whether
it is a bad frame (id-less `bad_request`, maybe a 4400 close), too large (4413),
rate limited, or a command not allowed in the current state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, auto
from typing import cast

from realtime.config import Limits
from realtime.ws.close import CloseCode
from realtime.ws.codec import Codec, DecodeError
from realtime.ws.frames import Command, parse_command
from realtime.ws.ratelimit import TokenBucket
from school.directory import Person
from school.errors import ErrorCode, RateLimited, error_body
from school.wire import ErrorBody, ErrorReply

BEFORE_CONNECT = frozenset({"connect", "ping"})


class State(Enum):
    AWAITING_CONNECT = auto()
    READY = auto()
    CLOSED = auto()


@dataclass(frozen=True, slots=True)
class Intake:
    """What to do with one received frame: run `command`, or send `reply` and maybe `close`."""

    command: Command | None = None
    reply: ErrorReply | None = None
    close: CloseCode | None = None


@dataclass(eq=False, slots=True)
class Session:
    id: str
    codec: Codec
    limits: Limits
    state: State = State.AWAITING_CONNECT
    user: Person | None = None
    device_session: str | None = None  # the `sid` of the access token it connected with, if any
    channels: set[str] = field(default_factory=set)
    bad_frames: int = 0
    counted: bool = False  # holds one of its user's connection places (`channels.limits`)
    user_refused: int = 0  # commands refused in a row by the user's own rate, all connections
    bucket: TokenBucket = field(init=False)

    def __post_init__(self) -> None:
        self.bucket = TokenBucket(self.limits.commands_per_second, self.limits.command_burst)

    def receive(self, frame: bytes | str, now: float) -> Intake:
        if _size(frame, self.limits.max_frame_bytes) > self.limits.max_frame_bytes:
            message = f"frame larger than {self.limits.max_frame_bytes} bytes"
            return Intake(reply={"error": typed_error(error_body(ErrorCode.TOO_LARGE, message))},
                          close=CloseCode.TOO_LARGE)
        if not self.bucket.take(now):
            if self.bucket.abusive:
                return Intake(close=CloseCode.RATE_LIMITED)
            return self._rate_limited(frame)
        try:
            command = parse_command(self.codec.decode(frame))
        except DecodeError as exc:
            return self._bad_frame(str(exc))
        if command is None:
            return self._bad_frame("a command is an object with an integer id >= 1 and a string op")
        if self.state is State.AWAITING_CONNECT and command.op not in BEFORE_CONNECT:
            return _error(command.id, ErrorCode.UNAUTHORIZED, "send connect first")
        return Intake(command=command)

    def _bad_frame(self, message: str) -> Intake:
        self.bad_frames += 1
        close = CloseCode.BAD_REQUEST if self.bad_frames >= self.limits.bad_frames else None
        return Intake(reply={"error": typed_error(error_body(ErrorCode.BAD_REQUEST, message))}, close=close)

    def _rate_limited(self, frame: bytes | str) -> Intake:
        message = f"more than {self.limits.commands_per_second:g} commands per second"
        try:
            command = parse_command(self.codec.decode(frame))
        except DecodeError:
            command = None
        wait = max(0.0, 1.0 - self.bucket.tokens) / self.bucket.rate
        body = typed_error(RateLimited(message, wait).body())
        return Intake(reply={"id": command.id, "error": body} if command else {"error": body})


def _error(command_id: int, code: ErrorCode, message: str) -> Intake:
    return Intake(reply={"id": command_id, "error": typed_error(error_body(code, message))})


def typed_error(body: Mapping[str, object]) -> ErrorBody:
    """An error body of `school.errors` (`LiaisonError.body`, `error_body`, built as plain
    dicts there) as its wire type."""
    return cast(ErrorBody, body)


def _size(frame: bytes | str, limit: int) -> int:
    """The frame's size in bytes (a text frame's UTF-8 length, computed only near the limit)."""
    if isinstance(frame, bytes) or len(frame) * 4 <= limit:
        return len(frame)
    return len(frame.encode("utf-8", "surrogatepass"))
