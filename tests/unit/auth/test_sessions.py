"""Device sessions (auth/sessions.py), over a real SQLite `AuthStore` and a fake clock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest

from auth.sessions import (
    ACCESS_TTL,
    UNKNOWN_DEVICE,
    DeviceSessions,
    Refresh,
    SessionPolicy,
    access_token,
    credential_hash,
    device_name,
    new_credential,
)
from auth.tokens import verify_access
from persistence.auth_sqlite import SQLiteAuthStore
from persistence.auth_store import AuthStore
from tests.support.clock import FakeClock
from tests.unit.auth.conftest import T0

SECRET = b"s" * 32


@pytest.fixture
def sessions(store: AuthStore, clock: FakeClock) -> DeviceSessions:
    return DeviceSessions(store, clock=clock)


# -- credentials and tokens -------------------------------------------------------------------


def test_a_credential_is_32_random_bytes_in_base64url() -> None:
    credential = new_credential()
    assert len(credential) == 43 and "=" not in credential
    raw = base64.urlsafe_b64decode(credential + "=")
    assert len(raw) == 32
    assert credential_hash(credential) == hashlib.sha256(raw).digest()
    assert new_credential() != credential


@pytest.mark.parametrize("bad", [None, 42, b"x" * 43, "", "x" * 42, "x" * 44, "!" * 43, "x" * 42 + "="])
def test_what_cannot_be_a_credential_has_no_hash(bad: object) -> None:
    assert credential_hash(bad) is None


def test_one_spelling_per_credential() -> None:
    credential = new_credential()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = credential[:-1] + alphabet[alphabet.index(credential[-1]) ^ 1]
    assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(credential + "=")
    assert credential_hash(twin) is None


@pytest.mark.parametrize(("raw", "name"), [
    ("  iPhone de Léa ", "iPhone de Léa"),
    ("Firefox\non\tLinux\x00", "Firefox on Linux"),
    ("x" * 200, "x" * 80),
    ("", UNKNOWN_DEVICE),
    ("\u200b\n", UNKNOWN_DEVICE),
    (None, UNKNOWN_DEVICE),
    (42, UNKNOWN_DEVICE),
])
def test_device_names_are_one_printable_line(raw: object, name: str) -> None:
    assert device_name(raw) == name


async def test_start_opens_a_session_and_stores_only_the_hash(
    sessions: DeviceSessions, store: AuthStore, tmp_path: Path
) -> None:
    started = await sessions.start("p-lea", "iPhone de Léa")
    session = started.session
    assert (session.user_id, session.device, session.created_at, session.last_seen, session.live) == (
        "p-lea", "iPhone de Léa", T0, T0, True)
    assert await store.get_session(session.id) == session
    assert await store.first_sign_ins(["p-lea"]) == {"p-lea": T0}
    found = await store.find_refresh(credential_hash(started.credential) or b"")
    assert found is not None and found.current and found.session.id == session.id
    assert started.credential not in repr(started)
    assert started.credential.encode() not in (tmp_path / "liaison.db").read_bytes()


async def test_access_tokens_carry_the_session(sessions: DeviceSessions) -> None:
    started = await sessions.start("p-lea", "phone")
    token = access_token(SECRET, started.session, T0)
    claims = verify_access(SECRET, token, now=T0)
    assert claims == (("p-lea", T0 + ACCESS_TTL, started.session.id))
    assert ACCESS_TTL == 15 * 60


# -- refresh and rotation ---------------------------------------------------------------------


async def test_refresh_rotates_the_credential(sessions: DeviceSessions, clock: FakeClock) -> None:
    started = await sessions.start("p-lea", "phone")
    clock.now += 600
    first = await sessions.refresh(started.credential)
    assert first.outcome is Refresh.ROTATED and first.credential not in (None, started.credential)
    assert first.session is not None and first.session.last_seen == T0 + 600
    clock.now += 600
    second = await sessions.refresh(first.credential)
    assert second.outcome is Refresh.ROTATED and second.credential not in (None, first.credential)


async def test_reuse_of_a_superseded_credential_ends_the_session(
    sessions: DeviceSessions, clock: FakeClock
) -> None:
    started = await sessions.start("p-lea", "phone")
    rotated = await sessions.refresh(started.credential)
    clock.now += 60  # past the grace: not a race between two tabs
    reused = await sessions.refresh(started.credential)
    assert reused.outcome is Refresh.REUSED and reused.credential is None
    assert reused.session is not None
    assert (reused.session.ended_at, reused.session.end_reason) == (T0 + 60, "reuse")
    after = await sessions.refresh(rotated.credential)
    assert (after.outcome, after.credential) == (Refresh.ENDED, None), "the thief's copy dies with it"
    assert not await sessions.is_live(started.session.id)


async def test_the_previous_credential_just_after_rotation_is_forgiven(
    sessions: DeviceSessions, clock: FakeClock
) -> None:
    """Two tabs refresh with the same cookie; the loser is a moment late."""
    started = await sessions.start("p-lea", "phone")
    rotated = await sessions.refresh(started.credential)
    clock.now += 9.5
    late = await sessions.refresh(started.credential)
    assert (late.outcome, late.credential) == (Refresh.SUPERSEDED, None)
    assert await sessions.is_live(started.session.id)
    assert (await sessions.refresh(rotated.credential)).outcome is Refresh.ROTATED


async def test_older_credentials_are_reuse_even_within_the_grace(sessions: DeviceSessions) -> None:
    started = await sessions.start("p-lea", "phone")
    one = await sessions.refresh(started.credential)
    await sessions.refresh(one.credential)
    assert (await sessions.refresh(started.credential)).outcome is Refresh.REUSED


async def test_without_grace_any_reuse_ends_the_session(store: AuthStore, clock: FakeClock) -> None:
    strict = DeviceSessions(store, clock=clock, policy=SessionPolicy(reuse_grace=0))
    started = await strict.start("p-lea", "phone")
    await strict.refresh(started.credential)
    assert (await strict.refresh(started.credential)).outcome is Refresh.REUSED


async def test_two_gateways_refreshing_one_credential_rotate_once(tmp_path: Path, clock: FakeClock) -> None:
    stores = [SQLiteAuthStore(str(tmp_path / "shared.db")) for _ in range(2)]
    for s in stores:
        await s.open()
    try:
        gateways = [DeviceSessions(s, clock=clock) for s in stores]
        started = await gateways[0].start("p-lea", "phone")
        results = await asyncio.gather(*(gateways[i % 2].refresh(started.credential) for i in range(6)))
        outcomes = [r.outcome for r in results]
        assert outcomes.count(Refresh.ROTATED) == 1
        assert set(outcomes) == {Refresh.ROTATED, Refresh.SUPERSEDED}
        winner = results[outcomes.index(Refresh.ROTATED)]
        assert await gateways[1].is_live(started.session.id)
        assert (await gateways[1].refresh(winner.credential)).outcome is Refresh.ROTATED
    finally:
        for s in stores:
            await s.close()


@pytest.mark.parametrize("credential", [None, "", "garbage", 42])
async def test_unknown_credentials_are_invalid(sessions: DeviceSessions, credential: object) -> None:
    assert (await sessions.refresh(credential)).outcome is Refresh.INVALID


async def test_a_well_formed_unknown_credential_is_invalid(sessions: DeviceSessions) -> None:
    await sessions.start("p-lea", "phone")
    result = await sessions.refresh(new_credential())
    assert (result.outcome, result.session) == (Refresh.INVALID, None)


async def test_an_idle_session_ends_at_its_next_refresh(sessions: DeviceSessions, clock: FakeClock) -> None:
    started = await sessions.start("p-lea", "phone")
    clock.now += 120 * 86_400
    live = await sessions.refresh(started.credential)
    assert live.outcome is Refresh.ROTATED, "idle exactly the limit is still fine"
    clock.now += 120 * 86_400 + 1
    idle = await sessions.refresh(live.credential)
    assert idle.outcome is Refresh.IDLE and idle.session is not None and idle.session.end_reason == "idle"


# -- listing and ending ----------------------------------------------------------------------


async def test_a_user_lists_and_ends_their_own_sessions(sessions: DeviceSessions, clock: FakeClock) -> None:
    phone = await sessions.start("p-lea", "phone")
    clock.now += 1
    laptop = await sessions.start("p-lea", "laptop")
    other = await sessions.start("p-adam", "tablet")
    assert [s.device for s in await sessions.of_user("p-lea")] == ["laptop", "phone"]
    assert await sessions.end("p-adam", phone.session.id) is False, "not theirs"
    assert await sessions.end("p-lea", phone.session.id) is True
    assert await sessions.end("p-lea", phone.session.id) is False, "already ended"
    assert await sessions.end("p-lea", "s-nope") is False
    assert [s.id for s in await sessions.of_user("p-lea")] == [laptop.session.id]
    assert (await sessions.refresh(phone.credential)).outcome is Refresh.ENDED
    assert await sessions.is_live(other.session.id)


async def test_sign_out_ends_the_session_of_a_current_credential(sessions: DeviceSessions) -> None:
    started = await sessions.start("p-lea", "phone")
    assert await sessions.sign_out(new_credential()) is None
    ended = await sessions.sign_out(started.credential)
    assert ended is not None and ended.end_reason == "signed_out"
    assert await sessions.sign_out(started.credential) is None


async def test_end_all_ends_every_session_of_a_person(sessions: DeviceSessions, store: AuthStore) -> None:
    a = await sessions.start("p-lea", "phone")
    b = await sessions.start("p-lea", "laptop")
    c = await sessions.start("p-adam", "tablet")
    assert await sessions.end_all("p-lea", "removed") == sorted([a.session.id, b.session.id])
    assert await sessions.of_user("p-lea") == []
    assert (await sessions.refresh(a.credential)).outcome is Refresh.ENDED
    assert await sessions.is_live(c.session.id)
    assert not await sessions.is_live("s-nope")
    ended = await store.get_session(b.session.id)
    assert ended is not None and ended.end_reason == "removed"


async def test_purge_drops_sessions_ended_long_ago(
    sessions: DeviceSessions, store: AuthStore, clock: FakeClock
) -> None:
    started = await sessions.start("p-lea", "phone")
    await sessions.sign_out(started.credential)
    clock.now += 30 * 86_400 - 1
    assert await sessions.purge() == 0
    clock.now += 2
    assert await sessions.purge() == 1
    assert await store.get_session(started.session.id) is None
