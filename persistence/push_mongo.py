"""`MongoPushStore`: the `PushStore` on MongoDB, collections `push_keys`, `push_subscriptions`
(unique `endpoint`), `push_sent` and `notify_outcomes` (their `_id` the record's key, so the
insert-if-absent steps are one insert and its duplicate key error)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors
from persistence.push_store import OUTCOMES, Outcome, PushSubscription

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]
WHAT = "the MongoDB push store"


def _sub(doc: Doc) -> PushSubscription:
    return PushSubscription(doc["_id"], doc["user_id"], doc.get("session_id"), doc["endpoint"], doc["p256dh"],
                            doc["auth"], doc["created_at"])


class MongoPushStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._keys: Collection = db.get_collection("push_keys")
        self._subs: Collection = db.get_collection("push_subscriptions")
        self._sent: Collection = db.get_collection("push_sent")
        self._outcomes: Collection = db.get_collection("notify_outcomes")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, WHAT):
            await self._subs.create_indexes([IndexModel([("endpoint", ASCENDING)], unique=True, name="endpoint"),
                                             IndexModel([("user_id", ASCENDING)], name="user_id")])
            await self._outcomes.create_indexes([IndexModel([("channel", ASCENDING), ("seq", ASCENDING)],
                                                            name="message")])

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def _insert_new(self, collection: Collection, doc: Doc) -> bool:
        with unavailable_errors(self, WHAT):
            try:
                await collection.insert_one(doc)
            except DuplicateKeyError:
                return False
        return True

    async def vapid_key(self, candidate: str) -> str:
        await self._insert_new(self._keys, {"_id": "vapid", "value": candidate})
        with unavailable_errors(self, WHAT):
            doc = await self._keys.find_one({"_id": "vapid"})
        return str(doc["value"]) if doc else candidate

    async def add_subscription(self, sub: PushSubscription) -> str:
        owner = {"user_id": sub.user_id, "session_id": sub.session_id, "p256dh": sub.p256dh, "auth": sub.auth}
        with unavailable_errors(self, WHAT):
            for _ in range(2):  # a concurrent insert of the same endpoint: read it back
                found = await self._subs.find_one_and_update({"endpoint": sub.endpoint}, {"$set": owner},
                                                             return_document=ReturnDocument.AFTER)
                if found is not None:
                    return str(found["_id"])
                try:
                    await self._subs.insert_one({"_id": sub.id, "endpoint": sub.endpoint,
                                                 "created_at": sub.created_at, **owner})
                    return sub.id
                except DuplicateKeyError:
                    continue
        return sub.id

    async def subscription(self, subscription_id: str) -> PushSubscription | None:
        with unavailable_errors(self, WHAT):
            doc = await self._subs.find_one({"_id": subscription_id})
        return None if doc is None else _sub(doc)

    async def subscriptions_of(self, user_ids: list[str]) -> dict[str, list[PushSubscription]]:
        found: dict[str, list[PushSubscription]] = {}
        with unavailable_errors(self, WHAT):
            async for doc in self._subs.find({"user_id": {"$in": list(set(user_ids))}}).sort(
                    [("created_at", ASCENDING), ("_id", ASCENDING)]):
                found.setdefault(doc["user_id"], []).append(_sub(doc))
        return found

    async def remove_subscription(self, subscription_id: str, user_id: str | None = None) -> bool:
        query: Doc = {"_id": subscription_id}
        if user_id is not None:
            query["user_id"] = user_id
        with unavailable_errors(self, WHAT):
            return (await self._subs.delete_one(query)).deleted_count == 1

    async def remove_subscriptions_of(self, user_id: str) -> int:
        with unavailable_errors(self, WHAT):
            return (await self._subs.delete_many({"user_id": user_id})).deleted_count

    async def mark_sent(self, channel: str, seq: int, subscription_id: str) -> bool:
        return await self._insert_new(self._sent, {"_id": f"{channel}|{seq}|{subscription_id}"})

    async def was_sent(self, channel: str, seq: int, subscription_id: str) -> bool:
        with unavailable_errors(self, WHAT):
            return await self._sent.find_one({"_id": f"{channel}|{seq}|{subscription_id}"}) is not None

    async def count(self, channel: str, seq: int, user_id: str, outcome: Outcome) -> bool:
        return await self._insert_new(self._outcomes, {"_id": f"{channel}|{seq}|{outcome}|{user_id}",
                                                       "channel": channel, "seq": seq, "outcome": outcome})

    async def count_many(self, channel: str, seq: int, user_ids: list[str], outcome: Outcome) -> int:
        if not user_ids:
            return 0
        writes = [UpdateOne({"_id": f"{channel}|{seq}|{outcome}|{u}"},
                            {"$setOnInsert": {"channel": channel, "seq": seq, "outcome": outcome}}, upsert=True)
                  for u in user_ids]
        with unavailable_errors(self, WHAT):
            result = await self._outcomes.bulk_write(writes, ordered=False)
        return int(result.upserted_count)

    async def report(self, channel: str, seq: int) -> dict[str, int]:
        counts: dict[str, int] = {outcome: 0 for outcome in OUTCOMES}
        with unavailable_errors(self, WHAT):
            async for row in await self._outcomes.aggregate([{"$match": {"channel": channel, "seq": seq}},
                                                             {"$group": {"_id": "$outcome", "n": {"$sum": 1}}}]):
                counts[row["_id"]] = int(row["n"])
        return counts
