"""What both wire codecs can carry, and the rules for texts and names (issue 10).

A value decoded from one codec must encode with the other: a frame decoded from JSON may
reach a MessagePack reader, and the reverse. `check_value` refuses, at any depth, what one
of them cannot carry (`json.dumps(..., ensure_ascii=False).encode("utf-8")` and
`msgpack.packb(..., use_bin_type=True)`):

- integers beyond ±(2**53-1), the range JSON readers (JavaScript) hold exactly;
  MessagePack itself stops at 2**64-1;
- floats that are not finite (JSON has no NaN nor Infinity);
- strings with a lone surrogate, in values and in keys (UTF-8 cannot encode them);
- bytes, extension types, timestamps, and map keys that are not strings (MessagePack
  decodes them; JSON has none);
- values nested deeper, holding more entries, or with longer strings than `ValueLimits`
  (MessagePack's packer stops at 512 levels; a peer must not make us walk a huge value).

It also refuses control characters (C0 other than tab, line feed and carriage return; DEL;
C1) in every string, and any control character in a key: no wire value needs them, and a
terminal, a log line or a notification would interpret them.

For message content, `clean_text` (a message text) and `clean_name` (a title, a place, a
file name) normalise to NFC. `clean_name` also strips the bidi overrides, embeddings and
isolates (U+202A-U+202E, U+2066-U+2069): in a one-line name they serve only to make it
display as something else ("facture\\u202efdp.exe" shows as "facture" + "exe.pdf");
stripping keeps every visible character in its real order, where a refusal would puzzle
a teacher whose word processor inserted one. Texts keep them: right-to-left writing needs
them, and a client shows a text in its own block. Names are one line: tabs and line breaks
are refused there.

Every refusal is a `TextError`, a `BadRequest` naming the path of the bad value
(`data.attachments[0].size: integers must be between -(2**53-1) and 2**53-1`); limits are
`too_large`. The path quotes keys so that the error itself always encodes.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass

from school.errors import BadRequest, ErrorCode

MAX_SAFE_INTEGER = 2**53 - 1

_SAFE_RANGE = "integers must be between -(2**53-1) and 2**53-1"
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_KEY_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAME_CONTROLS = _KEY_CONTROLS
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_SHOWN = 32


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """Bounds of a value a peer may send: nesting levels below the top, entries of all its
    lists and maps together, and characters of one string or key."""

    max_depth: int = 16
    max_items: int = 10_000
    max_string: int = 1_000_000


class TextError(BadRequest):
    """A value refused by the rules of this module. `path` names it (`data.text`), `reason`
    says why; `too_large` (and the code `too_large`) when a limit was passed."""

    def __init__(self, path: str, reason: str, *, too_large: bool = False) -> None:
        super().__init__(f"{path}: {reason}", code=ErrorCode.TOO_LARGE if too_large else None)
        self.path = path
        self.reason = reason
        self.too_large = too_large


def quoted(text: str) -> str:
    """`text` as a JSON string escaped to ASCII (surrogates, controls and bidi controls
    included) and cut to 32 characters: safe to show in any error message."""
    shown = json.dumps(text[:_KEY_SHOWN])
    return shown[:-1] + '…"' if len(text) > _KEY_SHOWN else shown


def key_path(path: str, key: str) -> str:
    """`path.key` for a plain key, else `path["key"]` quoted as by `quoted`."""
    if len(key) <= _KEY_SHOWN and _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{quoted(key)}]"


def check_value(value: object, path: str = "params", limits: ValueLimits = ValueLimits()) -> None:
    """Raise `TextError` unless both codecs can encode `value` and its strings follow the
    rules above. Pure; `value` is what a codec decoded (dicts, lists, str, int, float, bool,
    None). The realtime layer calls it on every command's params, `kinds.validate` on `data`."""
    _Walk(limits).value(value, path, 0)


def encodable(value: object, limits: ValueLimits = ValueLimits()) -> bool:
    """Whether `check_value` accepts `value`."""
    try:
        check_value(value, limits=limits)
    except TextError:
        return False
    return True


class _Walk:
    def __init__(self, limits: ValueLimits) -> None:
        self.limits = limits
        self.items = 0

    def value(self, value: object, path: str, depth: int) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, str):
            _check_string(value, path, self.limits, "", _CONTROLS)
        elif isinstance(value, int):
            if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
                raise TextError(path, _SAFE_RANGE)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise TextError(path, "numbers must be finite")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.entry(item, f"{path}[{index}]", depth)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TextError(path, "keys must be strings")
                _check_string(key, path, self.limits, " in a key", _KEY_CONTROLS)
                self.entry(item, key_path(path, key), depth)
        else:
            kind = "bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
            raise TextError(path, f"{kind} is not a JSON value (use strings, numbers, lists, objects)")

    def entry(self, item: object, path: str, depth: int) -> None:
        self.items += 1
        if self.items > self.limits.max_items:
            raise TextError(path, f"more than {self.limits.max_items} entries in all", too_large=True)
        if depth + 1 > self.limits.max_depth:
            raise TextError(path, f"nested deeper than {self.limits.max_depth} levels", too_large=True)
        self.value(item, path, depth + 1)


def _check_string(text: str, path: str, limits: ValueLimits, where: str, controls: re.Pattern[str]) -> None:
    if len(text) > limits.max_string:
        raise TextError(path, f"a string{where} is longer than {limits.max_string} characters", too_large=True)
    _refuse(text, path, where, controls)


def _refuse(text: str, path: str, where: str, controls: re.Pattern[str]) -> None:
    surrogate = _SURROGATE.search(text)
    if surrogate:
        at = f"{where} at position {surrogate.start()}"
        raise TextError(path, f"lone surrogate U+{ord(surrogate.group()):04X}{at} (not valid Unicode)")
    control = controls.search(text)
    if control:
        at = f"{where} at position {control.start()}"
        raise TextError(path, f"control character U+{ord(control.group()):04X}{at} is not allowed")


def clean_text(text: str, path: str) -> str:
    """A message text in NFC; refuses lone surrogates and control characters other than tab,
    line feed and carriage return. Bidi controls are kept."""
    _refuse(text, path, "", _CONTROLS)
    return unicodedata.normalize("NFC", text)


def clean_name(name: str, path: str) -> str:
    """A one-line name (title, place, file name) in NFC, its bidi overrides, embeddings and
    isolates stripped; refuses lone surrogates and every control character, line breaks
    and tabs included. Stripping comes before NFC, which then composes across the gap."""
    _refuse(name, path, "", _NAME_CONTROLS)
    return unicodedata.normalize("NFC", _BIDI_CONTROLS.sub("", name))


def strip_bidi(text: str) -> str:
    """`text` without bidi overrides, embeddings and isolates (names read from a file)."""
    return _BIDI_CONTROLS.sub("", text)


def has_bidi_controls(text: str) -> bool:
    """Whether `text` holds a bidi override, embedding or isolate (what `clean_name` strips)."""
    return _BIDI_CONTROLS.search(text) is not None
