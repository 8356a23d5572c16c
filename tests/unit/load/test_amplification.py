"""The amplification scenario's pure parts: the client frame, reading the start of an answer,
the bounds and the report (load/amplification.py)."""

from __future__ import annotations

import json
import struct

import pytest

from load.amplification import (
    KIB,
    MIB,
    classify_http,
    classify_ws,
    client_frame,
    history_request,
    http_bound_kib,
    markdown,
    message_text,
    server_frames,
    tally,
    upgrade_request,
    ws_bound_kib,
)


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        return bytes([0x80 | opcode, n]) + payload
    if n < 1 << 16:
        return bytes([0x80 | opcode, 126]) + struct.pack("!H", n) + payload
    return bytes([0x80 | opcode, 127]) + struct.pack("!Q", n) + payload


def unmask(frame: bytes) -> tuple[int, bytes]:
    code = frame[1] & 0x7F
    at = 2 + {126: 2, 127: 8}.get(code, 0)
    mask, body = frame[at:at + 4], frame[at + 4:]
    return frame[0], bytes(b ^ mask[i % 4] for i, b in enumerate(body))


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_client_frame_is_masked_and_sized(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = client_frame(payload, b"\x01\x02\x03\x04")
    assert frame[1] & 0x80  # masked
    first, body = unmask(frame)
    assert first == 0x81 and body == payload


def test_client_frame_needs_a_4_byte_mask() -> None:
    with pytest.raises(ValueError):
        client_frame(b"x", b"\x00")


def test_requests() -> None:
    assert upgrade_request(8000, "k==").startswith(b"GET /ws HTTP/1.1\r\n")
    assert b"Sec-WebSocket-Key: k==\r\n" in upgrade_request(8000, "k==")
    req = history_request(8000, "chat:s-lea~t-martin", "tok")
    assert req.startswith(b"GET /api/v1/channels/chat:s-lea~t-martin/messages?limit=200 HTTP/1.1\r\n")
    assert req.endswith(b"Authorization: Bearer tok\r\n\r\n")


def test_server_frames_keep_a_prefix_of_a_long_frame() -> None:
    big = server_frame(b'{"id":1,"ok":{"user":' + b"x" * 600_000)
    frames = server_frames(server_frame(b'{"push":"subscribed"}') + big[:200])
    assert [(op, n) for op, n, _ in frames] == [(1, 21), (1, 600_021)]
    assert frames[1][2].startswith(b'{"id":1,"ok"')


def test_classify_ws() -> None:
    ok = server_frame(b'{"id":1,"ok":{"user":{"id":"p-lea-mere"},"channels":[' + b"x" * 70_000)[:300]
    assert classify_ws(ok, closed=False) == "accepted"
    push_then_ok = server_frame(b'{"push":"presence"}') + ok
    assert classify_ws(push_then_ok, closed=False) == "accepted"
    refused = (server_frame(json.dumps({"id": 1, "error": {"code": "rate_limited", "message": "10"}}).encode())
               + server_frame(struct.pack("!H", 4429) + b"too many", opcode=0x8))
    assert classify_ws(refused, closed=True) == "refused:rate_limited"
    assert classify_ws(server_frame(struct.pack("!H", 1013), opcode=0x8), closed=True) == "closed:1013"
    assert classify_ws(b"", closed=True) == "closed"
    assert classify_ws(b"\x81", closed=False) == "no answer"


def test_classify_http() -> None:
    assert classify_http(b"HTTP/1.1 200 OK\r\ncontent-type", closed=False) == "http:200"
    assert classify_http(b"HTTP/1.1 429 Too Many", closed=True) == "http:429"
    assert classify_http(b"", closed=True) == "closed"
    assert classify_http(b"", closed=False) == "no answer"


def test_tally() -> None:
    assert tally(["b", "a", "b"]) == {"a": 1, "b": 2}


def test_bounds() -> None:
    # 10 connections (the default per-user cap): 10 x (1 MiB outbox + 512 KiB reply) = 15 MiB,
    # and 10 store reads of 500 x 10,000 characters, twice: 10 x 9.54 MiB
    assert ws_bound_kib(60 * 1024, 10) == 60 * 1024 + 15 * 1024
    assert ws_bound_kib(0, 10, reads=10) == 15 * 1024 + 10 * 1024  # each store read cut at 512 KiB, twice
    assert ws_bound_kib(0, 1, reads=1, reply_bytes=512, outbox_bytes=MIB) == 1025
    # 60 history pages (the default HTTP burst): 60 x (2 x 512 KiB + 200 x 10,000 x 2)
    assert http_bound_kib(0, 60) == 60 * 2048
    assert http_bound_kib(0, 1, reply_bytes=100 * KIB) == 400


def test_message_text_is_exactly_long() -> None:
    assert len(message_text(7, 9000)) == 9000
    assert message_text(7, 9000).startswith("message 7: ")
    assert message_text(1, 20) != message_text(2, 20)


def test_markdown_report() -> None:
    phase = {"name": "websocket", "rss_before_kib": 60 * 1024, "rss_peak_kib": 70 * 1024,
             "rss_after_kib": 65 * 1024, "accepted": 10, "sent": 200,
             "outcomes": {"accepted": 10, "refused:rate_limited": 190}, "bound_kib": 75 * 1024, "held": True}
    report = {"started": "2026-11-30T13:00:00", "duration_s": 100.0, "messages": 500, "chars": 9000,
              "channel": "chat:s-lea~t-martin", "connections": 200, "http_requests": 100, "rcvbuf": 4096,
              "runs": [{"mode": "defaults", "description": "every limit at its default", "phases": [phase],
                        "staging": {"published": 500, "seconds": 50.0, "refused": 0, "rss_kib": 61440}}],
              "notes": ["a note"]}
    text = markdown(report)
    assert "## defaults" in text
    assert ("| websocket | 60.0 MiB | 70.0 MiB | 65.0 MiB | 10 / 200 | accepted: 10, refused:rate_limited: 190 "
            "| 75.0 MiB | yes |") in text
    assert "- a note" in text
