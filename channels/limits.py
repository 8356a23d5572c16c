"""Abuse limits that hold per user across gateway processes: the `Limiter` protocol, its
in-process adapter, and `UserLimits`, the named limits the gateway and the HTTP API apply.

A `Limiter` keeps three kinds of state, each under a key the caller names:

- rates: a generic cell rate algorithm (GCRA, a token bucket kept as one number, the
  "theoretical arrival time"): `burst` hits at once, then `per_second`;
- holdings: who holds one of at most `limit` places (a user's open connections), each
  holding with an expiry that its holder refreshes, so the places of a process that
  died come free by themselves;
- blocks: a key refused until a time (a user closed with 4429).

`MemoryLimiter` is for the embedded default (one process); `channels.redis_limits`
shares the same state between processes through Redis. Both take an injected clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from school.errors import RateLimited

MICROS = 1_000_000
SWEEP_EVERY = 10.0  # seconds between two sweeps of expired in-process state


@dataclass(frozen=True, slots=True)
class Rate:
    """`burst` hits at once, refilled at `per_second`."""

    per_second: float
    burst: int

    @property
    def interval_us(self) -> int:
        return max(1, round(MICROS / self.per_second))


@dataclass(frozen=True, slots=True)
class Verdict:
    """`allowed`, or refused with `retry_after` seconds before the next try can pass."""

    allowed: bool
    retry_after: float = 0.0


ALLOWED = Verdict(True)


class Limiter(Protocol):
    """Shared limit state. Contract (tests/contract/test_limits.py runs it on every adapter):

    - `hit(key, rate)`: the first `rate.burst` hits of a fresh key pass; then one every
      1/`per_second`. A refused hit is not counted, and says in `retry_after` when the next
      would pass. Keys are independent.
    - `acquire(key, holder, limit, ttl)`: allowed when `holder` already holds a place of
      `key` or fewer than `limit` holders hold one; the holding expires `ttl` seconds later
      unless `refresh`ed. Refused: `retry_after` is when the first holding would expire.
    - `release(key, holder)` frees a place at once (nothing when not held).
    - `refresh(holdings, ttl)`: for `{key: holders}`, each holding expires `ttl` from now
      (re-made if it had gone, e.g. after a restart of the backend).
    - `charge(key, rate, cost)`: records `cost` hits that already happened, whether or not
      they fit, and says when the next hit would pass (`retry_after`, 0.0: now). A key at most
      one burst of hits behind is refused no longer than a burst's refill.
    - `block(key, seconds)`; `blocked(key)` is the seconds left, 0.0 once it has passed.
    - `admit(block_key, key, holder, limit, ttl)`: `blocked(block_key)` and `acquire(key, holder,
      limit, ttl)` together, as if side by side (the place is taken even while blocked: the caller
      gives it back); a shared backend answers every admit of the moment in one round trip.
    - Backend failures do not raise: an adapter that cannot reach its backend allows (fails
      open) and logs a warning; limits must never take the service down.
    """

    async def hit(self, key: str, rate: Rate) -> Verdict: ...

    async def charge(self, key: str, rate: Rate, cost: int) -> Verdict: ...

    async def charge_many(self, charges: Sequence[tuple[str, Rate, int]]) -> list[Verdict]:
        """`charge` for each `(key, rate, cost)`, in one round trip where the backend allows."""
        ...

    async def acquire(self, key: str, holder: str, limit: int, ttl: float) -> Verdict: ...

    async def release(self, key: str, holder: str) -> None: ...

    async def refresh(self, holdings: Mapping[str, Collection[str]], ttl: float) -> None: ...

    async def block(self, key: str, seconds: float) -> None: ...

    async def blocked(self, key: str) -> float: ...

    async def admit(self, block_key: str, key: str, holder: str, limit: int,
                    ttl: float) -> tuple[float, Verdict]: ...

    async def close(self) -> None: ...


def charged(tat_us: int | None, now_us: int, rate: Rate, cost: int) -> tuple[int, float]:
    """`cost` hits that happened at `now_us`: the new theoretical arrival time (at most two
    bursts ahead, so that a flood is paid for but does not lock a user out for minutes) and
    the seconds until the next hit would pass."""
    interval = rate.interval_us
    tat = min(max(tat_us or now_us, now_us) + interval * cost, now_us + 2 * interval * rate.burst)
    allow_at = tat - interval * (rate.burst - 1)
    return tat, max(0.0, (allow_at - now_us) / MICROS)


def gcra(tat_us: int | None, now_us: int, rate: Rate) -> tuple[int | None, float]:
    """One hit at `now_us` on a key whose theoretical arrival time is `tat_us`: the new one
    (None when refused) and the seconds to wait (0.0 when allowed)."""
    interval = rate.interval_us
    tat = max(tat_us or now_us, now_us) + interval
    allow_at = tat - interval * rate.burst
    if allow_at > now_us:
        return None, (allow_at - now_us) / MICROS
    return tat, 0.0


class MemoryLimiter:
    """The in-process `Limiter`: exact for one gateway process. Expired entries are swept
    every `SWEEP_EVERY` seconds, so its memory follows the keys in use, not all keys ever seen."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rates: dict[str, int] = {}
        self._holdings: dict[str, dict[str, int]] = {}
        self._blocks: dict[str, int] = {}
        self._next_sweep = 0

    def _now(self) -> int:
        now = round(self._clock() * MICROS)
        if now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + round(SWEEP_EVERY * MICROS)
        return now

    def _sweep(self, now: int) -> None:
        self._rates = {k: tat for k, tat in self._rates.items() if tat > now}
        self._blocks = {k: until for k, until in self._blocks.items() if until > now}
        for key in list(self._holdings):
            self._live(key, now)

    def _live(self, key: str, now: int) -> dict[str, int]:
        held = {h: expiry for h, expiry in self._holdings.get(key, {}).items() if expiry > now}
        if held:
            self._holdings[key] = held
        else:
            self._holdings.pop(key, None)
        return held

    async def hit(self, key: str, rate: Rate) -> Verdict:
        now = self._now()
        tat, wait = gcra(self._rates.get(key), now, rate)
        if tat is None:
            return Verdict(False, wait)
        self._rates[key] = tat
        return ALLOWED

    async def charge(self, key: str, rate: Rate, cost: int) -> Verdict:
        tat, wait = charged(self._rates.get(key), self._now(), rate, cost)
        self._rates[key] = tat
        return Verdict(wait == 0.0, wait)

    async def charge_many(self, charges: Sequence[tuple[str, Rate, int]]) -> list[Verdict]:
        return [await self.charge(key, rate, cost) for key, rate, cost in charges]

    async def acquire(self, key: str, holder: str, limit: int, ttl: float) -> Verdict:
        now = self._now()
        held = self._live(key, now)
        if holder not in held and len(held) >= limit:
            return Verdict(False, (min(held.values()) - now) / MICROS)
        self._holdings.setdefault(key, {})[holder] = now + round(ttl * MICROS)
        return ALLOWED

    async def release(self, key: str, holder: str) -> None:
        held = self._holdings.get(key)
        if held is not None:
            held.pop(holder, None)
            if not held:
                del self._holdings[key]

    async def refresh(self, holdings: Mapping[str, Collection[str]], ttl: float) -> None:
        expiry = self._now() + round(ttl * MICROS)
        for key, holders in holdings.items():
            if holders:
                self._holdings.setdefault(key, {}).update(dict.fromkeys(holders, expiry))

    async def block(self, key: str, seconds: float) -> None:
        self._blocks[key] = self._now() + round(seconds * MICROS)

    async def blocked(self, key: str) -> float:
        now = self._now()
        return max(0.0, (self._blocks.get(key, now) - now) / MICROS)

    async def admit(self, block_key: str, key: str, holder: str, limit: int,
                    ttl: float) -> tuple[float, Verdict]:
        return await self.blocked(block_key), await self.acquire(key, holder, limit, ttl)

    async def close(self) -> None:
        return None

    def size(self) -> int:
        """Entries kept (for the test that memory does not grow with dead keys)."""
        return len(self._rates) + len(self._blocks) + sum(len(h) for h in self._holdings.values())


