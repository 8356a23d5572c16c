"""Signed one-click unsubscribe tokens of the e-mail digest (issue 12, RFC 8058).

The link in a digest e-mail (and its `List-Unsubscribe` header) carries a token that names the
person and is signed with HMAC-SHA256 under a key derived from the JWT secret (label
`liaison unsubscribe v1`), so following it needs no sign-in and cannot be forged for someone
else. The token does not expire: a link in an old e-mail must still work. It only turns the
digest e-mails off; nothing else can be done with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

KEY_LABEL: Final = b"liaison unsubscribe v1"
_MAC_BYTES: Final = 16


def unsubscribe_key(jwt_secret: bytes) -> bytes:
    """The HMAC key of unsubscribe tokens, derived from the JWT secret."""
    return hmac.new(jwt_secret, KEY_LABEL, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, user_id: str) -> bytes:
    return hmac.new(key, b"digest\n" + user_id.encode(), hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, user_id: str) -> str:
    """`<user id, base64url>.<mac, base64url>`: safe in a URL's query."""
    return f"{_b64(user_id.encode())}.{_b64(_mac(key, user_id))}"


def read_token(key: bytes, token: str) -> str | None:
    """The user id a valid token names, or None (malformed or not signed by us)."""
    if len(token) > 400 or token.count(".") != 1:
        return None
    who, _, mac = token.partition(".")
    try:
        user_id = _unb64(who).decode()
        given = _unb64(mac)
    except (ValueError, UnicodeDecodeError):
        return None
    return user_id if hmac.compare_digest(given, _mac(key, user_id)) else None
