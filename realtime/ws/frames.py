"""Turning decoded frames into commands, and reading their parameters. No I/O.

A command's `params` is what the peer sent, decoded: untrusted, so it stays a mapping of
`object`s and each parameter is checked where it is read (the `*_param` readers)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from school.channels import ChannelName, parse_channel
from school.errors import BadRequest, TooLarge


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    op: str
    params: dict[str, object]  # the whole frame, `id` and `op` included


MAX_ID = 2**53 - 1  # exact in JavaScript numbers


def parse_command(obj: object) -> Command | None:
    """A command, or None when the frame is not an object with an integer `id` and a string `op`."""
    if not isinstance(obj, dict):
        return None
    cid, op = obj.get("id"), obj.get("op")
    if not isinstance(cid, int) or isinstance(cid, bool) or not 1 <= cid <= MAX_ID:
        return None
    if not isinstance(op, str) or not op or len(op) > 32:
        return None
    if not all(isinstance(k, str) for k in obj):
        return None
    return Command(cid, op, obj)


def bad(message: str) -> BadRequest:
    return BadRequest(message)


def channel_param(params: Mapping[str, object], name: str = "channel") -> ChannelName:
    raw = params.get(name)
    if raw is None:
        raise bad(f"{name} is required")
    channel = parse_channel(raw)
    if channel is None:
        raise bad(f"{name} must be a channel name such as class:cp-a, school:ID, chat:ID or user:ID")
    return channel


def int_param(params: Mapping[str, object], name: str, *, required: bool, minimum: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise bad(f"{name} is required")
        return None
    if not isinstance(raw, int) or isinstance(raw, bool) or raw > MAX_ID:
        raise bad(f"{name} must be an integer")
    if raw < minimum:
        raise bad(f"{name} must be at least {minimum}")
    return raw


def str_param(params: Mapping[str, object], name: str, *, required: bool, max_len: int = 200) -> str | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise bad(f"{name} is required")
        return None
    if not isinstance(raw, str) or not raw or len(raw) > max_len:
        raise bad(f"{name} must be a non-empty string of at most {max_len} characters")
    return raw


def since_param(params: Mapping[str, object], max_channels: int) -> dict[str, int]:
    raw = params.get("since")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad("since must be an object mapping channel names to seq numbers")
    if len(raw) > max_channels:
        raise TooLarge(f"since names more than {max_channels} channels")
    since: dict[str, int] = {}
    for name, seq in raw.items():
        if parse_channel(name) is None:
            raise bad(f"since: {str(name)[:80]!r} is not a channel name")
        if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= MAX_ID:
            raise bad(f"since: the seq of {name} must be an integer >= 0")
        since[name] = seq
    return since
