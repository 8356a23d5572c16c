"""The load scenarios: class fan-out, school broadcast, morning storm, chat, idle
connections, soak. Each runs against a `Target` (Liaison or the reference server) and
returns a JSON-able dict; each prints a progress line per step on stderr.

Users and channels come from the synthetic district (`school.district`): ids and
memberships follow from (schools, classes, students) alone, and Liaison tokens are
minted here with the shared secret, so no call is made per user. Every loop is bounded
in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from auth import tokens
from load.client import (
    DEFAULT_CLIENT,
    JSON_SUBPROTOCOL,
    MSGPACK_SUBPROTOCOL,
    ClientError,
    LoadClient,
    close_many,
    open_many,
)
from load.report import (
    GENERATOR_LIMIT_PCT,
    GOAL_P99_MS,
    DeliveryLedger,
    best_server_step,
    latency_summary,
    median,
    percentile,
)
from load.servers import Usage, machine_busy_seconds, own_cpu_seconds
from school import district
from school.channels import class_channel, school_channel

TOKEN_TTL = 6 * 3600
CONNECT_CONCURRENCY = 200
MAX_OUTSTANDING = 5000  # publishes without a reply before the pacer holds back


@dataclass(frozen=True)
class Shape:
    """The synthetic district's size."""

    schools: int
    classes: int
    students: int

    @property
    def users_per_school(self) -> int:
        return 1 + self.classes + sum(len(district.guardian_ids(1, c, self.students))
                                      for c in range(1, self.classes + 1))


@dataclass
class Target:
    name: str
    kind: str  # "liaison" or "reference"
    urls: list[str]
    usage: Usage
    shape: Shape
    secret: bytes | None = None
    binary: bool = False
    client: str = DEFAULT_CLIENT  # the load generator's WebSocket client: picows or websockets
    description: str = ""
    on_phase: Callable[[str], None] | None = None
    aux: Usage | None = None  # processes the target relies on (redis-server), reported apart

    def phase(self, name: str) -> None:
        """Tell the runner where a scenario is (`measure`: setup done, the measured part starts)."""
        if self.on_phase is not None:
            self.on_phase(name)

    @property
    def subprotocol(self) -> str | None:
        if self.kind == "reference":
            return None
        return MSGPACK_SUBPROTOCOL if self.binary else JSON_SUBPROTOCOL

    def url_for(self, index: int) -> str:
        return self.urls[index % len(self.urls)]

    def token(self, user_id: str) -> str:
        assert self.secret is not None, "a Liaison target needs LIAISON_JWT_SECRET"
        return tokens.issue(self.secret, user_id, TOKEN_TTL)


Progress = Callable[[str], None]


def stderr_progress(prefix: str = "") -> Progress:
    started = time.monotonic()

    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {prefix}{line}", file=sys.stderr, flush=True)

    return say


# -- a pool of connections ------------------------------------------------------------------


