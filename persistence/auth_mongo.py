"""`MongoAuthStore`: the production `AuthStore` on MongoDB, through PyMongo's native async API.

Collections (in the message store's database): `auth_codes` (one document per e-mail address,
`_id` the address), `auth_sessions` (one per device session, with its current refresh hash, the
one before it and the superseded ones, capped at `REMEMBERED_HASHES`), `auth_sign_ins` (`_id`
the user id) and `auth_invitations`.

Atomic steps are single-document updates, which MongoDB applies atomically on the primary:
`swap_code` replaces the record only where `version` is the expected one (an insert, whose
duplicate key error means another writer came first, for version 1); `rotate_refresh`
updates the session only where `refresh_hash` is the expected one and `ended_at` is null.
No multi-document transaction is needed, so this works on a standalone server too.

Writes are acknowledged by a majority and reads go to the primary, as in persistence/mongo.py,
with the same client defaults (`timeoutMS`, server selection) and the same mapping of "try
again shortly" errors to `StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from persistence.auth_store import REMEMBERED_HASHES, CodeState, DeviceSession, RefreshMatch
from persistence.mongo import DEFAULT_OP_TIMEOUT, open_database, unavailable_errors

Doc = dict[str, Any]
Collection = AsyncCollection[Doc]

CODE_INDEXES = [
    IndexModel([("horizon", ASCENDING)], name="horizon"),
    IndexModel([("user_id", ASCENDING)], name="user_id"),
]
SESSION_INDEXES = [
    IndexModel([("refresh_hash", ASCENDING)], unique=True, name="refresh_hash"),
    IndexModel([("old_hashes", ASCENDING)], name="old_hashes"),
    IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
    IndexModel([("ended_at", ASCENDING)], name="ended_at",
               partialFilterExpression={"ended_at": {"$type": "number"}}),
]
INVITATION_INDEXES = [IndexModel([("user_id", ASCENDING), ("sent_at", ASCENDING)], name="user_sent")]
_SESSION_FIELDS = {"old_hashes": False}


def _session(doc: Doc) -> DeviceSession:
    return DeviceSession(doc["_id"], doc["user_id"], doc["device"], doc["created_at"], doc["last_seen"],
                         doc.get("ended_at"), doc.get("end_reason"))


def _code(doc: Doc) -> CodeState:
    return CodeState(doc["_id"], doc["version"], doc.get("user_id"), doc.get("code_hash"), doc["expires_at"],
                     doc["attempts"], doc["locked_until"], tuple(doc.get("requested", ())))


def _code_doc(state: CodeState) -> Doc:
    return {"_id": state.email, "version": state.version, "user_id": state.user_id, "code_hash": state.code_hash,
            "expires_at": state.expires_at, "attempts": state.attempts, "locked_until": state.locked_until,
            "requested": list(state.requested), "horizon": state.horizon}


class MongoAuthStore:
    def __init__(self, url: str, database: str = "liaison", *,
                 op_timeout: float | None = DEFAULT_OP_TIMEOUT) -> None:
        self._client, db = open_database(url, database, op_timeout)
        self._codes: Collection = db.get_collection("auth_codes")
        self._sessions: Collection = db.get_collection("auth_sessions")
        self._sign_ins: Collection = db.get_collection("auth_sign_ins")
        self._invitations: Collection = db.get_collection("auth_invitations")
        self.closed = False

    async def open(self) -> None:
        with unavailable_errors(self, "the MongoDB auth store"):
            await self._codes.create_indexes(CODE_INDEXES)
            await self._sessions.create_indexes(SESSION_INDEXES)
            await self._invitations.create_indexes(INVITATION_INDEXES)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self._client.close()

    # -- one-time codes ---------------------------------------------------------------------

    async def get_code(self, email: str) -> CodeState | None:
        with unavailable_errors(self, "the MongoDB auth store"):
            doc = await self._codes.find_one({"_id": email})
        return None if doc is None else _code(doc)

    async def swap_code(self, state: CodeState) -> bool:
        with unavailable_errors(self, "the MongoDB auth store"):
            if state.version == 1:
                try:
                    await self._codes.insert_one(_code_doc(state))
                except DuplicateKeyError:
                    return False
                return True
            result = await self._codes.replace_one({"_id": state.email, "version": state.version - 1},
                                                   _code_doc(state))
            return result.matched_count == 1

    async def purge_codes(self, before: float) -> int:
        with unavailable_errors(self, "the MongoDB auth store"):
            return (await self._codes.delete_many({"horizon": {"$lt": before}})).deleted_count

    # -- device sessions ----------------------------------------------------------------------

    async def create_session(self, session: DeviceSession, refresh_hash: bytes) -> None:
        doc = {"_id": session.id, "user_id": session.user_id, "device": session.device,
               "created_at": session.created_at, "last_seen": session.last_seen, "ended_at": session.ended_at,
               "end_reason": session.end_reason, "refresh_hash": refresh_hash, "previous_hash": None,
               "rotated_at": None, "old_hashes": []}
        with unavailable_errors(self, "the MongoDB auth store"):
            if await self._sessions.find_one({"old_hashes": refresh_hash}, {"_id": True}) is not None:
                raise ValueError("refresh hash already stored")
            try:
                await self._sessions.insert_one(doc)
            except DuplicateKeyError:
                raise ValueError("session id or refresh hash already stored") from None
            # After the session: a sign-in is recorded only once its session exists.
            await self._sign_ins.update_one({"_id": session.user_id},
                                            {"$setOnInsert": {"first_at": session.created_at}}, upsert=True)

    async def get_session(self, session_id: str) -> DeviceSession | None:
        with unavailable_errors(self, "the MongoDB auth store"):
            doc = await self._sessions.find_one({"_id": session_id}, _SESSION_FIELDS)
        return None if doc is None else _session(doc)

    async def find_refresh(self, refresh_hash: bytes) -> RefreshMatch | None:
        with unavailable_errors(self, "the MongoDB auth store"):
            doc = await self._sessions.find_one(
                {"$or": [{"refresh_hash": refresh_hash}, {"old_hashes": refresh_hash}]}, _SESSION_FIELDS)
        if doc is None:
            return None
        return RefreshMatch(_session(doc), doc["refresh_hash"] == refresh_hash,
                            doc.get("previous_hash") == refresh_hash, doc.get("rotated_at"))

    async def rotate_refresh(self, session_id: str, expected: bytes, new: bytes, at: float) -> bool:
        with unavailable_errors(self, "the MongoDB auth store"):
            result = await self._sessions.update_one(
                {"_id": session_id, "refresh_hash": expected, "ended_at": None},
                {"$set": {"refresh_hash": new, "previous_hash": expected, "rotated_at": at},
                 "$max": {"last_seen": at},
                 "$push": {"old_hashes": {"$each": [expected], "$slice": -REMEMBERED_HASHES}}},
            )
        return result.matched_count == 1

    async def touch_session(self, session_id: str, at: float) -> bool:
        with unavailable_errors(self, "the MongoDB auth store"):
            result = await self._sessions.update_one({"_id": session_id, "ended_at": None},
                                                     {"$max": {"last_seen": at}})
        return result.matched_count == 1

    async def touch_sessions(self, session_ids: Iterable[str], at: float) -> set[str]:
        ids = list(dict.fromkeys(session_ids))
        if not ids:
            return set()
        live = {"_id": {"$in": ids}, "ended_at": None}
        with unavailable_errors(self, "the MongoDB auth store"):
            await self._sessions.update_many(live, {"$max": {"last_seen": at}})
            # read after the write: a session ended in between is not live (never the reverse)
            return {doc["_id"] async for doc in self._sessions.find(live, {"_id": 1})}

    async def end_session(self, session_id: str, at: float, reason: str) -> bool:
        with unavailable_errors(self, "the MongoDB auth store"):
            result = await self._sessions.update_one({"_id": session_id, "ended_at": None},
                                                     {"$set": {"ended_at": at, "end_reason": reason}})
        return result.matched_count == 1

    async def end_user_sessions(self, user_id: str, at: float, reason: str) -> list[str]:
        ended: list[str] = []
        with unavailable_errors(self, "the MongoDB auth store"):
            live = await self._sessions.find({"user_id": user_id, "ended_at": None}, {"_id": True}).to_list()
            for doc in live:  # one by one: only those this call ended are reported
                if await self.end_session(doc["_id"], at, reason):
                    ended.append(doc["_id"])
        return sorted(ended)

    async def list_sessions(self, user_id: str, *, include_ended: bool = False) -> list[DeviceSession]:
        query: Doc = {"user_id": user_id} if include_ended else {"user_id": user_id, "ended_at": None}
        with unavailable_errors(self, "the MongoDB auth store"):
            docs = await self._sessions.find(query, _SESSION_FIELDS).sort(
                [("created_at", DESCENDING), ("_id", ASCENDING)]).to_list()
        return [_session(doc) for doc in docs]

    async def purge_sessions(self, ended_before: float) -> int:
        with unavailable_errors(self, "the MongoDB auth store"):
            result = await self._sessions.delete_many({"ended_at": {"$lt": ended_before, "$type": "number"}})
        return result.deleted_count

    # -- sign-ins and invitations -----------------------------------------------------------

    async def first_sign_ins(self, user_ids: Iterable[str]) -> dict[str, float]:
        ids = list(dict.fromkeys(user_ids))
        with unavailable_errors(self, "the MongoDB auth store"):
            docs = await self._sign_ins.find({"_id": {"$in": ids}}).to_list()
        return {doc["_id"]: doc["first_at"] for doc in docs}

    async def with_live_sessions(self, user_ids: Iterable[str]) -> set[str]:
        ids = list(dict.fromkeys(user_ids))
        with unavailable_errors(self, "the MongoDB auth store"):
            found = await self._sessions.distinct("user_id", {"user_id": {"$in": ids}, "ended_at": None})
        return {str(user) for user in found}

    async def record_invitation(self, user_id: str, sent_at: float) -> None:
        with unavailable_errors(self, "the MongoDB auth store"):
            await self._invitations.insert_one({"user_id": user_id, "sent_at": sent_at})

    async def invitations(self, user_ids: Iterable[str]) -> dict[str, list[float]]:
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, list[float]] = {}
        with unavailable_errors(self, "the MongoDB auth store"):
            docs = await self._invitations.find({"user_id": {"$in": ids}}).sort(
                [("user_id", ASCENDING), ("sent_at", ASCENDING), ("_id", ASCENDING)]).to_list()
        for doc in docs:
            found.setdefault(doc["user_id"], []).append(doc["sent_at"])
        return found

    # -- erasure ----------------------------------------------------------------------------

    async def forget_user(self, user_id: str) -> None:
        with unavailable_errors(self, "the MongoDB auth store"):
            await self._sessions.delete_many({"user_id": user_id})
            await self._sign_ins.delete_one({"_id": user_id})
            await self._invitations.delete_many({"user_id": user_id})
            await self._codes.delete_many({"user_id": user_id})
