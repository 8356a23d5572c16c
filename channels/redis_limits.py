"""The `Limiter` in Redis, shared by every gateway process of a deployment.

Each operation is one Lua script on one key (so it also runs on a Redis Cluster), under
`<prefix>limit:`:

- `limit:<key>` (a string): a rate's theoretical arrival time in microseconds (GCRA, the
  same arithmetic as `channels.limits.gcra`), expiring when the bucket is full again;
- `limit:<key>` (a sorted set): holders scored by the microsecond their holding expires;
  expired members are dropped before counting, so a gateway that died stops counting
  `ttl` seconds after its last refresh;
- `limit:<key>` (a string with an expiry): a block, its value the time it ends.

The time is the caller's clock (injected), so all gateways must keep their clocks in sync
(NTP): a second of skew moves a limit by a second. When Redis cannot be reached, every
call allows (fails open) and one warning is logged per outage; Redis is tried again after
`retry_period` seconds, so commands are not held up by a dead Redis.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from channels.limits import ALLOWED, MICROS, Rate, Verdict
from channels.linger import Linger

log = structlog.get_logger("liaison.limits")

T = TypeVar("T")
REFRESH_CHUNK = 500
# Under a storm, the next call waits this long for more connects (`Linger`: ~4 connects a call
# on uvloop without it, ~530 calls for 2,025 connects against ~100 on the plain loop)
ADMIT_LINGER = 0.005
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

# KEYS[1]; ARGV: now_us, interval_us, burst -> 0 when allowed, else microseconds to wait
HIT = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
tat = tat + interval
local allow_at = tat - interval * tonumber(ARGV[3])
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""

# KEYS: one or more keys (a cluster's in one slot each: one key a call); ARGV: now_us, then for
# each key interval_us, burst, cost -> for each key the microseconds until its next hit passes
# (0: now); records `cost` hits that already happened (`channels.limits.charged`)
CHARGE = """
local now = tonumber(ARGV[1])
local waits = {}
for i = 1, #KEYS do
  local interval, burst = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or ARGV[1])
  if tat < now then tat = now end
  tat = math.min(tat + interval * tonumber(ARGV[3 * i + 1]), now + 2 * interval * burst)
  redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
  local allow_at = tat - interval * (burst - 1)
  if allow_at > now then waits[i] = allow_at - now else waits[i] = 0 end
end
return waits
"""

# Lua functions shared by the scripts below. `now` is ARGV's string (a Lua number would be
# formatted with 14 digits when handed to Redis), the other arguments too.
# acquire: 0 when the holder holds a place (now or already), else microseconds until one frees
# blocked: microseconds left of the block, 0 when there is none
_ACQUIRE_FN = """
local function acquire(key, now, expiry, holder, limit, ttl_ms)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, holder) and redis.call('ZCARD', key) >= tonumber(limit) then
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(first[2]) - tonumber(now))
  end
  redis.call('ZADD', key, expiry, holder)
  redis.call('PEXPIRE', key, ttl_ms)
  return 0
end
"""
_BLOCKED_FN = """
local function blocked(key, now)
  local left = tonumber(redis.call('GET', key) or '0') - tonumber(now)
  if left > 0 then return left end
  return 0