@dataclass
class Pool:
    """The connections of one scenario and where their pushes go."""

    target: Target
    users: list[str]
    extra_channels: dict[int, list[str]] = field(default_factory=dict)
    on_other: Callable[[LoadClient, dict[str, Any], int], None] | None = None

    def __post_init__(self) -> None:
        self.ledger = DeliveryLedger()
        self.want = 0  # `wait_delivered` is woken when the ledger holds this many unique deliveries
        self.reached = asyncio.Event()
        self.last_recv_ns = 0
        self.other_pushes = 0
        self.clients = [LoadClient(i, user, self.target.url_for(i), self.target.binary, self._on_push,
                                   client=self.target.client)
                        for i, user in enumerate(self.users)]
        self.channels_of: list[list[str]] = [
            district.home_channels(user, self.target.shape.classes) + self.extra_channels.get(i, [])
            for i, user in enumerate(self.users)]
        self.live: set[int] = set()
        self.tokens: list[str] = ([self.target.token(u) for u in self.users]
                                  if self.target.kind == "liaison" else [])

    def _on_push(self, client: LoadClient, push: dict[str, Any], received_ns: int) -> None:
        if push.get("push") == "message":
            message = push["message"]
            text = message.get("data", {}).get("text")
            latency = None
            if isinstance(text, str) and text[:2] == "t=":
                latency = received_ns - int(text[2:])
            ledger = self.ledger
            ledger.record(client.index, message["channel"], message["seq"], latency)
            self.last_recv_ns = received_ns
            if self.want and ledger.received - ledger.duplicates >= self.want:
                self.reached.set()
        else:
            self.other_pushes += 1
        if self.on_other is not None:
            self.on_other(client, push, received_ns)

    def connect_params(self, index: int, since: dict[str, int] | None = None) -> dict[str, Any]:
        if self.target.kind == "liaison":
            params: dict[str, Any] = {"token": self.tokens[index]}
        else:
            params = {"user": self.users[index], "channels": self.channels_of[index]}
        if since:
            params["since"] = since
        return params

    def recipients(self) -> dict[str, list[int]]:
        """Live connections by channel (what the server subscribed them to)."""
        out: dict[str, list[int]] = {}
        for index in self.live:
            for channel in self.channels_of[index]:
                out.setdefault(channel, []).append(index)
        return out

    async def connect(self, progress: Progress, timeout: float = 120.0) -> dict[str, Any]:
        """Open every connection and send its `connect`, `CONNECT_CONCURRENCY` at a time."""
        started = time.monotonic()
        deadline = started + timeout
        usage, aux = self.target.usage, self.target.aux
        cpu0, aux0 = usage.cpu_seconds(), aux.cpu_seconds() if aux else 0.0

        async def first(client: LoadClient) -> None:
            await client.call("connect", timeout=max(1.0, deadline - time.monotonic()),
                              **self.connect_params(client.index))
            self.live.add(client.index)

        failed = await open_many(self.clients, self.target.subprotocol, CONNECT_CONCURRENCY, 30.0, deadline, first)
        seconds = time.monotonic() - started
        server_cpu = usage.cpu_seconds() - cpu0
        aux_cpu = aux.cpu_seconds() - aux0 if aux else None
        gc.collect()
        gc.freeze()  # the connections live for the whole scenario: keep them out of GC passes
        result: dict[str, Any] = {"connections": len(self.clients), "connected": len(self.live),
                                  "failed": len(failed), "connect_seconds": round(seconds, 3),
                                  # CPU per connect: steadier from run to run than the wall time
                                  "connect_server_cpu_s": round(server_cpu, 3)}
        if aux_cpu is not None:
            result["connect_aux_cpu_s"] = round(aux_cpu, 3)
        if failed:
            result["first_failure"] = failed[0]
        progress(f"{len(self.live):,}/{len(self.clients):,} connected in {seconds:.1f} s"
                 + (f" ({len(failed)} failed: {failed[0]})" if failed else ""))
        return result

    async def close(self) -> None:
        await close_many(self.clients)
        self.live.clear()
        gc.unfreeze()
        gc.collect()


# -- users -------------------------------------------------------------------------------


def class_users(shape: Shape, count: int, teachers: bool = True) -> tuple[list[str], list[tuple[str, str]]]:
    """Whole classes (teacher and the families' guardians), school by school, until `count` users;
    and each class's (teacher, class channel)."""
    users: list[str] = []
    classes: list[tuple[str, str]] = []
    for s in range(1, shape.schools + 1):
        for c in range(1, shape.classes + 1):
            if len(users) >= count:
                return users, classes
            if teachers:
                users.append(district.teacher_id(s, c))
            users.extend(district.guardian_ids(s, c, shape.students))
            classes.append((district.teacher_id(s, c), class_channel(district.class_id(s, c))))
    return users, classes


# -- publishing at a paced rate -------------------------------------------------------------


@dataclass
class Step:
    rate: float
    seconds: float
    sent: int = 0
    throttled: bool = False
    errors: int = 0
    unacked: int = 0
    published: list[tuple[str, int]] = field(default_factory=list)
    first_error: str | None = None


async def paced_publish(publishers: Sequence[tuple[LoadClient, str]], rate: float, seconds: float, kind: str,
                        drain: float) -> Step:
    """Publish `rate * seconds` messages, round robin over the publishers, on schedule (pipelined:
    replies are not awaited before the next send); then wait up to `drain` s for the replies."""
    step = Step(rate, seconds)
    total = max(1, round(rate * seconds))
    acks: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
    outstanding = 0

    def done(_: asyncio.Future[dict[str, Any]]) -> None:
        nonlocal outstanding
        outstanding -= 1

    started = time.monotonic()
    hard_stop = started + seconds * 2 + 2
    while step.sent < total and time.monotonic() < hard_stop:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while step.sent < due:
            if outstanding >= MAX_OUTSTANDING:
                step.throttled = True
                break
            client, channel = publishers[step.sent % len(publishers)]
            try:
                future = await client.send("publish", channel=channel, kind=kind,
                                           data={"text": f"t={time.time_ns()}"})
            except ClientError as exc:
                step.errors += 1
                step.first_error = step.first_error or str(exc)
                step.sent += 1
                continue
            outstanding += 1
            future.add_done_callback(done)
            acks.append((channel, future))
            step.sent += 1
        await asyncio.sleep(0.002)
    pending = [f for _, f in acks if not f.done()]
    if pending:
        await asyncio.wait(pending, timeout=drain)
    for channel, future in acks:
        if not future.done() or future.cancelled():
            step.unacked += 1
            continue
        if future.exception() is not None:
            step.errors += 1
            step.first_error = step.first_error or str(future.exception())
            continue
        reply = future.result()
        if "ok" in reply:
            step.published.append((channel, int(reply["ok"]["seq"])))
        else:
            step.errors += 1
            step.first_error = step.first_error or str(reply.get("error"))
    return step


