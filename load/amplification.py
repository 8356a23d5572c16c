"""`python -m load amplification`: what a non-reading client can make a gateway hold (issue 10,
item 1).

The attack a review measured: a parent posts 500 long chat messages, then opens 200
connections whose `connect` recovers them (`since` = {the chat: 0}) and never reads; or sends
100 `GET /api/v1/channels/{chat}/messages?limit=200` and never reads the answers. Each reply is
built and written by the gateway, the client's kernel takes a few KiB, and the rest stays in
the gateway's memory until the socket closes.

This scenario stages exactly that against a real `liaison serve --demo` (SQLite in a temporary
folder), twice: with the per-user caps raised so that all 200 connections are accepted (what
the byte bounds alone hold) and with the default caps. It samples the gateway's RSS
(/proc/PID/status `VmRSS`, every 20 ms, from a thread) before each phase, at its peak, and after
the sockets are closed, and writes report.json and report.md in load/results/<timestamp>-amplification/.

The attacking sockets are raw: a `socket` with `SO_RCVBUF` = 4096 set before `connect`, the
WebSocket upgrade written by hand, one masked `connect` frame, then nothing is read until the
peak has been sampled; only then is the start of each answer read (a few hundred bytes), to
count what was accepted and refused. Every wait is bounded; everything goes to 127.0.0.1; only
the gateway started here is stopped, by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import re
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from load.client import JSON_SUBPROTOCOL, ClientError, LoadClient
from load.servers import Pinning, Process, free_port, rss_kib

RESULTS = Path(__file__).resolve().parent / "results"
KIB, MIB = 1024, 1024 * 1024
PARENT, STUDENT = "p-lea-mere", "s-lea"
DEFAULT_REPLY_BYTES = 512 * KIB  # LIAISON_REPLY_BYTES
DEFAULT_OUTBOX_BYTES = 1 * MIB  # LIAISON_OUTBOX_BYTES
DEFAULT_RECOVERY_CAP = 500  # LIAISON_RECOVERY_CAP: messages one recovery reads from the store
DEFAULT_MAX_TEXT = 10_000  # LIAISON_MAX_TEXT
HISTORY_MAX = 200  # the largest history page
DEFAULT_SOCKET_SNDBUF = 64 * KIB  # LIAISON_SOCKET_SNDBUF (the kernel reserves twice this, outside RSS)
DEFAULT_USER_CONNECTIONS = 10  # LIAISON_USER_CONNECTIONS
DEFAULT_HTTP_BURST = 60  # LIAISON_HTTP_BURST
DEFAULT_PUBLISHES = (10.0, 30)  # LIAISON_PUBLISHES_PER_SECOND, LIAISON_PUBLISH_BURST
RAISED = "10000"

Say = Callable[[str], None]


@dataclass(frozen=True)
class Mode:
    name: str
    description: str
    env: dict[str, str]
    user_connections: int
    http_burst: int
    publish_rate: float  # the staging pace: what the mode's publish limit lets through
    publish_burst: int


MODES: dict[str, Mode] = {
    "raised": Mode(
        "limits raised",
        "per-user limits raised (connections 1,000, commands, publishes and HTTP 10,000/s): only the byte "
        "bounds hold the gateway",
        {"LIAISON_USER_CONNECTIONS": "1000", "LIAISON_COMMANDS_PER_SECOND": RAISED,
         "LIAISON_COMMAND_BURST": RAISED, "LIAISON_USER_COMMANDS_PER_SECOND": RAISED,
         "LIAISON_USER_COMMAND_BURST": RAISED, "LIAISON_PUBLISHES_PER_SECOND": RAISED,
         "LIAISON_PUBLISH_BURST": RAISED, "LIAISON_HTTP_PER_SECOND": RAISED, "LIAISON_HTTP_BURST": RAISED},
        1000, 10_000, 10_000.0, 10_000),
    "defaults": Mode(
        "defaults",
        "every limit at its default (10 connections per user, HTTP 20/s burst 60; the 500 messages are "
        "staged at the default 10 publishes/s)",
        {}, DEFAULT_USER_CONNECTIONS, DEFAULT_HTTP_BURST, *DEFAULT_PUBLISHES),
}


# -- pure parts -------------------------------------------------------------------------------


def client_frame(payload: bytes, mask: bytes, opcode: int = 0x1) -> bytes:
    """One final WebSocket frame from a client (RFC 6455 §5.2: masked)."""
    if len(mask) != 4:
        raise ValueError("the mask is 4 bytes")
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def upgrade_request(port: int, key: str, subprotocol: str = JSON_SUBPROTOCOL) -> bytes:
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n").encode()


def history_request(port: int, channel: str, token: str, limit: int = 200) -> bytes:
    return (f"GET /api/v1/channels/{channel}/messages?limit={limit} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n").encode()


def server_frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """The server frames (unmasked) at the start of `data`: (opcode, payload length, the payload
    bytes present, possibly only a prefix of the last one)."""
    frames: list[tuple[int, int, bytes]] = []
    at = 0
    while len(data) - at >= 2:
        opcode, code = data[at] & 0x0F, data[at + 1] & 0x7F
        at += 2
        if code == 126:
            if len(data) - at < 2:
                break
            (length,) = struct.unpack_from("!H", data, at)
            at += 2
        elif code == 127:
            if len(data) - at < 8:
                break
            (length,) = struct.unpack_from("!Q", data, at)
            at += 8
        else:
            length = code
        frames.append((opcode, length, data[at:at + length]))
        at += length
    return frames


def classify_ws(data: bytes, closed: bool) -> str:
    """What the start of a connection's answer says about its `connect`: `accepted` (an `ok`
    reply), `refused:<code>` (an error reply), `closed:<close code>`, `closed` (the server ended the
    connection before answering) or `no answer`."""
    for opcode, _length, payload in server_frames(data):
        if opcode == 0x1:
            if payload.startswith(b'{"push"'):
                continue
            head = payload[:300]
            ok, error = head.find(b'"ok"'), head.find(b'"error"')
            if ok >= 0 and (error < 0 or ok < error):
                return "accepted"
            if error >= 0:
                match = re.search(rb'"code"\s*:\s*"([a-z_]+)"', head)
                return "refused:" + (match.group(1).decode() if match else "?")
        if opcode == 0x8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            return f"closed:{code}"
    return "closed" if closed else "no answer"


def classify_http(data: bytes, closed: bool) -> str:
    """`http:<status>` from the start of a response, else `closed` or `no answer`."""
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if match:
        return "http:" + match.group(1).decode()
    return "closed" if closed else "no answer"


def tally(outcomes: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return dict(sorted(counts.items()))


def ws_bound_kib(before_kib: int, accepted: int, reads: int = 0, reply_bytes: int = DEFAULT_REPLY_BYTES,
                 outbox_bytes: int = DEFAULT_OUTBOX_BYTES) -> int:
    """The RSS the WebSocket attack must stay under (KiB): what the gateway held before; per
    accepted connection its outbox bound (LIAISON_OUTBOX_BYTES: the queued reply frame; more
    closes the connection 4503) and one reply's worth of objects while it is built
    (LIAISON_REPLY_BYTES); per recovery read in flight (`reads`: at most the connections the
    per-user cap admits) the store's answer, which the store itself cuts at the reply budget
    (twice: the row's JSON and the decoded text). The kernel's socket buffers
    (2 x LIAISON_SOCKET_SNDBUF) are not in RSS."""
    return before_kib + (accepted * (outbox_bytes + reply_bytes) + reads * 2 * reply_bytes) // KIB


def http_bound_kib(before_kib: int, accepted: int, reply_bytes: int = DEFAULT_REPLY_BYTES) -> int:
    """The same for history pages over HTTP (KiB): per accepted request, the body (at most
    LIAISON_REPLY_BYTES) held by the transport until the client reads it, twice while it is
    encoded, and the store's page, cut by the store at the same budget, twice."""
    return before_kib + accepted * 4 * reply_bytes // KIB


def mib(kib: int | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


def markdown(report: dict[str, Any]) -> str:
    """report.md: one table per run, the bound and whether it held."""
    lines = ["# Amplification: non-reading clients recovering large histories", "",
             f"Started {report['started']}, {report['duration_s']} s. Gateway: `liaison serve --demo`, SQLite; "
             f"{report['messages']} chat messages of {report['chars']:,} characters by `{PARENT}` in "
             f"`{report.get('channel', '?')}`; {report['connections']} WebSocket connections with "
             f"`since` = {{chat: 0}} and {report['http_requests']} `GET …/messages?limit=200`, none read "
             f"(client SO_RCVBUF {report['rcvbuf']} B).", ""]
    for run in report["runs"]:
        lines += [f"## {run['mode']}", "", run["description"], ""]
        if "error" in run:
            lines += [f"**failed**: {run['error']}", ""]
        lines += ["| phase | RSS before | peak | after close | accepted / sent | outcomes | bound | held |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for phase in run.get("phases", []):
            held = phase.get("held")
            lines.append(
                f"| {phase['name']} | {mib(phase['rss_before_kib'])} MiB | {mib(phase['rss_peak_kib'])} MiB | "
                f"{mib(phase['rss_after_kib'])} MiB | {phase['accepted']} / {phase['sent']} | "
                f"{', '.join(f'{k}: {v}' for k, v in phase['outcomes'].items())} | "
                f"{mib(phase['bound_kib'])} MiB | {'yes' if held else 'NO' if held is not None else '-'} |")
        staging = run.get("staging")
        if staging:
            lines += ["", f"Staging: {staging['published']} messages in {staging['seconds']} s "
                          f"({staging['refused']} refused and retried); RSS after staging "
                          f"{mib(staging['rss_kib'])} MiB."]
        lines.append("")
    for note in report.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


# -- the gateway's memory ---------------------------------------------------------------------


class RssSampler:
    """The gateway's VmRSS every `interval` s, from a thread (the attack's event loop can be
    busy; the figures must not depend on it)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), rss_kib(self.pid)))
            self._stop.wait(self.interval)

    def now(self) -> int:
        return rss_kib(self.pid)

    def peak_since(self, t0: float) -> int:
        return max((kib for t, kib in list(self.samples) if t >= t0), default=self.now())

    def steady(self, seconds: float, tolerance_kib: int) -> bool:
        """Whether the RSS moved by less than `tolerance_kib` over the last `seconds`."""
        now = time.monotonic()
        window = [kib for t, kib in list(self.samples) if t >= now - seconds]
        if not window or next(iter(self.samples))[0] > now - seconds:
            return False
        return max(window) - min(window) < tolerance_kib

    def rising(self, seconds: float, tolerance_kib: int) -> bool:
        """Whether the peak of the last `seconds` is above everything before them."""
        now = time.monotonic()
        samples = list(self.samples)
        recent = [kib for t, kib in samples if t >= now - seconds]
        older = [kib for t, kib in samples if t < now - seconds]
        if not recent or not older:
            return True
        return max(recent) > max(older) + tolerance_kib


def reset_hwm(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) by writing 5 to /proc/PID/clear_refs."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def metric(port: int, name: str, label: str | None = None) -> float | None:
    """One sample of the gateway's /metrics (None when absent or unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            text = response.read().decode()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        base = key.split("{", 1)[0]
        if base != name or (label is not None and label not in key):
            continue
        total = (total or 0.0) + float(value)
    return total


# -- the attack -------------------------------------------------------------------------------


@dataclass
class Held:
    """An attacking socket and what was read from it (nothing, until the peak is sampled)."""

    sock: socket.socket
    data: bytes = b""
    error: str | None = None
    closed: bool = False


def raw_socket(rcvbuf: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: the window is small
    sock.setblocking(False)
    return sock


async def ws_attacker(port: int, token: str, channel: str, rcvbuf: int, timeout: float) -> Held:
    loop = asyncio.get_running_loop()
    held = Held(raw_socket(rcvbuf))
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(held.sock, ("127.0.0.1", port))
            key = base64.b64encode(os.urandom(16)).decode()
            await loop.sock_sendall(held.sock, upgrade_request(port, key))
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                chunk = await loop.sock_recv(held.sock, 8192 - len(head))
                if not chunk:
                    raise ConnectionError("closed during the upgrade")
                head += chunk
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise ConnectionError(status.decode(errors="replace"))
            held.data = head.split(b"\r\n\r\n", 1)[1]  # nothing is sent before `connect`, normally
            command = {"id": 1, "op": "connect", "token": token, "since": {channel: 0}}
            payload = json.dumps(command, separators=(",", ":")).encode()
            await loop.sock_sendall(held.sock, client_frame(payload, os.urandom(4)))
    except (OSError, TimeoutError) as exc:
        held.error = f"{type(exc).__name__}: {exc}"
    return held


async def http_attacker(port: int, token: str, channel: str, rcvbuf: int, timeout: float) -> Held:
    loop = asyncio.get_running_loop()
    held = Held(raw_socket(rcvbuf))
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_connect(held.sock, ("127.0.0.1", port))
            await loop.sock_sendall(held.sock, history_request(port, channel, token))
    except (OSError, TimeoutError) as exc:
        held.error = f"{type(exc).__name__}: {exc}"
    return held


def peek_answers(holds: Sequence[Held], limit: int, deadline: float) -> None:
    """After the peak: read up to `limit` bytes of each answer (non-blocking, until `deadline`)."""
    pending = [h for h in holds if h.error is None]
    while pending and time.monotonic() < deadline:
        still = []
        for held in pending:
            try:
                chunk = held.sock.recv(limit - len(held.data))
            except BlockingIOError:
                still.append(held)
                continue
            except OSError as exc:
                held.closed = True
                held.error = held.error or f"{type(exc).__name__}"
                continue
            if not chunk:
                held.closed = True
            else:
                held.data += chunk
                if len(held.data) < limit:
                    still.append(held)
        pending = still
        if pending:
            time.sleep(0.05)


def close_all(holds: Sequence[Held]) -> None:
    for held in holds:
        with contextlib.suppress(OSError):
            held.sock.close()


async def hold_for_peak(sampler: RssSampler, min_s: float, max_s: float, say: Say) -> None:
    """Keep the sockets unread until the RSS stops rising (3 s without a new peak), at least
    `min_s`, at most `max_s` seconds."""
    started = time.monotonic()
    while True:
        await asyncio.sleep(0.25)
        held = time.monotonic() - started
        if held >= max_s or (held >= min_s and not sampler.rising(3.0, 1024)):
            say(f"  held {held:.1f} s, RSS {mib(sampler.now())} MiB")
            return


async def settle(sampler: RssSampler, port: int, max_s: float) -> float:
    """After the close: until the gateway has no connection left and its RSS has not moved by
    1 MiB for 3 s, at most `max_s` seconds. The seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < max_s:
        await asyncio.sleep(0.5)
        connections = await asyncio.to_thread(metric, port, "liaison_connections")
        if (connections is None or connections == 0) and sampler.steady(3.0, 1024):
            break
    return round(time.monotonic() - started, 1)


# -- staging ----------------------------------------------------------------------------------


def demo_token(port: int, user: str) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/demo/token", method="POST",
                                     data=json.dumps({"user": user}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        token: str = json.loads(response.read())["token"]
    return token


def message_text(i: int, chars: int) -> str:
    """A long chat message of exactly `chars` characters (`i` first, so they differ)."""
    head = f"message {i}: "
    body = "Réunion parents-professeurs, sortie scolaire, cantine. "
    return (head + body * (chars // len(body) + 1))[:chars]


async def stage(port: int, token: str, mode: Mode, messages: int, chars: int, timeout: float,
                say: Say) -> dict[str, Any]:
    """As the parent: `open_chat` about the child, then `messages` posts in it, paced to what
    the mode's publish limit lets through (a refused one is sent again)."""
    client = LoadClient(0, PARENT, f"ws://127.0.0.1:{port}/ws", False, lambda c, o, t: None)
    started = time.monotonic()
    await client.open(JSON_SUBPROTOCOL, timeout=10)
    try:
        await client.call("connect", token=token)
        channel: str = (await client.call("open_chat", student=STUDENT))["channel"]
        published = refused = 0
        window = asyncio.Semaphore(32)
        # a token bucket a little under the server's: the burst first, then the rate
        tokens_left: float = max(1, mode.publish_burst - 2)
        rate = mode.publish_rate * 0.95
        last = time.monotonic()

        async def one(i: int) -> None:
            nonlocal published, refused
            for _attempt in range(20):
                try:
                    await client.call("publish", timeout=timeout, channel=channel, kind="chat",
                                      data={"text": message_text(i, chars)})
                    published += 1
                    return
                except ClientError as exc:
                    if "rate_limited" not in str(exc):
                        raise
                    refused += 1
                    await asyncio.sleep(1.0)

        tasks = []
        for i in range(messages):
            if time.monotonic() - started > timeout:
                break
            while True:
                now = time.monotonic()
                tokens_left = min(mode.publish_burst - 2, tokens_left + (now - last) * rate)
                last = now
                if tokens_left >= 1:
                    tokens_left -= 1
                    break
                await asyncio.sleep((1 - tokens_left) / rate)
            await window.acquire()
            task = asyncio.create_task(one(i))
            task.add_done_callback(lambda _t: window.release())
            tasks.append(task)
            if i % 100 == 99:
                say(f"  staged {i + 1} messages")
        async with asyncio.timeout(max(1.0, timeout - (time.monotonic() - started))):
            await asyncio.gather(*tasks)
    finally:
        await client.close()
    return {"channel": channel, "published": published, "refused": refused,
            "seconds": round(time.monotonic() - started, 1)}


# -- one run ----------------------------------------------------------------------------------


@dataclass
class Plan:
    connections: int = 200
    http_requests: int = 100
    messages: int = 500
    chars: int = 9000
    rcvbuf: int = 4096
    phase_seconds: float = 60.0  # every wait of a phase together
    hold_min: float = 5.0
    hold_max: float = 25.0  # below the 20 + 20 s ping deadline that closes a non-reading socket
    settle_max: float = 30.0
    modes: list[str] = field(default_factory=lambda: ["raised", "defaults"])


async def attack_phase(name: str, sampler: RssSampler, pid: int, port: int, token: str, channel: str,
                       count: int, plan: Plan, mode: Mode, say: Say, batch: int = 0) -> dict[str, Any]:
    """`count` non-reading connections (or requests) at once (or `batch` at a time, 0.3 s apart);
    the RSS before, at the peak while they are open, and after they are closed."""
    http = name.startswith("http")
    reset = reset_hwm(pid)
    rate_limited0 = await asyncio.to_thread(metric, port, "liaison_errors", 'code="rate_limited"')
    before = sampler.now()
    t0 = time.monotonic()
    say(f"  {name}: {count} non-reading {'requests' if http else 'connections'}, RSS before {mib(before)} MiB")
    attacker = http_attacker if http else ws_attacker
    holds: list[Held] = []
    step = batch or count
    for first in range(0, count, step):
        if first:
            await asyncio.sleep(0.3)
        holds += await asyncio.gather(*(attacker(port, token, channel, plan.rcvbuf, 15.0)
                                        for _ in range(first, min(count, first + step))))
    sent_s = round(time.monotonic() - t0, 2)
    try:
        await hold_for_peak(sampler, plan.hold_min, min(plan.hold_max, plan.phase_seconds - 20 - sent_s), say)
        peak = sampler.peak_since(t0)
        hwm = hwm_kib(pid) if reset else None
        connections = await asyncio.to_thread(metric, port, "liaison_connections")
        rate_limited = await asyncio.to_thread(metric, port, "liaison_errors", 'code="rate_limited"')
        await asyncio.to_thread(peek_answers, holds, 64 if http else 512, time.monotonic() + 5)
    finally:
        close_all(holds)
    closed_at = time.monotonic()
    settle_s = await settle(sampler, port, max(5.0, min(plan.settle_max, plan.phase_seconds - (closed_at - t0))))
    after = sampler.now()
    classify = classify_http if http else classify_ws
    outcomes = [f"error: {h.error.split(':')[0]}" if h.error and not h.data else classify(h.data, h.closed)
                for h in holds]
    counts = tally(outcomes)
    accepted = counts.get("http:200" if http else "accepted", 0)
    # the connects admitted past the per-user cap each read the store (some may then time out)
    reads = accepted + counts.get("refused:unavailable", 0)
    bound = http_bound_kib(before, accepted) if http else ws_bound_kib(before, accepted, reads)
    result = {"name": name, "sent": count, "batch": batch or count, "sent_in_s": sent_s, "accepted": accepted,
              "outcomes": counts, "rss_before_kib": before, "rss_peak_kib": peak, "rss_hwm_kib": hwm,
              "rss_after_kib": after, "settle_s": settle_s, "connections_at_peak": connections,
              "rate_limited_errors": (None if rate_limited is None else rate_limited - (rate_limited0 or 0)),
              "store_reads": None if http else reads, "bound_kib": bound, "held": max(peak, hwm or 0) < bound,
              "growth_per_accepted_kib": round((peak - before) / accepted) if accepted else None}
    say(f"  {name}: accepted {accepted}/{count} {counts}; RSS {mib(before)} -> peak {mib(peak)} "
        f"(HWM {mib(hwm)}) -> after close {mib(after)} MiB (settled in {settle_s} s); bound {mib(bound)} MiB")
    return result


def start_gateway(workdir: Path, db: Path, mode: Mode, pinning: Pinning | None) -> tuple[Process, int]:
    port = free_port()
    env = {"LIAISON_JWT_SECRET": "", "LIAISON_STORE_URL": f"sqlite:///{db}", "LIAISON_REDIS_URL": "",
           "LIAISON_LOG_LEVEL": "warning", **mode.env}
    proc = Process(f"liaison:{port}", [sys.executable, "-m", "realtime.process.cli", "serve", "--demo",
                                       "--host", "127.0.0.1", "--port", str(port)],
                   workdir / f"liaison-{port}.log", env=env, cpus=pinning.servers if pinning else None)
    proc.start()

    def healthy() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    proc.wait_until(healthy, 30)
    return proc, port


async def run_mode(workdir: Path, key: str, plan: Plan, pinning: Pinning | None, say: Say) -> dict[str, Any]:
    """Stage the messages on one gateway, then measure each attack on a fresh gateway process
    over the same SQLite file (so that one phase's freed memory, kept by the allocator, does
    not hide the next phase's growth); the WebSocket attack is repeated on the same process
    (a second wave that does not grow the RSS shows the first wave's memory was freed)."""
    mode = MODES[key]
    run: dict[str, Any] = {"mode": mode.name, "description": mode.description, "env": mode.env, "phases": []}
    db = workdir / f"demo-{key}.db"
    phases: list[tuple[list[tuple[str, int]], int]] = [([("websocket", 0), ("websocket, second wave", 0)],
                                                        plan.connections)]
    if key == "raised":
        phases.append(([("websocket, 10 at a time", 10)], plan.connections))
    phases.append(([("http", 0)], plan.http_requests))
    proc: Process | None = None
    try:
        say(f"{mode.name}: staging on liaison serve --demo")
        proc, port = start_gateway(workdir, db, mode, pinning)
        run["rss_started_kib"] = rss_kib(proc.pid)
        token = await asyncio.to_thread(demo_token, port, PARENT)
        staging = await stage(port, token, mode, plan.messages, plan.chars,
                              max(90.0, plan.messages / mode.publish_rate * 1.5), say)
        staging["rss_kib"] = rss_kib(proc.pid)
        run["staging"] = staging
        say(f"  staged {staging['published']} messages in {staging['seconds']} s")
        proc.stop()
        for waves, count in phases:
            proc, port = start_gateway(workdir, db, mode, pinning)
            await asyncio.sleep(1.0)
            with RssSampler(proc.pid) as sampler:
                for name, batch in waves:
                    run["phases"].append(await attack_phase(name, sampler, proc.pid, port, token,
                                                            staging["channel"], count, plan, mode, say, batch))
                    await asyncio.sleep(3.0)  # the user's command bucket refills (burst 200 at 100/s)
            if not proc.alive():
                run.setdefault("notes", []).append(f"the gateway exited during {waves[0][0]}")
            proc.stop()
    except Exception as exc:
        run["error"] = f"{type(exc).__name__}: {exc}"
        say(f"  failed: {run['error']}\n{proc.log_tail() if proc else ''}")
    finally:
        if proc is not None:
            proc.stop()
    return run


def _notes(report: dict[str, Any]) -> list[str]:
    return [
        "Bound, WebSocket: RSS before + accepted x (LIAISON_OUTBOX_BYTES 1 MiB + LIAISON_REPLY_BYTES 512 KiB) "
        "+ store reads x LIAISON_RECOVERY_CAP 500 x LIAISON_MAX_TEXT 10,000 x 2 (9.5 MiB: one recovery's read "
        "before it is cut to the reply budget); store reads = the connects admitted by the per-user cap. "
        "The kernel's socket buffers (2 x LIAISON_SOCKET_SNDBUF per connection) are not in RSS.",
        "Bound, HTTP: RSS before + accepted x (2 x LIAISON_REPLY_BYTES + 200 messages x LIAISON_MAX_TEXT x 2) "
        "= 4.8 MiB per page.",
        "After close: the memory is freed (a second wave on the same process grows it little or not at all) "
        "but the allocator keeps most of it mapped, so the RSS after close stays near the peak.",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load amplification", description=__doc__.split("\n\n")[0]
                                     if __doc__ else None)
    parser.add_argument("--modes", default="raised,defaults", help="comma-separated: raised, defaults")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--http-requests", type=int, default=100)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--chars", type=int, default=9000, help="characters per message (LIAISON_MAX_TEXT 10000)")
    parser.add_argument("--rcvbuf", type=int, default=4096, help="the attacking sockets' SO_RCVBUF")
    parser.add_argument("--phase-seconds", type=float, default=60.0, help="the longest a phase may take")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--out", default=None, help="report directory (default load/results/<ts>-amplification)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            raise SystemExit(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    if not (1 <= args.connections <= 1000 and 1 <= args.http_requests <= 1000 and 1 <= args.messages <= 5000):
        raise SystemExit("connections and http requests: 1-1000; messages: 1-5000")
    plan = Plan(connections=args.connections, http_requests=args.http_requests, messages=args.messages,
                chars=args.chars, rcvbuf=args.rcvbuf, phase_seconds=max(30.0, args.phase_seconds), modes=modes)

    from load.cli import _server_digest as server_digest  # cli imports this module lazily

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    pinning = None if args.no_pin else Pinning.split()
    if pinning:
        pinning.pin_self()
    out = Path(args.out) if args.out else RESULTS / f"{dt.datetime.now():%Y%m%d-%H%M%S}-amplification"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    report: dict[str, Any] = {"started": dt.datetime.now().isoformat(timespec="seconds"),
                              "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
                              "server_code_digest": server_digest(),
                              "connections": plan.connections, "http_requests": plan.http_requests,
                              "messages": plan.messages, "chars": plan.chars, "rcvbuf": plan.rcvbuf,
                              "runs": []}
    with tempfile.TemporaryDirectory(prefix="liaison-amplification-") as tmp:
        for key in modes:
            run = asyncio.run(run_mode(Path(tmp), key, plan, pinning, say))
            report["runs"].append(run)
            report.setdefault("channel", run.get("staging", {}).get("channel"))
    report["duration_s"] = round(time.monotonic() - started, 1)
    report["notes"] = _notes(report)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    (out / "report.md").write_text(markdown(report))
    print(markdown(report))
    say(f"report: {out / 'report.md'}")
    failed = any("error" in run or not all(p.get("held") for p in run["phases"]) for run in report["runs"])
    return 1 if failed else 0
