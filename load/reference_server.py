"""The reference server: the plainest `websockets` broadcast server, on the same Redis.

Liaison's benchmark figures are ratios to this server, measured in the same run. It
does what a minimal chat server does and nothing more: no authentication, no policy,
no durable storage, one process. A publish is encoded ONCE into the push frame that
every recipient gets, published to Redis (`PUBLISH ref:<channel> <frame>`), and the
subscriber loop hands the bytes, undecoded, to `websockets.broadcast()` for the
channel's sockets. Without `--redis`, the publish goes straight to the local
broadcast (no Redis round trip).

Minimal protocol (JSON text frames; the same frame shapes as Liaison's protocol v1,
so that the load generator uses one client for both):

- `{"id": 1, "op": "connect", "user": "<id>", "channels": [...], "since": {ch: seq}}`
  joins the listed channels (and those named in `since`) and replies
  `{"id": 1, "ok": {"user": {"id"}, "channels": [{"channel", "seq", "messages",
  "complete"}]}}`; for a channel in `since`, `messages` are the messages above that
  `seq` kept in memory (the last `HISTORY` of each channel; `complete` says whether
  they reach back far enough). There is no gap-free handoff: the scenarios never
  publish while a client recovers.
- `{"id": n, "op": "publish", "channel", "kind", "data"}` gives the message the
  channel's next `seq` (an in-process counter: one reference process only), builds
  `{"push": "message", "message": {"channel", "seq", "id", "ts", "from", "kind",
  "data", "edited", "deleted"}}` once, publishes it and replies `{"id": n, "ok":
  {"seq", "id", "ts"}}` when Redis has taken it.
- `{"id": n, "op": "join", "channels": [...]}` joins more channels; `{"id": n, "op":
  "ping"}` replies `{}`; anything else gets `{"id": n, "error": {"code": "bad_request"}}`.

Every connection of a channel gets each message of it, the publisher's own
included. Run it: `python -m load.reference_server --port 8100 --redis redis://127.0.0.1:6379`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

HISTORY = 1000  # messages kept in memory per channel, for `since`
PREFIX = "ref:"


class Relay:
    """Channel membership, seq counters and history of one reference process."""

    def __init__(self, publish: Callable[[str, bytes], Awaitable[None]] | None = None) -> None:
        self.members: dict[str, set[ServerConnection]] = {}
        self.seqs: dict[str, int] = {}
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self._publish = publish

    def join(self, ws: ServerConnection, channel: str, since: int | None) -> dict[str, Any]:
        self.members.setdefault(channel, set()).add(ws)
        latest = self.seqs.get(channel, 0)
        if since is None:
            return {"channel": channel, "seq": latest, "messages": [], "complete": True}
        kept = self.history.get(channel, ())
        messages = [m for m in kept if m["seq"] > since]
        complete = latest - since <= len(messages)
        return {"channel": channel, "seq": max(since, messages[-1]["seq"] if messages else since),
                "messages": messages, "complete": complete}

    def leave(self, ws: ServerConnection, channels: set[str]) -> None:
        for channel in channels:
            members = self.members.get(channel)
            if members is not None:
                members.discard(ws)
                if not members:
                    del self.members[channel]

    async def publish(self, user: str, channel: str, kind: str, data: Any) -> dict[str, Any]:
        seq = self.seqs.get(channel, 0) + 1
        self.seqs[channel] = seq
        message = {"channel": channel, "seq": seq, "id": str(uuid.uuid4()), "ts": int(time.time() * 1000),
                   "from": {"id": user}, "kind": kind, "data": data, "edited": None, "deleted": False}
        self.history.setdefault(channel, deque(maxlen=HISTORY)).append(message)
        frame = json.dumps({"push": "message", "message": message}, separators=(",", ":")).encode()
        if self._publish is None:
            self.deliver(channel, frame)
        else:
            await self._publish(PREFIX + channel, frame)
        return {"seq": seq, "id": message["id"], "ts": message["ts"]}

    def deliver(self, channel: str, frame: bytes) -> None:
        members = self.members.get(channel)
        if members:
            broadcast(members, frame, text=True)

    async def handler(self, ws: ServerConnection) -> None:
        user = ""
        joined: set[str] = set()
        try:
            async for raw in ws:
                try:
                    cmd = json.loads(raw)
                    cid, op = cmd["id"], cmd["op"]
                except (ValueError, KeyError, TypeError):
                    await ws.send('{"error":{"code":"bad_request","message":"bad frame"}}')
                    continue
                result: dict[str, Any] | None = None
                if op == "connect":
                    user = str(cmd.get("user", ""))
                    since = {str(k): int(v) for k, v in (cmd.get("since") or {}).items()}
                    names = sorted({*map(str, cmd.get("channels") or ()), *since})
                    joined.update(names)
                    states = [self.join(ws, name, since.get(name)) for name in names]
                    result = {"user": {"id": user}, "channels": states}
                elif op == "join":
                    names = [str(c) for c in cmd.get("channels") or ()]
                    joined.update(names)
                    result = {"channels": [self.join(ws, name, None) for name in names]}
                elif op == "publish":
                    try:
                        result = await self.publish(user, str(cmd["channel"]), str(cmd.get("kind", "post")),
                                                    cmd.get("data"))
                    except (KeyError, OSError, RedisError) as exc:
                        error = {"code": "unavailable", "message": type(exc).__name__}
                        await ws.send(json.dumps({"id": cid, "error": error}))
                        continue
                elif op == "ping":
                    result = {}
                if result is None:
                    reply: dict[str, Any] = {"id": cid, "error": {"code": "bad_request", "message": op}}
                else:
                    reply = {"id": cid, "ok": result}
                await ws.send(json.dumps(reply, separators=(",", ":")))
        except ConnectionClosed:
            pass
        finally:
            self.leave(ws, joined)


async def _subscriber(relay: Relay, redis_url: str, ready: asyncio.Event) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.psubscribe(PREFIX + "*")
    ready.set()
    try:
        async for item in pubsub.listen():
            if item.get("type") != "pmessage":
                continue
            name = item["channel"].decode()[len(PREFIX):]
            relay.deliver(name, item["data"])
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()


async def run(host: str, port: int, redis_url: str | None) -> None:
    publisher = None
    tasks: list[asyncio.Task[None]] = []
    if redis_url:
        from redis.asyncio import Redis

        publisher = Redis.from_url(redis_url)

        async def publish(channel: str, frame: bytes) -> None:
            await publisher.publish(channel, frame)

        relay = Relay(publish)
        ready = asyncio.Event()
        tasks.append(asyncio.create_task(_subscriber(relay, redis_url, ready)))
        await asyncio.wait_for(ready.wait(), 10)
    else:
        relay = Relay(None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with serve(relay.handler, host, port, compression=None, max_size=1 << 20, backlog=4096):
        print(f"reference server on ws://{host}:{port}/ (redis: {redis_url or 'none'})", flush=True)
        await stop.wait()
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if publisher is not None:
        await publisher.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="the plain websockets broadcast server (benchmark reference)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--redis", default=None, help="redis://host:port (omit: in-process broadcast)")
    args = parser.parse_args()
    asyncio.run(run(args.host, args.port, args.redis))


if __name__ == "__main__":
    main()