async def wait_delivered(pool: Pool, expected: int, deadline: float) -> None:
    """Until the ledger holds `expected` unique deliveries, or the deadline (monotonic)."""
    if pool.ledger.unique() >= expected:
        return
    pool.want = expected
    pool.reached.clear()
    try:
        await asyncio.wait_for(pool.reached.wait(), max(0.0, deadline - time.monotonic()))
    except TimeoutError:
        pass
    finally:
        pool.want = 0


@contextlib.contextmanager
def without_gc_pauses() -> Iterator[None]:
    """The generator's own cyclic collector off for one measured window (a few seconds),
    collected right after. Its full passes held the generator's event loop 40 to 90 ms in the
    middle of fan-out steps (measured with `gc.callbacks`: tens of thousands of objects of
    cyclic garbage each time): latency that every target's figures carried, the reference's
    too, and that no server caused."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def fanout_step(pool: Pool, publishers: Sequence[tuple[LoadClient, str]], rate: float, seconds: float,
                      drain: float) -> dict[str, Any]:
    """One step of class fan-out at `rate` posts/s: deliveries, latency, loss, CPU."""
    usage = pool.target.usage
    recipients = pool.recipients()
    pool.ledger.reset()
    aux = pool.target.aux or Usage([])
    with without_gc_pauses():
        cpu0, own0, busy0, aux0 = usage.cpu_seconds(), own_cpu_seconds(), machine_busy_seconds(), aux.cpu_seconds()
        t0, t0_ns = time.monotonic(), time.time_ns()
        step = await paced_publish(publishers, rate, seconds, "post", drain)
        window = time.monotonic() - t0
        expected = sum(len(recipients.get(channel, ())) for channel, _ in step.published)
        await wait_delivered(pool, expected, time.monotonic() + drain)
        elapsed = max(window, (pool.last_recv_ns - t0_ns) / 1e9)
        cpu1, own1, busy1, aux1 = usage.cpu_seconds(), own_cpu_seconds(), machine_busy_seconds(), aux.cpu_seconds()
    others = max(0.0, (busy1 - busy0) - (cpu1 - cpu0) - (own1 - own0) - (aux1 - aux0))
    count = pool.ledger.count(step.published, recipients)
    lat = latency_summary(pool.ledger.latencies_ns)
    fanout_per_post = expected / len(step.published) if step.published else 0.0
    p99 = lat["p99_ms"]
    sustained = (p99 is not None and p99 < GOAL_P99_MS and count.lost == 0 and count.duplicates == 0
                 and step.errors == 0 and step.unacked == 0 and not step.throttled
                 and step.sent >= round(rate * seconds))
    return {
        "rate": rate, "seconds": round(window, 3), "sent": step.sent, "published": len(step.published),
        "offered_deliveries_per_s": round(rate * fanout_per_post, 1),
        "deliveries_per_s": round(count.delivered / elapsed, 1) if elapsed > 0 else 0.0,
        **lat, **count.to_json(), "errors": step.errors, "unacked": step.unacked, "throttled": step.throttled,
        "first_error": step.first_error,
        "server_cpu_pct": round((cpu1 - cpu0) / elapsed * 100, 1) if elapsed > 0 else None,
        "client_cpu_pct": round((own1 - own0) / elapsed * 100, 1) if elapsed > 0 else None,
        "others_cpu_pct": round(others / elapsed * 100, 1) if elapsed > 0 else None,
        "redis_cpu_pct": round((aux1 - aux0) / elapsed * 100, 1) if elapsed > 0 and pool.target.aux else None,
        "server_rss_mib": round(usage.rss_kib() / 1024, 1),
        "sustained": sustained,
        "server_figure": elapsed <= 0 or (own1 - own0) / elapsed * 100 <= GENERATOR_LIMIT_PCT,
    }


def _step_line(name: str, s: dict[str, Any]) -> str:
    return (f"{name} {s['rate']:>6g} posts/s: {s['deliveries_per_s']:>9,.0f} deliveries/s "
            f"p50 {s['p50_ms'] if s['p50_ms'] is not None else '-':>8} ms p99 "
            f"{s['p99_ms'] if s['p99_ms'] is not None else '-':>8} ms max {s['max_ms']} ms lost {s['lost']} "
            f"dup {s['duplicates']} err {s['errors']} server {s['server_cpu_pct']}% load {s['client_cpu_pct']}% "
            f"others {s['others_cpu_pct']}% {'ok' if s['sustained'] else 'NOT SUSTAINED'}"
            f"{'' if s.get('server_figure', True) else ' (load generator > 80 %: not a server figure)'}")


# -- scenarios -----------------------------------------------------------------------------


async def fanout(target: Target, connections: int, rates: Sequence[float], step_seconds: float,
                 drain: float, progress: Progress, stop_after_failures: int = 2,
                 attempts: int = 3) -> dict[str, Any]:
    """Class fan-out at stepped rates against one target (see `fanout_compare`)."""
    results = await fanout_compare([target], connections, rates, step_seconds, drain, progress,
                                   stop_after_failures, attempts)
    return results[target.name]


def _best_try(tries: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(tries, key=lambda t: (not t["sustained"], t["p99_ms"] if t["p99_ms"] is not None else 1e12))
    return {**best, "attempts": len(tries)}


async def fanout_compare(targets: Sequence[Target], connections: int, rates: Sequence[float], step_seconds: float,
                         drain: float, progress: Progress, stop_after_failures: int = 2,
                         attempts: int = 3) -> dict[str, dict[str, Any]]:
    """Class fan-out at stepped rates, the targets' steps interleaved (rate by rate, try by try),
    so that the noise of a shared machine falls alike on each; all their servers run at once,
    only one is loaded at a time. A step that is not sustained is tried again, up to `attempts`
    in all, and the best try is kept; a target stops after `stop_after_failures` failing rates
    in a row."""
    pools: dict[str, Pool] = {}
    publishers: dict[str, list[tuple[LoadClient, str]]] = {}
    connected: dict[str, dict[str, Any]] = {}
    try:
        for target in targets:
            users, classes = class_users(target.shape, connections)
            pool = pools[target.name] = Pool(target, users)
            say = _prefixed(progress, target.name, len(targets))
            connected[target.name] = await pool.connect(say)
            index = {user: i for i, user in enumerate(users)}
            publishers[target.name] = [(pool.clients[index[teacher]], channel) for teacher, channel in classes
                                       if index[teacher] in pool.live]
        for target in targets:  # warm-up (not reported): first feeds, caches, the store's first pages
            if rates:
                await fanout_step(pools[target.name], publishers[target.name], rates[0], 1.0, drain)
            target.phase("measure")
        steps: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
        failures = dict.fromkeys(steps, 0)
        for rate in rates:
            active = [t for t in targets if failures[t.name] < stop_after_failures]
            if not active:
                break
            tries: dict[str, list[dict[str, Any]]] = {t.name: [] for t in active}
            for attempt in range(max(1, attempts)):
                for target in active:
                    mine = tries[target.name]
                    if mine and (mine[-1]["sustained"] or mine[-1]["lost"] or mine[-1]["duplicates"]):
                        continue
                    mine.append(await fanout_step(pools[target.name], publishers[target.name], rate,
                                                  step_seconds, drain))
                    label = "fanout" if not attempt else "  again"
                    _prefixed(progress, target.name, len(targets))(_step_line(label, mine[-1]))
                    await asyncio.sleep(0.3)
            for target in active:
                chosen = _best_try(tries[target.name])
                steps[target.name].append(chosen)
                failures[target.name] = 0 if chosen["sustained"] else failures[target.name] + 1
        out: dict[str, dict[str, Any]] = {}
        for target in targets:
            # the best step that measured the server: sustained, and its generator at most 80 % busy
            best = best_server_step(steps[target.name])
            out[target.name] = {
                **connected[target.name], "channels": len(publishers[target.name]), "step_seconds": step_seconds,
                "interleaved_with": [t.name for t in targets if t is not target], "steps": steps[target.name],
                "best_sustained_deliveries_per_s": best["deliveries_per_s"] if best else 0.0,
                # the load that step offered (posts/s x recipients a post), all of it delivered
                # with p99 < 100 ms: what the goals compare (see load/cli.py `evaluate`)
                "best_sustained_offered_deliveries_per_s": best["offered_deliveries_per_s"] if best else 0.0,
                "best_sustained_publish_rate": best["rate"] if best else 0.0}
        return out
    finally:
        for target in targets:
            target.phase("done")
        for pool in pools.values():
            await pool.close()


def _prefixed(progress: Progress, name: str, count: int) -> Progress:
    if count == 1:
        return progress
    return lambda line: progress(f"{name}: {line}")


def _metrics_url(ws_url: str) -> str:
    base = ws_url.replace("ws://", "http://", 1).rsplit("/ws", 1)[0]
    return base + "/metrics"


def _fanout_sums(target: Target) -> list[tuple[float, int]] | None:
    """Each Liaison gateway's `liaison_fanout_latency_seconds` sum and count (from the message's
    timestamp, taken before it is stored, to the end of the local fan-out); None elsewhere."""
    if target.kind != "liaison":
        return None
    out: list[tuple[float, int]] = []
    for url in target.urls:
        total, count = 0.0, 0
        try:
            with urllib.request.urlopen(_metrics_url(url), timeout=2) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("liaison_fanout_latency_seconds_sum "):
                        total = float(line.split()[1])
                    elif line.startswith("liaison_fanout_latency_seconds_count "):
                        count = int(float(line.split()[1]))
        except (OSError, ValueError):
            return None
        out.append((total, count))
    return out


def _server_fanout_ms(before: list[tuple[float, int]] | None,
                      after: list[tuple[float, int]] | None) -> float | None:
    """The slowest gateway's mean fan-out time between two readings, in ms."""
    if not before or not after:
        return None
    means = [(t1 - t0) / (n1 - n0) for (t0, n0), (t1, n1) in zip(before, after, strict=True) if n1 > n0]
    return round(max(means) * 1000, 3) if means else None


