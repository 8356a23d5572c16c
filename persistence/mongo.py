"""`MongoStore`: the production `Store` on MongoDB, through PyMongo's native async API.

Sequence allocation: one transaction per append, no counter document.

`append` runs, in one multi-document transaction with read concern "snapshot" and
write concern "majority": look the idempotency key up, read the channel's latest
`seq` (the last entry of the unique index `{channel: 1, seq: 1}`), insert the message
with `seq = latest + 1`. A transaction that commits with "majority" read a snapshot of
majority-committed data, so the `seq` it builds on cannot be rolled back by a failover
while its own message survives: no hole. A transaction that does not commit wrote
nothing, so no number is burnt. When another gateway took the `seq` (or the key) first,
the transaction fails with a write conflict (retried by `with_transaction`) or a
duplicate key error (the append looks the key up in the majority view and returns the
original, or tries again). A commit whose outcome is unknown is retried by the driver
(`commitTransaction` is idempotent). Within one gateway process, appends to the same
channel wait on an `asyncio.Lock`, so conflicts only happen between processes.

A standalone server (development only) has no transactions: there the append reads the
latest `seq` and inserts optimistically, retrying on a duplicate key.

Rejected alternatives:
- A `counters` document bumped with `find_one_and_update({$inc})`, then an insert: a
  crash, a timeout or a failed insert between the two burns the number and leaves a
  hole that every client would wait for forever.
- The read with read concern "local" and a plain insert (this adapter's first design):
  the read may see an insert that a failover then rolls back, and a retried insert may
  land on a new primary that never saw its predecessor: a permanent hole.

Deadlines: the client gets `timeoutMS` (default `op_timeout`, 3 s) unless the URL sets
one, so no operation waits forever (a majority write without a majority used to wait
forever while holding its channel's lock); an append's wait for that lock counts in
the same deadline. Every "try again later" error becomes `StoreUnavailable`: see
`is_unavailable`.

Readiness: `ping` makes a majority-acknowledged write (to `meta`), so a deployment that
answers reads but cannot take writes is not ready.

Operators: see docs/mongodb.md (collections, indexes, shard keys, concerns, failures).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import dns.exception
import pymongo
from pymongo import (
    ASCENDING,
    DESCENDING,
    AsyncMongoClient,
    DeleteMany,
    IndexModel,
    ReplaceOne,
    ReturnDocument,
)
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)
from pymongo.read_concern import ReadConcern
from pymongo.read_preferences import ReadPreference
from pymongo.write_concern import WriteConcern

from persistence.store import Appended, DirectoryItem, Recovery, StoreUnavailable, envelope_bytes
from school.directory import Chat, Directory, Person, Role, School, SchoolClass, Student
from school.messages import Author, Draft, JSONDict, Message, published

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]

DIRECTORY_COLLECTIONS = ("schools", "people", "classes", "students", "chats")
_MAX_ATTEMPTS = 100  # appends losing the race to other processes before giving up
_SELECTION_TIMEOUT_MS = 5000  # unless the URL says otherwise
DEFAULT_OP_TIMEOUT = 3.0  # seconds: `timeoutMS` unless the URL says otherwise
APPNAME = "liaison"  # in the server's logs, currentOp and profiler: who is connected
_NO_ID = {"_id": False}

# Error labels and server codes that mean "try again shortly": the deployment is
# electing a primary, shutting down, unreachable or slow. From the SDAM, retryable
# writes and transactions specifications.
UNAVAILABLE_LABELS = frozenset(
    {"RetryableWriteError", "TransientTransactionError", "UnknownTransactionCommitResult"}
)
NOT_PRIMARY_CODES = frozenset(
    {
        10058,  # LegacyNotPrimary
        10107,  # NotWritablePrimary
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
        11602,  # InterruptedDueToReplStateChange
        189,  # PrimarySteppedDown
        11600,  # InterruptedAtShutdown
        91,  # ShutdownInProgress
    }
)
UNAVAILABLE_CODES = NOT_PRIMARY_CODES | frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        24,  # LockTimeout
        50,  # MaxTimeMSExpired
        64,  # WriteConcernFailed (wtimeout)
        89,  # NetworkTimeout
        112,  # WriteConflict
        133,  # FailedToSatisfyReadPreference
        134,  # ReadConcernMajorityNotAvailableYet
        202,  # NetworkInterfaceExceededTimeLimit
        239,  # SnapshotTooOld
        262,  # ExceededTimeLimit
        9001,  # SocketException
    }
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether a PyMongo error means "the store cannot serve this now, try again shortly"
    (`StoreUnavailable`) rather than a bug (a bad query, a failed index build...)."""
    if not isinstance(exc, PyMongoError):
        return False
    if isinstance(exc, ConnectionFailure) or exc.timeout:
        return True  # network errors, not-primary replies, every timeout (timeoutMS...)
    if any(exc.has_error_label(label) for label in UNAVAILABLE_LABELS):
        return True
    if isinstance(exc, ConfigurationError):  # a failed SRV/TXT lookup of mongodb+srv://
        return _caused_by_dns(exc)
    if isinstance(exc, BulkWriteError):
        details = exc.details or {}
        codes = [e.get("code") for e in details.get("writeConcernErrors", [])]
        codes += [e.get("code") for e in details.get("writeErrors", [])]
        return any(code in UNAVAILABLE_CODES for code in codes)
    return isinstance(exc, OperationFailure) and exc.code in UNAVAILABLE_CODES


