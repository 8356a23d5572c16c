"""docs/asyncapi.yaml against the code: every op of the command table, every error and close
code, every push type and the fields of the replies and pushes (`school.wire`) are documented,
and nothing the code does not have is; the document's references resolve and its examples
follow its own schemas."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from auth.policy import PUBLISHABLE_KINDS
from realtime.handlers import command_table
from realtime.ws.close import CloseCode
from school import wire
from school.channels import ChannelType
from school.errors import ErrorCode

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
PUSH_TYPES = ("message", "update", "typing", "subscribed", "unsubscribed", "receipt", "closed")

Node = dict[str, Any]


@pytest.fixture(scope="module")
def doc() -> Node:
    loaded = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(doc: Node, node: Any) -> Any:
    """`node` with its `$ref` (a local JSON pointer) followed, as often as needed."""
    seen: set[str] = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert isinstance(ref, str) and ref.startswith("#/"), f"not a local reference: {ref!r}"
        assert ref not in seen, f"reference loop through {ref}"
        seen.add(ref)
        target: Any = doc
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, f"unresolved reference {ref}"
            target = target[part]
        node = target
    return node


def payload_const(doc: Node, message_ref: Node, field: str) -> str | None:
    """The `const` of `field` in a message's payload (`op` of a command, `push` of a push)."""
    message = resolve(doc, message_ref)
    schema = resolve(doc, message.get("payload", {}))
    value = resolve(doc, schema.get("properties", {}).get(field, {})).get("const")
    return value if isinstance(value, str) else None


def operations(doc: Node, action: str) -> dict[str, Node]:
    return {name: op for name, op in doc["operations"].items() if op["action"] == action}


def documented_ops(doc: Node) -> dict[str, str]:
    """op name (`open_chat`) -> the key of its `send` operation (`openChat`)."""
    out: dict[str, str] = {}
    for key, operation in operations(doc, "send").items():
        ops = {payload_const(doc, ref, "op") for ref in operation["messages"]}
        assert len(ops) == 1 and None not in ops, f"operation {key}: its command has no `op` const"
        (op,) = ops
        assert op is not None
        assert op not in out, f"op {op} is documented by both {out[op]} and {key}"
        out[op] = key
    return out


def code_ops() -> set[str]:
    class AnyHandlers:
        def __getattr__(self, name: str) -> str:
            return name

    handlers = cast(Any, AnyHandlers())
    return set(command_table(handlers, handlers, handlers, scheduling=handlers))


def test_references_resolve(doc: Node) -> None:
    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(doc, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)


def test_version_is_1_1(doc: Node) -> None:
    assert doc["asyncapi"].startswith("3.")
    assert doc["info"]["version"] == "1.1"
    assert "v1.1" in doc["info"]["description"]


def test_every_op_of_the_command_table_is_an_operation_and_back(doc: Node) -> None:
    documented = set(documented_ops(doc))
    ops = code_ops()
    assert not ops - documented, f"ops without an operation: {sorted(ops - documented)}"
    assert not documented - ops, f"operations the gateway does not have: {sorted(documented - ops)}"


def test_every_command_is_answered_with_an_ok_or_an_error(doc: Node) -> None:
    for op, key in documented_ops(doc).items():
        operation = doc["operations"][key]
        assert operation["title"] == op
        replies = operation["reply"]["messages"]
        assert {"$ref": "#/channels/ws/messages/errorReply"} in replies, key
        assert len(replies) == 2, f"{key}: one ok reply and the error reply"


def test_every_error_code_is_documented(doc: Node) -> None:
    codes = {code.wire for code in ErrorCode}
    schema = doc["components"]["schemas"]["ErrorCode"]
    assert set(schema["enum"]) == codes
    table = schema["description"]
    for code in codes:
        assert f"| {code} |" in table, f"no row for {code} in the ErrorCode table"
    for key, operation in doc["operations"].items():
        unknown = set(operation.get("x-errors", [])) - codes
        assert not unknown, f"{key}: unknown error codes {sorted(unknown)}"


def test_closed_is_the_answer_of_publish_in_a_closed_chat(doc: Node) -> None:
    key = documented_ops(doc)["publish"]
    assert "closed" in doc["operations"][key]["x-errors"]


def test_every_close_code_is_documented(doc: Node) -> None:
    documented = {entry["code"]: entry for entry in doc["channels"]["ws"]["x-close-codes"]}
    for code in CloseCode:
        assert code.value in documented, f"close code {code.value} ({code.name}) is not documented"
        assert documented[code.value]["reconnect"] is code.reconnect, f"reconnect of {code.value}"
    for value, entry in documented.items():
        if value not in set(CloseCode):
            assert entry.get("contract") is False, f"close code {value} is not the server's: say so"


