"""The message record shared by the store, the broker and the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from school.text import check_value
from school.wire import WireAuthor, WireMessage

JSONDict = dict[str, Any]  # a message's `data` as the kinds build it (`school.wire.JSONObject` on the wire)


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    name: str
    role: str

    def to_wire(self) -> WireAuthor:
        return {"id": self.id, "name": self.name, "role": self.role}

    @classmethod
    def from_wire(cls, raw: WireAuthor) -> Author:
        return cls(str(raw["id"]), str(raw["name"]), str(raw["role"]))


@dataclass(frozen=True, slots=True)
class Draft:
    """A message before the store gives it its `seq`. Its `data` must be something both wire
    codecs can carry (`school.text.check_value`, a `TextError` otherwise): a stored message
    that one codec cannot encode would close every reader of that codec (issue 10)."""

    channel: str
    id: str
    ts: int
    author: Author
    kind: str
    data: JSONDict
    key: str | None = None

    def __post_init__(self) -> None:
        check_value(self.data, "data")


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    seq: int
    id: str
    ts: int
    author: Author
    kind: str
    data: JSONDict = field(default_factory=dict)
    edited: int | None = None
    deleted: bool = False

    def to_wire(self) -> WireMessage:
        """The message as protocol v1 shows it; a deleted message shows no content."""
        return {
            "channel": self.channel,
            "seq": self.seq,
            "id": self.id,
            "ts": self.ts,
            "from": self.author.to_wire(),
            "kind": self.kind,
            "data": {} if self.deleted else self.data,
            "edited": self.edited,
            "deleted": self.deleted,
        }

    @classmethod
    def from_wire(cls, raw: WireMessage) -> Message:
        return cls(
            channel=str(raw["channel"]),
            seq=int(raw["seq"]),
            id=str(raw["id"]),
            ts=int(raw["ts"]),
            author=Author.from_wire(raw["from"]),
            kind=str(raw["kind"]),
            data=dict(raw.get("data") or {}),
            edited=raw.get("edited"),
            deleted=bool(raw.get("deleted", False)),
        )


def published(draft: Draft, seq: int) -> Message:
    return Message(draft.channel, seq, draft.id, draft.ts, draft.author, draft.kind, draft.data)