async def broadcast(target: Target, connections: int, announcements: int, progress: Progress,
                    timeout: float = 10.0) -> dict[str, Any]:
    """Every connection in school 1; the director announces; time to the last delivery."""
    users = list(district.user_ids(1, target.shape.classes, target.shape.students))[:connections]
    pool = Pool(target, users)
    channel = school_channel(district.school_id(1))
    try:
        connected = await pool.connect(progress)
        director = pool.clients[0]
        recipients = pool.recipients()
        target.phase("measure")
        rounds: list[dict[str, Any]] = []
        all_latencies: list[int] = []
        lost = duplicates = 0
        for number in range(announcements):
            pool.ledger.reset()
            cpu0 = target.usage.cpu_seconds()
            sums0 = await asyncio.to_thread(_fanout_sums, target)
            try:
                ok = await director.call("publish", timeout=timeout, channel=channel, kind="announcement",
                                         data={"text": f"t={time.time_ns()}"})
            except ClientError as exc:
                rounds.append({"error": str(exc)})
                progress(f"broadcast {number + 1}: {exc}")
                continue
            wanted = len(recipients.get(channel, ()))
            await wait_delivered(pool, wanted, time.monotonic() + timeout)
            count = pool.ledger.count([(channel, int(ok["seq"]))], recipients)
            lat = latency_summary(pool.ledger.latencies_ns)
            lost += count.lost
            duplicates += count.duplicates
            all_latencies.extend(pool.ledger.latencies_ns)
            server_ms = _server_fanout_ms(sums0, await asyncio.to_thread(_fanout_sums, target))
            rounds.append({"recipients": wanted, "delivered": count.delivered, "last_ms": lat["max_ms"],
                           "p50_ms": lat["p50_ms"], "server_fanout_ms": server_ms,
                           "server_cpu_s": round(target.usage.cpu_seconds() - cpu0, 3)})
            progress(f"broadcast {number + 1}/{announcements}: {count.delivered}/{wanted} delivered, "
                     f"last after {lat['max_ms']} ms (p50 {lat['p50_ms']} ms), lost {count.lost}"
                     + (f"; server-side fan-out done after {server_ms} ms" if server_ms is not None else ""))
            await asyncio.sleep(0.3)
        lasts = [r["last_ms"] for r in rounds if r.get("last_ms") is not None]
        server = [r["server_fanout_ms"] for r in rounds if r.get("server_fanout_ms") is not None]
        pooled = latency_summary(all_latencies)
        return {**connected, "announcements": announcements, "rounds": rounds,
                "last_delivery_median_ms": round(median(lasts), 3) if lasts else None,
                "last_delivery_max_ms": max(lasts) if lasts else None,
                "server_fanout_median_ms": round(median(server), 3) if server else None,
                "p50_ms": pooled["p50_ms"], "p99_ms": pooled["p99_ms"], "lost": lost, "duplicates": duplicates}
    finally:
        target.phase("done")
        await pool.close()


