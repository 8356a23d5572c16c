"""The opening handshake of a WebSocket, answered from the HTTP parser's own parse (issue 16).

uvicorn upgrades a connection by writing the request h11 has just parsed back out as bytes,
for `websockets` to parse it a second time and build its answer (a `Headers` object, a `Date`
that uvicorn then deletes, a serialized `Response`): about a quarter of the Python work of a
connect, measured (docs/design-notes.md, "The opening handshake from h11's parse").

`accept_key` decides from h11's parse alone, and says yes only for a request that `websockets`
would accept too: GET over HTTP/1.1, one `Upgrade: websocket`, `Connection` naming `upgrade`,
one well-formed `Sec-WebSocket-Key` (16 bytes in base64) and `Sec-WebSocket-Version: 13`, at
most one `Origin`, a well-formed `Sec-WebSocket-Protocol`, no body, within `websockets`' limits
on header lines. For anything else it says None, and the request goes to `websockets` as
before, which answers it (400, 405, 426, 505, ...): every refusal stays the library's own.
`switching_protocols` writes the 101 the gateway then sends. `plain_head` reads a request that
came whole in one read and in its plainest form without h11 (whose parse is most of what is
left of a connect's HTTP work); anything else is h11's. No I/O here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable

from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, 1.3
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")  # RFC 9110, 5.6.2 (as `websockets` reads it)
_ROOM = 16  # a line's other bytes (method, version, separators, CRLF), counted generously
_HEADERS_BEFORE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"


def _tokens(value: bytes) -> list[bytes] | None:
    """A comma-separated list of tokens (empty elements allowed, RFC 9110 5.6.1), or None when
    any element is not a token or there is none."""
    out = []
    for part in value.split(b","):
        part = part.strip(b" \t")
        if not part:
            continue
        if _TOKEN.fullmatch(part) is None:
            return None
        out.append(part)
    return out or None


def accept_key(method: bytes, target: bytes, http_version: bytes,
               headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """`Sec-WebSocket-Accept` for a handshake request that `websockets` would accept with 101;
    None for any other request. `headers` are h11's: names in lower case, values stripped.
    Lines are counted as uvicorn writes them out for `websockets` (`name: value`), with room."""
    if method != b"GET" or http_version != b"1.1" or len(target) + _ROOM > MAX_LINE_LENGTH:
        return None
    key = version = None
    upgrades = origins = 0
    connection = False
    for count, (name, value) in enumerate(headers, 1):
        if count > MAX_NUM_HEADERS or len(name) + len(value) + _ROOM > MAX_LINE_LENGTH:
            return None
        if name == b"sec-websocket-key":
            if key is not None:
                return None
            key = value
        elif name == b"sec-websocket-version":
            if version is not None:
                return None
            version = value
        elif name == b"upgrade":
            upgrades += 1
            if upgrades > 1 or value.lower() != b"websocket":
                return None
        elif name == b"connection":
            tokens = _tokens(value)
            if tokens is None:
                return None
            connection = connection or any(token.lower() == b"upgrade" for token in tokens)
        elif name == b"sec-websocket-protocol":
            if _tokens(value) is None:
                return None
        elif name == b"origin":
            origins += 1
            if origins > 1:
                return None
        elif name in (b"transfer-encoding", b"content-length"):
            return None
    if not connection or upgrades != 1 or version != b"13" or key is None:
        return None
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            return None
    except (binascii.Error, ValueError):
        return None
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


# A whole upgrade request in its plainest form: `GET <origin-form> HTTP/1.1`, then header
# fields of a token, a colon and visible ASCII (spaces and tabs inside), then an empty line,
# nothing after. Every request it matches, h11 parses to the same request (a strict subset of
# RFC 9112 and of h11's grammar: no obs-text, no empty values); the others go to h11.
_PLAIN_HEAD = re.compile(
    rb"GET (/[\x21-\x7e]*) HTTP/1\.1\r\n"
    rb"((?:[-!#$%&'*+.^_`|~0-9A-Za-z]+:[ \t]*[\x21-\x7e](?:[ \t]*[\x21-\x7e])*[ \t]*\r\n){1,128})\r\n")


def plain_head(data: bytes, max_size: int) -> tuple[bytes, list[tuple[bytes, bytes]]] | None:
    """The target and headers (names in lower case, values stripped, as h11 gives them) of a
    complete request head in `data` that `_PLAIN_HEAD` matches whole, with exactly one `Host`
    (h11 requires it); None for anything else, which h11 then reads as always."""
    if len(data) > max_size:
        return None
    match = _PLAIN_HEAD.fullmatch(data)
    if match is None:
        return None
    headers: list[tuple[bytes, bytes]] = []
    hosts = 0
    for line in match.group(2).split(b"\r\n")[:-1]:
        name, _, value = line.partition(b":")
        name = name.lower()
        hosts += name == b"host"
        headers.append((name, value.strip(b" \t")))
    return (match.group(1), headers) if hosts == 1 else None


def offered_subprotocols(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The subprotocols a request offers, in order (as uvicorn puts them in the ASGI scope)."""
    out: list[str] = []
    for name, value in headers:
        if name == b"sec-websocket-protocol":
            out.extend(token.strip() for token in value.decode("latin-1").split(","))
    return out


def switching_protocols(key: bytes, subprotocol: str | None, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The 101 answer, as uvicorn and `websockets` write it: their headers, then `headers` (the
    server's defaults and the application's), then the chosen subprotocol."""
    parts = [_HEADERS_BEFORE, b"Sec-WebSocket-Accept: ", key, b"\r\n"]
    for name, value in headers:
        parts += [name.lower(), b": ", value, b"\r\n"]
    if subprotocol:
        parts += [b"Sec-WebSocket-Protocol: ", subprotocol.encode("latin-1"), b"\r\n"]
    parts.append(b"\r\n")
    return b"".join(parts)
