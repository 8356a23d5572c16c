"""Message kinds: normalised data and every validation error."""

from __future__ import annotations

import json
import random
from typing import Any

import msgpack
import pytest

from school.errors import BadRequest, ErrorCode
from school.kinds import ContentLimits, KindError, validate

LIMITS = ContentLimits(max_text=20, max_title=10, max_attachments=2)
ATT = {"name": "menu.pdf", "url": "https://ecole.example/menu.pdf", "type": "application/pdf", "size": 1234}


def att(**changes: Any) -> dict[str, Any]:
    return {**ATT, **changes}


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("announcement", {"text": "Grève jeudi"}, {"text": "Grève jeudi", "urgent": False}),
        (
            "announcement",
            {"text": "x", "title": "Grève", "urgent": True, "attachments": [ATT]},
            {"text": "x", "title": "Grève", "urgent": True, "attachments": [ATT]},
        ),
        ("announcement", {"text": "", "attachments": [ATT]}, {"text": "", "urgent": False, "attachments": [ATT]}),
        ("post", {"text": "Photos"}, {"text": "Photos"}),
        (
            "post",
            {"text": "Photos", "title": "Sortie", "attachments": []},
            {"text": "Photos", "title": "Sortie", "attachments": []},
        ),
        ("post", {"text": "x" * 20}, {"text": "x" * 20}),
        (
            "event",
            {"title": "Sortie", "starts_at": "2026-09-14T08:30"},
            {"title": "Sortie", "starts_at": "2026-09-14T08:30"},
        ),
        (
            "event",
            {
                "title": "Sortie",
                "starts_at": "2026-09-14T08:30+02:00",
                "ends_at": "2026-09-14T17:00+02:00",
                "place": "Musée",
                "text": "",
            },
            {
                "title": "Sortie",
                "starts_at": "2026-09-14T08:30+02:00",
                "ends_at": "2026-09-14T17:00+02:00",
                "place": "Musée",
                "text": "",
            },
        ),
        (
            "event",
            {"title": "Kermesse", "starts_at": "2026-06-20T10:00", "ends_at": "2026-06-20T10:00"},
            {"title": "Kermesse", "starts_at": "2026-06-20T10:00", "ends_at": "2026-06-20T10:00"},
        ),
        ("homework", {"text": "Lire p. 12", "due": "2026-09-15"}, {"text": "Lire p. 12", "due": "2026-09-15"}),
        ("chat", {"text": "Bonjour"}, {"text": "Bonjour"}),
        ("chat", {"text": "Voici", "attachments": [ATT, ATT]}, {"text": "Voici", "attachments": [ATT, ATT]}),
        ("chat", {"text": "  ", "attachments": [ATT]}, {"text": "  ", "attachments": [ATT]}),
    ],
)
def test_valid_data_is_normalised(kind: str, data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert validate(kind, data, LIMITS) == expected


@pytest.mark.parametrize(
    ("kind", "data", "too_large"),
    [
        # text
        ("post", {}, False),
        ("post", {"title": "Sortie"}, False),
        ("post", {"text": 5}, False),
        ("post", {"text": ["a"]}, False),
        ("post", {"text": ""}, False),
        ("post", {"text": "   "}, False),
        ("chat", {"text": "", "attachments": []}, False),
        ("post", {"text": "x" * 21}, True),
        ("chat", {"text": "x" * 21}, True),
        ("announcement", {"text": "x" * 21}, True),
        ("homework", {"text": "x" * 21, "due": "2026-09-15"}, True),
        # title
        ("post", {"text": "x", "title": "x" * 11}, True),
        ("announcement", {"text": "x", "title": "x" * 11}, True),
        ("event", {"title": "x" * 11, "starts_at": "2026-09-14T08:30"}, True),
        ("post", {"text": "x", "title": ""}, False),
        ("post", {"text": "x", "title": 3}, False),
        # urgent
        ("announcement", {"text": "x", "urgent": "yes"}, False),
        ("announcement", {"text": "x", "urgent": 1}, False),
        # attachments
        ("post", {"text": "x", "attachments": ATT}, False),
        ("post", {"text": "x", "attachments": "menu.pdf"}, False),
        ("chat", {"text": "x", "attachments": [ATT, ATT, ATT]}, True),
        ("chat", {"text": "x", "attachments": ["menu.pdf"]}, False),
        ("chat", {"text": "x", "attachments": [{k: v for k, v in ATT.items() if k != "size"}]}, False),
        ("chat", {"text": "x", "attachments": [att(extra=1)]}, False),
        ("chat", {"text": "x", "attachments": [att(name="")]}, False),
        ("chat", {"text": "x", "attachments": [att(url="ftp://ecole.example/menu.pdf")]}, False),
        ("chat", {"text": "x", "attachments": [att(url="javascript:alert(1)")]}, False),
        ("chat", {"text": "x", "attachments": [att(url="menu.pdf")]}, False),
        ("chat", {"text": "x", "attachments": [att(url=None)]}, False),
        ("chat", {"text": "x", "attachments": [att(url="https://e.example/" + "a" * 2048)]}, True),
        ("chat", {"text": "x", "attachments": [att(name="n" * 256)]}, True),
        ("chat", {"text": "x", "attachments": [att(type="image/" + "x" * 127)]}, True),
        ("chat", {"text": "x", "attachments": [att(type="pdf")]}, False),
        ("chat", {"text": "x", "attachments": [att(size=-1)]}, False),
        ("chat", {"text": "x", "attachments": [att(size=True)]}, False),
        ("chat", {"text": "x", "attachments": [att(size=1.5)]}, False),
        ("chat", {"text": "x", "attachments": [att(size="12")]}, False),
        # event
        ("event", {"title": "Sortie"}, False),
        ("event", {"title": "Sortie", "starts_at": "demain"}, False),
        ("event", {"title": "Sortie", "starts_at": "14/09/2026 08:30"}, False),
        ("event", {"title": "Sortie", "starts_at": 1789000000}, False),
        ("event", {"title": "Sortie", "starts_at": "2026-09-14T08:30", "ends_at": "soon"}, False),
        ("event", {"title": "Sortie", "starts_at": "2026-09-14T08:30", "ends_at": "2026-09-14T08:00"}, False),
        (
            "event",
            {"title": "Sortie", "starts_at": "2026-09-14T10:00+02:00", "ends_at": "2026-09-14T09:00+02:00"},
            False,
        ),
        ("event", {"starts_at": "2026-09-14T08:30"}, False),
        # homework
        ("homework", {"text": "Lire"}, False),
        ("homework", {"text": "Lire", "due": "15/09/2026"}, False),
        ("homework", {"text": "Lire", "due": "2026-9-15"}, False),
        ("homework", {"text": "Lire", "due": "2026-02-30"}, False),
        ("homework", {"text": "Lire", "due": "2026-09-15T08:00"}, False),
        ("homework", {"text": "Lire", "due": 20260915}, False),
        ("homework", {"due": "2026-09-15"}, False),
        # unknown fields
        ("post", {"text": "x", "urgent": True}, False),
        ("chat", {"text": "x", "title": "t"}, False),
        ("homework", {"text": "x", "due": "2026-09-15", "place": "ici"}, False),
        ("event", {"title": "t", "starts_at": "2026-09-14T08:30", "urgent": True}, False),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_invalid_data(kind: str, data: dict[str, Any], too_large: bool) -> None:
    with pytest.raises(KindError) as exc:
        validate(kind, data, LIMITS)
    assert exc.value.too_large is too_large


def test_unknown_field_is_named() -> None:
    with pytest.raises(KindError, match=r"data\.colour"):
        validate("post", {"text": "x", "colour": "red"}, LIMITS)


def test_attachment_with_unparsable_url_is_a_kind_error() -> None:
    with pytest.raises(KindError):
        validate("chat", {"text": "x", "attachments": [att(url="https://[oops/menu.pdf")]}, LIMITS)


def test_homework_due_must_be_a_calendar_date_not_an_iso_week_date() -> None:
    with pytest.raises(KindError):
        validate("homework", {"text": "Lire", "due": "2026-W37-1"}, LIMITS)


@pytest.mark.parametrize("kind", ["", "notice", "Post", "receipt"])
def test_unknown_kind(kind: str) -> None:
    with pytest.raises(KindError, match="unknown kind"):
        validate(kind, {"text": "x"}, LIMITS)


@pytest.mark.parametrize("data", [None, "text", ["text"], 5])
def test_data_must_be_an_object(data: object) -> None:
    with pytest.raises(KindError, match="object"):
        validate("post", data, LIMITS)


def test_default_limits_allow_long_texts() -> None:
    assert validate("post", {"text": "x" * 10_000}, ContentLimits()) == {"text": "x" * 10_000}
    with pytest.raises(KindError) as exc:
        validate("post", {"text": "x" * 10_001}, ContentLimits())
    assert exc.value.too_large


# ----- issue 10: what validate accepts, both wire codecs can carry; texts are normalised


def both_codecs(value: Any) -> None:
    """Raise when either wire codec cannot encode `value` (as realtime/ws/codec.py does)."""
    json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    msgpack.packb(value, use_bin_type=True)


def test_kind_error_is_a_bad_request_with_its_wire_code() -> None:
    with pytest.raises(BadRequest) as exc:
        validate("post", {"text": 5}, LIMITS)
    assert isinstance(exc.value, KindError)
    assert exc.value.code is ErrorCode.BAD_REQUEST
    with pytest.raises(KindError) as large:
        validate("post", {"text": "x" * 21}, LIMITS)
    assert large.value.too_large
    assert large.value.code is ErrorCode.TOO_LARGE
    assert large.value.body() == {"code": "too_large", "message": "data.text is longer than 20 characters"}


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        # the poison message: sizes MessagePack (or JavaScript) cannot carry
        ("chat", {"text": "x", "attachments": [att(size=2**64)]},
         "data.attachments[0].size: integers must be between -(2**53-1) and 2**53-1"),
        ("chat", {"text": "x", "attachments": [att(size=2**53)]}, "data.attachments[0].size"),
        ("chat", {"text": "x", "attachments": [att(size=-(2**64))]}, "data.attachments[0].size"),
        ("post", {"text": "x", "colour": 2**64}, "data.colour"),
        ("post", {"text": "x", "colour": float("nan")}, "data.colour: numbers must be finite"),
        ("post", {"text": "x", "colour": float("inf")}, "data.colour: numbers must be finite"),
        ("post", {"text": "x", "colour": b"red"}, "data.colour"),
        # lone surrogates: bad_request, never internal nor a 1011 close
        ("post", {"text": "a\ud800"}, "data.text: lone surrogate U+D800"),
        ("post", {"text": "x", "title": "\udfff"}, "data.title: lone surrogate"),
        ("post", {"text": "x", "\ud800": 1}, "data: lone surrogate U+D800 in a key"),
        ("post", {"text": "x", "a": [{"\udc00": 1}]}, "data.a[0]: lone surrogate"),
        ("chat", {"text": "x", "attachments": [att(name="a\ud800.pdf")]}, "data.attachments[0].name"),
        ("chat", {"text": "x", "attachments": [att(url="https://e.example/\ud800")]}, "data.attachments[0].url"),
        # control characters in texts
        ("post", {"text": "a\x00b"}, "data.text: control character U+0000"),
        ("post", {"text": "\x1b[2J"}, "data.text: control character U+001B"),
        ("chat", {"text": "a\x7f"}, "data.text: control character U+007F"),
        ("chat", {"text": "a\x9b"}, "data.text: control character U+009B"),
        ("homework", {"text": "a\x0b", "due": "2026-09-15"}, "data.text: control character U+000B"),
        ("post", {"text": "x", "title": "a\nb"}, "data.title: control character U+000A"),
        ("event", {"title": "t", "starts_at": "2026-09-14T08:30", "place": "a\x00"}, "data.place"),
        ("event", {"title": "t", "starts_at": "2026-09-14T08:30", "text": "\x85"}, "data.text"),
        ("chat", {"text": "x", "attachments": [att(name="a\n.pdf")]}, "data.attachments[0].name"),
        ("chat", {"text": "x", "attachments": [att(type="image/png\x00")]}, "data.attachments[0].type"),
        ("chat", {"text": "x", "attachments": [att(type="image/png\n")]}, "data.attachments[0].type"),
        # names that are nothing but bidi controls are empty
        ("post", {"text": "x", "title": "\u202e\u2066"}, "data.title must not be empty"),
        ("chat", {"text": "x", "attachments": [att(name="\u202e")]}, "data.attachments[0].name"),
        # URLs: no spaces, no controls, no bidi controls (they cannot be stripped without changing the target)
        ("chat", {"text": "x", "attachments": [att(url="https://e.example/a b.pdf")]}, "data.attachments[0].url"),
        ("chat", {"text": "x", "attachments": [att(url="https://e.example/\ta.pdf")]}, "data.attachments[0].url"),
        ("chat", {"text": "x", "attachments": [att(url="https://e.example/\u202efdp.exe")]},
         "data.attachments[0].url"),
        # a date with a trailing line break
        ("homework", {"text": "Lire", "due": "2026-09-15\n"}, "data.due"),
    ],
    ids=lambda v: repr(v)[:50],
)
def test_unencodable_or_unsafe_data_is_a_bad_request(kind: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(KindError) as exc:
        validate(kind, data, LIMITS)
    assert message in str(exc.value)
    assert exc.value.code is ErrorCode.BAD_REQUEST and not exc.value.too_large
    both_codecs(exc.value.body())


HEBREW_EMBEDDED = "\u202b\u05e9\u05dc\u05d5\u05dd\u202c"  # "shalom" in a right-to-left embedding


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("chat", {"text": "x", "attachments": [att(size=2**53 - 1)]},
         {"text": "x", "attachments": [att(size=2**53 - 1)]}),
        ("chat", {"text": "x", "attachments": [att(size=0)]}, {"text": "x", "attachments": [att(size=0)]}),
        # NFC, and the limit counts normalised characters
        ("post", {"text": "Gre\u0300ve"}, {"text": "Grève"}),
        ("post", {"text": "e\u0301" * 20}, {"text": "é" * 20}),
        ("post", {"text": "x", "title": "Gre\u0300ve"}, {"text": "x", "title": "Grève"}),
        # texts keep line breaks, tabs and bidi controls (right-to-left writing needs them)
        ("chat", {"text": "a\r\n\tb"}, {"text": "a\r\n\tb"}),
        ("chat", {"text": HEBREW_EMBEDDED}, {"text": HEBREW_EMBEDDED}),
        # names and titles lose bidi overrides, embeddings and isolates
        ("post", {"text": "x", "title": "Sortie\u202e"}, {"text": "x", "title": "Sortie"}),
        ("chat", {"text": "x", "attachments": [att(name="facture\u202efdp.exe")]},
         {"text": "x", "attachments": [att(name="facturefdp.exe")]}),
        ("chat", {"text": "x", "attachments": [att(name="cafe\u0301.pdf")]},
         {"text": "x", "attachments": [att(name="café.pdf")]}),
        ("event", {"title": "\u2066Kermesse\u2069", "starts_at": "2026-06-20T10:00", "place": "\u202dCour"},
         {"title": "Kermesse", "starts_at": "2026-06-20T10:00", "place": "Cour"}),
        ("announcement", {"text": "x", "title": "\u202aGrève\u202c"},
         {"text": "x", "title": "Grève", "urgent": False}),
        # an IRI stays as sent: normalising it could change what it points to
        ("chat", {"text": "x", "attachments": [att(url="https://école.example/me\u0301nu.pdf")]},
         {"text": "x", "attachments": [att(url="https://école.example/me\u0301nu.pdf")]}),
    ],
    ids=lambda v: repr(v)[:50],
)
def test_texts_and_names_are_normalised(kind: str, data: dict[str, Any], expected: dict[str, Any]) -> None:
    assert validate(kind, data, LIMITS) == expected


