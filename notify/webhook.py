"""The webhook provider: notifications handed to an operator's own gateway (FCM/APNs, SMS).

Each notification is an HTTP POST of JSON `{user, notification}` to `LIAISON_WEBHOOK_URL`,
signed with HMAC-SHA256 of the exact body under `LIAISON_WEBHOOK_SECRET`, in the header
`X-Liaison-Signature: sha256=<hex>`; the receiver recomputes it before trusting the body.
Its answers mean what a push service's do (notify/providers.py `outcome_of`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import aiohttp

from notify.providers import Notification, Outcome, Target, outcome_of
from school.push import parse_retry_after


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookProvider:
    name = "webhook"

    def __init__(self, url: str, secret: bytes, *, timeout: float = 10.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, target: Target, note: Notification) -> Outcome:
        body = json.dumps({"user": target.user_id, "urgent": note.urgent, "topic": note.topic, "ttl": note.ttl,
                           "notification": note.payload}, separators=(",", ":"), ensure_ascii=False).encode()
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        headers = {"Content-Type": "application/json", "X-Liaison-Signature": signature(self.secret, body)}
        try:
            async with self._session.post(self.url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                return outcome_of(response.status, parse_retry_after(response.headers.get("Retry-After"),
                                                                     time.time()))
        except (OSError, aiohttp.ClientError, TimeoutError):
            return Outcome("retry")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
