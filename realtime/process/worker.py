"""`liaison worker`: a process that runs the durable jobs (notifications) and nothing else.

In production the gateways run with `LIAISON_WORKERS_IN_SERVE=0` and N of these run beside
them (a `worker:` line in the Procfile); any number of them share the queue (Redis Streams
over `LIAISON_REDIS_URL`, else the table in the store). A worker reads who is connected from
the gateways' Redis presence; without Redis it cannot know it and treats everyone as away
(keep the workers inside `liaison serve` there, the default). It follows directory changes
through the store's directory version, as gateways do for offline imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Protocol

import structlog

from auth.sessions import DeviceSessions
from channels.presence_reader import NobodyOnline, RedisPresenceReader
from channels.redis_presence import presence_client
from persistence.factory import (
    open_auth_store,
    open_job_queue,
    open_notification_store,
    open_push_store,
    open_store,
)
from realtime.config import Settings
from realtime.services.job_worker import JobWorker
from realtime.services.notification_rules import Digests, NotificationRules
from realtime.services.notifications import Notifier, Online
from realtime.services.push import PushService, webhook_provider

log = structlog.get_logger("liaison.worker")


class Part(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


async def follow_directory(notifier: Notifier, interval: float) -> None:
    messages = notifier.store
    known = await messages.directory_version()
    while True:
        await asyncio.sleep(interval)
        try:
            version = await messages.directory_version()
            if version != known:
                notifier.directory.replace_with(await messages.load_directory())
                known = version
                log.info("directory_reload", version=version)
        except Exception as exc:
            log.warning("directory_watch_failed", error=type(exc).__name__)


async def run_worker(settings: Settings) -> None:
    store = open_store(settings.store_url)
    auth_store = open_auth_store(settings.store_url)
    notification_store = open_notification_store(settings.store_url)
    push_store = open_push_store(settings.store_url)
    jobs = open_job_queue(settings.store_url, settings.redis_url, settings.redis_prefix)
    online: Online = (RedisPresenceReader(presence_client(settings.redis_url), settings.redis_prefix)
                      if settings.redis_url else NobodyOnline())
    opened: list[Part] = []
    try:
        parts: list[Part] = [store, auth_store, notification_store, push_store, jobs]
        for part in parts:
            await part.open()
            opened.append(part)
        directory = await store.load_directory()
        rules = NotificationRules(notification_store)
        sessions = DeviceSessions(auth_store, clock=time.time)
        notifier = Notifier(directory, store, push_store, jobs, lambda: online,
                            hook=webhook_provider(settings.push), rules=rules,
                            digests=Digests(notification_store), session_live=sessions.is_live)
        await PushService(settings.push, push_store, notifier).start()
        worker = JobWorker(jobs, notifier.handlers(), wake=notifier.wake, lease=settings.push.job_lease)
        log.info("worker_started", worker=worker.name, queue="redis" if settings.redis_url else "store")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        tasks = [asyncio.create_task(worker.run()),
                 asyncio.create_task(follow_directory(notifier, settings.directory_poll))]
        await stop.wait()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await notifier.close()
        log.info("worker_stopped", worker=worker.name, done=worker.done)
    finally:
        for done in reversed(opened):
            await done.close()
        if isinstance(online, RedisPresenceReader):
            await online.close()
