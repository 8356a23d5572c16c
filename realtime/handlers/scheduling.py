"""Handlers of scheduled posts (issue 12): `publish` with `at`, `scheduled` and `cancel_scheduled`.

`publish` without `at` goes on to the ordinary handler (`MessageHandlers.publish`) untouched.
"""

from __future__ import annotations

from channels.limits import UserLimits
from realtime.engine.gateway import Handler, Replied
from realtime.handlers.core import publish_request, user_of
from realtime.services.publishing import Publisher
from realtime.services.scheduling import ScheduledPosts
from realtime.ws.connection import Connection
from realtime.ws.frames import Command, str_param
from realtime.ws.session import Session
from school.wire import Empty, ReplyBody, ScheduledList


class ScheduleHandlers:
    def __init__(self, scheduled: ScheduledPosts, publisher: Publisher, publish_now: Handler,
                 limits: UserLimits | None = None) -> None:
        self.scheduled_posts = scheduled
        self.publisher = publisher
        self.publish_now = publish_now
        self.limits = limits

    async def publish(self, session: Session, conn: Connection, cmd: Command) -> ReplyBody | Replied:
        """`publish`; with `at` (ms since the epoch or ISO 8601, in the future, within a year)
        the post is stored for later and the reply is `{scheduled, at}`."""
        if cmd.params.get("at") is None:
            return await self.publish_now(session, conn, cmd)
        req = publish_request(self.publisher, session, cmd)
        if self.limits is not None:
            await self.limits.publish(req.person.id)
        post = await self.scheduled_posts.schedule(req.person, req.channel, req.kind, req.data, cmd.params["at"],
                                                   req.key)
        return {"scheduled": post.id, "at": int(post.at * 1000)}

    async def scheduled(self, session: Session, conn: Connection, cmd: Command) -> ScheduledList:
        return {"posts": await self.scheduled_posts.of(user_of(session))}

    async def cancel_scheduled(self, session: Session, conn: Connection, cmd: Command) -> Empty:
        post_id = str(str_param(cmd.params, "scheduled", required=True, max_len=64))
        await self.scheduled_posts.cancel(user_of(session), post_id)
        return {}
