"""What an idle connection keeps (docs/design-notes.md, "Memory per connection"): not the
handshake's headers, no per-connection `__dict__` of ours, the endpoint served without Starlette's
`WebSocket` in between — under our uvicorn protocol (the direct writer) and without it (the outbox
and its writer task). Our protocol over the fake transport of test_transport."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from websockets.frames import Opcode

from realtime.config import Limits, load_settings
from realtime.engine.gateway import Gateway
from realtime.metrics import Metrics
from realtime.process.app import FastWebSocketRoute
from realtime.process.cli import uvicorn_config
from realtime.ws.close import CloseCode
from realtime.ws.codec import negotiate
from realtime.ws.connection import Connection
from realtime.ws.session import Session, State
from realtime.ws.transport import DIRECT_EXTENSION
from tests.support.waiting import wait_for
from tests.unit.realtime.ws.test_transport import Peer, opened


def gateway_app(direct: bool = True) -> tuple[Any, Gateway]:
    """`FastWebSocketRoute` over a gateway without handlers (`ping` is answered `bad_request`:
    a reply all the same). Without `direct`, as another ASGI server would run it: no
    `liaison.direct` in the scope, the outbox and its writer task."""
    starlette = Starlette()
    gateway = Gateway(Limits(), Metrics(), leave=lambda channel, conn: None)
    starlette.state.gateway = gateway
    fast = FastWebSocketRoute(starlette)

    async def app(scope: Any, receive: Any, send: Any) -> None:  # the test's Peer detects ASGI 3
        if not direct:
            scope["extensions"].pop(DIRECT_EXTENSION, None)
        await fast(scope, receive, send)

    return app, gateway


def test_uvicorn_is_told_the_fast_route_is_asgi_3() -> None:
    """`FastWebSocketRoute` returns the endpoint's coroutine instead of being a coroutine
    function (one frame less per connection): uvicorn would take it for ASGI 2 unless told."""
    settings = load_settings({"LIAISON_STORE_URL": "sqlite:///:memory:"}, demo=True)
    assert uvicorn_config(settings, "127.0.0.1", 0).interface == "asgi3"


async def test_the_per_connection_objects_have_no_instance_dict() -> None:
    codec = negotiate(["liaison.v1.json"])
    assert not hasattr(Connection("c", codec.name, 1024), "__dict__")
    assert not hasattr(Session("c", codec, Limits()), "__dict__")


SHARED_KEYS_MAX = 30  # CPython's limit for instances sharing their class's dict keys


async def test_the_protocol_keeps_its_instance_dict_under_the_shared_keys_limit() -> None:
    """Over the limit, each connection's protocol has a dict of its own (~1.6 KiB, not ~0.3)."""
    peer = await opened()
    peer.server.send_keepalive_ping()  # what a live connection sets later: the ping's state
    assert len(vars(peer.server)) < SHARED_KEYS_MAX


async def test_the_handshake_headers_are_not_kept_after_the_handshake() -> None:
    peer = await opened()
    # uvicorn keeps the request (and websockets' parser too); its headers are emptied
    assert len(peer.server.request.headers) == 0
    assert peer.server.response is None  # sent
    assert peer.server.scope["path"] == "/ws"


async def run_one_command(peer: Peer, gateway: Gateway, direct: bool) -> None:
    await wait_for(lambda: peer.server.handshake_complete and len(gateway.connections) == 1, what="session")
    response = peer.events()[0]
    assert response.status_code == 101
    assert response.headers["Sec-WebSocket-Protocol"] == "liaison.v1.json"
    # the endpoint read what it needed of the handshake and kept none of it (of the scope at
    # all under our protocol)
    if direct:
        assert len(peer.server.scope) == 0
    else:
        assert peer.server.scope["headers"] == [] and peer.server.scope["subprotocols"] == []
    peer.client.send_text(json.dumps({"id": 1, "op": "ping"}).encode())
    peer.send_to_server()
    replies: list[Any] = []

    def replied() -> bool:
        replies.extend(e for e in peer.events() if getattr(e, "opcode", None) is Opcode.TEXT)
        return bool(replies)

    await wait_for(replied, what="reply")
    assert json.loads(replies[0].data)["id"] == 1
    peer.client.send_close(1000)
    peer.send_to_server()
    await wait_for(lambda: not gateway.connections, what="session closed")


async def test_the_endpoint_serves_with_the_direct_writer() -> None:
    app, gateway = gateway_app()
    peer = Peer(app)
    peer.open()
    await run_one_command(peer, gateway, direct=True)


async def test_the_endpoint_serves_through_the_outbox_without_the_direct_writer() -> None:
    app, gateway = gateway_app(direct=False)
    peer = Peer(app)
    peer.open()
    await run_one_command(peer, gateway, direct=False)


async def test_one_timer_closes_every_connection_that_did_not_connect_in_time() -> None:
    gateway = Gateway(Limits(connect_timeout=0.2), Metrics(), leave=lambda channel, conn: None)
    codec = negotiate(["liaison.v1.json"])
    (late, late_conn), (ready, ready_conn), (gone, gone_conn) = (gateway.open_session(codec) for _ in range(3))
    for session in (late, ready, gone):
        gateway.expect_connect(session)
    ready.state = State.READY  # its connect succeeded
    gateway.close_session(gone, gone_conn)
    await wait_for(lambda: late_conn.close_code is not None, what="the late one closed")
    assert (late_conn.close_code, late_conn.close_reason) == (CloseCode.UNAUTHORIZED, "no connect in time")
    assert ready_conn.close_code is None
    # a connection opened afterwards gets its own full delay, from the same single timer
    (again, again_conn) = gateway.open_session(codec)
    gateway.expect_connect(again)
    await asyncio.sleep(0.1)
    assert again_conn.close_code is None
    await wait_for(lambda: again_conn.close_code is CloseCode.UNAUTHORIZED, what="the later one closed")
    assert ready_conn.close_code is None