class LocalFirst:
    """A `Limiter` that answers rate hits from this process alone, and shares them in batches.

    Asking Redis on every command of every user put a round trip before each command (chat
    round trips over Redis doubled). Here a hit is checked against an in-process bucket
    (exact for this process, no wait) and against what the shared backend last said about the
    key; every `flush` seconds the hits of each key are `charge`d to the backend in one go,
    and a key the backend finds over its rate (its user is busy on other gateways too) is
    refused here until the backend's `retry_after`. Across N gateways a user can therefore
    pass at most N x `flush` seconds' worth of their rate beyond it. Holdings and blocks are
    rare (a connect) and go to the backend directly."""

    def __init__(self, shared: Limiter, flush: float = 0.05, clock: Callable[[], float] = time.time) -> None:
        self.shared = shared
        self.flush = flush
        self._clock = clock
        self._local = MemoryLimiter(clock)
        self._pending: dict[str, tuple[Rate, int]] = {}
        self._refused_until: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    async def hit(self, key: str, rate: Rate) -> Verdict:
        now = self._clock()
        until = self._refused_until.get(key)
        if until is not None:
            if until > now:
                return Verdict(False, until - now)
            del self._refused_until[key]
        verdict = await self._local.hit(key, rate)
        if verdict.allowed:
            _, cost = self._pending.get(key, (rate, 0))
            self._pending[key] = (rate, cost + 1)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._flush_later())
        return verdict

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.flush)
        await self.flush_now()

    async def flush_now(self) -> None:
        """Charge the backend with the hits counted since the last flush."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        keys = list(pending)
        verdicts = await self.shared.charge_many([(k, *pending[k]) for k in keys])
        now = self._clock()
        for key, verdict in zip(keys, verdicts, strict=True):
            if not verdict.allowed:
                self._refused_until[key] = now + verdict.retry_after
        if len(self._refused_until) > 10_000:
            self._refused_until = {k: t for k, t in self._refused_until.items() if t > now}

    async def charge(self, key: str, rate: Rate, cost: int) -> Verdict:
        return await self.shared.charge(key, rate, cost)

    async def charge_many(self, charges: Sequence[tuple[str, Rate, int]]) -> list[Verdict]:
        return await self.shared.charge_many(charges)

    async def acquire(self, key: str, holder: str, limit: int, ttl: float) -> Verdict:
        return await self.shared.acquire(key, holder, limit, ttl)

    async def release(self, key: str, holder: str) -> None:
        await self.shared.release(key, holder)

    async def refresh(self, holdings: Mapping[str, Collection[str]], ttl: float) -> None:
        await self.shared.refresh(holdings, ttl)

    async def block(self, key: str, seconds: float) -> None:
        await self.shared.block(key, seconds)

    async def blocked(self, key: str) -> float:
        return await self.shared.blocked(key)

    async def admit(self, block_key: str, key: str, holder: str, limit: int,
                    ttl: float) -> tuple[float, Verdict]:
        return await self.shared.admit(block_key, key, holder, limit, ttl)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush_now()
        await self.shared.close()


@dataclass(frozen=True, slots=True)
class UserLimits:
    """The limits of one deployment, named, over a `Limiter` (keys: `conns:`, `cmd:`, `pub:`,
    `block:`, `http:`). Refusals raise `RateLimited` with `retry_after`; `connect` refusals
    are fatal (the transport closes with 4429)."""

    limiter: Limiter
    connections: int = 10
    commands: Rate = Rate(100.0, 200)
    publishes: Rate = Rate(10.0, 30)
    http: Rate = Rate(20.0, 60)
    api_key: Rate = Rate(100.0, 300)
    block_seconds: float = 60.0
    hold_ttl: float = 20.0
    exact: Limiter | None = None  # for HTTP requests (each a round trip anyway); None: `limiter`

    async def admit(self, user: str, holder: str) -> None:
        """At `connect`: refused while the user is blocked, or over their connections. The block
        and the place are asked together (`Limiter.admit`: one round trip to a shared backend for
        all the connects of the moment); a place taken by a connect that is refused is given
        back at once."""
        verdict = await self.command(user)  # a connect is a command of its user, and a costly one
        if not verdict.allowed:
            raise RateLimited(f"more than {self.commands.per_second:g} commands per second for one user",
                              verdict.retry_after, fatal=True)
        left, verdict = await self.limiter.admit("block:" + user, "conns:" + user, holder,
                                                 self.connections, self.hold_ttl)
        if left > 0:
            if verdict.allowed:
                await self.limiter.release("conns:" + user, holder)
            raise RateLimited("too many commands earlier: wait before connecting again", left, fatal=True)
        if not verdict.allowed:
            raise RateLimited(f"at most {self.connections} connections per user: close one first",
                              verdict.retry_after, fatal=True)

    async def release(self, user: str, holder: str) -> None:
        await self.limiter.release("conns:" + user, holder)

    async def refresh(self, holdings: Mapping[str, Collection[str]]) -> None:
        """Keep this process's connections counted: `{user: connection ids}`."""
        await self.limiter.refresh({"conns:" + u: h for u, h in holdings.items()}, self.hold_ttl)

    async def command(self, user: str) -> Verdict:
        return await self.limiter.hit("cmd:" + user, self.commands)

    async def publish(self, user: str) -> None:
        verdict = await self.limiter.hit("pub:" + user, self.publishes)
        if not verdict.allowed:
            raise RateLimited(f"more than {self.publishes.per_second:g} messages per second",
                              verdict.retry_after)

    async def block(self, user: str) -> None:
        await self.limiter.block("block:" + user, self.block_seconds)

    async def request(self, subject: str, *, api_key: bool = False) -> None:
        """An HTTP request by `subject` (the API key, a user, or a client address)."""
        rate = self.api_key if api_key else self.http
        verdict = await (self.exact or self.limiter).hit("http:" + subject, rate)
        if not verdict.allowed:
            raise RateLimited(f"more than {rate.per_second:g} requests per second", verdict.retry_after)
