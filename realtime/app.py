"""The application factory: one lifespan opens and closes the store, broker and gateway."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from auth import tokens
from channels.broker import Broker
from channels.factory import make_broker
from channels.redis_presence import RedisPresence, presence_client
from persistence.factory import open_store
from persistence.store import Store
from realtime.config import Settings
from realtime.endpoint import websocket_endpoint
from realtime.gateway import Gateway
from realtime.http_api import api_routes
from realtime.membership import Membership
from realtime.ops import CoreOps
from realtime.school_ops import SchoolOps
from school.demo import SCHOOL_ID, demo_school

log = structlog.get_logger("liaison.app")


async def load_demo(store: Store) -> None:
    """Write the demo school into the store unless it is there already."""
    directory = await store.load_directory()
    if SCHOOL_ID not in directory.schools:
        await store.save_directory(demo_school())
        log.info("demo_school_loaded", school=SCHOOL_ID)


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    gateway = _gateway(request)
    problems: dict[str, str] = {}
    for name, check in (("store", gateway.store.ping), ("broker", gateway.broker.ping)):
        try:
            await check()
        except Exception as exc:
            problems[name] = type(exc).__name__
    if problems:
        return JSONResponse({"status": "unavailable", "failing": problems}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    gateway = _gateway(request)
    hub = gateway.hub
    body = gateway.metrics.render(hub.subscription_count(), len(hub.channels()), hub.reconnects)
    return PlainTextResponse(body, media_type="text/plain; version=0.0.4")


async def demo_people(request: Request) -> Response:
    gateway = _gateway(request)
    if not gateway.settings.demo:
        return JSONResponse({"error": "demo sign-in exists only in --demo mode"}, status_code=404)
    d = gateway.directory
    school = d.schools[SCHOOL_ID]
    people = [{"id": p.id, "name": p.name, "role": p.role.value}
              for p in sorted(d.people.values(), key=lambda p: (p.role.value, p.name))
              if p.school_id == SCHOOL_ID]
    return JSONResponse({"school": {"id": school.id, "name": school.name}, "people": people})


async def demo_token(request: Request) -> Response:
    gateway = _gateway(request)
    if not gateway.settings.demo:
        return JSONResponse({"error": "demo sign-in exists only in --demo mode"}, status_code=404)
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    user = body.get("user") if isinstance(body, dict) else None
    if not isinstance(user, str) or gateway.directory.person(user) is None:
        return JSONResponse({"error": "user must be the id of a person of the demo school"},
                            status_code=400)
    token = tokens.issue(gateway.settings.jwt_secret.bytes(), user, gateway.settings.token_ttl)
    return JSONResponse({"token": token})


class FastWebSocketRoute:
    """The ASGI app `liaison serve` runs: `/ws` goes straight to the endpoint, everything
    else (and the lifespan) through Starlette. A WebSocket lives for hours; each layer of
    middleware and routing it passes through stays on its stack, as memory, for as long."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self.app
            await websocket_endpoint(WebSocket(scope, receive, send))
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings, store: Store | None = None, broker: Broker | None = None) -> Starlette:
    """Build the ASGI app; the store and broker come from the settings unless given."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or open_store(settings.store_url)
        the_broker = broker or make_broker(settings.redis_url, settings.redis_prefix)
        await the_store.open()
        try:
            if settings.demo:
                await load_demo(the_store)
            gateway = Gateway(settings, the_store, the_broker, await the_store.load_directory())
            core = CoreOps(gateway)
            membership = Membership(gateway)
            SchoolOps(gateway, core, membership)
            app.state.membership = membership
            gateway.spawn(membership.watch_store(settings.directory_poll))
            if settings.redis_url:
                presence = RedisPresence(presence_client(settings.redis_url), gateway.hub,
                                         gateway.instance_id, prefix=settings.redis_prefix,
                                         period=settings.presence_period)
                gateway.presence = presence
                gateway.spawn(presence.run())
            app.state.gateway = gateway
            await gateway.start()
            log.info("gateway_started", store=settings.store_url.split(":", 1)[0],
                     broker="redis" if settings.redis_url else "memory", demo=settings.demo)
            try:
                yield
            finally:
                await gateway.close()
                if isinstance(gateway.presence, RedisPresence):
                    await gateway.presence.close()
        finally:
            await the_store.close()

    web_dir = str(resources.files("web"))
    routes = [
        WebSocketRoute("/ws", websocket_endpoint),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/demo/people", demo_people),
        Route("/demo/token", demo_token, methods=["POST"]),
        *api_routes(),
        Mount("/", app=StaticFiles(directory=web_dir, html=True), name="web"),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
