"""A protocol v1 test client over a real WebSocket (JSON or MessagePack)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from typing import Any

import msgpack
from websockets.asyncio.client import ClientConnection, connect

UNIT = float(os.environ.get("LIAISON_TEST_TIMEOUT_SCALE", "1")) * 5.0  # seconds


class Client:
    def __init__(self, ws: ClientConnection, binary: bool) -> None:
        self.ws = ws
        self.binary = binary
        self.ids = itertools.count(1)
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.idless: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.create_task(self._read())
        self.connected: dict[str, Any] = {}  # the `connect` reply, kept by the helpers that connect

    @classmethod
    async def open(cls, url: str, binary: bool = False, **kwargs: Any) -> Client:
        proto = "liaison.v1.msgpack" if binary else "liaison.v1.json"
        ws = await connect(url, subprotocols=[proto], max_size=None, **kwargs)  # type: ignore[list-item]
        return cls(ws, binary)

    def encode(self, obj: Any) -> bytes | str:
        return msgpack.packb(obj) if self.binary else json.dumps(obj)

    async def _read(self) -> None:
        async for frame in self.ws:
            obj = msgpack.unpackb(frame) if isinstance(frame, bytes) else json.loads(frame)
            if "push" in obj:
                self.pushes.put_nowait(obj)
            elif "id" in obj and obj["id"] in self.replies:
                self.replies.pop(obj["id"]).set_result(obj)
            else:
                self.idless.put_nowait(obj)

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def call(self, op: str, timeout: float = UNIT, **params: Any) -> dict[str, Any]:
        """Send a command and return the whole reply frame."""
        cid = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.replies[cid] = future
        await self.ws.send(self.encode({"id": cid, "op": op, **params}))
        return await asyncio.wait_for(future, timeout)

    async def ok(self, op: str, **params: Any) -> dict[str, Any]:
        reply = await self.call(op, **params)
        assert "ok" in reply, f"{op} failed: {reply}"
        return reply["ok"]  # type: ignore[no-any-return]

    async def error(self, op: str, **params: Any) -> str:
        reply = await self.call(op, **params)
        assert "error" in reply, f"{op} should have failed: {reply}"
        return reply["error"]["code"]  # type: ignore[no-any-return]

    async def push(self, kind: str | None = None, timeout: float = UNIT) -> dict[str, Any]:
        """The next push (of `kind`, skipping others)."""
        async with asyncio.timeout(timeout):
            while True:
                push = await self.pushes.get()
                if kind is None or push["push"] == kind:
                    return push

    async def messages(self, count: int, timeout: float = UNIT) -> list[dict[str, Any]]:
        return [(await self.push("message", timeout))["message"] for _ in range(count)]

    def no_push_now(self) -> bool:
        return self.pushes.empty()

    async def closed(self, timeout: float = UNIT) -> int | None:
        """Wait for the server to close; the close code."""
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.reader