end
"""

# KEYS[1]; ARGV: now_us, expiry_us, holder, limit, ttl_ms -> acquire's answer
ACQUIRE = _ACQUIRE_FN + "return acquire(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"

# KEYS[1]; ARGV: now_us -> blocked's answer
BLOCKED = _BLOCKED_FN + "return blocked(KEYS[1], ARGV[1])\n"

# KEYS: (block key, holdings key) of each connect; ARGV: now_us, then for each connect expiry_us,
# holder, limit, ttl_ms -> for each connect blocked's answer, then acquire's: a batch of
# connects in one call (on one Redis server; a cluster's two keys are in two slots)
ADMIT = _ACQUIRE_FN + _BLOCKED_FN + """
local out = {}
for i = 1, #KEYS / 2 do
  local a = 4 * i - 2
  out[2 * i - 1] = blocked(KEYS[2 * i - 1], ARGV[1])
  out[2 * i] = acquire(KEYS[2 * i], ARGV[1], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
end
return out
"""

# KEYS: one or more keys (a cluster's: one key a call); ARGV: now_us, expiry_us, ttl_ms, then for
# each key the count of its holders and the holders -> a 0 for each key; the holders' holdings
# expire at expiry_us (made again if they had gone), expired ones are dropped
REFRESH = """
local at = 4
local done = {}
for k = 1, #KEYS do
  done[k] = 0
  local n = tonumber(ARGV[at])
  redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', ARGV[1])
  for i = at + 1, at + n do
    redis.call('ZADD', KEYS[k], ARGV[2], ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[k], ARGV[3])
  at = at + n + 1
end
return done
"""

def limits_client(url: str, timeout: float) -> Redis | RedisCluster:
    """A client without silent retries and with short timeouts: a limit check that cannot
    reach Redis must fail fast (and open)."""
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
                               "decode_responses": True}
    scheme, rest = url.split("://", 1)
    if scheme in CLUSTER_SCHEMES:
        return RedisCluster.from_url(f"{CLUSTER_SCHEMES[scheme]}://{rest}", **options)
    return Redis.from_url(url, retry=Retry(NoBackoff(), 0), client_name="liaison-limits", **options)


class RedisLimiter:
    def __init__(self, client: Redis | RedisCluster, prefix: str = "liaison:",
                 clock: Callable[[], float] = time.time, timeout: float = 0.5,
                 retry_period: float = 2.0, admit_linger: float = ADMIT_LINGER) -> None:
        self._client = client
        self._admit_pace = Linger(admit_linger, clock)
        self._prefix = prefix + "limit:"
        self._clock = clock
        self._timeout = timeout
        self._retry_period = retry_period
        self._down_until: float | None = None  # set while Redis is unreachable
        self._hit = client.register_script(HIT)
        self._charge = client.register_script(CHARGE)
        self._acquire = client.register_script(ACQUIRE)
        self._blocked = client.register_script(BLOCKED)
        self._refresh = client.register_script(REFRESH)
        self._admit = client.register_script(ADMIT)
        self._admits: list[_Admit] = []
        self.admit_trips = 0  # pipelines sent by `admit` (for tests and figures)
        self._admitting: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, prefix: str = "liaison:", **options: Any) -> RedisLimiter:
        return cls(limits_client(url, options.pop("timeout", 0.5)), prefix, **options)

    def _now_us(self) -> int:
        return round(self._clock() * MICROS)

    async def _guard(self, call: Callable[[], Awaitable[T]], fallback: T, what: str) -> T:
        """Run `call` against Redis; on failure (or while Redis is known to be down) the
        `fallback`, which allows."""
        if self._down_until is not None and time.monotonic() < self._down_until:
            return fallback
        try:
            async with asyncio.timeout(self._timeout):
                result = await call()
        except (RedisError, OSError, TimeoutError) as exc:
            if self._down_until is None:
                log.warning("limiter_unreachable", operation=what, error=type(exc).__name__,
                            effect="limits not enforced (fail open) until Redis answers")
            self._down_until = time.monotonic() + self._retry_period
            return fallback
        if self._down_until is not None:
            log.info("limiter_reachable")
            self._down_until = None
        return result

    async def hit(self, key: str, rate: Rate) -> Verdict:
        async def call() -> Verdict:
            wait = await self._hit(keys=[self._prefix + key],
                                   args=[self._now_us(), rate.interval_us, rate.burst])
            return Verdict(False, int(wait) / MICROS) if int(wait) > 0 else ALLOWED

        return await self._guard(call, ALLOWED, "hit")

    async def charge(self, key: str, rate: Rate, cost: int) -> Verdict:
        return (await self.charge_many([(key, rate, cost)]))[0]

    async def charge_many(self, charges: Sequence[tuple[str, Rate, int]]) -> list[Verdict]:
        """Every charge in one round trip however many users were active (`_per_key`)."""
        if not charges:
            return []

        async def call() -> list[Verdict]:
            each = [(key, [rate.interval_us, rate.burst, cost]) for key, rate, cost in charges]
            waits = await self._per_key(self._charge, CHARGE, [self._now_us()], each)
            return [Verdict(False, int(w) / MICROS) if int(w) > 0 else ALLOWED for w in waits]

        return await self._guard(call, [ALLOWED] * len(charges), "charge")

    async def _per_key(self, script: AsyncScript, text: str, common: list[int],
                       each: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """Run a script that takes one key or many (it answers one value a key) for each
        (key, its arguments after `common`). On one Redis server, one call for them all: one
        command, not one per user (a period's refresh of every connected user as thousands of
        commands held every delivery of the moment, issue 16). On a cluster, whose keys are in
        many slots, a pipeline of one call a key: EVAL, not EVALSHA, as a cluster's pipeline
        cannot reload a script it lacks."""
        if isinstance(self._client, RedisCluster):
            pipe = self._client.pipeline(transaction=False)
            for key, args in each:
                pipe.eval(text, 1, self._prefix + key, *common, *args)
            return [reply[0] for reply in await pipe.execute()]
        flat: list[Any] = [*common]
        for _, args in each:
            flat += args
        return list(await script(keys=[self._prefix + key for key, _ in each], args=flat))

    async def acquire(self, key: str, holder: str, limit: int, ttl: float) -> Verdict:
        async def call() -> Verdict:
            now = self._now_us()
            wait = await self._acquire(keys=[self._prefix + key], args=[
                now, now + round(ttl * MICROS), holder, limit, math.ceil(ttl * 1000)])
            return Verdict(False, int(wait) / MICROS) if int(wait) > 0 else ALLOWED

        return await self._guard(call, ALLOWED, "acquire")

    async def release(self, key: str, holder: str) -> None:
        async def call() -> None:
            await self._client.zrem(self._prefix + key, holder)

        await self._guard(call, None, "release")

    async def refresh(self, holdings: Mapping[str, Collection[str]], ttl: float) -> None:
        keys = [key for key, holders in holdings.items() if holders]
        now = self._now_us()
        expiry = now + round(ttl * MICROS)
        ttl_ms = math.ceil(ttl * 1000)
        # REFRESH_CHUNK keys a call (`_per_key`), each with its own deadline: one call for
        # 10,000 users would hold the event loop (and Redis) for a noticeable moment
        for start in range(0, len(keys), REFRESH_CHUNK):
            chunk = [(key, [len(holdings[key]), *holdings[key]]) for key in keys[start:start + REFRESH_CHUNK]]

            async def call(chunk: list[tuple[str, list[Any]]] = chunk) -> None:
                await self._per_key(self._refresh, REFRESH, [now, expiry, ttl_ms], chunk)

            await self._guard(call, None, "refresh")

    async def block(self, key: str, seconds: float) -> None:
        async def call() -> None:
            until = self._now_us() + round(seconds * MICROS)
            await self._client.set(self._prefix + key, str(until), px=max(1, math.ceil(seconds * 1000)))

        await self._guard(call, None, "block")

    async def blocked(self, key: str) -> float:
        async def call() -> float:
            left = await self._blocked(keys=[self._prefix + key], args=[self._now_us()])
            return int(left) / MICROS

        return await self._guard(call, 0.0, "blocked")

    async def admit(self, block_key: str, key: str, holder: str, limit: int,
                    ttl: float) -> tuple[float, Verdict]:
        """The block and the place of a connect. At 8:30 thousands of connects arrive together:
        they queue, and one pipeline asks Redis for all that queued while the previous one ran
        (a connect alone waits for nothing more than its own round trip)."""
        if self._down_until is not None and time.monotonic() < self._down_until:
            return 0.0, ALLOWED
        loop = asyncio.get_running_loop()
        ask = _Admit(block_key, key, holder, limit, ttl, loop.create_future())
        self._admits.append(ask)
        if self._admitting is None or self._admitting.done():
            self._admitting = loop.create_task(self._admit_batches())
        return await ask.answer

    async def _admit_batches(self) -> None:
        try:
            while self._admits:
                await self._admit_pace.pause()  # connects keep coming (a storm): a few turns' worth
                batch = [a for a in self._admits[:ADMIT_BATCH] if not a.answer.done()]
                del self._admits[:ADMIT_BATCH]
                if batch:
                    self.admit_trips += 1
                    answers = await self._guard(functools.partial(self._admit_call, batch),
                                                [(0.0, ALLOWED)] * len(batch), "admit")
                    for ask, answer in zip(batch, answers, strict=True):
                        if not ask.answer.done():
                            ask.answer.set_result(answer)
        except BaseException as exc:  # cancelled at close, or a bug: no caller waits forever
            for ask in self._admits:
                if not ask.answer.done():
                    ask.answer.set_exception(exc if isinstance(exc, Exception) else RedisError("closed"))
            raise

    async def _admit_call(self, batch: list[_Admit]) -> list[tuple[float, Verdict]]:
        now = self._now_us()
        if isinstance(self._client, RedisCluster):  # a connect's two keys are in two slots
            pipe = self._client.pipeline(transaction=False)
            for ask in batch:
                # EVAL, not EVALSHA: a cluster's pipeline cannot reload a script it lacks
                pipe.eval(BLOCKED, 1, self._prefix + ask.block_key, now)
                pipe.eval(ACQUIRE, 1, self._prefix + ask.key, now, now + round(ask.ttl * MICROS), ask.holder,
                          ask.limit, math.ceil(ask.ttl * 1000))
            replies = await pipe.execute()
        else:  # one script call for the batch, not two EVALs a connect (each with the script's
            # text, hashed by Redis each time: ~600 bytes and two script runs a connect)
            keys: list[str] = []
            args: list[int | str] = [now]
            for ask in batch:
                keys += [self._prefix + ask.block_key, self._prefix + ask.key]
                args += [now + round(ask.ttl * MICROS), ask.holder, ask.limit, math.ceil(ask.ttl * 1000)]
            replies = await self._admit(keys=keys, args=args)
        answers: list[tuple[float, Verdict]] = []
        for index in range(len(batch)):
            left, wait = int(replies[2 * index]), int(replies[2 * index + 1])
            answers.append((left / MICROS, Verdict(False, wait / MICROS) if wait > 0 else ALLOWED))
        return answers

    async def close(self) -> None:
        if self._admitting is not None:
            self._admitting.cancel()
        await self._client.aclose()


ADMIT_BATCH = 256  # connects per call


@dataclass(eq=False, slots=True)
class _Admit:
    block_key: str
    key: str
    holder: str
    limit: int
    ttl: float
    answer: asyncio.Future[tuple[float, Verdict]]
