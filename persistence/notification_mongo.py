"""`MongoNotificationStore`: the production `NotificationStore` on MongoDB (PyMongo async API).

Collections (in the message store's database): `notify_quiet_hours` (`_id` the school),
`notify_preferences` (`_id` the person), `notify_digest_entries` (`_id` "user channel seq"),
`notify_digest_state` (`_id` the person, `next_at`) and `notify_scheduled` (`_id` the post).

The compare-and-set steps are single-document updates, applied atomically on the primary:
`claim_digest` updates (or inserts) the person's state only where `next_at` ≤ now (an insert
racing another insert loses on the duplicate `_id`); `claim_due` takes each due post with
`find_one_and_update` on `state: pending, claimed_until ≤ now`, so a post goes to one caller.
Writes are acknowledged by a majority and reads go to the primary, with the defaults and the
"try again shortly" mapping of persistence/mongo.py.
"""

from __future__ import annotations

from typing import Any, cast

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors
from persistence.notification_sqlite import prefs_from_json, rules_from_json
from persistence.notification_store import DigestEntry, ScheduledPost, ScheduledState
from school.preferences import Preferences
from school.quiet_hours import QuietHours

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]
WHAT = "the MongoDB notification store"

ENTRY_INDEXES = [IndexModel([("user_id", ASCENDING), ("added_at", ASCENDING)], name="user_added")]
SCHEDULED_INDEXES = [
    IndexModel([("state", ASCENDING), ("at", ASCENDING)], name="state_at"),
    IndexModel([("author_id", ASCENDING), ("state", ASCENDING), ("at", ASCENDING)], name="author_state_at"),
]


def _scheduled(doc: Doc) -> ScheduledPost:
    return ScheduledPost(doc["_id"], doc["author_id"], doc["channel"], doc["kind"], doc["data"], doc["at"],
                         doc["created_at"], cast(ScheduledState, doc["state"]), doc["claimed_until"],
                         doc["attempts"], doc.get("seq"))


def _entry_id(user_id: str, channel: str, seq: int) -> str:
    return f"{user_id} {channel} {seq}"


class MongoNotificationStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._quiet: Collection = db.get_collection("notify_quiet_hours")
        self._prefs: Collection = db.get_collection("notify_preferences")
        self._entries: Collection = db.get_collection("notify_digest_entries")
        self._state: Collection = db.get_collection("notify_digest_state")
        self._scheduled: Collection = db.get_collection("notify_scheduled")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._entries.create_indexes(ENTRY_INDEXES)
            await self._scheduled.create_indexes(SCHEDULED_INDEXES)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    # -- quiet hours and preferences -----------------------------------------------------------

    async def get_quiet_hours(self, school_id: str) -> QuietHours | None:
        with unavailable_errors(self, WHAT):
            doc = await self._quiet.find_one({"_id": school_id})
        return None if doc is None else rules_from_json(doc["rules"])

    async def set_quiet_hours(self, school_id: str, rules: QuietHours) -> None:
        with unavailable_errors(self, WHAT):
            await self._quiet.replace_one({"_id": school_id}, {"_id": school_id, "rules": rules.to_wire()},
                                          upsert=True)

    async def get_preferences(self, user_id: str) -> Preferences | None:
        with unavailable_errors(self, WHAT):
            doc = await self._prefs.find_one({"_id": user_id})
        return None if doc is None else prefs_from_json(doc["prefs"])

    async def set_preferences(self, user_id: str, prefs: Preferences) -> None:
        wire = {"kinds": dict(prefs.kinds), "show_content": prefs.show_content, "digest_email": prefs.digest_email}
        with unavailable_errors(self, WHAT):
            await self._prefs.replace_one({"_id": user_id}, {"_id": user_id, "prefs": wire}, upsert=True)

    # -- the e-mail digest ------------------------------------------------------------------------

    async def add_digest(self, entry: DigestEntry) -> None:
        doc = {"user_id": entry.user_id, "channel": entry.channel, "seq": entry.seq, "kind": entry.kind,
               "added_at": entry.added_at}
        with unavailable_errors(self, WHAT):
            await self._entries.update_one({"_id": _entry_id(entry.user_id, entry.channel, entry.seq)},
                                           {"$setOnInsert": doc}, upsert=True)

    async def add_digests(self, entries: list[DigestEntry]) -> None:
        if not entries:
            return
        writes = [UpdateOne({"_id": _entry_id(e.user_id, e.channel, e.seq)},
                            {"$setOnInsert": {"user_id": e.user_id, "channel": e.channel, "seq": e.seq,
                                              "kind": e.kind, "added_at": e.added_at}}, upsert=True)
                  for e in entries]
        with unavailable_errors(self, WHAT):
            await self._entries.bulk_write(writes, ordered=False)

    async def digest_entries(self, user_id: str) -> list[DigestEntry]:
        with unavailable_errors(self, WHAT):
            docs = await self._entries.find({"user_id": user_id}).sort(
                [("added_at", ASCENDING), ("channel", ASCENDING), ("seq", ASCENDING)]).to_list()
        return [DigestEntry(d["user_id"], d["channel"], d["seq"], d["kind"], d["added_at"]) for d in docs]

    async def digest_users(self, now: float, limit: int, after: str = "") -> list[str]:
        found: list[str] = []
        with unavailable_errors(self, WHAT):
            while len(found) < limit:
                cursor = await self._entries.aggregate([
                    {"$match": {"user_id": {"$gt": after}}}, {"$group": {"_id": "$user_id"}},
                    {"$sort": {"_id": 1}}, {"$limit": limit}])
                page = await cursor.to_list()
                users = [d["_id"] for d in page]
                if not users:
                    break
                waiting = {d["_id"] for d in await self._state.find(
                    {"_id": {"$in": users}, "next_at": {"$gt": now}}, {"_id": True}).to_list()}
                found += [u for u in users if u not in waiting]
                after = users[-1]
        return found[:limit]

    async def claim_digest(self, user_id: str, now: float, lease: float) -> bool:
        with unavailable_errors(self, WHAT):
            try:
                result = await self._state.update_one({"_id": user_id, "next_at": {"$lte": now}},
                                                      {"$set": {"next_at": now + lease}}, upsert=True)
            except DuplicateKeyError:  # the state exists and next_at > now, or another insert won
                return False
        return result.matched_count == 1 or result.upserted_id is not None

    async def finish_digest(self, user_id: str, done: list[tuple[str, int]], next_at: float) -> None:
        with unavailable_errors(self, WHAT):
            if done:
                await self._entries.delete_many({"_id": {"$in": [_entry_id(user_id, c, s) for c, s in done]}})
            await self._state.replace_one({"_id": user_id}, {"_id": user_id, "next_at": next_at}, upsert=True)

    # -- scheduled posts ----------------------------------------------------------------------------

    async def add_scheduled(self, post: ScheduledPost) -> ScheduledPost:
        doc = {"_id": post.id, "author_id": post.author_id, "channel": post.channel, "kind": post.kind,
               "data": post.data, "at": post.at, "created_at": post.created_at, "state": post.state,
               "claimed_until": post.claimed_until, "attempts": post.attempts, "seq": post.seq}
        with unavailable_errors(self, WHAT):
            try:
                await self._scheduled.insert_one(doc)
            except DuplicateKeyError:
                stored = await self._scheduled.find_one({"_id": post.id})
                if stored is None:  # inserted and removed in between: erased meanwhile
                    raise
                return _scheduled(stored)
        return post

    async def get_scheduled(self, post_id: str) -> ScheduledPost | None:
        with unavailable_errors(self, WHAT):
            doc = await self._scheduled.find_one({"_id": post_id})
        return None if doc is None else _scheduled(doc)

    async def scheduled_of(self, author_id: str) -> list[ScheduledPost]:
        with unavailable_errors(self, WHAT):
            docs = await self._scheduled.find({"author_id": author_id, "state": "pending"}).sort(
                [("at", ASCENDING), ("_id", ASCENDING)]).to_list()
        return [_scheduled(d) for d in docs]

    async def cancel_scheduled(self, post_id: str, author_id: str, now: float) -> bool:
        with unavailable_errors(self, WHAT):
            result = await self._scheduled.update_one(
                {"_id": post_id, "author_id": author_id, "state": "pending", "claimed_until": {"$lte": now}},
                {"$set": {"state": "cancelled"}})
        return result.matched_count == 1

    async def claim_due(self, now: float, lease: float, limit: int) -> list[ScheduledPost]:
        claimed: list[ScheduledPost] = []
        query = {"state": "pending", "at": {"$lte": now}, "claimed_until": {"$lte": now}}
        with unavailable_errors(self, WHAT):
            while len(claimed) < limit:
                doc = await self._scheduled.find_one_and_update(
                    query, {"$set": {"claimed_until": now + lease}, "$inc": {"attempts": 1}},
                    sort=[("at", ASCENDING), ("_id", ASCENDING)], return_document=ReturnDocument.AFTER)
                if doc is None:
                    break
                claimed.append(_scheduled(doc))
        return claimed

    async def mark_published(self, post_id: str, seq: int | None) -> None:
        with unavailable_errors(self, WHAT):
            await self._scheduled.update_one(
                {"_id": post_id, "state": "pending"},
                {"$set": {"state": "published" if seq is not None else "dropped", "seq": seq}})

    # -- privacy ------------------------------------------------------------------------------------

    async def erase_person(self, user_id: str, *, dry_run: bool) -> int:
        targets: list[tuple[Collection, Doc]] = [
            (self._prefs, {"_id": user_id}),
            (self._entries, {"user_id": user_id}),
            (self._state, {"_id": user_id}),
            (self._scheduled, {"author_id": user_id, "state": "pending"}),
        ]
        total = 0
        with unavailable_errors(self, WHAT):
            for collection, query in targets:
                if dry_run:
                    total += await collection.count_documents(query)
                else:
                    total += (await collection.delete_many(query)).deleted_count
        return total
