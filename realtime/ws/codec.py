"""The two wire codecs of protocol v1: JSON text frames and MessagePack binary frames."""

from __future__ import annotations

import json
from dataclasses import dataclass

import msgpack

JSON_SUBPROTOCOL = "liaison.v1.json"
MSGPACK_SUBPROTOCOL = "liaison.v1.msgpack"


class DecodeError(Exception):
    """The frame is not a JSON or MessagePack document of the negotiated codec."""


@dataclass(frozen=True, slots=True)
class Codec:
    name: str
    binary: bool

    def encode(self, obj: object) -> bytes:
        """The frame's payload: MessagePack, or JSON as UTF-8 (sent as a text frame)."""
        if self.binary:
            return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    def decode(self, frame: bytes | str) -> object:
        """The decoded document, untrusted: checked by whoever reads it (`frames.parse_command`)."""
        try:
            if self.binary:
                if isinstance(frame, str):
                    raise DecodeError("expected a binary MessagePack frame, got text")
                return msgpack.unpackb(frame, raw=False, strict_map_key=True)
            if isinstance(frame, bytes):
                raise DecodeError("expected a text JSON frame, got binary")
            return json.loads(frame)
        except DecodeError:
            raise
        except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
                msgpack.StackError, RecursionError) as exc:
            raise DecodeError(f"frame is not valid {'MessagePack' if self.binary else 'JSON'}") from exc


JSON = Codec(JSON_SUBPROTOCOL, binary=False)
MSGPACK = Codec(MSGPACK_SUBPROTOCOL, binary=True)
CODECS = {JSON.name: JSON, MSGPACK.name: MSGPACK}


def negotiate(offered: list[str]) -> Codec:
    """The first subprotocol the client offers that we support; JSON when none."""
    for name in offered:
        codec = CODECS.get(name)
        if codec is not None:
            return codec
    return JSON
