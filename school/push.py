"""Web Push rules that need no I/O (issue 12): which endpoints are acceptable, the payload a
device receives, the `Topic` that collapses a burst, and the retry schedule.

Endpoints must be `https://` on a public address, so that a subscription cannot make the
server send requests into the operator's own network (SSRF). `endpoint_problem` checks the
URL's form and a literal IP address; `address_problem` checks each address a host name
resolves to (the resolution itself is I/O: notify/webpush.py, at registration and again at
every send). Hosts in the allowed list (`LIAISON_PUSH_ALLOWED_HOSTS`) skip the address rules
and may use `http://` too (local push services in tests and on-premise gateways).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from collections.abc import Collection
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

MAX_ENDPOINT = 2048
MAX_KEY = 256
TOPIC_LENGTH = 32  # RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet
MAX_BACKOFF = 3600.0
PREVIEW_CHARS = 140


def endpoint_problem(endpoint: str, allowed_hosts: Collection[str]) -> str | None:
    """Why this push endpoint is refused, or None. Host names still need `address_problem`
    on each address they resolve to (unless allowed)."""
    if len(endpoint) > MAX_ENDPOINT:
        return f"the endpoint is longer than {MAX_ENDPOINT} characters"
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return "the endpoint is not a URL"
    host = (parts.hostname or "").lower()
    if not host or parts.username or parts.password:
        return "the endpoint must be https://host/... without credentials"
    if host in allowed_hosts:
        return None if parts.scheme in ("https", "http") else "the endpoint must be an https:// URL"
    if parts.scheme != "https":
        return "the endpoint must be an https:// URL"
    if port is not None and not 0 < port < 65536:
        return "the endpoint's port is not valid"
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return "the endpoint must be on a public address"
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None
    return address_problem(str(literal))


def address_problem(address: str) -> str | None:
    """Why an IP address is not a public one (loopback, private, link-local, multicast,
    reserved, unspecified, shared, documentation...), or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "the endpoint's address is not valid"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local:
        return "the endpoint must be on a public address"
    return None


def topic(channel: str) -> str:
    """A `Topic` per channel: a newer push of the same channel replaces one the push service
    still holds for an offline device, so a burst arrives as one notification."""
    digest = hashlib.sha256(channel.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:TOPIC_LENGTH]


def backoff(attempts: int, retry_after: float | None = None, base: float = 5.0) -> float:
    """Seconds before the next try: `Retry-After` when the service gave one, else exponential
    (5 s, 10 s, 20 s... at most an hour)."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, MAX_BACKOFF)
    return min(base * 2.0 ** max(attempts, 0), MAX_BACKOFF)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """`Retry-After` in seconds from its delay-seconds or HTTP-date form; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


def title(author_name: str, place: str, count: int = 1) -> str:
    """What the notification says: "Nouveau message de Mme Martin — CP A", or for messages
    held and released together, "3 nouveaux messages en CP A"."""
    if count > 1:
        return f"{count} nouveaux messages en {place}"
    return f"Nouveau message de {author_name} — {place}"


def payload(channel: str, seq: int, kind: str, author_name: str, place: str, *, urgent: bool,
            text: str | None, count: int = 1) -> dict[str, Any]:
    """The JSON a device decrypts: `channel`, `seq`, `kind`, `title`, `author`, `urgent`, and
    `body` (the text, cut) only when the person chose to see content on the lock screen."""
    body: dict[str, Any] = {"channel": channel, "seq": seq, "kind": kind, "urgent": urgent, "count": count,
                            "title": title(author_name, place, count), "author": author_name}
    if text:
        body["body"] = text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS - 1] + "…"
    return body
