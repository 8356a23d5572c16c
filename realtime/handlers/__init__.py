"""The command table: every op of the protocol and its handler, in one visible place."""

from __future__ import annotations

from realtime.engine.gateway import Handler
from realtime.handlers.core import CoreHandlers, MessageHandlers
from realtime.handlers.scheduling import ScheduleHandlers
from realtime.handlers.school import SchoolHandlers


def command_table(core: CoreHandlers, messages: MessageHandlers, school: SchoolHandlers,
                  scheduling: ScheduleHandlers | None = None) -> dict[str, Handler]:
    table: dict[str, Handler] = {
        "connect": core.connect,
        "subscribe": core.subscribe,
        "unsubscribe": core.unsubscribe,
        "ping": core.ping,
        "profile": core.profile,
        "publish": messages.publish,
        "history": messages.history,
        "read": messages.read,
        "open_chat": school.open_chat,
        "close_chat": school.close_chat,
        "typing": school.typing,
        "presence": school.presence,
        "receipts": school.receipts,
        "edit": school.edit,
        "delete": school.delete,
    }
    if scheduling is not None:  # issue 12: publish with `at`, the author's scheduled posts
        table.update({"publish": scheduling.publish, "scheduled": scheduling.scheduled,
                      "cancel_scheduled": scheduling.cancel_scheduled})
    return table
