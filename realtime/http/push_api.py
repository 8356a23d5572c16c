"""The push routes (issue 12): the VAPID public key and the user's push subscriptions.

- `GET /api/v1/push/key` → `{vapid_public_key}` (no credentials: it is public).
- `POST /api/v1/me/push-subscriptions` with the browser's `PushSubscription` JSON
  `{endpoint, keys: {p256dh, auth}}` → 201 `{id}` (the same endpoint again: 200, the same id).
- `DELETE /api/v1/me/push-subscriptions/{id}` → 204, the user's own only (else 404).

Any token the gateway accepts may register: a device session's access token (the subscription
then ends with the session) or a token from `liaison token` / the demo.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from realtime.http.requests import json_object, require_session_user, services_of
from realtime.services import Services
from realtime.services.push import PushService
from school.errors import Unavailable


def _push(services: Services) -> PushService:
    if services.push is None:
        raise Unavailable("push notifications are not available on this server")
    return services.push


async def vapid_key(request: Request) -> Response:
    return JSONResponse({"vapid_public_key": _push(services_of(request)).key()})


async def add_subscription(request: Request) -> Response:
    services, person, session_id = await require_session_user(request)
    push = _push(services)
    body = await json_object(request)
    subscription_id, new = await push.subscribe(person, session_id, body)
    return JSONResponse({"id": subscription_id}, status_code=201 if new else 200)


async def remove_subscription(request: Request) -> Response:
    services, person, _ = await require_session_user(request)
    await _push(services).unsubscribe(person, request.path_params["id"])
    return Response(status_code=204)