def test_unknown_kind_and_field_names_are_quoted_safely() -> None:
    with pytest.raises(KindError) as kind:
        validate("k" * 10_000, {"text": "x"}, LIMITS)
    assert str(kind.value) == 'unknown kind "' + "k" * 32 + '…"'
    with pytest.raises(KindError) as odd:
        validate("\u202epost\x00", {"text": "x"}, LIMITS)
    assert str(odd.value) == 'unknown kind "\\u202epost\\u0000"'
    with pytest.raises(KindError) as field:
        validate("post", {"text": "x", "\u202ek" * 5_000: 1}, LIMITS)
    assert len(str(field.value)) < 200
    assert "\u202e" not in str(field.value)


def test_deep_data_is_too_large_not_a_crash() -> None:
    deep: Any = "x"
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises(KindError) as exc:
        validate("post", {"text": "x", "extra": deep}, LIMITS)
    assert exc.value.too_large


def random_string(rng: random.Random) -> str:
    pools = ["abc ", "éà😀", "e\u0301", "\x00\x1f\x7f\x85\t\n\r", "\ud800\udfff", "\u202e\u2066\u2069"]
    return "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(0, 6)))


def random_scalar(rng: random.Random) -> Any:
    return rng.choice([
        None, True, 0, 7, 2**53 - 1, 2**53, 2**63, 2**64, -1, 1.5, float("nan"), float("inf"),
        "2026-09-15", "2026-09-14T08:30", "https://e.example/a.pdf", "image/png", b"x",
        random_string(rng), random_string(rng), [], {},
    ])


