"""The two wire codecs: round trips, decode errors, subprotocol negotiation."""

from __future__ import annotations

import pytest

from realtime.ws.codec import JSON, JSON_SUBPROTOCOL, MSGPACK, MSGPACK_SUBPROTOCOL, Codec, DecodeError, negotiate

COMMAND = {
    "id": 7,
    "op": "publish",
    "channel": "class:cp-a",
    "data": {"text": "Léa a oublié son cahier 📓 — merci !", "n": [1, 2.5, None, True, False], "m": {}},
}


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=["json", "msgpack"])
@pytest.mark.parametrize("value", [COMMAND, {}, {"push": "typing", "user": "p-lea-mère"}, {"emoji": "🎒" * 50}])
def test_round_trip(codec: Codec, value: dict[str, object]) -> None:
    frame = codec.encode(value)
    # JSON goes out as the UTF-8 payload of a text frame and comes back as text
    assert codec.decode(frame if codec.binary else frame.decode()) == value


def test_json_is_utf8_and_keeps_unicode_unescaped() -> None:
    frame = JSON.encode({"text": "école"})
    assert isinstance(frame, bytes)
    assert "école".encode() in frame


def test_msgpack_is_binary() -> None:
    assert isinstance(MSGPACK.encode(COMMAND), bytes)


DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_MSGPACK = b"\x91" * 100_000 + b"\xc0"  # 100 000 nested one-element arrays


@pytest.mark.parametrize(
    ("codec", "frame"),
    [
        (JSON, "not json"),
        (JSON, "{"),
        (JSON, "{} {}"),
        (JSON, ""),
        (JSON, DEEP_JSON),
        (JSON, b'{"id": 1, "op": "ping"}'),  # bytes on the JSON codec
        (MSGPACK, b""),
        (MSGPACK, b"\xc1"),  # a never-used MessagePack byte
        (MSGPACK, b"\x92\x01"),  # truncated array
        (MSGPACK, b"\x01\x02"),  # extra data
        (MSGPACK, b"\x81\x01\x02"),  # map with an integer key
        (MSGPACK, b"\xdd\xff\xff\xff\xff"),  # array header announcing 4 G items
        (MSGPACK, DEEP_MSGPACK),
        (MSGPACK, '{"id": 1, "op": "ping"}'),  # text on the MessagePack codec
    ],
    ids=lambda v: repr(v)[:24] if not isinstance(v, Codec) else v.name,
)
def test_decode_errors(codec: Codec, frame: bytes | str) -> None:
    with pytest.raises(DecodeError):
        codec.decode(frame)


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        ([], JSON),
        (["chat"], JSON),
        ([JSON_SUBPROTOCOL], JSON),
        ([MSGPACK_SUBPROTOCOL], MSGPACK),
        (["liaison.v2.json", MSGPACK_SUBPROTOCOL, JSON_SUBPROTOCOL], MSGPACK),
        ([JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL], JSON),
        (["LIAISON.V1.MSGPACK"], JSON),
    ],
)
def test_negotiate_picks_the_first_supported(offered: list[str], chosen: Codec) -> None:
    assert negotiate(offered) is chosen
