"""One-time sign-in codes (auth/codes.py), over a real SQLite `AuthStore` and a fake clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from pathlib import Path

import pytest

from auth.codes import Checked, CodePolicy, Requested, SignInCodes
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import AuthStore
from tests.support.clock import FakeClock
from tests.unit.auth.conftest import T0

KEY = b"c" * 32
LEA = "lea@example.fr"


@pytest.fixture
def codes(store: AuthStore, clock: FakeClock) -> SignInCodes:
    return SignInCodes(store, KEY, clock=clock)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_a_code_is_six_digits_stored_only_as_a_keyed_hash(codes: SignInCodes, store: AuthStore) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.outcome is Requested.SENT and sent.user_id == "p-lea" and sent.email == LEA
    assert sent.code is not None and re.fullmatch(r"[0-9]{6}", sent.code)
    assert sent.expires_at == T0 + 600
    state = await store.get_code(LEA)
    assert state is not None
    assert state.code_hash == hmac.new(KEY, f"{LEA}\n{sent.code}".encode(), hashlib.sha256).digest()
    assert sent.code.encode() not in (state.code_hash or b"")
    assert sent.code not in repr(sent), "the code must never reach a log line"


async def test_the_right_code_signs_in_once(codes: SignInCodes) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.code is not None
    check = await codes.verify(LEA, sent.code)
    assert (check.outcome, check.user_id) == (Checked.VERIFIED, "p-lea")
    assert (await codes.verify(LEA, sent.code)).outcome is Checked.NO_CODE


@pytest.mark.parametrize("typed", ["{} {}", "{}-{}", " {}{} ", "{}.{}"])
async def test_what_people_type_between_digits_is_ignored(codes: SignInCodes, typed: str) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.code is not None
    check = await codes.verify(LEA, typed.format(sent.code[:3], sent.code[3:]))
    assert check.outcome is Checked.VERIFIED


async def test_addresses_are_normalised(codes: SignInCodes) -> None:
    sent = await codes.request("  Lea@Example.FR ", "p-lea")
    assert sent.outcome is Requested.SENT and sent.email == LEA and sent.code is not None
    assert (await codes.verify("LEA@example.fr", sent.code)).outcome is Checked.VERIFIED


async def test_a_code_lasts_ten_minutes(codes: SignInCodes, clock: FakeClock) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.code is not None
    clock.now = T0 + 600
    assert (await codes.verify(LEA, sent.code)).outcome is Checked.EXPIRED
    clock.now = T0 + 599
    assert (await codes.verify(LEA, sent.code)).outcome is Checked.VERIFIED


async def test_a_new_request_replaces_the_previous_code(codes: SignInCodes, clock: FakeClock) -> None:
    first = await codes.request(LEA, "p-lea")
    clock.now += 30
    second = await codes.request(LEA, "p-lea")
    assert first.code is not None and second.code is not None
    if first.code != second.code:
        assert (await codes.verify(LEA, first.code)).outcome is Checked.WRONG
    assert (await codes.verify(LEA, second.code)).outcome is Checked.VERIFIED


async def test_five_wrong_tries_then_a_cooldown(codes: SignInCodes, clock: FakeClock) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.code is not None
    left = [(await codes.verify(LEA, wrong(sent.code))).attempts_left for _ in range(4)]
    assert left == [4, 3, 2, 1]
    fifth = await codes.verify(LEA, "not a code")
    assert (fifth.outcome, fifth.retry_after) == (Checked.LOCKED, 900)
    clock.now += 60
    locked = await codes.verify(LEA, sent.code)
    assert (locked.outcome, locked.retry_after, locked.user_id) == (Checked.LOCKED, 840, None)
    refused = await codes.request(LEA, "p-lea")
    assert (refused.outcome, refused.code, refused.retry_after) == (Requested.COOLING_DOWN, None, 840)
    clock.now = T0 + 900
    assert (await codes.verify(LEA, sent.code)).outcome is Checked.NO_CODE, "the locked code is gone"
    again = await codes.request(LEA, "p-lea")
    assert again.outcome is Requested.SENT and again.code is not None
    assert (await codes.verify(LEA, again.code)).outcome is Checked.VERIFIED


async def test_three_codes_per_ten_minutes(codes: SignInCodes, clock: FakeClock) -> None:
    for minute in (0, 1, 2):
        clock.now = T0 + 60 * minute
        assert (await codes.request(LEA, "p-lea")).outcome is Requested.SENT
    clock.now = T0 + 300
    limited = await codes.request(LEA, "p-lea")
    assert (limited.outcome, limited.code, limited.retry_after) == (Requested.RATE_LIMITED, None, 300)
    clock.now = T0 + 600.5  # the first request left the window
    assert (await codes.request(LEA, "p-lea")).outcome is Requested.SENT
    assert (await codes.request(LEA, "p-lea")).outcome is Requested.RATE_LIMITED
    other = await codes.request("adam@example.fr", "p-adam")
    assert other.outcome is Requested.SENT, "the limit is per address"


async def test_the_limits_are_the_policy(store: AuthStore, clock: FakeClock) -> None:
    strict = SignInCodes(store, KEY, clock=clock, policy=CodePolicy(ttl=60, max_attempts=2, max_requests=1))
    sent = await strict.request(LEA, "p-lea")
    assert sent.expires_at == T0 + 60 and sent.code is not None
    assert (await strict.request(LEA, "p-lea")).outcome is Requested.RATE_LIMITED
    assert (await strict.verify(LEA, wrong(sent.code))).attempts_left == 1
    assert (await strict.verify(LEA, wrong(sent.code))).outcome is Checked.LOCKED


@pytest.mark.parametrize("email", ["not-an-address", "", "a@", "x" * 300 + "@example.fr"])
async def test_unknown_or_invalid_addresses_get_nothing_and_store_nothing(
    codes: SignInCodes, store: AuthStore, email: str
) -> None:
    result = await codes.request(email, "p-lea" if "@" in email else None)
    assert result.outcome is Requested.UNKNOWN_ADDRESS and result.code is None
    assert (await codes.verify(email, "123456")).outcome is Checked.NO_CODE


async def test_nobody_s_address_stores_nothing(codes: SignInCodes, store: AuthStore) -> None:
    result = await codes.request("stranger@example.fr", None)
    assert (result.outcome, result.email, result.code) == (Requested.UNKNOWN_ADDRESS, "stranger@example.fr", None)
    assert await store.get_code("stranger@example.fr") is None
    assert (await codes.verify("stranger@example.fr", "000000")).outcome is Checked.NO_CODE


async def test_a_code_is_worthless_under_another_key(
    codes: SignInCodes, store: AuthStore, clock: FakeClock
) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.code is not None
    other = SignInCodes(store, b"o" * 32, clock=clock)
    assert (await other.verify(LEA, sent.code)).outcome is Checked.WRONG


def test_the_key_must_be_long_enough(store: AuthStore, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="32"):
        SignInCodes(store, b"short", clock=clock)


async def test_two_gateways_verifying_one_code_sign_in_once(tmp_path: Path, clock: FakeClock) -> None:
    stores = [SQLiteAuthStore(str(tmp_path / "shared.db")) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        gateways = [SignInCodes(s, KEY, clock=clock) for s in stores]
        sent = await gateways[0].request(LEA, "p-lea")
        assert sent.code is not None
        code = sent.code
        checks = await asyncio.gather(*(gateways[i % 2].verify(LEA, code) for i in range(6)))
        assert [c.outcome for c in checks].count(Checked.VERIFIED) == 1
        assert {c.outcome for c in checks} == {Checked.VERIFIED, Checked.NO_CODE}
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_wrong_tries_are_all_counted(codes: SignInCodes, store: AuthStore) -> None:
    sent = await codes.request(LEA, "p-lea")
    assert sent.code is not None
    bad = wrong(sent.code)
    checks = await asyncio.gather(*(codes.verify(LEA, bad) for _ in range(5)))
    assert sorted(c.attempts_left for c in checks) == [0, 1, 2, 3, 4]
    assert (await codes.verify(LEA, sent.code)).outcome is Checked.LOCKED


async def test_purge_keeps_what_still_matters(codes: SignInCodes, store: AuthStore, clock: FakeClock) -> None:
    await codes.request(LEA, "p-lea")
    clock.now = T0 + 1199  # the request still counts against the limit
    assert await codes.purge() == 0
    clock.now = T0 + 1201  # expired, and the request is out of the window
    assert await codes.purge() == 1
    assert await store.get_code(LEA) is None
