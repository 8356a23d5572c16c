"""Notification preferences of a person (issue 12): per message kind, how they are told.

`immediately` (a push, or the digest e-mail when they have no push), `digest` (only in the
e-mail digest), `off` (never notified; the message is still delivered live and in history).
Every kind defaults to `immediately`. An urgent announcement is never `off`: it falls back
to `immediately`. Pure: no I/O.

Wire form (`GET/PUT /api/v1/me/notification-preferences`):
`{kinds: {announcement: "immediately", post: "digest", ...}, show_content: bool, digest_email: bool}`
— a PUT may give some kinds only (the others keep their value) and leave the flags out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from school.errors import BadRequest
from school.kinds import VALIDATORS

Preference = Literal["immediately", "digest", "off"]
PREFERENCES: Final[tuple[Preference, ...]] = ("immediately", "digest", "off")
DEFAULT_PREFERENCE: Final[Preference] = "immediately"
KINDS: Final[tuple[str, ...]] = tuple(VALIDATORS)  # announcement, post, event, homework, chat


def effective(prefs: Mapping[str, str], kind: str, urgent: bool) -> Preference:
    """How a person is told of a message of `kind`: their choice, `immediately` by default,
    and never `off` for an urgent announcement."""
    chosen = prefs.get(kind, DEFAULT_PREFERENCE)
    value: Preference = DEFAULT_PREFERENCE
    for known in PREFERENCES:
        if chosen == known:
            value = known
    if urgent and kind == "announcement" and value == "off":
        return "immediately"
    return value


@dataclass(frozen=True, slots=True)
class Preferences:
    """A person's stored choices: `kinds` holds only the kinds they changed."""

    kinds: Mapping[str, Preference] = field(default_factory=dict)
    show_content: bool = False  # the message text on the lock screen
    digest_email: bool = True  # the e-mail digest; off through its one-click unsubscribe link

    def to_wire(self) -> dict[str, Any]:
        return {"kinds": {k: self.kinds.get(k, DEFAULT_PREFERENCE) for k in KINDS},
                "show_content": self.show_content, "digest_email": self.digest_email}


DEFAULT_PREFERENCES = Preferences()


def parse_preferences(body: object, current: Preferences = DEFAULT_PREFERENCES) -> Preferences:
    """Apply a wire update `{kinds?: {kind: preference}, show_content?, digest_email?}` to `current`;
    BadRequest (saying what to send) otherwise."""
    if not isinstance(body, dict):
        raise BadRequest("preferences must be an object {kinds: {kind: preference}, show_content: bool}")
    unknown = sorted(set(body) - {"kinds", "show_content", "digest_email"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (allowed: kinds, show_content, digest_email)")
    kinds = dict(current.kinds)
    raw = body.get("kinds", {})
    if not isinstance(raw, dict):
        raise BadRequest("kinds must be an object {kind: \"immediately\" | \"digest\" | \"off\"}")
    for kind, value in raw.items():
        if kind not in KINDS:
            raise BadRequest(f"unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
        if value not in PREFERENCES:
            raise BadRequest(f"kinds.{kind} must be one of {', '.join(PREFERENCES)}")
        kinds[kind] = cast(Preference, value)
    show = body.get("show_content", current.show_content)
    if not isinstance(show, bool):
        raise BadRequest("show_content must be true or false")
    emails = body.get("digest_email", current.digest_email)
    if not isinstance(emails, bool):
        raise BadRequest("digest_email must be true or false")
    return Preferences({k: v for k, v in kinds.items() if v != DEFAULT_PREFERENCE}, show, emails)
