"""Directory changes, live: persist them, tell every gateway, and move connections.

A change (admin API, import, `open_chat`) is saved in the store, then announced on
the broker's control channel. Each gateway applies it to its directory snapshot
and re-checks the open connections of the people it touches: channels they now
belong to are subscribed (`subscribed` push), channels they may no longer read
are left (`unsubscribed` push); a person removed from the directory is
disconnected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from auth import policy
from channels.broker import CONTROL_CHANNEL, Event
from persistence.store import Store
from realtime.engine.background import Background
from realtime.engine.events import Events
from realtime.engine.gateway import Gateway
from realtime.engine.recovery import Recovery
from realtime.ws.close import CloseCode
from realtime.ws.connection import Connection
from realtime.ws.session import Session, State
from school.channels import parse_channel
from school.directory import Directory, DirectoryItem, item_from_wire, item_to_wire, remove, touched_users
from school.wire import SubscribedPush, UnsubscribedPush

log = structlog.get_logger("liaison.membership")

DIRECTORY_EVENT = "directory"
LARGE_CHANGE = 1000  # items: applied in a worker thread, announced as a reload


def is_large(upserts: list[DirectoryItem], deletions: dict[str, list[str]]) -> bool:
    return len(upserts) + sum(len(ids) for ids in deletions.values()) >= LARGE_CHANGE


def applied(
    d: Directory, upserts: list[DirectoryItem], deletions: dict[str, list[str]]
) -> tuple[set[str], Directory]:
    """Apply a change to `d`; the users it touched (before and after) and `d`."""
    users = touched_users(d, upserts, deletions)
    d.put(*upserts)
    remove(d, deletions)
    users |= touched_users(d, upserts, {})
    return users, d


class Membership:
    def __init__(self, store: Store, directory: Directory, events: Events, gateway: Gateway,
                 recovery: Recovery, background: Background) -> None:
        self.store = store
        self.directory = directory
        self.events = events
        self.gateway = gateway
        self.recovery = recovery
        self.background = background
        self._lock = asyncio.Lock()  # one change at a time on the snapshot
        # called with the ids of the people a change removed (their sign-in sessions end)
        self.removal_hooks: list[Callable[[list[str]], Awaitable[None]]] = []

    async def change(self, upserts: list[DirectoryItem], deletions: dict[str, list[str]] | None = None) -> None:
        """Save a directory change and apply it on every gateway (this one included). A large
        change (an import) is announced as "reload from the store" rather than item by item."""
        deletions = {k: list(v) for k, v in (deletions or {}).items() if v}
        await self.store.save_directory(upserts, deletions)
        # {origin, reload} or {origin, upserts, deletions}: read back by `on_control`
        body: dict[str, object] = {"origin": self.gateway.instance_id}
        if is_large(upserts, deletions):
            body["reload"] = True
        else:
            body |= {"upserts": [item_to_wire(i) for i in upserts], "deletions": deletions}
        await self.events.publish(Event(CONTROL_CHANNEL, DIRECTORY_EVENT, body))
        await self.apply(upserts, deletions)
        removed = deletions.get("people", [])
        for hook in self.removal_hooks if removed else ():
            try:
                await hook(removed)
            except Exception as exc:  # the change is made; a later refresh or connect refuses them anyway
                log.warning("removal_hook_failed", error=type(exc).__name__, people=len(removed))

    def on_control(self, event: Event) -> None:
        if event.type != DIRECTORY_EVENT or event.body.get("origin") == self.gateway.instance_id:
            return
        if event.body.get("reload"):
            self.background.spawn(self.reload())
            return
        try:
            upserts = [item_from_wire(raw) for raw in event.body.get("upserts", [])]
            deletions = {str(k): [str(i) for i in v] for k, v in event.body.get("deletions", {}).items()}
        except (TypeError, ValueError, KeyError):
            log.warning("bad_directory_event")
            return
        self.background.spawn(self.apply(upserts, deletions))

    async def apply(self, upserts: list[DirectoryItem], deletions: dict[str, list[str]]) -> None:
        """Apply a change to this gateway's snapshot (idempotent) and resync touched users. A
        large change is computed on a copy in a worker thread, then swapped in at once: a
        100,000-line import must not hold the event loop (and every live connection)."""
        async with self._lock:
            if is_large(upserts, deletions):
                users, changed = await asyncio.to_thread(applied, self.directory.copy(), upserts, deletions)
                self.directory.replace_with(changed)
            else:
                users, _ = applied(self.directory, upserts, deletions)
        for user_id in users:
            for session, conn in self.gateway.sessions_of(user_id):
                await self.resync(session, conn)

    async def watch_store(self, interval: float) -> None:
        """Reload the directory when an offline tool (`liaison import`) moved the store's
        directory version. Runs until cancelled; backs off and logs when the store fails."""
        known = await self.store.directory_version()
        delay = interval
        while True:
            await asyncio.sleep(delay)
            try:
                version = await self.store.directory_version()
                if version != known:
                    log.info("directory_reload", version=version)
                    await self.reload()
                    known = version
                delay = interval
            except Exception as exc:
                log.warning("directory_watch_failed", error=type(exc).__name__)
                delay = min(delay * 2, 60.0)

    async def reload(self) -> None:
        """Replace the whole snapshot from the store (after an offline import or a large change
        on another gateway) and resync all."""
        fresh = await self.store.load_directory()
        async with self._lock:
            self.directory.replace_with(fresh)
        for session, conn in self.gateway.ready_sessions():
            await self.resync(session, conn)

    async def resync(self, session: Session, conn: Connection) -> None:
        assert session.user is not None
        d = self.directory
        person = d.person(session.user.id)
        if person is None:
            conn.close(CloseCode.UNAUTHORIZED, "account removed")
            return
        session.user = person
        for name in sorted(session.channels):
            channel = parse_channel(name)
            if channel is None or not policy.may_read(d, person.id, channel):
                self.recovery.detach(session, conn, name)
                gone: UnsubscribedPush = {"push": "unsubscribed", "channel": name}
                conn.send(session.codec.encode(gone))
        added = [c for c in d.home_channels(person.id) if c not in session.channels]
        await self.join(session, conn, added)

    async def join(self, session: Session, conn: Connection, channels: list[str]) -> None:
        """Subscribe a connection to channels and tell it with `subscribed` pushes (gap-free:
        pushes above the announced seq follow)."""
        if not channels or session.state is not State.READY:
            return
        states = await self.recovery.attach(session, conn, channels, {})
        for state, seq in states:
            push: SubscribedPush = {"push": "subscribed", "channel": state["channel"], "seq": seq}
            conn.send(session.codec.encode(push))
            conn.end_recovery(state["channel"], seq)
