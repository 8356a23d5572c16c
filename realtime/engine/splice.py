"""Replies that carry messages already encoded: the frames of the recent-messages cache
(`realtime.engine.recent`) are spliced into the reply's bytes instead of encoded again.

A recovered channel's `messages` is then an `Encoded` list: a plain list of the wire
messages (whoever reads the reply as data sees nothing else) that also holds their frames
per codec. `encode` encodes the reply with a placeholder string in place of each such list
— a random token, which no client text can guess — and puts the frames in its place:
`[f1,f2,...]` in JSON, an array header and the frames in MessagePack.
"""

from __future__ import annotations

import secrets
import struct
from typing import Any

from realtime.engine.recent import Cached
from realtime.ws.codec import Codec
from school.wire import WireMessage

_TOKEN = secrets.token_hex(16)
MAX_DEPTH = 4  # reply → ok → channels → state → messages


class Encoded(list[WireMessage]):
    """Wire messages with their frames per codec."""

    __slots__ = ("items",)

    def __init__(self, items: list[Cached]) -> None:
        super().__init__(item.wire for item in items)
        self.items = items


def encode(codec: Codec, reply: object) -> bytes:
    """`codec.encode(reply)`, with every `Encoded` list's frames spliced in."""
    found: list[Encoded] = []
    skeleton = _stand_in(reply, found, 0)
    if not found:
        return codec.encode(reply)
    frame = codec.encode(skeleton)
    parts: list[bytes] = []
    start = 0
    for n, encoded in enumerate(found):
        mark = codec.encode(_placeholder(n))
        at = frame.index(mark, start)
        parts.append(frame[start:at])
        frames = [item.frame(codec.name) for item in encoded.items]
        if codec.binary:
            parts.append(array_header(len(frames)))
            parts.extend(frames)
        else:
            parts.append(b"[" + b",".join(frames) + b"]")
        start = at + len(mark)
    parts.append(frame[start:])
    return b"".join(parts)


def _placeholder(n: int) -> str:
    return f"\x00splice-{_TOKEN}-{n}\x00"


def _stand_in(value: object, found: list[Encoded], depth: int) -> Any:
    """A copy of the reply's outer levels with a placeholder for each `Encoded` list (in the
    order an encoder writes them: dicts and lists in their order)."""
    if isinstance(value, Encoded):
        found.append(value)
        return _placeholder(len(found) - 1)
    if depth >= MAX_DEPTH:
        return value
    if isinstance(value, dict):
        return {k: _stand_in(v, found, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_in(v, found, depth + 1) for v in value]
    return value


def array_header(n: int) -> bytes:
    """MessagePack's header of an array of `n` items."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)