async def storm(target: Target, clients: int, missed: int, progress: Progress,
                timeout: float = 60.0) -> dict[str, Any]:
    """Teachers post `missed` messages per class; then `clients` guardians connect at once with
    `since` and must recover them all; then a live post must reach every one of them."""
    guardians, classes = class_users(target.shape, clients, teachers=False)
    guardians = guardians[:clients]
    teacher_pool = Pool(target, [teacher for teacher, _ in classes])
    pool = Pool(target, guardians)
    try:
        await teacher_pool.connect(progress)
        publishers = [(teacher_pool.clients[i], channel) for i, (_, channel) in enumerate(classes)
                      if i in teacher_pool.live]
        progress(f"storm: posting {missed} messages in each of {len(publishers)} classes")
        firsts: dict[str, int] = {}
        lasts: dict[str, int] = {}
        for _ in range(missed):
            futures = [(channel, await client.send("publish", channel=channel, kind="post",
                                                   data={"text": "missed while offline"}))
                       for client, channel in publishers]
            for channel, future in futures:
                reply = await asyncio.wait_for(future, timeout)
                if "ok" not in reply:
                    raise RuntimeError(f"storm setup publish failed: {reply}")
                seq = int(reply["ok"]["seq"])
                firsts[channel] = min(firsts.get(channel, seq), seq)
                lasts[channel] = max(lasts.get(channel, 0), seq)
        since_all = {channel: seq - 1 for channel, seq in firsts.items()}
        sinces = [{c: since_all[c] for c in pool.channels_of[i] if c in since_all} for i in range(len(guardians))]
        params = [pool.connect_params(i, sinces[i]) for i in range(len(guardians))]
        done_at: list[float] = []
        incomplete: list[str] = []
        failed: list[str] = []
        gc.collect()
        cpu0 = target.usage.cpu_seconds()
        progress(f"storm: {len(guardians):,} clients connect at once, each recovering {missed} per class")
        target.phase("measure")
        started = time.monotonic()
        deadline = started + timeout

        async def one(index: int) -> None:
            client = pool.clients[index]
            try:
                await client.open(target.subprotocol, timeout)
                ok = await client.call("connect", timeout=max(0.1, deadline - time.monotonic()), **params[index])
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
                return
            pool.live.add(index)
            states = {s["channel"]: s for s in ok.get("channels", [])}
            for channel, since in sinces[index].items():
                state = states.get(channel)
                seqs = [m["seq"] for m in state.get("messages", [])] if state else []
                if (state is None or not state.get("complete", False)
                        or seqs != list(range(since + 1, lasts[channel] + 1))):
                    incomplete.append(client.user_id)
                    return
            done_at.append(time.monotonic() - started)

        await asyncio.gather(*(one(i) for i in range(len(guardians))))
        all_done = time.monotonic() - started
        server_cpu = target.usage.cpu_seconds() - cpu0
        progress(f"storm: {len(done_at):,}/{len(guardians):,} live and complete after {all_done:.2f} s "
                 f"(median {median(done_at) if done_at else float('nan'):.2f} s), "
                 f"{len(incomplete)} incomplete, {len(failed)} failed" + (f": {failed[0]}" if failed else ""))
        # the live probe: one more post per class must reach every recovered client
        gc.freeze()
        pool.ledger.reset()
        recipients = pool.recipients()
        probe = await paced_publish(publishers, rate=max(1.0, len(publishers) * 4.0), seconds=0.25, kind="post",
                                    drain=10.0)
        expected = sum(len(recipients.get(channel, ())) for channel, _ in probe.published)
        await wait_delivered(pool, expected, time.monotonic() + 10.0)
        count = pool.ledger.count(probe.published, recipients)
        lat = latency_summary(pool.ledger.latencies_ns)
        progress(f"storm: live probe {count.delivered}/{count.expected} delivered, max {lat['max_ms']} ms")
        all_ok = not failed and not incomplete and count.lost == 0
        return {"clients": len(guardians), "classes": len(publishers), "missed_per_channel": missed,
                "all_complete_s": round(all_done, 3) if all_ok else None,
                "last_complete_s": round(max(done_at), 3) if done_at else None,
                "median_complete_s": round(median(done_at), 3) if done_at else None,
                "p90_complete_s": round(percentile(done_at, 90), 3) if done_at else None,
                "incomplete": len(incomplete), "failed": len(failed),
                "first_failure": failed[0] if failed else None,
                "live_probe_lost": count.lost, "live_probe_duplicates": count.duplicates,
                "live_probe_max_ms": lat["max_ms"], "server_cpu_s": round(server_cpu, 3)}
    finally:
        target.phase("done")
        await pool.close()
        await teacher_pool.close()