def _caused_by_dns(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, dns.exception.DNSException):
            return True
        cause = cause.__cause__
    return False


def url_options(url: str) -> set[str]:
    """The option names a MongoDB URL sets, lower-cased (options are case-insensitive)."""
    return {name.lower() for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}


def client_options(url: str, op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> dict[str, Any]:
    """The adapter's defaults for what the URL leaves unset."""
    given = url_options(url)
    options: dict[str, Any] = {}
    if "serverselectiontimeoutms" not in given:
        options["serverSelectionTimeoutMS"] = _SELECTION_TIMEOUT_MS
    if "timeoutms" not in given and op_timeout is not None:
        options["timeoutMS"] = int(op_timeout * 1000)
    if "appname" not in given:
        options["appname"] = APPNAME
    return options


def open_database(url: str, database: str, op_timeout: float | None = DEFAULT_OP_TIMEOUT
                  ) -> tuple[AsyncMongoClient[Doc], AsyncDatabase[Doc]]:
    """A client with `client_options` and its database, always read on the primary and written
    with majority: what the stores beside the messages (sign-in, audit, privacy, board,
    notifications, push, jobs, uploads, files) each open."""
    client: AsyncMongoClient[Doc] = AsyncMongoClient(url, **client_options(url, op_timeout))
    return client, client.get_database(database, read_preference=ReadPreference.PRIMARY,
                                       write_concern=WriteConcern("majority"))


MESSAGE_INDEXES = [
    IndexModel([("channel", ASCENDING), ("seq", ASCENDING)], unique=True, name="channel_seq"),
    IndexModel(
        [("channel", ASCENDING), ("author.id", ASCENDING), ("key", ASCENDING)],
        unique=True,
        name="channel_author_key",
        partialFilterExpression={"key": {"$type": "string"}},
    ),
    IndexModel(
        [("channel", ASCENDING), ("edited", ASCENDING)],
        name="channel_edited",
        partialFilterExpression={"edited": {"$type": "number"}},
    ),
    IndexModel([("author.id", ASCENDING)], name="author"),  # a person's messages (issue 15)
]
READ_MARK_INDEXES = [
    IndexModel([("user_id", ASCENDING), ("channel", ASCENDING)], unique=True, name="user_channel"),
]


def key_query(draft: Draft) -> Doc:
    """The message with the draft's idempotency key. `$type` repeats the partial index's
    filter (`{key: {$type: "string"}}`): without it the index cannot serve the query."""
    key = {"$eq": draft.key, "$type": "string"}
    return {"channel": draft.channel, "author.id": draft.author.id, "key": key}


def updates_query(channel: str, upto: int, after_ts: int) -> Doc:
    """Messages of a channel up to `upto` edited or deleted at or after `after_ts`.
    `$type` repeats the partial index's filter (`{edited: {$type: "number"}}`), so that
    `channel_edited` serves it; without it MongoDB cannot prove the query is within the
    partial index and scans the channel."""
    return {
        "channel": channel,
        "edited": {"$gte": after_ts, "$type": "number"},
        "seq": {"$lte": upto},
    }


class Closable(Protocol):
    closed: bool


@contextmanager
def unavailable_errors(store: Closable, what: str = "the MongoDB store") -> Iterator[None]:
    """Map "cannot serve this now" (`is_unavailable`) to `StoreUnavailable`; other errors
    are bugs and propagate. Shared by the message store and the auth store."""
    if store.closed:
        raise StoreUnavailable(f"{what} is closed")
    try:
        yield
    except InvalidOperation as exc:
        if store.closed:  # an operation that raced with close()
            raise StoreUnavailable(f"{what} is closed") from exc
        raise
    except PyMongoError as exc:
        if is_unavailable(exc):
            raise StoreUnavailable(f"MongoDB: {exc}") from exc
        raise


class MongoStore:
    def __init__(
        self, url: str, database: str = "liaison", *, op_timeout: float | None = DEFAULT_OP_TIMEOUT
    ) -> None:
        """`op_timeout`: seconds, the client's `timeoutMS` unless the URL sets one, and the
        deadline of an append, its wait for the channel's lock included."""
        options = client_options(url, op_timeout)
        self._client: AsyncMongoClient[Doc] = AsyncMongoClient(url, **options)
        self._op_timeout: float | None = self._client.options.timeout  # the URL's, or ours
        # Always the primary, whatever the URL says: a secondary may lag behind an
        # acknowledged append, and reads must see every append that completed.
        db = self._client.get_database(database, read_preference=ReadPreference.PRIMARY)
        majority = WriteConcern("majority")
        # Two views of `messages`: writes (and, on a standalone server, the optimistic
        # allocation, "local"), and every other read ("majority": never rolled back). In
        # a transaction the transaction's concerns (snapshot, majority) apply instead.
        self._messages: Collection = db.get_collection(
            "messages", write_concern=majority, read_concern=ReadConcern("local")
        )
        self._committed: Collection = db.get_collection(
            "messages", read_concern=ReadConcern("majority")
        )
        self._read_marks: Collection = db.get_collection("read_marks")
        self._meta: Collection = db.get_collection("meta", write_concern=majority)
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
        with unavailable_errors(self):
            await self._create_indexes()
            hello = await self._client.admin.command("hello")
        # Multi-document transactions need a replica set or a sharded cluster.
        self._transactions = "setName" in hello or hello.get("msg") == "isdbgrid"

    async def _create_indexes(self) -> None:
        await self._messages.create_indexes(MESSAGE_INDEXES)
        await self._read_marks.create_indexes(READ_MARK_INDEXES)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    async def ping(self) -> None:
        """Ready when a write is acknowledged by a majority: a primary is there, a majority
        of members replicates, and within `timeoutMS`. (A `ping` command would answer
        from a deployment that cannot take a single write.)"""
        with unavailable_errors(self):
            await self._meta.update_one(
                {"_id": "write_probe"}, {"$inc": {"value": 1}}, upsert=True
            )

    # -- messages -------------------------------------------------------------

    def _channel_lock(self, channel: str) -> asyncio.Lock:
        lock = self._locks.get(channel)
        if lock is None:
            lock = self._locks[channel] = asyncio.Lock()
        return lock

    async def append(self, draft: Draft) -> Appended:
        deadline = nullcontext() if self._op_timeout is None else pymongo.timeout(self._op_timeout)
        with unavailable_errors(self), deadline:  # one deadline: the lock's wait and the writes
            lock = self._channel_lock(draft.channel)
            if not await _acquire(lock, self._op_timeout):
                raise StoreUnavailable(
                    f"appends to {draft.channel} are stuck: no lock within {self._op_timeout} s"
                )
            try:
                for _ in range(_MAX_ATTEMPTS):
                    try:
                        if self._transactions:
                            return await self._append_in_transaction(draft)
                        return await self._append_optimistically(draft)
                    except DuplicateKeyError:
                        # Another process took the seq, or stored this key, first.
                        original = await self._by_key(draft)
                        if original is not None:
                            return Appended(original, created=False)
            finally:
                lock.release()
        raise StoreUnavailable(f"too many concurrent appends to {draft.channel}; try again")

    async def _append_in_transaction(self, draft: Draft) -> Appended:
        """Key lookup, latest seq and insert in one snapshot transaction, majority commit."""

        async def attempt(session: AsyncClientSession) -> Appended:
            if draft.key is not None:
                found = await self._messages.find_one(key_query(draft), _NO_ID, session=session)
                if found is not None:
                    return Appended(_message(found), created=False)
            seq = await _latest(self._messages, draft.channel, session) + 1
            await self._messages.insert_one(_draft_doc(draft, seq), session=session)
            return Appended(published(draft, seq), created=True)

        async with self._client.start_session() as session:
            return await session.with_transaction(
                attempt,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
                read_preference=ReadPreference.PRIMARY,
            )

    async def _append_optimistically(self, draft: Draft) -> Appended:
        """Standalone servers (development): no transactions; the unique index arbitrates."""
        seq = await _latest(self._messages, draft.channel) + 1
        await self._messages.insert_one(_draft_doc(draft, seq))
        return Appended(published(draft, seq), created=True)

    async def _by_key(self, draft: Draft) -> Message | None:
        """The original of a repeated key, from the majority view: never a message that a
        failover could still roll back."""
        if draft.key is None:
            return None
        doc = await self._committed.find_one(key_query(draft), _NO_ID)
        return None if doc is None else _message(doc)

    async def latest_seqs(self, channels: Iterable[str]) -> dict[str, int]:
        names = list(dict.fromkeys(channels))
        with unavailable_errors(self):
            seqs = await asyncio.gather(*(_latest(self._committed, n) for n in names))
        return dict(zip(names, seqs, strict=True))

    async def recover(
        self, channel: str, since: int, cap: int, *, max_bytes: int | None = None
    ) -> Recovery:
        return (await self.recover_many({channel: since}, cap, max_bytes=max_bytes))[channel]

    async def recover_many(
        self, since: Mapping[str, int], cap: int, *, max_bytes: int | None = None
    ) -> dict[str, Recovery]:
        cap = max(cap, 0)
        out: dict[str, Recovery] = {}
        budget = max_bytes  # shared by the channels in order (persistence/store.py)
        with unavailable_errors(self):
            for channel, after in since.items():
                latest = await _latest(self._committed, channel)
                query = {"channel": channel, "seq": {"$gt": after, "$lte": latest}}
                docs, more, used = await self._newest(channel, query, cap, budget)
                out[channel] = Recovery([_message(d) for d in reversed(docs)], latest, complete=not more)
                if budget is not None:
                    budget = max(0, budget - used)
        return out

    async def history(
        self, channel: str, before: int | None, limit: int, *, max_bytes: int | None = None
    ) -> tuple[list[Message], bool]:
        limit = max(limit, 0)
        query: Doc = {"channel": channel}
        if before is not None:
            query["seq"] = {"$lt": before}
        with unavailable_errors(self):
            docs, more, _ = await self._newest(channel, query, limit, max_bytes)
        return [_message(d) for d in reversed(docs)], more

    async def _newest(
        self, channel: str, query: Doc, count: int, max_bytes: int | None
    ) -> tuple[list[Doc], bool, int]:
        """The newest `count` documents matching `query`, newest first, cut to `max_bytes` by
        the server (`budget_pipeline`); whether any matching document was left out; the
        budget's bytes used."""
        if max_bytes is None:
            cursor = self._committed.find(query, projection=_NO_ID)
            docs = await cursor.sort("seq", DESCENDING).limit(count + 1).to_list()
            return docs[:count], len(docs) > count, 0
        pipeline = budget_pipeline(query, count + 1, max_bytes, envelope_bytes(channel))
        return kept_within_budget(await (await self._committed.aggregate(pipeline)).to_list(), count)

    async def get(self, channel: str, seq: int) -> Message | None:
        with unavailable_errors(self):
            doc = await self._committed.find_one({"channel": channel, "seq": seq}, _NO_ID)
        return None if doc is None else _message(doc)

    async def range(self, channel: str, after: int, upto: int) -> list[Message]:
        query = {"channel": channel, "seq": {"$gt": after, "$lte": upto}}
        with unavailable_errors(self):
            docs = await self._committed.find(query, _NO_ID).sort("seq", ASCENDING).to_list()
        return [_message(d) for d in docs]

    async def updates(self, upto: Mapping[str, int], after_ts: int) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {}
        with unavailable_errors(self):
            for channel, last in upto.items():
                query = updates_query(channel, last, after_ts)
                docs = await self._committed.find(query, _NO_ID).sort("seq", ASCENDING).to_list()
                out[channel] = [_message(d) for d in docs]
        return out

    async def edit(self, channel: str, seq: int, data: JSONDict, ts: int) -> Message | None:
        with unavailable_errors(self):
            doc = await self._messages.find_one_and_update(
                {"channel": channel, "seq": seq, "deleted": False},
                {"$set": {"data": data, "edited": ts}},
                projection=_NO_ID,
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else _message(doc)

    async def delete(self, channel: str, seq: int, ts: int) -> Message | None:
        where = {"channel": channel, "seq": seq}
        with unavailable_errors(self):
            doc = await self._messages.find_one_and_update(
                {**where, "deleted": False},
                {"$set": {"deleted": True, "data": {}, "edited": ts}},
                projection=_NO_ID,
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:  # missing, or deleted already
                doc = await self._messages.find_one(where, _NO_ID)
        return None if doc is None else _message(doc)

    # -- children's data (issue 15) -------------------------------------------

    async def messages_by(self, author_id: str) -> list[Message]:
        with unavailable_errors(self):
            docs = await self._committed.find({"author.id": author_id}, _NO_ID).sort(
                [("channel", ASCENDING), ("seq", ASCENDING)]).to_list()
        return [_message(d) for d in docs]

    async def redact(self, channel: str, seq: int, ts: int) -> Message | None:
        where = {"channel": channel, "seq": seq}
        changed = {"$or": [{"author.id": {"$ne": ""}}, {"author.name": {"$ne": ""}}, {"deleted": False}]}
        with unavailable_errors(self):
            doc = await self._messages.find_one_and_update(
                {**where, **changed},
                {"$set": {"deleted": True, "data": {}, "edited": ts, "author.id": "", "author.name": ""},
                 "$unset": {"key": ""}},
                projection=_NO_ID,
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:  # missing, or redacted already
                doc = await self._messages.find_one(where, _NO_ID)
        return None if doc is None else _message(doc)

    async def forget_read_marks(self, user_id: str) -> int:
        with unavailable_errors(self):
            return (await self._read_marks.delete_many({"user_id": user_id})).deleted_count

    async def purge_channels(self, channels: Iterable[str], before_ts: int) -> int:
        removed = 0
        with unavailable_errors(self):
            for channel in dict.fromkeys(channels):
                old = {"channel": channel, "ts": {"$lt": before_ts}}
                last = await self._messages.find_one(old, {"seq": True}, sort=[("seq", DESCENDING)])
                if last is None:
                    continue
                tombstone = {"channel": channel, "seq": int(last["seq"])}
                await self._messages.update_one(tombstone, {"$set": {"deleted": True, "data": {}, "author.id": "",
                                                                     "author.name": ""}, "$unset": {"key": ""}})
                old["seq"] = {"$lt": int(last["seq"])}
                removed += (await self._messages.delete_many(old)).deleted_count + 1
                await self._read_marks.delete_many({"channel": channel, "seq": {"$lte": int(last["seq"])}})
        return removed

    # -- read marks -----------------------------------------------------------

    async def mark_read(self, user_id: str, channel: str, seq: int) -> int:
        where = {"user_id": user_id, "channel": channel}
        with unavailable_errors(self):
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
        with unavailable_errors(self):
            cursor = self._read_marks.find({"channel": channel, "user_id": {"$in": users}})
            async for doc in cursor:
                marks[doc["user_id"]] = int(doc["seq"])
        return marks

    async def user_read_marks(self, user_id: str) -> dict[str, int]:
        with unavailable_errors(self):
            docs = await self._read_marks.find({"user_id": user_id}).to_list()
        return {d["channel"]: int(d["seq"]) for d in docs}

    async def read_marks_many(self, channels: Iterable[str], user_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        names, users = list(dict.fromkeys(channels)), list(dict.fromkeys(user_ids))
        out: dict[str, dict[str, int]] = {name: {} for name in names}
        with unavailable_errors(self):
            cursor = self._read_marks.find({"channel": {"$in": names}, "user_id": {"$in": users}})
            async for doc in cursor:
                out[doc["channel"]][doc["user_id"]] = int(doc["seq"])
        return out

    async def recent_messages(self, channels: Iterable[str], limit: int, *, since_ts: int = 0
                              ) -> dict[str, list[Message]]:
        names, limit = list(dict.fromkeys(channels)), max(limit, 0)

        async def newest(channel: str) -> list[Message]:
            if limit == 0:
                return []
            query = {"channel": channel, "deleted": {"$ne": True}, "ts": {"$gte": since_ts}}
            docs = await self._committed.find(query, _NO_ID).sort("seq", DESCENDING).limit(limit).to_list()
            return [_message(d) for d in reversed(docs)]

        with unavailable_errors(self):
            found = await asyncio.gather(*(newest(name) for name in names))
        return dict(zip(names, found, strict=True))

    async def recent_times(self, channels: Iterable[str], limit: int, *, since_ts: int = 0
                           ) -> dict[str, list[tuple[int, int]]]:
        names, limit = list(dict.fromkeys(channels)), max(limit, 0)

        async def newest(channel: str) -> list[tuple[int, int]]:
            if limit == 0:
                return []
            query = {"channel": channel, "deleted": {"$ne": True}, "ts": {"$gte": since_ts}}
            cursor = self._committed.find(query, {"_id": False, "seq": True, "ts": True})
            docs = await cursor.sort("seq", DESCENDING).limit(limit).to_list()
            return [(int(d["seq"]), int(d["ts"])) for d in reversed(docs)]

        with unavailable_errors(self):
            found = await asyncio.gather(*(newest(name) for name in names))
        return dict(zip(names, found, strict=True))

    # -- directory ------------------------------------------------------------

    async def load_directory(self) -> Directory:
        """All five collections from one snapshot (a snapshot session on a replica set or
        sharded cluster): never half of a directory change, such as a student whose class
        is not there yet."""
        with unavailable_errors(self):
            if not self._transactions:
                return _directory(await self._directory_docs(None))
            async with self._client.start_session(snapshot=True) as session:
                return _directory(await self._directory_docs(session))

    async def _directory_docs(self, session: AsyncClientSession | None) -> dict[str, list[Doc]]:
        return {
            name: await coll.find({}, session=session).sort("_id", ASCENDING).to_list()
            for name, coll in self._directory.items()
        }

    async def directory_version(self) -> int:
        with unavailable_errors(self):
            doc = await self._meta.find_one({"_id": "directory_version"})
        return 0 if doc is None else int(doc["value"])

    async def touch_directory(self) -> int:
        with unavailable_errors(self):
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

        with unavailable_errors(self):
            if not self._transactions:
                await apply(None)
                return
            async with self._client.start_session() as session:
                await session.with_transaction(apply, write_concern=WriteConcern("majority"))


# -- helpers ----------------------------------------------------------------------


async def _acquire(lock: asyncio.Lock, timeout: float | None) -> bool:
    """Take the lock within `timeout` seconds. Giving up never leaves it taken: an
    acquisition that completes after all is released at once."""
    acquiring = asyncio.ensure_future(lock.acquire())
    try:
        done, _ = await asyncio.wait({acquiring}, timeout=timeout)
    except BaseException:
        done = set()
        raise
    finally:
        if not done:
            acquiring.add_done_callback(lambda t: _release_if_taken(lock, t))
            acquiring.cancel()
    return bool(done)


def _release_if_taken(lock: asyncio.Lock, acquiring: asyncio.Future[Any]) -> None:
    if not acquiring.cancelled() and acquiring.exception() is None:
        lock.release()


async def _latest(
    collection: Collection, channel: str, session: AsyncClientSession | None = None
) -> int:
    doc = await collection.find_one(
        {"channel": channel}, {"seq": True, "_id": False}, sort=[("seq", DESCENDING)],
        session=session,
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


def budget_pipeline(query: Doc, limit: int, max_bytes: int, envelope: int) -> list[Doc]:
    """The newest `limit` messages matching `query` (newest first, the index's order), each
    with `_bytes`, the running total of the estimated sizes (`$bsonSize` of the data plus
    `envelope`): those past `max_bytes` come back as `{seq, _bytes, _cut: true}`, without
    their content, except the newest, always whole (`newest_within_budget`'s rule). The
    server holds at most `limit` messages for the window; the gateway only those kept."""
    kept = {"$or": [{"$eq": ["$_n", 1]}, {"$lte": ["$_bytes", max_bytes]}]}
    size = {"$add": [{"$bsonSize": "$data"}, envelope]}
    return [
        {"$match": query},
        {"$sort": {"seq": DESCENDING}},
        {"$limit": limit},
        {"$setWindowFields": {
            "sortBy": {"seq": DESCENDING},
            "output": {
                "_bytes": {"$sum": size, "window": {"documents": ["unbounded", "current"]}},
                "_n": {"$documentNumber": {}},
            },
        }},
        {"$project": {"_id": 0}},
        {"$replaceWith": {"$cond": [kept, "$$ROOT", {"seq": "$seq", "_bytes": "$_bytes", "_cut": True}]}},
    ]


def kept_within_budget(docs: list[Doc], count: int) -> tuple[list[Doc], bool, int]:
    """From `budget_pipeline`'s answer (newest first, up to `count + 1`): the documents kept
    (at most `count`), whether any was left out, and the bytes they take."""
    kept = 0
    for doc in docs[:count]:
        if doc.get("_cut"):
            break
        kept += 1
    used = int(docs[kept - 1]["_bytes"]) if kept else 0
    return docs[:kept], len(docs) > kept, used


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
                "guardian_id": item.guardian_id,
                "closed": item.closed,
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
    return Chat(d["_id"], d["school_id"], d["student_id"], d["staff_id"], d.get("guardian_id"),
                bool(d.get("closed", False)))


def _directory(docs: Mapping[str, list[Doc]]) -> Directory:
    return Directory(
        schools={d["_id"]: _school(d) for d in docs["schools"]},
        people={d["_id"]: _person(d) for d in docs["people"]},
        classes={d["_id"]: _class(d) for d in docs["classes"]},
        students={d["_id"]: _student(d) for d in docs["students"]},
        chats={d["_id"]: _chat(d) for d in docs["chats"]},
    )
