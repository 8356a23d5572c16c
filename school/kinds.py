"""Message kinds and the validation of their `data` (protocol v1, "Kinds").

Whatever `validate` returns both wire codecs can carry (`school.text.check_value` runs on
the whole `data` first, so even a field that is then refused cannot break an error reply).
Texts (`text`) follow `school.text.clean_text`; names (`title`, `place`, attachment names)
follow `clean_name`: NFC, bidi overrides, embeddings and isolates stripped, one line. Length
limits count the normalised characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from school.errors import BadRequest, ErrorCode
from school.messages import JSONDict
from school.text import (
    MAX_SAFE_INTEGER,
    TextError,
    check_value,
    clean_name,
    clean_text,
    has_bidi_controls,
    key_path,
    quoted,
)
from school.uploads import is_upload_id

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_URL_REFUSED = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class ContentLimits:
    max_text: int = 10_000
    max_title: int = 200
    max_attachments: int = 10


class KindError(BadRequest):
    """Invalid data for a kind: a `bad_request`, or with `too_large` a limit (code `too_large`)."""

    def __init__(self, message: str, too_large: bool = False) -> None:
        super().__init__(message, code=ErrorCode.TOO_LARGE if too_large else None)
        self.too_large = too_large


def _text(data: JSONDict, name: str, limit: int, required: bool, empty_ok: bool = False,
          clean: Callable[[str, str], str] = clean_text) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise KindError(f"data.{name} is required")
        return None
    if not isinstance(value, str):
        raise KindError(f"data.{name} must be a string")
    value = clean(value, f"data.{name}")
    if len(value) > limit:
        raise KindError(f"data.{name} is longer than {limit} characters", too_large=True)
    if not empty_ok and not value.strip():
        raise KindError(f"data.{name} must not be empty")
    return value


def _attachments(data: JSONDict, limits: ContentLimits) -> list[JSONDict] | None:
    raw = data.get("attachments")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise KindError("data.attachments must be a list")
    if len(raw) > limits.max_attachments:
        raise KindError(
            f"data.attachments holds more than {limits.max_attachments} attachments", too_large=True
        )
    return [_attachment(item, i) for i, item in enumerate(raw)]


def _attachment(item: Any, index: int) -> JSONDict:
    where = f"data.attachments[{index}]"
    if isinstance(item, dict) and "upload" in item:
        return _upload_attachment(item, where)
    if not isinstance(item, dict) or set(item) != {"name", "url", "type", "size"}:
        raise KindError(f"{where} must be an object with name, url, type and size")
    name, url, mime, size = item["name"], item["url"], item["type"], item["size"]
    if isinstance(name, str):
        name = clean_name(name, f"{where}.name")
    if not isinstance(name, str) or not name:
        raise KindError(f"{where}.name must be a non-empty string")
    if len(name) > 255:
        raise KindError(f"{where}.name is longer than 255 characters", too_large=True)
    if isinstance(url, str) and len(url) > 2048:
        raise KindError(f"{where}.url is longer than 2048 characters", too_large=True)
    if not isinstance(url, str) or _scheme(url) not in ("https", "http"):
        raise KindError(f"{where}.url must be an http(s) URL")
    if _URL_REFUSED.search(url) or has_bidi_controls(url):
        raise KindError(f"{where}.url must not contain spaces or bidi controls (percent-encode them)")
    if isinstance(mime, str) and len(mime) > 127:
        raise KindError(f"{where}.type is longer than 127 characters", too_large=True)
    if not isinstance(mime, str) or not _MEDIA_TYPE.fullmatch(mime):
        raise KindError(f"{where}.type must be a media type such as image/jpeg")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SAFE_INTEGER:
        raise KindError(f"{where}.size must be an integer of bytes from 0 to 2**53-1")
    return {"name": name, "url": url, "type": mime, "size": size}


# filled by the server from the upload (realtime/services/attachments.py): sent back in an edit,
# they are dropped and filled again
_FILLED = {"type", "size", "url", "width", "height", "variants", "hidden"}
MAX_STUDENTS = 100


def _upload_attachment(item: JSONDict, where: str) -> JSONDict:
    """`{upload, name?, students?}`: an uploaded file (POST /api/v1/uploads); `students` lists the
    children a photo shows (`[]`: none). The server fills the rest when it is published."""
    unknown = sorted(set(item) - {"upload", "name", "students"} - _FILLED)
    if unknown:
        raise KindError(f"unknown field {key_path(where, unknown[0])} (an uploaded file's attachment is "
                        "{upload, name?, students?})")
    upload = item["upload"]
    if not is_upload_id(upload):
        raise KindError(f"{where}.upload must be the id answered by POST /api/v1/uploads")
    out: JSONDict = {"upload": upload}
    name = item.get("name")
    if name is not None:
        name = clean_name(name, f"{where}.name") if isinstance(name, str) else name
        if not isinstance(name, str) or not name:
            raise KindError(f"{where}.name must be a non-empty string")
        if len(name) > 255:
            raise KindError(f"{where}.name is longer than 255 characters", too_large=True)
        out["name"] = name
    students = item.get("students")
    if students is not None:
        if not isinstance(students, list) or not all(isinstance(s, str) and 0 < len(s) <= 128 for s in students):
            raise KindError(f"{where}.students must be a list of student ids ([] when nobody appears)")
        if len(students) > MAX_STUDENTS:
            raise KindError(f"{where}.students lists more than {MAX_STUDENTS} students", too_large=True)
        out["students"] = list(dict.fromkeys(students))
    return out


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def _timestamp(data: JSONDict, name: str, required: bool) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise KindError(f"data.{name} must be an ISO 8601 date-time string")
    try:
        datetime.fromisoformat(value)
    except ValueError as exc:
        raise KindError(f"data.{name} must be an ISO 8601 date-time, e.g. 2026-09-14T08:30") from exc
    return value


def _only(data: JSONDict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise KindError(f"unknown field {key_path('data', unknown[0])} (allowed: {', '.join(sorted(allowed))})")


def _with_optional(out: JSONDict, **fields: Any) -> JSONDict:
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def _text_and_attachments(data: JSONDict, limits: ContentLimits) -> tuple[str, list[JSONDict] | None]:
    attachments = _attachments(data, limits)
    text = _text(data, "text", limits.max_text, required=True, empty_ok=bool(attachments))
    assert text is not None
    return text, attachments


def _announcement(data: JSONDict, limits: ContentLimits) -> JSONDict:
    _only(data, {"text", "title", "urgent", "attachments"})
    text, attachments = _text_and_attachments(data, limits)
    urgent = data.get("urgent", False)
    if not isinstance(urgent, bool):
        raise KindError("data.urgent must be true or false")
    title = _text(data, "title", limits.max_title, required=False, clean=clean_name)
    return _with_optional({"text": text, "urgent": urgent}, title=title, attachments=attachments)


def _post(data: JSONDict, limits: ContentLimits) -> JSONDict:
    _only(data, {"text", "title", "attachments"})
    text, attachments = _text_and_attachments(data, limits)
    title = _text(data, "title", limits.max_title, required=False, clean=clean_name)
    return _with_optional({"text": text}, title=title, attachments=attachments)


def _event(data: JSONDict, limits: ContentLimits) -> JSONDict:
    _only(data, {"title", "starts_at", "ends_at", "place", "text", "attachments"})
    title = _text(data, "title", limits.max_title, required=True, clean=clean_name)
    attachments = _attachments(data, limits)
    starts_at = _timestamp(data, "starts_at", required=True)
    ends_at = _timestamp(data, "ends_at", required=False)
    if starts_at and ends_at and _comparable(ends_at) < _comparable(starts_at):
        raise KindError("data.ends_at must not be before data.starts_at")
    place = _text(data, "place", limits.max_title, required=False, clean=clean_name)
    text = _text(data, "text", limits.max_text, required=False, empty_ok=True)
    return _with_optional(
        {"title": title, "starts_at": starts_at}, ends_at=ends_at, place=place, text=text,
        attachments=attachments,
    )


def _comparable(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone().replace(tzinfo=None)


def _homework(data: JSONDict, limits: ContentLimits) -> JSONDict:
    _only(data, {"text", "due", "attachments"})
    attachments = _attachments(data, limits)
    text = _text(data, "text", limits.max_text, required=True, empty_ok=bool(attachments))
    due = data.get("due")
    if not isinstance(due, str) or not _ISO_DATE.fullmatch(due):
        raise KindError("data.due must be an ISO date YYYY-MM-DD")
    try:
        date.fromisoformat(due)
    except ValueError as exc:
        raise KindError("data.due must be an ISO date YYYY-MM-DD") from exc
    return _with_optional({"text": text, "due": due}, attachments=attachments)


def _chat(data: JSONDict, limits: ContentLimits) -> JSONDict:
    _only(data, {"text", "attachments"})
    text, attachments = _text_and_attachments(data, limits)
    return _with_optional({"text": text}, attachments=attachments)


VALIDATORS: dict[str, Callable[[JSONDict, ContentLimits], JSONDict]] = {
    "announcement": _announcement,
    "post": _post,
    "event": _event,
    "homework": _homework,
    "chat": _chat,
}


def validate(kind: str, data: object, limits: ContentLimits) -> JSONDict:
    """Return the normalised data of a message of `kind`, or raise `KindError` (a `BadRequest`;
    `too_large` for a limit). What it returns both wire codecs can encode."""
    validator = VALIDATORS.get(kind)
    if validator is None:
        raise KindError(f"unknown kind {quoted(kind)}")
    if not isinstance(data, dict):
        raise KindError("data must be an object")
    try:
        check_value(data, "data")
        return validator(data, limits)
    except TextError as exc:
        raise KindError(str(exc), too_large=exc.too_large) from None
