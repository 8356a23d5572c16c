"""What the MongoDB adapter decides without a server: which errors mean "try again
shortly", the shapes of its queries against its partial indexes, its client options."""

from __future__ import annotations

import asyncio
from typing import Any

import dns.resolver
import pytest
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    ConfigurationError,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidURI,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WTimeoutError,
)

from persistence import mongo
from persistence.mongo import (
    APPNAME,
    MESSAGE_INDEXES,
    MongoStore,
    budget_pipeline,
    client_options,
    is_unavailable,
    kept_within_budget,
    key_query,
    updates_query,
)
from school.messages import Author, Draft


def labelled(label: str, code: int = 251) -> OperationFailure:
    return OperationFailure("failed", code, {"errorLabels": [label], "code": code})


def from_dns(error: Exception) -> ConfigurationError:
    try:
        raise ConfigurationError(str(error)) from error  # what PyMongo's SRV resolver does
    except ConfigurationError as exc:
        return exc


UNAVAILABLE: dict[str, BaseException] = {
    "network error": AutoReconnect("connection reset"),
    "network timeout": NetworkTimeout("timed out"),
    "no server": ServerSelectionTimeoutError("no primary"),
    "not primary reply": NotPrimaryError("not primary", {"code": 10107}),
    "NotWritablePrimary code": OperationFailure("not primary", 10107),
    "PrimarySteppedDown": OperationFailure("stepped down", 189),
    "InterruptedDueToReplStateChange": OperationFailure("interrupted", 11602),
    "ShutdownInProgress": OperationFailure("shutting down", 91),
    "timeoutMS expired": ExecutionTimeout("operation exceeded time limit", 50),
    "write concern timeout": WTimeoutError("waiting for replication timed out", 64),
    "write concern failed, not primary": WriteConcernError("no longer primary", 10107),
    "RetryableWriteError": labelled("RetryableWriteError", 9001),
    "TransientTransactionError": labelled("TransientTransactionError", 112),
    "UnknownTransactionCommitResult": labelled("UnknownTransactionCommitResult", 50),
    "label without a code": PyMongoError("x", error_labels=["RetryableWriteError"]),
    "SRV lookup timed out": from_dns(
        dns.resolver.LifetimeTimeout(timeout=2.0, errors=[])
    ),
    "SRV lookup, no name servers": from_dns(dns.resolver.NoNameservers()),
    "directory, not primary": BulkWriteError(
        {"writeErrors": [], "writeConcernErrors": [{"code": 10107, "errmsg": "not primary"}]}
    ),
}

BUGS: dict[str, BaseException] = {
    "duplicate key": DuplicateKeyError("E11000 duplicate key", 11000),
    "bad query": OperationFailure("unknown operator: $foo", 2),
    "bad option": ConfigurationError("Unknown option fooMS"),
    "bad URI": InvalidURI("Invalid URI scheme"),
    "directory, duplicate": BulkWriteError(
        {"writeErrors": [{"code": 11000, "errmsg": "dup"}], "writeConcernErrors": []}
    ),
    "not a PyMongo error": ValueError("bug"),
}


