"""Presence: which users have a live connection subscribed to a channel.

Its own concern, apart from the broker. `LocalPresence` answers from this
process's subscriptions: exact for one gateway process.
"""

from __future__ import annotations

from typing import Protocol

from channels.hub import Hub


class Presence(Protocol):
    async def users(self, channel: str) -> set[str]:
        """The ids of users with at least one live connection subscribed to `channel`."""


class LocalPresence:
    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    async def users(self, channel: str) -> set[str]:
        return {s.user_id for s in self._hub.subscribers(channel) if s.user_id is not None}
