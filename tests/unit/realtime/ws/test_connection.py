"""A connection's outbox: FIFO, bounded, recovery buffering and duplicate suppression."""

from __future__ import annotations

import asyncio

from realtime.ws.close import CloseCode
from realtime.ws.connection import Connection


def make_connection(limit: int = 1000) -> Connection:
    return Connection("c-1", "liaison.v1.json", outbox_limit=limit)


async def drain(conn: Connection) -> list[bytes]:
    return await asyncio.wait_for(conn.next_frames(), timeout=1.0)


async def test_outbox_is_fifo() -> None:
    conn = make_connection()
    for frame in (b"a", b"b", b"c"):
        conn.send(frame)
    assert conn.outbox_bytes == 3
    assert await drain(conn) == [b"a", b"b", b"c"]
    assert conn.outbox_bytes == 0


async def test_next_frames_waits_for_a_frame() -> None:
    conn = make_connection()
    asyncio.get_running_loop().call_soon(conn.send, b"late")
    assert await drain(conn) == [b"late"]


async def test_overflow_closes_slow_consumer_and_drops_queued_frames() -> None:
    conn = make_connection(limit=10)
    conn.send(b"12345")
    conn.send(b"67890")
    assert conn.close_code is None  # exactly at the limit is fine
    conn.send(b"x")
    assert conn.close_code is CloseCode.SLOW_CONSUMER
    assert conn.outbox_bytes == 0
    conn.send(b"after")
    conn.deliver("class:cp-a", 1, b"after", len(b"after"))
    assert await drain(conn) == []


async def test_outbox_counts_text_frames_in_utf8_bytes() -> None:
    conn = make_connection(limit=10)
    conn.send("éééééé".encode())  # 6 characters, 12 bytes on the wire
    assert conn.close_code is CloseCode.SLOW_CONSUMER


async def test_close_keeps_queued_frames_for_normal_codes() -> None:
    conn = make_connection()
    conn.send(b"bye-1")
    conn.send(b"bye-2")
    conn.close(CloseCode.GOING_AWAY, "shutting down")
    conn.send(b"ignored")
    assert conn.close_code is CloseCode.GOING_AWAY
    assert await drain(conn) == [b"bye-1", b"bye-2"]
    assert await drain(conn) == []


async def test_close_wakes_a_waiting_writer() -> None:
    conn = make_connection()
    asyncio.get_running_loop().call_soon(conn.close, CloseCode.INTERNAL, "boom")
    assert await drain(conn) == []


async def test_first_close_wins() -> None:
    conn = make_connection()
    conn.close(CloseCode.UNAUTHORIZED, "bad token")
    conn.close(CloseCode.GOING_AWAY, "later")
    assert (conn.close_code, conn.close_reason) == (CloseCode.UNAUTHORIZED, "bad token")


async def test_recovery_buffers_and_sends_only_frames_above_the_recovered_seq() -> None:
    conn = make_connection()
    conn.begin_recovery("class:cp-a")
    for seq in (4, 5, 6, 7):
        conn.deliver("class:cp-a", seq, f"m{seq}".encode(), len(f"m{seq}"))
    conn.deliver("class:cp-a", None, b"typing", len(b"typing"))
    conn.deliver("class:cm2-b", 1, b"other", len(b"other"))  # another channel is not held back
    assert await drain(conn) == [b"other"]
    conn.end_recovery("class:cp-a", 5)
    assert await drain(conn) == [b"m6", b"m7", b"typing"]


async def test_after_recovery_duplicates_are_dropped_and_seqless_pushes_pass() -> None:
    conn = make_connection()
    conn.begin_recovery("class:cp-a")
    conn.end_recovery("class:cp-a", 7)
    conn.deliver("class:cp-a", 7, b"dup", len(b"dup"))
    conn.deliver("class:cp-a", 3, b"old", len(b"old"))
    conn.deliver("class:cp-a", 8, b"m8", len(b"m8"))
    conn.deliver("class:cp-a", 8, b"m8-again", len(b"m8-again"))
    conn.deliver("class:cp-a", None, b"update", len(b"update"))
    conn.deliver("class:cp-a", None, b"update", len(b"update"))
    assert await drain(conn) == [b"m8", b"update", b"update"]