def chat_pairs(shape: Shape, pairs: int) -> list[tuple[str, str, str]]:
    """(teacher, student, guardian) with one guardian each, one pair per class."""
    out: list[tuple[str, str, str]] = []
    for s in range(1, shape.schools + 1):
        for c in range(1, shape.classes + 1):
            if len(out) >= pairs:
                return out
            for n in range(1, shape.students + 1):
                family = district.household(s, c, n)
                if len(family) == 1:
                    out.append((district.teacher_id(s, c), district.student_id(s, c, n), family[0]))
                    break
    return out


async def chat(target: Target, pairs: int, rounds: int, progress: Progress,
               timeout: float = 5.0) -> dict[str, Any]:
    """Teacher-guardian pairs: the teacher posts, the guardian answers when it arrives, the teacher
    measures the round trip."""
    trio = chat_pairs(target.shape, pairs)
    users = [u for teacher, _, guardian in trio for u in (teacher, guardian)]
    extra: dict[int, list[str]] = {}
    if target.kind == "reference":
        for p in range(len(trio)):
            extra[2 * p] = extra[2 * p + 1] = [f"chat:pair-{p}"]
    waiting: dict[tuple[int, str], asyncio.Future[str]] = {}
    subscribed: dict[int, asyncio.Future[str]] = {}

    def on_other(client: LoadClient, push: dict[str, Any], _: int) -> None:
        kind = push.get("push")
        if kind == "subscribed":
            future = subscribed.get(client.index)
            if future is not None and not future.done():
                future.set_result(str(push["channel"]))
        elif kind == "message":
            message = push["message"]
            if message.get("from", {}).get("id") == client.user_id:
                return  # its own message, echoed
            future = waiting.pop((client.index, message["channel"]), None)
            if future is not None and not future.done():
                future.set_result(str(message.get("data", {}).get("text", "")))

    pool = Pool(target, users, extra_channels=extra, on_other=on_other)
    try:
        connected = await pool.connect(progress)
        loop = asyncio.get_running_loop()
        channels: list[str | None] = []
        for p, (_, student, _) in enumerate(trio):
            teacher, guardian = pool.clients[2 * p], pool.clients[2 * p + 1]
            if teacher.index not in pool.live or guardian.index not in pool.live:
                channels.append(None)
                continue
            if target.kind == "reference":
                channels.append(f"chat:pair-{p}")
                continue
            subscribed[guardian.index] = loop.create_future()
            try:
                opened = await teacher.call("open_chat", timeout=timeout, student=student)
                await asyncio.wait_for(subscribed[guardian.index], timeout)
                channels.append(str(opened["channel"]))
            except (ClientError, TimeoutError) as exc:
                progress(f"chat: open_chat for {student} failed: {exc}")
                channels.append(None)
        rtts: list[int] = []
        lost = 0

        async def converse(p: int, channel: str) -> None:
            nonlocal lost
            teacher, guardian = pool.clients[2 * p], pool.clients[2 * p + 1]
            for _ in range(rounds):
                sent = time.time_ns()
                got_by_guardian = waiting[(guardian.index, channel)] = loop.create_future()
                got_by_teacher = waiting[(teacher.index, channel)] = loop.create_future()
                try:
                    await teacher.send("publish", channel=channel, kind="chat", data={"text": f"t={sent}"})
                    await asyncio.wait_for(got_by_guardian, timeout)
                    await guardian.send("publish", channel=channel, kind="chat", data={"text": f"r={sent}"})
                    await asyncio.wait_for(got_by_teacher, timeout)
                except (ClientError, TimeoutError):
                    lost += 1
                    waiting.pop((guardian.index, channel), None)
                    waiting.pop((teacher.index, channel), None)
                    continue
                rtts.append(time.time_ns() - sent)

        started = time.monotonic()
        target.phase("measure")
        with without_gc_pauses():
            await asyncio.gather(*(converse(p, c) for p, c in enumerate(channels) if c is not None))
            seconds = time.monotonic() - started
        lat = latency_summary(rtts)
        progress(f"chat: {len(rtts)} round trips in {seconds:.1f} s, RTT p50 {lat['p50_ms']} ms "
                 f"p99 {lat['p99_ms']} ms, lost {lost}")
        return {**connected, "pairs": sum(1 for c in channels if c), "rounds": rounds, "round_trips": len(rtts),
                "rtt_p50_ms": lat["p50_ms"], "rtt_p99_ms": lat["p99_ms"], "rtt_max_ms": lat["max_ms"],
                "lost": lost, "seconds": round(seconds, 3)}
    finally:
        target.phase("done")
        await pool.close()


