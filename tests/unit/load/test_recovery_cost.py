"""`python -m load recovery-cost`: both recovery paths measured, with replies of the same size."""

from __future__ import annotations

from load.recovery_cost import measure


async def test_both_paths_are_measured_and_answer_alike() -> None:
    rows = await measure(guardians=20, classes=2, missed=5)
    assert [(r["path"], r["codec"]) for r in rows] == [
        ("store", "liaison.v1.json"), ("cache", "liaison.v1.json"),
        ("store", "liaison.v1.msgpack"), ("cache", "liaison.v1.msgpack")]
    assert rows[0]["reply_bytes"] == rows[1]["reply_bytes"] and rows[2]["reply_bytes"] == rows[3]["reply_bytes"]
    assert all(r["cpu_ms_per_recovery"] > 0 for r in rows)