FIELDS = {
    "announcement": ["text", "title", "urgent", "attachments"],
    "post": ["text", "title", "attachments"],
    "event": ["title", "starts_at", "ends_at", "place", "text"],
    "homework": ["text", "due"],
    "chat": ["text", "attachments"],
}


def random_field(rng: random.Random, field: str) -> Any:
    if field == "urgent":
        return rng.choice([True, False])
    if field in ("starts_at", "ends_at"):
        return "2026-09-14T08:30"
    if field == "due":
        return "2026-09-15"
    if field == "attachments":
        return [att(name=random_string(rng) or "n", size=rng.choice([0, 1, 2**53 - 1, 2**53, 2**64]))]
    return random_string(rng) or "x"


def random_data(rng: random.Random, kind: str) -> dict[str, Any]:
    """Well-formed data of `kind` with random texts and names, then sometimes mutated: a
    field's value replaced, a field added, an attachment's field replaced."""
    data = {field: random_field(rng, field) for field in FIELDS[kind] if rng.random() < 0.8}
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        field = rng.choice([*data, random_string(rng)]) if data else random_string(rng)
        data[field] = random_scalar(rng)
    attachments = data.get("attachments")
    if isinstance(attachments, list) and attachments and isinstance(attachments[0], dict) and rng.random() < 0.3:
        item = dict(attachments[0])
        item[rng.choice(list(item))] = random_scalar(rng)
        data["attachments"] = [item]
    return data