@pytest.mark.parametrize("exc", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_stepdowns_timeouts_and_transient_errors_are_unavailable(exc: BaseException) -> None:
    assert is_unavailable(exc) is True


@pytest.mark.parametrize("exc", BUGS.values(), ids=BUGS.keys())
def test_other_errors_are_bugs(exc: BaseException) -> None:
    assert is_unavailable(exc) is False


def _partial(name: str) -> dict[str, Any]:
    (index,) = [i.document for i in MESSAGE_INDEXES if i.document["name"] == name]
    partial: dict[str, Any] = index["partialFilterExpression"]
    return partial


def test_the_updates_query_repeats_the_partial_filter_of_channel_edited() -> None:
    """Without `$type`, MongoDB cannot prove `edited >= t` is within the partial index
    (`{edited: {$type: "number"}}`) and scans the whole channel."""
    query = updates_query("class:cp-a", 40, 1_700_000_000_000)
    assert query["channel"] == "class:cp-a" and query["seq"] == {"$lte": 40}
    assert query["edited"]["$gte"] == 1_700_000_000_000
    for field, condition in _partial("channel_edited").items():
        assert query[field]["$type"] == condition["$type"]


def test_the_key_query_repeats_the_partial_filter_of_channel_author_key() -> None:
    author = Author("t-martin", "Mme Martin", "teacher")
    draft = Draft("class:cp-a", "m-1", 1, author, "post", {"text": "x"}, "k-1")
    query = key_query(draft)
    assert query["channel"] == "class:cp-a" and query["author.id"] == "t-martin"
    assert query["key"]["$eq"] == "k-1"
    for field, condition in _partial("channel_author_key").items():
        assert query[field]["$type"] == condition["$type"]


def test_client_defaults_a_timeout_and_an_appname() -> None:
    options = client_options("mongodb://db1,db2/liaison?replicaSet=rs0", 3.0)
    assert options == {"serverSelectionTimeoutMS": 5000, "timeoutMS": 3000, "appname": APPNAME}


def test_client_options_given_in_the_url_win_whatever_their_case() -> None:
    url = "mongodb://db1/liaison?TIMEOUTMS=250&appName=ops-console&serverselectiontimeoutms=1"
    assert client_options(url, 3.0) == {}
    assert "timeoutMS" not in client_options("mongodb://db1/", None)


async def test_the_client_is_built_with_them() -> None:
    store = MongoStore("mongodb://127.0.0.1:27017/liaison", op_timeout=1.5)
    try:
        assert store._client.options.timeout == 1.5
        assert store._client.options.pool_options.metadata["application"] == {"name": APPNAME}
    finally:
        await store.close()
    store = MongoStore("mongodb://127.0.0.1:27017/liaison?timeoutMS=250")
    try:
        assert store._op_timeout == 0.25  # the URL's, also the append's deadline
    finally:
        await store.close()


async def test_a_lock_not_taken_in_time_is_not_taken_later() -> None:
    lock = asyncio.Lock()
    await lock.acquire()  # an append stuck on a primary that does not answer
    assert await mongo._acquire(lock, 0.05) is False
    lock.release()
    assert await mongo._acquire(lock, 1) is True  # the waiter that gave up left it free
    lock.release()
    assert not lock.locked()


# -- the byte budget of recover and history (the server's cut is checked by the contract suite)


def test_the_budget_pipeline_reads_the_newest_through_the_channel_seq_index_first() -> None:
    query = {"channel": "class:cp-a", "seq": {"$lt": 40}}
    pipeline = budget_pipeline(query, 51, 7000, 140)
    assert pipeline[:3] == [{"$match": query}, {"$sort": {"seq": -1}}, {"$limit": 51}]
    window = pipeline[3]["$setWindowFields"]
    assert window["sortBy"] == {"seq": -1}
    running = window["output"]["_bytes"]
    assert running["window"] == {"documents": ["unbounded", "current"]}
    assert running["$sum"] == {"$add": [{"$bsonSize": "$data"}, 140]}
    cond = pipeline[-1]["$replaceWith"]["$cond"]
    assert cond[0] == {"$or": [{"$eq": ["$_n", 1]}, {"$lte": ["$_bytes", 7000]}]}
    assert cond[1] == "$$ROOT" and cond[2]["_cut"] is True and "data" not in cond[2]


def whole(seq: int, running: int) -> dict[str, Any]:
    return {"channel": "class:cp-a", "seq": seq, "data": {"text": "x"}, "_bytes": running, "_n": 0}


def test_kept_within_budget_stops_at_the_first_cut_document() -> None:
    docs = [whole(10, 2000), whole(9, 4000), {"seq": 8, "_bytes": 6100, "_cut": True}]
    kept, more, used = kept_within_budget(docs, 500)
    assert ([d["seq"] for d in kept], more, used) == ([10, 9], True, 4000)
    newest_only = [whole(10, 9000), {"seq": 9, "_bytes": 11000, "_cut": True}]
    assert kept_within_budget(newest_only, 500) == ([newest_only[0]], True, 9000)


def test_kept_within_budget_applies_the_count_and_says_when_it_left_some_out() -> None:
    docs = [whole(10, 100), whole(9, 200), whole(8, 300)]  # `count + 1` were asked for
    kept, more, used = kept_within_budget(docs, 2)
    assert ([d["seq"] for d in kept], more, used) == ([10, 9], True, 200)
    assert kept_within_budget(docs, 3) == (docs, False, 300)
    assert kept_within_budget([], 3) == ([], False, 0)