async def idle(target: Target, connections: int, progress: Progress, settle: float = 10.0) -> dict[str, Any]:
    """Server memory and CPU for `connections` idle, connected clients; over Redis, also Redis's
    CPU while they idle: what the gateways' periodic refreshes of presence and connection
    places cost it (`settle` spans two refresh periods of 5 s)."""
    shape = target.shape
    users = list(district.user_ids(shape.schools, shape.classes, shape.students))[:connections]
    pool = Pool(target, users)
    try:
        gc.collect()
        await asyncio.sleep(1.0)
        before = target.usage.rss_kib()
        cpu0 = target.usage.cpu_seconds()
        target.phase("measure")
        connected = await pool.connect(progress, timeout=300.0)
        aux = target.aux or Usage([])
        cpu1, aux1 = target.usage.cpu_seconds(), aux.cpu_seconds()
        await asyncio.sleep(settle)
        cpu2, aux2 = target.usage.cpu_seconds(), aux.cpu_seconds()
        after = target.usage.rss_kib()
        still_open = sum(1 for i in pool.live if pool.clients[i].open_now)
        count = connected["connected"] or 1
        result = {**connected, "still_open": still_open,
                  "connect_rate_per_s": round(connected["connected"] / connected["connect_seconds"], 1)
                  if connected["connect_seconds"] else None,
                  "rss_before_mib": round(before / 1024, 1), "rss_after_mib": round(after / 1024, 1),
                  "kib_per_connection": round((after - before) / count, 2),
                  "cpu_ms_per_connect": round((cpu1 - cpu0) * 1000 / count, 3),
                  "idle_cpu_pct": round((cpu2 - cpu1) / settle * 100, 1),
                  "idle_redis_cpu_pct": round((aux2 - aux1) / settle * 100, 2) if target.aux else None}
        progress(f"idle: {connected['connected']:,} connections, {result['kib_per_connection']} KiB each "
                 f"(RSS {result['rss_before_mib']} -> {result['rss_after_mib']} MiB), "
                 f"{result['cpu_ms_per_connect']} ms CPU per connect, {result['connect_rate_per_s']} connects/s")
        return result
    finally:
        target.phase("done")
        await pool.close()


