"""The application factory: the one place that builds the gateway's parts and wires them.

One lifespan opens and closes the store, the broker, the hub and background tasks.
Dependencies are passed down explicitly: the engine is given its command table, the
handlers and the HTTP API their services; nothing reaches through the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable
from importlib import resources

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, WebSocketRoute
from starlette.types import Receive, Scope, Send

from auth.sessions import DeviceSessions, SessionPolicy
from auth.unsubscribe import unsubscribe_key
from channels.broker import Broker
from channels.factory import make_broker
from channels.hub import Hub
from channels.limits import Limiter, LocalFirst, MemoryLimiter
from channels.memory import MemoryBroker
from channels.presence import LocalPresence, Presence
from channels.redis_limits import RedisLimiter
from channels.redis_presence import RedisPresence, presence_client
from notify.email import Mailer, OutboxMailer, SmtpMailer
from persistence.auth_store import AuthStore
from persistence.factory import (
    open_audit_store,
    open_auth_store,
    open_blob_store,
    open_board_store,
    open_job_queue,
    open_notification_store,
    open_privacy_store,
    open_push_store,
    open_store,
    open_upload_store,
)
from persistence.store import Store
from realtime.config import Settings
from realtime.engine.background import Background
from realtime.engine.catchup import CatchUp
from realtime.engine.events import Events
from realtime.engine.gateway import Gateway, user_limits
from realtime.engine.reads import LatestSeqs, Updates
from realtime.engine.recent import RecentCache
from realtime.engine.recovery import Recovery
from realtime.handlers import command_table
from realtime.handlers.core import CoreHandlers, MessageHandlers
from realtime.handlers.scheduling import ScheduleHandlers
from realtime.handlers.school import SchoolHandlers
from realtime.http.api import api_routes
from realtime.http.demo import demo_outbox, demo_people, demo_token
from realtime.http.errors import EXCEPTION_HANDLERS
from realtime.http.probes import healthz, metrics, readyz
from realtime.http.routing import OwnedRoute
from realtime.http.security import ClientFiles, SecurityHeaders
from realtime.metrics import Metrics
from realtime.services import Services
from realtime.services.attachments import Attachments
from realtime.services.audit import Audit, AuditTrail
from realtime.services.board import Board, ReadTimes, push_subscribers
from realtime.services.consents import Consents
from realtime.services.digest import DigestSender
from realtime.services.erasure import Erasure
from realtime.services.gdpr import Privacy
from realtime.services.history import History
from realtime.services.imaging import ImagingPool
from realtime.services.invitations import Invitations
from realtime.services.job_worker import JobWorker
from realtime.services.membership import Membership
from realtime.services.notification_rules import Digests, NotificationData, NotificationRules
from realtime.services.notifications import Notifier
from realtime.services.oidc import ProviderTokens
from realtime.services.privacy import PersonalData
from realtime.services.privacy_sections import DirectorySection, MessagesSection, ReadMarksSection, SignInSection
from realtime.services.publishing import Publisher, content_limits
from realtime.services.push import PushService, PushSubscriptionData, webhook_provider
from realtime.services.receipts import Receipts
from realtime.services.retention import Retention
from realtime.services.scheduling import ScheduledPosts
from realtime.services.session_ends import SessionEnds
from realtime.services.signin import SignIn
from realtime.services.uploads import UploadRate, Uploads, UploadsPrivacy
from realtime.ws.codec import CODECS
from realtime.ws.endpoint import serve, websocket_endpoint
from school.demo import SCHOOL_ID, demo_school
from school.directory import Directory

log = structlog.get_logger("liaison.app")


def foreign_schools(directory: Directory) -> list[str]:
    """The schools of a store that are not the demo school: a store `--demo` must not serve."""
    return sorted(s for s in directory.schools if s != SCHOOL_ID)


async def load_demo(store: Store) -> None:
    """Write the demo school into the store unless it is there already. A store that holds
    other schools is refused: a demo must not hand out tokens for real people."""
    directory = await store.load_directory()
    others = foreign_schools(directory)
    if others:
        raise RuntimeError(f"--demo refuses this store: it holds other schools ({', '.join(others[:3])})")
    if SCHOOL_ID not in directory.schools:
        await store.save_directory(demo_school())
        log.info("demo_school_loaded", school=SCHOOL_ID)


def make_mailer(settings: Settings) -> tuple[OutboxMailer | None, Mailer | None]:
    """The demo's outbox (and the mailer) under --demo without SMTP; else the SMTP mailer, or
    none at all (sign-in codes are then not sent: `email_not_configured` is logged once)."""
    s = settings.signin
    if s.smtp_url is not None:
        return None, SmtpMailer(s.smtp_url.value, s.smtp_from)
    if settings.demo:
        outbox = OutboxMailer()
        return outbox, outbox
    return None, None


class Runtime:
    """Every part of one running gateway process, built in dependency order."""

    def __init__(self, settings: Settings, store: Store, broker: Broker, directory: Directory,
                 auth_store: AuthStore) -> None:
        clock = time.time
        self.personal_data: list[PersonalData] = []  # sections of the export and erasure (issue 15)
        self.audit_store = open_audit_store(settings.store_url, retention_days=settings.audit_retention_days)
        self.audit = Audit(self.audit_store, retention_days=settings.audit_retention_days, clock=clock)
        self.settings = settings
        self.store = store
        self.broker = broker
        self.directory = directory
        self.metrics = Metrics()
        self.background = Background()
        encoders = {name: codec.encode for name, codec in CODECS.items()}
        # latest seqs read together by the connects of the moment: their replies' and the new
        # feeds' (each connect starts its user: channel's feed) — one store read per batch
        self.latest_seqs = LatestSeqs(store.latest_seqs)
        self.hub = Hub(broker, encoders, self._fetch_range, self._latest_seq,
                       gap_delay=settings.gap_fill_delay, on_delivered=self.metrics.delivered)
        self.presence: Presence = LocalPresence(self.hub)
        # over Redis, this gateway's subscribers get its own new messages without the round trip
        self.events = Events(broker, local=None if isinstance(broker, MemoryBroker) else self.hub.on_event)
        self.catch_up = CatchUp(store, self.hub)
        # over Redis, commands' rate hits are answered in process and shared in batches
        # (channels.limits.LocalFirst); HTTP requests ask Redis each time
        shared: Limiter | None = (RedisLimiter.from_url(settings.redis_url, settings.redis_prefix)
                                  if settings.redis_url else None)
        self.limiter: Limiter = LocalFirst(shared) if shared is not None else MemoryLimiter()
        self.user_limits = user_limits(settings.limits, self.limiter, hold_ttl=settings.presence_period * 4,
                                       exact=shared)
        self.gateway = Gateway(settings.limits, self.metrics, self.hub.unsubscribe, settings.allowed_origins,
                               quotas=self.user_limits)
        # the storm path (issue 16): recent messages in memory, latest seqs read per batch
        self.recent = RecentCache(store, self.hub.position, settings.limits.recovery_cap,
                                  settings.limits.reply_bytes, settings.limits.recent_cache_bytes,
                                  metrics=self.metrics)
        self.hub.listeners.append(self.recent)
        self.recovery = Recovery(store, self.hub, settings.limits.recovery_cap, settings.limits.reply_bytes,
                                 recent=self.recent, latest=self.latest_seqs,
                                 updates=Updates(store.updates))
        self.publisher = Publisher(store, directory, self.events, content_limits(settings.limits),
                                   self.metrics, clock)
        self.history = History(store, directory, settings.limits.reply_bytes)
        self.receipts = Receipts(store, directory, self.events)
        self.membership = Membership(store, directory, self.events, self.gateway, self.recovery,
                                     self.background)
        self.hub.control_handlers.append(self.membership.on_control)
        self.auth_store = auth_store
        self.outbox, mailer = make_mailer(settings)
        s = settings.signin
        sessions = DeviceSessions(auth_store, clock=clock, policy=SessionPolicy(access_ttl=s.access_ttl,
                                                                                reuse_grace=s.refresh_grace))
        self.session_ends = SessionEnds(sessions, self.events, self.gateway)
        self.hub.control_handlers.append(self.session_ends.on_control)
        self.membership.removal_hooks.append(self.session_ends.people_removed)
        provider = None
        if s.oidc_issuer is not None and s.oidc_audience is not None:
            provider = ProviderTokens(s.oidc_issuer, s.oidc_audience, s.oidc_jwks_url, s.oidc_claim,
                                      refetch=s.oidc_refetch)
        self.signin = SignIn(settings, directory, auth_store, mailer, self.session_ends, self.background, clock,
                             provider)
        self.invitations = Invitations(directory, auth_store, mailer, s.public_url, clock)
        # issue 15: the sections of the messages, the directory and sign-in (first: the others'
        # follow), erasure jobs, the school year and retention (tables privacy_* beside the messages)
        self.personal_data[:0] = [DirectorySection(directory, self.membership, self.session_ends),
                                  SignInSection(auth_store, self.session_ends),
                                  MessagesSection(store, self.events, clock), ReadMarksSection(store)]
        self.privacy_store = open_privacy_store(settings.store_url)
        self.erasure = Erasure(self.privacy_store, self.personal_data, self.audit, clock)
        self.retention = Retention(store, self.privacy_store, directory, self.erasure, self.personal_data,
                                   self.audit, clock, runner=self.gateway.instance_id)
        self.membership.removal_hooks.append(self.retention.people_removed)
        self.publisher.guards.append(self.retention.guard)
        # the audit log of who published, edited, deleted, ended sessions
        trail = AuditTrail(self.audit, directory, self.retention.school_of)
        self.publisher.stored_hooks.append(trail.published)
        self.publisher.changed_hooks.append(trail.message_changed)
        self.session_ends.ended_hooks.append(trail.sessions_ended)
        self.privacy = Privacy(self.personal_data, self.erasure, self.retention, self.audit, directory, clock)
        self.run_daily = True  # the daily retention job (off in `liaison privacy`)
        # issue 17: the director's board (tables board_* beside the messages: when guardians read)
        self.board_store = open_board_store(settings.store_url)
        self.board = Board(directory, store, auth_store, self.board_store, mailer, s.public_url, clock)
        self.board.audit = self.audit
        self.receipts.read_hooks.append(self.board.note_read)
        self.personal_data.append(ReadTimes(self.board_store))
        # issue 13: uploads (tables upload_* beside the messages, blobs in <db>.files/ or GridFS)
        self.upload_store = open_upload_store(settings.store_url)
        self.blobs = open_blob_store(settings.store_url)
        self.imaging = ImagingPool(settings.upload_workers)
        self.uploads = Uploads(self.upload_store, self.blobs, store, directory, self.imaging, clock)
        self.publisher.attachments = Attachments(self.upload_store, directory)
        self.consents = Consents(self.upload_store, store, directory, self.events, clock)
        self.consents.audit = self.audit
        self.personal_data.append(UploadsPrivacy(self.uploads, self.consents))
        core = CoreHandlers(settings, directory, store, self.gateway, self.recovery, clock, self.user_limits,
                            self.signin)
        messages = MessageHandlers(self.publisher, self.history, self.receipts, self.user_limits)
        school = SchoolHandlers(directory, store, self.events, lambda: self.presence, self.membership,
                                self.history, self.publisher, self.receipts, clock)
        # issue 12 part B: quiet hours, preferences, the digest, scheduled posts (tables notify_*)
        self.notification_store = open_notification_store(settings.store_url)
        self.notification_rules = NotificationRules(self.notification_store, clock)
        self.digests = Digests(self.notification_store)
        self.digest_sender = DigestSender(self.notification_store, store, directory, self.notification_rules,
                                          mailer, unsubscribe_key(settings.jwt_secret.bytes()), s.public_url,
                                          settings.digest_period, clock)
        self.scheduled_posts = ScheduledPosts(self.notification_store, self.publisher, directory,
                                              self.notification_rules, clock,
                                              reply_bytes=settings.limits.reply_bytes)
        self.personal_data.append(NotificationData(self.notification_store))
        # issue 12 part A: who is notified (a fan-out job per stored message), Web Push, the
        # webhook provider, the job engine (Redis Streams over Redis, else a table in the store)
        self.push_store = open_push_store(settings.store_url)
        self.jobs = open_job_queue(settings.store_url, settings.redis_url, settings.redis_prefix)
        self.notifier = Notifier(directory, store, self.push_store, self.jobs, lambda: self.presence,
                                 hook=webhook_provider(settings.push), rules=self.notification_rules,
                                 digests=self.digests, session_live=sessions.is_live, clock=clock)
        self.publisher.stored_hooks.append(self.notifier.message_stored)
        self.push = PushService(settings.push, self.push_store, self.notifier, clock)
        self.receipts.delivery = self.push_store.report
        self.personal_data.append(PushSubscriptionData(self.push_store))
        self.board.reachable_by.append(push_subscribers(self.push_store))  # issue 17: push counts as a device
        self.board.quiet_hours = self.notification_rules.quiet_hours  # no e-mail reminder in quiet hours
        scheduling = ScheduleHandlers(self.scheduled_posts, self.publisher, messages.publish, self.user_limits)
        self.gateway.use(command_table(core, messages, school, scheduling))
        self.services = Services(settings, store, directory, self.publisher, self.history,
                                 self.receipts, self.membership, self.signin, self.invitations, self.outbox,
                                 self.board, audit=self.audit,
                                 notification_rules=self.notification_rules, digests=self.digests, push=self.push,
                                 uploads=self.uploads, consents=self.consents,
                                 upload_rate=UploadRate(settings.uploads_per_minute), privacy=self.privacy)

    async def _fetch_range(self, channel: str, after: int, upto: int) -> list[dict[str, object]]:
        return [dict(m.to_wire()) for m in await self.store.range(channel, after, upto)]

    async def _latest_seq(self, channel: str) -> int:
        return (await self.latest_seqs.get([channel])).get(channel, 0)

    async def start(self) -> None:
        settings = self.settings
        await self.notification_store.open()
        await self.push_store.open()
        await self.jobs.open()
        await self.push.start()
        self.background.spawn(self.notifier.hand_over())
        if settings.push.workers_in_serve:
            worker = JobWorker(self.jobs, self.notifier.handlers(), wake=self.notifier.wake,
                               lease=settings.push.job_lease)
            self.background.spawn(worker.run())
        await self.audit_store.open()
        await self.privacy_store.open()
        await self.retention.refresh()
        if self.run_daily:
            self.background.spawn(self.retention.daily())
        await self.board_store.open()
        self.background.spawn(self.board.flush_every(1.0))  # the guardians' read times, in batches
        await self.upload_store.open()
        await self.blobs.open()
        self.background.spawn(self.uploads.sweep_every())
        self.background.spawn(self.catch_up.run(settings.catch_up_period))
        self.background.spawn(self.scheduled_posts.run(settings.schedule_poll))
        self.background.spawn(self.digest_sender.run(settings.digest_poll))
        self.background.spawn(self.membership.watch_store(settings.directory_poll))
        self.background.spawn(self.gateway.keep_counted(settings.presence_period))
        if settings.redis_url:
            presence = RedisPresence(presence_client(settings.redis_url), self.hub, self.gateway.instance_id,
                                     prefix=settings.redis_prefix, period=settings.presence_period)
            self.presence = presence
            self.background.spawn(presence.run())
        await self.broker.start(self.hub)
        self.background.spawn(self.events.run())
        self.background.spawn(self.metrics.sample_every(self.hub))

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):  # hand what is queued to the broker, briefly
            async with asyncio.timeout(1.0):
                await self.events.flushed()
        await self.background.close()
        with contextlib.suppress(TimeoutError):  # the fan-out jobs still noted, briefly
            async with asyncio.timeout(1.0):
                await self.notifier.flush_pending()
        await self.recent.close()
        await self.hub.close()
        await self.broker.close()
        if isinstance(self.presence, RedisPresence):
            await self.presence.close()
        await self.limiter.close()
        await self.notification_store.close()
        await self.notifier.close()
        await self.jobs.close()
        await self.push_store.close()
        with contextlib.suppress(TimeoutError):  # what the audit log has queued, briefly
            async with asyncio.timeout(2.0):
                await self.audit.flush()
        await self.audit_store.close()
        await self.privacy_store.close()
        await self.board_store.close()
        await self.upload_store.close()
        await self.blobs.close()
        self.imaging.close()

    def render_metrics(self) -> bytes:
        """The Prometheus text of `/metrics`: this process's figures, or the sums over the
        workers of `liaison serve --workers N` (realtime/metrics.py)."""
        self.metrics.sample(self.hub)
        return self.metrics.render()


class FastWebSocketRoute:
    """The ASGI app `liaison serve` runs: `/ws` goes straight to the endpoint, everything
    else (and the lifespan) through Starlette. A WebSocket lives for hours; each layer of
    middleware and routing it passes through stays on its stack, as memory, for as long.
    Not a coroutine function itself: it returns the endpoint's coroutine, which uvicorn's task
    awaits with no frame of ours in between (uvicorn is told it is ASGI 3, `interface`)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self.app
            return serve(scope, receive, send)
        return self.app(scope, receive, send)