def test_whatever_validate_accepts_both_codecs_can_carry() -> None:
    rng = random.Random(2026)
    accepted = refused = 0
    for _ in range(20_000):
        kind = rng.choice(["announcement", "post", "event", "homework", "chat"])
        data = random_data(rng, kind)
        try:
            normalised = validate(kind, data, ContentLimits())
        except KindError as exc:
            refused += 1
            both_codecs(exc.body())
            continue
        accepted += 1
        both_codecs(normalised)
        assert validate(kind, normalised, ContentLimits()) == normalised  # normalising is idempotent
    assert accepted > 1000 and refused > 1000


PHOTO = {"name": "sortie.jpg", "url": "https://example.org/sortie.jpg", "type": "image/jpeg", "size": 1200}


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("homework", {"text": "Lire la fiche", "due": "2026-09-15", "attachments": [PHOTO]}),
        ("homework", {"text": "", "due": "2026-09-15", "attachments": [PHOTO]}),
        ("event", {"title": "Sortie", "starts_at": "2026-09-14T08:30", "attachments": [PHOTO]}),
    ],
)
def test_homework_and_events_take_attachments_like_posts(kind: str, data: dict[str, Any]) -> None:
    """Protocol v1.1: `homework` and `event` accept `attachments` like `post`."""
    assert validate(kind, data, LIMITS)["attachments"] == [PHOTO]