async def test_abort_recovery_drops_the_buffer() -> None:
    conn = make_connection()
    conn.begin_recovery("chat:x")
    conn.deliver("chat:x", 1, b"buffered", len(b"buffered"))
    conn.abort_recovery("chat:x")
    conn.deliver("chat:x", 2, b"live", len(b"live"))
    assert await drain(conn) == [b"live"]


async def test_forget_resets_the_channel_position() -> None:
    conn = make_connection()
    conn.deliver("chat:x", 5, b"m5", len(b"m5"))
    conn.forget("chat:x")
    conn.deliver("chat:x", 1, b"m1", len(b"m1"))
    assert await drain(conn) == [b"m5", b"m1"]


async def test_forget_drops_a_recovery_in_progress() -> None:
    conn = make_connection()
    conn.begin_recovery("chat:x")
    conn.deliver("chat:x", 3, b"buffered", len(b"buffered"))
    conn.forget("chat:x")
    conn.end_recovery("chat:x", 0)
    conn.deliver("chat:x", 1, b"live", len(b"live"))
    assert await drain(conn) == [b"live"]


async def test_close_drops_recovery_buffers() -> None:
    conn = make_connection()
    conn.begin_recovery("chat:x")
    conn.deliver("chat:x", 3, b"buffered", len(b"buffered"))
    conn.close(CloseCode.GOING_AWAY, "bye")
    conn.end_recovery("chat:x", 0)
    assert await drain(conn) == []


class RecordingWriter:
    """Stands in for `DirectWebSocketProtocol`'s write side: records frames, reports a backlog."""

    def __init__(self, backlog: int = 0) -> None:
        self.frames: list[tuple[bytes, bool]] = []
        self.backlog = backlog
        self.closed: tuple[int, str] | None = None

    def write_frame(self, frame: bytes, text: bool) -> bool:
        if self.closed:
            return False
        self.frames.append((frame, text))
        return True

    def buffered(self) -> int:
        return self.backlog

    def close_now(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_direct_writes_go_straight_to_the_socket_in_order() -> None:
    conn = make_connection(limit=100)
    writer = RecordingWriter()
    conn.direct = writer
    conn.begin_recovery("class:cp-a")
    conn.deliver("class:cp-a", 2, b"m2", 2)
    conn.send(b"reply")
    conn.end_recovery("class:cp-a", 1)
    conn.deliver("class:cp-a", 2, b"m2-again", 8)
    assert [f for f, _ in writer.frames] == [b"reply", b"m2"]
    assert all(text for _, text in writer.frames)


async def test_direct_backlog_over_the_limit_closes_slow_consumer() -> None:
    conn = make_connection(limit=10)
    writer = RecordingWriter(backlog=11)
    conn.direct = writer
    conn.send(b"x")
    assert conn.close_code is CloseCode.SLOW_CONSUMER
    assert writer.closed is not None and writer.closed[0] == 4503
    conn.send(b"after")
    assert writer.frames == []  # checked before writing: nothing more is handed to a full socket


async def test_a_frame_that_would_overflow_is_not_written() -> None:
    conn = make_connection(limit=10)
    writer = RecordingWriter(backlog=4)
    conn.direct = writer
    conn.send(b"12345")  # 4 + 5 <= 10: written
    conn.send(b"1234567")  # 4 + 7 > 10: refused before writing
    assert [f for f, _ in writer.frames] == [b"12345"]
    assert conn.close_code is CloseCode.SLOW_CONSUMER


async def test_frames_held_during_recovery_count_against_the_bound() -> None:
    conn = make_connection(limit=10)
    conn.direct = RecordingWriter()
    conn.begin_recovery("class:cp-a")
    for seq in range(1, 5):
        conn.deliver("class:cp-a", seq, b"abc", 3)  # 4 x 3 = 12 bytes held > 10
    assert conn.close_code is CloseCode.SLOW_CONSUMER


async def test_release_drops_every_buffer() -> None:
    conn = make_connection(limit=1000)
    conn.begin_recovery("class:cp-a")
    conn.deliver("class:cp-a", 1, b"abc", 3)
    conn.send(b"queued")
    conn.release()
    assert conn.outbox_bytes == 0 and conn.close_code is not None
    conn.send(b"later")
    assert conn.outbox_bytes == 0
