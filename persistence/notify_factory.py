"""Pick the notification adapters from the settings: the push store beside the messages (same
SQLite file or MongoDB database), and the job queue on Redis when `LIAISON_REDIS_URL` is set,
else beside the messages too."""

from __future__ import annotations

from persistence.factory import locate
from persistence.jobs import JobQueue
from persistence.jobs_mongo import MongoJobQueue
from persistence.jobs_redis import RedisJobQueue
from persistence.jobs_sqlite import SQLiteJobQueue
from persistence.push_mongo import MongoPushStore
from persistence.push_sqlite import SQLitePushStore
from persistence.push_store import PushStore


def open_push_store(store_url: str) -> PushStore:
    where = locate(store_url)
    if where.kind == "sqlite":
        return SQLitePushStore(where.path)
    return MongoPushStore(store_url, where.database)


def open_job_queue(store_url: str, redis_url: str | None, redis_prefix: str = "liaison:") -> JobQueue:
    if redis_url:
        return RedisJobQueue.from_url(redis_url, redis_prefix)
    where = locate(store_url)
    if where.kind == "sqlite":
        return SQLiteJobQueue(where.path)
    return MongoJobQueue(store_url, where.database)