def test_every_push_type_has_a_message_and_a_receive_operation(doc: Node) -> None:
    channel_messages = doc["channels"]["ws"]["messages"]
    pushes = {
        payload_const(doc, ref, "push"): f"#/channels/ws/messages/{name}"
        for name, ref in channel_messages.items()
    }
    received = {
        ref["$ref"] for operation in operations(doc, "receive").values() for ref in operation["messages"]
    }
    wire_pushes = {
        typing.get_args(typing.get_type_hints(cls)["push"])[0] for cls in typing.get_args(wire.Push)
    }
    for push in sorted(set(PUSH_TYPES) | wire_pushes):
        assert push in pushes, f"no message for the {push!r} push"
        assert pushes[push] in received, f"no receive operation for the {push!r} push"


def test_kinds_and_channel_types_are_documented(doc: Node) -> None:
    schemas = doc["components"]["schemas"]
    kinds = set().union(*PUBLISHABLE_KINDS.values())
    assert set(schemas["Kind"]["enum"]) == kinds
    prefixes = re.fullmatch(r"\^\(([a-z|]+)\):.*", schemas["ChannelName"]["pattern"])
    assert prefixes is not None
    assert set(prefixes.group(1).split("|")) == {channel_type.value for channel_type in ChannelType}
    for channel_type in ChannelType:
        assert f"`{channel_type.value}:" in schemas["ChannelName"]["description"]


@pytest.mark.parametrize(
    ("schema", "typed"),
    [
        ("User", wire.WireUser),
        ("Message", wire.WireMessage),
        ("ChannelState", wire.ChannelState),
        ("ConnectOk", wire.ConnectReply),
        ("PublishOk", wire.PublishReply),
        ("HistoryOk", wire.HistoryPage),
        ("ReceiptsOk", wire.ReceiptsReply),
        ("FamilyReads", wire.FamilyReads),
        ("ClassReadSplit", wire.ReadLists),
        ("OpenChatOk", wire.OpenChatReply),
        ("PresenceOk", wire.PresenceReply),
        ("ProfileOk", wire.ProfileReply),
        ("ScheduledOk", wire.ScheduledReply),
        ("ScheduledListOk", wire.ScheduledList),
        ("ScheduledPost", wire.ScheduledPostWire),
        ("MessagePush", wire.MessagePush),
        ("UpdatePush", wire.UpdatePush),
        ("TypingPush", wire.TypingPush),
        ("SubscribedPush", wire.SubscribedPush),
        ("UnsubscribedPush", wire.UnsubscribedPush),
        ("ReceiptPush", wire.ReceiptPush),
    ],
)
def test_reply_and_push_fields_match_the_wire_types(doc: Node, schema: str, typed: type) -> None:
    # `school.wire` postpones its annotations, so `__required_keys__` cannot see `NotRequired`
    hints = typing.get_type_hints(typed, include_extras=True)
    required = {name for name, hint in hints.items() if typing.get_origin(hint) is not typing.NotRequired}
    described = doc["components"]["schemas"][schema]
    assert set(described["properties"]) == set(hints)
    assert set(described["required"]) == required


def conforms(doc: Node, value: Any, schema: Any, where: str) -> list[str]:
    """What in `value` breaks `schema`, checked shallowly: `$ref`, `allOf`, `type`, `const`,
    `enum`, `required`, the properties of an object schema (and no others), `items`."""
    schema = resolve(doc, schema)
    problems: list[str] = []
    for part in schema.get("allOf", []):
        problems += conforms(doc, value, part, where)
    types = schema.get("type")
    if types is not None:
        allowed = {types} if isinstance(types, str) else set(types)
        actual = {
            bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object", type(None): "null",
        }[type(value)]
        if actual not in allowed and not (actual == "integer" and "number" in allowed):
            problems.append(f"{where}: a {actual}, not {sorted(allowed)}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        missing = set(schema.get("required", [])) - set(value)
        if missing:
            problems.append(f"{where}: missing {sorted(missing)}")
        more = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                problems += conforms(doc, item, properties[name], f"{where}.{name}")
            elif isinstance(more, dict):
                problems += conforms(doc, item, more, f"{where}.{name}")
            elif properties and (more is False or schema.get("type") == "object"):
                problems.append(f"{where}: undocumented field {name!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            problems += conforms(doc, item, schema["items"], f"{where}[{i}]")
    return problems


def test_examples_follow_their_schemas(doc: Node) -> None:
    problems: list[str] = []
    checked = 0
    for name, message in doc["components"]["messages"].items():
        for i, example in enumerate(message.get("examples", [])):
            problems += conforms(doc, example["payload"], message["payload"], f"{name}.examples[{i}]")
            checked += 1
    assert checked > 30
    assert not problems, "\n".join(problems)