def create_app(settings: Settings, store: Store | None = None, broker: Broker | None = None) -> Starlette:
    """Build the ASGI app; the store and broker come from the settings unless given."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        the_store = store or open_store(settings.store_url)
        the_broker = broker or make_broker(settings.redis_url, settings.redis_prefix)
        auth_store = open_auth_store(settings.store_url)
        await the_store.open()
        try:
            await auth_store.open()
            if settings.demo:
                await load_demo(the_store)
            runtime = Runtime(settings, the_store, the_broker, await the_store.load_directory(), auth_store)
            if runtime.signin.mailer is None:
                log.warning("email_not_configured", hint="set LIAISON_SMTP_URL and LIAISON_SMTP_FROM: sign-in "
                            "codes and invitations cannot be sent")
            app.state.runtime = runtime
            app.state.gateway = runtime.gateway
            app.state.services = runtime.services
            app.state.user_limits = runtime.user_limits
            app.state.readiness = {"store": the_store.ping, "broker": the_broker.ping}
            app.state.render_metrics = runtime.render_metrics
            await runtime.start()
            log.info("gateway_started", store=settings.store_url.split(":", 1)[0],
                     broker="redis" if settings.redis_url else "memory", demo=settings.demo)
            try:
                yield
            finally:
                await runtime.close()
        finally:
            await auth_store.close()
            await the_store.close()

    web_dir = str(resources.files("web"))
    routes = [
        WebSocketRoute("/ws", websocket_endpoint),
        OwnedRoute("/healthz", healthz),
        OwnedRoute("/readyz", readyz),
        OwnedRoute("/metrics", metrics),
        OwnedRoute("/demo/people", demo_people),
        OwnedRoute("/demo/token", demo_token, methods=["POST"]),
        OwnedRoute("/demo/outbox", demo_outbox),
        *api_routes(),
        Mount("/", app=ClientFiles(directory=web_dir, html=True), name="web"),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS,
                     middleware=[Middleware(SecurityHeaders)])
