"""Push subscriptions and the VAPID key: what the HTTP API's push routes use (issue 12).

`start` loads the VAPID key — from `LIAISON_VAPID_PRIVATE_KEY`, or generated once and kept in
the store (insert if absent, then read back: two processes starting together agree) — and
gives the notifier its Web Push provider. A subscription belongs to the person and, when the
token has one, to the device session: it ends with it (checked at send time).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import structlog

from notify.webhook import WebhookProvider
from notify.webpush import WebPushProvider, load_vapid, new_vapid_pem, public_key_b64, resolved_problem
from persistence.push_store import MAX_KEY_CHARS, PushStore, PushSubscription
from realtime.config import PushSettings
from realtime.services.notifications import Notifier
from school.directory import Person
from school.errors import BadRequest, NotFound, TooLarge, Unavailable
from school.push import MAX_ENDPOINT

log = structlog.get_logger("liaison.push")


# push subscriptions of one person (each is a push per message to a host the person chose)
MAX_SUBSCRIPTIONS = 20


class PushService:
    def __init__(self, settings: PushSettings, store: PushStore, notifier: Notifier,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.public_key: str | None = None

    async def start(self) -> WebPushProvider:
        given = self.settings.vapid_private_key
        pem = given.value if given is not None else await self.store.vapid_key(new_vapid_pem())
        vapid = load_vapid(pem)
        self.public_key = public_key_b64(vapid)
        provider = WebPushProvider(vapid, self.settings.vapid_subject, self.settings.allowed_hosts,
                                   timeout=self.settings.send_timeout)
        self.notifier.push = provider
        return provider

    def key(self) -> str:
        if self.public_key is None:
            raise Unavailable("push is starting: try again in a moment")
        return self.public_key

    async def subscribe(self, person: Person, session_id: str | None, body: dict[str, Any]) -> tuple[str, bool]:
        """The subscription's id, and whether it is new."""
        endpoint, p256dh, auth = subscription_fields(body)
        problem = await resolved_problem(endpoint, self.settings.allowed_hosts)
        if problem is not None:
            raise BadRequest(f"endpoint: {problem}")
        mine = (await self.store.subscriptions_of([person.id])).get(person.id, [])
        if len(mine) >= MAX_SUBSCRIPTIONS and all(s.endpoint != endpoint for s in mine):
            raise TooLarge(f"{MAX_SUBSCRIPTIONS} devices receive your notifications already: sign one out "
                           "in \"Mes appareils\" (or turn its notifications off) first")
        new_id = "ps-" + uuid.uuid4().hex
        sub = PushSubscription(new_id, person.id, session_id, endpoint, p256dh, auth, self.clock())
        stored = await self.store.add_subscription(sub)
        log.info("push_subscribed", user=person.id, subscription=stored, new=stored == new_id)
        return stored, stored == new_id

    async def unsubscribe(self, person: Person, subscription_id: str) -> None:
        if len(subscription_id) > 128 or not await self.store.remove_subscription(subscription_id, person.id):
            raise NotFound("you have no push subscription with this id")
        log.info("push_unsubscribed", user=person.id, subscription=subscription_id)


def subscription_fields(body: dict[str, Any]) -> tuple[str, str, str]:
    """`endpoint`, `keys.p256dh`, `keys.auth` of a browser's `PushSubscription` JSON."""
    endpoint, keys = body.get("endpoint"), body.get("keys")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT:
        raise BadRequest("endpoint: send the browser's PushSubscription JSON ({endpoint, keys: {p256dh, auth}})")
    if not isinstance(keys, dict):
        raise BadRequest("keys: send the subscription's keys {p256dh, auth} (PushSubscription.toJSON())")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    for name, value in (("p256dh", p256dh), ("auth", auth)):
        if not isinstance(value, str) or not value or len(value) > MAX_KEY_CHARS or not _base64url(value):
            raise BadRequest(f"keys.{name}: the subscription's base64url key is missing or not valid")
    return endpoint, str(p256dh), str(auth)


def _base64url(value: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "-_=") for c in value)


class PushSubscriptionData:
    """The privacy section (issue 15): a person's push subscriptions — the push services' hosts
    and the dates, never the keys or full endpoints (they are credentials)."""

    name = "push_subscriptions"

    def __init__(self, store: PushStore) -> None:
        self.store = store

    async def export(self, person_id: str) -> object:
        subs = (await self.store.subscriptions_of([person_id])).get(person_id, [])
        return [{"id": s.id, "push_service": urlsplit(s.endpoint).hostname,
                 "created_at": datetime.fromtimestamp(s.created_at, UTC).isoformat(timespec="seconds")}
                for s in subs]

    async def erase(self, person_id: str, *, dry_run: bool) -> int:
        if dry_run:
            return len((await self.store.subscriptions_of([person_id])).get(person_id, []))
        return await self.store.remove_subscriptions_of(person_id)


def webhook_provider(settings: PushSettings) -> WebhookProvider | None:
    """The webhook provider when `LIAISON_WEBHOOK_URL` is set."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        return None
    return WebhookProvider(settings.webhook_url, settings.webhook_secret.bytes(), timeout=settings.send_timeout)
