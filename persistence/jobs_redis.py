"""`RedisJobQueue`: the `JobQueue` on Redis Streams with a consumer group (`LIAISON_REDIS_URL`).

Chosen over arq/taskiq/saq: the queue needs exactly enqueue-once, claim, lease expiry and
delayed jobs; Redis Streams give claim (XREADGROUP), acknowledgement (XACK) and taking over a
dead worker's jobs (XAUTOCLAIM after `lease` seconds idle) natively, in ~150 lines, with the
same contract suite as the SQLite and MongoDB tables. A job library would bring its own
worker process model, serialisation and retry policy to reconcile with ours.

Keys (one hash slot, `{jobs}`, so the Lua steps work on a Redis Cluster too):
- `<prefix>{jobs}:stream` — due jobs; group `workers`; each entry's field `job` is the JSON
  `{id, kind, payload, attempts}`.
- `<prefix>{jobs}:delayed` — a sorted set of the same JSON scored by `not_before`; `claim`
  moves the due ones into the stream in one Lua step (each moved once, whoever moves it).
- `<prefix>{jobs}:seen:<id>` — the id's record, set with NX in the same Lua step as the job
  itself (so a crash cannot leave a record without its job), kept `DONE_RETENTION` seconds.

Ending a job (complete/retry/fail) is a Lua step that first checks, with XPENDING, that the
entry is still owned by the consumer that claimed it: a worker whose lease ran out and whose
job was taken over cannot end it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError, ResponseError

from persistence.jobs import DONE_RETENTION, Job, NewJob
from persistence.store import StoreUnavailable

GROUP = "workers"

# KEYS = stream, delayed, then each job's seen key; ARGV = retention, then each job's entry and
# not_before. A job whose seen key is new is recorded with it in the same step (so a crash
# cannot leave a record without its job): into the stream, or the delayed set until not_before
_ENQUEUE = """
local added = 0
for i = 3, #KEYS do
  local entry, not_before = ARGV[2 * (i - 2)], ARGV[2 * (i - 2) + 1]
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    if tonumber(not_before) > 0 then redis.call('ZADD', KEYS[2], not_before, entry)
    else redis.call('XADD', KEYS[1], '*', 'job', entry) end
    added = added + 1
  end
end
return added
"""
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('XADD', KEYS[1], '*', 'job', member)
  redis.call('ZREM', KEYS[2], member)
end
return #due
"""
_END = """
local owned = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #owned == 0 or owned[1][2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5]) end
return 1
"""
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}


def redis_client(url: str) -> Redis | RedisCluster:
    scheme, rest = url.split("://", 1)
    if scheme in _CLUSTER_SCHEMES:
        return RedisCluster.from_url(f"{_CLUSTER_SCHEMES[scheme]}://{rest}", socket_timeout=3.0,
                                     decode_responses=True)
    return Redis.from_url(url, socket_timeout=3.0, decode_responses=True)


class RedisJobQueue:
    def __init__(self, client: Redis | RedisCluster, prefix: str = "liaison:") -> None:
        self._client = client
        base = prefix + "{jobs}:"
        self._stream = base + "stream"
        self._delayed = base + "delayed"
        self._seen = base + "seen:"
        self._enqueue = client.register_script(_ENQUEUE)
        self._move_due = client.register_script(_MOVE_DUE)
        self._end_script = client.register_script(_END)

    @classmethod
    def from_url(cls, url: str, prefix: str = "liaison:") -> RedisJobQueue:
        return cls(redis_client(url), prefix)

    async def open(self) -> None:
        try:
            await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreUnavailable(f"job queue: {exc}") from exc
        except RedisError as exc:
            raise StoreUnavailable(f"job queue: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()

    async def enqueue(self, job_id: str, kind: str, payload: dict[str, Any], not_before: float = 0.0) -> bool:
        return await self.enqueue_many([NewJob(job_id, kind, payload, not_before)]) == 1

    async def enqueue_many(self, jobs: list[NewJob]) -> int:
        """One script call (one command, one round trip) per 500 jobs: every key is in the
        `{jobs}` slot, so a Redis Cluster takes it too. One call a job packed and sent the
        script's arguments as many times (the gateway's CPU, not Redis's, was the cost)."""
        added = 0
        for start in range(0, len(jobs), 500):
            keys: list[str] = [self._stream, self._delayed]
            args: list[str | float] = [DONE_RETENTION]
            for j in jobs[start:start + 500]:
                keys.append(self._seen + j.id)
                args += [json.dumps({"id": j.id, "kind": j.kind, "payload": j.payload, "attempts": 0},
                                    separators=(",", ":")), j.not_before]
            try:
                added += int(await self._enqueue(keys=keys, args=args))
            except RedisError as exc:
                raise StoreUnavailable(f"job queue: {exc}") from exc
        return added

    async def claim(self, worker: str, now: float, limit: int, lease: float) -> list[Job]:
        try:
            await self._move_due(keys=[self._stream, self._delayed], args=[now, max(limit, 100)])
            claimed: Any = await self._client.xautoclaim(self._stream, GROUP, worker, int(lease * 1000),
                                                         "0-0", count=limit)
            stale: list[tuple[str, dict[str, str]]] = claimed[1]
            jobs = [self._job(entry_id, fields, worker, reclaimed=True) for entry_id, fields in stale if fields]
            if len(jobs) < limit:
                fresh: Any = await self._client.xreadgroup(GROUP, worker, {self._stream: ">"},
                                                           count=limit - len(jobs))
                for _, entries in fresh or []:
                    jobs += [self._job(entry_id, fields, worker, reclaimed=False) for entry_id, fields in entries]
        except RedisError as exc:
            raise StoreUnavailable(f"job queue: {exc}") from exc
        return jobs

    @staticmethod
    def _job(entry_id: str, fields: dict[str, str], worker: str, *, reclaimed: bool) -> Job:
        raw = json.loads(fields["job"])
        return Job(raw["id"], raw["kind"], raw["payload"], int(raw["attempts"]) + (1 if reclaimed else 0),
                   f"{entry_id}|{worker}")

    async def _end(self, job: Job, not_before: float | None) -> bool:
        entry_id, _, worker = job.token.partition("|")
        again = "" if not_before is None else json.dumps(
            {"id": job.id, "kind": job.kind, "payload": job.payload, "attempts": job.attempts + 1},
            separators=(",", ":"))
        try:
            ended = await self._end_script(keys=[self._stream, self._delayed],
                                           args=[GROUP, entry_id, worker, "" if not_before is None else
                                                 repr(not_before), again])
        except RedisError as exc:
            raise StoreUnavailable(f"job queue: {exc}") from exc
        return bool(ended)

    async def complete(self, job: Job) -> bool:
        return await self._end(job, None)

    async def fail(self, job: Job) -> bool:
        return await self._end(job, None)

    async def retry(self, job: Job, not_before: float) -> bool:
        return await self._end(job, max(not_before, 1e-6))

    async def pending(self) -> int:
        try:
            return int(await self._client.xlen(self._stream)) + int(await self._client.zcard(self._delayed))
        except RedisError as exc:
            raise StoreUnavailable(f"job queue: {exc}") from exc


def new_worker_name(host: str) -> str:
    return f"{host}:{uuid.uuid4().hex[:12]}"
