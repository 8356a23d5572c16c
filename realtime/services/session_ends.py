"""Ending sign-in sessions, live on every gateway (issue 11).

A device session (auth/sessions.py) ends when its user signs out or ends it from another
device, when an administrator ends a person's sessions, when the person leaves the directory,
or when a superseded refresh credential is presented (a stolen copy). Its access token may
still be valid for minutes, and its WebSockets may be open on any gateway process: so every
end is announced on the broker's control channel (`sessions_ended`, with the session ids),
and each gateway closes its connections opened with one of those sessions (4401) at once.
The gateway that ended them closes its own without waiting for the broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from auth.sessions import DeviceSessions
from channels.broker import CONTROL_CHANNEL, Event
from realtime.engine.events import Events
from realtime.engine.gateway import Gateway

log = structlog.get_logger("liaison.sessions")

SESSIONS_ENDED_EVENT = "sessions_ended"
MAX_IDS = 128  # session ids a gateway reads from one event


class SessionEnds:
    def __init__(self, sessions: DeviceSessions, events: Events, gateway: Gateway) -> None:
        self.sessions = sessions
        self.events = events
        self.gateway = gateway
        # told of the sessions each end ended: (user, session ids, reason), e.g. the audit log
        self.ended_hooks: list[Callable[[str, list[str], str], Awaitable[None]]] = []

    async def announce(self, sids: list[str], reason: str) -> None:
        """Close the connections of ended sessions here, and tell every other gateway."""
        if not sids:
            return
        self.gateway.close_device_sessions(sids, "session ended: sign in again")
        for start in range(0, len(sids), MAX_IDS):
            chunk = sids[start:start + MAX_IDS]
            body = {"origin": self.gateway.instance_id, "sessions": chunk}
            await self.events.publish(Event(CONTROL_CHANNEL, SESSIONS_ENDED_EVENT, body))
        log.info("sessions_ended", sessions=len(sids), reason=reason)

    def on_control(self, event: Event) -> None:
        if event.type != SESSIONS_ENDED_EVENT or event.body.get("origin") == self.gateway.instance_id:
            return
        sids = event.body.get("sessions")
        if not isinstance(sids, list):
            log.warning("bad_sessions_event")
            return
        self.gateway.close_device_sessions([s for s in sids[:MAX_IDS] if isinstance(s, str)],
                                           "session ended: sign in again")

    async def end_one(self, user_id: str, session_id: str) -> bool:
        """A user ends one of their own live sessions; False when it is not theirs or not live."""
        ended = await self.sessions.end(user_id, session_id)
        if ended:
            await self.announce([session_id], "ended_by_user")
            await self._tell(user_id, [session_id], "ended_by_user")
        return ended

    async def end_others(self, user_id: str, keep: str | None) -> list[str]:
        """A user ends all their live sessions but `keep` (the one asking; None: all of them)."""
        ended = [s.id for s in await self.sessions.of_user(user_id)
                 if s.id != keep and await self.sessions.end(user_id, s.id)]
        await self.announce(ended, "ended_by_user")
        await self._tell(user_id, ended, "ended_by_user")
        return ended

    async def end_all(self, user_id: str, reason: str) -> list[str]:
        """Every live session of a person (`admin`, `removed`)."""
        ended = await self.sessions.end_all(user_id, reason)
        await self.announce(ended, reason)
        await self._tell(user_id, ended, reason)
        return ended

    async def _tell(self, user_id: str, ended: list[str], reason: str) -> None:
        for hook in self.ended_hooks if ended else ():
            await hook(user_id, ended, reason)

    async def people_removed(self, user_ids: list[str]) -> None:
        """People taken out of the directory: their sessions end (`removed`)."""
        for user_id in user_ids:
            await self.end_all(user_id, "removed")
