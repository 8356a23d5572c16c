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
    client_options,
    is_unavailable,
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
