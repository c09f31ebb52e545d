"""The API's cache of verified tokens: entries expire after the TTL (so a
revocation is seen within it) and the cache never holds more than its bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.access import Principal
from reconciler.api.auth import TokenCache

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)
ALICE = Principal("user", 1, "alice", "officer", (), "api", 11, LATER)
BOB = Principal("service", 2, "portal", "portal", (), "api", 12, LATER)


class FakeClock:
    def __init__(self) -> None:
        self.now_seconds = 1000.0

    def __call__(self) -> float:
        return self.now_seconds


def test_entry_is_trusted_until_the_ttl_then_forgotten() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=5.0, entries_max=10, clock=clock)
    assert cache.get("a", NOW) is None
    cache.put("a", ALICE)
    clock.now_seconds += 4.9
    assert cache.get("a", NOW) == ALICE
    clock.now_seconds += 0.1
    assert cache.get("a", NOW) is None
    assert len(cache) == 0


def test_use_does_not_extend_an_entry_only_a_new_verification_does() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=5.0, entries_max=10, clock=clock)
    cache.put("a", ALICE)
    for _ in range(4):
        clock.now_seconds += 1.0
        assert cache.get("a", NOW) == ALICE
    clock.now_seconds += 1.0
    assert cache.get("a", NOW) is None
    cache.put("a", ALICE)
    clock.now_seconds += 4.0
    assert cache.get("a", NOW) == ALICE


def test_bounded_the_oldest_verification_goes_first() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=60.0, entries_max=3, clock=clock)
    for digest in ("a", "b", "c"):
        cache.put(digest, ALICE)
        clock.now_seconds += 1.0
    cache.put("a", BOB)  # verified again: now the newest
    cache.put("d", BOB)
    assert len(cache) == 3
    assert cache.get("b", NOW) is None
    assert cache.get("a", NOW) == BOB
    assert cache.get("c", NOW) == ALICE
    assert cache.get("d", NOW) == BOB
    for i in range(100):
        cache.put(f"x{i}", ALICE)
    assert len(cache) == 3


def test_an_expired_token_is_dropped_at_its_expiry_within_the_ttl() -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=60.0, entries_max=10, clock=clock)
    cache.put("a", ALICE)
    assert cache.get("a", LATER - timedelta(microseconds=1)) == ALICE
    assert cache.get("a", LATER) is None
    assert len(cache) == 0


def test_drop_forgets_at_once() -> None:
    cache = TokenCache(ttl_seconds=60.0, entries_max=10, clock=FakeClock())
    cache.put("a", ALICE)
    cache.drop("a")
    cache.drop("never-there")
    assert cache.get("a", NOW) is None
