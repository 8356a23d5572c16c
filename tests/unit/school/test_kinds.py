"""Message kinds: normalised data and every validation error."""

from __future__ import annotations

from typing import Any

import pytest

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
        ("event", {"title": "t", "starts_at": "2026-09-14T08:30", "attachments": []}, False),
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
