"""The privacy section `notifications` (issue 12 for issue 15's export and erasure): a person's
preferences, digest entries and scheduled posts, and nobody else's. A real SQLite file."""

from __future__ import annotations

from pathlib import Path

from persistence.notification_sqlite import SQLiteNotificationStore
from persistence.notification_store import DigestEntry, ScheduledPost
from realtime.services.notification_rules import NotificationData
from school.preferences import Preferences

T0 = 1_800_000_000.0


async def test_export_and_erase_one_persons_notification_data(tmp_path: Path) -> None:
    store = SQLiteNotificationStore(str(tmp_path / "liaison.db"))
    await store.open()
    try:
        section = NotificationData(store)
        assert section.name == "notifications"
        for who in ("t-martin", "t-nguyen"):
            await store.set_preferences(who, Preferences({"chat": "off"}, show_content=True))
            await store.add_digest(DigestEntry(who, "class:cp-a", 3, "post", T0))
            await store.add_scheduled(ScheduledPost(f"s-{who}", who, "class:cp-a", "post", {"text": f"de {who}"},
                                                    T0 + 60, T0))
        exported = await section.export("t-martin")
        assert isinstance(exported, dict)
        assert exported["preferences"]["kinds"]["chat"] == "off" and exported["preferences"]["show_content"]
        assert exported["digest_entries"] == [{"channel": "class:cp-a", "seq": 3, "kind": "post", "added_at": T0}]
        assert [p["data"] for p in exported["scheduled_posts"]] == [{"text": "de t-martin"}]
        assert "t-nguyen" not in str(exported)
        assert await section.erase("t-martin", dry_run=True) == 3
        assert await section.erase("t-martin", dry_run=False) == 3
        empty: dict[str, object] = {"preferences": None, "digest_entries": [], "scheduled_posts": []}
        assert await section.export("t-martin") == empty
        assert await section.erase("t-martin", dry_run=False) == 0
        assert (await section.export("t-nguyen"))["scheduled_posts"]  # type: ignore[index]
    finally:
        await store.close()
