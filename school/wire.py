"""The wire forms of protocol v1, as types: what replies, pushes and directory items look like
once decoded (docs/protocol.md). Pure typing, no behaviour: a `TypedDict` is a plain dict at
run time, so building one costs nothing and the codecs encode it as before.

Input read from a peer (a command's `params`) is not typed here: it is untrusted, and each
field is checked where it is read (`realtime.ws.frames`). `JSONValue` is the type of such a
decoded document, and of free-form content (a message's `data`).
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypeAlias, TypedDict

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
JSONObject: TypeAlias = dict[str, JSONValue]


# -- messages -------------------------------------------------------------------------

class WireAuthor(TypedDict):
    id: str
    name: str
    role: str


# `from` is a keyword: the functional syntax
WireMessage = TypedDict("WireMessage", {
    "channel": str,
    "seq": int,
    "id": str,
    "ts": int,
    "from": WireAuthor,
    "kind": str,
    "data": JSONObject,  # the kind's content (`school.kinds`); empty when deleted
    "edited": int | None,
    "deleted": bool,
})


# -- replies ----------------------------------------------------------------------------

class ChannelState(TypedDict):
    """A channel in a `connect` or `subscribe` reply: its `seq`, and with `since` the messages
    recovered above it (`complete` is false when more were missed than the reply carries)."""

    channel: str
    seq: int
    messages: list[WireMessage]
    complete: bool
    updates: NotRequired[list[WireMessage]]  # with `updated_since`: edits and deletions at or below `since`


class WireUser(TypedDict):
    id: str
    name: str
    role: str


class ConnectReply(TypedDict):
    user: WireUser
    session: str
    ping: float
    channels: list[ChannelState]


class PublishReply(TypedDict):
    seq: int
    id: str
    ts: int


class HistoryPage(TypedDict):
    """`{messages, more}`: oldest first; `more` when older messages remain."""

    messages: list[WireMessage]
    more: bool


class OpenChatReply(TypedDict):
    channel: str


class PresenceReply(TypedDict):
    users: list[str]


class ReadLists(TypedDict):
    read: list[str]
    unread: list[str]


class FamilyReads(TypedDict):
    """One family (a student's guardians who receive the channel) and who of it has read."""

    student: str
    read: list[str]
    unread: list[str]


class ReceiptsReply(TypedDict):
    """Who among the guardians has read one message, per guardian and per family (protocol
    v1.1: a family has seen it when one of its guardians has read it); `by_class` for a
    school announcement."""

    read: list[str]
    unread: list[str]
    families: list[FamilyReads]
    families_read: int
    families_total: int
    by_class: NotRequired[dict[str, ReadLists]]
    # issue 12: how the message's readers were notified — {push, email, held, failed} people
    notified: NotRequired[dict[str, int]]


class Named(TypedDict):
    id: str
    name: str


class ProfileSchool(TypedDict):
    id: str
    name: str
    year: str
    guardians_start_chats: bool


class ProfileClass(TypedDict):
    id: str
    name: str
    school: str
    teachers: list[Named]


# `class` is a keyword: the functional syntax
ProfileStudent = TypedDict("ProfileStudent", {"id": str, "name": str, "class": str, "guardians": list[Named]})


class ProfileChat(TypedDict):
    channel: str
    student: str
    staff: Named | None
    guardian: str | None  # v1.1: a household's own chat (None: the family chat)
    closed: bool  # v1.1


class ProfileReply(TypedDict):
    """The `profile` extension: what a user may see of the directory."""

    user: WireUser
    schools: list[ProfileSchool]
    classes: list[ProfileClass]
    students: list[ProfileStudent]
    chats: list[ProfileChat]
    reads: dict[str, int]


class Empty(TypedDict):
    """The `ok` of an op that answers nothing more (`unsubscribe`, `ping`, `read`, ...)."""


class ScheduledReply(TypedDict):
    """`publish` with `at` (issue 12): the scheduled post's id and its time (ms since the epoch)."""

    scheduled: str
    at: int


class ScheduledPostWire(TypedDict):
    id: str
    channel: str
    kind: str
    data: JSONObject
    at: int


class ScheduledList(TypedDict):
    """`scheduled {}`: the author's scheduled posts not yet published, soonest first."""

    posts: list[ScheduledPostWire]


ReplyBody: TypeAlias = (
    Empty | ConnectReply | ChannelState | PublishReply | HistoryPage | OpenChatReply | PresenceReply
    | ReceiptsReply | ProfileReply | ScheduledReply | ScheduledList
)


class LineError(TypedDict):
    """One refused line of an import (`errors` of its `bad_request`)."""

    line: int | None
    field: str | None
    message: str


class ErrorBody(TypedDict):
    """The `error` of a reply: `{code, message}` and, for some codes, more."""

    code: str
    message: str
    retry_after: NotRequired[int]  # rate_limited: seconds
    errors: NotRequired[list[LineError]]  # an import refused


class OkReply(TypedDict):
    id: int
    ok: ReplyBody


class ErrorReply(TypedDict):
    id: NotRequired[int]  # absent when the frame was not a command
    error: ErrorBody


Reply: TypeAlias = OkReply | ErrorReply


# -- pushes -----------------------------------------------------------------------------
# An event's body (`channels.broker.Event.body`) is its push without the `push` field, which
# the hub adds from the event's type.

class MessageBody(TypedDict):
    message: WireMessage


class MessagePush(MessageBody):
    push: Literal["message"]


class UpdatePush(MessageBody):
    push: Literal["update"]


class TypingBody(TypedDict):
    channel: str
    user: str


class TypingPush(TypingBody):
    push: Literal["typing"]


class ReceiptBody(TypedDict):
    channel: str
    seq: int
    user: str


class ReceiptPush(ReceiptBody):
    push: Literal["receipt"]


class SubscribedPush(TypedDict):
    push: Literal["subscribed"]
    channel: str
    seq: int


class UnsubscribedPush(TypedDict):
    push: Literal["unsubscribed"]
    channel: str


class ClosedPush(TypedDict):
    """v1.1: the chat was closed (`publish` there answers `closed` until it is opened again)."""

    push: Literal["closed"]
    channel: str


Push: TypeAlias = (MessagePush | UpdatePush | TypingPush | ReceiptPush | SubscribedPush | UnsubscribedPush
                   | ClosedPush)


# -- directory items (`school.directory.item_to_wire`) ------------------------------------

class WireSchool(TypedDict):
    type: Literal["schools"]
    id: str
    name: str
    year: str
    guardians_start_chats: bool


class WirePerson(TypedDict):
    type: Literal["people"]
    id: str
    school_id: str
    name: str
    role: str
    email: str | None
    phone: str | None


class WireClass(TypedDict):
    type: Literal["classes"]
    id: str
    school_id: str
    name: str
    teachers: list[str]


class WireStudent(TypedDict):
    type: Literal["students"]
    id: str
    school_id: str
    class_id: str
    name: str
    guardians: list[str]


class WireChat(TypedDict):
    type: Literal["chats"]
    id: str
    school_id: str
    student_id: str
    staff_id: str
    guardian_id: str | None
    closed: bool


WireItem: TypeAlias = WireSchool | WirePerson | WireClass | WireStudent | WireChat
