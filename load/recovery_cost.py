"""The CPU one recovery costs the gateway, with and without the recent-messages cache
(issue 16's storm path), in process: a real SQLite store and hub, N guardians recovering
`missed` messages of their class with `since`, their connect replies encoded.

    python -m load recovery-cost [--guardians 1000] [--classes 40] [--missed 20]

It measures the part of a connect that the storm path changes (store read, conversion,
byte budget, encoding), not a whole connect: `make bench`'s storm scenario does that.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from channels.hub import Hub
from channels.memory import MemoryBroker
from persistence.sqlite import SQLiteStore
from realtime.engine.gateway import encode_reply
from realtime.engine.reads import LatestSeqs
from realtime.engine.recent import RecentCache
from realtime.engine.recovery import Recovery
from realtime.ws.codec import CODECS, JSON, MSGPACK, Codec
from realtime.ws.connection import Connection
from school.messages import Author, Draft
from school.wire import ConnectReply

TEXT = "Bonjour à tous, la sortie au musée est reportée à jeudi. " * 3
CAP, REPLY_BYTES = 500, 512 * 1024


async def measure(guardians: int, classes: int, missed: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(str(Path(tmp) / "s.db"))
        await store.open()
        broker = MemoryBroker()

        async def fetch_range(channel: str, after: int, upto: int) -> list[dict[str, Any]]:
            return [dict(m.to_wire()) for m in await store.range(channel, after, upto)]

        async def latest_seq(channel: str) -> int:
            return (await store.latest_seqs([channel])).get(channel, 0)

        hub = Hub(broker, {n: c.encode for n, c in CODECS.items()}, fetch_range, latest_seq)
        await broker.start(hub)
        channels = [f"class:c{i}" for i in range(classes)]
        for channel in channels:
            for _ in range(missed):
                await store.append(Draft(channel, str(uuid.uuid4()), 1, Author("t", "Mme Martin", "teacher"),
                                         "post", {"text": TEXT}))
            await hub.subscribe(channel, Connection(f"x-{channel}", JSON.name, 1 << 20))
        cache = RecentCache(store, hub.position, CAP, REPLY_BYTES, 1 << 26)
        hub.listeners.append(cache)
        paths = {"store": Recovery(store, hub, CAP, REPLY_BYTES),
                 "cache": Recovery(store, hub, CAP, REPLY_BYTES, recent=cache,
                                   latest=LatestSeqs(store.latest_seqs))}
        rows: list[dict[str, Any]] = []
        try:
            for codec in (JSON, MSGPACK):
                for name, recovery in paths.items():
                    async def one(i: int, recovery: Recovery = recovery, codec: Codec = codec) -> bytes:
                        channel = channels[i % classes]
                        states = await recovery.read_states([channel, "school:s", f"user:u{i}"], {channel: 0})
                        body: ConnectReply = {"user": {"id": f"u{i}", "name": "", "role": "guardian"},
                                              "session": "s", "ping": 20, "channels": [s for s, _ in states]}
                        return encode_reply(codec, {"id": 1, "ok": body}, "c", "connect", spliced=True)

                    cpu, wall = time.process_time(), time.perf_counter()
                    frames = await asyncio.gather(*(one(i) for i in range(guardians)))
                    rows.append({"path": name, "codec": codec.name, "guardians": guardians,
                                 "cpu_ms_per_recovery": round((time.process_time() - cpu) * 1000 / guardians, 3),
                                 "wall_s": round(time.perf_counter() - wall, 3), "reply_bytes": len(frames[0])})
        finally:
            await hub.close()
            await broker.close()
            await store.close()
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load recovery-cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--guardians", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=40)
    parser.add_argument("--missed", type=int, default=20)
    args = parser.parse_args(argv)
    for row in asyncio.run(measure(args.guardians, args.classes, args.missed)):
        print(f"{row['path']:>5} {row['codec']:<20} {row['cpu_ms_per_recovery']:>7.3f} ms CPU per recovery "
              f"({row['guardians']} guardians in {row['wall_s']} s, replies of {row['reply_bytes']} bytes)")
    return 0
