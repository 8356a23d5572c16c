"""The `NotificationProvider` protocol: one way of reaching a person's device.

Web Push (notify/webpush.py) is one; the webhook (notify/webhook.py) hands notifications to an
operator's own gateway (FCM/APNs, SMS). A provider sends one notification and says what
happened; the worker (realtime/services/notifications.py) decides what follows: `sent` is
counted, `gone` removes the subscription, `retry` comes back after `retry_after` (or the
backoff), `failed` is given up and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

Status = Literal["sent", "gone", "retry", "failed"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where a notification goes: a push subscription's endpoint and keys (empty for the
    webhook, which is one URL for everyone)."""

    user_id: str
    endpoint: str = ""
    p256dh: str = ""
    auth: str = ""


@dataclass(frozen=True, slots=True)
class Notification:
    payload: dict[str, Any]  # the JSON the device gets (school/push.py `payload`)
    urgent: bool
    topic: str
    ttl: int


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status
    http_status: int = 0
    retry_after: float | None = None


class NotificationProvider(Protocol):
    name: str

    async def send(self, target: Target, note: Notification) -> Outcome: ...

    async def close(self) -> None: ...


def outcome_of(http_status: int, retry_after: float | None) -> Outcome:
    """RFC 8030's answers: 2xx sent; 404/410 the subscription is gone; 429 and 5xx try again
    (after `Retry-After` when given); any other 4xx is given up."""
    if 200 <= http_status < 300:
        return Outcome("sent", http_status)
    if http_status in (404, 410):
        return Outcome("gone", http_status)
    if http_status == 429 or http_status >= 500:
        return Outcome("retry", http_status, retry_after)
    return Outcome("failed", http_status)
