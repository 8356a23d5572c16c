"""Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291).

The crypto is pywebpush's and py_vapid's, never ours: `WebPusher.encode` encrypts the payload
for the subscription's keys (run in a worker thread: an ECDH per push should not hold the
event loop that serves live connections), `Vapid02.sign` makes the `Authorization: vapid
t=..., k=...` header (one per push service origin, reused for an hour). The request itself is
sent with aiohttp (which pywebpush depends on), asynchronously, with a timeout, on one pooled
session — pywebpush's own `webpush()` is synchronous (requests).

No SSRF: every send checks the endpoint again (`school.push.endpoint_problem`) and the
session's resolver refuses host names that resolve to non-public addresses at connect time,
so a name that changed its DNS since registration cannot reach the operator's network.
Hosts in `allowed_hosts` (`LIAISON_PUSH_ALLOWED_HOSTS`) are exempt.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from pywebpush import WebPusher

from notify.providers import Notification, Outcome, Target, outcome_of
from school.push import address_problem, endpoint_problem, parse_retry_after

log = structlog.get_logger("liaison.webpush")

VAPID_LIFETIME = 12 * 3600  # seconds a VAPID token is valid (RFC 8292: at most 24 hours)
VAPID_REUSE = 3600  # seconds one signed token is reused for an origin


def new_vapid_pem() -> str:
    vapid = Vapid02()
    vapid.generate_keys()
    return str(vapid.private_pem().decode())


def load_vapid(private_key: str) -> Vapid02:
    """A VAPID key from PEM, or from the base64url raw/DER forms web-push tools print."""
    text = private_key.strip()
    if text.startswith("-----BEGIN"):
        return Vapid02.from_pem(text.encode())
    return Vapid02.from_string(text)


def public_key_b64(vapid: Vapid02) -> str:
    """The application server key the browser subscribes with: the uncompressed P-256 point
    (65 bytes), base64url without padding."""
    raw = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class PublicResolver(ThreadedResolver):
    """aiohttp's resolver, answering only public addresses for hosts that are not allowed."""

    def __init__(self, allowed_hosts: Collection[str]) -> None:
        super().__init__()
        self._allowed = frozenset(allowed_hosts)

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        if host.lower() in self._allowed:
            return found
        public = [r for r in found if address_problem(r["host"]) is None]
        if not public or len(public) != len(found):
            raise OSError(f"push endpoint host {host!r} resolves to a non-public address")
        return public


async def resolved_problem(endpoint: str, allowed_hosts: Collection[str]) -> str | None:
    """`endpoint_problem`, and for a host name, every address it resolves to now."""
    problem = endpoint_problem(endpoint, allowed_hosts)
    if problem is not None:
        return problem
    parts = urlsplit(endpoint)
    host = (parts.hostname or "").lower()
    if host in allowed_hosts:
        return None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError:
        return "the endpoint's host name does not resolve"
    for info in infos:
        problem = address_problem(str(info[4][0]))
        if problem is not None:
            return problem
    return None


class WebPushProvider:
    name = "webpush"

    def __init__(self, vapid: Vapid02, subject: str, allowed_hosts: Collection[str], *,
                 timeout: float = 10.0) -> None:
        self.vapid = vapid
        self.subject = subject
        self.allowed_hosts = frozenset(allowed_hosts)
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[float, str]] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=PublicResolver(self.allowed_hosts), limit=100,
                                             ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    def authorization(self, endpoint: str, now: float) -> str:
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc}"
        cached = self._tokens.get(origin)
        if cached is not None and cached[0] > now:
            return cached[1]
        claims = {"aud": origin, "sub": self.subject, "exp": int(now) + VAPID_LIFETIME}
        header = str(self.vapid.sign(claims)["Authorization"])
        self._tokens[origin] = (now + VAPID_REUSE, header)
        return header

    async def send(self, target: Target, note: Notification) -> Outcome:
        problem = endpoint_problem(target.endpoint, self.allowed_hosts)
        if problem is not None:
            return Outcome("gone")  # never sent: the subscription is removed
        info = {"endpoint": target.endpoint, "keys": {"p256dh": target.p256dh, "auth": target.auth}}
        data = json.dumps(note.payload, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            body = await asyncio.to_thread(_encrypt, info, data)
        except Exception:  # unusable keys: nothing can ever be sent to it
            return Outcome("gone")
        headers = {"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   "TTL": str(note.ttl), "Urgency": "high" if note.urgent else "normal", "Topic": note.topic,
                   "Authorization": self.authorization(target.endpoint, time.time())}
        try:
            async with self._client().post(target.endpoint, data=body, headers=headers,
                                           allow_redirects=False) as response:
                await response.read()
                retry_after = parse_retry_after(response.headers.get("Retry-After"), time.time())
                return outcome_of(response.status, retry_after)
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:  # unreachable, reset, refused by
            log.info("push_send_error", error=type(exc).__name__)  # the resolver: try again later
            return Outcome("retry")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _encrypt(info: dict[str, Any], data: bytes) -> bytes:
    return bytes(WebPusher(info).encode(data, "aes128gcm")["body"])
