"""`MongoStore`: the production `Store` on MongoDB, through PyMongo's native async API.

Sequence allocation: optimistic inserts, no counter document.

`append` reads the channel's latest `seq` (the last entry of the unique index
`{channel: 1, seq: 1}`) and inserts the message with `seq = latest + 1`. When another
gateway took that `seq` first, the insert fails with a duplicate key error and the
append reads the latest `seq` again and retries. The insert *is* the allocation: a
`seq` exists exactly when its message exists, so no failure at any point can leave a
hole, and no transaction is needed.

Rejected alternatives:
- A `counters` document bumped with `find_one_and_update({$inc})`, then an insert: a
  crash, a timeout or a failed insert between the two burns the number and leaves a
  hole that every client would wait for forever.
- The same two writes in a multi-document transaction: no holes, but every append to
  a busy channel conflicts on the counter document (`WriteConflict` aborts and
  retries), it costs a transaction per message, and it needs a replica set even in
  development.

Within one gateway process, appends to the same channel wait on an `asyncio.Lock`,
so retries only happen when two processes publish to one channel at the same moment.

Idempotency: a partial unique index on `{channel, author.id, key}` (only documents
with a string `key`). On a duplicate key error the append looks the key up: when the
original is there it is returned with `created=False`; otherwise the conflict was on
`seq` and the append retries.

Consistency: messages are written with write concern "majority" (an acknowledged
message survives a failover) and read with read concern "majority", so no reader ever
sees a message that a failover could roll back and a later message could replace
under the same `seq`. The allocation itself reads the latest `seq` with "local" so it
sees inserts that are not yet majority-committed.

Operators: see docs/mongodb.md (collections, indexes, shard keys, write concern).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, DeleteMany, ReplaceOne, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError, InvalidOperation, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from persistence.store import Appended, DirectoryItem, Recovery, StoreUnavailable
from school.directory import Chat, Directory, Person, Role, School, SchoolClass, Student
from school.messages import Author, Draft, JSONDict, Message, published

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]

DIRECTORY_COLLECTIONS = ("schools", "people", "classes", "students", "chats")
_MAX_ATTEMPTS = 100  # appends losing the race to other processes before giving up
_SELECTION_TIMEOUT_MS = 5000  # unless the URL says otherwise
_NO_ID = {"_id": False}


@contextmanager
def _unavailable(store: MongoStore) -> Iterator[None]:
    """Map "cannot reach the deployment" and every timeout (server selection, network,
    `timeoutMS`, write concern) to `StoreUnavailable`; other errors are bugs and propagate."""
    if store.closed:
        raise StoreUnavailable("the MongoDB store is closed")
    try:
        yield
    except InvalidOperation as exc:
        if store.closed:  # an operation that raced with close()
            raise StoreUnavailable("the MongoDB store is closed") from exc
        raise
    except PyMongoError as exc:
        if isinstance(exc, ConnectionFailure) or exc.timeout:
            raise StoreUnavailable(f"MongoDB: {exc}") from exc
        raise


class MongoStore:
    def __init__(self, url: str, database: str = "liaison") -> None:
        options: dict[str, Any] = {}
        if "serverselectiontimeoutms" not in url.lower():
            options["serverSelectionTimeoutMS"] = _SELECTION_TIMEOUT_MS
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(url, **options)
        # Always the primary, whatever the URL says: a secondary may lag behind an
        # acknowledged append, and reads must see every append that completed.
        db = self._client.get_database(database, read_preference=ReadPreference.PRIMARY)
        majority = WriteConcern("majority")
        # Two views of `messages`: writes and seq allocation ("local": sees inserts not yet
        # majority-committed), and every other read ("majority": never rolled back).
        self._messages: Collection = db.get_collection(
            "messages", write_concern=majority, read_concern=ReadConcern("local")
        )
        self._committed: Collection = db.get_collection(
            "messages", read_concern=ReadConcern("majority")
        )
        self._read_marks: Collection = db.get_collection("read_marks")
        self._meta: Collection = db.get_collection("meta")
        self._directory: dict[str, Collection] = {
            name: db.get_collection(name, write_concern=majority) for name in DIRECTORY_COLLECTIONS
        }
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._transactions = False
        self.closed = False

    # -- lifecycle ------------------------------------------------------------

    async def open(self) -> None:
        with _unavailable(self):
            await self._create_indexes()
            hello = await self._client.admin.command("hello")
        # Multi-document transactions need a replica set or a sharded cluster.
        self._transactions = "setName" in hello or hello.get("msg") == "isdbgrid"

    async def _create_indexes(self) -> None:
        await self._messages.create_index(
            [("channel", ASCENDING), ("seq", ASCENDING)], unique=True, name="channel_seq"
        )
        await self._messages.create_index(
            [("channel", ASCENDING), ("author.id", ASCENDING), ("key", ASCENDING)],
            unique=True,
            name="channel_author_key",
            partialFilterExpression={"key": {"$type": "string"}},
        )
        await self._read_marks.create_index(
            [("user_id", ASCENDING), ("channel", ASCENDING)], unique=True, name="user_channel"
        )
        await self._messages.create_index(
            [("channel", ASCENDING), ("edited", ASCENDING)],
            name="channel_edited",
            partialFilterExpression={"edited": {"$type": "number"}},
        )

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def ping(self) -> None:
        with _unavailable(self):
            await self._client.admin.command("ping")

    # -- messages -------------------------------------------------------------

    def _channel_lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    async def append(self, draft: Draft) -> Appended:
        with _unavailable(self):
            async with self._channel_lock(draft.channel):
                for _ in range(_MAX_ATTEMPTS):
                    seq = await _latest(self._messages, draft.channel) + 1
                    try:
                        await self._messages.insert_one(_draft_doc(draft, seq))
                    except DuplicateKeyError:
                        original = await self._by_key(draft)
                        if original is not None:
                            return Appended(original, created=False)
                        continue
                    return Appended(published(draft, seq), created=True)
        raise StoreUnavailable(f"too many concurrent appends to {draft.channel}; try again")

    async def _by_key(self, draft: Draft) -> Message | None:
        if draft.key is None:
            return None
        # `$type` repeats the partial index's filter, so that the index can serve the query.
        key = {"$eq": draft.key, "$type": "string"}
        doc = await self._messages.find_one(
            {"channel": draft.channel, "author.id": draft.author.id, "key": key}, _NO_ID
        )
        return None if doc is None else _message(doc)

    async def latest_seqs(self, channels: Iterable[str]) -> dict[str, int]:
        names = list(dict.fromkeys(channels))
        with _unavailable(self):
            seqs = await asyncio.gather(*(_latest(self._committed, n) for n in names))
        return dict(zip(names, seqs, strict=True))

    async def recover(self, channel: str, since: int, cap: int) -> Recovery:
        cap = max(cap, 0)
        with _unavailable(self):
            latest = await _latest(self._committed, channel)
            docs = await self._newest(
                {"channel": channel, "seq": {"$gt": since, "$lte": latest}}, cap + 1
            )
        messages = [_message(d) for d in reversed(docs[:cap])]
        return Recovery(messages, latest, complete=len(docs) <= cap)

    async def recover_many(self, since: Mapping[str, int], cap: int) -> dict[str, Recovery]:
        return {channel: await self.recover(channel, after, cap) for channel, after in since.items()}

    async def history(
        self, channel: str, before: int | None, limit: int
    ) -> tuple[list[Message], bool]:
        limit = max(limit, 0)
        query: Doc = {"channel": channel}
        if before is not None:
            query["seq"] = {"$lt": before}
        with _unavailable(self):
            docs = await self._newest(query, limit + 1)
        return [_message(d) for d in reversed(docs[:limit])], len(docs) > limit

    async def _newest(self, query: Doc, count: int) -> list[Doc]:
        cursor = self._committed.find(query, projection=_NO_ID)
        return await cursor.sort("seq", DESCENDING).limit(count).to_list()

    async def get(self, channel: str, seq: int) -> Message | None:
        with _unavailable(self):
            doc = await self._committed.find_one({"channel": channel, "seq": seq}, _NO_ID)
        return None if doc is None else _message(doc)

    async def range(self, channel: str, after: int, upto: int) -> list[Message]:
        query = {"channel": channel, "seq": {"$gt": after, "$lte": upto}}
        with _unavailable(self):
            docs = await self._committed.find(query, _NO_ID).sort("seq", ASCENDING).to_list()
        return [_message(d) for d in docs]

    async def updates(self, upto: Mapping[str, int], after_ts: int) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {}
        with _unavailable(self):
            for channel, last in upto.items():
                query = {"channel": channel, "edited": {"$gte": after_ts}, "seq": {"$lte": last}}
                docs = await self._committed.find(query, _NO_ID).sort("seq", ASCENDING).to_list()
                out[channel] = [_message(d) for d in docs]
        return out

    async def edit(self, channel: str, seq: int, data: JSONDict, ts: int) -> Message | None:
        with _unavailable(self):
            doc = await self._messages.find_one_and_update(
                {"channel": channel, "seq": seq, "deleted": False},
                {"$set": {"data": data, "edited": ts}},
                projection=_NO_ID,
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else _message(doc)

    async def delete(self, channel: str, seq: int, ts: int) -> Message | None:
        where = {"channel": channel, "seq": seq}
        with _unavailable(self):
            doc = await self._messages.find_one_and_update(
                {**where, "deleted": False},
                {"$set": {"deleted": True, "data": {}, "edited": ts}},
                projection=_NO_ID,
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:  # missing, or deleted already
                doc = await self._messages.find_one(where, _NO_ID)
        return None if doc is None else _message(doc)

    # -- read marks -----------------------------------------------------------

    async def mark_read(self, user_id: str, channel: str, seq: int) -> int:
        where = {"user_id": user_id, "channel": channel}
        with _unavailable(self):
            for _ in range(2):  # two first marks racing: one upsert loses, then matches
                try:
                    before = await self._read_marks.find_one_and_update(
                        where,
                        {"$max": {"seq": seq}},
                        projection=_NO_ID,
                        upsert=True,
                        return_document=ReturnDocument.BEFORE,
                    )
                except DuplicateKeyError:
                    continue
                return 0 if before is None else int(before["seq"])
        raise StoreUnavailable(f"could not record the read mark of {user_id} in {channel}")

    async def read_marks(self, channel: str, user_ids: Iterable[str]) -> dict[str, int]:
        users = list(dict.fromkeys(user_ids))
        marks = dict.fromkeys(users, 0)
        with _unavailable(self):
            cursor = self._read_marks.find({"channel": channel, "user_id": {"$in": users}})
            async for doc in cursor:
                marks[doc["user_id"]] = int(doc["seq"])
        return marks

    async def user_read_marks(self, user_id: str) -> dict[str, int]:
        with _unavailable(self):
            docs = await self._read_marks.find({"user_id": user_id}).to_list()
        return {d["channel"]: int(d["seq"]) for d in docs}

    # -- directory ------------------------------------------------------------

    async def load_directory(self) -> Directory:
        with _unavailable(self):
            docs = {
                name: await coll.find({}).sort("_id", ASCENDING).to_list()
                for name, coll in self._directory.items()
            }
        return _directory(docs)

    async def directory_version(self) -> int:
        with _unavailable(self):
            doc = await self._meta.find_one({"_id": "directory_version"})
        return 0 if doc is None else int(doc["value"])

    async def touch_directory(self) -> int:
        with _unavailable(self):
            doc = await self._meta.find_one_and_update(
                {"_id": "directory_version"}, {"$inc": {"value": 1}}, upsert=True,
                return_document=ReturnDocument.AFTER)
        return 0 if doc is None else int(doc["value"])

    async def save_directory(
        self, upserts: Iterable[DirectoryItem], deletions: Mapping[str, Iterable[str]] | None = None
    ) -> None:
        """Upserts first, then deletions (an id in both ends up deleted), in one transaction
        on a replica set or sharded cluster; a standalone server (development only) has no
        transactions and gets the same writes one collection after the other."""
        batches = _directory_batches(upserts, deletions)

        async def apply(session: AsyncClientSession | None) -> None:
            for name, requests in batches.items():
                await self._directory[name].bulk_write(requests, session=session)

        with _unavailable(self):
            if not self._transactions:
                await apply(None)
                return
            async with self._client.start_session() as session:
                await session.with_transaction(apply, write_concern=WriteConcern("majority"))


# -- helpers ----------------------------------------------------------------------


async def _latest(collection: Collection, channel: str) -> int:
    doc = await collection.find_one(
        {"channel": channel}, {"seq": True, "_id": False}, sort=[("seq", DESCENDING)]
    )
    return 0 if doc is None else int(doc["seq"])


def _draft_doc(draft: Draft, seq: int) -> Doc:
    doc: Doc = {
        "channel": draft.channel,
        "seq": seq,
        "id": draft.id,
        "ts": draft.ts,
        "author": draft.author.to_wire(),
        "kind": draft.kind,
        "data": draft.data,
        "edited": None,
        "deleted": False,
    }
    if draft.key is not None:
        doc["key"] = draft.key
    return doc


def _message(doc: Mapping[str, Any]) -> Message:
    return Message(
        channel=doc["channel"],
        seq=int(doc["seq"]),
        id=doc["id"],
        ts=int(doc["ts"]),
        author=Author.from_wire(doc["author"]),
        kind=doc["kind"],
        data=dict(doc["data"]),
        edited=doc.get("edited"),
        deleted=bool(doc.get("deleted", False)),
    )


def _directory_doc(item: DirectoryItem) -> tuple[str, Doc]:
    """The collection and the document of one directory entity (`_id` is its id)."""
    match item:
        case School():
            fields: Doc = {
                "name": item.name,
                "year": item.year,
                "guardians_start_chats": item.guardians_start_chats,
            }
            return "schools", {"_id": item.id, **fields}
        case Person():
            fields = {
                "school_id": item.school_id,
                "name": item.name,
                "role": item.role.value,
                "email": item.email,
                "phone": item.phone,
            }
            return "people", {"_id": item.id, **fields}
        case SchoolClass():
            fields = {"school_id": item.school_id, "name": item.name, "teachers": [*item.teachers]}
            return "classes", {"_id": item.id, **fields}
        case Student():
            fields = {
                "school_id": item.school_id,
                "class_id": item.class_id,
                "name": item.name,
                "guardians": [*item.guardians],
            }
            return "students", {"_id": item.id, **fields}
        case Chat():
            fields = {
                "school_id": item.school_id,
                "student_id": item.student_id,
                "staff_id": item.staff_id,
            }
            return "chats", {"_id": item.id, **fields}
    raise TypeError(f"not a directory entity: {item!r}")


WriteRequest = ReplaceOne[Doc] | DeleteMany


def _directory_batches(
    upserts: Iterable[DirectoryItem], deletions: Mapping[str, Iterable[str]] | None
) -> dict[str, list[WriteRequest]]:
    batches: dict[str, list[WriteRequest]] = {name: [] for name in DIRECTORY_COLLECTIONS}
    for item in upserts:
        name, doc = _directory_doc(item)
        batches[name].append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
    for name, ids in (deletions or {}).items():
        if name not in batches:
            accepted = ", ".join(DIRECTORY_COLLECTIONS)
            raise ValueError(f"unknown directory deletion key {name!r}; accepted: {accepted}")
        if isinstance(ids, str):
            raise TypeError(f"directory deletions[{name!r}] must be a collection of ids, not a str")
        batches[name].append(DeleteMany({"_id": {"$in": list(ids)}}))
    return {name: requests for name, requests in batches.items() if requests}


def _school(d: Doc) -> School:
    return School(d["_id"], d["name"], d["year"], bool(d["guardians_start_chats"]))


def _person(d: Doc) -> Person:
    return Person(
        d["_id"], d["school_id"], d["name"], Role(d["role"]), d.get("email"), d.get("phone")
    )


def _class(d: Doc) -> SchoolClass:
    return SchoolClass(d["_id"], d["school_id"], d["name"], tuple(d["teachers"]))


def _student(d: Doc) -> Student:
    return Student(d["_id"], d["school_id"], d["class_id"], d["name"], tuple(d["guardians"]))


def _chat(d: Doc) -> Chat:
    return Chat(d["_id"], d["school_id"], d["student_id"], d["staff_id"])


def _directory(docs: Mapping[str, list[Doc]]) -> Directory:
    return Directory(
        schools={d["_id"]: _school(d) for d in docs["schools"]},
        people={d["_id"]: _person(d) for d in docs["people"]},
        classes={d["_id"]: _class(d) for d in docs["classes"]},
        students={d["_id"]: _student(d) for d in docs["students"]},
        chats={d["_id"]: _chat(d) for d in docs["chats"]},
    )