async def soak(target: Target, connections: int, rate: float, seconds: float, progress: Progress,
               window: float = 5.0) -> dict[str, Any]:
    """A steady fan-out for `seconds` (in windows of `window` s), sampling server memory."""
    users, classes = class_users(target.shape, connections)
    pool = Pool(target, users)
    try:
        connected = await pool.connect(progress)
        index = {user: i for i, user in enumerate(users)}
        publishers = [(pool.clients[index[t]], ch) for t, ch in classes if index[t] in pool.live]
        started = time.monotonic()
        target.phase("measure")
        samples = [{"t_s": 0.0, "rss_mib": round(target.usage.rss_kib() / 1024, 1)}]
        latencies: list[int] = []
        lost = duplicates = delivered = 0
        windows = max(1, round(seconds / window))
        for _ in range(windows):
            step = await fanout_step(pool, publishers, rate, window, drain=5.0)
            latencies.extend(pool.ledger.latencies_ns)
            lost += step["lost"]
            duplicates += step["duplicates"]
            delivered += step["delivered"]
            samples.append({"t_s": round(time.monotonic() - started, 1), "rss_mib": step["server_rss_mib"],
                            "cpu_pct": step["server_cpu_pct"], "p99_ms": step["p99_ms"]})
            progress(f"soak t={samples[-1]['t_s']:>6}s RSS {step['server_rss_mib']} MiB, "
                     f"p99 {step['p99_ms']} ms, lost {step['lost']}, server {step['server_cpu_pct']}%")
        lat = latency_summary(latencies)
        rss = [s["rss_mib"] for s in samples]
        return {**connected, "rate": rate, "seconds": round(time.monotonic() - started, 1), "samples": samples,
                "rss_start_mib": rss[0], "rss_end_mib": rss[-1], "rss_max_mib": max(rss), "delivered": delivered,
                "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"], "lost": lost, "duplicates": duplicates}
    finally:
        target.phase("done")
        await pool.close()


SCENARIOS = ("idle", "fanout", "broadcast", "storm", "chat", "soak")


def parse_rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def describe_rates(rates: Iterable[float]) -> str:
    return ",".join(f"{r:g}" for r in rates)
