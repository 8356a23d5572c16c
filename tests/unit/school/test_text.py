"""school.text: what both wire codecs can carry, and the text rules (issue 10)."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import msgpack
import pytest

from school.errors import BadRequest, ErrorCode
from school.text import (
    MAX_SAFE_INTEGER,
    TextError,
    ValueLimits,
    check_value,
    clean_name,
    clean_text,
    encodable,
)


def both_codecs(value: Any) -> None:
    """Raise when either wire codec cannot encode `value` (as realtime/ws/codec.py does)."""
    json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    msgpack.packb(value, use_bin_type=True)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


ACCEPTED = [
    None, True, False, 0, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1.5, -0.0, 1e300, "", "Grève",
    "a\tb\nc\r\n", "\u202eRTL in a text is kept by check_value", "😀", [], {}, {"a": [1, {"b": None}]},
    {"clé": "été"}, nested(16),
]


@pytest.mark.parametrize("value", ACCEPTED, ids=lambda v: repr(v)[:30])
def test_accepted_values_encode_with_both_codecs(value: Any) -> None:
    check_value(value)
    both_codecs(value)
    assert encodable(value)


REFUSED: list[tuple[Any, str, str]] = [
    # integers beyond the JSON-safe range; the attack: an attachment size of 2**64
    ({"size": 2**64}, "params.size", "integers must be between -(2**53-1) and 2**53-1"),
    (MAX_SAFE_INTEGER + 1, "params", "integers must be between"),
    (-MAX_SAFE_INTEGER - 1, "params", "integers must be between"),
    ([0, 2**63], "params[1]", "integers must be between"),
    ({"a": {"b": [-(2**70)]}}, "params.a.b[0]", "integers must be between"),
    # floats that JSON cannot carry
    (math.nan, "params", "numbers must be finite"),
    ({"x": math.inf}, "params.x", "numbers must be finite"),
    ([-math.inf], "params[0]", "numbers must be finite"),
    # lone surrogates, in values and in keys, at any depth
    ("a\ud800", "params", "lone surrogate U+D800"),
    ({"text": "\udfff"}, "params.text", "lone surrogate U+DFFF"),
    ({"\ud83d": 1}, "params", "lone surrogate U+D83D in a key"),
    ({"a": [{"\udc00x": 1}]}, "params.a[0]", "lone surrogate U+DC00 in a key"),
    # control characters
    ("a\x00b", "params", "control character U+0000"),
    ({"t": "\x1b[31m"}, "params.t", "control character U+001B"),
    ("\x7f", "params", "control character U+007F"),
    ("\x85", "params", "control character U+0085"),
    ("\x9f", "params", "control character U+009F"),
    ("\x0b", "params", "control character U+000B"),
    ({"a\tb": 1}, "params", "control character U+0009 in a key"),
    # what only MessagePack decodes
    (b"bytes", "params", "bytes"),
    ({b"k": 1}, "params", "keys must be strings"),
    ({1: 1}, "params", "keys must be strings"),
    (msgpack.ExtType(5, b"x"), "params", "ExtType"),
    (msgpack.Timestamp(1), "params", "Timestamp"),
    ((1, 2), "params", "tuple"),
    ({1, 2}, "params", "set"),
]


@pytest.mark.parametrize(("value", "path", "reason"), REFUSED, ids=lambda v: repr(v)[:30])
def test_refused_values_name_their_path(value: Any, path: str, reason: str) -> None:
    with pytest.raises(TextError) as exc:
        check_value(value)
    assert exc.value.path == path
    assert reason in exc.value.reason
    assert str(exc.value).startswith(f"{path}: ")
    assert exc.value.code is ErrorCode.BAD_REQUEST
    assert not exc.value.too_large
    assert isinstance(exc.value, BadRequest)
    assert not encodable(value)
    both_codecs(exc.value.body())  # the refusal itself can always be sent


def test_the_issue_example_message() -> None:
    data = {"attachments": [{"name": "a", "size": 2**64}]}
    with pytest.raises(TextError) as exc:
        check_value(data, "data")
    assert str(exc.value) == "data.attachments[0].size: integers must be between -(2**53-1) and 2**53-1"


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("simple_key", "params.simple_key.x"),
        ("with space", 'params["with space"].x'),
        ("é", 'params["\\u00e9"].x'),
        ("k" * 100, 'params["' + "k" * 32 + '…"].x'),
    ],
)
def test_paths_quote_keys_safely(key: str, path: str) -> None:
    with pytest.raises(TextError) as exc:
        check_value({key: {"x": math.nan}})
    assert exc.value.path == path


def test_a_surrogate_key_is_named_without_breaking_the_error() -> None:
    with pytest.raises(TextError) as exc:
        check_value({"a": {"\ud800": {"b": 1}}})
    assert exc.value.path == "params.a"
    both_codecs(exc.value.body())


@pytest.mark.parametrize(
    ("value", "limits", "path"),
    [
        (nested(17), ValueLimits(), "params" + "[0]" * 17),
        (nested(4), ValueLimits(max_depth=3), "params[0][0][0][0]"),
        ({"a": {"b": {}}}, ValueLimits(max_depth=1), "params.a.b"),
        (list(range(11)), ValueLimits(max_items=10), "params[10]"),
        ({"a": [1, 2], "b": [3]}, ValueLimits(max_items=4), "params.b[0]"),
        ("x" * 11, ValueLimits(max_string=10), "params"),
        ({"k" * 11: 1}, ValueLimits(max_string=10), "params"),
    ],
)
def test_limits_are_too_large(value: Any, limits: ValueLimits, path: str) -> None:
    with pytest.raises(TextError) as exc:
        check_value(value, limits=limits)
    assert exc.value.too_large
    assert exc.value.code is ErrorCode.TOO_LARGE
    assert exc.value.path == path


def test_a_deep_value_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(TextError) as exc:
        check_value(nested(100_000))
    assert exc.value.too_large


# ----- texts and names


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Grève jeudi", "Grève jeudi"),
        ("Gre\u0300ve", "Grève"),  # NFC
        ("ligne 1\nligne 2\r\n\tfin", "ligne 1\nligne 2\r\n\tfin"),
        ("مرحبا \u202bembedded\u202c", "مرحبا \u202bembedded\u202c"),  # bidi controls stay in texts
        ("😀", "😀"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert clean_text(raw, "data.text") == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("a\x00", "control character U+0000"),
        ("a\x08", "control character U+0008"),
        ("\x1f", "control character U+001F"),
        ("\x7f", "control character U+007F"),
        ("\x80", "control character U+0080"),
        ("a\x9b31m", "control character U+009B"),
        ("\x0c", "control character U+000C"),
        ("x\ud800", "lone surrogate U+D800"),
    ],
)
def test_clean_text_refuses(raw: str, reason: str) -> None:
    with pytest.raises(TextError) as exc:
        clean_text(raw, "data.text")
    assert exc.value.path == "data.text"
    assert reason in exc.value.reason
    assert not exc.value.too_large


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("menu.pdf", "menu.pdf"),
        ("facture\u202efdp.exe", "facturefdp.exe"),  # the classic spoof shows its real name
        ("\u202a\u202b\u202c\u202d\u202ea\u2066\u2067\u2068\u2069", "a"),
        ("e\u202e\u0301", "é"),  # stripped first, then NFC
        ("עברית\u200f", "עברית\u200f"),  # marks are not overrides: kept
        ("Sortie au musée", "Sortie au musée"),
    ],
)
def test_clean_name_strips_bidi_controls_and_normalises(raw: str, expected: str) -> None:
    assert clean_name(raw, "data.title") == expected


@pytest.mark.parametrize("raw", ["a\nb", "a\rb", "a\tb", "a\x00", "a\x85", "a\udfff"])
def test_clean_name_refuses_line_breaks_and_controls(raw: str) -> None:
    with pytest.raises(TextError) as exc:
        clean_name(raw, "data.title")
    assert exc.value.path == "data.title"


# ----- property: whatever check_value accepts, both codecs encode


def random_string(rng: random.Random) -> str:
    pools = ["abc", "éà😀", "\x00\x1f\x7f\x85\t\n", "\ud800\udfff", "\u202e\u2066"]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, 4)))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randint(0, 9 if depth < 5 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, 1, -1, MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1, 2**63, 2**64, -(2**63) - 1])
    if choice == 3:
        return rng.choice([0.5, -1e308, math.nan, math.inf, -math.inf])
    if choice in (4, 5, 6):
        return random_string(rng)
    if choice in (7, 8):
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {random_string(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def test_whatever_check_value_accepts_encodes_with_both_codecs() -> None:
    rng = random.Random(10)
    accepted = refused = 0
    for _ in range(5000):
        value = random_value(rng)
        try:
            check_value(value)
        except TextError as exc:
            refused += 1
            both_codecs(exc.body())
            continue
        accepted += 1
        both_codecs(value)
        assert json.loads(json.dumps(value, ensure_ascii=False)) == value
        assert msgpack.unpackb(msgpack.packb(value, use_bin_type=True), raw=False) == value
    assert accepted > 500 and refused > 500
