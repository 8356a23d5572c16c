"""The `Broker` protocol: carries events between gateway processes.

Contract (checked by tests/contract/test_broker.py against every adapter):

- `publish(event)` delivers the event to the sink of every started broker of the
  same deployment (this process included) that is subscribed to
  `event.channel`, at most once each. Events of one channel published by one
  process arrive in the order they were published. Delivery is best effort:
  while a connection to the backend is down, events may be lost; the sink's
  `on_reconnect` is called once the broker is back, so that the gateway can fill
  gaps from the store.
- `subscribe`/`unsubscribe` are idempotent; the local registry reference-counts
  and calls them only for the first and after the last local subscriber.
- Control events (`event.channel` starting with `CONTROL_PREFIX`) reach every
  started broker without a subscription.
- The broker never imports the gateway: it reports upward through the sink.
- `publish` raises `BrokerUnavailable` when the backend cannot be reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from school.errors import Unavailable

CONTROL_PREFIX = "_liaison:"
CONTROL_CHANNEL = CONTROL_PREFIX + "control"


class BrokerUnavailable(Unavailable):
    """The pub/sub backend cannot be reached. The detail (for the logs) is `str(exc)`."""

    def __init__(self, detail: str) -> None:
        super().__init__("live delivery is unavailable, try again shortly")
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True, slots=True)
class Event:
    """One thing to fan out: `type` is the push type (`message`, `update`, `typing`, ...),
    `body` the push's fields; `seq` is set for `message` events (ordering and gaps);
    `exclude` names a user whose connections do not get it (the typist of `typing`)."""

    channel: str
    type: str
    body: dict[str, Any]
    seq: int | None = None
    exclude: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"c": self.channel, "t": self.type, "b": self.body, "s": self.seq, "x": self.exclude}

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> Event:
        seq, exclude = raw.get("s"), raw.get("x")
        return cls(str(raw["c"]), str(raw["t"]), dict(raw["b"]), int(seq) if seq is not None else None,
                   str(exclude) if exclude is not None else None)


class BrokerSink(Protocol):
    def on_event(self, event: Event) -> None:
        """Called in the event loop for each event received."""

    def on_reconnect(self) -> None:
        """Called after the broker lost its backend and got it back (events may be lost)."""


class Broker(Protocol):
    async def start(self, sink: BrokerSink) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise `BrokerUnavailable` unless the backend answers."""

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def publish(self, event: Event) -> None: ...


@runtime_checkable
class SkipsOwnMessages(Protocol):
    """A broker that can leave out this process's own `message` events (those with a `seq`)
    when they come back from its backend: the caller delivers them here itself."""

    def skip_own_messages(self) -> None: ...


@runtime_checkable
class BatchPublisher(Protocol):
    """A broker that can hand several events to its backend in one round trip."""

    async def publish_many(self, events: Sequence[Event]) -> None:
        """Publish `events` in their order, as `publish` would one by one; all or nothing as
        far as the caller knows: on `BrokerUnavailable` none counts as published (some may
        have been, so a retry can deliver an event twice; `message` events are then dropped
        by `seq` in the hub)."""
